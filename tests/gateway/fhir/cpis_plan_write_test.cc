// Who may write a CP-IS plan (CPIS.md section 1), over the real HTTPS stack:
// a local authority writes only plans managed by its own ODS code
// (access.json "ownOrganisation") and cannot change, or take over by a
// conditional update, a plan another authority manages — by REST, in a
// transaction or in a batch. The dev PKI has two: L0001 and LA372.
#include <gtest/gtest.h>

#include <atomic>

#include "gateway/common/json.h"
#include "tests/support/fixtures.h"
#include "tests/support/test_gateway.h"

namespace gw {
namespace {

using test::ClientResponse;
using test::HttpsClient;
using test::InProcessGateway;

const std::vector<std::pair<std::string, std::string>> kJson = {{"Content-Type", "application/fhir+json"}};

json::Document parse(const ClientResponse& r) {
  auto d = json::parse(r.body);
  EXPECT_TRUE(d.has_value()) << r.body.substr(0, 200);
  return d ? std::move(*d) : json::Document();
}

std::string first(const json::Document& d, const char* key) {
  const json::Value* is = json::member(d, "issue");
  if (!is || !is->IsArray() || is->Empty()) return {};
  const json::Value& i = (*is)[0];
  if (std::string_view(key) == "expression") {
    const json::Value* e = json::member(i, "expression");
    return e && e->IsArray() && !e->Empty() ? std::string(json::as_view((*e)[0])) : std::string();
  }
  return std::string(json::get_string(i, key).value_or(""));
}

class CpisPlanWrite : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { gw_ = new InProcessGateway(); }
  static void TearDownTestSuite() {
    delete gw_;
    gw_ = nullptr;
  }

  static ClientResponse call(HttpsClient& c, const std::string& method, const std::string& target,
                             const std::string& body = "") {
    auto r = c.request(method, target, body, body.empty() ? std::vector<std::pair<std::string, std::string>>{} : kJson);
    EXPECT_TRUE(r.has_value()) << method << " " << target;
    return r ? std::move(*r) : ClientResponse{};
  }

  // A child Patient (registered by the first local authority) and a plan body for it.
  struct Child {
    std::string nhs, patient, local_id;
  };
  Child child() {
    uint32_t seed = 5000 + next_.fetch_add(1);
    Child c{test::nhs_number_for(seed), "", "CHILD-" + std::to_string(seed)};
    auto r = call(la1_, "POST", "/fhir/Patient", test::fixture("fhir/Patient.json", {{"nhs", c.nhs}}));
    EXPECT_EQ(r.status, 201) << r.body;
    c.patient = std::string(json::get_string(parse(r), "id").value_or(""));
    return c;
  }
  static std::string plan(const Child& c, const std::string& ods, const std::string& id = "") {
    std::string body = test::fixture("fhir/cpis_plan.json",
                                     {{"ods", ods}, {"local_id", c.local_id}, {"patient", c.patient}, {"nhs", c.nhs}});
    if (!id.empty()) body.insert(1, "\"id\":\"" + id + "\",");
    return body;
  }
  static std::string managing_ods(HttpsClient& c, const std::string& id) {
    auto r = call(c, "GET", "/fhir/CareTeam/" + id);
    EXPECT_EQ(r.status, 200) << r.body;
    auto d = parse(r);
    return std::string(json::as_view(d["managingOrganization"][0]["identifier"]["value"]));
  }
  static std::string version(HttpsClient& c, const std::string& id) {
    auto r = call(c, "GET", "/fhir/CareTeam/" + id);
    auto d = parse(r);
    return std::string(json::as_view(d["meta"]["versionId"]));
  }

