#include "gateway/events/topics.h"

#include <gtest/gtest.h>

#include "gateway/common/json.h"
#include "gateway/events/matcher.h"

namespace gw::events {
namespace {

TEST(Topics, TheShippedTopicsAreEveryCpisTopicPlusPatientChange) {
  auto t = Topics::load(std::string(GW_SOURCE_DIR) + "/profiles");
  ASSERT_TRUE(t.has_value()) << t.error().message;
  for (const char* name : {"patient-change", "cpis-plan-change", "cpis-access", "cpis-inactive-nhs-number",
                           "relapse-indicator", "tier4-discharge", "pregnancy-notification",
                           "adult-attendance-with-children", "safeguarding-concern", "lac-health-assessment-due",
                           "child-ed-attendance", "safeguarding-escalation", "break-glass", "coverage-gaps"}) {
    const Topic* topic = t->by_name(name);
    ASSERT_NE(topic, nullptr) << name;
    EXPECT_EQ(topic->url, std::string("https://cpis-gateway.nhs.uk/SubscriptionTopic/") + name);
    EXPECT_EQ(t->by_url(topic->url), topic);
  }
  EXPECT_EQ(t->all().size(), 14u);
  // coverage-gaps fires from its weekly timer only: no change triggers it.
  const Topic* cg = t->by_name("coverage-gaps");
  EXPECT_EQ(cg->route, "timer");
  EXPECT_TRUE(cg->triggers.empty());
  EXPECT_FALSE(cg->triggered_by("CareTeam", "create"));
  EXPECT_TRUE(cg->allows_role("commissioner"));
  EXPECT_FALSE(cg->allows_role("gp"));
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

// A caseload of one: the Patient "child" is cared for by organisation "B86001".
class OneChildLookup final : public Lookup {
 public:
  std::optional<json::Document> patient(const std::string&) override { return std::nullopt; }
  bool in_caseload(const std::string& patient_id, const std::string& ods) override {
    return patient_id == "child" && ods == "B86001";
  }
};

TEST(Topics, CpisPlanChangeFiresForPlanCareTeamsOnlyAndGoesToTheCaseload) {
  auto t = Topics::load(std::string(GW_SOURCE_DIR) + "/profiles");
  ASSERT_TRUE(t.has_value()) << t.error().message;
  const Topic* plans = t->by_name("cpis-plan-change");
  ASSERT_NE(plans, nullptr);
  EXPECT_TRUE(plans->fires());
  EXPECT_FALSE(plans->triggered_by("CarePlan", "create"));  // the relapse-prevention plans of mental health
  for (const char* i : {"create", "update", "delete"}) EXPECT_TRUE(plans->triggered_by("CareTeam", i)) << i;

  auto plan = json::parse(R"({"resourceType":"CareTeam","subject":{"reference":"Patient/child"},
      "category":[{"coding":[{"system":"http://snomed.info/sct","code":"764841000000100"}]}]})");
  auto team = json::parse(R"({"resourceType":"CareTeam","subject":{"reference":"Patient/child"},
      "category":[{"coding":[{"system":"http://snomed.info/sct","code":"310210009"}]}]})");
  SubscriptionSpec gp;
  gp.owner = security::Principal{"B86001", "gp", "gp-system"};
  SubscriptionSpec other_gp = gp;
  other_gp.owner.ods = "B99999";
  store::ChangeRow ch{1, "CareTeam", "p1", 1, "create", ""};
  OneChildLookup lookup;
  EXPECT_TRUE(decide(*plans, gp, ch, *plan, lookup).notify);
  EXPECT_FALSE(decide(*plans, other_gp, ch, *plan, lookup).notify);
  Decision d = decide(*plans, gp, ch, *team, lookup);  // a health-visiting team is not a plan
  EXPECT_FALSE(d.notify);
  EXPECT_EQ(d.reason, "not-triggered");
}

TEST(Topics, TriggerCodesMustBeSystemBarCode) {
  auto bad = Topics::parse(
      R"({"name":"x","url":"https://cpis-gateway.nhs.uk/SubscriptionTopic/x","title":"t","status":"active","triggers":[{"resource":"CareTeam","interactions":["create"],"codes":["342191000000101"]}],"roles":["admin"]})",
      "x.json");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().expression, "triggers.codes");
}

