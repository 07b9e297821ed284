// decide() for the cpis-access topic with the shipped topic file and a fake
// Lookup: only AuditEvents tagged as unscheduled accesses fire, and only the
// local authority managing a plan the access names hears of it, even when
// every organisation counts as caring for the child.
#include <gtest/gtest.h>

#include <map>

#include "gateway/events/matcher.h"
#include "gateway/events/topics.h"
#include "gateway/cpis/cpis_api.h"
#include "gateway/security/policy.h"

namespace gw::events {
namespace {

// Everyone is in everyone's caseload: the caseload route would tell them all.
class EveryoneCares final : public Lookup {
 public:
  std::map<std::string, std::string> care_teams;  // id -> JSON
  std::optional<json::Document> patient(const std::string&) override { return std::nullopt; }
  bool in_caseload(const std::string&, const std::string&) override { return true; }
  std::optional<json::Document> care_team(const std::string& id) override {
    auto it = care_teams.find(id);
    if (it == care_teams.end()) return std::nullopt;
    auto d = json::parse(it->second);
    return d ? std::optional<json::Document>(std::move(*d)) : std::nullopt;
  }
};

std::string plan_json(const std::string& la, bool is_plan = true) {
  std::string category = is_plan ? R"("category":[{"coding":[{"system":"http://snomed.info/sct","code":"342191000000101"}]}],)"
                                 : "";
  return R"({"resourceType":"CareTeam","status":"active",)" + category +
         R"("subject":{"reference":"Patient/p1"},"managingOrganization":[{"identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":")" +
         la + R"("}}]})";
}

json::Document access(bool unscheduled, std::vector<std::string> plans) {
  cpis::Access a;
  a.unscheduled = unscheduled;
  a.caller = {"RXX01", "unscheduled-care", "ed-symphony"};
  a.nhs_number = "9000000009";
  a.patient_id = "p1";
  a.plan_ids = std::move(plans);
  a.resource_type = "CareTeam";
  a.recorded = "2026-11-27T07:00:00.000Z";
  return std::move(*json::parse(cpis::access_audit_event(a)));
}

SubscriptionSpec la(const std::string& ods) {
  SubscriptionSpec s;
  s.owner = {ods, "local-authority", "la"};
  s.has_owner = true;
  s.content = "full-resource";
  return s;
}

class CpisAccessRouting : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = Topics::load(std::string(GW_SOURCE_DIR) + "/profiles");
    ASSERT_TRUE(t.has_value()) << t.error().message;
    topics_ = std::move(*t);
    topic_ = topics_.by_name("cpis-access");
    ASSERT_NE(topic_, nullptr);
    lookup_.care_teams = {{"plan-a", plan_json("L0001")}, {"plan-b", plan_json("L0002")},
                          {"hv-team", plan_json("L0003", false)}};
  }
  Decision run(const SubscriptionSpec& sub, const json::Document& ae) {
    store::ChangeRow ch{1, "AuditEvent", "ae1", 1, "create", "2026-11-27T07:00:00.000Z"};
    return decide(*topic_, sub, ch, ae, lookup_);
  }
  Topics topics_;
  const Topic* topic_ = nullptr;
  EveryoneCares lookup_;
};

TEST_F(CpisAccessRouting, TheAuthorityOfThePlanHearsAndNoOtherAuthority) {
  auto ae = access(true, {"plan-a"});
  EXPECT_TRUE(run(la("L0001"), ae).notify);
  auto other = run(la("L0002"), ae);
  EXPECT_FALSE(other.notify);
  EXPECT_EQ(other.reason, "plan-authority");
  EXPECT_EQ(run(la("L0001"), ae).patient_ref, "Patient/p1");
}

TEST_F(CpisAccessRouting, AnAccessTouchingTwoAuthoritiesPlansReachesBoth) {
  auto ae = access(true, {"plan-a", "plan-b"});
  EXPECT_TRUE(run(la("L0001"), ae).notify);
  EXPECT_TRUE(run(la("L0002"), ae).notify);
}

