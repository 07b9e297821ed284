#include "gateway/security/policy.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

namespace {

using gw::security::Policy;
using gw::security::Principal;

Principal who(std::string role, std::string ods = "RX1") { return Principal{std::move(ods), std::move(role), "sys"}; }

Policy parse_ok(std::string_view text) {
  auto p = Policy::parse(text);
  EXPECT_TRUE(p.has_value()) << (p ? "" : p.error().message);
  return p ? std::move(*p) : Policy{};
}

constexpr std::string_view kSmall = R"({
  "rules": [
    {"roles": ["gp"], "resources": ["Patient"], "interactions": ["read", "search"]},
    {"roles": ["camhs"], "ods": ["RX1", "RX2"], "resources": ["Observation"], "interactions": ["create"]}
  ],
  "operations": {"metrics": ["commissioner"]}
})";

TEST(Policy, GrantsWhatARuleSays) {
  Policy p = parse_ok(kSmall);
  EXPECT_TRUE(p.allows(who("gp"), "Patient", "read"));
  EXPECT_TRUE(p.allows(who("gp"), "Patient", "search"));
  EXPECT_TRUE(p.allows_operation(who("commissioner"), "metrics"));
}

TEST(Policy, DeniesByDefault) {
  Policy p = parse_ok(kSmall);
  EXPECT_FALSE(p.allows(who("gp"), "Patient", "update"));         // interaction not granted
  EXPECT_FALSE(p.allows(who("gp"), "Observation", "read"));       // type not granted
  EXPECT_FALSE(p.allows(who("midwifery"), "Patient", "read"));    // known role, no rule
  EXPECT_FALSE(p.allows(who("hacker"), "Patient", "read"));       // unknown role
  EXPECT_FALSE(p.allows(who(""), "Patient", "read"));
  EXPECT_FALSE(p.allows(who("gp"), "Patient", "frobnicate"));     // unknown interaction
  EXPECT_FALSE(p.allows_operation(who("gp"), "metrics"));
  EXPECT_FALSE(p.allows_operation(who("commissioner"), "admin"));
  Policy empty;
  EXPECT_FALSE(empty.allows(who("admin"), "Patient", "read"));
}

TEST(Policy, OdsRestrictionLimitsToListedOrganisations) {
  Policy p = parse_ok(kSmall);
  EXPECT_TRUE(p.allows(who("camhs", "RX1"), "Observation", "create"));
  EXPECT_TRUE(p.allows(who("camhs", "RX2"), "Observation", "create"));
  EXPECT_FALSE(p.allows(who("camhs", "RX3"), "Observation", "create"));
  EXPECT_FALSE(p.allows(who("camhs", ""), "Observation", "create"));
}

TEST(Policy, WildcardResourcesCoverEveryType) {
  Policy p = parse_ok(R"({"rules":[{"roles":["admin"],"resources":["*"],"interactions":["delete"]}]})");
  EXPECT_TRUE(p.allows(who("admin"), "Flag", "delete"));
  EXPECT_FALSE(p.allows(who("admin"), "Flag", "read"));
}

void expect_error_mentions(std::string_view text, std::string_view needle) {
  auto p = Policy::parse(text);
  ASSERT_FALSE(p.has_value()) << text;
  EXPECT_NE(p.error().message.find(needle), std::string::npos) << p.error().message;
}

TEST(Policy, RejectsBadPolicies) {
  expect_error_mentions(R"({"rules":[{"roles":["gpx"],"resources":["Patient"],"interactions":["read"]}]})",
                        "rules[0].roles[0]: unknown role 'gpx'");
  expect_error_mentions(R"({"rules":[{"roles":["gp"],"resources":["Patient"],"interactions":["patch"]}]})",
                        "rules[0].interactions[0]: unknown interaction 'patch'");
  expect_error_mentions(R"({"rules":[{"roles":["gp"],"resources":["Patient"],"interactions":["read"],"role":"x"}]})",
                        "rules[0]: unknown key 'role'");
  expect_error_mentions(R"({"rules":[],"grants":[]})", "unknown key 'grants'");
  expect_error_mentions(R"({"rules":[{"roles":["gp"],"interactions":["read"]}]})", "rules[0].resources is required");
  expect_error_mentions(R"({"rules":[{"roles":[],"resources":["Patient"],"interactions":["read"]}]})",
                        "rules[0].roles must be a non-empty array");
  expect_error_mentions(R"({"rules":[],"operations":{"metrics":["root"]}})", "operations.metrics[0]: unknown role");
  expect_error_mentions(R"({"rules": [)", "");
}

