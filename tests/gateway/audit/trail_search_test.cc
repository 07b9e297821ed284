// GET /fhir/AuditEvent over the audit trail, through the whole HTTPS stack:
// the commissioner (who used to get 400 "Invalid NHS number") sees every
// organisation's events, a care role only its own, a local authority none;
// BALP search parameters filter; bad input is a 400 naming the parameter.
#include <gtest/gtest.h>

#include <set>

#include "gateway/common/json.h"
#include "tests/support/fixtures.h"
#include "tests/support/test_gateway.h"

namespace gw {
namespace {

using test::ClientResponse;
using test::HttpsClient;
using test::InProcessGateway;

const std::vector<std::pair<std::string, std::string>> kJson = {{"Content-Type", "application/fhir+json"}};

ClientResponse call(HttpsClient& c, const std::string& method, const std::string& target, const std::string& body = "") {
  auto r = c.request(method, target, body, body.empty() ? std::vector<std::pair<std::string, std::string>>{} : kJson);
  EXPECT_TRUE(r.has_value()) << method << " " << target;
  return r ? std::move(*r) : ClientResponse{};
}

json::Document parse(const ClientResponse& r) {
  json::Document d;
  d.Parse(r.body.c_str(), r.body.size());
  EXPECT_FALSE(d.HasParseError()) << r.body;
  return d;
}

std::string str(const json::Value& v, const char* k) {
  return v.IsObject() && v.HasMember(k) && v[k].IsString() ? std::string(v[k].GetString()) : std::string();
}

// The ODS code of the requesting agent of each AuditEvent in a searchset.
std::vector<std::string> requestor_ods(const json::Document& bundle) {
  std::vector<std::string> out;
  if (!bundle.HasMember("entry")) return out;
  for (const auto& e : bundle["entry"].GetArray()) {
    const auto& ev = e["resource"];
    EXPECT_EQ(str(ev, "resourceType"), "AuditEvent");
    for (const auto& a : ev["agent"].GetArray())
      if (a["requestor"].GetBool() && a["who"].HasMember("identifier")) out.push_back(str(a["who"]["identifier"], "value"));
  }
  return out;
}

class TrailSearchTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    gw_ = new InProcessGateway();
    // Writes by two organisations: each commits its audit rows with it.
    auto gp = gw_->client("gp");  // B86001
    auto r = call(gp, "POST", "/fhir/Patient", test::fixture("fhir/Patient.json", {{"nhs", test::nhs_number_for(71)}}));
    ASSERT_EQ(r.status, 201) << r.body;
    json::Document d;
    d.Parse(r.body.c_str());
    gp_patient_ = new std::string("Patient/" + str(d, "id"));
    auto hv = gw_->client("integration");  // RXX
    r = call(hv, "POST", "/fhir/Patient", test::fixture("fhir/Patient.json", {{"nhs", test::nhs_number_for(72)}}));
    ASSERT_EQ(r.status, 201) << r.body;
  }
  static void TearDownTestSuite() {
    delete gw_;
    gw_ = nullptr;
    delete gp_patient_;
  }
  static InProcessGateway* gw_;
  static std::string* gp_patient_;
};
InProcessGateway* TrailSearchTest::gw_ = nullptr;
std::string* TrailSearchTest::gp_patient_ = nullptr;

TEST_F(TrailSearchTest, CommissionerSeesEveryOrganisationPaged) {
  auto c = gw_->client("commissioner");
  auto r = call(c, "GET", "/fhir/AuditEvent?_count=3");
  ASSERT_EQ(r.status, 200) << r.body;
  auto d = parse(r);
  EXPECT_EQ(str(d, "resourceType"), "Bundle");
  EXPECT_EQ(str(d, "type"), "searchset");
  ASSERT_TRUE(d.HasMember("total"));
  EXPECT_GE(d["total"].GetInt64(), 2);
  EXPECT_LE(d["entry"].Size(), 3u);

  r = call(c, "GET", "/fhir/AuditEvent?subtype=create&_count=100");
  ASSERT_EQ(r.status, 200) << r.body;
  auto ods = requestor_ods(parse(r));
  std::set<std::string> orgs(ods.begin(), ods.end());
  EXPECT_TRUE(orgs.count("B86001")) << r.body;
  EXPECT_TRUE(orgs.count("RXX")) << r.body;
}

