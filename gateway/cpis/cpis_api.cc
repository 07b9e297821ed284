#include "gateway/cpis/cpis_api.h"

#include <openssl/evp.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <memory>

#include "gateway/audit/audit_rows.h"
#include "gateway/audit/person.h"
#include "gateway/audit/trail_search.h"
#include "gateway/common/issues.h"
#include "gateway/common/json_out.h"
#include "gateway/common/log.h"
#include "gateway/fhir/responses.h"
#include "gateway/events/patient_refs.h"
#include "gateway/model/bundle.h"
#include "gateway/model/cpis_plan.h"
#include "gateway/model/resource_text.h"
#include "gateway/model/search_params.h"
#include "gateway/identity/nhs_number.h"

namespace gw::cpis {

using net::Request;
using net::Respond;
using net::Response;

namespace {

constexpr int kMaxPlansPerPerson = 200;  // far above the three plan types a person can hold
constexpr int kMaxFlagsInView = 1000;
constexpr int kMaxTrailPage = 1000;  // the REST API's _count ceiling

// ---- the national API's errors (CP-IS producer IG, Error handling) ---------

Response national_error(int status, std::string_view issue_code, std::string_view code, std::string_view diagnostics,
                        const char* route) {
  Response r;
  r.status = status;
  r.route = route;
  r.body = operation_outcome_coded(issue_code, cpis::kSpineErrorSystem, code, diagnostics);
  return r;
}

Response invalid_nhs_number(const char* route) {
  return national_error(400, "invalid", "INVALID_SEARCH_DATA", "Invalid NHS number", route);
}
// The national guide's text reads "head parameter"; CPIS.md words it "header".
Response invalid_header(const char* route) {
  return national_error(400, "invalid", "PRECONDITION_FAILED", "Missing or invalid header parameter", route);
}
Response access_denied(const char* route) {
  return national_error(403, "forbidden", "ACCESS_DENIED", "Access has been denied to process this request", route);
}

Response error_response(const Error& e, const char* route) {
  Response r;
  r.status = http_status_for(e.code);
  r.body = operation_outcome(e);
  r.route = route;
  return r;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// A header value fit to be recorded: printable ASCII, bounded. Anything else
// is dropped rather than stored (it is the caller's free text).
std::string recordable(std::optional<std::string_view> v, size_t max = 128) {
  if (!v || v->empty() || v->size() > max) return {};
  for (char c : *v)
    if (c < 0x20 || c > 0x7e) return {};
  return std::string(*v);
}

std::string now_instant() {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

// AuditEvent ids that sort in the order the accesses were recorded: the
// store orders by last_updated and then by id, and many accesses share a
// millisecond. A clock-seeded counter keeps the order across restarts (as
// long as the clock does not go back); the uuid keeps ids unguessable.
std::string sortable_id() {
  static std::atomic<uint64_t> last{0};
  uint64_t now = static_cast<uint64_t>(
                     std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count()) *
                 1000;
  uint64_t prev = last.load();
  uint64_t next;
  do {
    next = std::max(prev + 1, now);
  } while (!last.compare_exchange_weak(prev, next));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%020llu", static_cast<unsigned long long>(next));
  return std::string(buf) + "-" + model::new_uuid();
}

std::string base64(std::string_view s) {
  std::string out(4 * ((s.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

using json::Out;

constexpr std::string_view kDcm = "http://dicom.nema.org/resources/ontology/DCM";
constexpr std::string_view kEntityType = "http://terminology.hl7.org/CodeSystem/audit-entity-type";
constexpr std::string_view kObjectRole = "http://terminology.hl7.org/CodeSystem/object-role";

void entity(Out& o, std::string_view type_code, std::string_view type_display, std::string_view role_code,
            std::string_view role_display, const std::function<void()>& what) {
  o.w.StartObject();
  if (what) {
    o.w.Key("what");
    what();
  }
  o.w.Key("type");
  o.coding(kEntityType, type_code, type_display);
  o.w.Key("role");
  o.coding(kObjectRole, role_code, role_display);
  o.w.EndObject();
}

}  // namespace

// ---- the AuditEvent and the derived Flag ----------------------------------------

std::string access_audit_event(const Access& a) {
  Out o;
  o.w.StartObject();
  o.kv("resourceType", "AuditEvent");
  o.w.Key("meta");
  o.w.StartObject();
  o.w.Key("tag");
  o.w.StartArray();
  o.coding(kAccessTagSystem, a.unscheduled ? "unscheduled" : "scheduled",
           a.unscheduled ? "Unscheduled-care CP-IS access" : "Scheduled-care CP-IS access (silent read)");
  o.w.EndArray();
  o.w.EndObject();
  o.w.Key("type");
  o.coding("http://terminology.hl7.org/CodeSystem/audit-event-type", "rest", "Restful Operation");
  o.w.Key("subtype");
  o.w.StartArray();
  o.coding("http://hl7.org/fhir/restful-interaction", "search-type", "search type");
  o.w.EndArray();
  o.kv("action", "E");
  o.kv("recorded", a.recorded);
  o.kv("outcome", "0");
  auto purpose = [&] {
    o.w.StartArray();
    o.codeable("http://terminology.hl7.org/CodeSystem/v3-ActReason", a.unscheduled ? "ETREAT" : "TREAT",
              a.unscheduled ? "Emergency Treatment" : "treatment");
    o.w.EndArray();
  };
  o.w.Key("purposeOfEvent");
  purpose();

  o.w.Key("agent");
  o.w.StartArray();
  // The calling system of the organisation (certificate O= and CN=): BALP's client.
  o.w.StartObject();
  audit::system_agent_members(o, a.caller, !a.person && a.user_role_profile.empty() && a.user_name.empty());
  if (!a.remote.empty()) {
    o.w.Key("network");
    o.w.StartObject();
    o.kv("address", a.remote);
    o.kv("type", "2");  // IP address
    o.w.EndObject();
  }
  o.w.EndObject();
  // The gateway answering: BALP's server.
  o.w.StartObject();
  o.w.Key("type");
  o.codeable(kDcm, "110152", "Destination Role ID");
  o.w.Key("who");
  o.w.StartObject();
  o.kv("type", "Device");
  o.kv("display", "cpis-gateway");
  o.w.EndObject();
  o.w.Key("requestor");
  o.w.Bool(false);
  o.w.EndObject();
  // The person: from a verified user token; else as the caller said
  // (national RBAC role profile, name).
  if (a.person) {
    audit::person_agent(o, *a.person, "http://terminology.hl7.org/CodeSystem/v3-ActReason", "ETREAT",
                        "Emergency Treatment");
  } else if (!a.user_role_profile.empty() || !a.user_name.empty()) {
    o.w.StartObject();
    o.w.Key("type");
    o.codeable("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "IRCP", "information recipient");
    if (!a.user_role_profile.empty()) {
      o.w.Key("who");
      o.w.StartObject();
      o.kv("type", "PractitionerRole");
      o.w.Key("identifier");
      o.w.StartObject();
      o.kv("system", kRoleProfileSystem);
      o.kv("value", a.user_role_profile);
      o.w.EndObject();
      o.w.EndObject();
    }
    if (!a.user_name.empty()) o.kv("name", a.user_name);
    o.w.Key("requestor");
    o.w.Bool(true);
    o.w.Key("purposeOfUse");
    purpose();
    o.w.EndObject();
  }
  o.w.EndArray();

  o.w.Key("source");
  o.w.StartObject();
  o.kv("site", "cpis-gateway");
  o.w.Key("observer");
  o.w.StartObject();
  o.kv("type", "Device");
  o.kv("display", "cpis-gateway");
  o.w.EndObject();
  o.w.Key("type");
  o.w.StartArray();
  o.coding("http://terminology.hl7.org/CodeSystem/security-source-type", "4", "Application Server");
  o.w.EndArray();
  o.w.EndObject();

  o.w.Key("entity");
  o.w.StartArray();
  entity(o, "1", "Person", "1", "Patient", [&] {
    o.w.StartObject();
    o.kv("reference", "Patient/" + a.patient_id);
    o.w.Key("identifier");
    o.w.StartObject();
    o.kv("system", identity::kNhsNumberSystem);
    o.kv("value", a.nhs_number);
    o.w.EndObject();
    o.w.EndObject();
  });
  for (const auto& id : a.plan_ids) {
    entity(o, "2", "System Object", "4", "Domain Resource", [&] {
      o.w.StartObject();
      o.kv("reference", "CareTeam/" + id);
      o.w.EndObject();
    });
  }
  if (!a.trace_id.empty()) {
    // BALP's transaction entity, carrying the national API's TraceID.
    o.w.StartObject();
    o.w.Key("what");
    o.w.StartObject();
    o.w.Key("identifier");
    o.w.StartObject();
    o.kv("system", kTraceIdSystem);
    o.kv("value", a.trace_id);
    o.w.EndObject();
    o.w.EndObject();
    o.w.Key("type");
    o.coding("https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType", "XrequestId", "X-Request-Id");
    o.w.Key("detail");
    o.w.StartArray();
    o.w.StartObject();
    o.kv("type", "TraceID");
    o.kv("valueString", a.trace_id);
    o.w.EndObject();
    o.w.EndArray();
    o.w.EndObject();
  }
  // BALP's query entity: the search as sent (base64) and which parameters it used.
  o.w.StartObject();
  o.w.Key("type");
  o.coding(kEntityType, "2", "System Object");
  o.w.Key("role");
  o.coding(kObjectRole, "24", "Query");
  o.kv("description", a.resource_type + "?patient:identifier");
  o.kv("query", base64(a.query));
  o.w.EndObject();
  o.w.EndArray();
  o.w.EndObject();
  return o.text();
}

std::string derived_flag(const json::Value& care_team, const std::string& care_team_id) {
  const model::cpis::PlanType* t = model::cpis::plan_type_of(care_team);
  Out o;
  o.w.StartObject();
  o.kv("resourceType", "Flag");
  o.w.Key("extension");
  o.w.StartArray();
  o.w.StartObject();
  o.kv("url", kPlanReferenceUrl);
  o.w.Key("valueReference");
  o.w.StartObject();
  o.kv("reference", "CareTeam/" + care_team_id);
  o.w.EndObject();
  o.w.EndObject();
  o.w.EndArray();
  o.kv("status", "active");
  o.w.Key("category");
  o.w.StartArray();
  o.codeable("https://cpis-gateway.nhs.uk/CodeSystem/flag-category", "CP-IS",
            "Child Protection - Information Sharing Flag");
  o.w.EndArray();
  o.w.Key("code");
  if (t) {
    o.codeable(model::cpis::kSnomed, t->snomed, t->display);
  } else {  // only plans are passed in; a code is required all the same
    o.w.StartObject();
    o.kv("text", "CP-IS plan");
    o.w.EndObject();
  }
  if (const json::Value* subject = json::member(care_team, "subject")) {
    o.w.Key("subject");
    o.raw(*subject);
  }
  if (const json::Value* period = json::member(care_team, "period")) {
    o.w.Key("period");
    o.raw(*period);
  }
  const json::Value* mo = json::member(care_team, "managingOrganization");
  if (mo && mo->IsArray() && !mo->Empty()) {
    o.w.Key("author");
    o.raw((*mo)[0]);
  }
  o.w.EndObject();
  return o.text();
}

// ---- routing ---------------------------------------------------------------------

struct CpisApi::Query {
  std::string nhs;          // normalised; empty when the query's NHS number is invalid
  bool nhs_invalid = false;
  std::optional<bool> unscheduled;  // IsUnscheduledAccessEvent, when sent and valid
  bool header_invalid = false;      // sent but neither true nor false
  int count = 20;
  int64_t offset = 0;
};

namespace {

bool national_headers(const Request& req) {
  return req.header("isunscheduledaccessevent").has_value() || req.header("traceid").has_value();
}

// The NHS number of patient:identifier=https://fhir.nhs.uk/Id/nhs-number|{nhs}
// (exactly one), or "" when it is missing or not a valid NHS number.
std::string nhs_number_of(const model::SearchRequest& sr) {
  if (sr.patient_identifier.size() != 1 || sr.patient_identifier[0].size() != 1) return {};
  const model::TokenValue& t = sr.patient_identifier[0][0];
  if (!t.has_system || t.system != identity::kNhsNumberSystem) return {};
  auto n = identity::normalise_nhs_number(t.value);
  return n ? *n : std::string();
}

// Constraints beyond the NHS number: such a Flag search stays an ordinary search.
bool only_patient_identifier(const model::SearchRequest& sr) {
  return sr.ids.empty() && sr.identifier.empty() && sr.patient_refs.empty() && sr.subject_refs.empty() &&
         sr.subject_identifier.empty() && sr.last_updated.empty() && sr.patient_identifier.size() == 1;
}

// The national AuditEvent query adds _include=AuditEvent:entity-type=…|ASSIGNED;
// the agents it would include are inside each AuditEvent already, so it is
// dropped before the general search parser (which includes Patients only).
std::string without_national_include(std::string_view query) {
  if (query.starts_with('?')) query.remove_prefix(1);
  std::string out;
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view pair = query.substr(pos, amp - pos);
    pos = amp + 1;
    bool national = pair.starts_with("_include=") && pair.find("entity-type") != std::string_view::npos;
    if (pair.empty() || national) continue;
    if (!out.empty()) out.push_back('&');
    out.append(pair);
  }
  return out;
}

}  // namespace

namespace {

bool has_param(std::string_view query, std::string_view name) {
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view pair = query.substr(pos, amp - pos);
    if (pair.substr(0, pair.find('=')) == name) return true;
    pos = amp + 1;
  }
  return false;
}

// GET /fhir/AuditEvent without patient:identifier: the gateway's own audit
// trail, BALP-shaped (audit/trail_search.h). Commissioners and admins
// (operation audit-trail) see all of it; every other role that may search
// AuditEvent only the events of its own organisation (it acted, or its
// record left). The search is itself audited.
void trail_search(CpisContext& ctx, Request req, Respond respond) {
  const char* route = "audit_trail";
  bool whole_trail = ctx.policy.allows_operation(req.principal, cpis::kTrailOperation);
  if (!whole_trail && !ctx.policy.allows(req.principal, "AuditEvent", "search")) {
    (void)ctx.writes.record({audit::row(req.principal, "audit-search", "AuditEvent", 403, req.audit_id())});
    return respond(access_denied(route));
  }
  auto q = audit::parse_trail_query(req.query, kMaxTrailPage);
  if (!q) return respond(error_response(q.error(), route));
  if (!whole_trail) q->organisation = req.principal.ods;
  auto shared = std::make_shared<Respond>(std::move(respond));
  auto r = ctx.store.run_read([&ctx, shared, req = std::move(req), q = std::move(*q), route]() mutable {
    Respond& respond = *shared;
    auto page = ctx.store.search_audit(q);
    if (!page) return respond(error_response(page.error(), route));
    if (auto a = ctx.writes.record({audit::row(req.principal, "audit-search", "AuditEvent", 200,
                                               req.audit_id())});
        !a)
      return respond(error_response(a.error(), route));
    Response resp;
    resp.route = route;
    resp.body = audit::trail_bundle(ctx.base(req), req.query, *page, q.count, q.offset);
    respond(std::move(resp));
  });
  if (!r) (*shared)(error_response(r.error(), route));
}

}  // namespace

bool CpisApi::handles(const std::string& type, const Request& req) const {
  if (type == "AuditEvent") return true;
  if (type == "CareTeam") return national_headers(req);
  if (type != "Flag" || !ctx_.policy.allows_operation(req.principal, cpis::kQueryOperation)) return false;
  auto sr = model::parse_search(type, req.query, false);
  if (!sr || !only_patient_identifier(*sr)) return false;
  for (const auto& t : sr->patient_identifier[0])
    if (!t.has_system || t.system != identity::kNhsNumberSystem) return false;
  return true;
}

void CpisApi::search(const std::string& type, Request req, Respond respond) {
  if (type == "AuditEvent" && !has_param(req.query, "patient:identifier"))
    return trail_search(ctx_, std::move(req), std::move(respond));
  const char* route = type == "AuditEvent" ? "cpis_audit_event" : type == "Flag" ? "cpis_flag" : "cpis_care_team";
  bool allowed = type == "AuditEvent" ? ctx_.policy.allows(req.principal, "AuditEvent", "search")
                                      : ctx_.policy.allows_operation(req.principal, cpis::kQueryOperation);
  if (!allowed) {
    (void)ctx_.writes.record({audit::row(req.principal, "search", type + "?patient:identifier", 403, req.audit_id())});
    return respond(access_denied(route));
  }
  Query q;
  if (auto h = req.header("isunscheduledaccessevent")) {
    if (iequals(*h, "true")) q.unscheduled = true;
    else if (iequals(*h, "false")) q.unscheduled = false;
    else q.header_invalid = true;
  }
  // The header is required on the CareTeam query; on a Flag view it is
  // optional but, when sent, must be valid and is honoured the same way.
  if (q.header_invalid || (type == "CareTeam" && !q.unscheduled)) return respond(invalid_header(route));
  // A system people sit at names the person for an unscheduled query, so
  // the local authority's access record says who looked (users.json).
  if (type != "AuditEvent" && q.unscheduled.value_or(false) && !req.principal.person &&
      ctx_.policy.users().person_required_for(req.principal, security::kCpisUnscheduledQuery)) {
    (void)ctx_.writes.record(
        {audit::row(req.principal, "search", type + "?patient:identifier", 401, req.audit_id(), {}, "refused: no user token")});
    return respond(fhir::person_required_response("An unscheduled-care CP-IS query from this system", route));
  }
  auto sr = model::parse_search(type, type == "AuditEvent" ? without_national_include(req.query) : req.query, false);
  if (!sr) {
    if (sr.error().expression.rfind("patient", 0) == 0) return respond(invalid_nhs_number(route));
    return respond(error_response(sr.error(), route));
  }
  q.nhs = nhs_number_of(*sr);
  if (q.nhs.empty()) return respond(invalid_nhs_number(route));
  q.count = std::clamp(sr->count, 0, kMaxTrailPage);
  q.offset = sr->offset;
  if (type == "AuditEvent") return audit_events(std::move(req), std::move(respond), q);
  if (type == "Flag") return flags(std::move(req), std::move(respond), q);
  care_team(std::move(req), std::move(respond), q);
}

namespace {

template <class Fn>
void on_reader(store::Store& store, Respond respond, const char* route, Fn fn) {
  auto shared = std::make_shared<Respond>(std::move(respond));
  auto r = store.run_read([shared, fn = std::move(fn)]() mutable { fn(*shared); });
  if (!r) (*shared)(error_response(r.error(), route));
}

struct Plans {
  std::string patient_id;                      // "" when no Patient holds the NHS number
  std::vector<store::StoredResource> in_scope;  // plan CareTeams, oldest first
};

// The plans in scope today for the person with this NHS number. A CareTeam
// that is not a plan (a health-visiting team, say) is not a CP-IS answer.
Result<Plans> plans_in_scope(store::Store& store, const std::string& nhs, const std::string& today,
                             const std::vector<std::string>& hidden) {
  Plans out;
  auto pid = store.find_by_unique_key(nhs);
  if (!pid) return pid.error();
  if (!*pid) return out;
  out.patient_id = **pid;
  store::SearchQuery q;
  q.type = "CareTeam";
  q.params.push_back(store::ParamConstraint{"patient", {{"", "Patient/" + out.patient_id}}});
  q.exclude_security = hidden;
  q.count = kMaxPlansPerPerson;
  q.want_total = false;
  auto page = store.search(q);
  if (!page) return page.error();
  for (auto& r : page->items) {
    auto d = json::parse(r.body);
    if (d && model::cpis::plan_type_of(*d) && model::cpis::in_scope(*d, today)) out.in_scope.push_back(std::move(r));
  }
  return out;
}

std::vector<std::string> ids_of(const std::vector<store::StoredResource>& rs) {
  std::vector<std::string> out;
  for (const auto& r : rs) out.push_back(r.id);
  return out;
}

}  // namespace

void CpisApi::care_team(Request req, Respond respond, Query q) {
  const char* route = "cpis_care_team";
  on_reader(ctx_.store, std::move(respond), route, [this, req = std::move(req), q, route](Respond& respond) {
    auto plans = plans_in_scope(ctx_.store, q.nhs, ctx_.today(), ctx_.policy.hidden_labels(req.principal));
    if (!plans) return respond(error_response(plans.error(), route));
    store::SearchPage page;
    page.total = static_cast<int64_t>(plans->in_scope.size());
    page.items = std::move(plans->in_scope);
    std::string body = model::searchset_bundle(ctx_.base(req), "CareTeam", req.query, page, kMaxPlansPerPerson, 0, {});
    answer_after_recording(req, respond, q, "CareTeam", plans->patient_id, ids_of(page.items), std::move(body), route);
  });
}

void CpisApi::flags(Request req, Respond respond, Query q) {
  const char* route = "cpis_flag";
  on_reader(ctx_.store, std::move(respond), route, [this, req = std::move(req), q, route](Respond& respond) {
    auto hidden = ctx_.policy.hidden_labels(req.principal);
    auto plans = plans_in_scope(ctx_.store, q.nhs, ctx_.today(), hidden);
    if (!plans) return respond(error_response(plans.error(), route));
    store::SearchPage stored;
    if (!plans->patient_id.empty()) {
      store::SearchQuery sq;
      sq.type = "Flag";
      sq.params.push_back(store::ParamConstraint{"patient", {{"", "Patient/" + plans->patient_id}}});
      sq.exclude_security = hidden;
      sq.count = kMaxFlagsInView;
      auto page = ctx_.store.search(sq);
      if (!page) return respond(error_response(page.error(), route));
      stored = std::move(*page);
    }
    std::vector<std::string> derived;
    events::StoreLookup lookup(ctx_.store);  // the child's NHS number on the Flag's subject
    for (const auto& plan : plans->in_scope) {
      auto d = json::parse(plan.body);
      if (!d) continue;
      // Not stored, so not addressable: a urn:uuid names the entry.
      derived.push_back("{\"fullUrl\":" + model::quoted("urn:uuid:" + model::new_uuid()) + ",\"resource\":" +
                        events::identify_subjects_text(cpis::derived_flag(*d, plan.id), lookup) +
                        ",\"search\":{\"mode\":\"match\"}}");
    }
    std::string body = model::searchset_bundle(ctx_.base(req), "Flag", req.query, stored, kMaxFlagsInView, 0, {}, {}, derived);
    answer_after_recording(req, respond, q, "Flag", plans->patient_id, ids_of(plans->in_scope), std::move(body), route);
  });
}

// An unscheduled access that shows a plan is recorded (and so notified) before
// the answer leaves: if the record cannot be committed, nothing is shown.
// Everything else is an ordinary read audit row, committed without waiting.
void CpisApi::answer_after_recording(const Request& req, Respond& respond, const Query& q, const std::string& type,
                                     const std::string& patient_id, std::vector<std::string> plan_ids,
                                     std::string body, const char* route) {
  std::string patient_ref = patient_id.empty() ? std::string() : "Patient/" + patient_id;
  bool record = q.unscheduled.value_or(false) && !plan_ids.empty();
  store::AuditRow row = audit::row(req.principal, "search", type + "?patient:identifier", 200, req.audit_id(), patient_ref);
  row.detail = std::string(q.unscheduled ? (*q.unscheduled ? "cpis unscheduled" : "cpis scheduled") : "cpis") +
               "; plans in scope: " + std::to_string(plan_ids.size());
  // What the data-flow reports count: plans found, and unscheduled care as
  // its own purpose of use; the user behind the system when the caller said.
  row.items = static_cast<int64_t>(plan_ids.size());
  if (q.unscheduled.value_or(false)) row.purpose = std::string(audit::kPurposeEmergency);
  // A verified user token names the person (audit::row put it in); else the
  // national API's role-profile header, as the caller said.
  if (!req.principal.person) row.person = recordable(req.header("nhsd-session-urid"));
  Response resp;
  resp.route = route;
  resp.body = std::move(body);
  if (!record) {
    // A refused audit row (the queue is full) shows nothing.
    if (auto r = ctx_.writes.record({std::move(row)}); !r) return respond(error_response(r.error(), route));
    return respond(std::move(resp));
  }
  cpis::Access a;
  a.unscheduled = true;
  a.caller = req.principal;
  a.remote = req.remote;
  a.user_role_profile = recordable(req.header("nhsd-session-urid"));
  a.user_name = recordable(req.header("x-user-name"));
  a.person = req.principal.person;
  a.trace_id = recordable(req.header("traceid"));
  a.nhs_number = q.nhs;
  a.patient_id = patient_id;
  a.plan_ids = std::move(plan_ids);
  a.query = req.query;
  a.resource_type = type;
  a.recorded = now_instant();
  auto doc = json::parse(cpis::access_audit_event(a));
  if (!doc) return respond(error_response(doc.error(), route));
  // The access record is the gateway's own (no role writes AuditEvents);
  // its id sorts in the order the accesses were recorded.
  write::Entry e;
  e.method = write::Method::put;
  e.type = "AuditEvent";
  e.id = sortable_id();
  json::set(*doc, "id", std::string_view(e.id), doc->GetAllocator());
  e.resource = std::make_shared<json::Document>(std::move(*doc));
  write::Request w;
  w.who = req.principal;
  w.request_id = req.audit_id();
  w.internal = true;
  w.entries.push_back(std::move(e));
  w.audit.push_back(std::move(row));
  auto shared_resp = std::make_shared<Respond>(std::move(respond));
  auto answer = std::make_shared<Response>(std::move(resp));
  ctx_.writes.submit(std::move(w), [shared_resp, answer, route](write::Outcome out) {
    if (out.failure) {
      log::error("cpis_access_record_failed", {{"reason", out.failure->message}});
      Error e = *out.failure;
      e.message = "the access could not be recorded, so nothing is shown: " + e.message;
      return (*shared_resp)(error_response(e, route));
    }
    (*shared_resp)(std::move(*answer));
  });
}

void CpisApi::audit_events(Request req, Respond respond, Query q) {
  const char* route = "cpis_audit_event";
  bool whole_trail = ctx_.policy.allows_operation(req.principal, cpis::kTrailOperation);
  on_reader(ctx_.store, std::move(respond), route,
            [this, req = std::move(req), q, whole_trail, route](Respond& respond) {
              store::SearchPage page;
              std::string patient_ref;
              auto pid = ctx_.store.find_by_unique_key(q.nhs);
              if (!pid) return respond(error_response(pid.error(), route));
              int count = whole_trail ? q.count : cpis::kRecentAccesses;
              int64_t offset = whole_trail ? q.offset : 0;
              if (*pid) {
                patient_ref = "Patient/" + **pid;
                store::SearchQuery sq;
                sq.type = "AuditEvent";
                sq.params.push_back(store::ParamConstraint{"patient", {{"", patient_ref}}});
                if (!whole_trail) {
                  sq.params.push_back(
                      store::ParamConstraint{"_tag", {{std::string(cpis::kAccessTagSystem), "unscheduled"}}});
                }
                sq.newest_first = true;
                sq.count = count;
                sq.offset = offset;
                sq.want_total = whole_trail;
                auto res = ctx_.store.search(sq);
                if (!res) return respond(error_response(res.error(), route));
                page = std::move(*res);
                if (!whole_trail) page.total = static_cast<int64_t>(page.items.size());
              }
              if (auto r = ctx_.writes.record({audit::row(req.principal, "search", "AuditEvent?patient:identifier", 200,
                                                          req.audit_id(), patient_ref)});
                  !r)
                return respond(error_response(r.error(), route));
              Response resp;
              resp.route = route;
              // _include=AuditEvent:entity-type=… (sent by national clients) adds nothing
              // here: the agents it would include are inside each AuditEvent already.
              resp.body = model::searchset_bundle(ctx_.base(req), "AuditEvent", req.query, page, count, offset, {});
              respond(std::move(resp));
            });
}

}  // namespace gw::cpis
