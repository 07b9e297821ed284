#include "gateway/safeguarding/flows_api.h"

#include "gateway/audit/audit_rows.h"
#include "gateway/common/clock.h"
#include "gateway/common/json.h"
#include "gateway/common/log.h"
#include "gateway/events/booking_summary.h"
#include "gateway/events/flows/flow_kit.h"
#include "gateway/events/lac_assessments.h"
#include "gateway/fhir/responses.h"
#include "gateway/fhir/rest.h"
#include "gateway/identity/nhs_number.h"
#include "gateway/model/cpis_plan.h"
#include "gateway/model/resource_text.h"
#include "gateway/model/search_params.h"
#include "gateway/safeguarding/break_glass.h"

namespace gw::safeguarding {

namespace {

using events::flows::str;

std::vector<std::string_view> segments(std::string_view p) {
  std::vector<std::string_view> out;
  while (!p.empty()) {
    size_t s = p.find('/');
    if (s != 0) out.push_back(p.substr(0, s));
    if (s == std::string_view::npos) break;
    p = p.substr(s + 1);
  }
  return out;
}

// The value of one query parameter, percent-decoded ("" when absent).
std::string query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view kv = query.substr(0, amp);
    size_t eq = kv.find('=');
    if (kv.substr(0, eq) == name && eq != std::string_view::npos) {
      auto v = model::percent_decode(kv.substr(eq + 1), true);
      return v ? *v : std::string();
    }
    if (amp == std::string_view::npos) break;
    query = query.substr(amp + 1);
  }
  return {};
}

net::Response error_response(const Error& e, const char* route) { return fhir::outcome_response(e, route); }

// A Parameters resource: name -> valueString lines, plus any prepared parts.
class Params {
 public:
  Params() {
    doc_.SetObject();
    json::set(doc_, "resourceType", "Parameters", a());
    parts_ = json::array();
  }
  json::Allocator& a() { return doc_.GetAllocator(); }
  void value(std::string_view name, std::string_view kind, std::string_view v) {
    json::Value p(rapidjson::kObjectType);
    json::set(p, "name", name, a());
    json::set(p, kind, v, a());
    parts_.PushBack(p, a());
  }
  void boolean(std::string_view name, bool v) {
    json::Value p(rapidjson::kObjectType);
    json::set(p, "name", name, a());
    json::set(p, "valueBoolean", json::Value(v), a());
    parts_.PushBack(p, a());
  }
  void part(json::Value p) { parts_.PushBack(p, a()); }
  std::string text() {
    json::set(doc_, "parameter", std::move(parts_), a());
    return json::to_string(doc_);
  }

 private:
  json::Document doc_;
  json::Value parts_;
};

}  // namespace

FlowsApi::FlowsApi(store::Store& store, write::WriteService& writes, const security::Visibility& visibility,
                   std::shared_ptr<const events::FlowContext> flows, ChronologyRules rules, std::string public_base_url,
                   std::shared_ptr<const security::Relationships> relationships)
    : store_(store),
      writes_(writes),
      visibility_(visibility),
      flows_(std::move(flows)),
      rules_(std::move(rules)),
      base_(std::move(public_base_url)),
      relationships_(std::move(relationships)) {}

void FlowsApi::add_to(fhir::RestApi& rest) {
  rest.add_operation({"Patient", "chronology", "https://cpis-gateway.nhs.uk/OperationDefinition/chronology",
                      "GET Patient/{id}/$chronology or Patient/$chronology?identifier=https://fhir.nhs.uk/Id/nhs-number|"
                      "<nhs>: a Bundle (collection) whose first entry is a List (code chronology) of the child's "
                      "significant events, newest first, each referencing what the caller may read or a display-only "
                      "summary; sensitivity labels honoured; audited per call (docs/FLOWS.md)."},
                     this);
  rest.add_operation({"Patient", "booking-summary", "https://cpis-gateway.nhs.uk/OperationDefinition/booking-summary",
                      "GET Patient/{id}/$booking-summary: for the midwifery service that booked her, the booking's "
                      "completeness and what the shared record holds that the booking risk assessment must consider "
                      "(CP-IS plans, safeguarding concerns about her children, relapse indicators)."},
                     this);
  rest.add_operation({"CareTeam", "health-assessments",
                      "https://cpis-gateway.nhs.uk/OperationDefinition/health-assessments",
                      "GET CareTeam/{plan}/$health-assessments: the due, overdue and completed health assessments of a "
                      "looked-after-child plan, for the LAC health team serving the plan's local authority and the "
                      "authority."},
                     this);
}

