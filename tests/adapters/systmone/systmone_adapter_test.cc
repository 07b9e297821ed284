// Golden tests for the SystmOne HL7 v2 adapter: every fixture in
// tests/fixtures/systmone/<case>.hl7 is parsed and compared with
// <case>.fhir.json (after numbering the fresh urn:uuid values in order of
// appearance), every resource is run through the project Validator, and the
// broken fixtures must fail with the location named in <case>.expect.json.
// GW_UPDATE_GOLDEN=1 rewrites the expected files (review the diff!).
#include "adapters/systmone/systmone_adapter.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "adapters/registry.h"
#include "gateway/common/json.h"
#include "gateway/write/validation.h"

namespace gw::adapters::systmone {
namespace {

namespace fs = std::filesystem;
const std::string kFixtures = GW_SOURCE_DIR "/tests/fixtures/systmone";

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// urn:uuid values are fresh per parse: number them in order of first appearance.
std::string normalise_uuids(const std::string& text) {
  static const std::regex re("urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}");
  std::map<std::string, int> seen;
  std::string out;
  auto begin = std::sregex_iterator(text.begin(), text.end(), re);
  std::size_t last = 0;
  for (auto it = begin; it != std::sregex_iterator(); ++it) {
    out.append(text, last, it->position() - last);
    auto [pos, inserted] = seen.emplace(it->str(), static_cast<int>(seen.size()) + 1);
    out += "urn:uuid:#" + std::to_string(pos->second);
    last = it->position() + it->length();
  }
  out.append(text, last, std::string::npos);
  return out;
}

// Compact; the checked-in goldens are reformatted for reading (JSON equality is compared).
std::string pretty(const json::Value& v) { return json::to_string(v) + "\n"; }

std::string issues_text(const IssueSink& s) {
  std::string out;
  for (const auto& i : s.issues())
    out += std::string(severity_name(i.severity)) + " " + i.code + " " + i.expression + ": " + i.message + "\n";
  return out;
}

class SystmOneTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto a = SystmOneAdapter::create(GW_SOURCE_DIR "/profiles");
    ASSERT_TRUE(a) << a.error().message;
    adapter_ = a->release();
    auto v = write::Validator::load(GW_SOURCE_DIR "/profiles");
    ASSERT_TRUE(v) << v.error().message;
    validator_ = new write::Validator(std::move(*v));
  }
  static void TearDownTestSuite() {
    delete adapter_;
    delete validator_;
  }

  // Every entry resource must pass the Validator; returns the parsed Bundle.
  static json::Document validated(const std::string& bundle, const std::string& label) {
    auto doc = json::parse(bundle);
    EXPECT_TRUE(doc) << label;
    if (!doc) return json::Document();
    EXPECT_EQ(json::get_string(*doc, "type").value_or(""), "transaction") << label;
    const json::Value* entries = json::member(*doc, "entry");
    EXPECT_TRUE(entries && entries->IsArray() && !entries->Empty()) << label;
    for (const auto& e : entries->GetArray()) {
      const json::Value* r = json::member(e, "resource");
      EXPECT_NE(r, nullptr) << label;
      if (!r) continue;
      IssueSink s;
      validator_->validate(*r, s);
      EXPECT_FALSE(s.has_errors()) << label << " " << json::to_string(*r) << "\n" << issues_text(s);
    }
    return std::move(*doc);
  }

  static Adapter* adapter_;
  static write::Validator* validator_;
};
Adapter* SystmOneTest::adapter_ = nullptr;
write::Validator* SystmOneTest::validator_ = nullptr;

std::vector<fs::path> cases(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".hl7") out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

TEST_F(SystmOneTest, FormatIdAndRegistry) {
  EXPECT_EQ(adapter_->format_id(), "systmone");
  auto r = make_registry(GW_SOURCE_DIR "/profiles");
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_NE((*r)->find("systmone"), nullptr);
  EXPECT_EQ((*r)->find("no-such-format"), nullptr);
}

