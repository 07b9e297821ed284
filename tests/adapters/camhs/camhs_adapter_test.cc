// Golden tests for the CAMHS XML adapter: every fixture in
// tests/fixtures/camhs/<case>.xml is parsed and compared with <case>.fhir.json
// (fresh urn:uuid values numbered in order of appearance) and
// <case>.issues.txt (the per-record results), every resource is run through
// the project Validator, and every broken fixture must fail as its
// <case>.expect.json says. GW_UPDATE_GOLDEN=1 rewrites the expected files
// (review the diff!).
#include "adapters/camhs/camhs_adapter.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "adapters/registry.h"
#include "adapters/systmone/systmone_adapter.h"
#include "gateway/common/json.h"
#include "gateway/write/validation.h"

namespace gw::adapters::camhs {
namespace {

namespace fs = std::filesystem;
const std::string kFixtures = GW_SOURCE_DIR "/tests/fixtures/camhs";

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string normalise_uuids(const std::string& text) {
  static const std::regex re("urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}");
  std::map<std::string, int> seen;
  std::string out;
  std::size_t last = 0;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it) {
    out.append(text, last, it->position() - last);
    auto [pos, inserted] = seen.emplace(it->str(), static_cast<int>(seen.size()) + 1);
    out += "urn:uuid:#" + std::to_string(pos->second);
    last = it->position() + it->length();
  }
  out.append(text, last, std::string::npos);
  return out;
}

std::string issues_text(const IssueSink& s) {
  std::string out;
  for (const auto& i : s.issues())
    out += std::string(severity_name(i.severity)) + " " + i.code + " " + i.expression + ": " + i.message + "\n";
  return out;
}

std::vector<fs::path> cases(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".xml") out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

class CamhsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto a = CamhsAdapter::create(GW_SOURCE_DIR "/profiles");
    ASSERT_TRUE(a) << a.error().message;
    adapter_ = static_cast<CamhsAdapter*>(a->release());
    auto v = write::Validator::load(GW_SOURCE_DIR "/profiles");
    ASSERT_TRUE(v) << v.error().message;
    validator_ = new write::Validator(std::move(*v));
  }
  static void TearDownTestSuite() {
    delete adapter_;
    delete validator_;
  }

  static json::Document validated(const std::string& bundle, const std::string& label) {
    auto doc = json::parse(bundle);
    EXPECT_TRUE(doc) << label;
    if (!doc) return json::Document();
    EXPECT_EQ(json::get_string(*doc, "type").value_or(""), "transaction") << label;
    const json::Value* entries = json::member(*doc, "entry");
    EXPECT_TRUE(entries && entries->IsArray() && !entries->Empty()) << label;
    if (!entries) return std::move(*doc);
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

  static json::Document parse_ok(const std::string& file, IssueSink& issues) {
    auto b = adapter_->parse(slurp(kFixtures + "/" + file), issues);
    EXPECT_TRUE(b) << (b ? "" : b.error().message) << "\n" << issues_text(issues);
    if (!b) return json::Document();
    return validated(b->json, file);
  }

  static CamhsAdapter* adapter_;
  static write::Validator* validator_;
};
CamhsAdapter* CamhsTest::adapter_ = nullptr;
write::Validator* CamhsTest::validator_ = nullptr;

std::vector<const json::Value*> resources(const json::Document& d, std::string_view type) {
  std::vector<const json::Value*> out;
  const json::Value* es = json::member(d, "entry");
  if (!es) return out;
  for (const auto& e : es->GetArray()) {
    const json::Value* r = json::member(e, "resource");
    if (json::get_string(*r, "resourceType") == type) out.push_back(r);
  }
  return out;
}

std::vector<std::string> security_codes(const json::Value& r) {
  std::vector<std::string> out;
  const json::Value* m = json::member(r, "meta");
  const json::Value* s = m ? json::member(*m, "security") : nullptr;
  if (s)
    for (const auto& c : s->GetArray()) out.emplace_back(json::get_string(c, "code").value_or(""));
  return out;
}

bool has(const std::vector<std::string>& v, std::string_view x) { return std::find(v.begin(), v.end(), x) != v.end(); }

