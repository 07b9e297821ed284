#include "gateway/model/cpis_plan.h"

#include <gtest/gtest.h>

namespace gw::model::cpis {
namespace {

json::Document plan(const std::string& status, const std::string& end) {
  std::string period = end.empty() ? R"({"start":"2024-01-01"})" : R"({"start":"2024-01-01","end":")" + end + "\"}";
  auto d = json::parse(R"({"resourceType":"CareTeam","status":")" + status +
                       R"(","category":[{"coding":[{"system":"http://snomed.info/sct","code":"764841000000100"}]}],)"
                       R"("managingOrganization":[{"identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"LA372"}}],)"
                       R"("period":)" + period + "}");
  EXPECT_TRUE(d.has_value());
  return std::move(*d);
}

TEST(CpisPlan, PlanTypesByAbbreviationAndCode) {
  ASSERT_NE(plan_type_by_abbreviation("UCPP"), nullptr);
  EXPECT_TRUE(plan_type_by_abbreviation("UCPP")->unborn);
  EXPECT_EQ(plan_type_by_abbreviation("CPP")->snomed, "342191000000101");
  EXPECT_EQ(plan_type_by_abbreviation("XYZ"), nullptr);
  auto p = plan("active", "");
  ASSERT_NE(plan_type_of(p), nullptr);
  EXPECT_EQ(plan_type_of(p)->abbreviation, "LAC");
  EXPECT_EQ(managing_ods(p), "LA372");
}

TEST(CpisPlan, TwelveMonthRuleOnTheInjectedDate) {
  EXPECT_TRUE(in_scope(plan("active", ""), "2026-11-27"));
  EXPECT_TRUE(in_scope(plan("inactive", "2025-12-27"), "2026-11-27"));   // 11 months ago
  EXPECT_FALSE(in_scope(plan("inactive", "2025-10-27"), "2026-11-27"));  // 13 months ago
  EXPECT_FALSE(in_scope(plan("inactive", "2025-11-27"), "2026-11-27"));  // exactly 12 months
  EXPECT_TRUE(in_scope(plan("inactive", "2025-11-28"), "2026-11-27"));
  EXPECT_FALSE(in_scope(plan("entered-in-error", ""), "2026-11-27"));
  EXPECT_EQ(scope_cutoff("2028-02-29"), "2027-02-28");
  EXPECT_EQ(utc_today().size(), 10u);
}

}  // namespace
}  // namespace gw::model::cpis