TEST_F(SystmOneTest, CreateFailsLoudlyNamingFileAndKey) {
  fs::path dir = fs::temp_directory_path() / ("s1-profiles-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::copy(GW_SOURCE_DIR "/profiles/codemaps", dir / "codemaps");
  fs::copy(GW_SOURCE_DIR "/profiles/adapters", dir / "adapters");
  {
    std::ofstream(dir / "codemaps" / "ctv3.json") << R"({"codeSystem":"CTV3","names":["CTV3"],"system":"x",
      "map":{"XaOnx":{"code":"342191000000101","display":"CPP"}},"unmapped":[{"code":"XaIO8"}]})";
  }
  auto a = SystmOneAdapter::create(dir.string());
  ASSERT_FALSE(a);
  EXPECT_NE(a.error().message.find("ctv3.json"), std::string::npos) << a.error().message;
  EXPECT_NE(a.error().message.find("unmapped[0].reason"), std::string::npos) << a.error().message;
  fs::copy_file(GW_SOURCE_DIR "/profiles/codemaps/ctv3.json", dir / "codemaps" / "ctv3.json",
                fs::copy_options::overwrite_existing);
  {
    std::ofstream(dir / "adapters" / "systmone.json") << slurp(GW_SOURCE_DIR "/profiles/adapters/systmone.json")
                                                             .replace(0, 1, "{\"colour\": 1,");
  }
  a = SystmOneAdapter::create(dir.string());
  ASSERT_FALSE(a);
  EXPECT_NE(a.error().message.find("systmone.json: colour"), std::string::npos) << a.error().message;
  fs::remove_all(dir);
}

TEST_F(SystmOneTest, GoldenFixtures) {
  const bool update = std::getenv("GW_UPDATE_GOLDEN") != nullptr;
  auto files = cases(kFixtures);
  ASSERT_GE(files.size(), 14u);
  for (const auto& hl7 : files) {
    SCOPED_TRACE(hl7.filename().string());
    // The shared sample bad_nhs_checksum.hl7 stays at the top for the ER7 tests; broken/ has its expectation.
    if (fs::exists(hl7.parent_path() / "broken" / hl7.filename())) continue;
    IssueSink issues;
    auto b = adapter_->parse(slurp(hl7), issues);
    ASSERT_TRUE(b) << b.error().expression << ": " << b.error().message << "\n" << issues_text(issues);
    EXPECT_FALSE(issues.has_errors()) << issues_text(issues);
    auto doc = validated(b->json, hl7.filename().string());
    auto norm = json::parse(normalise_uuids(b->json));
    ASSERT_TRUE(norm);
    fs::path expected = hl7;
    expected.replace_extension(".fhir.json");
    if (update) {
      std::ofstream(expected, std::ios::binary) << pretty(*norm);
      continue;
    }
    ASSERT_TRUE(fs::exists(expected)) << expected;
    auto want = json::parse(slurp(expected));
    ASSERT_TRUE(want) << expected;
    EXPECT_TRUE(*norm == *want) << "got:\n" << pretty(*norm);
  }
}

TEST_F(SystmOneTest, BrokenFixturesNameTheLocation) {
  auto files = cases(kFixtures + "/broken");
  ASSERT_GE(files.size(), 20u);
  for (const auto& hl7 : files) {
    SCOPED_TRACE(hl7.filename().string());
    fs::path ex = hl7;
    ex.replace_extension(".expect.json");
    auto want = json::parse(slurp(ex));
    ASSERT_TRUE(want) << ex;
    std::string raw = slurp(hl7);
    IssueSink issues;
    auto b = adapter_->parse(raw, issues);
    if (auto e = json::get_string(*want, "error")) {
      // AR: unprocessable at all, the location is the Error's expression.
      ASSERT_FALSE(b);
      EXPECT_EQ(b.error().expression, *e) << b.error().message;
      continue;
    }
    const json::Value* want_issue = json::member(*want, "issue");
    ASSERT_NE(want_issue, nullptr);
    // AE: the problem is an error issue; nothing may be stored, so no Bundle.
    EXPECT_FALSE(b) << "a broken message must not produce a Bundle";
    EXPECT_TRUE(issues.has_errors());
    bool found = false;
    for (const auto& i : issues.issues())
      found = found || (i.severity == Severity::error && i.expression == json::get_string(*want_issue, "expression") &&
                        i.code == json::get_string(*want_issue, "code"));
    EXPECT_TRUE(found) << "want " << json::to_string(*want_issue) << "\ngot:\n" << issues_text(issues);
    // No identifier or field value in a message that may be logged.
    std::smatch m;
    static const std::regex digits("[0-9]{9,10}");
    for (const auto& i : issues.issues()) EXPECT_FALSE(std::regex_search(i.message, m, digits)) << i.message;
  }
}

