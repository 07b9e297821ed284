// HTTP semantics a FHIR client relies on (issue 13): 406 for an Accept the
// server cannot meet and 415 for a body it cannot read, X-Request-ID,
// HEAD, conditional reads, Prefer: return=, JSON Patch, and name searches
// that apply what they say. Real TLS sockets against the in-process stack.
#include <gtest/gtest.h>

#include <atomic>
#include <regex>
#include <set>

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
using Headers = std::vector<std::pair<std::string, std::string>>;

const Headers kJson = {{"Content-Type", "application/fhir+json"}};
const Headers kPatch = {{"Content-Type", "application/json-patch+json"}};

json::Document parse_body(const ClientResponse& r) {
  auto d = json::parse(r.body);
  EXPECT_TRUE(d.has_value()) << "not JSON: " << r.body.substr(0, 200);
  return d ? std::move(*d) : json::Document();
}

std::string str(const json::Value& v, const char* key) {
  const json::Value* m = v.IsObject() ? json::member(v, key) : nullptr;
  return m && m->IsString() ? std::string(json::as_view(*m)) : std::string();
}

// {code, expression[0]} of the first issue of an OperationOutcome.
std::pair<std::string, std::string> first_issue(const ClientResponse& r) {
  auto d = parse_body(r);
  EXPECT_EQ(str(d, "resourceType"), "OperationOutcome") << r.body;
  const json::Value* issues = d.IsObject() ? json::member(d, "issue") : nullptr;
  if (!issues || !issues->IsArray() || issues->Empty()) return {};
  const json::Value& i = (*issues)[0];
  std::string expr;
  if (const json::Value* e = json::member(i, "expression"); e && e->IsArray() && !e->Empty())
    expr = std::string(json::as_view((*e)[0]));
  return {str(i, "code"), expr};
}

class HttpSemanticsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { gw_ = new InProcessGateway(); }
  static void TearDownTestSuite() {
    delete gw_;
    gw_ = nullptr;
  }
  void SetUp() override { seed_ = next_seed_.fetch_add(1) * 11 + 52000; }

  static ClientResponse call(HttpsClient& c, const std::string& method, const std::string& target,
                             const std::string& body = "", Headers headers = {}) {
    if (!body.empty() && headers.empty()) headers = kJson;
    auto r = c.request(method, target, body, headers);
    EXPECT_TRUE(r.has_value()) << method << " " << target << ": " << (r ? "" : r.error().message);
    return r ? std::move(*r) : ClientResponse{};
  }

  // A Patient with its own NHS number and the given family and given name.
  std::string create_patient(HttpsClient& c, const std::string& family, const std::string& given, int n = 0) {
    std::string p = fixture("fhir/Patient.json", {{"nhs", nhs_number_for(seed_ + n)}});
    p.replace(p.find("\"Example\""), 9, "\"" + family + "\"");
    p.replace(p.find("\"Alex\""), 6, "\"" + given + "\"");
    auto r = call(c, "POST", "/fhir/Patient", p);
    EXPECT_EQ(r.status, 201) << r.body;
    return str(parse_body(r), "id");
  }

  static InProcessGateway* gw_;
  static std::atomic<int> next_seed_;
  uint32_t seed_ = 0;
};
InProcessGateway* HttpSemanticsTest::gw_ = nullptr;
std::atomic<int> HttpSemanticsTest::next_seed_{1};

TEST_F(HttpSemanticsTest, AnAcceptWithoutJsonIs406AndABodyThatIsNotJsonIs415) {
  auto c = gw_->client("gp");
  for (const char* accept : {"application/fhir+xml", "application/xml, text/html",
                             "application/fhir+json;q=0, application/fhir+xml"}) {
    auto r = call(c, "GET", "/fhir/metadata", "", {{"Accept", accept}});
    EXPECT_EQ(r.status, 406) << accept;
    EXPECT_EQ(first_issue(r).first, "not-supported") << accept;
  }
  EXPECT_EQ(call(c, "GET", "/fhir/metadata?_format=xml").status, 406);
  // Anything that allows JSON, however weighted, is served.
  for (const char* accept : {"application/fhir+json", "application/json", "*/*",
                             "application/fhir+xml;q=0.9, */*;q=0.1", "application/*"})
    EXPECT_EQ(call(c, "GET", "/fhir/metadata", "", {{"Accept", accept}}).status, 200) << accept;

  auto integ = gw_->client("integration");
  auto xml = call(integ, "POST", "/fhir/Patient", "<Patient/>", {{"Content-Type", "application/fhir+xml"}});
  EXPECT_EQ(xml.status, 415);
  EXPECT_EQ(first_issue(xml).first, "not-supported");
  // A PATCH is a JSON Patch; a resource body in its place is 415 as well.
  EXPECT_EQ(call(integ, "PATCH", "/fhir/Patient/x", "{}", kJson).status, 415);
}

