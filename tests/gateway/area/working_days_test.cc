// The working-day calculator against known dates (England and Wales), with
// the shipped bank-holiday table: Easter, Christmas on a weekend, the August
// bank holiday, and a date beyond the table refused rather than counted.
#include "gateway/area/working_days.h"

#include <gtest/gtest.h>

#include <chrono>

namespace gw::area {
namespace {

using namespace std::chrono;

Date d(const char* s) { return parse_date(s).value(); }

const WorkingDays& shipped() {
  static WorkingDays w = WorkingDays::load(GW_SOURCE_DIR "/profiles", d("2026-12-07")).value();
  return w;
}

struct Known {
  const char* from;
  int n;
  const char* want;
  const char* why;
};

TEST(WorkingDays, KnownDates) {
  const Known cases[] = {
      {"2026-12-07", 1, "2026-12-08", "an ordinary Monday to Tuesday"},
      {"2026-12-04", 1, "2026-12-07", "Friday to Monday skips the weekend"},
      // Christmas 2026 is a Friday and Boxing Day a Saturday: the substitute is Monday 28th.
      {"2026-12-24", 1, "2026-12-29", "Christmas Day (Fri), weekend and the Boxing Day substitute (Mon 28th)"},
      // Christmas 2027 falls on a Saturday: both substitutes are Mon 27th and Tue 28th.
      {"2027-12-24", 1, "2027-12-29", "Christmas on a Saturday: Monday and Tuesday are the substitute days"},
      // Easter 2027: Good Friday 26 March, Easter Monday 29 March.
      {"2027-03-25", 1, "2027-03-30", "Good Friday and Easter Monday 2027"},
      // Easter 2026: Good Friday 3 April, Easter Monday 6 April.
      {"2026-04-02", 1, "2026-04-07", "Good Friday and Easter Monday 2026"},
      // Summer bank holiday 2027: Monday 30 August.
      {"2027-08-27", 1, "2027-08-31", "the August bank holiday"},
      // New Year 2028 is a Saturday: Monday 3 January is the holiday.
      {"2027-12-31", 1, "2028-01-04", "New Year's Day substitute (Mon 3 Jan 2028)"},
      // A looked-after child from Wed 9 Dec 2026: 20 working days over Christmas.
      {"2026-12-09", 20, "2027-01-11", "20 working days across Christmas and New Year"},
      {"2027-03-15", 20, "2027-04-14", "20 working days across Easter 2027"},
      {"2027-01-11", -20, "2026-12-09", "counting back gives the start again"},
      {"2027-01-11", -5, "2027-01-04", "five working days before a due date after New Year"},
  };
  for (const auto& c : cases) {
    auto got = shipped().add(d(c.from), c.n);
    ASSERT_TRUE(got.has_value()) << c.why;
    EXPECT_EQ(format_date(*got), c.want) << c.why;
  }
}

TEST(WorkingDays, HolidaysAndWeekendsAreNotWorkingDays) {
  for (const char* h : {"2026-12-25", "2026-12-28", "2027-03-26", "2027-03-29", "2027-05-03", "2027-05-31",
                        "2027-08-30", "2027-12-27", "2027-12-28", "2028-01-03"})
    EXPECT_FALSE(shipped().is_working_day(d(h)).value()) << h;
  EXPECT_FALSE(shipped().is_working_day(d("2026-12-26")).value()) << "a Saturday";
  EXPECT_TRUE(shipped().is_working_day(d("2026-12-29")).value());
  EXPECT_TRUE(shipped().is_working_day(d("2026-12-24")).value());
}

// The table is checked against the rules it should follow (Banking and
// Financial Dealings Act 1971 schedule and substitute days), computed here
// independently, so a mistyped date in the file fails this test.
TEST(WorkingDays, ShippedTableFollowsTheStatutorySchedule) {
  auto easter = [](int y) {  // anonymous Gregorian algorithm
    int a = y % 19, b = y / 100, c = y % 100, dd = b / 4, e = b % 4, f = (b + 8) / 25, g = (b - f + 1) / 3;
    int h = (19 * a + b - dd - g + 15) % 30, i = c / 4, k = c % 4, l = (32 + 2 * e + 2 * i - h - k) % 7;
    int m = (a + 11 * h + 22 * l) / 451;
    int month = (h + l - 7 * m + 114) / 31, day = (h + l - 7 * m + 114) % 31 + 1;
    return sys_days(year{y} / month / day);
  };
  auto next_weekday = [](sys_days x) {
    while (weekday(x).iso_encoding() > 5) x += days(1);
    return x;
  };
  for (int y = 2025; y <= 2028; ++y) {
    sys_days e = easter(y);
    sys_days xmas = sys_days(year{y} / December / 25), boxing = xmas + days(1);
    if (weekday(xmas) == Saturday) xmas += days(2), boxing = xmas + days(1);
    else if (weekday(xmas) == Sunday) xmas += days(1), boxing = xmas + days(1);  // 26th then is Monday
    else if (weekday(boxing) == Saturday) boxing += days(2);
    std::vector<sys_days> expected = {
        next_weekday(sys_days(year{y} / January / 1)), e - days(2), e + days(1),
        sys_days(year{y} / May / Monday[1]), sys_days(year{y} / May / Monday[last]),
        sys_days(year{y} / August / Monday[last]), xmas, boxing};
    for (auto h : expected) EXPECT_FALSE(shipped().is_working_day(h).value()) << format_date(h);
    int holidays = 0;
    for (sys_days x = sys_days(year{y} / January / 1); x <= sys_days(year{y} / December / 31); x += days(1))
      if (weekday(x).iso_encoding() <= 5 && !shipped().is_working_day(x).value()) ++holidays;
    EXPECT_EQ(holidays, 8) << y << ": exactly the eight statutory holidays";
  }
}

TEST(WorkingDays, ADateBeyondTheTableIsRefusedLoudly) {
  auto r = shipped().add(d("2028-12-20"), 20);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("2029-01-01"), std::string::npos) << r.error().message;
  EXPECT_FALSE(shipped().is_working_day(d("2024-12-31")).has_value());
}

TEST(WorkingDays, StartUpRefusesATableThatDoesNotCoverNextYear) {
  auto r = WorkingDays::load(GW_SOURCE_DIR "/profiles", d("2028-06-01"));
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("2029-12-31"), std::string::npos) << r.error().message;
  EXPECT_TRUE(WorkingDays::load(GW_SOURCE_DIR "/profiles", d("2027-12-31")).has_value());
}

