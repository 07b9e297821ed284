// Issue 13's "done when": two FHIR clients nobody on the project wrote,
// fhir-kit-client and Medplum's MedplumClient (tests/tools/fhir-clients.mjs),
// run against the real binary: they search patients by name, birth date and
// GP and encounters by date range and class, and read the
// CapabilityStatement without losing anything a strict parse sees.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "gateway/common/json.h"
#include "tests/support/fixtures.h"
#include "tests/support/gateway_process.h"
#include "tests/support/https_client.h"
#include "tests/support/pki.h"
#include "tests/support/test_gateway.h"

namespace gw {
namespace {

using test::GatewayProcess;
using test::HttpsClient;
using Ids = std::vector<std::string>;

// Every object's member names are distinct (RapidJSON keeps duplicates in
// its DOM, where a client's JSON.parse keeps only the last); "" when so,
// else the path of the first duplicate.
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

std::vector<std::string> sorted_names(const json::Value& obj, const char* array, const char* key) {
  std::vector<std::string> out;
  if (const json::Value* a = json::member(obj, array); a && a->IsArray())
    for (const auto& e : a->GetArray())
      if (auto s = json::get_string(e, key)) out.emplace_back(*s);
  std::sort(out.begin(), out.end());
  return out;
}

// What a statement lists, as {"Type.searchParam": names, "Type.operation":
// names, "Type.interaction": codes, ".operation": system operations}, from
// the strict parse...
using Listing = std::map<std::string, std::vector<std::string>>;
Listing listing_of_statement(const json::Value& cs) {
  Listing out;
  for (const auto& rest : cs["rest"].GetArray()) {
    out[".operation"] = sorted_names(rest, "operation", "name");
    for (const auto& r : rest["resource"].GetArray()) {
      std::string type(json::get_string(r, "type").value_or(""));
      out[type + ".searchParam"] = sorted_names(r, "searchParam", "name");
      out[type + ".operation"] = sorted_names(r, "operation", "name");
      out[type + ".interaction"] = sorted_names(r, "interaction", "code");
    }
  }
  return out;
}

// ...and from the summary a client printed of what it parsed.
Listing listing_of_summary(const json::Value& summary) {
  Listing out;
  for (const auto& t : summary.GetObject())
    for (const auto& k : t.value.GetObject()) {
      auto& names = out[std::string(json::as_view(t.name)) + "." + std::string(json::as_view(k.name))];
      for (const auto& n : k.value.GetArray()) names.emplace_back(json::as_view(n));
      std::sort(names.begin(), names.end());
    }
  return out;
}

class RealClients : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(gw_.start(dir_.path())) << gw_.log();
    integ_ = std::make_unique<HttpsClient>(HttpsClient::for_role(gw_.port(), "integration"));
  }

  std::string create(const std::string& type, const std::string& body) {
    auto r = integ_->request("POST", "/fhir/" + type, body, {{"Content-Type", "application/fhir+json"}});
    EXPECT_TRUE(r.has_value());
    if (!r) return {};
    EXPECT_EQ(r->status, 201) << r->body;
    auto d = json::parse(r->body);
    return d ? std::string(json::get_string(*d, "id").value_or("")) : std::string();
  }

  std::string patient(int n, const std::string& family, const std::string& birth, const std::string& gp_ods) {
    std::string p = test::fixture("fhir/Patient.json", {{"nhs", test::nhs_number_for(9100 + n)}});
    p.replace(p.find("\"Example\""), 9, "\"" + family + "\"");
    p.replace(p.find("2019-04-12"), 10, birth);
    p.replace(p.find("B86001"), 6, gp_ods);
    return create("Patient", p);
  }

  std::string encounter(const std::string& patient_id, const std::string& cls, const std::string& day) {
    std::string e = test::fixture("fhir/Encounter.json", {{"patient", patient_id}});
    e.replace(e.find("\"AMB\""), 5, "\"" + cls + "\"");
    for (size_t at = 0; (at = e.find("2026-11-01", at)) != std::string::npos; at += day.size()) e.replace(at, 10, day);
    return create("Encounter", e);
  }

  test::TempDir dir_;
  GatewayProcess gw_;
  std::unique_ptr<HttpsClient> integ_;
};

