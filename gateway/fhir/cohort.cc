#include "gateway/fhir/cohort.h"

#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

#include "gateway/common/issues.h"
#include "gateway/common/json.h"
#include "gateway/common/log.h"
#include "gateway/events/matcher.h"
#include "gateway/model/cpis_plan.h"
#include "gateway/cpis/cpis_plans_held.h"
#include "gateway/model/resource_text.h"
#include "gateway/security/visibility.h"
#include "gateway/identity/nhs_number.h"

namespace gw::fhir {

namespace {

constexpr const char* kRoute = "fhir_safeguarding_cohort";
constexpr std::string_view kFamilyLink = "https://cpis-gateway.nhs.uk/Id/family-link";

// One `nhsNumber` parameter as asked: its place in the request and the
// normalised number ("" when it is not a valid NHS number).
struct Asked {
  size_t index = 0;
  std::string nhs;
};

struct Plan {
  const model::cpis::PlanType* type = nullptr;
  std::string la_ods, la_name, emergency, office_hours, start, end;
};

struct Child {
  std::string nhs;
  std::vector<Plan> plans;
};

net::Response outcome_response(const Error& e) {
  net::Response r;
  r.status = http_status_for(e.code);
  r.body = operation_outcome(e);
  r.route = kRoute;
  return r;
}

std::string parameter_path(size_t i) { return "Parameters.parameter[" + std::to_string(i) + "]"; }

// The number a parameter carries, or nullopt when it carries none.
std::optional<std::string_view> number_of(const json::Value& p) {
  if (auto s = json::get_string(p, "valueString")) return s;
  const json::Value* id = json::member(p, "valueIdentifier");
  if (!id || !id->IsObject()) return std::nullopt;
  auto sys = json::get_string(*id, "system");
  if (sys && *sys != identity::kNhsNumberSystem) return std::nullopt;
  return json::get_string(*id, "value");
}

// The request body as a list of numbers; an invalid number is an issue
// naming its parameter, not a failure of the whole request.
Result<std::vector<Asked>> read_request(std::string_view body, std::vector<Issue>& issues) {
  auto doc = json::parse(body);
  if (!doc) return doc.error();
  auto rt = doc->IsObject() ? json::get_string(*doc, "resourceType") : std::nullopt;
  if (!rt || *rt != "Parameters") {
    return make_error(Errc::invalid_input, "the body must be a Parameters resource", "resourceType");
  }
  const json::Value* ps = json::member(*doc, "parameter");
  if (!ps || !ps->IsArray() || ps->Empty()) {
    return make_error(Errc::invalid_input, "at least one nhsNumber parameter is required", "Parameters.parameter");
  }
  if (ps->Size() > SafeguardingCohortApi::kMaxNumbers) {
    return make_error(Errc::invalid_input,
                      "at most " + std::to_string(SafeguardingCohortApi::kMaxNumbers) + " NHS numbers per request",
                      "Parameters.parameter");
  }
  std::vector<Asked> out;
  for (json::SizeType i = 0; i < ps->Size(); ++i) {
    const json::Value& p = (*ps)[i];
    auto name = p.IsObject() ? json::get_string(p, "name") : std::nullopt;
    if (!name || *name != "nhsNumber") {
      return make_error(Errc::invalid_input, "unknown parameter; this operation takes nhsNumber only",
                        parameter_path(i) + ".name");
    }
    Asked a;
    a.index = i;
    auto number = number_of(p);
    if (!number) {
      issues.push_back(Issue{Severity::error, "required", parameter_path(i),
                             "nhsNumber needs a valueString or a valueIdentifier with the NHS number system"});
    } else if (auto n = identity::normalise_nhs_number(*number); !n) {
      issues.push_back(Issue{Severity::error, "value", parameter_path(i), "not a valid NHS number: " + n.error().message});
    } else {
      a.nhs = std::move(*n);
    }
    out.push_back(std::move(a));
  }
  return out;
}

// The telecom value whose contact-purpose extension is `purpose`.
std::string contact_number(const json::Value& care_team, std::string_view purpose) {
  const json::Value* tel = json::member(care_team, "telecom");
  if (!tel || !tel->IsArray()) return {};
  for (const auto& t : tel->GetArray()) {
    const json::Value* ext = json::member(t, "extension");
    if (!ext || !ext->IsArray()) continue;
    for (const auto& e : ext->GetArray()) {
      auto url = json::get_string(e, "url");
      auto code = json::get_string(e, "valueCode");
      if (url && *url == model::cpis::kContactPurposeUrl && code && *code == purpose)
        return std::string(json::get_string(t, "value").value_or(""));
    }
  }
  return {};
}

std::string managing_name(const json::Value& care_team) {
  const json::Value* mo = json::member(care_team, "managingOrganization");
  if (!mo || !mo->IsArray() || mo->Empty()) return {};
  return std::string(json::get_string((*mo)[0], "display").value_or(""));
}

// The CP-IS plans in scope today held against this Patient, as far as the
// caller's labels allow.
std::vector<Plan> plans_of(store::Store& store, const std::string& patient_id,
                           const std::vector<std::string>& hidden, const std::string& today) {
  std::vector<Plan> out;
  for (const auto& held : cpis::plans_in_scope(store, patient_id, today, hidden)) {
    const json::Value& ct = held.care_team;
    Plan p;
    p.type = held.type;
    p.la_ods = model::cpis::managing_ods(ct);
    p.la_name = managing_name(ct);
    p.emergency = contact_number(ct, "emergency-duty");
    p.office_hours = contact_number(ct, "office-hours");
    if (const json::Value* period = json::member(ct, "period")) {
      p.start = std::string(json::get_string(*period, "start").value_or(""));
      p.end = std::string(json::get_string(*period, "end").value_or(""));
    }
    out.push_back(std::move(p));
  }
  return out;
}

std::string nhs_number_of(const json::Value& patient) {
  const json::Value* ids = json::member(patient, "identifier");
  if (!ids || !ids->IsArray()) return {};
  for (const auto& id : ids->GetArray()) {
    auto sys = json::get_string(id, "system");
    auto val = json::get_string(id, "value");
    if (sys && *sys == identity::kNhsNumberSystem && val) return std::string(*val);
  }
  return {};
}

// The parent's children with a plan in scope, through the family links both
// feeds write (RelatedPerson: identifier family-link + the parent's NHS
// number, patient = the child). A link or child the caller may not see is
// not used.
std::vector<Child> children_with_plans(store::Store& store, const std::string& parent_nhs,
                                       const std::vector<std::string>& hidden, const std::string& today) {
  store::SearchQuery q;
  q.type = "RelatedPerson";
  q.params.push_back(
      store::ParamConstraint{"identifier", {{std::string(identity::kNhsNumberSystem), parent_nhs}}});
  q.exclude_security = hidden;
  q.count = 200;
  q.want_total = false;
  std::vector<Child> out;
  auto links = store.search(q);
  if (!links) return out;
  std::set<std::string> seen;
  for (const auto& r : links->items) {
    auto d = json::parse(r.body);
    if (!d) continue;
    if (auto active = json::get_bool(*d, "active"); active && !*active) continue;
    bool family_link = false;
    for (const auto& e : model::index_entries("RelatedPerson", *d))
      if (e.param == "identifier" && e.system == kFamilyLink) family_link = true;
    const json::Value* patient = json::member(*d, "patient");
    auto ref = patient ? json::get_string(*patient, "reference") : std::nullopt;
    if (!family_link || !ref || ref->rfind("Patient/", 0) != 0) continue;
    std::string child_id(ref->substr(8));
    if (!seen.insert(child_id).second) continue;
    auto child = store.read("Patient", child_id);
    if (!child || child->deleted || security::hidden_by_labels(child->body, hidden)) continue;
    auto cd = json::parse(child->body);
    if (!cd) continue;
    Child c;
    c.nhs = nhs_number_of(*cd);
    c.plans = plans_of(store, child_id, hidden, today);
    if (!c.plans.empty()) out.push_back(std::move(c));
  }
  return out;
}

// ---- the answer -------------------------------------------------------------

class ParametersWriter {
 public:
  explicit ParametersWriter(json::Writer& w) : w_(w) {}
  void begin_part(std::string_view name) {
    w_.StartObject();
    key("name");
    str(name);
    key("part");
    w_.StartArray();
  }
  void end_part() {
    w_.EndArray();
    w_.EndObject();
  }
  void value(std::string_view name, std::string_view type, std::string_view v) {
    if (v.empty()) return;
    w_.StartObject();
    key("name");
    str(name);
    key(type);
    str(v);
    w_.EndObject();
  }
  void boolean(std::string_view name, bool v) {
    w_.StartObject();
    key("name");
    str(name);
    key("valueBoolean");
    w_.Bool(v);
    w_.EndObject();
  }
  void integer(std::string_view name, size_t v) {
    w_.StartObject();
    key("name");
    str(name);
    key("valueInteger");
    w_.Uint64(v);
    w_.EndObject();
  }
  void nhs_number(std::string_view name, std::string_view nhs) {
    if (nhs.empty()) return;
    w_.StartObject();
    key("name");
    str(name);
    key("valueIdentifier");
    w_.StartObject();
    key("system");
    str(identity::kNhsNumberSystem);
    key("value");
    str(nhs);
    w_.EndObject();
    w_.EndObject();
  }
  void plan(const Plan& p) {
    begin_part("plan");
    w_.StartObject();
    key("name");
    str("type");
    key("valueCoding");
    w_.StartObject();
    key("system");
    str(model::cpis::kSnomed);
    key("code");
    str(p.type->snomed);
    key("display");
    str(p.type->display);
    w_.EndObject();
    w_.EndObject();
    value("planType", "valueCode", p.type->abbreviation);
    value("localAuthorityOds", "valueString", p.la_ods);
    value("localAuthorityName", "valueString", p.la_name);
    value("emergencyDutyNumber", "valueString", p.emergency);
    value("officeHoursNumber", "valueString", p.office_hours);
    value("start", "valueDateTime", p.start);
    value("end", "valueDateTime", p.end);
    end_part();
  }
 private:
  void key(std::string_view k) { w_.Key(k.data(), static_cast<json::SizeType>(k.size())); }
  void str(std::string_view s) { w_.String(s.data(), static_cast<json::SizeType>(s.size())); }
  json::Writer& w_;
};

store::AuditRow audit_row(const security::Principal& who, const std::string& req_id, std::string action, std::string entity,
                          std::string patient_ref) {
  store::AuditRow row;
  row.actor_ods = who.ods;
  row.actor_role = who.role;
  row.actor_system = who.system;
  row.action = std::move(action);
  row.entity = std::move(entity);
  row.outcome = "success";
  row.http_status = 200;
  row.request_id = req_id;
  row.patient_ref = std::move(patient_ref);
  return row;
}

// In caseload: the person's own plans, then each linked child with a plan.
void write_family(ParametersWriter& out, store::Store& store, const std::string& patient_id, const std::string& nhs,
                  const std::vector<std::string>& hidden, const std::string& today) {
  auto own = plans_of(store, patient_id, hidden, today);
  out.boolean("onPlan", !own.empty());
  for (const auto& p : own) out.plan(p);
  for (const auto& c : children_with_plans(store, nhs, hidden, today)) {
    out.begin_part("childWithPlan");
    out.nhs_number("nhsNumber", c.nhs);
    for (const auto& p : c.plans) out.plan(p);
    out.end_part();
  }
}

// The Parameters answer; an audit row per person answered in caseload goes into `audit`.
std::string answer(store::Store& store, const std::vector<std::string>& hidden, const std::string& today,
                   const security::Principal& who, const std::string& req_id, const std::vector<Asked>& asked,
                   const std::vector<Issue>& issues, store::UnitOfWork& audit) {
  events::StoreLookup caseload(store);
  json::Buffer buf;
  json::Writer w(buf);
  ParametersWriter out(w);
  w.StartObject();
  w.Key("resourceType");
  w.String("Parameters");
  w.Key("parameter");
  w.StartArray();
  for (const Asked& a : asked) {
    out.begin_part("patient");
    out.integer("index", a.index);
    out.nhs_number("nhsNumber", a.nhs);
    std::optional<std::string> id;
    if (!a.nhs.empty())
      if (auto found = store.find_by_unique_key(a.nhs); found && *found) id = **found;
    if (a.nhs.empty()) {
      out.value("status", "valueCode", "invalid");
    } else if (!id || !caseload.in_caseload(*id, who.ods)) {
      // Unknown to the gateway or cared for elsewhere: the same answer.
      out.value("status", "valueCode", "not-in-caseload");
    } else {
      out.value("status", "valueCode", "in-caseload");
      write_family(out, store, *id, a.nhs, hidden, today);
      audit.audit.push_back(audit_row(who, req_id, "safeguarding-cohort", "Patient/" + *id, "Patient/" + *id));
    }
    out.end_part();
  }
  if (!issues.empty()) {
    w.StartObject();
    w.Key("name");
    w.String("outcome");
    w.Key("resource");
    std::string oo = operation_outcome(issues);
    w.RawValue(oo.data(), oo.size(), rapidjson::kObjectType);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  auto summary = audit_row(who, req_id, "operation", std::string(SafeguardingCohortApi::kPath.substr(6)), "");
  summary.detail = std::to_string(asked.size()) + " numbers asked";
  audit.audit.push_back(std::move(summary));
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace

SafeguardingCohortApi::SafeguardingCohortApi(store::Store& store, const security::Policy& policy,
                                             const std::string& profiles_dir, std::function<std::string()> today)
    : store_(store), policy_(policy), today_(today ? std::move(today) : std::function<std::string()>(model::cpis::utc_today)) {
  std::string path = profiles_dir + "/operations/safeguarding-cohort.json";
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  auto doc = json::parse(ss.str());
  if (!in || !doc || !doc->IsObject() || json::get_string(*doc, "resourceType") != "OperationDefinition")
    throw std::runtime_error(path + ": an OperationDefinition is required");
  definition_ = json::to_string(*doc);
}

void SafeguardingCohortApi::add_routes(net::Router& router, RestApi& rest) {
  router.add(std::string(kPath), this);
  router.add(std::string(kDefinitionPath), this);
  rest.declare(OperationDecl{
      "Patient", "safeguarding-cohort", "https://cpis-gateway.nhs.uk/OperationDefinition/safeguarding-cohort",
      "POST a Parameters resource with one nhsNumber (valueString or valueIdentifier) per person on your caseload; "
      "the answer says, for each person your organisation cares for, whether they are on a CP-IS plan in scope and "
      "which of their linked children are (plan type, local authority, emergency-duty number). Roles camhs, "
      "adult-mental-health, substance-misuse."});
  rest.declare(ResourceDecl{"OperationDefinition", {"read"},
                            "The definitions of this server's own operations: GET /fhir/OperationDefinition/"
                            "safeguarding-cohort"});
}

void SafeguardingCohortApi::handle(net::Request req, net::Respond respond) {
  if (req.path == kDefinitionPath && req.method == "GET") {
    net::Response r;
    r.route = "fhir_operation_definition";
    r.body = definition_;
    return respond(std::move(r));
  }
  if (req.path != kPath) return respond(outcome_response(make_error(Errc::not_found, "no such FHIR endpoint")));
  if (!policy_.allows_operation(req.principal, "safeguarding-cohort") || req.principal.ods.empty()) {
    return respond(outcome_response(make_error(
        Errc::forbidden, "role '" + req.principal.role + "' may not ask for a safeguarding cohort")));
  }
  if (req.method != "POST") {
    return respond(outcome_response(make_error(Errc::method_not_allowed, "$safeguarding-cohort accepts POST")));
  }
  auto ct = req.header("content-type");
  if (!ct || ct->find("json") == std::string_view::npos) {
    return respond(outcome_response(
        make_error(Errc::unsupported_media, "Content-Type must be application/fhir+json or application/json")));
  }
  std::vector<Issue> issues;
  auto asked = read_request(req.body, issues);
  if (!asked) return respond(outcome_response(asked.error()));
  auto shared = std::make_shared<net::Respond>(std::move(respond));
  auto work = [this, shared, who = req.principal, req_id = req.audit_id(), asked = std::move(*asked),
               issues = std::move(issues)] {
    store::UnitOfWork audit;
    net::Response resp;
    resp.route = kRoute;
    resp.body = answer(store_, policy_.hidden_labels(who), today_(), who, req_id, asked, issues, audit);
    // Who asked about whom is audited; the answer does not wait for it.
    auto r = store_.commit(std::move(audit), [](Result<store::CommitOutcome> res) {
      if (!res) log::error("audit_write_failed", {{"reason", res.error().message}});
    });
    if (!r) log::error("audit_write_refused", {{"reason", r.error().message}});
    (*shared)(std::move(resp));
  };
  if (auto r = store_.run_read(std::move(work)); !r) (*shared)(outcome_response(r.error()));
}

}  // namespace gw::fhir
