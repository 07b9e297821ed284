#include "gateway/events/lac_assessments.h"

#include <algorithm>

#include "gateway/area/working_days.h"
#include "gateway/events/flows/flow_kit.h"
#include "gateway/model/cpis_plan.h"

namespace gw::events {

namespace {

using flows::str;

constexpr std::string_view kLacSnomed = "764841000000100";

// Assessment done: the kind (IHA/RHA) and the date, from the resource's codes.
std::optional<std::pair<std::string, std::string>> completion(const json::Value& r, const FlowContext& ctx) {
  std::string st = str(r, "status");
  if (st == "entered-in-error" || st == "cancelled" || flows::sexual_health(r)) return std::nullopt;
  for (const auto& [kind, codes] : ctx.area->lac().completion_codes) {
    if (!flows::coded_any(r, codes)) continue;
    std::string when;
    if (const json::Value* p = json::member(r, "period")) when = flows::date_part(str(*p, "start"));
    if (when.empty()) when = flows::date_part(str(r, "effectiveDateTime"));
    if (when.empty()) return std::nullopt;
    return std::make_pair(kind, when);
  }
  return std::nullopt;
}

}  // namespace

bool records_assessment(const json::Value& r, const FlowContext& ctx) { return completion(r, ctx).has_value(); }

std::optional<LacSchedule> lac_schedule(const std::string& plan_id, const json::Value& plan, Lookup& lookup,
                                        const FlowContext& ctx) {
  const auto* type = model::cpis::plan_type_of(plan);
  if (!type || type->snomed != kLacSnomed) return std::nullopt;
  LacSchedule s;
  s.plan_id = plan_id;
  s.patient_id = flows::patient_id_of(plan);
  s.authority = model::cpis::managing_ods(plan);
  const json::Value* period = json::member(plan, "period");
  s.start = period ? flows::date_part(str(*period, "start")) : std::string();
  std::string end = period ? flows::date_part(str(*period, "end")) : std::string();
  const std::string today = ctx.today();
  s.active = !s.start.empty() && !s.patient_id.empty() && str(plan, "status") != "entered-in-error" &&
             str(plan, "status") != "inactive" && (end.empty() || end > today);
  auto start = area::parse_date(s.start);
  if (!start) return s;
  const auto& rules = ctx.area->lac();
  std::vector<std::pair<std::string, std::string>> done;  // (date, evidence), oldest first
  std::vector<std::string> kinds;
  for (const char* type_name : {"Encounter", "Observation"}) {
    for (const auto& r : lookup.about(type_name, s.patient_id)) {
      auto c = completion(r, ctx);
      if (!c || c->second < s.start) continue;
      done.emplace_back(c->second, std::string(type_name) + "/" + str(r, "id"));
    }
  }
  std::sort(done.begin(), done.end());
  auto due = ctx.area->calendar().add(*start, rules.initial_working_days);
  if (!due) {
    s.error = due.error().message;
    return s;
  }
  std::string birth = flows::birth_date(lookup, s.patient_id);
  Assessment a{"IHA", area::format_date(*due), "", "", ""};
  for (const auto& [when, evidence] : done) {
    a.completed = when;
    a.evidence = evidence;
    a.status = "completed";
    s.assessments.push_back(a);
    auto age = flows::age_on(birth, when);
    int months = age && *age < 5 ? rules.review_months_under5 : rules.review_months_from5;
    a = Assessment{"RHA", area::format_date(area::add_months(area::parse_date(when).value(), months)), "", "", ""};
  }
  if (s.active) {
    a.status = a.due < today ? "overdue" : "due";
    s.assessments.push_back(a);
  }
  return s;
}

store::TimerSet lac_timers(const LacSchedule& s, const FlowContext& ctx) {
  store::TimerSet set{std::string(kLacTimerKind), "CareTeam/" + s.plan_id, {}};
  if (!s.active || s.assessments.empty() || s.assessments.back().status == "completed") return set;
  const Assessment& open = s.assessments.back();
  auto due = area::parse_date(open.due);
  if (!due) return set;
  std::string base = "lac:" + s.plan_id + ":" + open.kind + ":" + open.due + ":";
  auto payload = [&](const char* stage) {
    return std::string("{\"plan\":\"") + s.plan_id + "\",\"assessment\":\"" + open.kind + "\",\"due\":\"" + open.due +
           "\",\"stage\":\"" + stage + "\"}";
  };
  if (auto soon = ctx.area->calendar().add(*due, -ctx.area->lac().due_soon_working_days))
    set.timers.push_back(store::TimerRow{base + "due-soon", "", "", area::format_date(*soon) + "T00:00:00Z",
                                         payload("due-soon")});
  set.timers.push_back(store::TimerRow{base + "overdue", "", "",
                                       area::format_date(*due + std::chrono::days(1)) + "T00:00:00Z",
                                       payload("overdue")});
  return set;
}

std::vector<std::string> lac_lines(const LacSchedule& s) {
  std::vector<std::string> out;
  out.push_back("Looked after from " + s.start + " (local authority " + s.authority + ")" +
                (s.active ? "" : "; the plan has ended"));
  for (const auto& a : s.assessments) {
    std::string name = a.kind == "IHA" ? "Initial health assessment" : "Review health assessment";
    if (a.status == "completed")
      out.push_back(name + " due " + a.due + ": completed on " + a.completed);
    else
      out.push_back(name + " due " + a.due + ": " + (a.status == "overdue" ? "OVERDUE" : "not yet done"));
  }
  if (!s.error.empty()) out.push_back("The due date could not be counted: " + s.error);
  return out;
}

}  // namespace gw::events