TEST_F(HttpSemanticsTest, XRequestIdIsReturnedAsGivenOrMinted) {
  auto c = gw_->client("gp");
  auto given = call(c, "GET", "/fhir/metadata", "", {{"X-Request-ID", "client-trace.42:a_b"}});
  EXPECT_EQ(given.header("x-request-id").value_or(""), "client-trace.42:a_b");
  // Errors carry it too.
  auto err = call(c, "GET", "/fhir/NoSuchType/1", "", {{"X-Request-ID", "err-7"}});
  EXPECT_EQ(err.header("x-request-id").value_or(""), "err-7");

  std::regex minted("^[0-9a-f]{32}$");
  auto none = call(c, "GET", "/fhir/metadata");
  std::string a = none.header("x-request-id").value_or("");
  EXPECT_TRUE(std::regex_match(a, minted)) << a;
  std::string b = call(c, "GET", "/fhir/metadata").header("x-request-id").value_or("");
  EXPECT_TRUE(std::regex_match(b, minted)) << b;
  EXPECT_NE(a, b);
  // What could forge a log field, or is too long, is replaced, not echoed.
  for (std::string bad : {std::string("a b"), std::string("x\"=y"), std::string(129, 'a')}) {
    std::string got = call(c, "GET", "/fhir/metadata", "", {{"X-Request-ID", bad}}).header("x-request-id").value_or("");
    EXPECT_TRUE(std::regex_match(got, minted)) << bad << " -> " << got;
  }
}

TEST_F(HttpSemanticsTest, HeadAnswersTheHeadersOfAGetWithoutTheBody) {
  auto integ = gw_->client("integration");
  std::string id = create_patient(integ, "Headcase", "Hana");
  auto gp = gw_->client("gp");
  auto get = call(gp, "GET", "/fhir/Patient/" + id);
  ASSERT_EQ(get.status, 200);
  auto head = call(gp, "HEAD", "/fhir/Patient/" + id);
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.body.empty());
  EXPECT_EQ(head.header("content-length").value_or(""), std::to_string(get.body.size()));
  EXPECT_EQ(head.header("etag").value_or("?"), get.header("etag").value_or(""));
  // The connection is still usable: the client did not wait for a body.
  EXPECT_EQ(call(gp, "GET", "/fhir/metadata").status, 200);
  EXPECT_EQ(call(gp, "HEAD", "/fhir/Patient/does-not-exist").status, 404);
}

TEST_F(HttpSemanticsTest, ConditionalReadAnswers304WhenTheClientsCopyIsCurrent) {
  auto integ = gw_->client("integration");
  std::string id = create_patient(integ, "Etagger", "Ed");
  auto gp = gw_->client("gp");
  auto first = call(gp, "GET", "/fhir/Patient/" + id);
  ASSERT_EQ(first.status, 200);
  std::string etag = first.header("etag").value_or("");
  std::string modified = first.header("last-modified").value_or("");
  ASSERT_EQ(etag, "W/\"1\"");

  auto same = call(gp, "GET", "/fhir/Patient/" + id, "", {{"If-None-Match", etag}});
  EXPECT_EQ(same.status, 304);
  EXPECT_TRUE(same.body.empty());
  EXPECT_EQ(same.header("etag").value_or(""), etag);
  EXPECT_EQ(call(gp, "GET", "/fhir/Patient/" + id, "", {{"If-None-Match", "W/\"7\", " + etag}}).status, 304);
  EXPECT_EQ(call(gp, "GET", "/fhir/Patient/" + id, "", {{"If-None-Match", "W/\"7\""}}).status, 200);
  EXPECT_EQ(call(gp, "GET", "/fhir/Patient/" + id, "", {{"If-Modified-Since", modified}}).status, 304);
  EXPECT_EQ(call(gp, "GET", "/fhir/Patient/" + id, "", {{"If-Modified-Since", "Sat, 01 Jan 2000 00:00:00 GMT"}}).status,
            200);
  // If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2).
  EXPECT_EQ(call(gp, "GET", "/fhir/Patient/" + id, "",
                 {{"If-None-Match", "W/\"7\""}, {"If-Modified-Since", modified}})
                .status,
            200);

  // After an update the old ETag no longer matches.
  auto patched = call(integ, "PATCH", "/fhir/Patient/" + id,
                      R"([{"op":"replace","path":"/gender","value":"male"}])", kPatch);
  ASSERT_EQ(patched.status, 200) << patched.body;
  EXPECT_EQ(call(gp, "GET", "/fhir/Patient/" + id, "", {{"If-None-Match", etag}}).status, 200);
}

