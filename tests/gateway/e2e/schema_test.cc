// Everything the gateway emits must validate against the official FHIR R4
// JSON schema. The check is made by an independent validator from npm
// (tests/tools/fhir-validate.js), not by our own rules.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>

#include "gateway/common/json.h"
#include "tests/support/fixtures.h"
#include "tests/support/test_gateway.h"

namespace gw {
namespace {

TEST(FhirSchema, EveryKindOfResourceTheGatewayEmitsIsValidR4) {
  test::InProcessGateway gw;
  test::TempDir out;
  auto c = gw.client("admin");
  int n = 0;
  auto keep = [&](const std::string& what, const test::ClientResponse& r) {
    ASSERT_FALSE(r.body.empty()) << what;
    std::ofstream(out.path() + "/" + std::to_string(++n) + "-" + what + ".json") << r.body;
  };
  auto req = [&](const std::string& m, const std::string& target, const std::string& body = "") {
    auto r = c.request(m, target, body, {{"Content-Type", "application/fhir+json"}});
    EXPECT_TRUE(r.has_value());
    return r ? *r : test::ClientResponse{};
  };

  auto p = req("POST", "/fhir/Patient", test::fixture("fhir/Patient.json", {{"nhs", test::nhs_number_for(42)}}));
  ASSERT_EQ(p.status, 201) << p.body;
  keep("Patient-created", p);
  std::string pid(json::get_string(*json::parse(p.body), "id").value_or(""));
  for (const char* type : {"RelatedPerson", "Encounter", "Observation", "Flag", "CareTeam", "CarePlan", "Organization",
                           "Consent", "EpisodeOfCare", "Subscription"}) {
    auto r = req("POST", std::string("/fhir/") + type, test::fixture(std::string("fhir/") + type + ".json", {{"patient", pid}}));
    ASSERT_EQ(r.status, 201) << type << ": " << r.body;
    keep(std::string(type) + "-created", r);
    std::string id(json::get_string(*json::parse(r.body), "id").value_or(""));
    keep(std::string(type) + "-read", req("GET", std::string("/fhir/") + type + "/" + id));
  }
  // The CP-IS API (CPIS.md section 2): the plan searchset, the AuditEvent an
  // unscheduled access leaves, the access trail, the derived Flags, the
  // national error shape.
  std::string nhs = test::nhs_number_for(42);
  auto plan = req("POST", "/fhir/CareTeam",
                  test::fixture("fhir/CpisPlan.json", {{"patient", pid}, {"nhs", nhs}, {"la", "L0001"},
                                                      {"la_name", "Authority L0001"}, {"local_id", "C1"},
                                                      {"status", "active"}, {"snomed", "342191000000101"},
                                                      {"period", R"({"start":"2026-01-10"})"}}));
  ASSERT_EQ(plan.status, 201) << plan.body;
  auto ed = gw.client("unscheduled-care");
  std::string by_nhs = "?patient:identifier=https://fhir.nhs.uk/Id/nhs-number%7C" + nhs;
  auto national = [&](const std::string& target, const std::string& unscheduled) {
    auto r = ed.request("GET", target, "", {{"IsUnscheduledAccessEvent", unscheduled}, {"TraceID", "schema-1"},
                                            {"NHSD-Session-URID", "555021935107"}, {"X-User-Name", "Dr A"}});
    EXPECT_TRUE(r.has_value());
    return r ? *r : test::ClientResponse{};
  };
  keep("cpis-CareTeam-searchset", national("/fhir/CareTeam" + by_nhs, "true"));
  keep("cpis-Flag-searchset", national("/fhir/Flag" + by_nhs, "false"));
  keep("cpis-OperationOutcome-400", national("/fhir/CareTeam" + by_nhs, "maybe"));
  auto trail = req("GET", "/fhir/AuditEvent" + by_nhs);
  keep("AuditEvent-searchset", trail);
  auto trail_doc = json::parse(trail.body);
  ASSERT_TRUE(trail_doc && trail_doc->HasMember("entry")) << trail.body;
  std::string ae_id(json::get_string((*trail_doc)["entry"][0]["resource"], "id").value_or(""));
  keep("AuditEvent-read", req("GET", "/fhir/AuditEvent/" + ae_id));
  keep("CapabilityStatement", req("GET", "/fhir/metadata"));
  keep("searchset", req("GET", "/fhir/Observation?patient=" + pid + "&_count=1"));
  keep("searchset-empty", req("GET", "/fhir/Observation?patient=Patient/nobody"));
  keep("history", req("GET", "/fhir/Patient/" + pid + "/_history"));
  keep("OperationOutcome-422", req("POST", "/fhir/Patient", R"({"resourceType":"Patient","gender":"M"})"));
  keep("OperationOutcome-404", req("GET", "/fhir/Patient/none"));
  keep("OperationOutcome-406", req("GET", "/fhir/metadata?_format=xml"));
  keep("transaction-response",
       req("POST", "/fhir",
           R"({"resourceType":"Bundle","type":"transaction","entry":[{"resource":)" +
               test::fixture("fhir/Patient.json", {{"nhs", test::nhs_number_for(43)}}) +
               R"(,"request":{"method":"POST","url":"Patient"}}]})"));
  keep("batch-response",
       req("POST", "/fhir",
           R"({"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET","url":"Patient/)" + pid +
               R"("}},{"request":{"method":"GET","url":"Patient/none"}}]})"));

  std::string cmd = "node " + std::string(GW_SOURCE_DIR) + "/tests/tools/fhir-validate.js " + out.path() + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buf[4096];
  while (size_t k = fread(buf, 1, sizeof buf, pipe)) output.append(buf, k);
  int status = pclose(pipe);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << output;
  EXPECT_NE(output.find("fhir-validate: " + std::to_string(n) + " resources, 0 invalid"), std::string::npos) << output;
}

// The validator itself must be able to fail, or the test above proves nothing.
TEST(FhirSchema, TheValidatorRejectsAnInvalidResource) {
  test::TempDir out;
  std::ofstream(out.path() + "/bad.json") << R"({"resourceType":"Patient","gender":7,"name":[]})";
  std::string cmd = "node " + std::string(GW_SOURCE_DIR) + "/tests/tools/fhir-validate.js " + out.path() + " >/dev/null 2>&1";
  int status = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1);
}

}  // namespace
}  // namespace gw
