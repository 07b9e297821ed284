// The FHIR REST API end to end: real TLS sockets, the real SQLite store, the
// shipped profiles and policy. Each test makes its own data (unique NHS
// numbers), so the suite shares one gateway.
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "gateway/common/json.h"
#include "tests/support/fixtures.h"
#include "tests/support/test_gateway.h"

namespace gw {
namespace {

using test::ClientResponse;
using test::HttpsClient;
using test::InProcessGateway;
using test::fixture;
using test::nhs_number_for;

const std::vector<std::pair<std::string, std::string>> kJson = {{"Content-Type", "application/fhir+json"}};

json::Document parse_body(const ClientResponse& r) {
  auto d = json::parse(r.body);
  EXPECT_TRUE(d.has_value()) << "not JSON: " << r.body.substr(0, 200);
  return d ? std::move(*d) : json::Document();
}

std::string str_at(const json::Value& v, std::initializer_list<const char*> path) {
  const json::Value* cur = &v;
  for (const char* p : path) {
    if (!cur->IsObject()) return {};
    cur = json::member(*cur, p);
    if (!cur) return {};
  }
  return cur->IsString() ? std::string(json::as_view(*cur)) : std::string();
}

// The first issue of an OperationOutcome: {code, expression[0], diagnostics}.
struct FirstIssue {
  std::string code, expression, diagnostics;
};
FirstIssue first_issue(const ClientResponse& r) {
  FirstIssue out;
  auto d = parse_body(r);
  EXPECT_EQ(str_at(d, {"resourceType"}), "OperationOutcome") << r.body;
  const json::Value* issues = d.IsObject() ? json::member(d, "issue") : nullptr;
  if (!issues || !issues->IsArray() || issues->Empty()) {
    ADD_FAILURE() << "no issue in " << r.body;
    return out;
  }
  const json::Value& i = (*issues)[0];
  out.code = str_at(i, {"code"});
  out.diagnostics = str_at(i, {"diagnostics"});
  if (const json::Value* e = json::member(i, "expression"); e && e->IsArray() && !e->Empty())
    out.expression = std::string(json::as_view((*e)[0]));
  return out;
}

class RestApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { gw_ = new InProcessGateway(); }
  static void TearDownTestSuite() {
    delete gw_;
    gw_ = nullptr;
  }
  void SetUp() override { seed_ = next_seed_.fetch_add(1) * 7 + 1000; }

  static ClientResponse call(HttpsClient& c, const std::string& method, const std::string& target,
                             const std::string& body = "",
                             std::vector<std::pair<std::string, std::string>> headers = {}) {
    if (!body.empty() && headers.empty()) headers = kJson;
    auto r = c.request(method, target, body, headers);
    EXPECT_TRUE(r.has_value()) << method << " " << target << ": " << (r ? "" : r.error().message);
    return r ? std::move(*r) : ClientResponse{};
  }

  // Creates a Patient and returns its id.
  std::string create_patient(HttpsClient& c, const std::string& nhs) {
    auto r = call(c, "POST", "/fhir/Patient", fixture("fhir/Patient.json", {{"nhs", nhs}}));
    EXPECT_EQ(r.status, 201) << r.body;
    return str_at(parse_body(r), {"id"});
  }

