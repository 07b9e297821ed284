// ED attendances end to end (issue 15 parts 2 and 3): SystmOne A28s say who
// cares for whom, the ED's ADT^A04s arrive through POST /ingest/systmone,
// and real rest-hook receivers get what each relationship entitles them to.
#include <gtest/gtest.h>

#include "tests/support/fixtures.h"
#include "tests/support/flows_kit.h"
#include "tests/support/plan_seed.h"

namespace gw {
namespace {

using test::FlowFixture;

constexpr const char* kAdult = "9990079196";   // Jade, the ED sample's adult
constexpr const char* kEllie = "9990237573";   // at school: school nursing RXX04
constexpr const char* kNoah = "9990316767";    // health visitor RXX02
constexpr const char* kChild = "9990500002";   // Mia, a child attending ED

void family(FlowFixture& f) {
  f.hl7(test::a28(kEllie, "Ellie", "20190506", "B86001",
                  {"NK1|1|THOMPSON^Jade^^^Ms|MTH" + std::string(30, '|') + kAdult + "^^^NHS^NH",
                   "ZCT|SN|RXX04^School Nursing|20240901|"}));
  f.hl7(test::a28(kNoah, "Noah", "20230111", "Z99999",
                  {"NK1|1|THOMPSON^Jade^^^Ms|MTH" + std::string(30, '|') + kAdult + "^^^NHS^NH",
                   "ZCT|HV|RXX02^Health Visiting|20230201|"}));
}

std::string sample_overdose() { return test::fixture("systmone/adt_a04_ed_adult_overdose.hl7"); }

TEST(AdultAttendanceWithChildren, LiaisonHearsOfEveryChildEachServiceOnlyOfItsOwn) {
  FlowFixture f;
  std::string pl = f.subscribe("paediatric-liaison", "adult-attendance-with-children", "/pl");
  std::string hv = f.subscribe("health-visiting", "adult-attendance-with-children", "/hv");
  std::string sn = f.subscribe("school-nursing", "adult-attendance-with-children", "/sn");
  std::string gp = f.subscribe("gp", "adult-attendance-with-children", "/gp");  // Ellie's practice
  family(f);
  f.hl7(sample_overdose());
  ASSERT_TRUE(f.wait_events(1, "/pl"));
  ASSERT_TRUE(f.wait_events(1, "/hv"));
  ASSERT_TRUE(f.wait_events(1, "/sn"));
  ASSERT_TRUE(f.wait_events(1, "/gp"));
  auto pl_c = f.received("/pl"), hv_c = f.received("/hv"), sn_c = f.received("/sn"), gp_c = f.received("/gp");
  ASSERT_EQ(pl_c.size(), 1u);
  std::string text = test::payload_text(pl_c[0]);
  EXPECT_NE(text.find("on 2026-11-04 at RFR"), std::string::npos) << text;
  EXPECT_NE(text.find("Reason for attendance (category): Overdose"), std::string::npos) << text;
  EXPECT_NE(text.find("Children linked to this adult by family links: 2"), std::string::npos) << text;
  EXPECT_EQ(test::about_numbers(pl_c[0]), (std::set<std::string>{kEllie, kNoah}));
  // The adult by NHS number only; never the diagnosis text or the code.
  EXPECT_STREQ(pl_c[0]["subject"]["identifier"]["value"].GetString(), kAdult);
  EXPECT_FALSE(pl_c[0]["subject"].HasMember("reference"));
  for (const auto& c : {&pl_c[0], &hv_c[0], &sn_c[0], &gp_c[0]}) {
    std::string body = json::to_string(*c);
    EXPECT_EQ(body.find("1149222004"), std::string::npos);
    EXPECT_EQ(body.find("Overdose (disorder)"), std::string::npos);
    EXPECT_EQ(body.find("SAFEQ"), std::string::npos);
  }
  EXPECT_EQ(test::about_numbers(hv_c[0]), (std::set<std::string>{kNoah}));
  EXPECT_EQ(test::about_numbers(sn_c[0]), (std::set<std::string>{kEllie}));
  EXPECT_EQ(test::about_numbers(gp_c[0]), (std::set<std::string>{kEllie}));
  EXPECT_EQ(json::to_string(hv_c[0]).find(kEllie), std::string::npos);
  // Re-sent unchanged (an A08 echo of the same visit): nothing new leaves.
  f.hl7(sample_overdose());
  f.settle();
  EXPECT_EQ(f.events_of(pl), 1);
}

TEST(AdultAttendanceWithChildren, ChildrenAtHomeButNotLinkedGoToLiaisonAsNotIdentified) {
  FlowFixture f;
  std::string pl = f.subscribe("paediatric-liaison", "adult-attendance-with-children", "/pl");
  std::string hv = f.subscribe("health-visiting", "adult-attendance-with-children", "/hv");
  f.hl7(sample_overdose());  // no family links; the questionnaire says children at home
  ASSERT_TRUE(f.wait_events(1, "/pl"));
  auto c = f.received("/pl");
  EXPECT_NE(test::payload_text(c[0]).find("children not identified - please follow up"), std::string::npos)
      << test::payload_text(c[0]);
  f.settle();
  EXPECT_EQ(f.events_of(hv), 0);
}

TEST(AdultAttendanceWithChildren, RoutingRulesEachMustHold) {
  FlowFixture f;
  std::string pl = f.subscribe("paediatric-liaison", "adult-attendance-with-children", "/pl");
  family(f);
  const std::string adult_dob = "19960212";
  // A reason not in the list (a fracture): nothing.
  f.hl7(test::ed_a04(kAdult, adult_dob, "RXX01", "20261201", "V1", {"125605004^Fracture of bone^SCT"}));
  // An ED the area's table does not know: no liaison to tell.
  f.hl7(test::ed_a04(kAdult, adult_dob, "ZZZ01", "20261202", "V2", {"1149222004^Overdose^SCT"}));
  // A reason in the list, arriving as Read v2 (TK... self-harm), at the dev trust's ED: told.
  f.hl7(test::ed_a04(kAdult, adult_dob, "RXX01", "20261203", "V3", {"TK...^Self harm^READ2"}));
  ASSERT_TRUE(f.wait_events(1, "/pl"));
  f.settle();
  EXPECT_EQ(f.events_of(pl), 1);
  auto c = f.received("/pl");
  EXPECT_NE(test::payload_text(c[0]).find("Self-harm"), std::string::npos) << test::payload_text(c[0]);
  EXPECT_NE(test::payload_text(c[0]).find("2026-12-03"), std::string::npos);
  // A 17-year-old with the same reason is not an adult: this topic stays quiet.
  f.hl7(test::ed_a04(kChild, "20090101", "RXX01", "20261204", "V4",
                     {"1149222004^Overdose^SCT"}, {"OBX|1|CE|SAFEQ-CHILDREN^Children at home^LOCAL||Y^Yes^HL70136||||||F"}));
  f.settle();
  EXPECT_EQ(f.events_of(pl), 1);
}

TEST(ChildEdAttendance, LiaisonAlwaysCaseloadOnlyForAFrequentAttender) {
  FlowFixture f;
  std::string pl = f.subscribe("paediatric-liaison", "child-ed-attendance", "/pl");
  std::string hv = f.subscribe("health-visiting", "child-ed-attendance", "/hv");
  std::string gp = f.subscribe("gp", "child-ed-attendance", "/gp");
  f.hl7(test::a28(kChild, "Mia", "20190611", "B86001", {"ZCT|HV|RXX02^Health Visiting|20200101|"}));
  f.hl7(test::ed_a04(kChild, "20190611", "RXX01", "20251001", "C1", {}));  // more than 12 months before C3 and C4
  f.hl7(test::ed_a04(kChild, "20190611", "RXX01", "20260901", "C2", {}));
  ASSERT_TRUE(f.wait_events(2, "/pl"));
  f.settle();
  EXPECT_EQ(f.events_of(hv), 0) << "not yet a frequent attender";
  EXPECT_EQ(f.events_of(gp), 0);
  f.hl7(test::ed_a04(kChild, "20190611", "RFR", "20261020", "C3", {}));  // another site the gateway knows
  ASSERT_TRUE(f.wait_events(3, "/pl"));
  f.settle();
  EXPECT_EQ(f.events_of(hv), 0) << "two in the 12 months up to 2026-10-20: 2025-10-01 is outside them";
  f.hl7(test::ed_a04(kChild, "20190611", "RXX01", "20261201", "C4", {}));
  ASSERT_TRUE(f.wait_events(4, "/pl"));
  ASSERT_TRUE(f.wait_events(1, "/hv"));
  ASSERT_TRUE(f.wait_events(1, "/gp"));
  auto all = f.received("/pl");
  const json::Value& last = all.back();
  std::string text = test::payload_text(last);
  EXPECT_NE(text.find("Attended the emergency department on 2026-12-01 at RXX01 (trust RXX)"), std::string::npos) << text;
  EXPECT_NE(text.find("Previous ED attendances in the 12 months before (any site the gateway knows): 2"),
            std::string::npos) << text;
  EXPECT_NE(text.find("Most recent previous attendances: 2026-10-20, 2026-09-01"), std::string::npos) << text;
  EXPECT_NE(text.find("CP-IS plan in scope: no"), std::string::npos) << text;
  EXPECT_NE(text.find("Frequent attender: yes"), std::string::npos) << text;
  EXPECT_EQ(std::string(last["subject"]["reference"].GetString()), "Patient/" + f.patient_id(kChild));
  auto hv_c = f.received("/hv");
  EXPECT_NE(test::payload_text(hv_c[0]).find("Frequent attender: yes"), std::string::npos);
  EXPECT_STREQ(hv_c[0]["recipient"][0]["identifier"]["value"].GetString(), "RXX02");
}

TEST(ChildEdAttendance, APlanInScopeIsSaid) {
  FlowFixture f;
  std::string pl = f.subscribe("paediatric-liaison", "child-ed-attendance", "/pl");
  f.hl7(test::a28(kChild, "Mia", "20190611", "B86001", {}));
  test::create_plan(f.client("local-authority"), f.patient_id(kChild), kChild, test::PlanSeed{});
  f.hl7(test::fixture("systmone/adt_a04_ed_child.hl7"));
  ASSERT_TRUE(f.wait_events(1, "/pl"));
  EXPECT_NE(test::payload_text(f.received("/pl")[0]).find("CP-IS plan in scope: yes (Subject to child protection plan)"),
            std::string::npos)
      << test::payload_text(f.received("/pl")[0]);
}

}  // namespace
}  // namespace gw
