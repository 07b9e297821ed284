// Issue 17: when an unacknowledged disclosure escalates. The shipped
// deadlines (profiles/area/flow-rules.json acknowledgement) counted in
// working days from the day it was sent in England, over weekends and bank
// holidays, falling due at the end of the last working day in Europe/London
// (midnight GMT in winter, 23:00 UTC in summer time).
#include <gtest/gtest.h>

#include <chrono>

#include "gateway/area/area.h"

namespace gw::area {
namespace {

using namespace std::chrono;

std::shared_ptr<const Area> shipped() {
  static auto a = Area::load(GW_SOURCE_DIR "/profiles", parse_date("2026-12-07").value()).value();
  return a;
}

EscalationDeadlines due(std::string_view topic, std::string_view sent) {
  auto r = shipped()->escalation_deadlines(topic, sent);
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message);
  EXPECT_TRUE(r && r->has_value()) << topic << " has no deadline";
  return r && *r ? **r : EscalationDeadlines{};
}

system_clock::time_point at(const char* date, int h, int m = 0) {
  return system_clock::time_point(sys_days(parse_date(date).value())) + hours(h) + minutes(m);
}

TEST(EscalationDeadlines, ShippedDefaultsPerTopic) {
  const auto& ack = shipped()->acknowledgement();
  EXPECT_EQ(ack.first_working_days.at("relapse-indicator"), 1);
  EXPECT_EQ(ack.first_working_days.at("tier4-discharge"), 1);
  EXPECT_EQ(ack.first_working_days.at("safeguarding-concern"), 1);
  EXPECT_EQ(ack.first_working_days.at("adult-attendance-with-children"), 2);
  EXPECT_EQ(ack.first_working_days.at("child-ed-attendance"), 2);
  EXPECT_EQ(ack.first_working_days.at("pregnancy-notification"), 5);
  EXPECT_EQ(ack.second_working_days, 2);
  ASSERT_TRUE(shipped()->designated_nurse());
  EXPECT_EQ(shipped()->designated_nurse()->ods, "QWO");
  // A topic without a deadline is not escalated.
  auto none = shipped()->escalation_deadlines("cpis-plan-change", "2026-12-07T10:00:00Z");
  ASSERT_TRUE(none.has_value());
  EXPECT_FALSE(none->has_value());
}

TEST(EscalationDeadlines, OneWorkingDayMidweekEndsAtMidnightLondon) {
  // Sent Monday: due at the end of Tuesday; the second two working days later (end of Thursday).
  auto d = due("relapse-indicator", "2026-12-07T10:15:00.123Z");
  EXPECT_EQ(d.first, "2026-12-09T00:00:00Z");
  EXPECT_EQ(d.second, "2026-12-11T00:00:00Z");
}

TEST(EscalationDeadlines, AWeekendIsNotCounted) {
  // Sent Friday afternoon: Monday is the one working day; the second is Wednesday.
  auto d = due("tier4-discharge", "2026-12-11T16:30:00Z");
  EXPECT_EQ(d.first, "2026-12-15T00:00:00Z");
  EXPECT_EQ(d.second, "2026-12-17T00:00:00Z");
  // Sent on a Saturday: the same Monday.
  EXPECT_EQ(due("tier4-discharge", "2026-12-12T09:00:00Z").first, "2026-12-15T00:00:00Z");
  // Two working days from Friday: Monday and Tuesday.
  EXPECT_EQ(due("child-ed-attendance", "2026-12-11T16:30:00Z").first, "2026-12-16T00:00:00Z");
}

TEST(EscalationDeadlines, BankHolidaysAreNotCounted) {
  // Christmas Eve (Thursday): Christmas Day (Fri), the weekend and the Boxing
  // Day substitute (Mon 28th) pass; Tuesday 29th is the working day.
  auto d = due("relapse-indicator", "2026-12-24T11:00:00Z");
  EXPECT_EQ(d.first, "2026-12-30T00:00:00Z");
  // Then Wednesday 30th and Thursday 31st.
  EXPECT_EQ(d.second, "2027-01-01T00:00:00Z");
  // Five working days from Wednesday 30 December: 31, (1 Jan holiday), 4, 5, 6, 7 January.
  EXPECT_EQ(due("pregnancy-notification", "2026-12-30T09:00:00Z").first, "2027-01-08T00:00:00Z");
  // Easter 2027: Good Friday 26 March and Easter Monday 29 March.
  EXPECT_EQ(due("relapse-indicator", "2027-03-25T09:00:00Z").first, "2027-03-30T23:00:00Z")
      << "Tuesday 30 March, in summer time";
}

TEST(EscalationDeadlines, SummerTimeMovesTheEndOfTheDayAndTheDaySent) {
  // In BST the day ends at 23:00 UTC.
  EXPECT_EQ(due("child-ed-attendance", "2027-06-01T09:00:00Z").first, "2027-06-03T23:00:00Z");
  // 23:30 UTC on 1 June is 00:30 on 2 June in London: counted from the 2nd.
  EXPECT_EQ(due("relapse-indicator", "2027-06-01T23:30:00Z").first, "2027-06-03T23:00:00Z");
  EXPECT_EQ(due("relapse-indicator", "2027-06-01T22:30:00Z").first, "2027-06-02T23:00:00Z");
}

TEST(EscalationDeadlines, TheClocksChangeAt0100Utc) {
  // 2027: summer time from 28 March to 31 October (last Sundays).
  EXPECT_FALSE(british_summer_time(at("2027-03-28", 0, 59)));
  EXPECT_TRUE(british_summer_time(at("2027-03-28", 1, 0)));
  EXPECT_TRUE(british_summer_time(at("2027-10-31", 0, 59)));
  EXPECT_FALSE(british_summer_time(at("2027-10-31", 1, 0)));
  EXPECT_EQ(format_utc(end_of_london_day(parse_date("2027-03-27").value())), "2027-03-28T00:00:00Z");
  EXPECT_EQ(format_utc(end_of_london_day(parse_date("2027-03-28").value())), "2027-03-28T23:00:00Z");
  EXPECT_EQ(format_utc(end_of_london_day(parse_date("2027-10-30").value())), "2027-10-30T23:00:00Z");
  EXPECT_EQ(format_utc(end_of_london_day(parse_date("2027-10-31").value())), "2027-11-01T00:00:00Z");
  EXPECT_EQ(format_date(london_date(at("2027-07-01", 23, 30))), "2027-07-02");
  EXPECT_EQ(format_date(london_date(at("2027-12-01", 23, 30))), "2027-12-01");
}

TEST(EscalationDeadlines, OutsideTheCalendarIsAnErrorNotAGuess) {
  auto r = shipped()->escalation_deadlines("relapse-indicator", "2028-12-29T10:00:00Z");
  ASSERT_FALSE(r.has_value()) << "2028-12-31 is the table's last day: counting passes it";
  EXPECT_NE(r.error().message.find("2029-01-01"), std::string::npos) << r.error().message;
  EXPECT_FALSE(shipped()->escalation_deadlines("relapse-indicator", "yesterday").has_value());
}

TEST(EscalationDeadlines, MistakesNameTheFileAndKey) {
  auto cal = WorkingDays::load(GW_SOURCE_DIR "/profiles", parse_date("2026-12-07").value()).value();
  const std::string services =
      R"({"healthVisitingByPractice":{},"healthVisitingSinglePointOfAccess":{"ods":"X"},"lacHealthByAuthority":{},
          "authorityByOnsCode":{},"edSites":{},"designatedNurse":{"ods":"QWO"}})";
  auto rules = [](std::string ack) {
    return R"({"pregnancy":{"completeness":[{"check":"edd","label":"EDD"}],"repeatRiskAssessmentCodes":["s|c"]},
      "ed":{"reasons":{"overdose":{"display":"Overdose","codes":["s|c"]}},"childrenAtHome":{"code":"Q","yes":["Y"]},
        "frequentAttender":{"attendances":3,"months":12}},
      "lac":{"completionCodes":{"IHA":["s|IHA"],"RHA":["s|RHA"]}},"acknowledgement":)" +
           ack + "}";
  };
  ASSERT_TRUE(Area::parse(services, rules(R"({"firstDeadlineWorkingDays":{"relapse-indicator":1}})"), cal));
  auto err = [&](std::string ack) {
    auto r = Area::parse(services, rules(ack), cal, "s.json", "r.json");
    return r ? std::string("accepted") : r.error().message;
  };
  EXPECT_NE(err(R"({"firstDeadlineWorkingDays":{"relapse-indicator":0}})")
                .find("acknowledgement.firstDeadlineWorkingDays.relapse-indicator"),
            std::string::npos);
  EXPECT_NE(err(R"({"firstDeadline":{}})").find("acknowledgement.firstDeadline"), std::string::npos);
  EXPECT_NE(err(R"({"firstDeadlineWorkingDays":{},"secondDeadlineWorkingDays":"2"})")
                .find("acknowledgement.secondDeadlineWorkingDays"),
            std::string::npos);
}

}  // namespace
}  // namespace gw::area