  static InProcessGateway* gw_;
  static std::atomic<int> next_seed_;
  uint32_t seed_ = 0;
};
InProcessGateway* RestApiTest::gw_ = nullptr;
std::atomic<int> RestApiTest::next_seed_{1};

TEST_F(RestApiTest, MetadataListsTheTypesInteractionsAndSearchParameters) {
  auto c = gw_->client("gp");
  auto r = call(c, "GET", "/fhir/metadata");
  ASSERT_EQ(r.status, 200);
  auto d = parse_body(r);
  EXPECT_EQ(str_at(d, {"resourceType"}), "CapabilityStatement");
  EXPECT_EQ(str_at(d, {"fhirVersion"}), "4.0.1");
  const auto& res = d["rest"][0]["resource"];
  std::set<std::string> types;
  for (const auto& t : res.GetArray()) types.insert(str_at(t, {"type"}));
  for (const char* t : {"Patient", "RelatedPerson", "Encounter", "Observation", "Flag", "CareTeam", "CarePlan",
                        "Organization", "Consent", "EpisodeOfCare", "Subscription"})
    EXPECT_TRUE(types.count(t)) << t;
  for (const auto& t : res.GetArray()) {
    if (str_at(t, {"type"}) != "Observation") continue;
    std::set<std::string> params;
    std::string patient_doc;
    for (const auto& p : t["searchParam"].GetArray()) {
      params.insert(str_at(p, {"name"}));
      if (str_at(p, {"name"}) == "patient") patient_doc = str_at(p, {"documentation"});
    }
    for (const char* p : {"_id", "_lastUpdated", "identifier", "patient", "subject", "code", "date"})
      EXPECT_TRUE(params.count(p)) << p;
    // A chain or modifier is not a parameter name of its own; the parameter's documentation names it.
    EXPECT_FALSE(params.count("patient:identifier"));
    EXPECT_NE(patient_doc.find("patient:identifier"), std::string::npos) << patient_doc;
  }
}

TEST_F(RestApiTest, CreateReadUpdateVreadHistoryDelete) {
  auto c = gw_->client("integration");
  std::string nhs = nhs_number_for(seed_);
  auto created = call(c, "POST", "/fhir/Patient", fixture("fhir/Patient.json", {{"nhs", nhs}}));
  ASSERT_EQ(created.status, 201) << created.body;
  auto doc = parse_body(created);
  std::string id = str_at(doc, {"id"});
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(str_at(doc, {"meta", "versionId"}), "1");
  EXPECT_FALSE(str_at(doc, {"meta", "lastUpdated"}).empty());
  EXPECT_EQ(created.header("etag").value_or(""), "W/\"1\"");
  EXPECT_NE(created.header("location").value_or("").find("/fhir/Patient/" + id + "/_history/1"), std::string::npos);
  EXPECT_TRUE(created.header("last-modified").has_value());

  auto read = call(c, "GET", "/fhir/Patient/" + id);
  ASSERT_EQ(read.status, 200);
  EXPECT_EQ(str_at(parse_body(read), {"gender"}), "female");

  // Update without If-Match, then a stale If-Match is refused with 412.
  std::string v2 = fixture("fhir/Patient.json", {{"nhs", nhs}});
  v2.replace(v2.find("\"female\""), 8, "\"male\"");
  v2.insert(1, "\"id\":\"" + id + "\",");
  auto upd = call(c, "PUT", "/fhir/Patient/" + id, v2, {{"Content-Type", "application/fhir+json"}, {"If-Match", "W/\"1\""}});
  ASSERT_EQ(upd.status, 200) << upd.body;
  EXPECT_EQ(upd.header("etag").value_or(""), "W/\"2\"");
  auto stale = call(c, "PUT", "/fhir/Patient/" + id, v2, {{"Content-Type", "application/fhir+json"}, {"If-Match", "W/\"1\""}});
  EXPECT_EQ(stale.status, 412) << stale.body;
  EXPECT_EQ(str_at(parse_body(stale), {"resourceType"}), "OperationOutcome");

  auto v1 = call(c, "GET", "/fhir/Patient/" + id + "/_history/1");
  ASSERT_EQ(v1.status, 200);
  EXPECT_EQ(str_at(parse_body(v1), {"gender"}), "female");
  auto cur = call(c, "GET", "/fhir/Patient/" + id);
  EXPECT_EQ(str_at(parse_body(cur), {"gender"}), "male");

  auto hist = call(c, "GET", "/fhir/Patient/" + id + "/_history");
  ASSERT_EQ(hist.status, 200);
  auto h = parse_body(hist);
  EXPECT_EQ(str_at(h, {"type"}), "history");
  EXPECT_EQ(h["entry"].Size(), 2u);

  // Deletion is for admins only (profiles/policy/access.json).
  EXPECT_EQ(call(c, "DELETE", "/fhir/Patient/" + id).status, 403);
  auto admin = gw_->client("admin");
  auto del = call(admin, "DELETE", "/fhir/Patient/" + id);
  EXPECT_TRUE(del.status == 200 || del.status == 204) << del.status;
  auto gone = call(c, "GET", "/fhir/Patient/" + id);
  EXPECT_EQ(gone.status, 410);
  EXPECT_EQ(first_issue(gone).code, "deleted");
  // History survives the deletion.
  EXPECT_EQ(call(c, "GET", "/fhir/Patient/" + id + "/_history/2").status, 200);
  EXPECT_EQ(call(c, "GET", "/fhir/Patient/" + id + "/_history/3").status, 410);
  EXPECT_EQ(call(c, "GET", "/fhir/Patient/" + id + "/_history/9").status, 404);
}

TEST_F(RestApiTest, NhsNumberIsNormalisedAndUniqueAndChecked) {
  auto c = gw_->client("integration");
  std::string nhs = nhs_number_for(seed_);
  std::string spaced = nhs.substr(0, 3) + " " + nhs.substr(3, 3) + " " + nhs.substr(6);
  std::string id = create_patient(c, spaced);
  auto read = call(c, "GET", "/fhir/Patient/" + id);
  EXPECT_EQ(str_at(parse_body(read)["identifier"][0], {"value"}), nhs);

  // The same person again, written with dashes: 409, naming nothing but the conflict.
  std::string dashed = nhs.substr(0, 3) + "-" + nhs.substr(3, 3) + "-" + nhs.substr(6);
  auto dup = call(c, "POST", "/fhir/Patient", fixture("fhir/Patient.json", {{"nhs", dashed}}));
  EXPECT_EQ(dup.status, 409) << dup.body;
  EXPECT_EQ(first_issue(dup).code, "duplicate");

  // A wrong check digit: 422 pointing at the identifier value.
  std::string bad = nhs.substr(0, 9) + static_cast<char>('0' + (nhs[9] - '0' + 1) % 10);
  auto r = call(c, "POST", "/fhir/Patient", fixture("fhir/Patient.json", {{"nhs", bad}}));
  ASSERT_EQ(r.status, 422) << r.body;
  auto issue = first_issue(r);
  EXPECT_EQ(issue.expression, "Patient.identifier[0].value");
  EXPECT_NE(issue.diagnostics.find("check digit"), std::string::npos) << issue.diagnostics;
  EXPECT_EQ(issue.diagnostics.find(bad), std::string::npos) << "the number itself must not be echoed";
}

TEST_F(RestApiTest, ValidationListsEveryProblem) {
  auto c = gw_->client("integration");
  auto r = call(c, "POST", "/fhir/Patient",
                R"({"resourceType":"Patient","gender":"M","birthDate":"2026-02-30","name":[{"family":""}]})");
  ASSERT_EQ(r.status, 422) << r.body;
  auto d = parse_body(r);
  std::set<std::string> exprs;
  for (const auto& i : d["issue"].GetArray())
    if (i.HasMember("expression")) exprs.insert(std::string(json::as_view(i["expression"][0])));
  EXPECT_TRUE(exprs.count("Patient.gender")) << r.body;
  EXPECT_TRUE(exprs.count("Patient.birthDate")) << r.body;
  EXPECT_TRUE(exprs.count("Patient.name[0].family")) << r.body;

  auto enc = call(c, "POST", "/fhir/Encounter", R"({"resourceType":"Encounter","class":{"code":"AMB"}})");
  ASSERT_EQ(enc.status, 422);
  EXPECT_EQ(first_issue(enc).expression, "Encounter.status");
}

TEST_F(RestApiTest, ErrorStatusesAreOperationOutcomes) {
  auto c = gw_->client("integration");
  // 400: not JSON; resourceType not the endpoint's.
  auto notjson = call(c, "POST", "/fhir/Patient", "{\"resourceType\":");
  EXPECT_EQ(notjson.status, 400);
  EXPECT_EQ(first_issue(notjson).code, "invalid");
  auto wrongtype = call(c, "POST", "/fhir/Patient", R"({"resourceType":"Observation"})");
  EXPECT_EQ(wrongtype.status, 400);
  EXPECT_EQ(first_issue(wrongtype).expression, "resourceType");
  // 404: unknown id, unknown type.
  EXPECT_EQ(call(c, "GET", "/fhir/Patient/does-not-exist").status, 404);
  auto unknown = call(c, "GET", "/fhir/Medication/1");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(str_at(parse_body(unknown), {"resourceType"}), "OperationOutcome");
  // 405: POST to an instance, DELETE on the type.
  EXPECT_EQ(call(c, "POST", "/fhir/Patient/abc", R"({"resourceType":"Patient"})").status, 405);
  EXPECT_EQ(call(c, "DELETE", "/fhir/Patient").status, 405);
  // 415: XML in; 406: XML wanted, _format=xml (tests/gateway/fhir/http_semantics_test.cc has more).
  auto xml = call(c, "POST", "/fhir/Patient", "<Patient xmlns=\"http://hl7.org/fhir\"/>",
                  {{"Content-Type", "application/fhir+xml"}});
  EXPECT_EQ(xml.status, 415);
  EXPECT_EQ(str_at(parse_body(xml), {"resourceType"}), "OperationOutcome");
  EXPECT_EQ(call(c, "GET", "/fhir/Patient?_id=x", "", {{"Accept", "application/fhir+xml"}}).status, 406);
  EXPECT_EQ(call(c, "GET", "/fhir/metadata?_format=xml").status, 406);
  EXPECT_EQ(call(c, "GET", "/fhir/metadata?_format=json").status, 200);
  // 400: a bad search parameter value names the parameter.
  auto badsearch = call(c, "GET", "/fhir/Patient?_lastUpdated=2026-13-01");
  EXPECT_EQ(badsearch.status, 400);
  EXPECT_EQ(first_issue(badsearch).expression, "_lastUpdated");
  // Strict handling refuses unknown parameters; lenient ignores them.
  EXPECT_EQ(call(c, "GET", "/fhir/Patient?shoe-size=9", "", {{"Prefer", "handling=strict"}}).status, 400);
  EXPECT_EQ(call(c, "GET", "/fhir/Patient?shoe-size=9").status, 200);
  // 403: policy denies (a commissioner may not create patients).
  auto comm = gw_->client("commissioner");
  auto denied = call(comm, "POST", "/fhir/Patient", fixture("fhir/Patient.json", {{"nhs", nhs_number_for(seed_)}}));
  EXPECT_EQ(denied.status, 403);
  EXPECT_EQ(first_issue(denied).code, "forbidden");
}

TEST_F(RestApiTest, BodyOverTheLimitIs413WithAnOperationOutcome) {
  config::Limits small;
  small.body_bytes = 2048;
  InProcessGateway tiny(small);
  auto c = tiny.client("integration");
  std::string big = R"({"resourceType":"Patient","name":[{"family":")" + std::string(4096, 'x') + "\"}]}";
  auto r = call(c, "POST", "/fhir/Patient", big);
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(str_at(parse_body(r), {"resourceType"}), "OperationOutcome");
}