TEST_F(CamhsTest, RegisteredAsCamhs) {
  EXPECT_EQ(adapter_->format_id(), "camhs");
  auto r = make_registry(GW_SOURCE_DIR "/profiles");
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_NE((*r)->find("camhs"), nullptr);
}

TEST_F(CamhsTest, CreateFailsLoudlyNamingFileAndKey) {
  fs::path dir = fs::temp_directory_path() / ("camhs-profiles-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "adapters");
  fs::copy(GW_SOURCE_DIR "/profiles/xsd", dir / "xsd");
  std::string t = slurp(GW_SOURCE_DIR "/profiles/adapters/camhs.json");
  std::ofstream(dir / "adapters" / "camhs.json") << std::regex_replace(t, std::regex("\"label\": \"SUD\""), "\"label\": \"SEX\"");
  auto a = CamhsAdapter::create(dir.string());
  ASSERT_FALSE(a);
  EXPECT_NE(a.error().message.find("camhs.json: teamTypes.S.label"), std::string::npos) << a.error().message;
  std::ofstream(dir / "adapters" / "camhs.json") << t;
  std::ofstream(dir / "xsd" / "camhs.xsd") << "<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\"><xs:element/></xs:schema>";
  a = CamhsAdapter::create(dir.string());
  ASSERT_FALSE(a);
  EXPECT_NE(a.error().message.find("camhs.xsd"), std::string::npos) << a.error().message;
  fs::remove_all(dir);
}

TEST_F(CamhsTest, GoldenFixtures) {
  const bool update = std::getenv("GW_UPDATE_GOLDEN") != nullptr;
  auto files = cases(kFixtures);
  ASSERT_GE(files.size(), 9u);
  for (const auto& xml : files) {
    SCOPED_TRACE(xml.filename().string());
    IssueSink issues;
    auto b = adapter_->parse(slurp(xml), issues);
    ASSERT_TRUE(b) << b.error().expression << ": " << b.error().message << "\n" << issues_text(issues);
    validated(b->json, xml.filename().string());
    auto norm = json::parse(normalise_uuids(b->json));
    ASSERT_TRUE(norm);
    fs::path expected = xml;
    expected.replace_extension(".fhir.json");
    fs::path expected_issues = xml;
    expected_issues.replace_extension(".issues.txt");
    if (update) {
      std::ofstream(expected, std::ios::binary) << json::to_string(*norm) << "\n";
      std::ofstream(expected_issues, std::ios::binary) << issues_text(issues);
      continue;
    }
    ASSERT_TRUE(fs::exists(expected)) << expected;
    auto want = json::parse(slurp(expected));
    ASSERT_TRUE(want) << expected;
    EXPECT_TRUE(*norm == *want) << "got:\n" << json::to_string(*norm);
    EXPECT_EQ(issues_text(issues), slurp(expected_issues));
    // No NHS number or other identifier digits in a message that may be logged.
    static const std::regex digits("[0-9]{9,10}");
    for (const auto& i : issues.issues()) {
      EXPECT_FALSE(std::regex_search(i.message, digits)) << i.message;
      EXPECT_FALSE(std::regex_search(i.expression, digits)) << i.expression;
    }
  }
}

TEST_F(CamhsTest, BrokenFixturesAreRefusedWithLineAndElement) {
  auto files = cases(kFixtures + "/broken");
  ASSERT_GE(files.size(), 10u);
  for (const auto& xml : files) {
    SCOPED_TRACE(xml.filename().string());
    fs::path ex = xml;
    ex.replace_extension(".expect.json");
    auto want = json::parse(slurp(ex));
    ASSERT_TRUE(want) << ex;
    IssueSink issues;
    auto b = adapter_->parse(slurp(xml), issues);
    ASSERT_FALSE(b) << "a broken document must not produce a Bundle";
    EXPECT_EQ(b.error().expression, json::get_string(*want, "error").value_or("?")) << b.error().message;
    std::string code(json::get_string(*want, "code").value_or(""));
    EXPECT_EQ(b.error().code, code == "invalid_input" ? Errc::invalid_input : Errc::unprocessable);
    if (const json::Value* m = json::member(*want, "message")) {
      for (const auto& part : m->GetArray()) {
        EXPECT_NE(b.error().message.find(json::as_view(part)), std::string::npos) << b.error().message;
      }
    }
    if (const json::Value* wi = json::member(*want, "issue")) {
      bool found = false;
      for (const auto& i : issues.issues()) {
        if (i.severity != Severity::error || i.expression != json::get_string(*wi, "expression") ||
            i.code != json::get_string(*wi, "code"))
          continue;
        bool all = true;
        for (const auto& part : json::member(*wi, "message")->GetArray())
          all = all && i.message.find(json::as_view(part)) != std::string::npos;
        found = found || all;
      }
      EXPECT_TRUE(found) << "want " << json::to_string(*wi) << "\ngot:\n" << issues_text(issues);
    }
    static const std::regex digits("[0-9]{9,10}");
    for (const auto& i : issues.issues()) EXPECT_FALSE(std::regex_search(i.message, digits)) << i.message;
    EXPECT_FALSE(std::regex_search(b.error().message, digits)) << b.error().message;
  }
}

TEST_F(CamhsTest, EmptyExtractIsAnEmptyTransaction) {
  IssueSink issues;
  auto b = adapter_->parse(R"(<MHSExtract xmlns="urn:cpis-gateway:camhs:1" OrgIDProvider="RXE" ReportingPeriodStart="2026-11-01"
    ReportingPeriodEnd="2026-11-07" Created="2026-11-08T02:00:00Z"/>)", issues);
  ASSERT_TRUE(b) << b.error().message;
  auto d = json::parse(b->json);
  ASSERT_TRUE(d) << b->json;
  EXPECT_EQ(json::get_string(*d, "type"), "transaction");
  EXPECT_EQ(json::member(*d, "entry"), nullptr) << "FHIR JSON has no empty arrays";
  EXPECT_TRUE(issues.empty());
}

TEST_F(CamhsTest, ObservedIndicatorMustNameAnIndicatorOfItsSignature) {
  const std::string doc = R"(<MHSExtract xmlns="urn:cpis-gateway:camhs:1" OrgIDProvider="RXE" ReportingPeriodStart="2026-11-01"
      ReportingPeriodEnd="2026-11-07" Created="2026-11-08T02:00:00Z">
    <Patient LocalPatientID="GOOD" NHSNumber="9991000003">
      <RelapseSignature CarePlanID="S1" Recorded="2026-10-01"><Indicator Seq="1" Text="a"/></RelapseSignature>
      <IndicatorObserved Seq="1" Date="2026-11-02"/>
    </Patient>
    <Patient LocalPatientID="UNKNOWN-SEQ" NHSNumber="9991000011">
      <RelapseSignature CarePlanID="S2" Recorded="2026-10-01"><Indicator Seq="1" Text="a"/></RelapseSignature>
      <IndicatorObserved Seq="7" Date="2026-11-02"/>
    </Patient>
    <Patient LocalPatientID="AMBIGUOUS" NHSNumber="9991000038">
      <RelapseSignature CarePlanID="S3" Recorded="2026-10-01"><Indicator Seq="1" Text="a"/></RelapseSignature>
      <RelapseSignature CarePlanID="S4" Recorded="2026-10-01"><Indicator Seq="1" Text="b"/></RelapseSignature>
      <IndicatorObserved Seq="1" Date="2026-11-02"/>
    </Patient>
  </MHSExtract>)";
  IssueSink issues;
  auto b = adapter_->parse(doc, issues);
  ASSERT_TRUE(b) << b.error().message;
  auto d = validated(b->json, "inline");
  EXPECT_EQ(resources(d, "Patient").size(), 1u);
  auto obs = resources(d, "Observation");
  ASSERT_EQ(obs.size(), 1u);
  EXPECT_EQ(json::get_string(json::member(*obs[0], "identifier")->GetArray()[0], "value"), "S1-1-2026-11-02");
  std::string text = issues_text(issues);
  EXPECT_NE(text.find("error value Patient[LocalPatientID=UNKNOWN-SEQ].IndicatorObserved[0].Seq"), std::string::npos) << text;
  EXPECT_NE(text.find("error required Patient[LocalPatientID=AMBIGUOUS].IndicatorObserved[0].CarePlanID"), std::string::npos) << text;
}