const json::Value* resource_of(const json::Document& d, std::string_view type, int n = 0) {
  for (const auto& e : json::member(d, "entry")->GetArray()) {
    const json::Value* r = json::member(e, "resource");
    if (json::get_string(*r, "resourceType") == type && n-- == 0) return r;
  }
  return nullptr;
}

TEST_F(SystmOneTest, UnmatchedPatientIsKeptOnItsLocalIdentifier) {
  IssueSink issues;
  auto b = adapter_->parse(slurp(kFixtures + "/adt_a28_unmatched.hl7"), issues);
  ASSERT_TRUE(b);
  auto d = json::parse(b->json);
  const json::Value& e0 = json::member(*d, "entry")->GetArray()[0];
  EXPECT_EQ(json::get_string(*json::member(e0, "request"), "url"),
            "Patient?identifier=urn:cpis-gateway:local-id:C87001|700999");
  bool warned = false;
  for (const auto& i : issues.issues())
    warned = warned || (i.severity == Severity::warning && i.message == "no NHS number: kept as unmatched");
  EXPECT_TRUE(warned) << issues_text(issues);
}

TEST_F(SystmOneTest, FamilyLinkIsTheSameFromEitherRecord) {
  IssueSink i1, i2;
  auto child = adapter_->parse(slurp(kFixtures + "/adt_a28_child.hl7"), i1);
  auto parent = adapter_->parse(slurp(kFixtures + "/adt_a28_parent.hl7"), i2);
  ASSERT_TRUE(child && parent);
  auto dc = json::parse(child->json);
  auto dp = json::parse(parent->json);
  const json::Value* rc = resource_of(*dc, "RelatedPerson");
  const json::Value* rp = resource_of(*dp, "RelatedPerson");
  ASSERT_TRUE(rc && rp);
  EXPECT_EQ(json::to_string(*json::member(*rc, "identifier")), json::to_string(*json::member(*rp, "identifier")));
  EXPECT_EQ(json::to_string(*json::member(*rc, "relationship")), json::to_string(*json::member(*rp, "relationship")));
  // From the parent's record the child is created if absent, never overwritten.
  const json::Value& e1 = json::member(*dp, "entry")->GetArray()[1];
  EXPECT_EQ(json::get_string(*json::member(e1, "request"), "method"), "POST");
  EXPECT_EQ(json::get_string(*json::member(e1, "request"), "ifNoneExist"),
            "identifier=https://fhir.nhs.uk/Id/nhs-number|9990237573");
}

TEST_F(SystmOneTest, ReparseIsIdempotentApartFromFreshUuids) {
  for (const auto& hl7 : cases(kFixtures)) {
    if (fs::exists(hl7.parent_path() / "broken" / hl7.filename())) continue;
    IssueSink a, b;
    auto x = adapter_->parse(slurp(hl7), a);
    auto y = adapter_->parse(slurp(hl7), b);
    ASSERT_TRUE(x && y);
    EXPECT_NE(x->json, y->json) << "fullUrls must be fresh per parse";
    EXPECT_EQ(normalise_uuids(x->json), normalise_uuids(y->json)) << hl7;
  }
}

// The Patient facts that must survive FHIR -> HL7 -> FHIR.
std::string patient_facts(const json::Value& p) {
  std::string out;
  for (const char* k : {"identifier", "name", "gender", "birthDate", "address", "telecom", "generalPractitioner",
                        "deceasedBoolean", "deceasedDateTime"})
    if (const json::Value* v = json::member(p, k)) out += std::string(k) + "=" + json::to_string(*v) + "\n";
  return out;
}