TEST_F(RestApiTest, ConditionalCreateAndConditionalUpdate) {
  auto c = gw_->client("integration");
  std::string nhs = nhs_number_for(seed_);
  std::string cond = "identifier=https://fhir.nhs.uk/Id/nhs-number|" + nhs;
  std::vector<std::pair<std::string, std::string>> h = {{"Content-Type", "application/fhir+json"}, {"If-None-Exist", cond}};
  auto first = call(c, "POST", "/fhir/Patient", fixture("fhir/Patient.json", {{"nhs", nhs}}), h);
  ASSERT_EQ(first.status, 201) << first.body;
  auto second = call(c, "POST", "/fhir/Patient", fixture("fhir/Patient.json", {{"nhs", nhs}}), h);
  EXPECT_EQ(second.status, 200) << second.body;
  EXPECT_EQ(str_at(parse_body(second), {"id"}), str_at(parse_body(first), {"id"}));

  // Conditional update by identifier: creates when absent, updates when present.
  std::string org = fixture("fhir/Organization.json");
  std::string ods = "Y" + std::to_string(seed_);
  org.replace(org.find("B86001"), 6, ods);
  std::string target = "/fhir/Organization?identifier=https://fhir.nhs.uk/Id/ods-organization-code%7C" + ods;
  auto made = call(c, "PUT", target, org);
  ASSERT_EQ(made.status, 201) << made.body;
  auto again = call(c, "PUT", target, org);
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(str_at(parse_body(again), {"id"}), str_at(parse_body(made), {"id"}));
  EXPECT_EQ(str_at(parse_body(again), {"meta", "versionId"}), "2");
}