TEST_F(CamhsTest, HugeDocumentIsRefusedBeforeParsing) {
  std::string huge = "<MHSExtract xmlns=\"urn:cpis-gateway:camhs:1\">";
  huge.resize(adapter_->tables().max_document_bytes + 1, ' ');
  IssueSink issues;
  auto b = adapter_->parse(huge, issues);
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code, Errc::too_large);
  EXPECT_NE(b.error().message.find("limit"), std::string::npos);
}

TEST_F(CamhsTest, PartlyBadDocumentKeepsOnlyTheGoodRecord) {
  IssueSink issues;
  auto d = parse_ok("partial_bad_record.xml", issues);
  // RXE-A-0600 has 30 February (XSD), RXE-A-0602 an unknown team type (tables): both rejected.
  auto patients = resources(d, "Patient");
  ASSERT_EQ(patients.size(), 1u);
  EXPECT_NE(json::to_string(*patients[0]).find("RXE-A-0601"), std::string::npos);
  EXPECT_EQ(json::to_string(d).find("RXE-A-0600"), std::string::npos);
  EXPECT_EQ(json::to_string(d).find("R602"), std::string::npos);
  EXPECT_NE(json::to_string(*json::member(d, "meta")).find("partial"), std::string::npos);
  std::string text = issues_text(issues);
  EXPECT_NE(text.find("error structure Patient[LocalPatientID=RXE-A-0600].BirthDate: line 3, element 'Patient'"), std::string::npos) << text;
  EXPECT_NE(text.find("error code-invalid Patient[LocalPatientID=RXE-A-0602].Referral[0].TeamType"), std::string::npos) << text;
  EXPECT_NE(text.find("information informational Patient[LocalPatientID=RXE-A-0601]: record accepted"), std::string::npos) << text;
}