  static InProcessGateway* gw_;
  static std::atomic<uint32_t> next_;
  HttpsClient la1_ = gw_->client("local-authority");          // O=L0001
  HttpsClient la2_ = gw_->client("local-authority-2");        // O=LA372
};
InProcessGateway* CpisPlanWrite::gw_ = nullptr;
std::atomic<uint32_t> CpisPlanWrite::next_{1};

TEST_F(CpisPlanWrite, AnAuthorityCreatesAndEndsItsOwnPlan) {
  Child c = child();
  auto r = call(la1_, "POST", "/fhir/CareTeam", plan(c, "L0001"));
  ASSERT_EQ(r.status, 201) << r.body;
  std::string id(json::get_string(parse(r), "id").value_or(""));
  std::string ended = plan(c, "L0001", id);
  const std::string open_period = "\"period\":{\"start\":\"2026-11-04\"}";
  ended.replace(ended.find(open_period), open_period.size(),
                "\"period\":{\"start\":\"2026-11-04\",\"end\":\"2026-11-20\"}");
  r = call(la1_, "PUT", "/fhir/CareTeam/" + id, ended);
  EXPECT_EQ(r.status, 200) << r.body;
}

TEST_F(CpisPlanWrite, APlanManagedByAnotherAuthorityCannotBeCreated) {
  Child c = child();
  auto r = call(la1_, "POST", "/fhir/CareTeam", plan(c, "LA372"));
  ASSERT_EQ(r.status, 403) << r.body;
  auto d = parse(r);
  EXPECT_EQ(first(d, "code"), "forbidden");
  EXPECT_EQ(first(d, "expression"), "CareTeam.managingOrganization");
  // Nor by a conditional update, nor by an update by id.
  r = call(la1_, "PUT", "/fhir/CareTeam?identifier=https://cpis-gateway.nhs.uk/Id/cpis-plan%7Cx", plan(c, "LA372"));
  EXPECT_EQ(r.status, 403) << r.body;
  r = call(la1_, "PUT", "/fhir/CareTeam/plan-x", plan(c, "LA372", "plan-x"));
  EXPECT_EQ(r.status, 403) << r.body;
}

TEST_F(CpisPlanWrite, ASecondAuthorityCannotChangeOrTakeOverTheFirstsPlan) {
  Child c = child();
  auto r = call(la1_, "POST", "/fhir/CareTeam", plan(c, "L0001"));
  ASSERT_EQ(r.status, 201) << r.body;
  std::string id(json::get_string(parse(r), "id").value_or(""));

  // By id, naming itself as the manager: the plan it would replace is not its own.
  r = call(la2_, "PUT", "/fhir/CareTeam/" + id, plan(c, "LA372", id));
  ASSERT_EQ(r.status, 403) << r.body;
  EXPECT_NE(first(parse(r), "diagnostics").find("may change only a CareTeam whose managingOrganization is its own"),
            std::string::npos)
      << r.body;
  // By a conditional update on the first authority's plan identifier.
  std::string ident = "https://cpis-gateway.nhs.uk/Id/cpis-plan%7CL0001%5C%7C" + c.local_id + "%5C%7CCPP";
  r = call(la2_, "PUT", "/fhir/CareTeam?identifier=" + ident, plan(c, "LA372"));
  EXPECT_EQ(r.status, 403) << r.body;
  // Inside a transaction and a batch.
  std::string entry = R"({"resource":)" + plan(c, "LA372", id) + R"(,"request":{"method":"PUT","url":"CareTeam/)" + id + "\"}}";
  r = call(la2_, "POST", "/fhir", R"({"resourceType":"Bundle","type":"transaction","entry":[)" + entry + "]}");
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(first(parse(r), "expression"), "Bundle.entry[0].resource") << r.body;
  r = call(la2_, "POST", "/fhir", R"({"resourceType":"Bundle","type":"batch","entry":[)" + entry + "]}");
  ASSERT_EQ(r.status, 200) << r.body;
  auto b = parse(r);
  EXPECT_EQ(std::string(json::as_view(b["entry"][0]["response"]["status"])), "403") << r.body;
  // Conditional update in a transaction.
  std::string cond = R"({"resource":)" + plan(c, "LA372") +
                     R"(,"request":{"method":"PUT","url":"CareTeam?identifier=)" + ident + "\"}}";
  r = call(la2_, "POST", "/fhir", R"({"resourceType":"Bundle","type":"transaction","entry":[)" + cond + "]}");
  EXPECT_EQ(r.status, 403) << r.body;

  // Nothing changed: still the first authority's, still version 1.
  EXPECT_EQ(managing_ods(la1_, id), "L0001");
  EXPECT_EQ(version(la1_, id), "1");
  // The owner still can.
  r = call(la1_, "PUT", "/fhir/CareTeam/" + id, plan(c, "L0001", id));
  EXPECT_EQ(r.status, 200) << r.body;
}

