// Issue 15 part 6, the two fixes found by trying the flows as a new user:
// a CASH/GUM concern referred to social care reaches the child's authority of
// residence (the file's ONS LA code through profiles/area/services.json) when
// the child has no CP-IS plan; and a family link recorded after a parent's
// relapse-prevention plan tells the new child's services.
#include <gtest/gtest.h>

#include "tests/support/fixtures.h"
#include "tests/support/flows_kit.h"

namespace gw {
namespace {

using test::FlowFixture;

TEST(FlowFixes, AConcernReferredToSocialCareReachesTheAuthorityOfResidenceWithoutAPlan) {
  FlowFixture f;
  std::string la = f.subscribe("local-authority", "safeguarding-concern", "/la");       // L0001: E08000018
  std::string la2 = f.subscribe("local-authority-2", "safeguarding-concern", "/la2");   // LA372: elsewhere
  auto r = f.call("sexual-health", "POST", "/ingest/cashgum", test::fixture("cashgum/gumcad_sample.csv"), "text/csv");
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_TRUE(f.wait_events(1, "/la"));
  f.settle();
  EXPECT_EQ(f.events_of(la), 1) << "the SOCIAL_CARE row only; the row not referred stays with GP and school nurse";
  EXPECT_EQ(f.events_of(la2), 0);
  auto c = f.received("/la");
  ASSERT_EQ(c.size(), 1u);
  // The authority gets its own disclosure of the concern (never the Flag), to acknowledge.
  EXPECT_STREQ(c[0]["resourceType"].GetString(), "Communication");
  EXPECT_STREQ(c[0]["recipient"][0]["identifier"]["value"].GetString(), "L0001");
  EXPECT_NE(test::payload_text(c[0]).find("Referred to: "), std::string::npos) << test::payload_text(c[0]);
  std::string body = json::to_string(c[0]);
  EXPECT_EQ(body.find("\"STD\""), std::string::npos);
  EXPECT_EQ(body.find("SHHAPT"), std::string::npos);
}

TEST(FlowFixes, AFamilyLinkAfterARelapsePlanTellsTheNewChildsServicesOnly) {
  FlowFixture f;
  std::string hv = f.subscribe("health-visiting", "relapse-indicator", "/hv");
  std::string sn = f.subscribe("school-nursing", "relapse-indicator", "/sn");
  auto r = f.call("integration", "POST", "/ingest/camhs", test::fixture("camhs/extract_sample.xml"), "application/xml");
  ASSERT_EQ(r.status, 200) << r.body;
  f.settle();
  EXPECT_EQ(f.events_of(hv), 0) << "no child of hers is in anyone's care yet";
  // Later, a SystmOne registration links a new child to her, in the health visitor's care.
  const std::string child = "9990501483";
  f.hl7(test::a28(child, "Finn", "20251001", "B86001",
                  {"NK1|1|THOMPSON^Jade^^^Ms|MTH" + std::string(30, '|') + "9990079196^^^NHS^NH",
                   "ZCT|HV|RXX02^Health Visiting|20251001|"}));
  ASSERT_TRUE(f.wait_events(1, "/hv"));
  f.settle();
  EXPECT_EQ(f.events_of(sn), 0);
  auto c = f.received("/hv");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(test::about_numbers(c[0]), (std::set<std::string>{child}));
  EXPECT_STREQ(c[0]["subject"]["identifier"]["value"].GetString(), "9990079196");
  EXPECT_FALSE(c[0]["subject"].HasMember("reference"));
  std::string text = test::payload_text(c[0]);
  EXPECT_NE(text.find("Indicator: Stops taking prescribed medication"), std::string::npos) << text;
  EXPECT_NE(text.find("newly linked to this parent"), std::string::npos) << text;
  // The same link sent again changes nothing new.
  f.hl7(test::a28(child, "Finn", "20251001", "B86001",
                  {"NK1|1|THOMPSON^Jade^^^Ms|MTH" + std::string(30, '|') + "9990079196^^^NHS^NH",
                   "ZCT|HV|RXX02^Health Visiting|20251001|"}));
  f.settle();
  EXPECT_EQ(f.events_of(hv), 1);
}

}  // namespace
}  // namespace gw