TEST_F(RestApiTest, SearchByIdentifierReferenceChainLastUpdatedAndPaging) {
  auto c = gw_->client("integration");
  std::string nhs = nhs_number_for(seed_);
  std::string pid = create_patient(c, nhs);
  for (int i = 0; i < 5; ++i) {
    std::string obs = fixture("fhir/Observation.json", {{"patient", pid}});
    obs.replace(obs.find("OBS-1"), 5, "OBS-" + std::to_string(seed_) + "-" + std::to_string(i));
    ASSERT_EQ(call(c, "POST", "/fhir/Observation", obs).status, 201);
  }
  auto gp = gw_->client("gp");
  auto byid = call(gp, "GET", "/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number%7C" + nhs);
  ASSERT_EQ(byid.status, 200);
  auto b = parse_body(byid);
  EXPECT_EQ(str_at(b, {"type"}), "searchset");
  EXPECT_EQ(b["total"].GetInt(), 1);
  EXPECT_EQ(str_at(b["entry"][0], {"resource", "id"}), pid);
  // Spaces in the searched NHS number are normalised like on create.
  std::string spaced = nhs.substr(0, 3) + "%20" + nhs.substr(3, 3) + "%20" + nhs.substr(6);
  EXPECT_EQ(parse_body(call(gp, "GET", "/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number%7C" + spaced))["total"].GetInt(), 1);

  auto chained = call(gp, "GET", "/fhir/Observation?patient:identifier=https://fhir.nhs.uk/Id/nhs-number%7C" + nhs);
  ASSERT_EQ(chained.status, 200);
  EXPECT_EQ(parse_body(chained)["total"].GetInt(), 5);
  EXPECT_EQ(parse_body(call(gp, "GET", "/fhir/Observation?subject=Patient/" + pid))["total"].GetInt(), 5);
  EXPECT_EQ(parse_body(call(gp, "GET", "/fhir/Observation?patient=" + pid))["total"].GetInt(), 5);
  EXPECT_EQ(parse_body(call(gp, "GET", "/fhir/Observation?patient=" + pid + "&_lastUpdated=gt2099-01-01"))["total"].GetInt(), 0);
  EXPECT_EQ(parse_body(call(gp, "GET", "/fhir/Observation?patient=" + pid + "&_lastUpdated=ge2020-01-01"))["total"].GetInt(), 5);
  EXPECT_EQ(parse_body(call(gp, "GET", "/fhir/Patient?_id=" + pid))["total"].GetInt(), 1);
  auto none = parse_body(call(gp, "GET", "/fhir/Observation?patient:identifier=https://fhir.nhs.uk/Id/nhs-number%7C" + nhs_number_for(seed_ + 3)));
  EXPECT_EQ(none["total"].GetInt(), 0);
  EXPECT_FALSE(none.HasMember("entry")) << "FHIR forbids empty arrays";

  // Paging: 2 per page, follow next links until there are none.
  std::string next = "/fhir/Observation?patient=" + pid + "&_count=2";
  std::set<std::string> seen;
  int pages = 0;
  while (!next.empty() && pages < 10) {
    auto page = call(gp, "GET", next);
    ASSERT_EQ(page.status, 200) << page.body;
    auto pb = parse_body(page);
    ++pages;
    if (pb.HasMember("entry"))
      for (const auto& e : pb["entry"].GetArray()) seen.insert(str_at(e, {"resource", "id"}));
    next.clear();
    for (const auto& l : pb["link"].GetArray()) {
      if (str_at(l, {"relation"}) != "next") continue;
      std::string url = str_at(l, {"url"});
      next = url.substr(url.find("/fhir/"));
    }
  }
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen.size(), 5u);
}

