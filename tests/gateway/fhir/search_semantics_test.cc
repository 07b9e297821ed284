// The search parameters declared in profiles/search/params.json, with the
// type semantics of FHIR R4 (issue 13): date prefixes and partial dates,
// string default/:exact/:contains, token system|code, |code, code, :not,
// :text, references by id, type/id and :identifier, :missing, _sort,
// _summary=count, _elements and _total; and the CapabilityStatement, read
// with a duplicate-rejecting check, whose every listed search parameter a
// strict request accepts. Real TLS sockets against the in-process stack.
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <string>
#include <vector>

#include "gateway/common/json.h"
#include "tests/support/fixtures.h"
#include "tests/support/test_gateway.h"
#include "tests/support/user_tokens_kit.h"

namespace gw {
namespace {

using test::ClientResponse;
using test::HttpsClient;
using test::InProcessGateway;
using test::fixture;
using test::nhs_number_for;
using Ids = std::set<std::string>;

std::string str(const json::Value& v, const char* key) {
  return std::string(v.IsObject() ? json::get_string(v, key).value_or("") : "");
}

class SearchSemanticsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { gw_ = new InProcessGateway(); }
  static void TearDownTestSuite() {
    delete gw_;
    gw_ = nullptr;
  }
  void SetUp() override {
    seed_ = next_seed_.fetch_add(1) * 13 + 61000;
    tag_ = "Tagq" + std::to_string(seed_);  // a family name no other test uses
  }

  static ClientResponse call(HttpsClient& c, const std::string& method, const std::string& target,
                             const std::string& body = "",
                             std::vector<std::pair<std::string, std::string>> headers = {}) {
    if (!body.empty() && headers.empty()) headers = {{"Content-Type", "application/fhir+json"}};
    auto r = c.request(method, target, body, headers);
    EXPECT_TRUE(r.has_value()) << method << " " << target;
    return r ? std::move(*r) : ClientResponse{};
  }

  std::string create(const std::string& type, const std::string& body) {
    auto integ = gw_->client("integration");
    auto r = call(integ, "POST", "/fhir/" + type, body);
    EXPECT_EQ(r.status, 201) << r.body;
    auto d = json::parse(r.body);
    return d ? str(*d, "id") : std::string();
  }

  // A Patient of family tag_ (plus `suffix`), the given birth date, gender and GP.
  std::string patient(int n, const std::string& suffix, const std::string& birth, const std::string& gender,
                      const std::string& gp_ods, bool with_postcode = true) {
    std::string p = fixture("fhir/Patient.json", {{"nhs", nhs_number_for(seed_ + n)}});
    p.replace(p.find("\"Example\""), 9, "\"" + tag_ + suffix + "\"");
    p.replace(p.find("2019-04-12"), 10, birth);
    p.replace(p.find("\"female\""), 8, "\"" + gender + "\"");
    p.replace(p.find("B86001"), 6, gp_ods);
    if (!with_postcode) p.replace(p.find(",\"postalCode\":\"LS1 1AA\""), 23, "");
    return create("Patient", p);
  }

  // The ids of the resources of `type` a gp search answers (200 expected).
  Ids ids(const std::string& type, const std::string& query, const char* expect_type = nullptr) {
    auto gp = gw_->client("gp");
    auto r = call(gp, "GET", "/fhir/" + type + "?" + query, "", {{"Prefer", "handling=strict"}});
    EXPECT_EQ(r.status, 200) << query << ": " << r.body;
    Ids out;
    auto d = json::parse(r.body);
    if (d && d->IsObject() && d->HasMember("entry"))
      for (const auto& e : (*d)["entry"].GetArray())
        if (str(e["resource"], "resourceType") == (expect_type ? expect_type : type)) out.insert(str(e["resource"], "id"));
    return out;
  }