void FlowsApi::audit(const net::Request& req, const std::string& what, const std::string& entity, int status,
                     const std::string& patient_ref, const std::string& detail) {
  store::UnitOfWork u;
  u.audit.push_back(audit::row(req.principal, "operation", entity + "/$" + what, status, req.audit_id(),
                               patient_ref, detail));
  auto r = store_.commit(std::move(u), [](Result<store::CommitOutcome> res) {
    if (!res) log::error("audit_write_failed", {{"reason", res.error().message}});
  });
  if (!r) log::error("audit_write_refused", {{"reason", r.error().message}});
}

void FlowsApi::handle(net::Request req, net::Respond respond) {
  auto seg = segments(req.path);  // fhir, Type, [id], $op
  if (seg.size() < 3 || req.method != "GET") {
    return respond(error_response(make_error(Errc::method_not_allowed, "these operations accept GET"), "fhir_operation"));
  }
  auto shared = std::make_shared<net::Respond>(std::move(respond));
  auto work = [this, shared, req = std::move(req), seg] {
    std::string op(seg.back());
    std::string id = seg.size() == 4 ? std::string(seg[2]) : std::string();
    net::Response r;
    std::optional<write::Request> record;
    if (op == "$chronology") {
      if (id.empty()) {
        std::string ident = query_param(req.query, "identifier");
        size_t bar = ident.find('|');
        if (bar == std::string::npos || ident.substr(0, bar) != identity::kNhsNumberSystem) {
          r = error_response(make_error(Errc::invalid_input,
                                        "identifier must be https://fhir.nhs.uk/Id/nhs-number|<NHS number>",
                                        "identifier"),
                             "fhir_chronology");
          audit(req, "chronology", "Patient", 400, "", "no NHS number identifier");
        } else if (auto nhs = identity::normalise_nhs_number(ident.substr(bar + 1)); !nhs) {
          r = error_response(make_error(Errc::invalid_input, "Invalid NHS number", "identifier"), "fhir_chronology");
          audit(req, "chronology", "Patient", 400, "", "invalid NHS number");
        } else if (auto found = store_.find_by_unique_key(*nhs); !found || !*found) {
          r = error_response(make_error(Errc::not_found, "no Patient with that NHS number", "identifier"),
                             "fhir_chronology");
          audit(req, "chronology", "Patient", 404, "", "");
        } else {
          auto a = chronology_call(req, **found);
          r = std::move(a.response);
          record = std::move(a.record);
        }
      } else {
        auto a = chronology_call(req, id);
        r = std::move(a.response);
        record = std::move(a.record);
      }
    } else if (op == "$booking-summary" && !id.empty()) {
      r = booking_summary_call(req, id);
    } else if (op == "$health-assessments" && !id.empty()) {
      r = assessments_call(req, id);
    } else {
      r = error_response(make_error(Errc::not_found, "no such operation here"), "fhir_operation");
    }
    if (!record) return (*shared)(std::move(r));
    // A break-glass access is answered only once its record (and so the
    // Caldicott guardian's notification) is durable: if it cannot be
    // recorded, nothing is shown.
    auto answer = std::make_shared<net::Response>(std::move(r));
    writes_.submit(std::move(*record), [shared, answer](write::Outcome out) {
      if (out.failure) {
        log::error("break_glass_record_failed", {{"reason", out.failure->message}});
        Error e = *out.failure;
        e.message = "the break-glass access could not be recorded, so nothing is shown: " + e.message;
        return (*shared)(error_response(e, "fhir_chronology"));
      }
      (*shared)(std::move(*answer));
    });
  };
  if (auto r = store_.run_read(std::move(work)); !r) (*shared)(error_response(r.error(), "fhir_operation"));
}

