#include "gateway/safeguarding/acknowledge.h"

#include <memory>

#include "gateway/audit/audit_rows.h"
#include "gateway/common/clock.h"
#include "gateway/common/log.h"
#include "gateway/events/escalation.h"
#include "gateway/events/flows/flow_kit.h"
#include "gateway/fhir/responses.h"
#include "gateway/fhir/rest.h"
#include "gateway/identity/nhs_number.h"
#include "gateway/model/cpis_plan.h"
#include "gateway/model/resource_text.h"

namespace gw::safeguarding {

namespace {

using events::flows::str;

constexpr const char* kRoute = "fhir_acknowledge";
constexpr std::string_view kOperation = "acknowledge";

net::Response refusal(Errc code, std::string message, std::string expression = {}) {
  return fhir::outcome_response(make_error(code, std::move(message), std::move(expression)), kRoute);
}

// Communication.recipient names the caller's organisation by its ODS code.
bool sent_to(const json::Value& comm, const std::string& ods) {
  const json::Value* rs = json::member(comm, "recipient");
  if (!rs || !rs->IsArray()) return false;
  for (const auto& r : rs->GetArray())
    if (events::flows::ods_of(&r) == ods) return true;
  return false;
}

// The person the disclosure is about, as the audit names them (Patient/<id>).
std::string patient_ref(store::Store& store, const json::Value& comm) {
  const json::Value* s = json::member(comm, "subject");
  if (!s || !s->IsObject()) return {};
  std::string ref = str(*s, "reference");
  if (ref.rfind("Patient/", 0) == 0) return ref;
  if (const json::Value* id = json::member(*s, "identifier"); id && id->IsObject() &&
                                                               str(*id, "system") == identity::kNhsNumberSystem)
    if (auto found = store.find_by_unique_key(str(*id, "value")); found && *found) return "Patient/" + **found;
  return {};
}

std::string served(const store::StoredResource& r) { return model::served_text(r); }

net::Response answer(const store::StoredResource& r) {
  net::Response out;
  out.route = kRoute;
  out.body = served(r);
  out.headers.emplace_back("ETag", model::etag(r.version));
  out.headers.emplace_back("Last-Modified", model::http_date(r.last_updated));
  return out;
}

}  // namespace

json::Value acknowledged_by(const security::Principal& who, const std::string& when, json::Allocator& a) {
  json::Value ext(rapidjson::kObjectType);
  json::set(ext, "url", kAcknowledgedByUrl, a);
  json::Value parts(rapidjson::kArrayType);
  auto part = [&](std::string_view url, std::string_view kind, json::Value v) {
    json::Value p(rapidjson::kObjectType);
    json::set(p, "url", url, a);
    json::set(p, kind, std::move(v), a);
    parts.PushBack(p, a);
  };
  json::Value org(rapidjson::kObjectType);
  json::set(org, "system", model::cpis::kOdsSystem, a);
  json::set(org, "value", who.ods, a);
  part("organization", "valueIdentifier", std::move(org));
  if (!who.system.empty()) part("system", "valueString", json::Value(who.system.c_str(), a));
  // The person, when the system sent a verified user token (issue 17 part 3):
  // their id at the issuer, name and national job role.
  if (who.person) {
    json::Value person(rapidjson::kObjectType);
    json::set(person, "system", who.person->issuer, a);
    json::set(person, "value", who.person->id, a);
    part("person", "valueIdentifier", std::move(person));
    if (!who.person->name.empty()) part("personName", "valueString", json::Value(who.person->name.c_str(), a));
    if (!who.person->job_role.empty())
      part("personJobRole", "valueString", json::Value(who.person->job_role.c_str(), a));
  }
  part("time", "valueDateTime", json::Value(when.c_str(), a));
  json::set(ext, "extension", std::move(parts), a);
  return ext;
}

AcknowledgeApi::AcknowledgeApi(store::Store& store, write::WriteService& writes, const security::Visibility& visibility)
    : store_(store), writes_(writes), visibility_(visibility) {}

void AcknowledgeApi::add_to(fhir::RestApi& rest) {
  rest.add_operation({"Communication", "acknowledge", "https://cpis-gateway.nhs.uk/OperationDefinition/acknowledge",
                      "POST Communication/{id}/$acknowledge: the receiving organisation acknowledges a safeguarding "
                      "disclosure; answers the Communication (status completed, received set, extension "
                      "acknowledged-by) and cancels its escalation (topic safeguarding-escalation). Idempotent; "
                      "the recipient only; audited (docs/FLOWS.md)."},
                     this);
}

void AcknowledgeApi::audit(const net::Request& req, const std::string& id, int status, const std::string& patient,
                           const std::string& detail) {
  store::AuditRow row = audit::row(req.principal, "operation", "Communication/" + id + "/$acknowledge", status,
                                   req.audit_id(), patient, detail);
  if (auto r = writes_.record({std::move(row)}); !r) log::error("audit_write_refused", {{"reason", r.error().message}});
}

void AcknowledgeApi::handle(net::Request req, net::Respond respond) {
  // /fhir/Communication/{id}/$acknowledge
  std::string_view p = req.path;
  const std::string_view prefix = "/fhir/Communication/", suffix = "/$acknowledge";
  if (req.method != "POST") return respond(refusal(Errc::method_not_allowed, "$acknowledge accepts POST"));
  if (p.size() <= prefix.size() + suffix.size() || p.substr(0, prefix.size()) != prefix ||
      p.substr(p.size() - suffix.size()) != suffix)
    return respond(refusal(Errc::invalid_input, "$acknowledge acts on one Communication: POST "
                                                "/fhir/Communication/{id}/$acknowledge", "Communication.id"));
  std::string id(p.substr(prefix.size(), p.size() - prefix.size() - suffix.size()));
  if (!model::is_valid_id(id)) return respond(refusal(Errc::invalid_input, "not a valid FHIR id", "Communication.id"));
  // FHIR operations may carry a Parameters body; this one takes no parameters.
  if (req.body.find_first_not_of(" \t\r\n") != std::string::npos) {
    auto body = json::parse(req.body);
    if (!body || !body->IsObject() || json::get_string(*body, "resourceType").value_or("") != "Parameters")
      return respond(refusal(Errc::invalid_input, "the body, when sent, must be a Parameters resource", "resourceType"));
    if (const json::Value* ps = json::member(*body, "parameter"); ps && (!ps->IsArray() || !ps->Empty()))
      return respond(refusal(Errc::invalid_input, "$acknowledge takes no parameters", "Parameters.parameter[0]"));
  }
  if (!visibility_.policy().allows_operation(req.principal, kOperation)) {
    audit(req, id, 403, "", "refused: role");
    return respond(refusal(Errc::forbidden, "role '" + req.principal.role + "' may not acknowledge a disclosure"));
  }
  auto shared = std::make_shared<net::Respond>(std::move(respond));
  auto work = [this, shared, req = std::move(req), id]() mutable {
    acknowledge(req, id, [shared](net::Response r) { (*shared)(std::move(r)); }, false);
  };
  if (auto r = store_.run_read(std::move(work)); !r) (*shared)(fhir::outcome_response(r.error(), kRoute));
}

// On a store reader thread.
void AcknowledgeApi::acknowledge(const net::Request& req, const std::string& id, net::Respond respond, bool retried) {
  const auto& who = req.principal;
  auto stored = store_.read("Communication", id);
  if (!stored || stored->deleted || visibility_.hidden_from(who, *stored, "read")) {
    audit(req, id, 404, "", "not found for this caller");
    return respond(refusal(Errc::not_found, "no Communication/" + id + " for your organisation"));
  }
  auto doc = json::parse(served(*stored));  // with its id: the PUT below names it
  if (!doc || !doc->IsObject()) return respond(refusal(Errc::internal, "the stored Communication is not readable"));
  std::string patient = patient_ref(store_, *doc);
  if (!sent_to(*doc, who.ods)) {
    audit(req, id, 403, patient, "refused: not the recipient organisation");
    return respond(refusal(Errc::forbidden, "only the organisation a disclosure was sent to may acknowledge it",
                           "Communication.recipient"));
  }
  std::string status = str(*doc, "status");
  if (status == "completed") {
    // Already acknowledged: the same state, nothing written but the audit row.
    store::AuditRow row = audit::row(who, "operation", "Communication/" + id + "/$acknowledge", 200, req.audit_id(),
                                     patient, "already acknowledged");
    if (auto r = writes_.record({std::move(row)}); !r) return respond(fhir::outcome_response(r.error(), kRoute));
    return respond(answer(*stored));
  }
  if (status != "in-progress")
    return respond(refusal(Errc::conflict, "a Communication with status " + status + " cannot be acknowledged",
                           "Communication.status"));
  auto& a = doc->GetAllocator();
  std::string now = clock::iso_now();
  json::set(*doc, "status", "completed", a);
  json::set(*doc, "received", now, a);
  json::Value exts(rapidjson::kArrayType);
  if (const json::Value* old = json::member(*doc, "extension"); old && old->IsArray())
    for (const auto& e : old->GetArray())
      if (json::get_string(e, "url").value_or("") != kAcknowledgedByUrl) exts.PushBack(json::Value(e, a), a);
  exts.PushBack(acknowledged_by(who, now, a), a);
  json::set(*doc, "extension", std::move(exts), a);

  write::Request w;
  w.who = who;
  w.request_id = req.audit_id();
  // Communication is gateway-written (no role may update it): the operation
  // made its own policy and recipient checks above, and writes its own row.
  w.internal = true;
  write::Entry e;
  e.method = write::Method::put;
  e.type = "Communication";
  e.id = id;
  e.if_match = stored->version;  // a concurrent acknowledgement: one wins, the other answers its state
  e.resource = std::make_shared<json::Document>(std::move(*doc));
  w.entries.push_back(std::move(e));
  w.audit.push_back(audit::row(who, "operation", "Communication/" + id + "/$acknowledge", 200, req.audit_id(), patient,
                               "acknowledged: status completed, escalation cancelled"));
  w.timer_sets.push_back(
      store::TimerSet{std::string(events::kEscalationTimerKind), events::escalation_subject(id), {}});
  writes_.submit(std::move(w), [this, req, id, respond, retried](write::Outcome out) mutable {
    if (out.failure) {
      if (out.failure->code == Errc::conflict && !retried) {
        // Someone acknowledged it meanwhile: answer the state it is in now.
        auto again = store_.run_read([this, req, id, respond]() mutable { acknowledge(req, id, respond, true); });
        if (!again) respond(fhir::outcome_response(again.error(), kRoute));
        return;
      }
      if (!out.issues.empty()) return respond(fhir::issues_response(http_status_for(out.failure->code), out.issues, kRoute));
      return respond(fhir::outcome_response(*out.failure, kRoute));
    }
    const auto& eo = out.entries.at(0);
    store::StoredResource r{"Communication", id, eo.version, eo.last_updated, false, eo.body};
    respond(answer(r));
  });
}

}  // namespace gw::safeguarding
