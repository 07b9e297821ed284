// Cross-feed merge: SystmOne and CAMHS write the same Patient (by NHS
// number); neither blanks what the other holds, and SystmOne owns the
// demographics and the GP whichever order the feeds arrive in.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "gateway/common/json.h"
#include "gateway/write/merge_policy.h"
#include "tests/support/test_gateway.h"

namespace gw {
namespace {

namespace fs = std::filesystem;
using test::InProcessGateway;

std::string fixture(const std::string& rel) {
  std::ifstream in(fs::path(GW_SOURCE_DIR) / "tests/fixtures" / rel, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Jade Thompson (9990079196): SystmOne A28 with GP, address, names, phone;
// the CAMHS extract's RXE-A-5511 with a postcode, birth date and local id.
void post_systmone(InProcessGateway& gw) {
  auto c = gw.client("integration");
  auto r = c.request("POST", "/ingest/systmone", fixture("systmone/adt_a28_parent.hl7"));
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->status, 200) << r->body;
  ASSERT_NE(r->body.find("\"outcome\":\"accepted\""), std::string::npos) << r->body;
}

void post_camhs(InProcessGateway& gw) {
  auto c = gw.client("integration");
  auto r = c.request("POST", "/ingest/camhs", fixture("camhs/extract_sample.xml"));
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->status, 200) << r->body;
}

json::Document jade(InProcessGateway& gw) {
  auto c = gw.client("admin");
  auto r = c.request("GET", "/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number%7C9990079196");
  EXPECT_EQ(r->status, 200);
  auto d = json::parse(r->body);
  EXPECT_EQ((*d)["total"].GetInt(), 1) << r->body;
  json::Document p;
  p.CopyFrom((*d)["entry"][0]["resource"], p.GetAllocator());
  return p;
}

bool has_identifier(const json::Value& p, std::string_view system, std::string_view value) {
  for (const auto& i : p["identifier"].GetArray())
    if (json::get_string(i, "system") == system && json::get_string(i, "value") == value) return true;
  return false;
}

void expect_both_feeds(const json::Value& p) {
  // SystmOne's: the registered GP, the full address, names, phone, its local id.
  ASSERT_TRUE(p.HasMember("generalPractitioner")) << json::to_string(p);
  EXPECT_EQ(json::get_string(p["generalPractitioner"][0]["identifier"], "value").value_or(""), "C87001");
  ASSERT_TRUE(p.HasMember("address"));
  ASSERT_EQ(p["address"].Size(), 1u);
  EXPECT_EQ(json::get_string(p["address"][0], "city").value_or(""), "Rotherham") << json::to_string(p);
  EXPECT_EQ(json::get_string(p["address"][0], "postalCode").value_or(""), "S62 6AA");
  ASSERT_TRUE(p.HasMember("name"));
  EXPECT_EQ(json::get_string(p["name"][0], "family").value_or(""), "THOMPSON");
  ASSERT_TRUE(p.HasMember("telecom"));
  EXPECT_TRUE(has_identifier(p, "urn:cpis-gateway:local-id:C87001", "700045"));
  // CAMHS's: its local id, next to the one NHS number.
  EXPECT_TRUE(has_identifier(p, "urn:cpis-gateway:local-id:RXE", "RXE-A-5511")) << json::to_string(p);
  int nhs = 0;
  for (const auto& i : p["identifier"].GetArray())
    if (json::get_string(i, "system") == "https://fhir.nhs.uk/Id/nhs-number") ++nhs;
  EXPECT_EQ(nhs, 1);
  EXPECT_EQ(json::get_string(p, "birthDate").value_or(""), "1996-02-12");
  EXPECT_EQ(json::get_string(p, "gender").value_or(""), "female");
}

TEST(CrossFeedMerge, CamhsAfterSystmOneKeepsTheGpRecord) {
  InProcessGateway gw;
  post_systmone(gw);
  post_camhs(gw);
  expect_both_feeds(jade(gw));
}

TEST(CrossFeedMerge, SystmOneAfterCamhsKeepsTheCamhsIdentifiersAndOwnsTheAddress) {
  InProcessGateway gw;
  post_camhs(gw);
  auto before = jade(gw);
  EXPECT_FALSE(before.HasMember("generalPractitioner"));
  post_systmone(gw);
  expect_both_feeds(jade(gw));
}

TEST(CrossFeedMerge, FeedsArrivingTogetherBothLand) {
  InProcessGateway gw;
  std::thread a([&] { post_systmone(gw); });
  std::thread b([&] { post_camhs(gw); });
  a.join();
  b.join();
  expect_both_feeds(jade(gw));
}

TEST(CrossFeedMerge, ADirectFhirUpdateStillReplacesTheWholeResource) {
  InProcessGateway gw;
  post_systmone(gw);
  auto p = jade(gw);
  std::string id(json::get_string(p, "id").value_or(""));
  auto admin = gw.client("admin");
  auto r = admin.request("PUT", "/fhir/Patient/" + id,
                         R"({"resourceType":"Patient","id":")" + id +
                             R"(","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9990079196"}]})",
                         {{"Content-Type", "application/fhir+json"}});
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_FALSE(jade(gw).HasMember("generalPractitioner"));
}