TEST(Policy, LoadErrorsNameTheFile) {
  auto dir = std::filesystem::temp_directory_path() / ("gw_policy_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "policy");
  {
    std::ofstream(dir / "policy" / "access.json")
        << R"({"rules":[{"roles":["gp"],"resources":["Patient"],"interactions":["read","destroy"]}]})";
  }
  auto p = Policy::load(dir.string());
  ASSERT_FALSE(p.has_value());
  EXPECT_NE(p.error().message.find((dir / "policy" / "access.json").string()), std::string::npos) << p.error().message;
  EXPECT_NE(p.error().message.find("rules[0].interactions[1]"), std::string::npos) << p.error().message;

  std::filesystem::remove(dir / "policy" / "access.json");
  auto missing = Policy::load(dir.string());
  ASSERT_FALSE(missing.has_value());
  EXPECT_NE(missing.error().message.find("access.json"), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(Policy, ShippedPolicyLoadsAndGrantsTheDocumentedDefaults) {
  auto loaded = Policy::load(std::string(GW_SOURCE_DIR) + "/profiles");
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  const Policy& p = *loaded;
  EXPECT_TRUE(p.allows(who("unscheduled-care"), "Flag", "search"));
  EXPECT_TRUE(p.allows(who("health-visiting"), "Observation", "create"));
  EXPECT_FALSE(p.allows(who("gp"), "CarePlan", "create"));  // relapse-prevention plans are the mental-health services'
  // CP-IS plans are CareTeams; CarePlan and Flag are not the local authority's to write.
  EXPECT_TRUE(p.allows(who("local-authority"), "CareTeam", "create"));
  EXPECT_FALSE(p.allows(who("local-authority"), "CarePlan", "create"));
  EXPECT_FALSE(p.allows(who("local-authority"), "Flag", "update"));
  EXPECT_TRUE(p.allows_operation(who("local-authority"), "ingest:cpis-upload"));
  EXPECT_FALSE(p.allows_operation(who("integration"), "ingest:cpis-upload"));
  EXPECT_FALSE(p.allows(who("local-authority"), "Observation", "read"));
  EXPECT_TRUE(p.allows(who("integration"), "Encounter", "update"));
  EXPECT_FALSE(p.allows(who("integration"), "Encounter", "delete"));
  EXPECT_TRUE(p.allows(who("admin"), "Patient", "delete"));
  EXPECT_TRUE(p.allows(who("commissioner"), "Organization", "read"));
  EXPECT_FALSE(p.allows(who("commissioner"), "Patient", "read"));
  EXPECT_TRUE(p.allows(who("camhs"), "Subscription", "delete"));
  // Issue 17: the designated nurse subscribes to safeguarding-escalation and
  // commissioners to the weekly coverage-gaps summary; they read only the
  // Communications sent to their organisation, and still no patient record.
  EXPECT_TRUE(p.allows(who("commissioner"), "Subscription", "create"));
  EXPECT_EQ(p.row_scope(who("commissioner"), "Communication", "read"), std::optional<std::string>("recipient"));
  EXPECT_FALSE(p.allows(who("commissioner"), "Encounter", "read"));
  EXPECT_TRUE(p.allows_operation(who("commissioner"), "acknowledge"));
  EXPECT_FALSE(p.allows_operation(who("admin"), "acknowledge"));
  EXPECT_TRUE(p.allows_operation(who("commissioner"), "coverage-report"));
  EXPECT_TRUE(p.allows_operation(who("admin"), "coverage-report"));
  EXPECT_FALSE(p.allows_operation(who("gp"), "coverage-report"));
  EXPECT_TRUE(p.allows_operation(who("commissioner"), "metrics"));
  EXPECT_TRUE(p.allows_operation(who("admin"), "admin"));
  EXPECT_FALSE(p.allows_operation(who("gp"), "metrics"));
}

TEST(Policy, ConditionalGrantsSayWhatTheContentMustBe) {
  auto loaded = Policy::load(std::string(GW_SOURCE_DIR) + "/profiles");
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  const Policy& p = *loaded;
  gw::security::Principal la{"LA372", "local-authority", "la-system"};
  for (const char* i : {"create", "update"}) {
    auto c = p.write_conditions(la, "CareTeam", i);
    ASSERT_EQ(c.size(), 1u) << i;
    EXPECT_EQ(c[0].own_organisation, "managingOrganization");
    EXPECT_TRUE(c[0].except_codes.empty());
  }
  EXPECT_TRUE(p.write_conditions(la, "Patient", "create").empty());
  EXPECT_TRUE(p.write_conditions(who("admin"), "CareTeam", "update").empty());
  EXPECT_TRUE(p.write_conditions(who("integration"), "CareTeam", "update").empty());
  auto gp = p.write_conditions(who("gp"), "CareTeam", "update");
  ASSERT_EQ(gp.size(), 1u);
  EXPECT_EQ(gp[0].except_codes.size(), 3u);
  auto camhs = p.write_conditions(who("camhs"), "CareTeam", "create");
  ASSERT_EQ(camhs.size(), 1u);
  EXPECT_TRUE(camhs[0].own_organisation.empty());
  EXPECT_EQ(camhs[0].except_codes.size(), 3u);

  auto doc = [](std::string_view j) { return std::move(*gw::json::parse(j)); };
  auto plan = doc(R"({"category":[{"coding":[{"system":"http://snomed.info/sct","code":"342191000000101"}]}],
      "managingOrganization":[{"identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"RX1"}}]})");
  auto team = doc(R"({"category":[{"coding":[{"system":"http://snomed.info/sct","code":"310210009"}]}],
      "managingOrganization":[{"identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"RX1"}}]})");
  EXPECT_FALSE(gp[0].met_by(plan, who("gp")));   // its own organisation, but a plan
  EXPECT_TRUE(gp[0].met_by(team, who("gp")));
  EXPECT_FALSE(gp[0].met_by(team, who("gp", "RX2")));

  // An unconditional grant for the same role and type wins over the condition.
  auto both = Policy::parse(R"({"rules": [
      {"roles": ["local-authority"], "resources": ["CareTeam"], "interactions": ["update"], "ownOrganisation": "managingOrganization"},
      {"roles": ["local-authority"], "ods": ["LA999"], "resources": ["CareTeam"], "interactions": ["update"]}]})");
  ASSERT_TRUE(both.has_value()) << both.error().message;
  EXPECT_TRUE(both->write_conditions({"LA999", "local-authority", "x"}, "CareTeam", "update").empty());
  EXPECT_FALSE(both->write_conditions({"LA372", "local-authority", "x"}, "CareTeam", "update").empty());

  // Mistakes stop loading with the path.
  auto bad = Policy::parse(R"({"rules": [{"roles": ["local-authority"], "resources": ["CareTeam"],
      "interactions": ["read", "create"], "ownOrganisation": "managingOrganization"}]})");
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message.find("rules[0]"), std::string::npos) << bad.error().message;
  bad = Policy::parse(R"({"rules": [{"roles": ["local-authority"], "resources": ["CareTeam"],
      "interactions": ["create"], "ownOrganisation": "managingOrganization.identifier"}]})");
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message.find("rules[0].ownOrganisation"), std::string::npos) << bad.error().message;
  bad = Policy::parse(R"({"rules": [{"roles": ["gp"], "resources": ["CareTeam"],
      "interactions": ["create"], "exceptCodes": ["342191000000101"]}]})");
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message.find("rules[0].exceptCodes[0]"), std::string::npos) << bad.error().message;
}