TEST_F(CamhsTest, RecordWithoutNhsNumberIsKeptAsUnmatched) {
  IssueSink issues;
  auto d = parse_ok("no_nhs_number.xml", issues);
  const json::Value& e0 = json::member(d, "entry")->GetArray()[0];
  EXPECT_EQ(json::get_string(*json::member(e0, "request"), "url"),
            "Patient?identifier=urn:cpis-gateway:local-id:RXE|RXE-S-0007");
  EXPECT_NE(json::to_string(e0).find("\"code\":\"unmatched\""), std::string::npos);
  EXPECT_TRUE(resources(d, "RelatedPerson").empty()) << "no family link without the parent's NHS number";
  EXPECT_NE(issues_text(issues).find("warning not-found Patient[LocalPatientID=RXE-S-0007].NHSNumber"), std::string::npos);
}

TEST_F(CamhsTest, DependantWithInvalidNhsNumberMakesNoLinkButTheOthersDo) {
  IssueSink issues;
  auto d = parse_ok("dependant_invalid_nhs.xml", issues);
  auto links = resources(d, "RelatedPerson");
  ASSERT_EQ(links.size(), 1u);
  EXPECT_EQ(json::get_string(json::member(*links[0], "identifier")->GetArray()[0], "value"), "9991000038-9991000011");
  std::string text = issues_text(issues);
  EXPECT_NE(text.find("warning value Patient[LocalPatientID=RXE-A-0200].Dependant[0].NHSNumber: dependant's NHS number is not valid"),
            std::string::npos) << text;
  EXPECT_NE(text.find("Dependant[2].NHSNumber: dependant has no NHS number"), std::string::npos) << text;
}

TEST_F(CamhsTest, Tier4SpellIsMarkedForDischargeDetection) {
  IssueSink issues;
  auto d = parse_ok("tier4_spell.xml", issues);
  int tier4 = 0;
  for (const auto* e : resources(d, "Encounter")) {
    std::string s = json::to_string(*e);
    if (s.find("camhs-tier4") == std::string::npos) continue;
    ++tier4;
    EXPECT_EQ(json::get_string(*json::member(*e, "class"), "code"), "IMP");
    EXPECT_EQ(json::get_string(*e, "status"), "finished");
    EXPECT_EQ(json::get_string(*json::member(*e, "period"), "end"), "2026-11-05");
    EXPECT_TRUE(has(security_codes(*e), "PSY") && has(security_codes(*e), "R"));
  }
  EXPECT_EQ(tier4, 1) << "the second spell (no tier, open) is not Tier 4";
}

