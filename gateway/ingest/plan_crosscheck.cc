#include "gateway/ingest/plan_crosscheck.h"

#include <map>

#include "gateway/cpis/cpis_plans_held.h"
#include "gateway/identity/nhs_number.h"

namespace gw::ingest {

namespace {

constexpr std::string_view kPlanStatus = "https://cpis-gateway.nhs.uk/CodeSystem/plan-status";
constexpr std::string_view kLocalIdPrefix = "urn:cpis-gateway:local-id:";

std::string identifier_value(const json::Value& resource, std::string_view system, bool prefix) {
  const json::Value* ids = json::member(resource, "identifier");
  if (!ids || !ids->IsArray()) return {};
  for (const auto& id : ids->GetArray()) {
    auto sys = json::get_string(id, "system");
    auto val = json::get_string(id, "value");
    if (!sys || !val) continue;
    if (prefix ? sys->rfind(system, 0) == 0 : *sys == system) return std::string(*val);
  }
  return {};
}

// The first coding of a CodeableConcept with this system.
std::string code_in(const json::Value* cc, std::string_view system) {
  const json::Value* coding = cc ? json::member(*cc, "coding") : nullptr;
  if (!coding || !coding->IsArray()) return {};
  for (const auto& c : coding->GetArray()) {
    auto sys = json::get_string(c, "system");
    auto code = json::get_string(c, "code");
    if (sys && *sys == system && code) return std::string(*code);
  }
  return {};
}

// The component's own code (whatever system the feed uses).
std::string component_name(const json::Value& component) {
  const json::Value* cc = json::member(component, "code");
  const json::Value* coding = cc ? json::member(*cc, "coding") : nullptr;
  if (!coding || !coding->IsArray() || coding->Empty()) return {};
  return std::string(json::get_string((*coding)[0], "code").value_or(""));
}

struct PlanFacts {
  bool current = false;  // in scope and not ended
  std::string ended;     // end date of an in-scope ended plan, if any
  std::string la_ods;
};

// Plans in the store for one NHS number, by plan type abbreviation.
std::map<std::string, PlanFacts> plans_for(store::Store& store, const std::string& nhs, std::string_view today) {
  std::map<std::string, PlanFacts> out;
  auto id = store.find_by_unique_key(nhs);
  if (!id || !*id) return out;
  for (const auto& held : cpis::plans_in_scope(store, **id, today)) {
    PlanFacts& f = out[std::string(held.type->abbreviation)];
    const json::Value* period = json::member(held.care_team, "period");
    std::string end_day(period ? json::get_string(*period, "end").value_or("").substr(0, 10) : "");
    if (end_day.empty() || end_day >= today) {
      f.current = true;
      f.la_ods = model::cpis::managing_ods(held.care_team);
    } else if (end_day > f.ended) {
      f.ended = end_day;
    }
  }
  return out;
}

struct Rule {
  std::string_view plan;     // CPP | LAC
  std::string_view yes, no;  // plan-status codes
  std::string_view what;     // for people
};

constexpr Rule kRules[] = {
    {"CPP", "on-plan", "not-on-plan", "a child protection plan"},
    {"LAC", "looked-after", "not-looked-after", "looked-after status (LAC plan)"},
};

const Rule* rule_for(std::string_view status, std::string_view indicator) {
  for (const Rule& r : kRules)
    if (status == r.yes || status == r.no) return &r;
  // "unknown" says nothing by itself: the component name tells which plan.
  if (indicator.find("LAC") != std::string_view::npos) return &kRules[1];
  if (indicator.find("CPP") != std::string_view::npos) return &kRules[0];
  return nullptr;
}

}  // namespace

std::vector<StatedIndicator> stated_plan_indicators(const json::Value& bundle) {
  std::vector<StatedIndicator> out;
  const json::Value* entries = json::member(bundle, "entry");
  if (!entries || !entries->IsArray()) return out;
  std::map<std::string, const json::Value*> patients;  // fullUrl -> Patient
  for (const auto& e : entries->GetArray()) {
    const json::Value* r = json::member(e, "resource");
    auto url = json::get_string(e, "fullUrl");
    if (r && url && json::get_string(*r, "resourceType").value_or("") == "Patient") patients[std::string(*url)] = r;
  }
  for (const auto& e : entries->GetArray()) {
    const json::Value* r = json::member(e, "resource");
    if (!r || json::get_string(*r, "resourceType").value_or("") != "Observation") continue;
    const json::Value* comps = json::member(*r, "component");
    const json::Value* subject = json::member(*r, "subject");
    auto ref = subject ? json::get_string(*subject, "reference") : std::nullopt;
    if (!comps || !comps->IsArray() || !ref) continue;
    auto p = patients.find(std::string(*ref));
    if (p == patients.end()) continue;
    for (const auto& c : comps->GetArray()) {
      std::string status = code_in(json::member(c, "valueCodeableConcept"), kPlanStatus);
      if (status.empty()) continue;
      StatedIndicator s;
      s.local_id = identifier_value(*p->second, kLocalIdPrefix, true);
      s.nhs = identifier_value(*p->second, identity::kNhsNumberSystem, false);
      s.indicator = component_name(c);
      s.status = std::move(status);
      if (rule_for(s.status, s.indicator)) out.push_back(std::move(s));
    }
  }
  return out;
}

std::vector<Issue> plan_mismatches(store::Store& store, const std::vector<StatedIndicator>& stated,
                                   std::string_view today) {
  std::vector<Issue> out;
  std::map<std::string, std::map<std::string, PlanFacts>> cache;  // per NHS number
  for (const auto& s : stated) {
    if (s.nhs.empty()) continue;
    const Rule* rule = rule_for(s.status, s.indicator);
    auto it = cache.find(s.nhs);
    if (it == cache.end()) it = cache.emplace(s.nhs, plans_for(store, s.nhs, today)).first;
    PlanFacts facts;
    if (auto f = it->second.find(std::string(rule->plan)); f != it->second.end()) facts = f->second;
    std::string message;
    if (s.status == rule->yes && !facts.current) {
      message = "the extract states " + std::string(rule->what) + ", but CP-IS holds no current " +
                std::string(rule->plan) + " plan" +
                (facts.ended.empty() ? std::string() : " (the last one ended on " + facts.ended + ")");
    } else if (s.status == rule->no && facts.current) {
      message = "the extract states no " + std::string(rule->what) + ", but CP-IS holds a current " +
                std::string(rule->plan) + " plan (local authority " + facts.la_ods + ")";
    } else if (s.status == "unknown" && facts.current) {
      message = "the extract does not state " + std::string(rule->what) + ", but CP-IS holds a current " +
                std::string(rule->plan) + " plan (local authority " + facts.la_ods + ")";
    }
    if (message.empty()) continue;
    std::string local = s.local_id.empty() ? "?" : s.local_id;
    out.push_back(Issue{Severity::warning, "business-rule",
                        "Patient[LocalPatientID=" + local + "].Indicators." + s.indicator,
                        "CP-IS mismatch: " + message});
  }
  return out;
}

}  // namespace gw::ingest
