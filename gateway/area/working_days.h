#pragma once
// Working days in England and Wales: Monday to Friday, less the bank holidays
// listed in profiles/calendar/bank-holidays-england-and-wales.json (the
// gov.uk list, with its source). The table covers a stated range of dates;
// a calculation that would look at a day outside it is refused with an error
// naming the date, never counted as if it were a working day, because a
// statutory deadline silently moved by a missing holiday is worse than a
// loud start-up failure (CPIS.md section 4, lac-health-assessment-due).
#include <chrono>
#include <set>
#include <string>
#include <string_view>

#include "gateway/common/result.h"

namespace gw::area {

using Date = std::chrono::sys_days;

// "YYYY-MM-DD" naming a real day, or an error.
Result<Date> parse_date(std::string_view text);
std::string format_date(Date d);
// Calendar months later (29, 30, 31 clamp to the month's last day).
Date add_months(Date d, int months);
// Whole years between a birth date and a day (age on that day).
int age_on(Date birth, Date day);

// Civil time in England (Europe/London): GMT, or BST (UTC+1) from 01:00 UTC
// on the last Sunday of March to 01:00 UTC on the last Sunday of October
// (the Summer Time Act 1972 as amended by the Summer Time Order 2002). The
// rule is written here, beside the bank holidays, because the toolchain's
// C++ library (GCC 12) has no time-zone database and a deadline only needs
// the day and its end.
bool british_summer_time(std::chrono::system_clock::time_point t);
// The date in England at instant t.
Date london_date(std::chrono::system_clock::time_point t);
// The instant day d ends in England (00:00 local of the next day), as UTC.
std::chrono::system_clock::time_point end_of_london_day(Date d);
// "YYYY-MM-DDTHH:MM:SSZ" (the durable timers' due times).
std::string format_utc(std::chrono::system_clock::time_point t);

class WorkingDays {
 public:
  static constexpr std::string_view kFile = "calendar/bank-holidays-england-and-wales.json";
  // Reads profiles_dir/kFile. `today` (start-up): the table must cover it and
  // the whole of the following year, so a deadline set today can be counted.
  static Result<WorkingDays> load(const std::string& profiles_dir, Date today);
  static Result<WorkingDays> parse(std::string_view json_text, const std::string& source);

  // Weekday and not a bank holiday; error outside the table.
  Result<bool> is_working_day(Date d) const;
  // The n-th working day after d (n >= 1), or before it (n <= -1); d itself
  // is not counted. Every day passed over must be inside the table.
  Result<Date> add(Date d, int n) const;

  Date first() const { return first_; }
  Date last() const { return last_; }
  const std::string& source() const { return source_; }

 private:
  std::set<Date> holidays_;
  Date first_{}, last_{};
  std::string source_;  // where the list comes from (the file's "source")
};

}  // namespace gw::area
