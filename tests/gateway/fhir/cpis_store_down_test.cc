// An emergency department asking about a child while the store cannot answer
// must be told so, never handed an empty answer it would read as "no plan".
#include <gtest/gtest.h>

#include "gateway/common/json.h"
#include "tests/support/plan_seed.h"
#include "tests/support/test_gateway.h"

namespace gw {
namespace {

TEST(CpisStoreDown, AQueryWhileTheStoreCannotAnswerIsAnErrorNeverAnEmptySearchset) {
  test::InProcessGateway gw;
  auto la = gw.client("local-authority");
  auto integration = gw.client("integration");
  const std::string nhs = test::nhs_number_from("999052210");
  std::string patient = test::create_patient(integration, nhs);
  ASSERT_FALSE(patient.empty());
  ASSERT_FALSE(test::create_plan(la, patient, nhs, test::PlanSeed{}).empty());

  auto ed = gw.client("unscheduled-care");
  const std::string query = "/fhir/CareTeam?patient:identifier=https://fhir.nhs.uk/Id/nhs-number%7C" + nhs;
  const std::vector<std::pair<std::string, std::string>> headers = {{"IsUnscheduledAccessEvent", "true"},
                                                                    {"TraceID", "ed-1"}};
  auto before = ed.request("GET", query, "", headers);
  ASSERT_TRUE(before.has_value());
  ASSERT_EQ(before->status, 200) << before->body;
  EXPECT_NE(before->body.find("342191000000101"), std::string::npos) << "the plan was not shown while the store was up";

  gw.store().close();
  for (const char* type : {"CareTeam", "Flag"}) {
    std::string q = "/fhir/" + std::string(type) + "?patient:identifier=https://fhir.nhs.uk/Id/nhs-number%7C" + nhs;
    auto down = ed.request("GET", q, "", headers);
    ASSERT_TRUE(down.has_value());
    EXPECT_GE(down->status, 500) << type << ": " << down->body;
    auto d = json::parse(down->body);
    ASSERT_TRUE(d.has_value()) << down->body;
    EXPECT_EQ(json::get_string(*d, "resourceType").value_or(""), "OperationOutcome") << down->body;
    EXPECT_EQ(down->body.find("searchset"), std::string::npos) << "an empty answer reads as no plan";
  }
}

}  // namespace
}  // namespace gw