TEST_F(RestApiTest, TransactionResolvesUrnUuidsAndIsAllOrNothing) {
  auto c = gw_->client("integration");
  std::string nhs = nhs_number_for(seed_);
  std::string patient = fixture("fhir/Patient.json", {{"nhs", nhs}});
  std::string obs = fixture("fhir/Observation.json", {{"patient", "x"}});
  obs.replace(obs.find("\"Patient/x\""), 11, "\"urn:uuid:3f0c4a52-1c8e-4d38-9f0e-1d2a3b4c5d6e\"");
  std::string bundle = R"({"resourceType":"Bundle","type":"transaction","entry":[)"
                       R"({"fullUrl":"urn:uuid:3f0c4a52-1c8e-4d38-9f0e-1d2a3b4c5d6e","resource":)" + patient +
                       R"(,"request":{"method":"POST","url":"Patient"}},)"
                       R"({"resource":)" + obs + R"(,"request":{"method":"POST","url":"Observation"}}]})";
  auto r = call(c, "POST", "/fhir", bundle);
  ASSERT_EQ(r.status, 200) << r.body;
  auto d = parse_body(r);
  EXPECT_EQ(str_at(d, {"type"}), "transaction-response");
  ASSERT_EQ(d["entry"].Size(), 2u);
  EXPECT_EQ(str_at(d["entry"][0], {"response", "status"}).substr(0, 3), "201");
  std::string ploc = str_at(d["entry"][0], {"response", "location"});
  std::string oloc = str_at(d["entry"][1], {"response", "location"});
  std::string pid = ploc.substr(ploc.find("Patient/") + 8);
  pid = pid.substr(0, pid.find('/'));
  std::string oid = oloc.substr(oloc.find("Observation/") + 12);
  oid = oid.substr(0, oid.find('/'));
  auto stored = parse_body(call(c, "GET", "/fhir/Observation/" + oid));
  EXPECT_EQ(str_at(stored, {"subject", "reference"}), "Patient/" + pid);

  // Second entry invalid (no status): nothing of the transaction is written.
  std::string nhs2 = nhs_number_for(seed_ + 1);
  std::string bad = R"({"resourceType":"Bundle","type":"transaction","entry":[)"
                    R"({"resource":)" + fixture("fhir/Patient.json", {{"nhs", nhs2}}) +
                    R"(,"request":{"method":"POST","url":"Patient"}},)"
                    R"({"resource":{"resourceType":"Observation","code":{"text":"x"}},"request":{"method":"POST","url":"Observation"}}]})";
  auto rb = call(c, "POST", "/fhir", bad);
  EXPECT_EQ(rb.status, 422) << rb.body;
  EXPECT_NE(first_issue(rb).expression.find("Bundle.entry[1]"), std::string::npos) << rb.body;
  auto search = parse_body(call(c, "GET", "/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number%7C" + nhs2));
  EXPECT_EQ(search["total"].GetInt(), 0) << "a failed transaction must leave nothing behind";

  // A conflict found only by the writer (duplicate NHS number) also rolls back everything.
  std::string nhs3 = nhs_number_for(seed_ + 2);
  std::string dup = R"({"resourceType":"Bundle","type":"transaction","entry":[)"
                    R"({"resource":)" + fixture("fhir/Patient.json", {{"nhs", nhs3}}) +
                    R"(,"request":{"method":"POST","url":"Patient"}},)"
                    R"({"resource":)" + fixture("fhir/Patient.json", {{"nhs", nhs}}) +
                    R"(,"request":{"method":"POST","url":"Patient"}}]})";
  auto rd = call(c, "POST", "/fhir", dup);
  EXPECT_EQ(rd.status, 409) << rd.body;
  EXPECT_EQ(parse_body(call(c, "GET", "/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number%7C" + nhs3))["total"].GetInt(), 0);
}