TEST(WorkingDays, BadTablesNameTheKey) {
  auto bad = [](const char* text) { return WorkingDays::parse(text, "t.json").error().message; };
  const char* head = R"({"division":"england-and-wales","source":"s","covers":{"from":"2026-01-01","to":"2026-12-31"},)";
  EXPECT_NE(bad((std::string(head) + R"("events":[{"title":"x","date":"2026-12-26"}]})").c_str()).find("weekend"),
            std::string::npos);
  EXPECT_NE(bad((std::string(head) + R"("events":[{"title":"x","date":"2027-01-01"}]})").c_str()).find("events[0].date"),
            std::string::npos);
  EXPECT_NE(bad((std::string(head) + R"("events":[{"titel":"x","date":"2026-12-25"}]})").c_str()).find("events[0].titel"),
            std::string::npos);
  EXPECT_NE(bad(R"({"division":"scotland","source":"s","covers":{"from":"2026-01-01","to":"2026-12-31"},"events":[]})")
                .find("division"),
            std::string::npos);
}

TEST(Dates, MonthsAndAges) {
  EXPECT_EQ(format_date(add_months(d("2026-08-31"), 6)), "2027-02-28");
  EXPECT_EQ(format_date(add_months(d("2027-02-28"), 12)), "2028-02-28");
  EXPECT_EQ(age_on(d("2021-12-08"), d("2026-12-07")), 4);
  EXPECT_EQ(age_on(d("2021-12-07"), d("2026-12-07")), 5);
  EXPECT_FALSE(parse_date("2026-02-30").has_value());
  EXPECT_FALSE(parse_date("2026-2-3").has_value());
}

}  // namespace
}  // namespace gw::area