TEST_F(TrailSearchTest, ParametersFilter) {
  auto c = gw_->client("commissioner");
  auto r = call(c, "GET", "/fhir/AuditEvent?agent=B86001&type=rest&subtype=create&patient=" + *gp_patient_);
  ASSERT_EQ(r.status, 200) << r.body;
  auto d = parse(r);
  ASSERT_EQ(d["total"].GetInt64(), 1) << r.body;
  const auto& ev = d["entry"][0]["resource"];
  EXPECT_EQ(str(ev["subtype"][0], "code"), "create");
  bool about = false;
  for (const auto& e : ev["entity"].GetArray())
    if (e["what"].HasMember("reference") && str(e["what"], "reference") == *gp_patient_) about = true;
  EXPECT_TRUE(about) << r.body;

  // A subtype that is not of the type: nothing, rather than either.
  r = call(c, "GET", "/fhir/AuditEvent?type=110106&subtype=create");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(parse(r)["total"].GetInt64(), 0) << r.body;

  // Today's events by date prefix; none before 2000.
  r = call(c, "GET", "/fhir/AuditEvent?date=ge2000-01-01&subtype=create&_count=0");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_GE(parse(r)["total"].GetInt64(), 2);
  r = call(c, "GET", "/fhir/AuditEvent?date=lt2000-01-01");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(parse(r)["total"].GetInt64(), 0);

  r = call(c, "GET", "/fhir/AuditEvent?outcome=0&agent-role=gp&subtype=create");
  ASSERT_EQ(r.status, 200) << r.body;
  for (const auto& o : requestor_ods(parse(r))) EXPECT_EQ(o, "B86001");
}

TEST_F(TrailSearchTest, ACareRoleSeesOnlyItsOwnOrganisation) {
  auto c = gw_->client("gp");
  auto r = call(c, "GET", "/fhir/AuditEvent?subtype=create&_count=100");
  ASSERT_EQ(r.status, 200) << r.body;
  auto ods = requestor_ods(parse(r));
  EXPECT_FALSE(ods.empty()) << r.body;
  for (const auto& o : ods) EXPECT_EQ(o, "B86001");
}

TEST_F(TrailSearchTest, OneRecordReadsByItsTrailId) {
  auto c = gw_->client("commissioner");
  auto r = call(c, "GET", "/fhir/AuditEvent?agent=RXX&subtype=create&_count=1");
  ASSERT_EQ(r.status, 200) << r.body;
  auto d = parse(r);
  ASSERT_EQ(d["entry"].Size(), 1u) << r.body;
  std::string id = str(d["entry"][0]["resource"], "id");
  ASSERT_EQ(id.rfind("trail-", 0), 0u) << id;
  auto one = call(c, "GET", "/fhir/AuditEvent/" + id);
  ASSERT_EQ(one.status, 200) << one.body;
  auto ev = parse(one);
  EXPECT_EQ(str(ev, "resourceType"), "AuditEvent");
  EXPECT_EQ(str(ev, "id"), id);
  // Another organisation's record is not there for a gp; nor is one that does not exist.
  auto gp = gw_->client("gp");
  EXPECT_EQ(call(gp, "GET", "/fhir/AuditEvent/" + id).status, 404);
  EXPECT_EQ(call(c, "GET", "/fhir/AuditEvent/trail-999999999").status, 404);
}

TEST_F(TrailSearchTest, RolesWithoutTheTrailAreRefused) {
  auto c = gw_->client("local-authority");
  EXPECT_EQ(call(c, "GET", "/fhir/AuditEvent").status, 403);
}

TEST_F(TrailSearchTest, BadInputIsA400NamingTheParameter) {
  auto c = gw_->client("commissioner");
  for (const char* q : {"date=2026-13-45", "date=xx2026", "date=ge2026-02-01&date=lt2026-01-01", "subtype=nonsense",
                        "outcome=3", "_count=-1", "colour=blue"}) {
    auto r = call(c, "GET", std::string("/fhir/AuditEvent?") + q);
    EXPECT_EQ(r.status, 400) << q << ": " << r.body;
    auto d = parse(r);
    ASSERT_TRUE(d.HasMember("issue")) << r.body;
    std::string name = std::string(q).substr(0, std::string(q).find('='));
    const auto& issue = d["issue"][0];
    std::string said = str(issue, "diagnostics");
    if (issue.HasMember("expression") && issue["expression"].IsArray() && issue["expression"].Size() > 0)
      said += " " + std::string(issue["expression"][0].GetString());
    EXPECT_NE(said.find(name), std::string::npos) << q << ": " << r.body;
  }
}

TEST_F(TrailSearchTest, TheCpisTrailKeepsItsNationalShape) {
  // With patient:identifier the national CP-IS semantics apply, unchanged.
  auto c = gw_->client("commissioner");
  auto r = call(c, "GET", "/fhir/AuditEvent?patient:identifier=https://fhir.nhs.uk/Id/nhs-number|123");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("Invalid NHS number"), std::string::npos) << r.body;
}

}  // namespace
}  // namespace gw