TEST(MergePolicy, ElementRulesFromData) {
  auto policy = write::MergePolicy::parse(R"({"types":{"Patient":{"feeds":["a","b"],"choices":["deceased"],
    "elements":{"identifier":{"merge":"by-system"},"meta":{"merge":"labels"},"address":{"owner":"a"}}}}})");
  ASSERT_TRUE(policy.has_value()) << policy.error().message;
  EXPECT_TRUE(policy->merges("Patient", "b"));
  EXPECT_FALSE(policy->merges("Patient", "c"));
  EXPECT_FALSE(policy->merges("Encounter", "a"));
  auto current = json::parse(R"({"resourceType":"Patient","id":"x",
    "meta":{"security":[{"system":"s","code":"PSY"}]},
    "identifier":[{"system":"nhs","value":"1"},{"system":"local-a","value":"A1"}],
    "address":[{"city":"Rotherham"}],"telecom":[{"value":"1"}],"deceasedBoolean":false})");
  auto incoming = json::parse(R"({"resourceType":"Patient",
    "meta":{"tag":[{"code":"t"}]},
    "identifier":[{"system":"nhs","value":"1"},{"system":"local-b","value":"B1"}],
    "address":[{"postalCode":"S60 1AA"}],"deceasedDateTime":"2026-11-01"})");
  policy->merge("Patient", "b", *current, *incoming);
  std::string out = json::to_string(*incoming);
  EXPECT_NE(out.find("\"city\":\"Rotherham\""), std::string::npos) << "a owns the address: " << out;
  EXPECT_EQ(out.find("S60 1AA"), std::string::npos);
  EXPECT_NE(out.find("local-a"), std::string::npos);
  EXPECT_NE(out.find("local-b"), std::string::npos);
  EXPECT_NE(out.find("\"telecom\""), std::string::npos) << "not sent: kept";
  EXPECT_NE(out.find("PSY"), std::string::npos) << "labels are never dropped";
  EXPECT_EQ(out.find("deceasedBoolean"), std::string::npos) << "one form of a choice element";
  EXPECT_FALSE(incoming->HasMember("id"));

  // Until the owner has written the resource (its mark), another feed keeps
  // its own record up to date.
  auto marked = write::MergePolicy::parse(R"({"types":{"Patient":{"feeds":["a","b"],"marks":{"a":"urn:mark-a"},
    "elements":{"address":{"owner":"a"}}}}})");
  ASSERT_TRUE(marked.has_value()) << marked.error().message;
  auto only_b = json::parse(R"({"resourceType":"Patient","address":[{"postalCode":"S60 1AA"}]})");
  auto b_moves = json::parse(R"({"resourceType":"Patient","address":[{"postalCode":"S65 2AA"}]})");
  marked->merge("Patient", "b", *only_b, *b_moves);
  EXPECT_NE(json::to_string(*b_moves).find("S65 2AA"), std::string::npos);
  auto by_a = json::parse(R"({"resourceType":"Patient","extension":[{"url":"urn:mark-a","valueInstant":"2026-11-03T09:16:00Z"}],
    "address":[{"city":"Rotherham"}]})");
  auto b_again = json::parse(R"({"resourceType":"Patient","address":[{"postalCode":"S65 2AA"}]})");
  marked->merge("Patient", "b", *by_a, *b_again);
  EXPECT_NE(json::to_string(*b_again).find("Rotherham"), std::string::npos);
  EXPECT_EQ(json::to_string(*b_again).find("S65 2AA"), std::string::npos);
  EXPECT_FALSE(write::MergePolicy::parse(R"({"types":{"Patient":{"feeds":["a"],"marks":{"z":"u"},"elements":{}}}})"));

  auto owner_sends = json::parse(R"({"resourceType":"Patient","address":[{"postalCode":"S60 1AA"}]})");
  policy->merge("Patient", "a", *current, *owner_sends);
  EXPECT_NE(json::to_string(*owner_sends).find("S60 1AA"), std::string::npos);

  EXPECT_FALSE(write::MergePolicy::parse(R"({"types":{"Patient":{"feeds":["a"],"elements":{"x":{"owner":"z"}}}}})"));
  EXPECT_FALSE(write::MergePolicy::parse(R"({"types":{"Patient":{"feeds":["a"],"elements":{"x":{"merge":"magic"}}}}})"));
  EXPECT_FALSE(write::MergePolicy::parse(R"({"types":{"Patient":{"feeds":["a"],"elements":{},"extra":1}}})"));
}

}  // namespace
}  // namespace gw
