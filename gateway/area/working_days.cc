#include "gateway/area/working_days.h"

#include <cstdio>
#include <filesystem>

#include "gateway/area/profile_file.h"
#include "gateway/common/json.h"

namespace gw::area {

using namespace std::chrono;

Result<Date> parse_date(std::string_view t) {
  auto digits = [&](size_t from, size_t n, int& out) {
    out = 0;
    for (size_t i = from; i < from + n; ++i) {
      if (t[i] < '0' || t[i] > '9') return false;
      out = out * 10 + (t[i] - '0');
    }
    return true;
  };
  int y = 0, m = 0, d = 0;
  if (t.size() != 10 || t[4] != '-' || t[7] != '-' || !digits(0, 4, y) || !digits(5, 2, m) || !digits(8, 2, d))
    return make_error(Errc::invalid_input, "not a date (YYYY-MM-DD)");
  year_month_day ymd{year{y}, month{static_cast<unsigned>(m)}, day{static_cast<unsigned>(d)}};
  if (!ymd.ok()) return make_error(Errc::invalid_input, "not a calendar day");
  return sys_days(ymd);
}

std::string format_date(Date d) {
  year_month_day ymd(d);
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                static_cast<unsigned>(ymd.day()));
  return buf;
}

Date add_months(Date d, int months) {
  year_month_day ymd(d);
  year_month ym = year_month(ymd.year(), ymd.month()) + std::chrono::months(months);
  auto last = year_month_day_last(ym.year(), month_day_last(ym.month())).day();
  return sys_days(year_month_day(ym.year(), ym.month(), ymd.day() > last ? last : ymd.day()));
}

int age_on(Date birth, Date on) {
  year_month_day b(birth), o(on);
  int age = static_cast<int>(o.year()) - static_cast<int>(b.year());
  if (month_day(o.month(), o.day()) < month_day(b.month(), b.day())) --age;
  return age;
}

namespace {

// 01:00 UTC on the last Sunday of the month.
system_clock::time_point last_sunday_0100(int y, unsigned m) {
  sys_days last = sys_days(year_month_day_last(year{y}, month_day_last(month{m})));
  last -= (weekday(last) - Sunday);
  return system_clock::time_point(last) + hours(1);
}

}  // namespace

bool british_summer_time(system_clock::time_point t) {
  int y = static_cast<int>(year_month_day(floor<days>(t)).year());
  return t >= last_sunday_0100(y, 3) && t < last_sunday_0100(y, 10);
}

Date london_date(system_clock::time_point t) {
  return floor<days>(british_summer_time(t) ? t + hours(1) : t);
}

system_clock::time_point end_of_london_day(Date d) {
  system_clock::time_point midnight_utc = system_clock::time_point(d + days(1));
  // Local midnight is 23:00 UTC the day before while summer time is in force
  // (the change happens at 01:00 UTC, so midnight itself is never ambiguous).
  return british_summer_time(midnight_utc - hours(1)) ? midnight_utc - hours(1) : midnight_utc;
}

std::string format_utc(system_clock::time_point t) {
  auto day = floor<days>(t);
  hh_mm_ss hms(floor<seconds>(t - day));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%sT%02d:%02d:%02dZ", format_date(day).c_str(), static_cast<int>(hms.hours().count()),
                static_cast<int>(hms.minutes().count()), static_cast<int>(hms.seconds().count()));
  return buf;
}

Result<WorkingDays> WorkingDays::parse(std::string_view text, const std::string& source) {
  auto doc = json::parse(text);
  if (!doc) return make_error(Errc::invalid_input, source + ": " + doc.error().message);
  if (auto r = only_keys(*doc, {"division", "source", "covers", "events"}, source, ""); !r) return r.error();
  auto division = required_string(*doc, "division", source, "");
  if (!division) return division.error();
  if (*division != "england-and-wales") return bad_key(source, "division", "must be england-and-wales");
  auto src = required_string(*doc, "source", source, "");
  if (!src) return src.error();
  WorkingDays w;
  w.source_ = *src;
  const json::Value* covers = json::member(*doc, "covers");
  if (!covers) return bad_key(source, "covers", "is required ({\"from\": date, \"to\": date})");
  if (auto r = only_keys(*covers, {"from", "to"}, source, "covers"); !r) return r.error();
  for (auto [key, out] : {std::pair{"from", &w.first_}, std::pair{"to", &w.last_}}) {
    auto s = required_string(*covers, key, source, "covers");
    if (!s) return s.error();
    auto d = parse_date(*s);
    if (!d) return bad_key(source, std::string("covers.") + key, "must be a date (YYYY-MM-DD)");
    *out = *d;
  }
  if (w.last_ < w.first_) return bad_key(source, "covers.to", "is before covers.from");
  const json::Value* events = json::member(*doc, "events");
  if (!events || !events->IsArray() || events->Empty()) return bad_key(source, "events", "must be a non-empty array");
  int i = 0;
  for (const auto& e : events->GetArray()) {
    std::string where = "events[" + std::to_string(i++) + "]";
    if (auto r = only_keys(e, {"title", "date", "notes", "bunting"}, source, where); !r) return r.error();
    auto s = required_string(e, "date", source, where);
    if (!s) return s.error();
    auto d = parse_date(*s);
    if (!d) return bad_key(source, where + ".date", "must be a date (YYYY-MM-DD)");
    if (*d < w.first_ || *d > w.last_) return bad_key(source, where + ".date", "is outside covers");
    if (weekday(*d).iso_encoding() > 5) return bad_key(source, where + ".date", "falls on a weekend");
    if (!w.holidays_.insert(*d).second) return bad_key(source, where + ".date", "is listed twice");
  }
  return w;
}

Result<WorkingDays> WorkingDays::load(const std::string& profiles_dir, Date today) {
  std::string path = (std::filesystem::path(profiles_dir) / kFile).string();
  auto doc = read_profile(path);
  if (!doc) return doc.error();
  auto w = parse(json::to_string(*doc), path);
  if (!w) return w;
  Date must_cover = sys_days(year_month_day(year_month_day(today).year() + years(1), December, day(31)));
  if (today < w->first_ || must_cover > w->last_)
    return make_error(Errc::invalid_input,
                      path + ": covers " + format_date(w->first_) + " to " + format_date(w->last_) +
                          ", which must include today and the whole of next year (up to " + format_date(must_cover) +
                          "); add the next year's bank holidays from " + w->source_,
                      "covers");
  return w;
}

Result<bool> WorkingDays::is_working_day(Date d) const {
  if (d < first_ || d > last_)
    return make_error(Errc::unprocessable, "the bank-holiday table (" + std::string(kFile) + ") covers " +
                                               format_date(first_) + " to " + format_date(last_) + ", not " +
                                               format_date(d));
  return weekday(d).iso_encoding() <= 5 && !holidays_.count(d);
}

Result<Date> WorkingDays::add(Date d, int n) const {
  int step = n < 0 ? -1 : 1;
  for (int left = n < 0 ? -n : n; left > 0;) {
    d += days(step);
    auto w = is_working_day(d);
    if (!w) return w.error();
    if (*w) --left;
  }
  return d;
}

}  // namespace gw::area