TEST(Policy, NamesOnlyWantsEveryOccurrenceToCarryTheOdsCode) {
  auto check = [](std::string_view json, std::string_view ods) {
    auto d = gw::json::parse(json);
    return gw::security::names_only(*d, "managingOrganization", ods);
  };
  const std::string own = R"({"identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "LA372"}})";
  const std::string other = R"({"identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "LA999"}})";
  EXPECT_TRUE(check(R"({"managingOrganization": [)" + own + "]}", "LA372"));
  EXPECT_FALSE(check(R"({"managingOrganization": [)" + own + "]}", "LA999"));
  EXPECT_FALSE(check(R"({"managingOrganization": [)" + own + "," + other + "]}", "LA372"));
  EXPECT_FALSE(check(R"({"managingOrganization": []})", "LA372"));
  EXPECT_FALSE(check(R"({})", "LA372"));
  EXPECT_FALSE(check(R"({"managingOrganization": [{"reference": "Organization/LA372"}]})", "LA372"));
  EXPECT_FALSE(check(R"({"managingOrganization": [{"identifier": {"system": "https://example.org", "value": "LA372"}}]})", "LA372"));
  EXPECT_FALSE(check(R"({"managingOrganization": [)" + own + "]}", ""));
}

}  // namespace

namespace {

TEST(Policy, GatewayWrittenTypesAreWrittenByNoRoleEvenWithAWildcardGrant) {
  Policy p = parse_ok(R"({
    "rules": [{"roles": ["admin"], "resources": ["*"], "interactions": ["read", "search", "create", "update", "delete"]}],
    "gatewayWritten": ["AuditEvent"]
  })");
  for (const char* i : {"create", "update", "delete"}) EXPECT_FALSE(p.allows(who("admin"), "AuditEvent", i)) << i;
  EXPECT_TRUE(p.allows(who("admin"), "AuditEvent", "read"));
  EXPECT_TRUE(p.allows(who("admin"), "Patient", "create"));
  EXPECT_TRUE(p.gateway_written("AuditEvent"));
  EXPECT_FALSE(Policy::parse(R"({"rules": [], "gatewayWritten": ["audit event"]})").has_value());
}

