#include "gateway/model/cpis_plan.h"

#include <array>
#include <chrono>
#include <cstdio>

namespace gw::model::cpis {

namespace {

constexpr std::array<PlanType, 3> kPlanTypes = {{
    {"CPP", "342191000000101", "Subject to child protection plan", false},
    {"LAC", "764841000000100", "Looked after child", false},
    {"UCPP", "818901000000100", "Unborn child subject to child protection plan", true},
}};

bool is_iso_date(std::string_view d) {
  if (d.size() < 10 || d[4] != '-' || d[7] != '-') return false;
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9})
    if (d[i] < '0' || d[i] > '9') return false;
  return true;
}

}  // namespace

const PlanType* plan_type_by_abbreviation(std::string_view abbreviation) {
  for (const auto& t : kPlanTypes)
    if (t.abbreviation == abbreviation) return &t;
  return nullptr;
}

const PlanType* plan_type_by_snomed(std::string_view code) {
  for (const auto& t : kPlanTypes)
    if (t.snomed == code) return &t;
  return nullptr;
}

const PlanType* plan_type_of(const json::Value& care_team) {
  const json::Value* cats = json::member(care_team, "category");
  if (!cats || !cats->IsArray()) return nullptr;
  for (const auto& cc : cats->GetArray()) {
    const json::Value* coding = json::member(cc, "coding");
    if (!coding || !coding->IsArray()) continue;
    for (const auto& c : coding->GetArray()) {
      auto sys = json::get_string(c, "system");
      auto code = json::get_string(c, "code");
      if (sys && *sys == kSnomed && code)
        if (const PlanType* t = plan_type_by_snomed(*code)) return t;
    }
  }
  return nullptr;
}

std::string scope_cutoff(std::string_view today) {
  if (!is_iso_date(today)) return {};
  int y = std::stoi(std::string(today.substr(0, 4))) - 1;
  int m = std::stoi(std::string(today.substr(5, 2)));
  int d = std::stoi(std::string(today.substr(8, 2)));
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (m == 2 && d == 29 && !leap) d = 28;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", y, m, d);
  return buf;
}

bool in_scope(const json::Value& care_team, std::string_view today) {
  auto status = json::get_string(care_team, "status");
  if (status && *status == "entered-in-error") return false;
  const json::Value* period = json::member(care_team, "period");
  auto end = period ? json::get_string(*period, "end") : std::nullopt;
  if (!end || end->empty()) return true;
  if (!is_iso_date(*end)) return true;  // an unreadable end date must not hide a plan
  // Compare dates only: an end of 2025-11-27 is out of scope on 2026-11-27.
  return end->substr(0, 10) > scope_cutoff(today);
}

bool is_calendar_date(std::string_view d) {
  if (d.size() != 10 || !is_iso_date(d)) return false;
  int y = std::stoi(std::string(d.substr(0, 4)));
  unsigned m = static_cast<unsigned>(std::stoi(std::string(d.substr(5, 2))));
  unsigned day = static_cast<unsigned>(std::stoi(std::string(d.substr(8, 2))));
  return std::chrono::year_month_day{std::chrono::year{y}, std::chrono::month{m}, std::chrono::day{day}}.ok();
}

std::string utc_today() {
  auto now = std::chrono::floor<std::chrono::days>(std::chrono::system_clock::now());
  std::chrono::year_month_day ymd{now};
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                static_cast<unsigned>(ymd.day()));
  return buf;
}

std::string managing_ods(const json::Value& care_team) {
  const json::Value* mo = json::member(care_team, "managingOrganization");
  if (!mo || !mo->IsArray()) return {};
  for (const auto& ref : mo->GetArray()) {
    const json::Value* id = json::member(ref, "identifier");
    if (!id) continue;
    auto sys = json::get_string(*id, "system");
    auto val = json::get_string(*id, "value");
    if (sys && *sys == kOdsSystem && val) return std::string(*val);
  }
  return {};
}

}  // namespace gw::model::cpis