TEST_F(RestApiTest, BatchEntriesSucceedOrFailOnTheirOwn) {
  auto c = gw_->client("integration");
  std::string nhs = nhs_number_for(seed_);
  std::string bundle = R"({"resourceType":"Bundle","type":"batch","entry":[)"
                       R"({"resource":)" + fixture("fhir/Patient.json", {{"nhs", nhs}}) +
                       R"(,"request":{"method":"POST","url":"Patient"}},)"
                       R"({"request":{"method":"GET","url":"Patient/no-such-patient"}},)"
                       R"({"resource":{"resourceType":"Encounter"},"request":{"method":"POST","url":"Encounter"}}]})";
  auto r = call(c, "POST", "/fhir", bundle);
  ASSERT_EQ(r.status, 200) << r.body;
  auto d = parse_body(r);
  EXPECT_EQ(str_at(d, {"type"}), "batch-response");
  ASSERT_EQ(d["entry"].Size(), 3u);
  EXPECT_EQ(str_at(d["entry"][0], {"response", "status"}).substr(0, 3), "201");
  EXPECT_EQ(str_at(d["entry"][1], {"response", "status"}).substr(0, 3), "404");
  EXPECT_EQ(str_at(d["entry"][2], {"response", "status"}).substr(0, 3), "422");
  EXPECT_EQ(parse_body(call(c, "GET", "/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number%7C" + nhs))["total"].GetInt(), 1);
}