FlowsApi::Answer FlowsApi::chronology_call(const net::Request& req, const std::string& id) {
  const char* route = "fhir_chronology";
  const auto& who = req.principal;
  const auto& policy = visibility_.policy();
  if (!policy.allows_operation(who, "chronology")) {
    audit(req, "chronology", "Patient/" + id, 403, "", "refused: role");
    return {error_response(make_error(Errc::forbidden, "role '" + who.role + "' may not read a chronology"), route), {}};
  }
  if (!who.person && policy.users().person_required_for(who, security::kChronologyOperation)) {
    audit(req, "chronology", "Patient/" + id, 401, "", "refused: no user token");
    return {fhir::person_required_response("A child's chronology", route), {}};
  }
  // Legitimate relationship (profiles/policy/relationships.json): the
  // caller's organisation has the child on its caseload, or a break-glass reason.
  events::StoreLookup lookup(store_, flows_.get());
  Gate gate;
  if (!relationships_ || relationships_->required_for(security::kChronologyOperation))
    gate = relationship_gate(req, policy, lookup, id, false, "this child's chronology");
  if (!gate.open()) {
    static constexpr std::pair<Gate::Verdict, std::pair<int, const char*>> kAudit[] = {
        {Gate::Verdict::bad_reason, {400, "refused: break-glass reason out of bounds"}},
        {Gate::Verdict::refused, {403, "refused: not on the organisation's caseload"}},
        {Gate::Verdict::needs_person, {401, "refused: break-glass without a user token"}}};
    for (const auto& [v, a] : kAudit)
      if (v == gate.verdict) audit(req, "chronology", "Patient/" + id, a.first, "", a.second);
    return {gate_refusal(gate, route), {}};
  }
  std::string base = (base_.empty() ? req.base_url : base_) + "/fhir";
  auto c = chronology(store_, visibility_, who, id, rules_, *flows_->area, base);
  if (!c) {
    audit(req, "chronology", "Patient/" + id, http_status_for(c.error().code), "", "");
    return {error_response(c.error(), route), {}};
  }
  std::string detail = std::to_string(c->entries) + " entries, " + std::to_string(c->summarised) + " display-only, " +
                       std::to_string(c->withheld) + " withheld for this role";
  net::Response r;
  r.route = route;
  r.body = std::move(c->bundle);
  if (gate.verdict != Gate::Verdict::break_glass) {
    audit(req, "chronology", "Patient/" + id, 200, "Patient/" + id, detail);
    return {std::move(r), {}};
  }
  // Break-glass: the access and its reason in the trail (purpose BTG), and
  // the record the topic break-glass tells the Caldicott guardian of.
  const std::string what = "Patient/" + id + "/$chronology";
  auto w = break_glass_record(req, id, what, "operation", what, detail, gate.reason);
  if (!w) return {error_response(w.error(), route), {}};
  return {std::move(r), std::move(*w)};
}

net::Response FlowsApi::booking_summary_call(const net::Request& req, const std::string& id) {
  const char* route = "fhir_booking_summary";
  const auto& who = req.principal;
  if (!visibility_.policy().allows_operation(who, "booking-summary")) {
    audit(req, "booking-summary", "Patient/" + id, 403, "", "refused: role");
    return error_response(make_error(Errc::forbidden, "role '" + who.role + "' may not read a booking summary"), route);
  }
  events::StoreLookup lookup(store_, flows_.get());
  std::optional<events::Booking> booking;
  for (const auto& ep : lookup.about("EpisodeOfCare", id)) {
    if (str(ep, "status") != "active") continue;
    auto b = events::booking_for_episode(ep, str(ep, "id"), lookup);
    // Only the service that booked her (admin: any booking).
    if (b && (b->service == who.ods || visibility_.policy().allows_operation(who, "admin")) &&
        (!booking || b->booking_date > booking->booking_date))
      booking = std::move(b);
  }
  if (!booking) {
    audit(req, "booking-summary", "Patient/" + id, 404, "", "no booking of the caller's service");
    return error_response(make_error(Errc::not_found, "no active pregnancy booking of your service for this Patient"),
                          route);
  }
  Params p;
  auto missing = events::booking_missing(*booking, lookup, *flows_);
  json::Value ref(rapidjson::kObjectType);
  json::Value bref(rapidjson::kObjectType);
  json::set(bref, "reference", "EpisodeOfCare/" + booking->episode_id, p.a());
  json::set(ref, "name", "booking", p.a());
  json::set(ref, "valueReference", std::move(bref), p.a());
  p.part(std::move(ref));
  p.boolean("complete", missing.empty());
  for (const auto& m : missing) p.value("missing", "valueString", m);
  for (const auto& l : events::booking_summary_lines(booking->woman, lookup, *flows_)) p.value("summary", "valueString", l);
  audit(req, "booking-summary", "Patient/" + id, 200, "Patient/" + id, "");
  net::Response r;
  r.route = route;
  r.body = p.text();
  return r;
}