TEST_F(HttpSemanticsTest, PreferReturnChoosesWhatAWriteAnswers) {
  auto integ = gw_->client("integration");
  std::string p = fixture("fhir/Patient.json", {{"nhs", nhs_number_for(seed_)}});
  Headers minimal = {{"Content-Type", "application/fhir+json"}, {"Prefer", "return=minimal"}};
  auto r = call(integ, "POST", "/fhir/Patient", p, minimal);
  EXPECT_EQ(r.status, 201);
  EXPECT_TRUE(r.body.empty()) << r.body;
  EXPECT_FALSE(r.header("location").value_or("").empty());
  EXPECT_EQ(r.header("etag").value_or(""), "W/\"1\"");

  std::string p2 = fixture("fhir/Patient.json", {{"nhs", nhs_number_for(seed_ + 1)}});
  Headers outcome = {{"Content-Type", "application/fhir+json"}, {"Prefer", "return=OperationOutcome"}};
  auto o = call(integ, "POST", "/fhir/Patient", p2, outcome);
  EXPECT_EQ(o.status, 201);
  EXPECT_EQ(str(parse_body(o), "resourceType"), "OperationOutcome");

  std::string p3 = fixture("fhir/Patient.json", {{"nhs", nhs_number_for(seed_ + 2)}});
  auto full = call(integ, "POST", "/fhir/Patient", p3, {{"Content-Type", "application/fhir+json"},
                                                          {"Prefer", "return=representation"}});
  EXPECT_EQ(str(parse_body(full), "resourceType"), "Patient");
}

TEST_F(HttpSemanticsTest, JsonPatchGoesThroughTheChecksOfAnUpdate) {
  auto integ = gw_->client("integration");
  std::string id = create_patient(integ, "Patchwork", "Pat");
  std::string url = "/fhir/Patient/" + id;

  auto ok = call(integ, "PATCH", url,
                 R"([{"op":"test","path":"/gender","value":"female"},
                     {"op":"replace","path":"/gender","value":"male"},
                     {"op":"add","path":"/name/0/given/-","value":"Quinn"},
                     {"op":"remove","path":"/telecom"}])",
                 kPatch);
  ASSERT_EQ(ok.status, 200) << ok.body;
  auto d = parse_body(ok);
  EXPECT_EQ(str(d, "gender"), "male");
  EXPECT_EQ(str(d["meta"], "versionId"), "2");
  EXPECT_FALSE(d.HasMember("telecom"));
  ASSERT_EQ(d["name"][0]["given"].Size(), 3u);
  EXPECT_EQ(std::string(d["name"][0]["given"][2].GetString()), "Quinn");
  EXPECT_EQ(ok.header("etag").value_or(""), "W/\"2\"");

  // A failed test changes nothing: all or nothing, and the error names the operation.
  auto failed = call(integ, "PATCH", url,
                     R"([{"op":"replace","path":"/gender","value":"female"},
                         {"op":"test","path":"/gender","value":"other"}])",
                     kPatch);
  EXPECT_EQ(failed.status, 400) << failed.body;
  EXPECT_EQ(first_issue(failed).second, "/1/value");
  EXPECT_EQ(str(parse_body(call(integ, "GET", url)), "gender"), "male");

  // The profile checks of PUT apply to the patched resource.
  auto invalid = call(integ, "PATCH", url, R"([{"op":"replace","path":"/birthDate","value":"not a date"}])", kPatch);
  EXPECT_TRUE(invalid.status == 400 || invalid.status == 422) << invalid.status << " " << invalid.body;
  EXPECT_NE(first_issue(invalid).second.find("birthDate"), std::string::npos) << invalid.body;

  // Identity cannot be patched away.
  auto reid = call(integ, "PATCH", url, R"([{"op":"replace","path":"/id","value":"other"}])", kPatch);
  EXPECT_EQ(reid.status, 422) << reid.body;

  // If-Match is honoured: a stale version is 412 and nothing is written.
  Headers stale = {{"Content-Type", "application/json-patch+json"}, {"If-Match", "W/\"1\""}};
  auto conflict = call(integ, "PATCH", url, R"([{"op":"replace","path":"/gender","value":"other"}])", stale);
  EXPECT_EQ(conflict.status, 412) << conflict.body;
  EXPECT_EQ(str(parse_body(call(integ, "GET", url)), "gender"), "male");

  // Not an array; an unknown op; a path that is not a pointer.
  EXPECT_EQ(call(integ, "PATCH", url, R"({"op":"remove","path":"/gender"})", kPatch).status, 400);
  auto unknown = call(integ, "PATCH", url, R"([{"op":"merge","path":"/gender"}])", kPatch);
  EXPECT_EQ(unknown.status, 400);
  EXPECT_EQ(first_issue(unknown).second, "/0/op");
  EXPECT_EQ(first_issue(call(integ, "PATCH", url, R"([{"op":"remove","path":"gender"}])", kPatch)).second, "/0/path");
  EXPECT_EQ(call(integ, "PATCH", "/fhir/Patient/no-such-patient", "[]", kPatch).status, 404);

  // The same policy as PUT: a caller that may not update may not patch.
  auto comm = gw_->client("commissioner");
  EXPECT_EQ(call(comm, "PATCH", url, R"([{"op":"replace","path":"/gender","value":"other"}])", kPatch).status, 403);
}