TEST(Topics, PayloadRouteAndFocusConditionsAreCheckedAtLoad) {
  const std::string head =
      R"({"name":"x","url":"https://cpis-gateway.nhs.uk/SubscriptionTopic/x","title":"t","status":"active","triggers":[{"resource":"Patient","interactions":["create"]}],"roles":["admin"],)";
  EXPECT_EQ(Topics::parse(head + R"("payload":"everything"})", "x.json").error().expression, "payload");
  EXPECT_EQ(Topics::parse(head + R"("route":"everyone"})", "x.json").error().expression, "route");
  auto ok = Topics::parse(head + R"("route":"linked-children","payload":"disclosure","statuses":["active"],"requires":["period.end"]})",
                          "x.json");
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  EXPECT_TRUE(ok->disclosure());
  EXPECT_EQ(ok->requires_paths, std::vector<std::string>{"period.end"});
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
  // The Flag itself never leaves: a per-receiver Communication its receiver acknowledges.
  auto focus = Topics::parse(head + R"(,"audiences":{"gp":"gp"},"purpose":"p","legal_basis":"b"})", "x.json");
  ASSERT_FALSE(focus.has_value());
  EXPECT_EQ(focus.error().expression, "payload");
  auto ok = Topics::parse(head + R"(,"audiences":{"gp":"gp"},"payload":"disclosure","purpose":"p","legal_basis":"b"})",
                          "x.json");
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  EXPECT_TRUE(ok->audits_disclosure());
  EXPECT_TRUE(ok->disclosure());
  EXPECT_EQ(ok->audiences.at("gp"), "gp");

  // The shipped topic: active, routed by audience, every event audited.
  auto all = Topics::load(std::string(GW_SOURCE_DIR) + "/profiles");
  ASSERT_TRUE(all.has_value()) << all.error().message;
  const Topic* t = all->by_name("safeguarding-concern");
  ASSERT_NE(t, nullptr);
  EXPECT_TRUE(t->fires());
  EXPECT_EQ(t->route, "disclosure-audience");
  EXPECT_TRUE(t->audits_disclosure());
  EXPECT_EQ(t->payload, "disclosure");
}

}  // namespace
}  // namespace gw::events

namespace gw::events {
namespace {

// The relations route (issue 15): which roles a topic serves, and under
// which relationship, is data; a relationship the gateway does not implement,
// or receivers on another route, stop start-up naming the key.
TEST(Topics, RelationsRouteReceiversAreCheckedAtLoad) {
  std::string head = R"({"name":"child-ed-attendance","url":"https://cpis-gateway.nhs.uk/SubscriptionTopic/child-ed-attendance",
    "title":"t","status":"active","triggers":[{"resource":"Encounter","interactions":["create"]}],
    "roles":["paediatric-liaison","gp"],"purpose":"p","legal_basis":"b",)";
  auto ok = Topics::parse(head + R"("route":"relations","receivers":{"paediatric-liaison":"attending-trust-liaison"}})", "t.json");
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  EXPECT_EQ(ok->receivers.at("paediatric-liaison"), "attending-trust-liaison");
  auto unknown = Topics::parse(head + R"("route":"relations","receivers":{"gp":"whoever-asks"}})", "t.json");
  ASSERT_FALSE(unknown.has_value());
  EXPECT_NE(unknown.error().message.find("receivers.gp"), std::string::npos) << unknown.error().message;
  auto not_a_role = Topics::parse(head + R"("route":"relations","receivers":{"midwifery":"booking-service"}})", "t.json");
  ASSERT_FALSE(not_a_role.has_value());
  auto none = Topics::parse(head + R"("route":"relations"})", "t.json");
  ASSERT_FALSE(none.has_value());
  EXPECT_NE(none.error().message.find("receivers"), std::string::npos);
  auto wrong_route = Topics::parse(head + R"("receivers":{"gp":"linked-child-caseload"}})", "t.json");
  ASSERT_FALSE(wrong_route.has_value());
  EXPECT_NE(wrong_route.error().message.find("used only by the relations, relationship, linked-children and escalation routes"), std::string::npos);
}

// Issue 17: the escalation route is fired by timers alone (no triggers) and
// its receivers are the disclosure's recipient or the designated nurse.
TEST(Topics, EscalationRouteIsTimerFiredWithItsOwnReceivers) {
  auto shipped = Topics::load(GW_SOURCE_DIR "/profiles").value();
  const Topic* esc = shipped.by_name("safeguarding-escalation");
  ASSERT_NE(esc, nullptr);
  EXPECT_TRUE(esc->triggers.empty());
  EXPECT_FALSE(esc->triggered_by("Communication", "create"));
  EXPECT_EQ(esc->receivers.at("health-visiting"), "disclosure-recipient");
  EXPECT_EQ(esc->receivers.at("commissioner"), "designated-nurse");
  const std::string head =
      R"({"name":"x","url":"https://cpis-gateway.nhs.uk/SubscriptionTopic/x","title":"t","status":"active","roles":["gp","commissioner"],"route":"escalation","purpose":"p","legal_basis":"b",)";
  EXPECT_TRUE(Topics::parse(head + R"("triggers":[],"receivers":{"gp":"disclosure-recipient","commissioner":"designated-nurse"}})", "x.json"));
  auto with_trigger = Topics::parse(
      head + R"("triggers":[{"resource":"Patient","interactions":["create"]}],"receivers":{"gp":"disclosure-recipient"}})", "x.json");
  ASSERT_FALSE(with_trigger);
  EXPECT_EQ(with_trigger.error().expression, "triggers");
  auto bad_rel = Topics::parse(head + R"("receivers":{"gp":"caseload"}})", "x.json");
  ASSERT_FALSE(bad_rel);
  EXPECT_NE(bad_rel.error().message.find("disclosure-recipient or designated-nurse"), std::string::npos);
  auto no_triggers_elsewhere = Topics::parse(
      R"({"name":"x","url":"https://cpis-gateway.nhs.uk/SubscriptionTopic/x","title":"t","status":"active","roles":["gp"],"triggers":[]})", "x.json");
  EXPECT_FALSE(no_triggers_elsewhere) << "only the escalation route goes without triggers";
}

}  // namespace
}  // namespace gw::events
