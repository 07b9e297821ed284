#include "gateway/ingest/file_ingest.h"

#include <openssl/sha.h>

#include "gateway/common/json.h"
#include "gateway/common/log.h"

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

FileIngest::FileIngest(const adapters::Adapter& adapter, fhir::RestApi& rest, store::Store& store,
                       metrics::Registry& metrics)
    : adapter_(adapter), rest_(rest), store_(store), metrics_(metrics) {}

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
  bool partial = sink.has_errors();
  net::Request req;
  req.method = "POST";
  req.path = req.target = "/fhir";
  req.principal = src.principal;
  req.conn_id = src.conn_id;
  req.req_id = src.msg_id;
  req.body = std::move(bundle->json);
  fhir::TransactionExtras extras;
  extras.idempotency_key = std::string(adapter_.format_id()) + "|" + src.principal.ods + "|sha256:" + sha256_hex(*raw);
  store::InboundRow row;
  row.adapter = std::string(adapter_.format_id());
  row.channel = src.channel;
  row.sender_ods = src.principal.ods;
  row.sender_system = src.principal.system;
  row.status = "accepted";
  row.reason = partial ? "accepted in part: some records refused" : "";
  row.issues_json = issues_json(issues);
  row.raw = *raw;
  extras.inbound.push_back(std::move(row));
  auto shared_issues = std::make_shared<std::vector<Issue>>(std::move(issues));
  auto shared_done = std::make_shared<std::function<void(FileResult)>>(std::move(done));
  std::string adapter(adapter_.format_id());
  rest_.submit_transaction(std::move(req), std::move(extras),
                           [this, raw, src, shared_issues, shared_done, n, partial, adapter](net::Response resp) {
    FileResult r;
    r.issues = *shared_issues;
    if (resp.status == 200) {
      r.kind = partial ? FileResult::Kind::partial : FileResult::Kind::accepted;
      r.resources = n;
      r.message = partial ? "the valid records were accepted; the others are listed with their problems"
                          : "every record was accepted";
    } else if (resp.status == 409 && resp.body.find("idempotency-key") != std::string::npos) {
      r.kind = FileResult::Kind::duplicate;
      r.message = "this file was already accepted from this sender; nothing changed";
    } else if (resp.status == 503) {
      r.kind = FileResult::Kind::unavailable;
      r.message = "the gateway is busy; send the file again later";
    } else {
      // The mapped FHIR was refused as a whole: keep the file for replay, and
      // say why (our own OperationOutcome texts never hold identifiers).
      std::vector<Issue> why = *shared_issues;
      std::string detail;
      if (auto d = json::parse(resp.body); d && d->IsObject()) {
        if (const json::Value* is = json::member(*d, "issue"); is && is->IsArray() && !is->Empty())
          detail = std::string(json::get_string((*is)[0], "diagnostics").value_or(""));
      }
      why.push_back(Issue{Severity::error, "processing", "",
                          "the mapped FHIR was refused (HTTP " + std::to_string(resp.status) + ")" +
                              (detail.empty() ? "" : ": " + detail)});
      return quarantine(raw, src, std::move(why), "mapped FHIR refused", std::move(*shared_done));
    }
    metrics_
        .counter("gw_ingest_files_total", "Legacy files by adapter and outcome",
                 "adapter=\"" + adapter + "\",outcome=\"" + file_result_name(r.kind) + "\"")
        .inc();
    log::info("ingest_file", {{"adapter", adapter}, {"outcome", file_result_name(r.kind)}, {"resources", n}});
    (*shared_done)(std::move(r));
  });
}

void FileIngest::quarantine(std::shared_ptr<std::string> raw, const Source& src, std::vector<Issue> issues,
                            std::string reason, std::function<void(FileResult)> done) {
  store::UnitOfWork u;
  store::InboundRow row;
  row.adapter = std::string(adapter_.format_id());
  row.channel = src.channel;
  row.sender_ods = src.principal.ods;
  row.sender_system = src.principal.system;
  row.status = "quarantined";
  row.reason = reason.substr(0, 500);
  row.issues_json = issues_json(issues);
  row.raw = *raw;
  u.inbound.push_back(std::move(row));
  auto shared = std::make_shared<std::pair<std::vector<Issue>, std::function<void(FileResult)>>>(std::move(issues),
                                                                                                 std::move(done));
  std::string adapter(adapter_.format_id());
  auto r = store_.commit(std::move(u), [this, shared, adapter](Result<store::CommitOutcome> res) {
    FileResult out;
    out.issues = std::move(shared->first);
    if (!res) {
      out.kind = FileResult::Kind::unavailable;
      out.message = "the gateway could not keep this file; send it again later";
    } else {
      out.kind = FileResult::Kind::refused;
      out.inbound_id = res->inbound_ids.empty() ? 0 : res->inbound_ids[0];
      out.message = "nothing in this file was accepted; it is kept as inbound message " + std::to_string(out.inbound_id);
    }
    metrics_
        .counter("gw_ingest_files_total", "Legacy files by adapter and outcome",
                 "adapter=\"" + adapter + "\",outcome=\"" + file_result_name(out.kind) + "\"")
        .inc();
    shared->second(std::move(out));
  });
  if (!r) {
    FileResult out;
    out.kind = FileResult::Kind::unavailable;
    out.issues = std::move(shared->first);
    out.message = "the gateway is busy; send the file again later";
    shared->second(std::move(out));
  }
}

}  // namespace gw::ingest