TEST_F(RestApiTest, FiftyConcurrentConditionalCreatesMakeOnePatient) {
  std::string nhs = nhs_number_for(seed_);
  std::string body = fixture("fhir/Patient.json", {{"nhs", nhs}});
  std::string cond = "identifier=https://fhir.nhs.uk/Id/nhs-number|" + nhs;
  std::atomic<int> created{0}, existing{0}, other{0};
  std::vector<std::string> ids(50);
  std::vector<std::thread> threads;
  std::atomic<bool> go{false};
  for (int i = 0; i < 50; ++i) {
    threads.emplace_back([&, i] {
      auto c = gw_->client("integration");
      ASSERT_TRUE(c.connect().has_value());
      while (!go.load()) std::this_thread::yield();
      auto r = c.request("POST", "/fhir/Patient", body,
                         {{"Content-Type", "application/fhir+json"}, {"If-None-Exist", cond}});
      ASSERT_TRUE(r.has_value());
      if (r->status == 201) ++created;
      else if (r->status == 200) ++existing;
      else ++other;
      auto d = json::parse(r->body);
      if (d && d->IsObject()) ids[i] = str_at(*d, {"id"});
    });
  }
  go = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(created.load(), 1);
  EXPECT_EQ(existing.load(), 49);
  EXPECT_EQ(other.load(), 0);
  for (const auto& id : ids) EXPECT_EQ(id, ids[0]);
  auto c = gw_->client("gp");
  auto s = parse_body(call(c, "GET", "/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number%7C" + nhs));
  EXPECT_EQ(s["total"].GetInt(), 1);
}

