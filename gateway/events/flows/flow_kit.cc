#include "gateway/events/flows/flow_kit.h"

#include <algorithm>

#include "gateway/area/working_days.h"
#include "gateway/identity/nhs_number.h"
#include "gateway/model/cpis_plan.h"

namespace gw::events::flows {

bool concept_has(const json::Value* concepts, std::string_view want) {
  if (!concepts) return false;
  size_t bar = want.find('|');
  std::string_view system = want.substr(0, bar), code = want.substr(bar + 1);
  auto one = [&](const json::Value& cc) {
    const json::Value* cs = cc.IsObject() ? json::member(cc, "coding") : nullptr;
    if (!cs || !cs->IsArray()) return false;
    for (const auto& c : cs->GetArray())
      if (json::get_string(c, "system") == system && json::get_string(c, "code") == code) return true;
    return false;
  };
  if (concepts->IsArray()) return std::any_of(concepts->Begin(), concepts->End(), one);
  return one(*concepts);
}

bool coded(const json::Value& r, std::string_view code) {
  for (const char* k : {"code", "category", "type", "serviceType", "reasonCode"})
    if (concept_has(json::member(r, k), code)) return true;
  return false;
}

bool coded_any(const json::Value& r, const std::vector<std::string>& codes) {
  return std::any_of(codes.begin(), codes.end(), [&](const std::string& c) { return coded(r, c); });
}

namespace {
std::vector<std::string> labels(const json::Value& r) {
  std::vector<std::string> out;
  const json::Value* meta = json::member(r, "meta");
  const json::Value* sec = meta && meta->IsObject() ? json::member(*meta, "security") : nullptr;
  if (sec && sec->IsArray())
    for (const auto& c : sec->GetArray())
      if (auto code = json::get_string(c, "code")) out.emplace_back(*code);
  return out;
}
bool has(const std::vector<std::string>& v, std::string_view x) { return std::find(v.begin(), v.end(), x) != v.end(); }
}  // namespace

bool sexual_health(const json::Value& r) {
  auto l = labels(r);
  if (has(l, "STD") || has(l, "HIV") || has(l, "SEX")) return true;
  return has(l, "R") && !has(l, "PSY") && !has(l, "SUD");
}

bool mental_health_labelled(const json::Value& r) {
  auto l = labels(r);
  return has(l, "PSY") || has(l, "SUD");
}

std::string str(const json::Value& v, std::string_view key) {
  return v.IsObject() ? std::string(json::get_string(v, key).value_or("")) : std::string();
}

std::string patient_id_of(const json::Value& r) {
  for (const char* k : {"subject", "patient"}) {
    const json::Value* ref = json::member(r, k);
    if (!ref || !ref->IsObject()) continue;
    std::string s = str(*ref, "reference");
    if (s.rfind("Patient/", 0) == 0) return s.substr(8);
  }
  return {};
}

std::string ods_of(const json::Value* ref) {
  if (!ref || !ref->IsObject()) return {};
  if (const json::Value* id = json::member(*ref, "identifier"); id && id->IsObject()) {
    std::string sys = str(*id, "system");
    if (sys.empty() || sys == model::cpis::kOdsSystem || sys == "https://fhir.nhs.uk/Id/ods-site-code")
      return str(*id, "value");
  }
  std::string r = str(*ref, "reference");
  if (r.rfind("Organization/", 0) == 0) return r.substr(13);
  return {};
}

std::string date_part(std::string_view dt) {
  if (dt.size() < 10) return {};
  std::string d(dt.substr(0, 10));
  return area::parse_date(d) ? d : std::string();
}

std::string birth_date(Lookup& lookup, const std::string& patient_id) {
  auto p = lookup.patient(patient_id);
  return p ? date_part(str(*p, "birthDate")) : std::string();
}

std::string nhs_number(Lookup& lookup, const std::string& patient_id) {
  auto p = lookup.patient(patient_id);
  if (!p) return {};
  if (const json::Value* ids = json::member(*p, "identifier"); ids && ids->IsArray())
    for (const auto& i : ids->GetArray())
      if (str(i, "system") == identity::kNhsNumberSystem) return str(i, "value");
  return {};
}

std::optional<int> age_on(const std::string& birth, const std::string& day) {
  auto b = area::parse_date(birth);
  auto d = area::parse_date(day);
  if (!b || !d) return std::nullopt;
  return area::age_on(*b, *d);
}

std::vector<std::string> team_members(Lookup& lookup, const std::string& patient_id, std::string_view role) {
  std::vector<std::string> out;
  const std::string want = std::string(kCareTeamRoleSystem) + "|" + std::string(role);
  for (const auto& t : lookup.about("CareTeam", patient_id)) {
    if (str(t, "status") != "active" || model::cpis::plan_type_of(t)) continue;
    const json::Value* ps = json::member(t, "participant");
    if (!ps || !ps->IsArray()) continue;
    for (const auto& p : ps->GetArray()) {
      if (!concept_has(json::member(p, "role"), want)) continue;
      std::string ods = ods_of(json::member(p, "member"));
      if (!ods.empty() && std::find(out.begin(), out.end(), ods) == out.end()) out.push_back(ods);
    }
  }
  return out;
}

std::vector<std::string> practices(Lookup& lookup, const std::string& patient_id) {
  std::vector<std::string> out;
  auto p = lookup.patient(patient_id);
  const json::Value* gps = p ? json::member(*p, "generalPractitioner") : nullptr;
  if (!gps || !gps->IsArray()) return out;
  for (const auto& g : gps->GetArray()) {
    if (str(g, "type") == "Practitioner") continue;
    std::string ods = ods_of(&g);
    if (!ods.empty()) out.push_back(ods);
  }
  return out;
}

}  // namespace gw::events::flows