  static InProcessGateway* gw_;
  static std::atomic<int> next_seed_;
  uint32_t seed_ = 0;
  std::string tag_;
};
InProcessGateway* SearchSemanticsTest::gw_ = nullptr;
std::atomic<int> SearchSemanticsTest::next_seed_{1};

TEST_F(SearchSemanticsTest, DatePrefixesAndPartialDates) {
  std::string a = patient(0, "", "2019-04-12", "female", "B86001");
  std::string b = patient(1, "", "2019-05-01", "male", "B86001");
  std::string c = patient(2, "", "2020-01-31", "female", "B86001");
  std::string f = "family=" + tag_ + "&";
  EXPECT_EQ(ids("Patient", f + "birthdate=2019"), (Ids{a, b}));
  EXPECT_EQ(ids("Patient", f + "birthdate=eq2019-04"), (Ids{a}));
  EXPECT_EQ(ids("Patient", f + "birthdate=2019-04-12"), (Ids{a}));
  EXPECT_EQ(ids("Patient", f + "birthdate=ne2019"), (Ids{c}));
  EXPECT_EQ(ids("Patient", f + "birthdate=lt2019-05-01"), (Ids{a}));
  EXPECT_EQ(ids("Patient", f + "birthdate=le2019-05-01"), (Ids{a, b}));
  EXPECT_EQ(ids("Patient", f + "birthdate=gt2019-05-01"), (Ids{c}));
  EXPECT_EQ(ids("Patient", f + "birthdate=ge2019-05"), (Ids{b, c}));
  EXPECT_EQ(ids("Patient", f + "birthdate=sa2019"), (Ids{c}));
  EXPECT_EQ(ids("Patient", f + "birthdate=eb2020"), (Ids{a, b}));
  EXPECT_EQ(ids("Patient", f + "birthdate=ge2019-04-13&birthdate=lt2020"), (Ids{b}));
  // ap: approximately (the server's window); the day itself is always in it.
  EXPECT_TRUE(ids("Patient", f + "birthdate=ap2020-01-31").count(c));
  EXPECT_FALSE(ids("Patient", f + "birthdate=ap2020-01-31").count(a));

  // A period (Encounter.period) matches a day it overlaps.
  std::string enc = fixture("fhir/Encounter.json", {{"patient", a}});
  std::string e = create("Encounter", enc);
  std::string p = "patient=" + a + "&";
  EXPECT_EQ(ids("Encounter", p + "date=2026-11-01"), (Ids{e}));
  EXPECT_EQ(ids("Encounter", p + "date=2026-11"), (Ids{e}));
  EXPECT_TRUE(ids("Encounter", p + "date=2026-11-02").empty());
  EXPECT_EQ(ids("Encounter", p + "date=ge2026-11-01T09:10:00Z&date=le2026-11-01T09:15:00Z"), (Ids{e}));

  auto gp = gw_->client("gp");
  auto bad = call(gp, "GET", "/fhir/Patient?birthdate=2019-13");
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_NE(bad.body.find("birthdate"), std::string::npos) << bad.body;
}

TEST_F(SearchSemanticsTest, StringsTokensReferencesAndMissing) {
  std::string a = patient(0, "", "2019-04-12", "female", "B86001");
  std::string b = patient(1, "son", "2018-01-01", "male", "Y00001", false);
  std::string f = "family=" + tag_ + "&";
  // String: starts with, case- and accent-insensitive; :exact; :contains.
  EXPECT_EQ(ids("Patient", "family=" + tag_), (Ids{a, b}));
  EXPECT_EQ(ids("Patient", "family:exact=" + tag_), (Ids{a}));
  EXPECT_EQ(ids("Patient", "name:contains=" + tag_.substr(2) + "so"), (Ids{b}));
  EXPECT_EQ(ids("Patient", f + "address-postalcode=ls1"), (Ids{a}));
  // Token: code, system|code, |code (no system), :not.
  EXPECT_EQ(ids("Patient", f + "gender=male"), (Ids{b}));
  EXPECT_EQ(ids("Patient", f + "gender=http://hl7.org/fhir/administrative-gender|male"), (Ids{b}));
  EXPECT_EQ(ids("Patient", f + "gender:not=male"), (Ids{a}));
  EXPECT_EQ(ids("Patient", f + "gender=female,male"), (Ids{a, b}));
  // Reference: by identifier, and :missing for a value that is absent.
  EXPECT_EQ(ids("Patient", f + "general-practitioner:identifier=https://fhir.nhs.uk/Id/ods-organization-code|Y00001"),
            (Ids{b}));
  EXPECT_EQ(ids("Patient", f + "address-postalcode:missing=true"), (Ids{b}));
  EXPECT_EQ(ids("Patient", f + "address-postalcode:missing=false"), (Ids{a}));
  EXPECT_EQ(ids("Patient", f + "link:missing=true"), (Ids{a, b}));

  // Encounter class (Coding) and status; service-provider by identifier.
  std::string e = create("Encounter", fixture("fhir/Encounter.json", {{"patient", a}}));
  std::string p = "patient=" + a + "&";
  EXPECT_EQ(ids("Encounter", p + "class=AMB"), (Ids{e}));
  EXPECT_EQ(ids("Encounter", p + "class=http://terminology.hl7.org/CodeSystem/v3-ActCode|AMB"), (Ids{e}));
  EXPECT_TRUE(ids("Encounter", p + "class=http://other.example|AMB").empty());
  EXPECT_TRUE(ids("Encounter", p + "class=|AMB").empty()) << "|code is a code without a system";
  EXPECT_EQ(ids("Encounter", p + "status=finished"), (Ids{e}));
  EXPECT_EQ(ids("Encounter", p + "service-provider:identifier=https://fhir.nhs.uk/Id/ods-organization-code|B86001"),
            (Ids{e}));
  EXPECT_TRUE(ids("Encounter", p + "service-type:missing=false").empty());

  // Reference by type/id and by id: an Organization stored here.
  std::string org_json = fixture("fhir/Organization.json", {});
  org_json.replace(org_json.find("B86001"), 6, "Y" + std::to_string(10000 + seed_ % 90000));  // its own ODS code
  std::string org = create("Organization", org_json);
  ASSERT_FALSE(org.empty());
  std::string gp_ref = fixture("fhir/Patient.json", {{"nhs", nhs_number_for(seed_ + 7)}});
  gp_ref.replace(gp_ref.find("\"Example\""), 9, "\"" + tag_ + "org\"");
  size_t at = gp_ref.find("\"generalPractitioner\"");
  gp_ref = gp_ref.substr(0, at) + "\"generalPractitioner\":[{\"reference\":\"Organization/" + org + "\"}]}";
  std::string c = create("Patient", gp_ref);
  EXPECT_EQ(ids("Patient", f + "general-practitioner=Organization/" + org), (Ids{c}));
  EXPECT_EQ(ids("Patient", f + "general-practitioner:Organization=" + org), (Ids{c}));
}

// The store keeps one index row for a subject that is a Patient (issue 12):
// patient= and subject= still answer alike, by id, by Type/id, chained on the
// NHS number, and through _include / _revinclude under either name.
TEST_F(SearchSemanticsTest, PatientAndSubjectAnswerAlikeFromOneIndexRow) {
  std::string a = patient(0, "", "2019-04-12", "female", "B86001");
  std::string b = patient(1, "", "2018-01-01", "male", "B86001");
  std::string ta = create("CareTeam", fixture("fhir/CareTeam.json", {{"patient", a}}));
  std::string tb = create("CareTeam", fixture("fhir/CareTeam.json", {{"patient", b}}));
  ASSERT_FALSE(ta.empty());
  ASSERT_FALSE(tb.empty());
  for (const char* name : {"patient", "subject"}) {
    std::string n = name;
    EXPECT_EQ(ids("CareTeam", n + "=" + a), (Ids{ta})) << n;
    EXPECT_EQ(ids("CareTeam", n + "=Patient/" + a), (Ids{ta})) << n;
    EXPECT_EQ(ids("CareTeam", n + "=" + a + "," + b), (Ids{ta, tb})) << n;
    EXPECT_EQ(ids("CareTeam", n + ":identifier=https://fhir.nhs.uk/Id/nhs-number%7C" + nhs_number_for(seed_ + 1)),
              (Ids{tb}))
        << n;
    EXPECT_EQ(ids("Patient", "_id=" + a + "&_revinclude=CareTeam:" + n, "CareTeam"), (Ids{ta})) << n;
    EXPECT_EQ(ids("CareTeam", "_id=" + tb + "&_include=CareTeam:" + n, "Patient"), (Ids{b})) << n;
  }
}

TEST_F(SearchSemanticsTest, TokenTextOnObservationCodes) {
  std::string a = patient(0, "", "2019-04-12", "female", "B86001");
  std::string obs = create("Observation", fixture("fhir/Observation.json", {{"patient", a}}));
  ASSERT_FALSE(obs.empty());
  auto gp = gw_->client("gp");
  auto read = json::parse(call(gp, "GET", "/fhir/Observation/" + obs).body);
  ASSERT_TRUE(read.has_value());
  const json::Value& coding = (*read)["code"]["coding"][0];
  std::string code = str(coding, "code"), system = str(coding, "system");
  std::string text = str((*read)["code"], "text");
  if (text.empty()) text = str(coding, "display");
  ASSERT_FALSE(text.empty()) << "the fixture's code has no text or display to search";
  std::string p = "patient=" + a + "&";
  EXPECT_EQ(ids("Observation", p + "code=" + system + "|" + code), (Ids{obs}));
  EXPECT_EQ(ids("Observation", p + "code:text=" + text.substr(0, 4)), (Ids{obs}));
  EXPECT_TRUE(ids("Observation", p + "code:text=zzqx").empty());
}

TEST_F(SearchSemanticsTest, SortSummaryCountElementsAndTotal) {
  std::string a = patient(0, "", "2019-04-12", "female", "B86001");
  std::string b = patient(1, "", "2017-01-01", "male", "B86001");
  std::string c = patient(2, "", "2021-06-30", "female", "B86001");
  auto gp = gw_->client("gp");
  auto order = [&](const std::string& q) {
    std::vector<std::string> out;
    auto d = json::parse(call(gp, "GET", "/fhir/Patient?family=" + tag_ + "&" + q).body);
    if (d && d->HasMember("entry"))
      for (const auto& e : (*d)["entry"].GetArray())
        if (str(e["resource"], "resourceType") == "Patient") out.push_back(str(e["resource"], "id"));
    return out;
  };
  EXPECT_EQ(order("_sort=birthdate"), (std::vector<std::string>{b, a, c}));
  EXPECT_EQ(order("_sort=-birthdate"), (std::vector<std::string>{c, a, b}));

  auto count = json::parse(call(gp, "GET", "/fhir/Patient?family=" + tag_ + "&_summary=count").body);
  ASSERT_TRUE(count.has_value());
  EXPECT_EQ((*count)["total"].GetInt(), 3);
  EXPECT_FALSE(count->HasMember("entry") && (*count)["entry"].Size() > 0);

  auto none = json::parse(call(gp, "GET", "/fhir/Patient?family=" + tag_ + "&_total=none").body);
  ASSERT_TRUE(none.has_value());
  EXPECT_FALSE(none->HasMember("total"));
  EXPECT_EQ((*none)["entry"].Size(), 3u);

  auto el = json::parse(call(gp, "GET", "/fhir/Patient?family=" + tag_ + "&_elements=birthDate").body);
  ASSERT_TRUE(el.has_value());
  ASSERT_EQ((*el)["entry"].Size(), 3u);
  for (const auto& e : (*el)["entry"].GetArray()) {
    const json::Value& r = e["resource"];
    EXPECT_TRUE(r.HasMember("birthDate"));
    EXPECT_TRUE(r.HasMember("id"));
    EXPECT_FALSE(r.HasMember("name")) << json::to_string(r);
    EXPECT_FALSE(r.HasMember("identifier")) << json::to_string(r);
    EXPECT_NE(json::to_string(r["meta"]).find("SUBSETTED"), std::string::npos) << json::to_string(r);
  }
  auto bad_sort = call(gp, "GET", "/fhir/Patient?_sort=telecom");
  EXPECT_EQ(bad_sort.status, 400);
  EXPECT_NE(bad_sort.body.find("_sort"), std::string::npos) << bad_sort.body;
}

// Every object member name is distinct (RapidJSON keeps duplicates; a
// client's parser keeps one and silently loses the other): "" or a path.
std::string first_duplicate(const json::Value& v, const std::string& path) {
  if (v.IsObject()) {
    std::set<std::string> seen;
    for (const auto& m : v.GetObject()) {
      std::string k(json::as_view(m.name));
      if (!seen.insert(k).second) return path + "." + k;
      if (auto d = first_duplicate(m.value, path + "." + k); !d.empty()) return d;
    }
  } else if (v.IsArray()) {
    for (json::SizeType i = 0; i < v.Size(); ++i)
      if (auto d = first_duplicate(v[i], path + "[" + std::to_string(i) + "]"); !d.empty()) return d;
  }
  return {};
}

// The statement lists nothing that does not work: each search parameter it
// lists is accepted by a strict search and each operation has a route (not
// 404 "unknown", not 405). (Basic, the subscription topics, is listed where
// the subscriptions engine runs: tests/gateway/e2e/real_clients_test.cc.)
TEST_F(SearchSemanticsTest, EveryListedSearchParameterAndOperationAnswers) {
  auto admin = gw_->client("admin");
  auto meta = call(admin, "GET", "/fhir/metadata");
  ASSERT_EQ(meta.status, 200);
  auto cs = json::parse(meta.body);
  ASSERT_TRUE(cs.has_value());
  EXPECT_EQ(first_duplicate(*cs, "CapabilityStatement"), "");
  bool cohort = false;
  int params = 0, operations = 0;
  for (const auto& r : (*cs)["rest"][0]["resource"].GetArray()) {
    std::string type = str(r, "type");
    if (const json::Value* sp = json::member(r, "searchParam"))
      for (const auto& p : sp->GetArray()) {
        std::string name = str(p, "name"), kind = str(p, "type");
        // A value of the parameter's type; a reference by bare id (any target),
        // the patient of a resource by NHS number (what CP-IS's AuditEvent takes).
        std::string q = name + "=" + (kind == "date" ? "ge2020-01-01" : kind == "reference" ? "none" : "a");
        if (name == "patient" || name == "subject")
          q = name + ":identifier=https://fhir.nhs.uk/Id/nhs-number|" + nhs_number_for(seed_);
        if (name == "identifier") q = name + "=https://x.example|a";
        // As a person: searching the disclosures needs one (profiles/policy/users.json).
        auto res = call(admin, "GET", "/fhir/" + type + "?" + q, "", {{"Prefer", "handling=strict"}, test::user_header("admin")});
        EXPECT_EQ(res.status, 200) << type << "?" << q << ": " << res.body;
        ++params;
      }
    if (const json::Value* ops = json::member(r, "operation"))
      for (const auto& o : ops->GetArray()) {
        std::string name = str(o, "name");
        cohort = cohort || (type == "Patient" && name == "safeguarding-cohort");
        // Type level, then instance level: one of them is its route.
        auto t = call(admin, "POST", "/fhir/" + type + "/$" + name, R"({"resourceType":"Parameters"})");
        auto i = call(admin, "GET", "/fhir/" + type + "/none/$" + name);
        bool routed = [&](const ClientResponse& x) {
          return x.status != 405 && !(x.status == 404 && x.body.find("operation") != std::string::npos &&
                                      x.body.find("not found") == std::string::npos);
        }(t) || (i.status != 405 && i.status != 400);
        EXPECT_TRUE(routed) << type << "/$" << name << ": " << t.status << " " << t.body << " / " << i.status << " "
                            << i.body;
        ++operations;
      }
  }
  EXPECT_TRUE(cohort) << "Patient/$safeguarding-cohort is not listed";
  EXPECT_GE(params, 40) << "fewer search parameters listed than declared";
  EXPECT_GE(operations, 2);
}

}  // namespace
}  // namespace gw
