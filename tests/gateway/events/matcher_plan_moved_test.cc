// decide() for the plan-authority-on-move route (cpis-inactive-nhs-number),
// against a fake lookup holding the plan's previous version.
#include <gtest/gtest.h>

#include <map>

#include "gateway/events/matcher.h"
#include "gateway/events/topics.h"

namespace gw::events {
namespace {

class FakeLookup final : public Lookup {
 public:
  std::optional<json::Document> patient(const std::string&) override { return std::nullopt; }
  bool in_caseload(const std::string&, const std::string&) override { return true; }  // caseload must not matter
  std::optional<json::Document> version(const std::string& type, const std::string& id, int64_t v) override {
    auto it = versions.find(type + "/" + id + "/" + std::to_string(v));
    if (it == versions.end()) return std::nullopt;
    return std::move(*json::parse(it->second));
  }
  std::map<std::string, std::string> versions;
};

std::string plan(const std::string& patient, const std::string& la, bool marked) {
  std::string mark = marked ? R"("extension":[{"url":"https://cpis-gateway.nhs.uk/StructureDefinition/superseded-nhs-number",
      "valueIdentifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9990316767"}}],)"
                            : "";
  return R"({"resourceType":"CareTeam",)" + mark + R"("status":"active",
    "category":[{"coding":[{"system":"http://snomed.info/sct","code":"342191000000101"}]}],
    "subject":{"reference":"Patient/)" + patient + R"("},
    "managingOrganization":[{"identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":")" + la + R"("}}]})";
}

class PlanMovedRoute : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = Topics::load(std::string(GW_SOURCE_DIR) + "/profiles");
    ASSERT_TRUE(t.has_value()) << t.error().message;
    topics_ = std::move(*t);
    topic_ = topics_.by_name("cpis-inactive-nhs-number");
    ASSERT_NE(topic_, nullptr);
    sub_.owner = security::Principal{"L0001", "local-authority", "la-system"};
    sub_.has_owner = true;
    change_ = store::ChangeRow{7, "CareTeam", "ct1", 2, "update", "2026-11-27T00:00:00Z"};
  }
  Decision decide_on(const std::string& now) {
    auto d = json::parse(now);
    return decide(*topic_, sub_, change_, *d, lookup_);
  }
  Topics topics_;
  const Topic* topic_ = nullptr;
  SubscriptionSpec sub_;
  store::ChangeRow change_;
  FakeLookup lookup_;
};

TEST_F(PlanMovedRoute, TheManagingAuthorityHearsOfAMove) {
  lookup_.versions["CareTeam/ct1/1"] = plan("old", "L0001", false);
  EXPECT_TRUE(decide_on(plan("survivor", "L0001", true)).notify);
}

TEST_F(PlanMovedRoute, AnotherAuthorityDoesNot) {
  lookup_.versions["CareTeam/ct1/1"] = plan("old", "L0002", false);
  EXPECT_FALSE(decide_on(plan("survivor", "L0002", true)).notify);
}

TEST_F(PlanMovedRoute, ALaterEditOfAMovedPlanIsNotAMove) {
  lookup_.versions["CareTeam/ct1/1"] = plan("survivor", "L0001", true);
  EXPECT_FALSE(decide_on(plan("survivor", "L0001", true)).notify);
}

TEST_F(PlanMovedRoute, ASubjectCorrectedWithoutAMergeIsNotAMove) {
  lookup_.versions["CareTeam/ct1/1"] = plan("wrong-child", "L0001", false);
  EXPECT_FALSE(decide_on(plan("right-child", "L0001", false)).notify);
}

TEST_F(PlanMovedRoute, ACareTeamThatIsNotAPlanIsNotAMove) {
  std::string not_plan = R"({"resourceType":"CareTeam","subject":{"reference":"Patient/survivor"},
    "extension":[{"url":"https://cpis-gateway.nhs.uk/StructureDefinition/superseded-nhs-number"}],
    "managingOrganization":[{"identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"L0001"}}]})";
  lookup_.versions["CareTeam/ct1/1"] = R"({"resourceType":"CareTeam","subject":{"reference":"Patient/old"}})";
  EXPECT_FALSE(decide_on(not_plan).notify);
}

TEST_F(PlanMovedRoute, AFirstVersionIsNotAMove) {
  change_.version = 1;
  change_.interaction = "create";
  EXPECT_FALSE(decide_on(plan("survivor", "L0001", true)).notify);
}

}  // namespace
}  // namespace gw::events