net::Response FlowsApi::assessments_call(const net::Request& req, const std::string& id) {
  const char* route = "fhir_health_assessments";
  const auto& who = req.principal;
  if (!visibility_.policy().allows_operation(who, "health-assessments")) {
    audit(req, "health-assessments", "CareTeam/" + id, 403, "", "refused: role");
    return error_response(make_error(Errc::forbidden, "role '" + who.role + "' may not list health assessments"), route);
  }
  auto stored = store_.read("CareTeam", id);
  events::StoreLookup lookup(store_, flows_.get());
  std::optional<json::Document> plan;
  if (stored && !visibility_.hidden_from(who, *stored, "read"))
    if (auto d = json::parse(stored->body)) plan = std::move(*d);
  auto s = plan ? events::lac_schedule(id, *plan, lookup, *flows_) : std::nullopt;
  // The LAC health team serving the plan's authority, or the authority itself.
  bool serves = s && (flows_->area->lac_health_for_authority(s->authority) == who.ods || s->authority == who.ods ||
                      visibility_.policy().allows_operation(who, "admin"));
  if (!s || !serves) {
    audit(req, "health-assessments", "CareTeam/" + id, 404, "", "not a LAC plan this caller serves");
    return error_response(make_error(Errc::not_found, "no looked-after-child plan CareTeam/" + id + " that you serve"),
                          route);
  }
  Params p;
  json::Value planp(rapidjson::kObjectType);
  json::Value pref(rapidjson::kObjectType);
  json::set(pref, "reference", "CareTeam/" + id, p.a());
  json::set(planp, "name", "plan", p.a());
  json::set(planp, "valueReference", std::move(pref), p.a());
  p.part(std::move(planp));
  p.boolean("active", s->active);
  if (!s->error.empty()) p.value("calendarError", "valueString", s->error);
  for (const auto& a : s->assessments) {
    json::Value part(rapidjson::kObjectType);
    json::set(part, "name", "assessment", p.a());
    json::Value parts(rapidjson::kArrayType);
    auto add = [&](std::string_view name, std::string_view kind, std::string_view v) {
      if (v.empty()) return;
      json::Value x(rapidjson::kObjectType);
      json::set(x, "name", name, p.a());
      if (kind == "valueReference") {
        json::Value r(rapidjson::kObjectType);
        json::set(r, "reference", v, p.a());
        json::set(x, kind, std::move(r), p.a());
      } else {
        json::set(x, kind, v, p.a());
      }
      parts.PushBack(x, p.a());
    };
    add("kind", "valueCode", a.kind);
    add("due", "valueDate", a.due);
    add("status", "valueCode", a.status);
    add("completed", "valueDate", a.completed);
    add("evidence", "valueReference", a.evidence);
    json::set(part, "part", std::move(parts), p.a());
    p.part(std::move(part));
  }
  audit(req, "health-assessments", "CareTeam/" + id, 200, "Patient/" + s->patient_id, "");
  net::Response r;
  r.route = route;
  r.body = p.text();
  return r;
}

}  // namespace gw::safeguarding
