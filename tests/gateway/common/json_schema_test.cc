// The schema facade and the start-up check of the profile files: every
// problem at once, each with its file, line and column; the shipped profiles
// pass; a broken policy stops the real binary before it listens.
#include "gateway/common/json_schema.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "gateway/config/profile_schemas.h"
#include "tests/support/gateway_process.h"
#include "tests/support/pki.h"
#include "tests/support/test_gateway.h"

namespace gw {
namespace {

const std::string kProfiles = std::string(GW_SOURCE_DIR) + "/profiles";

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json::Schema access_schema() {
  auto s = json::Schema::load(kProfiles + "/schemas/access.schema.json");
  EXPECT_TRUE(s.has_value()) << s.error().message;
  return std::move(*s);
}

TEST(JsonSchema, EveryProblemOfAPolicyIsReportedAtOnceWithLineAndColumn) {
  auto schema = access_schema();
  const std::string text =
      "{\n"
      "  \"rules\": [\n"
      "    {\"roles\": [\"gp\", \"nurse\"], \"resources\": [\"Patient\"], \"interactions\": [\"read\"]},\n"
      "    {\"roles\": [\"gp\"], \"resources\": [\"Patient\"], \"interactions\": [\"read\"], \"grants\": true},\n"
      "    {\"roles\": [\"gp\"], \"resources\": [\"Patient\"], \"interactions\": [\"peek\"]}\n"
      "  ],\n"
      "  \"sensitivity\": {\"XYZ\": [\"gp\"], \"PSY\": [\"camhs\", \"doctor\"]}\n"
      "}\n";
  auto problems = schema.problems(text);
  ASSERT_EQ(problems.size(), 5u);
  auto find = [&](const std::string& pointer) -> const json::SchemaProblem* {
    for (const auto& p : problems)
      if (p.pointer == pointer) return &p;
    return nullptr;
  };
  const auto* role = find("/rules/0/roles/1");
  ASSERT_NE(role, nullptr);
  EXPECT_EQ(role->line, 3u);
  EXPECT_EQ(role->column, 22u);
  EXPECT_NE(role->message.find("\"nurse\" is not one of: local-authority"), std::string::npos) << role->message;
  const auto* key = find("/rules/1/grants");
  ASSERT_NE(key, nullptr);
  EXPECT_EQ(key->line, 4u);
  EXPECT_EQ(key->message, "unknown key 'grants'");
  const auto* interaction = find("/rules/2/interactions/0");
  ASSERT_NE(interaction, nullptr);
  EXPECT_EQ(interaction->line, 5u);
  const auto* label = find("/sensitivity/XYZ");
  ASSERT_NE(label, nullptr);
  EXPECT_EQ(label->line, 7u);
  EXPECT_EQ(label->message, "unknown key 'XYZ'");
  // The second bad role of a list is found although the first was taken out.
  const auto* second = find("/sensitivity/PSY/1");
  ASSERT_NE(second, nullptr) << "index of a later item must map back to the file";
  EXPECT_NE(second->message.find("\"doctor\""), std::string::npos);

  auto r = json::validate_text(text, "access.json", schema);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("5 problems in access.json"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("access.json:3:22: "), std::string::npos) << r.error().message;
}

TEST(JsonSchema, TextThatIsNotJsonIsOneProblemAtItsPosition) {
  auto schema = access_schema();
  auto problems = schema.problems("{\n  \"rules\": [,]\n}");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].line, 2u);
  EXPECT_NE(problems[0].message.find("not valid JSON"), std::string::npos);
}

TEST(JsonSchema, TheShippedProfilesMatchTheirSchemas) {
  auto r = config::check_profile_files(kProfiles);
  EXPECT_TRUE(r.has_value()) << r.error().message;
}

TEST(JsonSchema, ABrokenPolicyOrTopicStopsTheBinaryWithEveryProblemNamed) {
  test::TempDir dir;
  std::string profiles = dir.path() + "/profiles";
  std::filesystem::copy(kProfiles, profiles, std::filesystem::copy_options::recursive);
  std::string access = slurp(profiles + "/policy/access.json");
  access.replace(access.find("\"rules\""), 7, "\"ruels\": [], \"rules\"");
  std::ofstream(profiles + "/policy/access.json", std::ios::trunc) << access;
  std::string topic = slurp(profiles + "/topics/patient-change.json");
  topic.replace(topic.find("\"admin\""), 7, "\"superuser\"");
  std::ofstream(profiles + "/topics/patient-change.json", std::ios::trunc) << topic;

  auto r = config::check_profile_files(profiles);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("access.json:"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("unknown key 'ruels'"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("patient-change.json:"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("\"superuser\" is not one of"), std::string::npos) << r.error().message;

  const std::string& pki = test::dev_pki_dir();
  std::string out;
  int rc = test::run_gateway_command({"serve", "--data-dir", dir.path() + "/data", "--https-listen", "127.0.0.1:0",
                                      "--tls-cert", pki + "/server.pem", "--tls-key", pki + "/server.key",
                                      "--client-ca", pki + "/ca.pem", "--profiles-dir", profiles},
                                     out);
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("unknown key 'ruels'"), std::string::npos) << out;
  EXPECT_NE(out.find("superuser"), std::string::npos) << out;
  EXPECT_EQ(out.find("listening"), std::string::npos) << out;
}

}  // namespace
}  // namespace gw