TEST_F(SystmOneTest, RenderRoundTripKeepsPatientFacts) {
  for (const char* name : {"adt_a28_child.hl7", "adt_a31_update.hl7", "adt_a28_latin1.hl7", "adt_a08_update.hl7",
                           "adt_a04_ed_adult_overdose.hl7", "adt_a28_unmatched.hl7"}) {
    SCOPED_TRACE(name);
    IssueSink i1, i2, i3;
    auto first = adapter_->parse(slurp(kFixtures + "/" + name), i1);
    ASSERT_TRUE(first);
    auto er7 = adapter_->render(*first, i2);
    ASSERT_TRUE(er7) << er7.error().message;
    EXPECT_TRUE(er7->starts_with("MSH|^~\\&|CPIS-GATEWAY|")) << *er7;
    auto second = adapter_->parse(*er7, i3);
    ASSERT_TRUE(second) << second.error().expression << " " << second.error().message << "\n"
                        << issues_text(i3) << *er7;
    auto d1 = json::parse(first->json);
    auto d2 = json::parse(second->json);
    EXPECT_EQ(patient_facts(*resource_of(*d1, "Patient")), patient_facts(*resource_of(*d2, "Patient"))) << *er7;
    validated(second->json, name);
  }
}

TEST_F(SystmOneTest, RenderEncounterAsA08WithPv1) {
  IssueSink i1, i2, i3;
  auto first = adapter_->parse(slurp(kFixtures + "/adt_a03_discharge.hl7"), i1);
  ASSERT_TRUE(first);
  auto er7 = adapter_->render(*first, i2);
  ASSERT_TRUE(er7);
  EXPECT_NE(er7->find("|ADT^A08^ADT_A01|"), std::string::npos);
  EXPECT_NE(er7->find("\rPV1|1|I|"), std::string::npos) << *er7;
  auto second = adapter_->parse(*er7, i3);
  ASSERT_TRUE(second) << issues_text(i3);
  auto d1 = json::parse(first->json);
  auto d2 = json::parse(second->json);
  const json::Value* e1 = resource_of(*d1, "Encounter");
  const json::Value* e2 = resource_of(*d2, "Encounter");
  ASSERT_TRUE(e1 && e2);
  for (const char* k : {"identifier", "class", "period", "status"})
    EXPECT_EQ(json::to_string(*json::member(*e1, k)), json::to_string(*json::member(*e2, k))) << k;
}

TEST_F(SystmOneTest, RenderChildProtectionPlanAsOru) {
  const std::string bundle = R"({"resourceType":"Bundle","type":"collection","entry":[
    {"resource":{"resourceType":"Patient","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9990316767"}],
      "name":[{"family":"THOMPSON","given":["Noah"]}],"gender":"male","birthDate":"2023-01-11"}},
    {"resource":{"resourceType":"Flag","identifier":[{"system":"urn:x","value":"PLAN-1"}],"status":"active",
      "code":{"coding":[{"system":"http://snomed.info/sct","code":"342191000000101","display":"Subject to child protection plan"}]},
      "subject":{"identifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9990316767"}},
      "period":{"start":"2026-11-04"},
      "author":{"identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"E08000018"},"display":"Rotherham & District"}}}]})";
  IssueSink i1, i2;
  auto er7 = adapter_->render(Bundle{bundle}, i1);
  ASSERT_TRUE(er7) << er7.error().message;
  EXPECT_NE(er7->find("|ORU^R01^ORU_R01|"), std::string::npos);
  EXPECT_NE(er7->find("\rOBX|1|CE|342191000000101^Subject to child protection plan^SCT||Y^Yes^HL70136||||||F|||20261104|"
                      "E08000018^Rotherham \\T\\ District^ODS\r"),
            std::string::npos)
      << *er7;
  auto back = adapter_->parse(*er7, i2);
  ASSERT_TRUE(back) << issues_text(i2);
  auto d = json::parse(back->json);
  const json::Value* obs = resource_of(*d, "Observation");
  ASSERT_NE(obs, nullptr);
  EXPECT_EQ(json::get_string((*json::member(*json::member(*obs, "code"), "coding"))[0], "code"), "342191000000101");
}

TEST_F(SystmOneTest, RenderWithoutPatientIsAnError) {
  IssueSink i;
  auto r = adapter_->render(Bundle{R"({"resourceType":"Bundle","type":"collection","entry":[]})"}, i);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().expression, "Bundle.entry");
}

}  // namespace
}  // namespace gw::adapters::systmone
