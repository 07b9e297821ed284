// The shipped area tables load, route the dev PKI's organisations to each
// other (the "out of the box" promise), and a typo names the file and key.
#include "gateway/area/area.h"

#include <gtest/gtest.h>

namespace gw::area {
namespace {

std::shared_ptr<const Area> shipped() {
  return Area::load(GW_SOURCE_DIR "/profiles", parse_date("2026-12-07").value()).value();
}

TEST(Area, ShippedTablesRouteTheDevPki) {
  auto a = shipped();
  ASSERT_TRUE(a->health_visiting_for_practice("B86001"));
  EXPECT_EQ(a->health_visiting_for_practice("B86001")->ods, "RXX02");
  EXPECT_FALSE(a->health_visiting_for_practice("Z99999"));
  EXPECT_EQ(a->health_visiting_single_point_of_access().ods, "RXX02");
  EXPECT_EQ(a->lac_health_for_authority("L0001").value_or(""), "RXX06");
  EXPECT_EQ(a->lac_health_for_authority("LA372").value_or(""), "RXX06");
  EXPECT_EQ(a->authority_for_ons("E08000018").value_or(""), "L0001");
  ASSERT_NE(a->ed_site("RXX01"), nullptr);
  EXPECT_EQ(a->ed_site("RXX01")->paediatric_liaison, std::vector<std::string>{"RXX05"});
  EXPECT_EQ(a->ed_site("RXX01")->trust, "RXX");
  EXPECT_EQ(a->pregnancy().completeness.size(), 6u);
  EXPECT_EQ(a->pregnancy().repeat_assessment_weeks, 28);
  EXPECT_EQ(a->ed().frequent_attendances, 3);
  EXPECT_EQ(a->ed().adult_age, 18);
  EXPECT_EQ(a->lac().initial_working_days, 20);
}

TEST(Area, MistakesNameTheFileAndKey) {
  auto cal = WorkingDays::load(GW_SOURCE_DIR "/profiles", parse_date("2026-12-07").value()).value();
  const std::string services =
      R"({"healthVisitingByPractice":{},"healthVisitingSinglePointOfAccess":{"ods":"X"},"lacHealthByAuthority":{},
          "authorityByOnsCode":{},"edSites":{}})";
  const std::string rules = R"({"pregnancy":{"completeness":[{"check":"edd","label":"EDD"}],
      "repeatRiskAssessmentCodes":["s|c"]},
    "ed":{"reasons":{"overdose":{"display":"Overdose","codes":["s|c"]}},"childrenAtHome":{"code":"Q","yes":["Y"]},
      "frequentAttender":{"attendances":3,"months":12}},
    "lac":{"completionCodes":{"IHA":["s|IHA"],"RHA":["s|RHA"]}}})";
  ASSERT_TRUE(Area::parse(services, rules, cal).has_value());
  auto err = [&](std::string s, std::string r) { return Area::parse(s, r, cal, "s.json", "r.json").error().message; };
  std::string typo = services;
  typo.replace(typo.find("edSites"), 7, "edSite");
  EXPECT_NE(err(typo, rules).find("s.json: edSite"), std::string::npos) << err(typo, rules);
  std::string unknown_check = rules;
  unknown_check.replace(unknown_check.find("\"edd\""), 5, "\"eddd\"");
  EXPECT_NE(err(services, unknown_check).find("pregnancy.completeness[0].check"), std::string::npos);
  std::string bad_code = rules;
  bad_code.replace(bad_code.find("s|IHA"), 5, "IHA");
  EXPECT_NE(err(services, bad_code).find("lac.completionCodes.IHA"), std::string::npos);
}

}  // namespace
}  // namespace gw::area
