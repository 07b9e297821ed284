#include "gateway/events/topics.h"

#include <gtest/gtest.h>

#include "gateway/common/json.h"

namespace gw::events {
namespace {

TEST(Topics, TheShippedTopicsAreEveryCpisTopicPlusPatientChange) {
  auto t = Topics::load(std::string(GW_SOURCE_DIR) + "/profiles");
  ASSERT_TRUE(t.has_value()) << t.error().message;
  for (const char* name : {"patient-change", "cpis-plan-change", "cpis-access", "cpis-inactive-nhs-number",
                           "relapse-indicator", "tier4-discharge", "pregnancy-notification",
                           "adult-attendance-with-children", "safeguarding-concern", "lac-health-assessment-due"}) {
    const Topic* topic = t->by_name(name);
    ASSERT_NE(topic, nullptr) << name;
    EXPECT_EQ(topic->url, std::string("https://cpis-gateway.nhs.uk/SubscriptionTopic/") + name);
    EXPECT_EQ(t->by_url(topic->url), topic);
  }
  EXPECT_EQ(t->all().size(), 10u);
  const Topic* pc = t->by_name("patient-change");
  EXPECT_TRUE(pc->fires());
  EXPECT_TRUE(pc->triggered_by("Patient", "update"));
  EXPECT_FALSE(pc->triggered_by("Patient", "delete"));
  EXPECT_FALSE(pc->triggered_by("Observation", "create"));
  EXPECT_TRUE(pc->allows_filter("identifier"));
  EXPECT_TRUE(pc->allows_role("integration"));
  EXPECT_TRUE(pc->unrestricted("integration"));
  EXPECT_FALSE(pc->unrestricted("gp"));
  EXPECT_FALSE(pc->allows_role("local-authority"));
  auto basic = json::parse(Topics::as_basic(*pc));
  ASSERT_TRUE(basic.has_value());
  EXPECT_NE(json::to_string(*basic).find("\"code\":\"SubscriptionTopic\""), std::string::npos);
}

TEST(Topics, ABadTopicFileIsRefusedWithTheKeyNamed) {
  auto wrong_url = Topics::parse(
      R"({"name":"x","url":"https://elsewhere/x","title":"t","status":"active","triggers":[{"resource":"Patient","interactions":["create"]}],"roles":["admin"]})",
      "x.json");
  ASSERT_FALSE(wrong_url.has_value());
  EXPECT_EQ(wrong_url.error().expression, "url");
  auto bad_interaction = Topics::parse(
      R"({"name":"x","url":"https://cpis-gateway.nhs.uk/SubscriptionTopic/x","title":"t","status":"active","triggers":[{"resource":"Patient","interactions":["read"]}],"roles":["admin"]})",
      "x.json");
  ASSERT_FALSE(bad_interaction.has_value());
  auto unknown_filter = Topics::parse(
      R"({"name":"x","url":"https://cpis-gateway.nhs.uk/SubscriptionTopic/x","title":"t","status":"active","triggers":[{"resource":"Patient","interactions":["create"]}],"filters":[{"parameter":"name"}],"roles":["admin"]})",
      "x.json");
  ASSERT_FALSE(unknown_filter.has_value());
  auto ok = Topics::parse(
      R"({"name":"x","url":"https://cpis-gateway.nhs.uk/SubscriptionTopic/x","title":"t","status":"declared","triggers":[{"resource":"Patient","interactions":["create"]}],"roles":["admin"]})",
      "x.json");
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  EXPECT_FALSE(ok->fires());
  EXPECT_EQ(ok->route, "caseload");
  auto unknown_route = Topics::parse(
      R"({"name":"x","url":"https://cpis-gateway.nhs.uk/SubscriptionTopic/x","title":"t","status":"active","triggers":[{"resource":"Patient","interactions":["create"]}],"roles":["admin"],"route":"everyone"})",
      "x.json");
  ASSERT_FALSE(unknown_route.has_value());
  EXPECT_EQ(unknown_route.error().expression, "route");
}

TEST(Topics, ADisclosureRouteNeedsAudiencesAndALegalBasis) {
  const std::string head =
      R"({"name":"x","url":"https://cpis-gateway.nhs.uk/SubscriptionTopic/x","title":"t","status":"active","triggers":[{"resource":"Flag","interactions":["create"]}],"roles":["gp","admin"],"route":"disclosure-audience")";
  auto no_audiences = Topics::parse(head + R"(,"purpose":"p","legal_basis":"b"})", "x.json");
  ASSERT_FALSE(no_audiences.has_value());
  EXPECT_EQ(no_audiences.error().expression, "audiences");
  auto no_basis = Topics::parse(head + R"(,"audiences":{"gp":"gp"}})", "x.json");
  ASSERT_FALSE(no_basis.has_value());
  EXPECT_EQ(no_basis.error().expression, "legal_basis");
  auto stranger = Topics::parse(head + R"(,"audiences":{"midwifery":"gp"},"purpose":"p","legal_basis":"b"})", "x.json");
  ASSERT_FALSE(stranger.has_value());
  EXPECT_EQ(stranger.error().expression, "audiences");
  auto ok = Topics::parse(head + R"(,"audiences":{"gp":"gp"},"purpose":"p","legal_basis":"b"})", "x.json");
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  EXPECT_TRUE(ok->audits_disclosure());
  EXPECT_EQ(ok->audiences.at("gp"), "gp");

  // The shipped topic: active, routed by audience, every event audited.
  auto all = Topics::load(std::string(GW_SOURCE_DIR) + "/profiles");
  ASSERT_TRUE(all.has_value()) << all.error().message;
  const Topic* t = all->by_name("safeguarding-concern");
  ASSERT_NE(t, nullptr);
  EXPECT_TRUE(t->fires());
  EXPECT_EQ(t->route, "disclosure-audience");
  EXPECT_TRUE(t->audits_disclosure());
}

}  // namespace
}  // namespace gw::events
