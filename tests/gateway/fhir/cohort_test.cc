// POST /fhir/Patient/$safeguarding-cohort over HTTPS: plans of the person and
// of their linked children, only for the caller's own caseload, with labelled
// links left out and bad numbers named by parameter.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "gateway/common/json.h"
#include "tests/support/plan_seed.h"
#include "tests/support/test_gateway.h"

namespace gw {
namespace {

using test::InProcessGateway;
using test::PlanSeed;

const std::string kPath = "/fhir/Patient/$safeguarding-cohort";

std::string ods_ref(const std::string& ods) {
  return R"({"identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":")" + ods + "\"}}";
}

std::string cohort_request(const std::vector<std::string>& numbers) {
  std::string body = R"({"resourceType":"Parameters","parameter":[)";
  for (size_t i = 0; i < numbers.size(); ++i) {
    if (i) body += ",";
    // Both forms the operation accepts.
    if (i % 2 == 0) body += R"({"name":"nhsNumber","valueString":")" + numbers[i] + "\"}";
    else body += R"({"name":"nhsNumber","valueIdentifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":")" + numbers[i] + "\"}}";
  }
  return body + "]}";
}

// The answer's `patient` parameter with this index.
const json::Value* answer_for(const json::Document& d, int index) {
  for (const auto& p : d["parameter"].GetArray()) {
    if (json::get_string(p, "name").value_or("") != "patient") continue;
    for (const auto& part : p["part"].GetArray())
      if (json::get_string(part, "name").value_or("") == "index" && part["valueInteger"].GetInt() == index) return &p;
  }
  return nullptr;
}

std::vector<const json::Value*> parts_named(const json::Value& p, std::string_view name) {
  std::vector<const json::Value*> out;
  for (const auto& part : p["part"].GetArray())
    if (json::get_string(part, "name").value_or("") == name) out.push_back(&part);
  return out;
}

std::string part_string(const json::Value& p, std::string_view name, std::string_view type) {
  for (const json::Value* part : parts_named(p, name)) {
    if (type == "valueIdentifier") return std::string(json::get_string((*part)[type.data()], "value").value_or(""));
    if (auto s = json::get_string(*part, type)) return std::string(*s);
  }
  return {};
}

// The resource is valid FHIR R4 (tests/tools/fhir-validate.js, the R4 JSON schema).
void expect_valid_r4(const std::string& body) {
  test::TempDir out;
  std::ofstream(out.path() + "/cohort.json") << body;
  std::string cmd = "node " + std::string(GW_SOURCE_DIR) + "/tests/tools/fhir-validate.js " + out.path() + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buf[4096];
  while (size_t k = fread(buf, 1, sizeof buf, pipe)) output.append(buf, k);
  int status = pclose(pipe);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << output;
  EXPECT_NE(output.find("fhir-validate: 1 resources, 0 invalid"), std::string::npos) << output;
}

struct Family {
  std::string parent, child_cpp, child_ended, child_hidden, other;
};

// A mother on the adult mental-health caseload (RXX08) with an unborn-child
// plan, a child on a CPP plan, a child whose LAC plan ended two years ago, and
// a child on a plan linked only through a sexual-health-labelled link; a
// young person on the CAMHS caseload (RXX07) only.
Family seed(InProcessGateway& gw) {
  Family f{test::nhs_number_from("999007919"), test::nhs_number_from("999023757"),
           test::nhs_number_from("999031676"), test::nhs_number_from("999111222"),
           test::nhs_number_from("999063352")};
  auto admin = gw.client("admin");
  std::string mother = test::create_patient(admin, f.parent, "\"managingOrganization\":" + ods_ref("RXX08"));
  PlanSeed ucpp;
  ucpp.abbreviation = "UCPP";
  test::create_plan(admin, mother, f.parent, ucpp);

  std::string c1 = test::create_patient(admin, f.child_cpp);
  test::create_family_link(admin, c1, f.child_cpp, f.parent);
  PlanSeed cpp;
  cpp.la_name = "Rotherham MBC";
  cpp.emergency = "01709 999111";
  test::create_plan(admin, c1, f.child_cpp, cpp);

  std::string c2 = test::create_patient(admin, f.child_ended);
  test::create_family_link(admin, c2, f.child_ended, f.parent);
  PlanSeed ended;
  ended.abbreviation = "LAC";
  ended.start = "2020-01-01";
  ended.end = "2023-06-30";
  test::create_plan(admin, c2, f.child_ended, ended);

  std::string c3 = test::create_patient(admin, f.child_hidden);
  test::create_family_link(admin, c3, f.child_hidden, f.parent, "STD");
  test::create_plan(admin, c3, f.child_hidden, PlanSeed{});

  std::string yp = test::create_patient(admin, f.other);
  test::create_resource(admin, "EpisodeOfCare",
                        R"({"resourceType":"EpisodeOfCare","status":"active","patient":{"reference":"Patient/)" + yp +
                            R"("},"managingOrganization":)" + ods_ref("RXX07") + "}");
  return f;
}