TEST_F(RestApiTest, FiftyConcurrentPlainCreatesOfOneNhsNumberMakeOnePatient) {
  std::string nhs = nhs_number_for(seed_);
  std::string body = fixture("fhir/Patient.json", {{"nhs", nhs}});
  std::atomic<int> created{0}, conflict{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 50; ++i) {
    threads.emplace_back([&] {
      auto c = gw_->client("integration");
      auto r = c.request("POST", "/fhir/Patient", body, {{"Content-Type", "application/fhir+json"}});
      ASSERT_TRUE(r.has_value());
      if (r->status == 201) ++created;
      if (r->status == 409) ++conflict;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(created.load(), 1);
  EXPECT_EQ(conflict.load(), 49);
}

// What an ingest feed does: the same new patient arriving in many messages at
// once, each a transaction that upserts the Patient by NHS number and adds an
// Observation pointing at it through a urn:uuid. One Patient, no dangling refs.
TEST_F(RestApiTest, ConcurrentUpsertTransactionsConvergeOnOnePatient) {
  std::string nhs = nhs_number_for(seed_);
  const int n = 20;
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  std::vector<std::string> subjects(n);
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      std::string obs = fixture("fhir/Observation.json", {{"patient", "x"}});
      obs.replace(obs.find("\"Patient/x\""), 11, "\"urn:uuid:0b7e5d1c-0000-4000-8000-00000000000a\"");
      obs.replace(obs.find("OBS-1"), 5, "OBS-" + std::to_string(seed_) + "-" + std::to_string(i));
      std::string bundle = R"({"resourceType":"Bundle","type":"transaction","entry":[)"
                           R"({"fullUrl":"urn:uuid:0b7e5d1c-0000-4000-8000-00000000000a","resource":)" +
                           fixture("fhir/Patient.json", {{"nhs", nhs}}) +
                           R"(,"request":{"method":"PUT","url":"Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|)" + nhs +
                           R"("}},{"resource":)" + obs + R"(,"request":{"method":"POST","url":"Observation"}}]})";
      auto c = gw_->client("integration");
      auto r = c.request("POST", "/fhir", bundle, {{"Content-Type", "application/fhir+json"}});
      ASSERT_TRUE(r.has_value());
      EXPECT_EQ(r->status, 200) << r->body;
      if (r->status == 200) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), n);
  auto c = gw_->client("gp");
  auto patients = parse_body(call(c, "GET", "/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number%7C" + nhs));
  ASSERT_EQ(patients["total"].GetInt(), 1);
  std::string pid = str_at(patients["entry"][0], {"resource", "id"});
  auto obs = parse_body(call(c, "GET", "/fhir/Observation?patient=" + pid + "&_count=100"));
  EXPECT_EQ(obs["total"].GetInt(), n) << "every Observation must point at the one Patient";
}

TEST_F(RestApiTest, OperationsEndpoints) {
  auto admin = gw_->client("admin");
  EXPECT_EQ(call(admin, "GET", "/healthz").status, 200);
  EXPECT_EQ(call(admin, "GET", "/readyz").status, 200);
  call(admin, "GET", "/fhir/metadata");
  auto m = call(admin, "GET", "/metrics");
  ASSERT_EQ(m.status, 200);
  EXPECT_NE(m.body.find("gw_http_requests_total{route=\"fhir_metadata\",status=\"200\"}"), std::string::npos) << m.body;
  EXPECT_NE(m.body.find("gw_store_commit_seconds"), std::string::npos);
  EXPECT_NE(m.body.find("gw_http_open_connections"), std::string::npos);
  auto gp = gw_->client("gp");
  EXPECT_EQ(call(gp, "GET", "/metrics").status, 403);
}

}  // namespace
}  // namespace gw
