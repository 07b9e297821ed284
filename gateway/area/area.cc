#include "gateway/area/area.h"

#include <algorithm>
#include <filesystem>

#include "gateway/area/profile_file.h"
#include "gateway/common/clock.h"
#include "gateway/common/json.h"

namespace gw::area {

namespace {

// The completeness checks the pregnancy flow implements (events/pregnancy.cc).
constexpr std::string_view kChecks[] = {"registered-gp", "address-postcode", "edd",
                                        "booking-date",  "risk-assessment",  "social-concerns"};

Result<int> positive(const json::Value& obj, std::string_view key, const std::string& source, const std::string& where,
                     int fallback) {
  const json::Value* v = json::member(obj, key);
  if (!v) return fallback;
  if (!v->IsInt() || v->GetInt() < 1) return bad_key(source, where + "." + std::string(key), "must be a positive integer");
  return v->GetInt();
}

Result<std::vector<std::string>> codes(const json::Value& obj, std::string_view key, const std::string& source,
                                       const std::string& where) {
  std::vector<std::string> out;
  const json::Value* v = json::member(obj, key);
  std::string path = where + "." + std::string(key);
  if (!v || !v->IsArray() || v->Empty()) return bad_key(source, path, "must be a non-empty array of system|code");
  for (const auto& c : v->GetArray()) {
    std::string_view s = c.IsString() ? json::as_view(c) : std::string_view();
    size_t bar = s.find('|');
    if (bar == std::string_view::npos || bar == 0 || bar + 1 == s.size())
      return bad_key(source, path, "must hold system|code values");
    out.emplace_back(s);
  }
  return out;
}

// {"<ODS>": "<ODS>"} tables.
Result<void> string_map(const json::Value& doc, std::string_view key, const std::string& source,
                        std::map<std::string, std::string, std::less<>>& out) {
  const json::Value* m = json::member(doc, key);
  if (!m || !m->IsObject()) return bad_key(source, std::string(key), "is required (an object)");
  for (const auto& e : m->GetObject()) {
    std::string k(e.name.GetString(), e.name.GetStringLength());
    if (k == "comment") continue;
    if (!e.value.IsString() || e.value.GetStringLength() == 0)
      return bad_key(source, std::string(key) + "." + k, "must be a non-empty string");
    out[k] = std::string(json::as_view(e.value));
  }
  return {};
}

Result<void> parse_services(const json::Value& doc, const std::string& src, std::optional<Team>& nurse,
                            std::map<std::string, Team, std::less<>>& hv, Team& spoa,
                            std::map<std::string, std::string, std::less<>>& lac,
                            std::map<std::string, std::string, std::less<>>& ons,
                            std::map<std::string, EdSite, std::less<>>& ed) {
  if (auto r = only_keys(doc, {"healthVisitingByPractice", "healthVisitingSinglePointOfAccess", "lacHealthByAuthority",
                               "authorityByOnsCode", "edSites", "designatedNurse"},
                         src, "");
      !r)
    return r;
  if (const json::Value* dn = json::member(doc, "designatedNurse")) {
    if (auto r = only_keys(*dn, {"ods", "name"}, src, "designatedNurse"); !r) return r;
    auto ods = required_string(*dn, "ods", src, "designatedNurse");
    if (!ods) return ods.error();
    nurse = Team{*ods, std::string(json::get_string(*dn, "name").value_or(""))};
  }
  const json::Value* hvp = json::member(doc, "healthVisitingByPractice");
  if (!hvp || !hvp->IsObject()) return bad_key(src, "healthVisitingByPractice", "is required (an object)");
  for (const auto& e : hvp->GetObject()) {
    std::string k(e.name.GetString(), e.name.GetStringLength());
    if (k == "comment") continue;
    std::string where = "healthVisitingByPractice." + k;
    if (auto r = only_keys(e.value, {"ods", "name"}, src, where); !r) return r;
    auto ods = required_string(e.value, "ods", src, where);
    if (!ods) return ods.error();
    hv[k] = Team{*ods, std::string(json::get_string(e.value, "name").value_or(""))};
  }
  const json::Value* sp = json::member(doc, "healthVisitingSinglePointOfAccess");
  if (!sp) return bad_key(src, "healthVisitingSinglePointOfAccess", "is required ({\"ods\", \"name\"})");
  if (auto r = only_keys(*sp, {"ods", "name"}, src, "healthVisitingSinglePointOfAccess"); !r) return r;
  auto sods = required_string(*sp, "ods", src, "healthVisitingSinglePointOfAccess");
  if (!sods) return sods.error();
  spoa = Team{*sods, std::string(json::get_string(*sp, "name").value_or(""))};
  if (auto r = string_map(doc, "lacHealthByAuthority", src, lac); !r) return r;
  if (auto r = string_map(doc, "authorityByOnsCode", src, ons); !r) return r;
  const json::Value* sites = json::member(doc, "edSites");
  if (!sites || !sites->IsObject()) return bad_key(src, "edSites", "is required (an object)");
  for (const auto& e : sites->GetObject()) {
    std::string k(e.name.GetString(), e.name.GetStringLength());
    if (k == "comment") continue;
    std::string where = "edSites." + k;
    if (auto r = only_keys(e.value, {"trust", "paediatricLiaison"}, src, where); !r) return r;
    auto trust = required_string(e.value, "trust", src, where);
    if (!trust) return trust.error();
    EdSite s{*trust, {}};
    const json::Value* pl = json::member(e.value, "paediatricLiaison");
    if (!pl || !pl->IsArray() || pl->Empty()) return bad_key(src, where + ".paediatricLiaison", "must list ODS codes");
    for (const auto& o : pl->GetArray()) {
      if (!o.IsString() || o.GetStringLength() == 0) return bad_key(src, where + ".paediatricLiaison", "must list ODS codes");
      s.paediatric_liaison.emplace_back(json::as_view(o));
    }
    ed[k] = std::move(s);
  }
  return {};
}

Result<void> parse_pregnancy(const json::Value& doc, const std::string& src, PregnancyRules& p) {
  const json::Value* v = json::member(doc, "pregnancy");
  if (!v) return bad_key(src, "pregnancy", "is required");
  if (auto r = only_keys(*v, {"completeness", "repeatRiskAssessmentWeeks", "repeatRiskAssessmentCodes"}, src,
                         "pregnancy");
      !r)
    return r;
  const json::Value* c = json::member(*v, "completeness");
  if (!c || !c->IsArray() || c->Empty()) return bad_key(src, "pregnancy.completeness", "must be a non-empty array");
  int i = 0;
  for (const auto& e : c->GetArray()) {
    std::string where = "pregnancy.completeness[" + std::to_string(i++) + "]";
    if (auto r = only_keys(e, {"check", "label"}, src, where); !r) return r;
    auto check = required_string(e, "check", src, where);
    if (!check) return check.error();
    if (std::find(std::begin(kChecks), std::end(kChecks), *check) == std::end(kChecks))
      return bad_key(src, where + ".check", "'" + *check + "' is not a check the gateway implements");
    auto label = required_string(e, "label", src, where);
    if (!label) return label.error();
    p.completeness.push_back(CompletenessRule{*check, *label});
  }
  auto w = positive(*v, "repeatRiskAssessmentWeeks", src, "pregnancy", 28);
  if (!w) return w.error();
  if (*w > 42) return bad_key(src, "pregnancy.repeatRiskAssessmentWeeks", "must be a gestation in weeks (<= 42)");
  p.repeat_assessment_weeks = *w;
  auto rc = codes(*v, "repeatRiskAssessmentCodes", src, "pregnancy");
  if (!rc) return rc.error();
  p.repeat_assessment_codes = std::move(*rc);
  return {};
}

Result<void> parse_ed(const json::Value& doc, const std::string& src, EdRules& ed) {
  const json::Value* v = json::member(doc, "ed");
  if (!v) return bad_key(src, "ed", "is required");
  if (auto r = only_keys(*v, {"adultAge", "reasons", "childrenAtHome", "frequentAttender", "datesShown"}, src, "ed"); !r)
    return r;
  auto age = positive(*v, "adultAge", src, "ed", 18);
  if (!age) return age.error();
  ed.adult_age = *age;
  auto shown = positive(*v, "datesShown", src, "ed", 3);
  if (!shown) return shown.error();
  ed.dates_shown = *shown;
  const json::Value* rs = json::member(*v, "reasons");
  if (!rs || !rs->IsObject() || rs->ObjectEmpty()) return bad_key(src, "ed.reasons", "must be a non-empty object");
  for (const auto& e : rs->GetObject()) {
    std::string k(e.name.GetString(), e.name.GetStringLength());
    if (k == "comment") continue;
    std::string where = "ed.reasons." + k;
    if (auto r = only_keys(e.value, {"display", "codes", "unconfirmed"}, src, where); !r) return r;
    auto display = required_string(e.value, "display", src, where);
    if (!display) return display.error();
    auto cs = codes(e.value, "codes", src, where);
    if (!cs) return cs.error();
    ed.reasons.push_back(ReasonCategory{k, *display, std::move(*cs)});
  }
  const json::Value* q = json::member(*v, "childrenAtHome");
  if (!q) return bad_key(src, "ed.childrenAtHome", "is required ({\"code\", \"yes\"})");
  if (auto r = only_keys(*q, {"code", "yes"}, src, "ed.childrenAtHome"); !r) return r;
  auto qc = required_string(*q, "code", src, "ed.childrenAtHome");
  if (!qc) return qc.error();
  ed.children_question = *qc;
  const json::Value* yes = json::member(*q, "yes");
  if (!yes || !yes->IsArray() || yes->Empty()) return bad_key(src, "ed.childrenAtHome.yes", "must list the answers meaning yes");
  for (const auto& y : yes->GetArray())
    if (y.IsString()) ed.children_yes.emplace_back(json::as_view(y));
  const json::Value* f = json::member(*v, "frequentAttender");
  if (!f) return bad_key(src, "ed.frequentAttender", "is required ({\"attendances\", \"months\"})");
  if (auto r = only_keys(*f, {"attendances", "months"}, src, "ed.frequentAttender"); !r) return r;
  auto n = positive(*f, "attendances", src, "ed.frequentAttender", 3);
  if (!n) return n.error();
  auto m = positive(*f, "months", src, "ed.frequentAttender", 12);
  if (!m) return m.error();
  ed.frequent_attendances = *n;
  ed.frequent_months = *m;
  return {};
}

Result<void> parse_lac(const json::Value& doc, const std::string& src, LacRules& lac) {
  const json::Value* v = json::member(doc, "lac");
  if (!v) return bad_key(src, "lac", "is required");
  if (auto r = only_keys(*v,
                         {"initialWorkingDays", "reviewMonthsUnder5", "reviewMonthsFrom5", "dueSoonWorkingDays",
                          "completionCodes"},
                         src, "lac");
      !r)
    return r;
  for (auto [key, out, def] : {std::tuple{"initialWorkingDays", &lac.initial_working_days, 20},
                               std::tuple{"reviewMonthsUnder5", &lac.review_months_under5, 6},
                               std::tuple{"reviewMonthsFrom5", &lac.review_months_from5, 12},
                               std::tuple{"dueSoonWorkingDays", &lac.due_soon_working_days, 5}}) {
    auto n = positive(*v, key, src, "lac", def);
    if (!n) return n.error();
    *out = *n;
  }
  const json::Value* cc = json::member(*v, "completionCodes");
  if (!cc) return bad_key(src, "lac.completionCodes", "is required ({\"IHA\": [...], \"RHA\": [...]})");
  if (auto r = only_keys(*cc, {"IHA", "RHA"}, src, "lac.completionCodes"); !r) return r;
  for (const char* k : {"IHA", "RHA"}) {
    auto cs = codes(*cc, k, src, "lac.completionCodes");
    if (!cs) return cs.error();
    lac.completion_codes[k] = std::move(*cs);
  }
  return {};
}

Result<void> parse_acknowledgement(const json::Value& doc, const std::string& src, AcknowledgementRules& ack) {
  const json::Value* v = json::member(doc, "acknowledgement");
  if (!v) return {};  // nothing escalates
  if (auto r = only_keys(*v, {"firstDeadlineWorkingDays", "secondDeadlineWorkingDays"}, src, "acknowledgement"); !r)
    return r;
  const json::Value* first = json::member(*v, "firstDeadlineWorkingDays");
  if (!first || !first->IsObject())
    return bad_key(src, "acknowledgement.firstDeadlineWorkingDays", "is required (topic name -> working days)");
  for (const auto& e : first->GetObject()) {
    std::string k(e.name.GetString(), e.name.GetStringLength());
    if (k == "comment") continue;
    if (!e.value.IsInt() || e.value.GetInt() < 1 || e.value.GetInt() > 60)
      return bad_key(src, "acknowledgement.firstDeadlineWorkingDays." + k, "must be a number of working days (1-60)");
    ack.first_working_days[k] = e.value.GetInt();
  }
  auto second = positive(*v, "secondDeadlineWorkingDays", src, "acknowledgement", 2);
  if (!second) return second.error();
  ack.second_working_days = *second;
  return {};
}

}  // namespace

Result<std::optional<EscalationDeadlines>> Area::escalation_deadlines(std::string_view topic,
                                                                      std::string_view sent) const {
  auto it = ack_.first_working_days.find(topic);
  if (it == ack_.first_working_days.end()) return std::optional<EscalationDeadlines>();
  auto ms = clock::parse_iso_ms(sent);
  if (!ms) return make_error(Errc::invalid_input, "the disclosure's sent time is not an instant", std::string(sent));
  auto at = std::chrono::system_clock::time_point(std::chrono::milliseconds(*ms));
  auto first = calendar_.add(london_date(at), it->second);
  if (!first) return first.error();
  auto second = calendar_.add(*first, ack_.second_working_days);
  if (!second) return second.error();
  return std::optional<EscalationDeadlines>(
      EscalationDeadlines{format_utc(end_of_london_day(*first)), format_utc(end_of_london_day(*second))});
}

Result<Area> Area::parse(std::string_view services_json, std::string_view rules_json, WorkingDays calendar,
                         const std::string& services_source, const std::string& rules_source) {
  Area a;
  a.calendar_ = std::move(calendar);
  auto sdoc = json::parse(services_json);
  if (!sdoc) return make_error(Errc::invalid_input, services_source + ": " + sdoc.error().message);
  if (auto r = parse_services(*sdoc, services_source, a.designated_nurse_, a.hv_by_practice_, a.hv_spoa_, a.lac_by_authority_,
                              a.authority_by_ons_, a.ed_sites_);
      !r)
    return r.error();
  auto rdoc = json::parse(rules_json);
  if (!rdoc) return make_error(Errc::invalid_input, rules_source + ": " + rdoc.error().message);
  if (auto r = only_keys(*rdoc, {"pregnancy", "ed", "lac", "acknowledgement"}, rules_source, ""); !r) return r.error();
  if (auto r = parse_pregnancy(*rdoc, rules_source, a.pregnancy_); !r) return r.error();
  if (auto r = parse_ed(*rdoc, rules_source, a.ed_); !r) return r.error();
  if (auto r = parse_lac(*rdoc, rules_source, a.lac_); !r) return r.error();
  if (auto r = parse_acknowledgement(*rdoc, rules_source, a.ack_); !r) return r.error();
  return a;
}

Result<std::shared_ptr<const Area>> Area::load(const std::string& profiles_dir, Date today) {
  auto cal = WorkingDays::load(profiles_dir, today);
  if (!cal) return cal.error();
  namespace fs = std::filesystem;
  std::string sp = (fs::path(profiles_dir) / kServicesFile).string(), rp = (fs::path(profiles_dir) / kRulesFile).string();
  auto s = read_profile(sp);
  if (!s) return s.error();
  auto r = read_profile(rp);
  if (!r) return r.error();
  auto a = parse(json::to_string(*s), json::to_string(*r), std::move(*cal), sp, rp);
  if (!a) return a.error();
  return std::make_shared<const Area>(std::move(*a));
}

Result<std::map<std::string, std::string, std::less<>>> load_authority_by_ons(const std::string& profiles_dir) {
  std::string sp = (std::filesystem::path(profiles_dir) / kServicesFile).string();
  auto s = read_profile(sp);
  if (!s) return s.error();
  std::map<std::string, std::string, std::less<>> out;
  if (auto r = string_map(*s, "authorityByOnsCode", sp, out); !r) return r.error();
  return out;
}

std::optional<Team> Area::health_visiting_for_practice(std::string_view practice_ods) const {
  auto it = hv_by_practice_.find(practice_ods);
  if (it == hv_by_practice_.end()) return std::nullopt;
  return it->second;
}
std::optional<std::string> Area::lac_health_for_authority(std::string_view ods) const {
  auto it = lac_by_authority_.find(ods);
  if (it == lac_by_authority_.end()) return std::nullopt;
  return it->second;
}
std::optional<std::string> Area::authority_for_ons(std::string_view ons) const {
  auto it = authority_by_ons_.find(ons);
  if (it == authority_by_ons_.end()) return std::nullopt;
  return it->second;
}
const EdSite* Area::ed_site(std::string_view ods) const {
  auto it = ed_sites_.find(ods);
  return it == ed_sites_.end() ? nullptr : &it->second;
}

}  // namespace gw::area
