// profiles/policy/relationships.json (issue 17 part 3): what a person opens
// only on a legitimate relationship, as data; a bad file is refused naming
// the key.
#include "gateway/security/relationships.h"

#include <gtest/gtest.h>

namespace gw::security {
namespace {

TEST(Relationships, ShippedRulesGateTheChronologyFlagsDisclosuresAndCpisPlansOnly) {
  auto r = Relationships::load(std::string(GW_SOURCE_DIR) + "/profiles");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_TRUE(r->required_for("chronology"));
  EXPECT_FALSE(r->required_for("booking-summary"));
  for (const char* type : {"Flag", "Communication", "CareTeam"})
    for (const char* i : {"read", "vread", "history", "search"}) EXPECT_NE(r->rule(type, i), nullptr) << type << i;
  for (const char* type : {"Patient", "Encounter", "Observation", "EpisodeOfCare"})
    EXPECT_EQ(r->rule(type, "read"), nullptr) << type;
  EXPECT_EQ(r->rule("Flag", "create"), nullptr);
  // A CareTeam is gated only when coded as a CP-IS plan.
  const auto* plans = r->rule("CareTeam", "read");
  auto plan = json::parse(
      R"({"resourceType":"CareTeam","category":[{"coding":[{"system":"http://snomed.info/sct","code":"342191000000101"}]}]})");
  auto team = json::parse(
      R"({"resourceType":"CareTeam","category":[{"coding":[{"system":"http://snomed.info/sct","code":"1234"}]}]})");
  EXPECT_TRUE(Relationships::gates(*plans, *plan));
  EXPECT_FALSE(Relationships::gates(*plans, *team));
  // A disclosure's recipient is named: a relationship of its own.
  const auto* comms = r->rule("Communication", "read");
  ASSERT_EQ(comms->related_by, (std::vector<std::string>{"recipient", "sender"}));
  auto c = json::parse(
      R"({"resourceType":"Communication","recipient":[{"identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"QWO"}},)"
      R"({"identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"RXX05"}}]})");
  EXPECT_TRUE(names_any(*c, "recipient", "RXX05"));
  EXPECT_FALSE(names_any(*c, "recipient", "RXX02"));
  EXPECT_FALSE(names_any(*c, "sender", "RXX05"));
}

TEST(Relationships, ABadFileIsRefusedNamingTheKey) {
  struct Case {
    const char* json;
    const char* names;
  };
  for (const Case& k : {Case{R"({})", "relationshipRequired"},
                        Case{R"({"relationshipRequired":{}})", "relationshipRequired"},
                        Case{R"({"relationshipRequired":[{"resources":["Flag"]}]})", "interactions"},
                        Case{R"({"relationshipRequired":[{"resources":["Flag"],"interactions":["create"]}]})", "interactions"},
                        Case{R"({"relationshipRequired":[{"operation":"chronology","resources":["Flag"],"interactions":["read"]}]})",
                             "relationshipRequired[0]"},
                        Case{R"({"relationshipRequired":[{"resources":["CareTeam"],"interactions":["read"],"codes":["342191000000101"]}]})",
                             "codes"},
                        Case{R"({"relationshipRequired":[{"operation":"chronology","who":"me"}]})", "who"},
                        Case{R"({"rules":[]})", "rules"}}) {
    auto r = Relationships::parse(k.json);
    ASSERT_FALSE(r.has_value()) << k.json;
    EXPECT_NE(r.error().message.find(k.names), std::string::npos) << k.json << ": " << r.error().message;
  }
}

}  // namespace
}  // namespace gw::security
