#include "gateway/ingest/file_ingest.h"

#include <openssl/sha.h>

#include "gateway/audit/audit_rows.h"
#include "gateway/common/json.h"
#include "gateway/common/log.h"
#include "gateway/model/cpis_plan.h"
#include "gateway/write/bundle_entries.h"

namespace gw::ingest {

namespace {

std::string sha256_hex(std::string_view s) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : d) {
    out.push_back(hex[c >> 4]);
    out.push_back(hex[c & 15]);
  }
  return out;
}

// For adapters that do not count their entries (a whole parse of the Bundle).
size_t entry_count(std::string_view bundle) {
  auto d = json::parse(bundle);
  if (!d || !d->IsObject()) return 0;
  const json::Value* e = json::member(*d, "entry");
  return e && e->IsArray() ? e->Size() : 0;
}

}  // namespace

std::string file_idempotency_key(std::string_view adapter, std::string_view sender_ods, std::string_view raw) {
  return std::string(adapter) + "|" + std::string(sender_ods) + "|sha256:" + sha256_hex(raw);
}

void keep_quarantined(store::Store& store, std::string_view adapter, const Source& src, std::string raw,
                      const std::vector<Issue>& issues, std::string_view reason,
                      std::function<void(Result<int64_t>)> done) {
  store::UnitOfWork u;
  store::InboundRow row;
  row.adapter = std::string(adapter);
  row.channel = src.channel;
  row.sender_ods = src.principal.ods;
  row.sender_system = src.principal.system;
  row.status = "quarantined";
  row.reason = std::string(reason.substr(0, 500));
  row.issues_json = issues_json(issues);
  row.raw = std::move(raw);
  u.inbound.push_back(std::move(row));
  auto shared = std::make_shared<std::function<void(Result<int64_t>)>>(std::move(done));
  auto r = store.commit(std::move(u), [shared](Result<store::CommitOutcome> res) {
    if (!res) return (*shared)(res.error());
    (*shared)(res->inbound_ids.empty() ? int64_t{0} : res->inbound_ids[0]);
  });
  if (!r) (*shared)(r.error());
}

const char* file_result_name(FileResult::Kind k) {
  switch (k) {
    case FileResult::Kind::accepted: return "accepted";
    case FileResult::Kind::partial: return "partial";
    case FileResult::Kind::duplicate: return "duplicate";
    case FileResult::Kind::refused: return "refused";
    case FileResult::Kind::unavailable: return "unavailable";
  }
  return "unknown";
}

FileIngest::FileIngest(const adapters::Adapter& adapter, write::WriteService& writes, metrics::Registry& metrics,
                       std::function<std::string()> today)
    : adapter_(adapter),
      writes_(writes),
      store_(writes.store()),
      metrics_(metrics),
      today_(today ? std::move(today) : std::function<std::string()>(model::cpis::utc_today)) {}

void FileIngest::handle(std::string raw_in, Source src, std::function<void(FileResult)> done) {
  auto raw = std::make_shared<std::string>(std::move(raw_in));
  IssueSink sink;
  auto bundle = adapter_.parse(*raw, sink);
  std::vector<Issue> issues = sink.issues();
  if (!bundle) {
    if (!sink.has_errors()) {
      issues.push_back(Issue{Severity::error, "invalid", bundle.error().expression, bundle.error().message});
    }
    return quarantine(raw, src, std::move(issues), bundle.error().message, std::move(done));
  }
  size_t n = bundle->entries ? *bundle->entries : entry_count(bundle->json);
  // Only CAMHS extracts state CPP/LAC indicators to cross-check with CP-IS;
  // other files (a 100 k-row CSV) are not parsed a second time.
  std::vector<StatedIndicator> stated;
  if (adapter_.format_id() == "camhs") {
    if (auto doc = json::parse(bundle->json); doc && doc->IsObject()) stated = stated_plan_indicators(*doc);
  }
  Accepted a{raw, src, std::move(bundle->json), std::move(issues), n, sink.has_errors(), 0, std::move(done)};
  if (stated.empty()) return submit(std::move(a));
  // The CP-IS cross-check reads the store: on a reader, then the commit.
  auto shared = std::make_shared<Accepted>(std::move(a));
  auto r = store_.run_read([this, shared, stated = std::move(stated)] {
    auto found = plan_mismatches(store_, stated, today_());
    shared->plan_mismatches = found.size();
    shared->issues.insert(shared->issues.end(), found.begin(), found.end());
    submit(std::move(*shared));
  });
  if (!r) {
    FileResult out;
    out.kind = FileResult::Kind::unavailable;
    out.issues = std::move(shared->issues);
    out.message = "the gateway is busy; send the file again later";
    shared->done(std::move(out));
  }
}

