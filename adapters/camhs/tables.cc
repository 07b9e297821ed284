#include "adapters/camhs/tables.h"

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "gateway/common/json.h"

namespace gw::adapters::camhs {
namespace {

constexpr const char* kFile = "camhs.json";
constexpr std::string_view kKinds[] = {"patient",  "familyLink",  "careCoordinator", "patientIndicators",
                                       "referral", "careContact", "hospitalSpell",   "carePlan",
                                       "relapseSignature", "indicatorObserved"};

Error bad(const std::string& key, const std::string& what) {
  return make_error(Errc::internal, std::string(kFile) + ": " + key + ": " + what, key);
}

// A flat code -> display table; "comment" is allowed and skipped.
Result<Table> flat(const json::Value& root, const char* key) {
  const json::Value* v = json::member(root, key);
  if (!v || !v->IsObject()) return bad(key, "must be an object");
  Table t;
  for (const auto& m : v->GetObject()) {
    std::string k(m.name.GetString(), m.name.GetStringLength());
    if (k == "comment") continue;
    if (!m.value.IsString() || m.value.GetStringLength() == 0) return bad(std::string(key) + "." + k, "must be a non-empty string");
    t.emplace(k, std::string(m.value.GetString(), m.value.GetStringLength()));
  }
  if (t.empty()) return bad(key, "must not be empty");
  return t;
}

Result<std::string> need_string(const json::Value& obj, const std::string& path, const char* key) {
  auto s = json::get_string(obj, key);
  if (!s || s->empty()) return bad(path + "." + key, "must be a non-empty string");
  return std::string(*s);
}

Result<void> only_keys(const json::Value& obj, const std::string& path, std::initializer_list<std::string_view> keys) {
  for (const auto& m : obj.GetObject()) {
    std::string_view k(m.name.GetString(), m.name.GetStringLength());
    bool ok = k == "comment";
    for (auto x : keys) ok = ok || k == x;
    if (!ok) return bad(path.empty() ? std::string(k) : path + "." + std::string(k), "unknown key");
  }
  return {};
}

Result<std::map<std::string, IndicatorCode, std::less<>>> indicator_table(const json::Value& root, const char* key) {
  const json::Value* v = json::member(root, key);
  if (!v || !v->IsObject()) return bad(key, "must be an object");
  std::map<std::string, IndicatorCode, std::less<>> out;
  for (const auto& m : v->GetObject()) {
    std::string k(m.name.GetString(), m.name.GetStringLength());
    if (k == "comment") continue;
    std::string path = std::string(key) + "." + k;
    if (!m.value.IsObject()) return bad(path, "must be an object");
    if (auto ok = only_keys(m.value, path, {"display", "planStatus"}); !ok) return ok.error();
    auto d = need_string(m.value, path, "display");
    if (!d) return d.error();
    auto p = need_string(m.value, path, "planStatus");
    if (!p) return p.error();
    out.emplace(k, IndicatorCode{*d, *p});
  }
  return out;
}

}  // namespace

Result<Tables> Tables::load(const std::string& profiles_dir) {
  const std::string path = profiles_dir + "/adapters/" + kFile;
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(Errc::internal, std::string(kFile) + ": cannot be read from " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  auto doc = json::parse(ss.str());
  if (!doc) return make_error(Errc::internal, std::string(kFile) + ": " + doc.error().message);
  const json::Value& root = *doc;
  if (!root.IsObject()) return bad("(root)", "must be an object");
  if (auto ok = only_keys(root, "",
                          {"limits", "teamTypes", "defaultLabel", "labels", "verificationStatus", "gender", "cpp",
                           "lacStatus", "youngCarer", "attendStatus", "referralSource", "priority", "carePlanType",
                           "dischargeDestination", "tier4", "relationships", "parentByGender", "fosterChildSees"});
      !ok)
    return ok.error();

  Tables t;
  if (const json::Value* lim = json::member(root, "limits")) {
    if (!lim->IsObject()) return bad("limits", "must be an object");
    if (auto ok = only_keys(*lim, "limits", {"maxDocumentBytes", "maxIssues"}); !ok) return ok.error();
    auto b = json::get_int(*lim, "maxDocumentBytes");
    if (!b || *b < 1024) return bad("limits.maxDocumentBytes", "must be an integer >= 1024");
    t.max_document_bytes = static_cast<std::size_t>(*b);
    auto i = json::get_int(*lim, "maxIssues");
    if (!i || *i < 1) return bad("limits.maxIssues", "must be a positive integer");
    t.max_issues = static_cast<std::size_t>(*i);
  }

  const json::Value* tt = json::member(root, "teamTypes");
  if (!tt || !tt->IsObject()) return bad("teamTypes", "must be an object");
  for (const auto& m : tt->GetObject()) {
    std::string k(m.name.GetString(), m.name.GetStringLength());
    if (k == "comment") continue;
    std::string p = "teamTypes." + k;
    if (k.size() != 1 || k[0] < 'A' || k[0] > 'Z') return bad(p, "must be one upper-case letter");
    if (!m.value.IsObject()) return bad(p, "must be an object");
    if (auto ok = only_keys(m.value, p, {"service", "display", "label"}); !ok) return ok.error();
    TeamType x;
    auto s = need_string(m.value, p, "service");
    if (!s) return s.error();
    auto d = need_string(m.value, p, "display");
    if (!d) return d.error();
    auto l = need_string(m.value, p, "label");
    if (!l) return l.error();
    if (*l != "PSY" && *l != "SUD") return bad(p + ".label", "must be PSY or SUD");
    t.team_types.emplace(k, TeamType{*s, *d, *l});
  }
  if (t.team_types.empty()) return bad("teamTypes", "must not be empty");

  auto dl = json::get_string(root, "defaultLabel");
  if (!dl || (*dl != "PSY" && *dl != "SUD")) return bad("defaultLabel", "must be PSY or SUD");
  t.default_label = std::string(*dl);

  const json::Value* lb = json::member(root, "labels");
  if (!lb || !lb->IsObject()) return bad("labels", "must be an object");
  for (const auto& m : lb->GetObject()) {
    std::string k(m.name.GetString(), m.name.GetStringLength());
    if (k == "comment") continue;
    std::string p = "labels." + k;
    bool known = false;
    for (auto x : kKinds) known = known || x == k;
    if (!known) return bad(p, "unknown resource kind");
    if (!m.value.IsObject()) return bad(p, "must be an object");
    if (auto ok = only_keys(m.value, p, {"sensitivity", "restricted"}); !ok) return ok.error();
    auto s = json::get_string(m.value, "sensitivity");
    if (!s || (*s != "service" && *s != "none")) return bad(p + ".sensitivity", "must be service or none");
    auto r = json::get_bool(m.value, "restricted");
    if (!r) return bad(p + ".restricted", "must be a boolean");
    t.labels.emplace(k, LabelRule{*s == "service", *r});
  }
  for (auto k : kKinds)
    if (t.labels.find(k) == t.labels.end()) return bad("labels." + std::string(k), "is missing");

  const std::pair<const char*, Table*> flats[] = {
      {"verificationStatus", &t.verification_status}, {"gender", &t.gender},
      {"referralSource", &t.referral_source},         {"priority", &t.priority},
      {"carePlanType", &t.care_plan_type},            {"dischargeDestination", &t.discharge_destination},
      {"relationships", &t.relationships}};
  for (auto [key, dst] : flats) {
    auto f = flat(root, key);
    if (!f) return f.error();
    *dst = std::move(*f);
  }
  for (const auto& [code, g] : t.gender)
    if (g != "male" && g != "female" && g != "other" && g != "unknown") return bad("gender." + code, "must be a FHIR gender");

  auto cpp = indicator_table(root, "cpp");
  if (!cpp) return cpp.error();
  t.cpp = std::move(*cpp);
  auto lac = indicator_table(root, "lacStatus");
  if (!lac) return lac.error();
  t.lac_status = std::move(*lac);
  auto yc = indicator_table(root, "youngCarer");
  if (!yc) return yc.error();
  t.young_carer = std::move(*yc);

  const json::Value* at = json::member(root, "attendStatus");
  if (!at || !at->IsObject()) return bad("attendStatus", "must be an object");
  for (const auto& m : at->GetObject()) {
    std::string k(m.name.GetString(), m.name.GetStringLength());
    if (k == "comment") continue;
    std::string p = "attendStatus." + k;
    if (!m.value.IsObject()) return bad(p, "must be an object");
    if (auto ok = only_keys(m.value, p, {"display", "status"}); !ok) return ok.error();
    auto d = need_string(m.value, p, "display");
    if (!d) return d.error();
    auto s = need_string(m.value, p, "status");
    if (!s) return s.error();
    if (*s != "finished" && *s != "cancelled" && *s != "planned") return bad(p + ".status", "must be finished, cancelled or planned");
    t.attend_status.emplace(k, AttendCode{*d, *s});
  }

  const json::Value* t4 = json::member(root, "tier4");
  const json::Value* t4v = t4 && t4->IsObject() ? json::member(*t4, "values") : nullptr;
  if (!t4v || !t4v->IsArray() || t4v->Empty()) return bad("tier4.values", "must be a non-empty array of strings");
  if (auto ok = only_keys(*t4, "tier4", {"values"}); !ok) return ok.error();
  for (const auto& v : t4v->GetArray()) {
    if (!v.IsString()) return bad("tier4.values", "must be a non-empty array of strings");
    t.tier4_values.emplace_back(v.GetString(), v.GetStringLength());
  }

  const json::Value* pg = json::member(root, "parentByGender");
  if (!pg || !pg->IsObject()) return bad("parentByGender", "must be an object");
  for (const char* g : {"female", "male", "other", "unknown"}) {
    const json::Value* e = json::member(*pg, g);
    std::string p = std::string("parentByGender.") + g;
    if (!e || !e->IsObject()) return bad(p, "must be an object with code and display");
    auto c = need_string(*e, p, "code");
    if (!c) return c.error();
    auto d = need_string(*e, p, "display");
    if (!d) return d.error();
    t.parent_by_gender.emplace(g, Coded{*c, *d});
  }
  const json::Value* fc = json::member(root, "fosterChildSees");
  if (!fc || !fc->IsObject()) return bad("fosterChildSees", "must be an object with code and display");
  auto fcc = need_string(*fc, "fosterChildSees", "code");
  if (!fcc) return fcc.error();
  auto fcd = need_string(*fc, "fosterChildSees", "display");
  if (!fcd) return fcd.error();
  t.foster_child_sees = Coded{*fcc, *fcd};
  return t;
}

const LabelRule& Tables::label(std::string_view kind) const { return labels.find(kind)->second; }

const TeamType* Tables::team_type(std::string_view code) const {
  if (code.empty()) return nullptr;
  auto it = team_types.find(code.substr(0, 1));
  return it == team_types.end() ? nullptr : &it->second;
}

bool Tables::is_tier4(std::string_view tier) const {
  for (const auto& v : tier4_values)
    if (v == tier) return true;
  return false;
}

}  // namespace gw::adapters::camhs