TEST_F(CamhsTest, RelapseSignatureAndObservedIndicatorCarryOnlyShareableFields) {
  IssueSink issues;
  auto d = parse_ok("relapse_observed.xml", issues);
  const json::Value* sig = nullptr;
  for (const auto* c : resources(d, "CarePlan"))
    if (json::to_string(*c).find("relapse-prevention") != std::string::npos) sig = c;
  ASSERT_NE(sig, nullptr);
  auto labels = security_codes(*sig);
  EXPECT_TRUE(has(labels, "PSY"));
  EXPECT_FALSE(has(labels, "R")) << "the relapse signature is shared with the family's services";
  EXPECT_EQ(json::member(*sig, "activity")->Size(), 3u);
  auto obs = resources(d, "Observation");
  const json::Value* seen = nullptr;
  for (const auto* o : obs)
    if (json::to_string(*o).find("relapse-indicator-observed") != std::string::npos) seen = o;
  ASSERT_NE(seen, nullptr);
  EXPECT_EQ(json::get_string(*json::member(*seen, "code"), "text"), "Keeps the children home from school");
  EXPECT_EQ(json::get_string(*seen, "effectiveDateTime"), "2026-11-02");
  EXPECT_NE(json::to_string(*json::member(*seen, "performer")).find("A. Worker"), std::string::npos);
  // The clinical note is only in Observation.note, the element a notification filter drops.
  json::Document copy;
  copy.CopyFrom(*seen, copy.GetAllocator());
  json::remove(copy, "note");
  EXPECT_EQ(json::to_string(copy).find("hearing voices"), std::string::npos);
  EXPECT_NE(json::to_string(*seen).find("hearing voices"), std::string::npos);
  // Both children linked; the foster child sees a care giver.
  auto links = resources(d, "RelatedPerson");
  ASSERT_EQ(links.size(), 2u);
  EXPECT_NE(json::to_string(*links[0]).find("\"MTH\""), std::string::npos);
  EXPECT_NE(json::to_string(*links[1]).find("\"CGV\""), std::string::npos);
  for (const auto* l : links) EXPECT_TRUE(security_codes(*l).empty());
}

TEST_F(CamhsTest, SubstanceMisuseRecordIsLabelledSud) {
  IssueSink issues;
  auto d = parse_ok("substance_misuse.xml", issues);
  for (const auto* e : resources(d, "EpisodeOfCare")) {
    std::string s = json::to_string(*e);
    auto l = security_codes(*e);
    if (s.find("S02") != std::string::npos) EXPECT_TRUE(has(l, "SUD") && !has(l, "PSY") && has(l, "R")) << s;
    else EXPECT_TRUE(has(l, "PSY") && !has(l, "SUD")) << s;
  }
  for (const auto* c : resources(d, "CarePlan")) {
    auto l = security_codes(*c);
    EXPECT_TRUE(has(l, "SUD") && has(l, "PSY")) << "both services: both labels";
    EXPECT_NE(json::to_string(*c).find("720177001"), std::string::npos);
  }
  for (const auto* p : resources(d, "Patient")) EXPECT_TRUE(security_codes(*p).empty());
}

TEST_F(CamhsTest, FamilyLinkIsTheSameLinkAsFromSystmOne) {
  IssueSink i1, i2;
  auto d = parse_ok("extract_sample.xml", i1);
  auto s1 = systmone::SystmOneAdapter::create(GW_SOURCE_DIR "/profiles");
  ASSERT_TRUE(s1);
  auto child = (*s1)->parse(slurp(GW_SOURCE_DIR "/tests/fixtures/systmone/adt_a28_child.hl7"), i2);
  ASSERT_TRUE(child);
  auto dc = json::parse(child->json);
  std::string sys_link;
  for (const auto& e : json::member(*dc, "entry")->GetArray()) {
    const json::Value* r = json::member(e, "resource");
    if (json::get_string(*r, "resourceType") == "RelatedPerson")
      sys_link = json::to_string(*json::member(*r, "identifier")) + json::to_string(*json::member(*r, "relationship"));
  }
  ASSERT_FALSE(sys_link.empty());
  bool same = false;
  for (const auto* l : resources(d, "RelatedPerson"))
    same = same || json::to_string(*json::member(*l, "identifier")) + json::to_string(*json::member(*l, "relationship")) == sys_link;
  EXPECT_TRUE(same) << sys_link;
}