TEST(Policy, ShippedPolicyLetsTheCareRolesQueryCpisAndNoOneWriteAuditEvents) {
  auto p = Policy::load(std::string(GW_SOURCE_DIR) + "/profiles");
  ASSERT_TRUE(p.has_value()) << p.error().message;
  for (const char* role : {"unscheduled-care", "gp", "health-visiting", "midwifery", "school-nursing",
                           "paediatric-liaison", "lac-health", "camhs"}) {
    EXPECT_TRUE(p->allows_operation(who(role), "cpis-query")) << role;
    EXPECT_TRUE(p->allows(who(role), "AuditEvent", "search")) << role;
    EXPECT_FALSE(p->allows_operation(who(role), "audit-trail")) << role;
  }
  for (const char* role : {"local-authority", "sexual-health", "adult-mental-health", "commissioner", "integration"})
    EXPECT_FALSE(p->allows_operation(who(role), "cpis-query")) << role;
  EXPECT_TRUE(p->allows_operation(who("commissioner"), "audit-trail"));
  for (const char* role : {"admin", "integration", "local-authority", "unscheduled-care"})
    EXPECT_FALSE(p->allows(who(role), "AuditEvent", "create")) << role;
}

TEST(Policy, AScopedRuleOpensOnlyTheCallersOwnDisclosures) {
  auto p = Policy::parse(R"({"rules":[
    {"roles":["gp"],"resources":["Communication"],"interactions":["read","search"],"scope":"recipient"},
    {"roles":["admin"],"resources":["*"],"interactions":["read"]}]})");
  ASSERT_TRUE(p.has_value()) << p.error().message;
  Principal gp{"B86001", "gp", "x"}, admin{"RXX", "admin", "y"};
  EXPECT_TRUE(p->allows(gp, "Communication", "read"));
  EXPECT_EQ(p->row_scope(gp, "Communication", "read"), std::optional<std::string>("recipient"));
  EXPECT_EQ(p->row_scope(admin, "Communication", "read"), std::nullopt);
  EXPECT_FALSE(p->allows(gp, "Communication", "create"));
  // Written by the gateway only: not even admin's blanket grant creates, updates or deletes it.
  auto written = Policy::parse(R"({"rules":[{"roles":["admin"],"resources":["*"],"interactions":["read","create","update","delete"]}],
    "gatewayWritten":["Communication"]})");
  ASSERT_TRUE(written.has_value()) << written.error().message;
  EXPECT_TRUE(written->allows(admin, "Communication", "read"));
  EXPECT_FALSE(written->allows(admin, "Communication", "create"));
  EXPECT_FALSE(written->allows(admin, "Communication", "delete"));
  EXPECT_TRUE(written->allows(admin, "Patient", "create"));
  auto bad = Policy::parse(
      R"({"rules":[{"roles":["gp"],"resources":["Communication"],"interactions":["read"],"scope":"anyone"}]})");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().expression, "rules[0].scope");
}

}  // namespace