TEST(SafeguardingCohort, AnswersPlansOfThePersonAndTheirChildrenInTheCallersCaseload) {
  InProcessGateway gw;
  Family f = seed(gw);
  std::string unknown = test::nhs_number_from("999444555");
  auto amh = gw.client("adult-mental-health");
  auto r = amh.request("POST", kPath, cohort_request({f.parent, f.other, "9990079197", unknown}),
                       {{"Content-Type", "application/fhir+json"}});
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->status, 200) << r->body;
  auto d = json::parse(r->body);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(json::get_string(*d, "resourceType").value_or(""), "Parameters");

  const json::Value* mother = answer_for(*d, 0);
  ASSERT_NE(mother, nullptr) << r->body;
  EXPECT_EQ(part_string(*mother, "status", "valueCode"), "in-caseload");
  EXPECT_TRUE(parts_named(*mother, "onPlan").at(0)->operator[]("valueBoolean").GetBool());
  auto own = parts_named(*mother, "plan");
  ASSERT_EQ(own.size(), 1u);
  EXPECT_EQ(part_string(*own[0], "planType", "valueCode"), "UCPP");
  // Only the child whose plan is in scope and whose link the caller may read.
  auto children = parts_named(*mother, "childWithPlan");
  ASSERT_EQ(children.size(), 1u) << r->body;
  EXPECT_EQ(part_string(*children[0], "nhsNumber", "valueIdentifier"), f.child_cpp);
  auto plan = parts_named(*children[0], "plan");
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(part_string(*plan[0], "planType", "valueCode"), "CPP");
  EXPECT_EQ(part_string(*plan[0], "localAuthorityName", "valueString"), "Rotherham MBC");
  EXPECT_EQ(part_string(*plan[0], "localAuthorityOds", "valueString"), "L0001");
  EXPECT_EQ(part_string(*plan[0], "emergencyDutyNumber", "valueString"), "01709 999111");
  EXPECT_EQ(r->body.find(f.child_ended), std::string::npos) << "a plan ended over 12 months ago is out of scope";
  EXPECT_EQ(r->body.find(f.child_hidden), std::string::npos) << "a sexual-health-labelled link must not be used";

  // Cared for by CAMHS, not by this service; and a person the gateway does
  // not know: the same answer, nothing more.
  const json::Value* other = answer_for(*d, 1);
  const json::Value* stranger = answer_for(*d, 3);
  ASSERT_TRUE(other && stranger);
  EXPECT_EQ(part_string(*other, "status", "valueCode"), "not-in-caseload");
  EXPECT_EQ(part_string(*stranger, "status", "valueCode"), "not-in-caseload");
  EXPECT_EQ((*other)["part"].Size(), (*stranger)["part"].Size());
  EXPECT_TRUE(parts_named(*other, "onPlan").empty());
  EXPECT_TRUE(parts_named(*other, "childWithPlan").empty());

  // The bad number is named by its parameter, without repeating it.
  const json::Value* bad = answer_for(*d, 2);
  ASSERT_NE(bad, nullptr);
  EXPECT_EQ(part_string(*bad, "status", "valueCode"), "invalid");
  EXPECT_NE(r->body.find("\"expression\":[\"Parameters.parameter[2]\"]"), std::string::npos) << r->body;
  EXPECT_EQ(r->body.find("9990079197"), std::string::npos);
  expect_valid_r4(r->body);
}

TEST(SafeguardingCohort, TheCamhsTeamSeesItsOwnCaseloadOnly) {
  InProcessGateway gw;
  Family f = seed(gw);
  auto camhs = gw.client("camhs");
  auto r = camhs.request("POST", kPath, cohort_request({f.parent, f.other}), {{"Content-Type", "application/json"}});
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->status, 200) << r->body;
  auto d = json::parse(r->body);
  EXPECT_EQ(part_string(*answer_for(*d, 0), "status", "valueCode"), "not-in-caseload");
  const json::Value* yp = answer_for(*d, 1);
  EXPECT_EQ(part_string(*yp, "status", "valueCode"), "in-caseload");
  EXPECT_FALSE(parts_named(*yp, "onPlan").at(0)->operator[]("valueBoolean").GetBool());
  EXPECT_EQ(r->body.find(f.child_cpp), std::string::npos);
}

