#include "adapters/cashgum/tables.h"

#include "gateway/area/area.h"

#include <algorithm>
#include <cassert>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "gateway/common/json.h"

namespace gw::adapters::cashgum {
namespace {

Error fail(const std::string& file, const std::string& key, const std::string& why) {
  return make_error(Errc::invalid_input, file + ": " + key + ": " + why, key);
}

const std::vector<std::string> kRoles = {"gp", "school-nursing", "health-visiting", "local-authority"};
const std::vector<std::string> kSystems = {"shhapt", "snomed", "riskOutcome", "cseIndicator", "referredTo",
                                           "contraceptiveMethod", "methodStatus", "local"};

bool only_keys(const json::Value& obj, std::initializer_list<std::string_view> allowed, std::string& bad) {
  for (auto it = obj.MemberBegin(); it != obj.MemberEnd(); ++it) {
    std::string_view k = json::as_view(it->name);
    if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
      bad = std::string(k);
      return false;
    }
  }
  return true;
}

const json::Value* object(const json::Value& r, const char* key) {
  const json::Value* v = json::member(r, key);
  return v != nullptr && v->IsObject() ? v : nullptr;
}

// {"CODE": "display", "comment": "..."}: codes are upper-case.
Result<std::map<std::string, std::string, std::less<>>> display_map(const std::string& f, const json::Value& r,
                                                                    const char* key) {
  const json::Value* v = object(r, key);
  if (v == nullptr || v->MemberCount() == 0) return fail(f, key, "must be a non-empty object");
  std::map<std::string, std::string, std::less<>> out;
  for (auto it = v->MemberBegin(); it != v->MemberEnd(); ++it) {
    std::string code(json::as_view(it->name));
    if (code == "comment") continue;
    std::string at = std::string(key) + "." + code;
    if (!it->value.IsString() || it->value.GetStringLength() == 0) return fail(f, at, "must be a non-empty string");
    if (std::any_of(code.begin(), code.end(), [](char c) { return c >= 'a' && c <= 'z'; }))
      return fail(f, at, "codes are written in upper case");
    out.emplace(code, std::string(json::as_view(it->value)));
  }
  return out;
}

Result<std::map<std::string, Activity, std::less<>>> activity_map(const std::string& f, const json::Value& r,
                                                                  const char* key, bool digits) {
  const json::Value* v = object(r, key);
  if (v == nullptr) return fail(f, key, "required object");
  std::map<std::string, Activity, std::less<>> out;
  std::string bad;
  for (auto it = v->MemberBegin(); it != v->MemberEnd(); ++it) {
    std::string code(json::as_view(it->name));
    if (code == "comment") continue;
    std::string at = std::string(key) + "." + code;
    if (!it->value.IsObject()) return fail(f, at, "must be an object {display, hiv}");
    if (!only_keys(it->value, {"display", "hiv"}, bad)) return fail(f, at + "." + bad, "unknown key");
    auto d = json::get_string(it->value, "display");
    auto h = json::get_bool(it->value, "hiv");
    if (!d || d->empty()) return fail(f, at + ".display", "required string");
    if (!h) return fail(f, at + ".hiv", "required boolean: say whether the activity is HIV-related");
    bool ok = digits ? std::all_of(code.begin(), code.end(), [](char c) { return c >= '0' && c <= '9'; })
                     : std::none_of(code.begin(), code.end(), [](char c) { return c >= 'a' && c <= 'z'; });
    if (!ok) return fail(f, at, digits ? "must be a SNOMED CT id (digits)" : "codes are written in upper case");
    out.emplace(code, Activity{std::string(*d), *h});
  }
  return out;
}

Result<std::vector<std::string>> roles(const std::string& f, const std::string& at, const json::Value* v) {
  if (v == nullptr || !v->IsArray()) return fail(f, at, "must be an array of roles");
  std::vector<std::string> out;
  for (json::SizeType i = 0; i < v->Size(); ++i) {
    std::string role = (*v)[i].IsString() ? std::string(json::as_view((*v)[i])) : std::string();
    if (std::find(kRoles.begin(), kRoles.end(), role) == kRoles.end())
      return fail(f, at + "[" + std::to_string(i) + "]", "must be one of gp, school-nursing, health-visiting, local-authority");
    out.push_back(role);
  }
  return out;
}

Result<Coding> coding(const std::string& f, const std::string& at, const json::Value* v) {
  std::string bad;
  if (v == nullptr || !v->IsObject()) return fail(f, at, "must be an object {system, code, display}");
  if (!only_keys(*v, {"system", "code", "display"}, bad)) return fail(f, at + "." + bad, "unknown key");
  Coding c{std::string(json::get_string(*v, "system").value_or("")), std::string(json::get_string(*v, "code").value_or("")),
           std::string(json::get_string(*v, "display").value_or(""))};
  if (c.system.empty() || c.code.empty() || c.display.empty()) return fail(f, at, "system, code and display are required");
  return c;
}

Result<Columns> columns(const std::string& f, const json::Value& r, const char* kind) {
  const json::Value* c = object(r, "columns");
  const json::Value* k = c ? object(*c, kind) : nullptr;
  std::string at = std::string("columns.") + kind;
  if (k == nullptr) return fail(f, at, "required object {required, optional}");
  Columns out;
  for (const char* which : {"required", "optional"}) {
    const json::Value* a = json::member(*k, which);
    if (a == nullptr || !a->IsArray()) return fail(f, at + "." + which, "required array of column names");
    auto& dst = std::string_view(which) == "required" ? out.required : out.optional;
    for (json::SizeType i = 0; i < a->Size(); ++i) {
      if (!(*a)[i].IsString()) return fail(f, at + "." + which, "column names are strings");
      dst.emplace_back(json::as_view((*a)[i]));
    }
  }
  if (out.required.empty()) return fail(f, at + ".required", "must name the required columns");
  return out;
}

}  // namespace

