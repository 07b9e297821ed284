// Looked-after children's health assessments (issue 15 part 4): a LAC plan
// tells the LAC health team serving its authority when the initial
// assessment is due (20 working days), and durable timers tell it once when
// it is due soon and once when it is overdue — whatever the clock does and
// however often the engine restarts; an assessment recorded (HL7 PV1-10 IHA)
// closes it and schedules the review. The clock is the test gateway's
// set_today (noon UTC of that day).
#include <gtest/gtest.h>

#include "gateway/events/flow_timers.h"
#include "gateway/events/subscriptions.h"
#include "tests/support/fixtures.h"
#include "tests/support/flows_kit.h"
#include "tests/support/plan_seed.h"

namespace gw {
namespace {

using namespace std::chrono_literals;
using test::FlowFixture;

constexpr const char* kKai = "9990500746";  // born 2022-04-04

std::string kai_plan(FlowFixture& f, const std::string& start, const std::string& la = "L0001") {
  f.hl7(test::a28(kKai, "Kai", "20220404", "B86001", {}, "M"));
  test::PlanSeed p;
  p.abbreviation = "LAC";
  p.start = start;
  p.la_ods = la;
  return test::create_plan(f.client(la == "L0001" ? "local-authority" : "local-authority-2"), f.patient_id(kKai), kKai, p);
}

std::vector<std::string> texts(FlowFixture& f, const std::string& path) {
  std::vector<std::string> out;
  for (const auto& c : f.received(path)) out.push_back(test::payload_text(c));
  return out;
}

// Waits for the timers engine to run a pass at the gateway's current date.
void tick(FlowFixture& f) {
  f.gw.subscriptions().timers()->wake();
  std::this_thread::sleep_for(400ms);
  f.settle();
}

TEST(LacHealthAssessment, PlanStartTellsTheLacTeamOfItsAuthorityWhenTheInitialAssessmentIsDue) {
  FlowFixture f;
  f.gw.set_today("2026-12-07");
  std::string lac = f.subscribe("lac-health", "lac-health-assessment-due", "/lac");
  std::string plan = kai_plan(f, "2026-12-09");
  ASSERT_TRUE(f.wait_events(1, "/lac"));
  auto c = f.received("/lac");
  std::string text = test::payload_text(c[0]);
  EXPECT_NE(text.find("Looked after from 2026-12-09 (local authority L0001)"), std::string::npos) << text;
  // 20 working days over Christmas and New Year (28 Dec and 1 Jan are holidays).
  EXPECT_NE(text.find("Initial health assessment due 2027-01-11: not yet done"), std::string::npos) << text;
  EXPECT_STREQ(c[0]["recipient"][0]["identifier"]["value"].GetString(), "RXX06");
  // The operation lists the same, for the LAC team and the authority; not for a GP.
  auto r = f.call("lac-health", "GET", "/fhir/CareTeam/" + plan + "/$health-assessments");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find(R"({"name":"due","valueDate":"2027-01-11"})"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(R"({"name":"status","valueCode":"due"})"), std::string::npos) << r.body;
  EXPECT_EQ(f.call("local-authority", "GET", "/fhir/CareTeam/" + plan + "/$health-assessments").status, 200);
  EXPECT_EQ(f.call("gp", "GET", "/fhir/CareTeam/" + plan + "/$health-assessments").status, 403);
  EXPECT_EQ(f.call("local-authority-2", "GET", "/fhir/CareTeam/" + plan + "/$health-assessments").status, 404)
      << "another authority's plan";
}

TEST(LacHealthAssessment, DueSoonAndOverdueEachFireOnceAcrossRestartsAndClockJumps) {
  FlowFixture f;
  f.gw.set_today("2026-12-07");
  std::string lac = f.subscribe("lac-health", "lac-health-assessment-due", "/lac");
  std::string plan = kai_plan(f, "2026-12-09");
  ASSERT_TRUE(f.wait_events(1, "/lac"));
  f.gw.set_today("2027-01-03");  // a day before "due soon" (5 working days before 2027-01-11)
  tick(f);
  EXPECT_EQ(f.events_of(lac), 1);
  f.gw.set_today("2027-01-04");
  tick(f);
  ASSERT_TRUE(f.wait_events(2, "/lac"));
  EXPECT_NE(texts(f, "/lac")[1].find("Initial health assessment due 2027-01-11 (due within 5 working days)"),
            std::string::npos)
      << texts(f, "/lac")[1];
  // A second engine over the same store ("the gateway restarted"), the day after: nothing twice.
  events::FlowTimersOptions o;
  o.clock = [] { return std::chrono::system_clock::time_point(area::parse_date("2027-01-05").value()); };
  events::FlowTimers again(f.gw.store(), f.gw.subscriptions().topics(), f.gw.subscriptions().set(),
                           f.gw.flow_context(), f.gw.metrics(), o, {});
  EXPECT_EQ(again.run_once().value(), 0);
  // The clock jumps far ahead: the overdue reminder fires once...
  f.gw.set_today("2027-02-20");
  tick(f);
  ASSERT_TRUE(f.wait_events(3, "/lac"));
  EXPECT_NE(texts(f, "/lac")[2].find("is OVERDUE: no assessment has been recorded"), std::string::npos);
  // ...and back: nothing fires again, nor on another pass.
  f.gw.set_today("2027-01-04");
  tick(f);
  f.gw.set_today("2027-02-21");
  tick(f);
  EXPECT_EQ(again.run_once().value(), 0);
  EXPECT_EQ(f.events_of(lac), 3);
  auto timers = f.gw.store().timers_of("lac-health-assessment", "CareTeam/" + plan).value();
  ASSERT_EQ(timers.size(), 2u);
  for (const auto& t : timers) EXPECT_EQ(t.status, "fired") << t.key;
}

TEST(LacHealthAssessment, ARecordedAssessmentClosesItAndSchedulesTheReview) {
  FlowFixture f;
  f.gw.set_today("2026-12-07");
  std::string lac = f.subscribe("lac-health", "lac-health-assessment-due", "/lac");
  std::string plan = kai_plan(f, "2026-12-09");
  ASSERT_TRUE(f.wait_events(1, "/lac"));
  // The IHA done on 2026-12-15, reported as an ADT^A04 with PV1-10 IHA.
  f.hl7(test::fixture("systmone/adt_a04_lac_iha.hl7"));
  f.settle();
  auto r = f.call("lac-health", "GET", "/fhir/CareTeam/" + plan + "/$health-assessments");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find(R"({"name":"completed","valueDate":"2026-12-15"})"), std::string::npos) << r.body;
  // Kai is 4 on the day: the review is due six months later.
  EXPECT_NE(r.body.find(R"({"name":"kind","valueCode":"RHA"},{"name":"due","valueDate":"2027-06-15"})"),
            std::string::npos)
      << r.body;
  // The initial assessment's reminders are gone; the review's wait.
  f.gw.set_today("2027-01-20");
  tick(f);
  EXPECT_EQ(f.events_of(lac), 1);
  auto timers = f.gw.store().timers_of("lac-health-assessment", "CareTeam/" + plan).value();
  int cancelled = 0, pending = 0;
  for (const auto& t : timers) {
    if (t.key.find(":IHA:") != std::string::npos) cancelled += t.status == "cancelled";
    if (t.key.find(":RHA:2027-06-15:") != std::string::npos) pending += t.status == "pending";
  }
  EXPECT_EQ(cancelled, 2);
  EXPECT_EQ(pending, 2);
}

TEST(LacHealthAssessment, EndedPlanCancelsItsReminders) {
  FlowFixture f;
  f.gw.set_today("2026-12-07");
  std::string plan = kai_plan(f, "2026-12-09");
  f.settle();
  auto pending = [&] {
    int n = 0;
    for (const auto& t : f.gw.store().timers_of("lac-health-assessment", "CareTeam/" + plan).value())
      n += t.status == "pending";
    return n;
  };
  EXPECT_EQ(pending(), 2);
  auto cur = f.call("local-authority", "GET", "/fhir/CareTeam/" + plan);
  auto d = json::parse(cur.body).value();
  d["period"].AddMember("end", "2026-12-20", d.GetAllocator());
  d["status"].SetString("inactive");
  f.gw.set_today("2026-12-21");
  auto put = f.call("local-authority", "PUT", "/fhir/CareTeam/" + plan, json::to_string(d));
  ASSERT_EQ(put.status, 200) << put.body;
  f.settle();
  EXPECT_EQ(pending(), 0);
}

}  // namespace
}  // namespace gw