TEST(SafeguardingCohort, OtherRolesAndMalformedRequestsAreRefused) {
  InProcessGateway gw;
  std::string body = cohort_request({test::nhs_number_from("999007919")});
  for (const char* role : {"gp", "local-authority", "integration", "admin"}) {
    auto c = gw.client(role);
    auto r = c.request("POST", kPath, body, {{"Content-Type", "application/fhir+json"}});
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 403) << role << ": " << r->body;
  }
  auto amh = gw.client("adult-mental-health");
  auto get = amh.request("GET", kPath);
  EXPECT_EQ(get->status, 405);
  auto not_params = amh.request("POST", kPath, R"({"resourceType":"Patient"})", {{"Content-Type", "application/json"}});
  EXPECT_EQ(not_params->status, 400) << not_params->body;
  auto other_param = amh.request("POST", kPath, R"({"resourceType":"Parameters","parameter":[{"name":"name","valueString":"x"}]})",
                                 {{"Content-Type", "application/json"}});
  EXPECT_EQ(other_param->status, 400);
  EXPECT_NE(other_param->body.find("Parameters.parameter[0].name"), std::string::npos) << other_param->body;
  auto xml = amh.request("POST", kPath, "<Parameters/>", {{"Content-Type", "application/fhir+xml"}});
  EXPECT_EQ(xml->status, 415);

  // The operation is advertised, and its definition is there to read.
  auto meta = amh.request("GET", "/fhir/metadata");
  EXPECT_NE(meta->body.find("\"name\":\"safeguarding-cohort\""), std::string::npos);
  auto gp = gw.client("gp");
  auto def = gp.request("GET", "/fhir/OperationDefinition/safeguarding-cohort");
  ASSERT_EQ(def->status, 200);
  EXPECT_NE(def->body.find("\"code\":\"safeguarding-cohort\""), std::string::npos);
  expect_valid_r4(def->body);
}

std::string fixture(const std::string& rel) {
  std::ifstream in(std::filesystem::path(GW_SOURCE_DIR) / "tests/fixtures" / rel, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Jade (9990079196) and her children Ellie (9990237573, on a CPP plan) and
// Noah (9990316767), linked by what a feed sends; the adult mental-health
// service RXX08 cares for Jade. Returns the cohort answer for Jade.
std::string cohort_for_jade(InProcessGateway& gw) {
  auto admin = gw.client("admin");
  auto ellie = admin.request("GET", "/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number%7C9990237573");
  auto d = json::parse(ellie->body);
  EXPECT_EQ((*d)["total"].GetInt(), 1) << "the feed created the child";
  if ((*d)["total"].GetInt() != 1) return {};
  std::string ellie_id(json::get_string((*d)["entry"][0]["resource"], "id").value_or(""));
  test::create_plan(admin, ellie_id, "9990237573", PlanSeed{});
  auto amh = gw.client("adult-mental-health");
  auto r = amh.request("POST", kPath, cohort_request({"9990079196"}), {{"Content-Type", "application/fhir+json"}});
  EXPECT_EQ(r->status, 200) << r->body;
  return r->body;
}

void expect_ellie_only(const std::string& body) {
  auto d = json::parse(body);
  ASSERT_TRUE(d.has_value()) << body;
  const json::Value* jade = answer_for(*d, 0);
  ASSERT_NE(jade, nullptr) << body;
  EXPECT_EQ(part_string(*jade, "status", "valueCode"), "in-caseload");
  auto children = parts_named(*jade, "childWithPlan");
  ASSERT_EQ(children.size(), 1u) << body;
  EXPECT_EQ(part_string(*children[0], "nhsNumber", "valueIdentifier"), "9990237573");
  EXPECT_EQ(body.find("9990316767"), std::string::npos) << "Noah has no plan";
}

TEST(SafeguardingCohort, FamilyLinksFromTheCamhsExtractAreFollowed) {
  InProcessGateway gw;
  // The sample extract as the adult mental-health trust RXX08 would send it:
  // Jade's Dependant rows become the family links, her referral the caseload.
  std::string extract = fixture("camhs/extract_sample.xml");
  extract.replace(extract.find("OrgIDProvider=\"RXE\""), 19, "OrgIDProvider=\"RXX08\"");
  auto integration = gw.client("integration");
  auto r = integration.request("POST", "/ingest/camhs", extract, {{"Content-Type", "application/xml"}});
  ASSERT_EQ(r->status, 200) << r->body;
  expect_ellie_only(cohort_for_jade(gw));
}

TEST(SafeguardingCohort, FamilyLinksFromSystmOneAreFollowed) {
  InProcessGateway gw;
  // The A28's NK1 rows with the children's NHS numbers become the family links.
  auto integration = gw.client("integration");
  auto r = integration.request("POST", "/ingest/systmone", fixture("systmone/adt_a28_parent.hl7"));
  ASSERT_EQ(r->status, 200) << r->body;
  auto admin = gw.client("admin");
  auto jade = json::parse(
      admin.request("GET", "/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number%7C9990079196")->body);
  std::string jade_id(json::get_string((*jade)["entry"][0]["resource"], "id").value_or(""));
  test::create_resource(admin, "EpisodeOfCare",
                        R"({"resourceType":"EpisodeOfCare","status":"active","patient":{"reference":"Patient/)" +
                            jade_id + R"("},"managingOrganization":)" + ods_ref("RXX08") + "}");
  expect_ellie_only(cohort_for_jade(gw));
}

}  // namespace
}  // namespace gw