// GET /fhir/Patient?name=SMITH answered a BROWN and echoed the parameter
// in the self link as if it had been applied.
TEST_F(HttpSemanticsTest, NameSearchesMatchTheNamePartTheyNameOnly) {
  auto integ = gw_->client("integration");
  std::string tag = std::to_string(seed_);
  std::string smith = create_patient(integ, "Smithx" + tag, "Ann", 0);
  // Brown has Smith as a given name: a family search must not find it.
  std::string brown = create_patient(integ, "Brownx" + tag, "Smithx" + tag, 1);
  auto gp = gw_->client("gp");
  auto ids = [&](const std::string& q) {
    auto r = call(gp, "GET", "/fhir/Patient?" + q);
    EXPECT_EQ(r.status, 200) << q << ": " << r.body;
    std::set<std::string> out;
    auto d = parse_body(r);
    if (d.IsObject() && d.HasMember("entry"))
      for (const auto& e : d["entry"].GetArray())
        if (e.HasMember("resource") && str(e["resource"], "resourceType") == "Patient")
          out.insert(str(e["resource"], "id"));
    return out;
  };
  EXPECT_EQ(ids("family=SMITHX" + tag), (std::set<std::string>{smith}));
  EXPECT_EQ(ids("given=smithx" + tag), (std::set<std::string>{brown}));
  EXPECT_EQ(ids("name=smithx" + tag), (std::set<std::string>{smith, brown}));
  EXPECT_EQ(ids("family=Brownx" + tag), (std::set<std::string>{brown}));
  EXPECT_EQ(ids("family:exact=Smithx" + tag), (std::set<std::string>{smith}));
  EXPECT_TRUE(ids("family:exact=smithx" + tag).empty());
  EXPECT_EQ(ids("family:contains=mithx" + tag), (std::set<std::string>{smith}));

  // Lenient handling: an unknown parameter is left out of the self link and
  // reported in an outcome entry; strict handling refuses it.
  auto r = call(gp, "GET", "/fhir/Patient?family=Smithx" + tag + "&colour=blue");
  ASSERT_EQ(r.status, 200);
  auto d = parse_body(r);
  std::string self;
  for (const auto& l : d["link"].GetArray())
    if (str(l, "relation") == "self") self = str(l, "url");
  EXPECT_NE(self.find("family=Smithx" + tag), std::string::npos) << self;
  EXPECT_EQ(self.find("colour"), std::string::npos) << self;
  bool outcome = false;
  for (const auto& e : d["entry"].GetArray())
    outcome = outcome || str(e["resource"], "resourceType") == "OperationOutcome";
  EXPECT_TRUE(outcome) << r.body;
  EXPECT_EQ(call(gp, "GET", "/fhir/Patient?family=Smithx" + tag + "&colour=blue", "",
                 {{"Prefer", "handling=strict"}})
                .status,
            400);
}

}  // namespace
}  // namespace gw