const std::string& Tables::system(std::string_view name) const {
  auto it = systems.find(name);
  assert(it != systems.end());
  if (it == systems.end()) std::abort();  // a name not checked by load(): a bug
  return it->second;
}

Result<Tables> Tables::load(const std::string& profiles_dir) {
  const std::string f = profiles_dir + "/adapters/cashgum.json";
  std::ifstream in(f, std::ios::binary);
  if (!in) return make_error(Errc::not_found, f + ": cannot be read");
  std::stringstream ss;
  ss << in.rdbuf();
  auto doc = json::parse(ss.str());
  if (!doc) return make_error(Errc::invalid_input, f + ": " + doc.error().message);
  const json::Value& r = *doc;
  if (!r.IsObject()) return fail(f, "(root)", "must be an object");
  std::string bad;
  if (!only_keys(r, {"comment", "columns", "systems", "gender", "shhapt", "snomed", "activityObservation",
                     "riskAssessment", "contraceptionObservation", "riskOutcomes", "cseIndicators",
                     "cseIndicatorsNotDisclosed", "referredTo",
                     "concern", "contraceptiveMethods", "methodStatus"},
                 bad))
    return fail(f, bad, "unknown key");
  Tables t;
  auto g = columns(f, r, "gumcad");
  if (!g) return g.error();
  t.gumcad = std::move(*g);
  auto s = columns(f, r, "srhad");
  if (!s) return s.error();
  t.srhad = std::move(*s);

  const json::Value* sys = object(r, "systems");
  if (sys == nullptr) return fail(f, "systems", "required object");
  for (const auto& name : kSystems) {
    auto v = json::get_string(*sys, name);
    if (!v || v->empty()) return fail(f, "systems." + name, "required URI");
    t.systems.emplace(name, std::string(*v));
  }
  t.local_system = t.system("local");

  const json::Value* gender = object(r, "gender");
  if (gender == nullptr) return fail(f, "gender", "required object");
  for (auto it = gender->MemberBegin(); it != gender->MemberEnd(); ++it) {
    std::string v = it->value.IsString() ? std::string(json::as_view(it->value)) : std::string();
    if (v != "male" && v != "female" && v != "other" && v != "unknown")
      return fail(f, "gender." + std::string(json::as_view(it->name)), "must be male, female, other or unknown");
    t.gender.emplace(std::string(json::as_view(it->name)), v);
  }

  auto sh = activity_map(f, r, "shhapt", false);
  if (!sh) return sh.error();
  t.shhapt = std::move(*sh);
  auto sn = activity_map(f, r, "snomed", true);
  if (!sn) return sn.error();
  t.snomed = std::move(*sn);

  const json::Value* ao = object(r, "activityObservation");
  if (ao == nullptr) return fail(f, "activityObservation", "required object {system, category}");
  t.activity_category = json::get_string(*ao, "category").value_or("");
  if (t.activity_category.empty()) return fail(f, "activityObservation.category", "required string");

  for (auto [key, dst] : {std::pair{"riskAssessment", &t.risk_assessment}, std::pair{"contraceptionObservation", &t.contraception}}) {
    const json::Value* v = object(r, key);
    if (v == nullptr) return fail(f, key, "required object {code, display}");
    dst->code = json::get_string(*v, "code").value_or("");
    dst->display = json::get_string(*v, "display").value_or("");
    if (dst->code.empty() || dst->display.empty()) return fail(f, key, "code and display are required");
  }

  const json::Value* ro = object(r, "riskOutcomes");
  if (ro == nullptr) return fail(f, "riskOutcomes", "required object");
  for (auto it = ro->MemberBegin(); it != ro->MemberEnd(); ++it) {
    std::string at = "riskOutcomes." + std::string(json::as_view(it->name));
    auto d = json::get_string(it->value, "display");
    auto c = json::get_bool(it->value, "concern");
    if (!d || !c) return fail(f, at, "must be {display, concern}");
    t.risk_outcomes.emplace(std::string(json::as_view(it->name)), RiskOutcome{std::string(*d), *c});
  }

  auto cse = display_map(f, r, "cseIndicators");
  if (!cse) return cse.error();
  t.cse_indicators = std::move(*cse);
  auto nd = display_map(f, r, "cseIndicatorsNotDisclosed");
  if (!nd) return nd.error();
  t.cse_not_disclosed = std::move(*nd);
  for (const auto& [code, why] : t.cse_not_disclosed)
    if (!t.cse_indicators.count(code)) return fail(f, "cseIndicatorsNotDisclosed." + code, "is not a code of cseIndicators");

  const json::Value* rt = object(r, "referredTo");
  if (rt == nullptr) return fail(f, "referredTo", "required object");
  for (auto it = rt->MemberBegin(); it != rt->MemberEnd(); ++it) {
    std::string at = "referredTo." + std::string(json::as_view(it->name));
    auto d = json::get_string(it->value, "display");
    if (!d) return fail(f, at + ".display", "required string");
    auto ro2 = roles(f, at + ".discloseTo", json::member(it->value, "discloseTo"));
    if (!ro2) return ro2.error();
    t.referred_to.emplace(std::string(json::as_view(it->name)), Referral{std::string(*d), std::move(*ro2)});
  }

  const json::Value* concern = object(r, "concern");
  if (concern == nullptr) return fail(f, "concern", "required object");
  if (!only_keys(*concern, {"adultAge", "code", "category", "discloseTo"}, bad)) return fail(f, "concern." + bad, "unknown key");
  auto age = json::get_int(*concern, "adultAge");
  if (!age || *age < 1 || *age > 25) return fail(f, "concern.adultAge", "required integer (18)");
  t.adult_age = static_cast<int>(*age);
  auto cc = coding(f, "concern.code", json::member(*concern, "code"));
  if (!cc) return cc.error();
  t.concern_code = std::move(*cc);
  auto cat = coding(f, "concern.category", json::member(*concern, "category"));
  if (!cat) return cat.error();
  t.concern_category = std::move(*cat);
  auto dt = roles(f, "concern.discloseTo", json::member(*concern, "discloseTo"));
  if (!dt) return dt.error();
  t.concern_disclose_to = std::move(*dt);

  auto cm = display_map(f, r, "contraceptiveMethods");
  if (!cm) return cm.error();
  t.contraceptive_methods = std::move(*cm);
  auto ms = display_map(f, r, "methodStatus");
  if (!ms) return ms.error();
  t.method_status = std::move(*ms);
  auto authorities = area::load_authority_by_ons(profiles_dir);
  if (!authorities) return authorities.error();
  t.authority_by_ons = std::move(*authorities);
  return t;
}

}  // namespace gw::adapters::cashgum