void FileIngest::submit(Accepted a) {
  const auto& src = a.src;
  auto doc = json::parse(a.bundle_json);
  write::Request w;
  w.who = src.principal;
  w.request_id = std::to_string(src.msg_id);
  w.action = "transaction";
  w.feed = std::string(adapter_.format_id());
  w.channel = std::string(audit::kChannelFile);
  w.topic = std::string(adapter_.format_id());
  if (doc && doc->IsObject()) {
    w.message_time = std::string(json::get_string(*doc, "timestamp").value_or(""));
    w.entries = write::entries_from_bundle(json::member(*doc, "entry"));
  }
  a.bundle_json.clear();
  w.idempotency_key = file_idempotency_key(adapter_.format_id(), src.principal.ods, *a.raw);
  store::InboundRow row;
  row.adapter = std::string(adapter_.format_id());
  row.channel = src.channel;
  row.sender_ods = src.principal.ods;
  row.sender_system = src.principal.system;
  row.status = "accepted";
  row.reason = a.partial ? "accepted in part: some records refused" : "";
  row.issues_json = issues_json(a.issues);
  row.raw = *a.raw;
  w.inbound.push_back(std::move(row));
  auto shared = std::make_shared<Accepted>(std::move(a));
  std::string adapter(adapter_.format_id());
  writes_.submit(std::move(w), [this, shared, adapter](write::Outcome out) {
    FileResult r;
    r.issues = shared->issues;
    r.plan_mismatches = shared->plan_mismatches;
    const size_t n = shared->resources;
    const bool partial = shared->partial;
    if (!out.failure) {
      r.kind = partial ? FileResult::Kind::partial : FileResult::Kind::accepted;
      r.resources = n;
      r.inbound_id = out.inbound_ids.empty() ? 0 : out.inbound_ids[0];
      r.issues.insert(r.issues.end(), out.notes.begin(), out.notes.end());
      r.message = partial ? "the valid records were accepted; the others are listed with their problems"
                          : "every record was accepted";
    } else if (out.failure->code == Errc::conflict && out.failure->expression == "idempotency-key") {
      r.kind = FileResult::Kind::duplicate;
      r.message = "this file was already accepted from this sender; nothing changed";
    } else if (out.failure->code == Errc::unavailable || out.failure->code == Errc::store_failure) {
      r.kind = FileResult::Kind::unavailable;
      r.message = "the gateway is busy; send the file again later";
    } else {
      // The mapped FHIR was refused as a whole: keep the file for replay, and
      // say why (our own OperationOutcome texts never hold identifiers).
      std::vector<Issue> why = shared->issues;
      why.insert(why.end(), out.issues.begin(), out.issues.end());
      why.push_back(Issue{Severity::error, "processing", out.failure->expression,
                          "the mapped FHIR was refused (HTTP " + std::to_string(http_status_for(out.failure->code)) +
                              "): " + out.failure->message});
      return quarantine(shared->raw, shared->src, std::move(why), "mapped FHIR refused", std::move(shared->done));
    }
    metrics_
        .counter("gw_ingest_files_total", "Legacy files by adapter and outcome",
                 "adapter=\"" + adapter + "\",outcome=\"" + file_result_name(r.kind) + "\"")
        .inc();
    log::info("ingest_file", {{"adapter", adapter},
                              {"outcome", file_result_name(r.kind)},
                              {"resources", n},
                              {"plan_mismatches", r.plan_mismatches}});
    shared->done(std::move(r));
  });
}

void FileIngest::quarantine(std::shared_ptr<std::string> raw, const Source& src, std::vector<Issue> issues,
                            std::string reason, std::function<void(FileResult)> done) {
  auto shared = std::make_shared<std::pair<std::vector<Issue>, std::function<void(FileResult)>>>(std::move(issues),
                                                                                                 std::move(done));
  std::string adapter(adapter_.format_id());
  keep_quarantined(store_, adapter, src, *raw, shared->first, reason, [this, shared, adapter](Result<int64_t> res) {
    FileResult out;
    out.issues = std::move(shared->first);
    if (!res) {
      out.kind = FileResult::Kind::unavailable;
      out.message = "the gateway could not keep this file; send it again later";
    } else {
      out.kind = FileResult::Kind::refused;
      out.inbound_id = *res;
      out.message = "nothing in this file was accepted; it is kept as inbound message " + std::to_string(out.inbound_id);
    }
    metrics_
        .counter("gw_ingest_files_total", "Legacy files by adapter and outcome",
                 "adapter=\"" + adapter + "\",outcome=\"" + file_result_name(out.kind) + "\"")
        .inc();
    shared->second(std::move(out));
  });
}

}  // namespace gw::ingest
