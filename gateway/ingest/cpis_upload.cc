#include "gateway/ingest/cpis_upload.h"

#include <map>

#include "gateway/audit/audit_rows.h"
#include "gateway/common/log.h"
#include "gateway/model/cpis_plan.h"
#include "gateway/identity/nhs_number.h"
#include "gateway/ingest/file_ingest.h"
#include "gateway/write/bundle_entries.h"

namespace gw::ingest {

namespace cpis = adapters::cpis;

namespace {

constexpr std::string_view kAdapter = "cpis-upload";

net::Response outcome_response(int status, std::string body) {
  net::Response r;
  r.status = status;
  r.body = std::move(body);
  r.route = "ingest";
  return r;
}

// The CPR07 details kept with the stored file: rows and reasons, no values.
std::vector<Issue> rejected_issues(const std::vector<cpis::UploadRecord>& records) {
  std::vector<Issue> out;
  for (const auto& r : records)
    for (const auto& p : r.problems)
      out.push_back(Issue{Severity::error, p.code,
                          "row " + std::to_string(r.row) + (p.column.empty() ? "" : "." + p.column), p.message});
  return out;
}

bool exists(store::Store& store, std::string_view type, std::string_view system, const std::string& value) {
  store::SearchQuery q;
  q.type = std::string(type);
  q.params.push_back(store::ParamConstraint{"identifier", {{std::string(system), value}}});
  q.count = 1;
  q.want_total = false;
  auto page = store.search(q);
  return page && !page->items.empty();
}

}  // namespace

struct CpisUpload::Run {
  net::Request req;
  net::Respond respond;
  Source src;
  std::vector<cpis::UploadRecord> records;
  cpis::Totals totals;
};

CpisUpload::CpisUpload(const cpis::CpisUploadAdapter& adapter, write::WriteService& writes, metrics::Registry& metrics)
    : adapter_(adapter), writes_(writes), store_(writes.store()), metrics_(metrics) {}

void CpisUpload::handle(net::Request req, net::Respond respond) {
  auto run = std::make_shared<Run>();
  run->src.channel = "http";
  run->src.principal = req.principal;
  run->src.conn_id = req.conn_id;
  run->src.msg_id = req.req_id;
  run->req = std::move(req);
  run->respond = std::move(respond);
  auto parsed = adapter_.parse_records(run->req.body, cpis::UploadContext{run->src.principal.ods, model::cpis::utc_today()});
  if (!parsed) {
    // Not a file we can read record by record: keep it whole and say why.
    Error e = parsed.error();
    auto shared = run;
    return keep_quarantined(store_, kAdapter, run->src, run->req.body,
                            {Issue{Severity::error, "invalid", e.expression, e.message}}, e.message,
                            [this, shared, e](Result<int64_t> kept) mutable {
                              if (kept) e.message += " (the file is kept as inbound message " + std::to_string(*kept) + ")";
                              count("refused");
                              shared->respond(outcome_response(kept ? 422 : 503, operation_outcome(e)));
                            });
  }
  run->records = std::move(parsed->records);
  check_against_store(std::move(run));
}

void CpisUpload::check_against_store(std::shared_ptr<Run> run) {
  auto r = store_.run_read([this, run] {
    std::map<std::string, bool> known;  // NHS number -> held before this upload
    for (auto& rec : run->records) {
      if (!rec.nhs_number.empty()) {
        auto [it, fresh] = known.emplace(rec.nhs_number, false);
        if (fresh) it->second = exists(store_, "Patient", identity::kNhsNumberSystem, rec.nhs_number);
        if (it->second) ++run->totals.known_nhs_numbers;
      }
      if (rec.accepted() && rec.withdrawal &&
          !exists(store_, "CareTeam", model::cpis::kPlanIdSystem, rec.plan_identifier)) {
        rec.problems.push_back(cpis::Problem{
            "DeleteDate", "not-found",
            "no plan with this LocalChildID and model::cpis::PlanType is held for this authority, so there is nothing to withdraw"});
      }
    }
    commit(run);
  });
  if (!r) answer(run, 503);
}

void CpisUpload::commit(std::shared_ptr<Run> run) {
  bool any = false;
  for (const auto& rec : run->records) any = any || rec.accepted();
  if (!any) return refuse(run, "no record of this file was accepted");

  write::Request w;
  w.who = run->src.principal;
  w.request_id = std::to_string(run->src.msg_id);
  w.action = "transaction";
  w.channel = std::string(audit::kChannelFile);
  w.topic = std::string(kAdapter);
  {
    auto doc = json::parse(cpis::CpisUploadAdapter::bundle_of(run->records).json);
    if (doc && doc->IsObject()) w.entries = write::entries_from_bundle(json::member(*doc, "entry"));
  }
  w.idempotency_key = file_idempotency_key(kAdapter, run->src.principal.ods, run->req.body);
  store::InboundRow row;
  row.adapter = std::string(kAdapter);
  row.channel = run->src.channel;
  row.sender_ods = run->src.principal.ods;
  row.sender_system = run->src.principal.system;
  row.status = "accepted";
  auto rejected = rejected_issues(run->records);
  row.reason = rejected.empty() ? "" : "accepted in part: some records refused (CPR07)";
  row.issues_json = issues_json(rejected);
  row.raw = run->req.body;
  w.inbound.push_back(std::move(row));
  writes_.submit(std::move(w), [this, run](write::Outcome out) {
    if (!out.failure) return answer(run, 200);
    const Error& e = *out.failure;
    if (e.code == Errc::conflict && e.expression == "idempotency-key") {
      run->totals.duplicate = true;
      return answer(run, 200);
    }
    if (e.code == Errc::unavailable || e.code == Errc::store_failure) return answer(run, 503);
    // The mapped plans were refused as a whole (a bug, or the policy): keep the
    // file for replay; our own OperationOutcome texts hold no identifiers.
    refuse(run, "the mapped plans were refused (HTTP " + std::to_string(http_status_for(e.code)) + "): " + e.message);
  });
}

void CpisUpload::refuse(std::shared_ptr<Run> run, std::string reason) {
  auto issues = rejected_issues(run->records);
  if (issues.empty()) issues.push_back(Issue{Severity::error, "processing", "", reason});
  keep_quarantined(store_, kAdapter, run->src, run->req.body, issues, reason, [this, run](Result<int64_t> kept) {
    answer(run, kept ? 422 : 503);
  });
}

void CpisUpload::answer(std::shared_ptr<Run> run, int status) {
  if (status == 503) {
    count("unavailable");
    return run->respond(outcome_response(
        503, operation_outcome(make_error(Errc::unavailable, "the gateway is busy; send the file again later"))));
  }
  count(status == 200 ? (run->totals.duplicate ? "duplicate" : "accepted") : "refused");
  std::size_t accepted = 0;
  for (const auto& rec : run->records) accepted += rec.accepted() ? 1 : 0;
  log::info("ingest_file", {{"adapter", std::string(kAdapter)},
                            {"records", run->records.size()},
                            {"accepted", accepted},
                            {"status", status}});
  run->respond(outcome_response(status, cpis::CpisUploadAdapter::outcome(run->records, run->totals)));
}

void CpisUpload::count(std::string_view outcome) {
  metrics_
      .counter("gw_ingest_files_total", "Legacy files by adapter and outcome",
               "adapter=\"" + std::string(kAdapter) + "\",outcome=\"" + std::string(outcome) + "\"")
      .inc();
}

}  // namespace gw::ingest