TEST_F(RealClients, FhirKitClientAndMedplumSearchAndReadTheCapabilityStatement) {
  std::string smith1 = patient(1, "Smith", "2019-04-12", "B86001");
  std::string brown = patient(2, "Brown", "2015-06-01", "B86001");
  std::string smith2 = patient(3, "Smithson", "2019-09-30", "Y00001");
  std::string e1 = encounter(smith1, "AMB", "2026-11-01");
  std::string e2 = encounter(brown, "EMER", "2026-11-15");
  std::string e3 = encounter(smith2, "AMB", "2026-12-03");
  ASSERT_FALSE(smith1.empty() || brown.empty() || smith2.empty() || e1.empty() || e2.empty() || e3.empty());

  const std::string gp = "https://fhir.nhs.uk/Id/ods-organization-code|B86001";
  const std::string amb = "http://terminology.hl7.org/CodeSystem/v3-ActCode|AMB";
  struct Search {
    std::string name, type;
    std::vector<std::pair<std::string, std::string>> params;
    Ids want;
  };
  std::vector<Search> searches = {
      {"name", "Patient", {{"name", "smith"}}, {smith1, smith2}},
      {"family-exact", "Patient", {{"family:exact", "Smith"}}, {smith1}},
      {"birth-month", "Patient", {{"birthdate", "2019-04"}}, {smith1}},
      {"birth-range", "Patient", {{"birthdate", "ge2019-01-01"}, {"birthdate", "lt2019-12-31"}}, {smith1, smith2}},
      {"born-before", "Patient", {{"birthdate", "lt2019"}}, {brown}},
      {"gp", "Patient", {{"general-practitioner:identifier", gp}}, {smith1, brown}},
      {"name-and-gp", "Patient", {{"name", "SMITH"}, {"general-practitioner:identifier", gp}}, {smith1}},
      {"november", "Encounter", {{"date", "ge2026-11-01"}, {"date", "lt2026-12-01"}}, {e1, e2}},
      {"class", "Encounter", {{"class", amb}}, {e1, e3}},
      {"class-code-only", "Encounter", {{"class", "EMER"}}, {e2}},
      {"november-amb", "Encounter", {{"date", "ge2026-11-01"}, {"date", "lt2026-12-01"}, {"class", amb}}, {e1}},
  };

  test::TempDir work;
  const std::string& pki = test::dev_pki_dir();
  {
    json::Buffer buf;
    json::Writer w(buf);
    auto str = [&](const std::string& s) { w.String(s.c_str(), static_cast<json::SizeType>(s.size())); };
    w.StartObject();
    w.Key("base");
    str("https://127.0.0.1:" + std::to_string(gw_.port()) + "/fhir");
    w.Key("ca");
    str(pki + "/ca.pem");
    w.Key("cert");
    str(pki + "/client-gp.pem");
    w.Key("key");
    str(pki + "/client-gp.key");
    w.Key("searches");
    w.StartArray();
    for (const auto& s : searches) {
      w.StartObject();
      w.Key("name");
    str(s.name);
      w.Key("type");
    str(s.type);
      w.Key("params");
      w.StartArray();
      for (const auto& [k, v] : s.params) {
        w.StartArray();
        str(k);
        str(v);
        w.EndArray();
      }
      w.EndArray();
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    std::ofstream(work.path() + "/spec.json") << std::string_view(buf.GetString(), buf.GetSize());
  }
  std::string cmd = "node " + std::string(GW_SOURCE_DIR) + "/tests/tools/fhir-clients.mjs " + work.path() +
                    "/spec.json 2>" + work.path() + "/stderr";
  FILE* pipe = popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string out;
  char chunk[4096];
  while (size_t k = fread(chunk, 1, sizeof chunk, pipe)) out.append(chunk, k);
  int status = pclose(pipe);
  std::ifstream err_in(work.path() + "/stderr");
  std::string err((std::istreambuf_iterator<char>(err_in)), std::istreambuf_iterator<char>());
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << err << out << gw_.refresh_log();
  auto result = json::parse(out);
  ASSERT_TRUE(result && result->IsObject()) << out;

  // The statement as the gateway sent it, with a parse that sees duplicate keys.
  auto gpc = HttpsClient::for_role(gw_.port(), "gp");
  auto meta = gpc.request("GET", "/fhir/metadata");
  ASSERT_TRUE(meta.has_value());
  auto cs = json::parse(meta->body);
  ASSERT_TRUE(cs.has_value()) << meta->body;
  EXPECT_EQ(first_duplicate(*cs, "CapabilityStatement"), "");
  Listing strict = listing_of_statement(*cs);
  ASSERT_GT(strict.size(), 20u);
  ASSERT_TRUE(strict.count("Basic.interaction")) << "Basic (SubscriptionTopic) is not listed";
  auto topics = gpc.request("GET", "/fhir/Basic");
  ASSERT_TRUE(topics.has_value());
  EXPECT_EQ(topics->status, 200) << topics->body;

  for (const char* client : {"fhir-kit-client", "medplum"}) {
    SCOPED_TRACE(client);
    ASSERT_TRUE(result->HasMember(client)) << out;
    const json::Value& r = (*result)[client];
    // Nothing the strict parse sees is lost to the client, nothing added.
    EXPECT_EQ(listing_of_summary(r["capability"]), strict);
    const json::Value& patient_ops = r["capability"]["Patient"]["operation"];
    bool cohort = false;
    for (const auto& o : patient_ops.GetArray()) cohort = cohort || json::as_view(o) == "safeguarding-cohort";
    EXPECT_TRUE(cohort) << json::to_string(patient_ops);
    EXPECT_TRUE(r["capability"].HasMember("Basic"));
    for (const auto& s : searches) {
      Ids got;
      for (const auto& id : r["searches"][s.name.c_str()].GetArray()) got.emplace_back(json::as_view(id));
      Ids want = s.want;
      std::sort(want.begin(), want.end());
      EXPECT_EQ(got, want) << s.name;
    }
    // The client did send what it was asked to (its own encoding).
    std::string urls = json::to_string(r["urls"]);
    EXPECT_NE(urls.find("/fhir/metadata"), std::string::npos) << urls;
    EXPECT_NE(urls.find("birthdate=ge2019-01-01&birthdate=lt2019-12-31"), std::string::npos) << urls;
  }
}

}  // namespace
}  // namespace gw
