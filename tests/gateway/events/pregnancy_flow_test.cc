// pregnancy-notification end to end (issue 15 part 1): SystmOne ZPN bookings
// become a maternity EpisodeOfCare and booking Observations; the family's
// health-visiting team is chosen by the rules (children's HV, GP practice
// table, single point of access) and told which rule chose it; incomplete
// bookings are marked so, and the booking midwifery service — only for its
// own bookings — is told what is missing and what the shared record holds.
// The 28-week repeat risk assessment reminder fires once.
#include <gtest/gtest.h>

#include <thread>

#include "gateway/events/subscriptions.h"
#include "tests/support/fixtures.h"
#include "tests/support/flows_kit.h"
#include "tests/support/plan_seed.h"

namespace gw {
namespace {

using namespace std::chrono_literals;
using test::FlowFixture;

constexpr const char* kJade = "9990079196";
constexpr const char* kLeah = "9990500371";
constexpr const char* kChild = "9990501114";

// A booking from the dev midwifery service (RXX03).
std::string booking(const std::string& nhs, const std::string& zpn, const std::string& id) {
  return "MSH|^~\\&|SYSTMONE|RXX03|ROUTE|CPISGW|20261208094500+0000||ORU^R01^ORU_R01|" + id + "|P|2.4\r"
         "PID|1||" + nhs + "^^^NHS^NH||MOTHER^Expectant||19960212|F\r"
         "OBR|1||OBR-" + id + "|BOOKING^Pregnancy booking^LOCAL|||20261208093000\r" + zpn + "\r";
}

TEST(PregnancyNotification, ACompleteBookingGoesToTheTeamOfHerPracticeAndTheMidwifeGetsTheRecord) {
  FlowFixture f;
  std::string hv = f.subscribe("health-visiting", "pregnancy-notification", "/hv");
  std::string mw = f.subscribe("midwifery", "pregnancy-notification", "/mw");
  f.hl7(test::a28(kJade, "Jade", "19960212", "B86001", {}));
  f.hl7(booking(kJade, "ZPN|20270514|14|20261208|Y|Housing unstable", "BK-1"));
  ASSERT_TRUE(f.wait_events(1, "/hv"));
  ASSERT_TRUE(f.wait_events(1, "/mw"));
  auto h = f.received("/hv");
  std::string text = test::payload_text(h[0]);
  EXPECT_NE(text.find("Pregnancy booked on 2026-12-08 by RXX03"), std::string::npos) << text;
  EXPECT_NE(text.find("Estimated date of delivery: 2027-05-14; gestation at booking 14 weeks"), std::string::npos);
  EXPECT_NE(text.find("Booking risk assessment done: yes"), std::string::npos);
  EXPECT_NE(text.find("Social concerns: Housing unstable"), std::string::npos);
  EXPECT_NE(text.find("chosen by: the health-visiting team attached to her GP practice B86001"), std::string::npos)
      << text;
  EXPECT_NE(text.find("Notification complete"), std::string::npos);
  EXPECT_STREQ(h[0]["topic"]["coding"][0]["code"].GetString(), "complete");
  auto m = f.received("/mw");
  std::string mtext = test::payload_text(m[0]);
  EXPECT_NE(mtext.find("The shared record holds no CP-IS plan"), std::string::npos) << mtext;
  EXPECT_EQ(mtext.find("chosen by"), std::string::npos) << "the team choice is the health visitor's";
  // One booking, one notification each, although four resources changed.
  f.settle();
  EXPECT_EQ(f.events_of(hv), 1);
  EXPECT_EQ(f.events_of(mw), 1);
}

TEST(PregnancyNotification, AnIncompleteBookingIsMarkedAndTheMidwifeToldWhatToSend) {
  FlowFixture f;
  std::string hv = f.subscribe("health-visiting", "pregnancy-notification", "/hv");
  std::string mw = f.subscribe("midwifery", "pregnancy-notification", "/mw");
  f.hl7(test::fixture("systmone/oru_r01_pregnancy_incomplete.hl7"));  // Leah: no GP, no address known
  ASSERT_TRUE(f.wait_events(1, "/hv"));
  ASSERT_TRUE(f.wait_events(1, "/mw"));
  std::string text = test::payload_text(f.received("/hv")[0]);
  EXPECT_NE(text.find("chosen by: the health-visiting single point of access"), std::string::npos) << text;
  EXPECT_STREQ(f.received("/hv")[0]["topic"]["coding"][0]["code"].GetString(), "incomplete");
  // Each completeness rule: its label is listed.
  for (const char* missing : {"the woman's registered GP practice", "her address with postcode",
                              "the estimated date of delivery", "the booking date",
                              "the booking risk assessment, done",
                              "the social-concerns question answered (none is an answer)"})
    EXPECT_NE(text.find(missing), std::string::npos) << missing << "\n" << text;
  std::string mtext = test::payload_text(f.received("/mw")[0]);
  EXPECT_NE(mtext.find("Please send what is missing"), std::string::npos) << mtext;
  // Her GP and address arrive; the risk assessment and concerns come later: each answered rule drops out.
  f.hl7(test::a28(kLeah, "Leah", "19990301", "B86001", {}, "F", "20261210091500"));
  f.hl7(booking(kLeah, "ZPN|20270601|11|20261202|Y|None", "BK-2"));
  ASSERT_TRUE(f.wait_events(2, "/hv"));
  std::string now = test::payload_text(f.received("/hv").back());
  EXPECT_NE(now.find("Notification complete"), std::string::npos) << now;
}

TEST(PregnancyNotification, TheChildrensHealthVisitorComesFirstAndOnlyTheBookingServiceHearsAsMidwife) {
  FlowFixture f;
  std::string hv = f.subscribe("health-visiting", "pregnancy-notification", "/hv");
  std::string mw = f.subscribe("midwifery", "pregnancy-notification", "/mw");
  std::string gp = f.subscribe("gp", "pregnancy-notification", "/gp");
  // Her child is on another health visitor's caseload (RXX99): that team is chosen, not the practice's.
  f.hl7(test::a28(kJade, "Jade", "19960212", "B86001", {}));
  f.hl7(test::a28(kChild, "Ava", "20240101", "B86001",
                  {"NK1|1|MOTHER^Jade|MTH" + std::string(30, '|') + kJade + "^^^NHS^NH", "ZCT|HV|RXX99^Other HV|20240201|"}));
  // A booking made by another service (RFRMW, the shipped sample).
  f.hl7(test::fixture("systmone/oru_r01_pregnancy_zpn.hl7"));
  ASSERT_TRUE(f.wait_events(1, "/gp"));
  f.settle();
  EXPECT_EQ(f.events_of(hv), 0) << "RXX02 is not the team caring for her child";
  EXPECT_EQ(f.events_of(mw), 0) << "not RXX03's booking";
  EXPECT_NE(test::payload_text(f.received("/gp")[0]).find("Pregnancy booked on 2026-11-08 by RFRMW"), std::string::npos);
  // The child moves to the dev health visitor: the next booking change goes to RXX02, chosen by that rule.
  f.hl7(test::a28(kChild, "Ava", "20240101", "B86001",
                  {"NK1|1|MOTHER^Jade|MTH" + std::string(30, '|') + kJade + "^^^NHS^NH", "ZCT|HV|RXX02^Dev HV|20240201|",
                   "ZCT|HV|RXX99^Other HV|20240201|20261201"},
                  "F", "20261205091500"));
  f.hl7(booking(kJade, "ZPN|20270514|14|20261108|Y|None", "BK-3"));
  ASSERT_TRUE(f.wait_events(1, "/hv"));
  EXPECT_NE(test::payload_text(f.received("/hv")[0]).find("chosen by: the health-visiting team already caring for her children"),
            std::string::npos)
      << test::payload_text(f.received("/hv")[0]);
}

TEST(PregnancyNotification, TheMidwifeLearnsWhatTheRecordHoldsAndMayAskAgain) {
  FlowFixture f;
  std::string mw = f.subscribe("midwifery", "pregnancy-notification", "/mw");
  f.hl7(test::a28(kJade, "Jade", "19960212", "B86001", {}));
  f.hl7(test::a28(kChild, "Ava", "20240101", "B86001", {"NK1|1|MOTHER^Jade|MTH" + std::string(30, '|') + kJade + "^^^NHS^NH"}));
  test::create_plan(f.client("local-authority"), f.patient_id(kChild), kChild, test::PlanSeed{});
  f.hl7(booking(kJade, "ZPN|20270514|14|20261208|Y|None", "BK-4"));
  ASSERT_TRUE(f.wait_events(1, "/mw"));
  std::string text = test::payload_text(f.received("/mw")[0]);
  EXPECT_NE(text.find(std::string("CP-IS: her child ") + kChild + " - Subject to child protection plan since 2026-01-05"),
            std::string::npos)
      << text;
  auto r = f.call("midwifery", "GET", "/fhir/Patient/" + f.patient_id(kJade) + "/$booking-summary");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("Subject to child protection plan since 2026-01-05"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(R"({"name":"complete","valueBoolean":true})"), std::string::npos) << r.body;
  EXPECT_EQ(f.call("health-visiting", "GET", "/fhir/Patient/" + f.patient_id(kJade) + "/$booking-summary").status, 403);
  EXPECT_EQ(f.call("midwifery", "GET", "/fhir/Patient/" + f.patient_id(kChild) + "/$booking-summary").status, 404);
}

TEST(PregnancyNotification, RepeatRiskAssessmentReminderFiresOnceAt28Weeks) {
  FlowFixture f;
  f.gw.set_today("2026-12-08");
  std::string mw = f.subscribe("midwifery", "pregnancy-notification", "/mw");
  std::string hv = f.subscribe("health-visiting", "pregnancy-notification", "/hv");
  f.hl7(test::a28(kJade, "Jade", "19960212", "B86001", {}));
  f.hl7(booking(kJade, "ZPN|20270514|14|20261208|Y|None", "BK-5"));  // 28 weeks on 2027-02-19
  ASSERT_TRUE(f.wait_events(1, "/mw"));
  auto tick = [&](const char* day) {
    f.gw.set_today(day);
    f.gw.subscriptions().timers()->wake();
    std::this_thread::sleep_for(400ms);
    f.settle();
  };
  tick("2027-02-18");
  EXPECT_EQ(f.events_of(mw), 1);
  tick("2027-02-19");
  ASSERT_TRUE(f.wait_events(2, "/mw"));
  EXPECT_NE(test::payload_text(f.received("/mw")[1]).find("no repeat social risk assessment is recorded and the "
                                                          "pregnancy reached 28 weeks on 2027-02-19"),
            std::string::npos)
      << test::payload_text(f.received("/mw")[1]);
  tick("2027-03-01");
  EXPECT_EQ(f.events_of(mw), 2);
  EXPECT_EQ(f.events_of(hv), 1) << "the reminder is the booking service's";
}

TEST(PregnancyNotification, ARecordedRepeatAssessmentCancelsTheReminder) {
  FlowFixture f;
  f.gw.set_today("2026-12-08");
  std::string mw = f.subscribe("midwifery", "pregnancy-notification", "/mw");
  f.hl7(test::a28(kJade, "Jade", "19960212", "B86001", {}));
  f.hl7(booking(kJade, "ZPN|20270514|14|20261208|Y|None", "BK-6"));
  ASSERT_TRUE(f.wait_events(1, "/mw"));
  std::string obs = R"({"resourceType":"Observation","status":"final","code":{"coding":[{"system":"https://cpis-gateway.nhs.uk/CodeSystem/maternity-booking","code":"repeat-social-risk-assessment"}]},"subject":{"reference":"Patient/)" +
                    f.patient_id(kJade) + R"("},"effectiveDateTime":"2027-02-01","valueBoolean":true})";
  ASSERT_EQ(f.call("midwifery", "POST", "/fhir/Observation", obs).status, 201);
  f.settle();
  f.gw.set_today("2027-02-20");
  f.gw.subscriptions().timers()->wake();
  std::this_thread::sleep_for(400ms);
  f.settle();
  EXPECT_EQ(f.events_of(mw), 1);
}

}  // namespace
}  // namespace gw