TEST_F(CamhsTest, ReparseIsIdempotentApartFromFreshUuids) {
  for (const auto& xml : cases(kFixtures)) {
    IssueSink a, b;
    auto x = adapter_->parse(slurp(xml), a);
    auto y = adapter_->parse(slurp(xml), b);
    ASSERT_TRUE(x && y);
    EXPECT_NE(x->json, y->json);
    EXPECT_EQ(normalise_uuids(x->json), normalise_uuids(y->json)) << xml;
  }
}

TEST_F(CamhsTest, Tier4DischargeRendersToXmlAndBack) {
  IssueSink i1;
  auto b = adapter_->parse(slurp(kFixtures + "/tier4_spell.xml"), i1);
  ASSERT_TRUE(b);
  IssueSink i2;
  auto xml = adapter_->render(*b, i2);
  ASSERT_TRUE(xml) << xml.error().message << "\n" << issues_text(i2);
  const std::string want = slurp(kFixtures + "/render/tier4_discharge.xml");
  if (std::getenv("GW_UPDATE_GOLDEN")) std::ofstream(kFixtures + "/render/tier4_discharge.xml") << *xml;
  else EXPECT_EQ(*xml, want);
  IssueSink i3;
  auto again = adapter_->parse(*xml, i3);
  ASSERT_TRUE(again) << again.error().message << "\n" << issues_text(i3);
  auto d1 = json::parse(b->json);
  auto d2 = json::parse(again->json);
  // The Patient, the indicators and both spells survive FHIR -> XML -> FHIR unchanged.
  auto p1 = resources(*d1, "Patient"), p2 = resources(*d2, "Patient");
  ASSERT_EQ(p2.size(), 1u);
  EXPECT_EQ(json::to_string(*p1[0]), json::to_string(*p2[0]));
  auto enc = [](const json::Document& d) {
    std::vector<std::string> out;
    for (const auto* e : resources(d, "Encounter"))
      if (json::get_string(*json::member(*e, "class"), "code") == "IMP") out.push_back(normalise_uuids(json::to_string(*e)));
    return out;
  };
  EXPECT_EQ(enc(*d1), enc(*d2));
  EXPECT_EQ(enc(*d1).size(), 2u);
  auto o1 = resources(*d1, "Observation"), o2 = resources(*d2, "Observation");
  ASSERT_EQ(o2.size(), 1u);
  EXPECT_EQ(normalise_uuids(json::to_string(*o1[0])), normalise_uuids(json::to_string(*o2[0])));
}

TEST_F(CamhsTest, RenderRefusesABundleWithoutASpell) {
  IssueSink i;
  auto x = adapter_->render(Bundle{R"({"resourceType":"Bundle","type":"transaction","timestamp":"2026-11-08T02:00:00Z",
    "entry":[{"resource":{"resourceType":"Patient","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9991000046"}]}}]})"}, i);
  ASSERT_FALSE(x);
  EXPECT_EQ(x.error().code, Errc::unprocessable);
}

TEST(CamhsRedact, ValuesAreRedactedNamesKept) {
  EXPECT_EQ(redact_values("Element '{urn:cpis-gateway:camhs:1}Patient', attribute 'NHSNumber': [facet 'pattern'] The value "
                          "'12345' is not accepted by the pattern '([0-9]{10})?'."),
            "Element '{urn:cpis-gateway:camhs:1}Patient', attribute 'NHSNumber': [facet 'pattern'] The value '(value)' is "
            "not accepted by the pattern '([0-9]{10})?'.");
  EXPECT_EQ(redact_values("attribute 'BirthDate': '1979-02-30' is not a valid value of the union type 'x'."),
            "attribute 'BirthDate': '(value)' is not a valid value of the union type 'x'.");
}

}  // namespace
}  // namespace gw::adapters::camhs