TEST_F(CpisPlanWrite, ACareSettingCannotOverwriteAPlanOrWriteOneForAnAuthority) {
  Child c = child();
  auto r = call(la1_, "POST", "/fhir/CareTeam", plan(c, "L0001"));
  ASSERT_EQ(r.status, 201) << r.body;
  std::string id(json::get_string(parse(r), "id").value_or(""));
  HttpsClient gp = gw_->client("gp");  // O=B86001
  // Replacing the plan with a team of its own: the plan is not the GP's.
  r = call(gp, "PUT", "/fhir/CareTeam/" + id, plan(c, "B86001", id));
  EXPECT_EQ(r.status, 403) << r.body;
  // Writing a plan in the authority's name.
  r = call(gp, "POST", "/fhir/CareTeam", plan(c, "L0001"));
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(managing_ods(la1_, id), "L0001");
  EXPECT_EQ(version(la1_, id), "1");
  // Nor a plan of its own making: plans are the local authorities'.
  r = call(gp, "POST", "/fhir/CareTeam", plan(c, "B86001"));
  EXPECT_EQ(r.status, 403) << r.body;
  // A CAMHS service, not limited to its own organisation's teams, still cannot replace a plan.
  HttpsClient camhs = gw_->client("camhs");
  r = call(camhs, "PUT", "/fhir/CareTeam/" + id, plan(c, "L0001", id));
  EXPECT_EQ(r.status, 403) << r.body;
  std::string team_over_plan = test::fixture("fhir/CareTeam.json", {{"patient", c.patient}});
  team_over_plan.insert(1, "\"id\":\"" + id + "\",");
  r = call(camhs, "PUT", "/fhir/CareTeam/" + id, team_over_plan);
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(version(la1_, id), "1");
  // Its own team is fine.
  std::string team = test::fixture("fhir/CareTeam.json", {{"patient", c.patient}});
  team.replace(team.find("\"RXX\""), 5, "\"B86001\"");
  r = call(gp, "POST", "/fhir/CareTeam", team);
  EXPECT_EQ(r.status, 201) << r.body;
}

TEST_F(CpisPlanWrite, AnIncompletePlanIsRefusedWithThePath) {
  Child c = child();
  std::string body = plan(c, "L0001");
  auto t = body.find(",\"telecom\"");
  body = body.substr(0, t) + "}";
  auto r = call(la1_, "POST", "/fhir/CareTeam", body);
  ASSERT_EQ(r.status, 422) << r.body;
  EXPECT_EQ(first(parse(r), "expression"), "CareTeam.telecom");
}

TEST_F(CpisPlanWrite, LocalAuthoritiesNoLongerWriteCarePlansOrFlags) {
  auto r = call(la1_, "POST", "/fhir/CarePlan", R"({"resourceType":"CarePlan","status":"active","intent":"plan","subject":{"reference":"Patient/x"}})");
  EXPECT_EQ(r.status, 403) << r.body;
  r = call(la1_, "POST", "/fhir/Flag", R"({"resourceType":"Flag","status":"active","code":{"text":"x"},"subject":{"reference":"Patient/x"}})");
  EXPECT_EQ(r.status, 403) << r.body;
}

}  // namespace
}  // namespace gw