TEST_F(CpisAccessRouting, ACareTeamThatIsNotAPlanMakesNoOneTheAuthority) {
  EXPECT_FALSE(run(la("L0003"), access(true, {"hv-team"})).notify);
  EXPECT_FALSE(run(la("L0001"), access(true, {"missing"})).notify);
}

TEST_F(CpisAccessRouting, ScheduledAccessesDoNotFire) {
  auto d = run(la("L0001"), access(false, {"plan-a"}));
  EXPECT_FALSE(d.notify);
  EXPECT_EQ(d.reason, "not-triggered");
}

// What a notification reveals of labelled content is the policy's, per role
// (access.json "sensitivity" and "notifications"), not a table of the matcher:
// the patient-change topic with every organisation caring for the patient.
class LabelledNotifications : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = Topics::load(std::string(GW_SOURCE_DIR) + "/profiles");
    ASSERT_TRUE(t.has_value()) << t.error().message;
    topics_ = std::move(*t);
    topic_ = topics_.by_name("patient-change");
    ASSERT_NE(topic_, nullptr);
    auto p = security::Policy::load(std::string(GW_SOURCE_DIR) + "/profiles");
    ASSERT_TRUE(p.has_value()) << p.error().message;
    policy_ = std::move(*p);
  }
  Decision run(const std::string& role, const std::string& labels) {
    SubscriptionSpec s;
    s.owner = {"B86001", role, "system"};
    s.has_owner = true;
    s.content = "full-resource";
    s.labels = policy_.label_view(s.owner);
    auto patient = json::parse(R"({"resourceType":"Patient","id":"p1","meta":{"security":[)" + labels + "]}}");
    store::ChangeRow ch{1, "Patient", "p1", 1, "create", "2026-11-27T07:00:00.000Z"};
    return decide(*topic_, s, ch, *patient, lookup_);
  }
  static std::string label(const char* code) {
    return std::string(R"({"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":")") + code + "\"}";
  }
  Topics topics_;
  const Topic* topic_ = nullptr;
  security::Policy policy_;
  EveryoneCares lookup_;
};

TEST_F(LabelledNotifications, SexualHealthContentIsNotEvenAnnouncedToOtherRoles) {
  auto gp = run("integration", label("STD"));
  EXPECT_FALSE(gp.notify);
  EXPECT_EQ(gp.reason, "sensitivity");
  auto clinic = run("sexual-health", label("STD"));
  EXPECT_TRUE(clinic.notify) << clinic.reason;
  EXPECT_EQ(clinic.content, "full-resource");
}

TEST_F(LabelledNotifications, MentalHealthContentGoesIdOnlyToRolesThatMayNotSeeIt) {
  auto integ = run("integration", label("PSY"));
  ASSERT_TRUE(integ.notify) << integ.reason;
  EXPECT_EQ(integ.content, "id-only");
  // The policy lets substance-misuse services see PSY content (as in reads).
  auto sm = run("substance-misuse", label("PSY"));
  ASSERT_TRUE(sm.notify) << sm.reason;
  EXPECT_EQ(sm.content, "full-resource");
  auto amh = run("admin", label("SUD"));
  ASSERT_TRUE(amh.notify) << amh.reason;
  EXPECT_EQ(amh.content, "id-only");
}

TEST_F(LabelledNotifications, RestrictedContentWithoutAContentLabelCountsAsSexualHealth) {
  EXPECT_FALSE(run("integration", label("R")).notify);
  EXPECT_TRUE(run("sexual-health", label("R")).notify);
  // R beside PSY is mental-health content: announced, content withheld.
  auto integ = run("integration", label("R") + "," + label("PSY"));
  ASSERT_TRUE(integ.notify) << integ.reason;
  EXPECT_EQ(integ.content, "id-only");
}

}  // namespace
}  // namespace gw::events
