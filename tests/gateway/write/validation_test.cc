#include "gateway/write/validation.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

namespace {

using gw::IssueSink;
using gw::write::Validator;

const Validator& shipped() {
  static const Validator v = [] {
    auto loaded = Validator::load(std::string(GW_SOURCE_DIR) + "/profiles");
    if (!loaded) ADD_FAILURE() << loaded.error().message;
    return loaded ? std::move(*loaded) : Validator{};
  }();
  return v;
}

IssueSink run(std::string_view text) {
  auto doc = gw::json::parse(text);
  EXPECT_TRUE(doc.has_value()) << "test JSON is malformed: " << text;
  IssueSink sink;
  if (doc) shipped().validate(*doc, sink);
  return sink;
}

std::string dump(const IssueSink& s) {
  std::string out;
  for (const auto& i : s.issues()) out += "  " + i.code + " @ " + i.expression + ": " + i.message + "\n";
  return out;
}

// expression -> code, for order-independent comparison
std::map<std::string, std::string> by_expression(const IssueSink& s) {
  std::map<std::string, std::string> m;
  for (const auto& i : s.issues()) m[i.expression] = i.code;
  return m;
}

const gw::Issue* find(const IssueSink& s, std::string_view expression) {
  for (const auto& i : s.issues())
    if (i.expression == expression) return &i;
  return nullptr;
}

constexpr std::string_view kPatient = R"({
  "resourceType": "Patient",
  "id": "child-1",
  "meta": {
    "versionId": "3", "lastUpdated": "2025-03-01T10:15:00Z",
    "profile": ["https://fhir.hl7.org.uk/StructureDefinition/UKCore-Patient"],
    "security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}],
    "tag": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"}]
  },
  "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Child</div>"},
  "identifier": [
    {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919",
     "extension": [{"url": "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus",
       "valueCodeableConcept": {"coding": [{"system": "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland", "code": "01"}]}}]},
    {"use": "secondary", "system": "https://example.nhs.uk/Id/systmone", "value": "S1-778"}
  ],
  "active": true,
  "name": [{"use": "official", "family": "Smith", "given": ["Amy", "Jane"], "period": {"start": "2015-04-01"}}],
  "telecom": [{"system": "phone", "value": "01632 960000", "use": "home", "rank": 1}],
  "gender": "female",
  "birthDate": "2015-04-01",
  "_birthDate": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime", "valueDateTime": "2015-04-01T08:30:00+01:00"}]},
  "deceasedBoolean": false,
  "address": [{"use": "home", "line": ["1 High Street"], "city": "Leeds", "postalCode": "LS1 1AA", "country": "GB"}],
  "multipleBirthInteger": 2,
  "contact": [{"relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0131", "code": "N"}]}],
               "name": {"family": "Smith", "given": ["Jo"]}, "telecom": [{"system": "phone", "value": "07700 900000"}]}],
  "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "en-GB"}]}, "preferred": true}],
  "generalPractitioner": [{"type": "Organization", "identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "B82005"}}],
  "managingOrganization": {"reference": "Organization/trust-1", "display": "Leeds Teaching Hospitals"},
  "link": [{"other": {"reference": "Patient/old-1"}, "type": "replaces"}]
})";

TEST(Validator, LoadsEveryShippedType) {
  const auto& types = shipped().resource_types();
  std::vector<std::string> expected = {"AuditEvent", "CarePlan", "CareTeam", "Communication", "Consent", "Encounter", "EpisodeOfCare", "Flag",
                                       "Observation", "Organization", "Patient", "RelatedPerson", "Subscription"};
  EXPECT_EQ(types, expected);
  EXPECT_TRUE(shipped().supports("Flag"));
  EXPECT_FALSE(shipped().supports("Medication"));
}

TEST(Validator, RealisticResourcesOfEveryTypePass) {
  const std::vector<std::string_view> valid = {
      kPatient,
      R"({"resourceType": "RelatedPerson", "id": "mum-1", "patient": {"reference": "Patient/child-1"},
          "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "943 476 5919"}],
          "relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "MTH"}]}],
          "name": [{"family": "Smith", "given": ["Jo"]}], "gender": "female", "birthDate": "1990-07",
          "period": {"start": "2015-04-01"}})",
      R"({"resourceType": "Encounter", "status": "finished",
          "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "EMER", "display": "emergency"},
          "type": [{"coding": [{"system": "http://snomed.info/sct", "code": "4525004"}]}],
          "subject": {"reference": "urn:uuid:3f2a1c9e-5b7d-4e8f-9a0b-1c2d3e4f5a6b"},
          "period": {"start": "2025-02-10T21:04:00Z", "end": "2025-02-11T01:30:00+00:00"},
          "reasonCode": [{"text": "head injury"}],
          "participant": [{"individual": {"reference": "Practitioner/dr-1"}}],
          "location": [{"location": {"reference": "Location/ed-1"}, "status": "completed"}],
          "hospitalization": {"dischargeDisposition": {"text": "home"}},
          "episodeOfCare": [{"reference": "EpisodeOfCare/eoc-1"}],
          "serviceProvider": {"reference": "https://fhir.example.nhs.uk/fhir/Organization/RR8"},
          "identifier": [{"system": "https://example.nhs.uk/Id/attendance", "value": "A1"}]})",
      R"({"resourceType": "Observation", "status": "final",
          "category": [{"coding": [{"system": "https://fhir.hl7.org.uk/CodeSystem/UKCore-RecordStandardHeadings", "code": "safeguarding"}]}],
          "code": {"coding": [{"system": "http://snomed.info/sct", "code": "160877008", "display": "Child at risk"}]},
          "subject": {"reference": "Patient/child-1"}, "effectiveDateTime": "2025-02-10T21:30:00Z",
          "issued": "2025-02-10T21:31:02.123Z", "valueBoolean": true,
          "performer": [{"reference": "Organization/RR8"}], "note": [{"text": "seen with bruising", "authorString": "ED nurse"}],
          "interpretation": [{"text": "concern"}],
          "component": [{"code": {"text": "score"}, "valueQuantity": {"value": 4.5, "unit": "points"},
                         "referenceRange": [{"low": {"value": 0}, "high": {"value": 10}}]}]})",
      R"({"resourceType": "Flag", "status": "active",
          "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/flag-category", "code": "safety"}]}],
          "code": {"coding": [{"system": "http://snomed.info/sct", "code": "342191000000101", "display": "Subject to child protection plan"}]},
          "subject": {"identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919"}},
          "period": {"start": "2025-01-01"}, "author": {"reference": "Organization/LA-1"}})",
      R"({"resourceType": "CareTeam", "status": "active", "name": "Health visiting team North",
          "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "310210009", "display": "Health visiting service"}]}],
          "subject": {"reference": "Patient/child-1"}, "period": {"start": "2024-06-01"},
          "participant": [{"role": [{"text": "health visitor"}], "member": {"reference": "PractitionerRole/hv-1"},
                           "onBehalfOf": {"reference": "Organization/RY6"}, "period": {"start": "2024-06-01"}}],
          "managingOrganization": [{"reference": "Organization/RY6"}],
          "telecom": [{"system": "phone", "value": "0113 000 0000", "use": "work"}]})",
      R"({"resourceType": "CarePlan", "status": "active", "intent": "plan", "title": "Child protection plan",
          "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "342191000000101"}]}],
          "subject": {"reference": "Patient/child-1"}, "period": {"start": "2025-01-01", "end": "2025-12-31"},
          "author": {"reference": "Organization/LA-1", "display": "Leeds City Council"},
          "careTeam": [{"reference": "CareTeam/ct-1"}],
          "identifier": [{"system": "https://example.gov.uk/Id/la-case", "value": "C-99"}],
          "activity": [{"detail": {"status": "in-progress", "description": "weekly visits",
                                   "scheduledTiming": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "wk"}}}}]})",
      R"({"resourceType": "Organization", "active": true, "name": "Leeds City Council",
          "identifier": [{"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "LA-1"}],
          "type": [{"text": "local authority"}], "alias": ["LCC"],
          "telecom": [{"system": "phone", "value": "0113 222 4401", "use": "work"}],
          "address": [{"line": ["Civic Hall"], "city": "Leeds"}], "partOf": {"reference": "Organization/root"},
          "contact": [{"purpose": {"text": "emergency duty team"}, "telecom": [{"system": "phone", "value": "0113 535 0600"}]}]})",
      R"({"resourceType": "Consent", "status": "active",
          "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
          "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
          "patient": {"reference": "Patient/child-1"}, "dateTime": "2025-02-01T09:00:00Z",
          "organization": [{"reference": "Organization/RY6"}],
          "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
          "verification": [{"verified": true, "verificationDate": "2025-02-01"}],
          "provision": {"type": "permit", "period": {"start": "2025-02-01"},
                        "actor": [{"role": {"text": "recipient"}, "reference": {"reference": "Organization/RR8"}}],
                        "provision": [{"type": "deny", "securityLabel": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HIV"}]}]}})",
      R"({"resourceType": "EpisodeOfCare", "status": "active",
          "type": [{"text": "school nursing"}], "patient": {"reference": "Patient/child-1"},
          "managingOrganization": {"reference": "Organization/RY6"}, "period": {"start": "2024-09-01"},
          "team": [{"reference": "CareTeam/ct-1"}], "careManager": {"reference": "PractitionerRole/sn-1"},
          "statusHistory": [{"status": "planned", "period": {"start": "2024-08-01", "end": "2024-09-01"}}]})",
      R"({"resourceType": "Subscription", "status": "requested", "reason": "CP-IS plan changes for our caseload",
          "criteria": "https://cpis.example.nhs.uk/fhir/SubscriptionTopic/cpis-plan-change",
          "_criteria": {"extension": [{"url": "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-filter-criteria",
                                       "valueString": "CarePlan?patient=Patient/child-1"}]},
          "end": "2026-01-01T00:00:00Z",
          "channel": {"type": "rest-hook", "endpoint": "https://ehr.example.nhs.uk/notify",
                      "payload": "application/fhir+json",
                      "_payload": {"extension": [{"url": "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content", "valueCode": "id-only"}]},
                      "header": ["Authorization: Bearer secret-token"],
                      "extension": [{"url": "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-heartbeat-period", "valueUnsignedInt": 86400}]}})",
  };
  for (auto text : valid) {
    IssueSink s = run(text);
    EXPECT_TRUE(s.empty()) << text.substr(0, 60) << "...\n" << dump(s);
  }
}

TEST(Validator, ReportsEveryProblemWithItsPath) {
  IssueSink s = run(R"({"resourceType": "Patient",
    "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919"}, {"value": "x"}],
    "gender": "M",
    "name": [{"given": ["Amy", "Jane", ""]}]})");
  auto m = by_expression(s);
  EXPECT_EQ(m.size(), 3u) << dump(s);
  EXPECT_EQ(m["Patient.identifier[1].system"], "required") << dump(s);
  EXPECT_EQ(m["Patient.gender"], "code-invalid") << dump(s);
  EXPECT_EQ(m["Patient.name[0].given[2]"], "value") << dump(s);
}

TEST(Validator, InvalidNhsNumberReportsTheCheck) {
  IssueSink s = run(R"({"resourceType": "Patient",
    "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765918"}]})");
  ASSERT_EQ(s.issues().size(), 1u) << dump(s);
  const auto& i = s.issues()[0];
  EXPECT_EQ(i.code, "value");
  EXPECT_EQ(i.expression, "Patient.identifier[0].value");
  EXPECT_NE(i.message.find("check digit is 8 but the Modulus 11 calculation gives 9"), std::string::npos) << i.message;
  EXPECT_EQ(i.message.find("9434765918"), std::string::npos) << "the number must not be echoed";

  // The same check applies to an NHS number inside a reference.
  IssueSink f = run(R"({"resourceType": "Flag", "status": "active", "code": {"text": "CP-IS"},
    "subject": {"identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "0000000230"}}})");
  ASSERT_NE(find(f, "Flag.subject.identifier.value"), nullptr) << dump(f);
  EXPECT_NE(find(f, "Flag.subject.identifier.value")->message.find("gives 10"), std::string::npos);
}

TEST(Validator, AtMostOneNhsNumberPerPatient) {
  IssueSink s = run(R"({"resourceType": "Patient", "identifier": [
    {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919"},
    {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919"}]})");
  ASSERT_NE(find(s, "Patient.identifier"), nullptr) << dump(s);
  EXPECT_EQ(find(s, "Patient.identifier")->code, "structure");
}

TEST(Validator, GenderOutsideTheValueSetIsCodeInvalid) {
  IssueSink s = run(R"({"resourceType": "Patient", "gender": "M"})");
  ASSERT_EQ(s.issues().size(), 1u) << dump(s);
  EXPECT_EQ(s.issues()[0].code, "code-invalid");
  EXPECT_EQ(s.issues()[0].expression, "Patient.gender");
}

TEST(Validator, ImpossibleAndMalformedDatesAreValueErrors) {
  for (const char* bad : {"2026-02-30", "2023-02-29", "2025-13-01", "2025-1-01", "01/02/2025", "2025-02-01T10:00:00"}) {
    IssueSink s = run(std::string(R"({"resourceType": "Patient", "birthDate": ")") + bad + "\"}");
    ASSERT_EQ(s.issues().size(), 1u) << bad << "\n" << dump(s);
    EXPECT_EQ(s.issues()[0].code, "value") << bad;
    EXPECT_EQ(s.issues()[0].expression, "Patient.birthDate") << bad;
  }
  for (const char* good : {"2024-02-29", "2000-02-29", "2025", "2025-06"}) {
    IssueSink s = run(std::string(R"({"resourceType": "Patient", "birthDate": ")") + good + "\"}");
    EXPECT_TRUE(s.empty()) << good << "\n" << dump(s);
  }
  // A dateTime with a time needs a zone; an instant needs seconds and a zone.
  EXPECT_FALSE(run(R"({"resourceType": "Patient", "deceasedDateTime": "2025-01-01T10:00:00"})").empty());
  EXPECT_TRUE(run(R"({"resourceType": "Patient", "deceasedDateTime": "2025-01-01T10:00:00+01:00"})").empty());
  EXPECT_FALSE(run(R"({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "issued": "2025-01-01"})").empty());
  EXPECT_FALSE(run(R"({"resourceType": "Patient", "deceasedDateTime": "2025-01-01T24:00:00Z"})").empty());
}

TEST(Validator, SingletonSentAsArrayAndArraySentAsObject) {
  IssueSink s = run(R"({"resourceType": "Patient", "gender": ["female"], "name": {"family": "Smith"}})");
  auto m = by_expression(s);
  EXPECT_EQ(m.size(), 2u) << dump(s);
  EXPECT_EQ(m["Patient.gender"], "structure");
  EXPECT_EQ(m["Patient.name"], "structure");
}

TEST(Validator, UnknownElementsAreRefused) {
  IssueSink s = run(R"({"resourceType": "Patient", "favouriteColour": "blue", "name": [{"famly": "Smith"}]})");
  auto m = by_expression(s);
  EXPECT_EQ(m.size(), 2u) << dump(s);
  EXPECT_EQ(m["Patient.favouriteColour"], "structure");
  EXPECT_EQ(m["Patient.name[0].famly"], "structure");
  EXPECT_NE(find(s, "Patient.favouriteColour")->message.find("unknown element"), std::string::npos);
}

TEST(Validator, EmptyValuesAndNullAreRefused) {
  IssueSink s = run(R"({"resourceType": "Patient", "name": [], "telecom": [{}], "gender": "",
                        "birthDate": null, "active": true})");
  auto m = by_expression(s);
  EXPECT_EQ(m.size(), 4u) << dump(s);
  EXPECT_EQ(m["Patient.name"], "value");
  EXPECT_EQ(m["Patient.telecom[0]"], "value");
  EXPECT_EQ(m["Patient.gender"], "value");
  EXPECT_EQ(m["Patient.birthDate"], "value");
  // Inside an extension, where unknown value types are allowed, emptiness is still caught.
  IssueSink e = run(R"({"resourceType": "Patient", "extension": [{"url": "http://x.org/e", "valueMoney": {}}]})");
  EXPECT_EQ(by_expression(e)["Patient.extension[0].valueMoney"], "value") << dump(e);
}

TEST(Validator, RequiredElementsAndStatusCodes) {
  IssueSink s = run(R"({"resourceType": "Encounter", "class": {"code": "AMB"}})");
  ASSERT_EQ(s.issues().size(), 1u) << dump(s);
  EXPECT_EQ(s.issues()[0].code, "required");
  EXPECT_EQ(s.issues()[0].expression, "Encounter.status");

  IssueSink both = run(R"({"resourceType": "Encounter"})");
  auto m = by_expression(both);
  EXPECT_EQ(m["Encounter.status"], "required");
  EXPECT_EQ(m["Encounter.class"], "required");

  IssueSink sub = run(R"({"resourceType": "Subscription", "status": "on", "reason": "r", "criteria": "c",
                          "channel": {"type": "ftp"}})");
  auto ms = by_expression(sub);
  EXPECT_EQ(ms["Subscription.status"], "code-invalid") << dump(sub);
  EXPECT_EQ(ms["Subscription.channel.type"], "code-invalid") << dump(sub);
}

TEST(Validator, TypesAndChoices) {
  IssueSink s = run(R"({"resourceType": "Patient", "id": "has spaces", "active": "true", "multipleBirthInteger": 1.5,
                        "deceasedBoolean": false, "deceasedDateTime": "2025-01-01", "contained": [{"resourceType": "Patient"}]})");
  auto m = by_expression(s);
  EXPECT_EQ(m["Patient.id"], "value") << dump(s);
  EXPECT_EQ(m["Patient.active"], "value");
  EXPECT_EQ(m["Patient.multipleBirthInteger"], "value");
  EXPECT_EQ(m["Patient.deceasedDateTime"], "structure");  // only one of deceased[x]
  EXPECT_EQ(m["Patient.contained"], "not-supported");
  EXPECT_EQ(m.size(), 5u) << dump(s);
  EXPECT_EQ(by_expression(run(R"({"resourceType": "Patient", "deceasedString": "yes"})"))["Patient.deceasedString"],
            "structure");
  std::string long_id(65, 'a');
  EXPECT_FALSE(run(R"({"resourceType": "Patient", "id": ")" + long_id + "\"}").empty());
  EXPECT_TRUE(run(R"({"resourceType": "Patient", "id": ")" + long_id.substr(1) + "\"}").empty());
}

TEST(Validator, ReferencesAreCheckedForShapeAndTarget) {
  IssueSink s = run(R"({"resourceType": "Flag", "status": "active", "code": {"text": "x"},
                        "subject": {"reference": "Patient"}, "encounter": {"reference": "Observation/1"},
                        "author": {"reference": "#c1"}})");
  auto m = by_expression(s);
  EXPECT_EQ(m["Flag.subject.reference"], "value") << dump(s);
  EXPECT_EQ(m["Flag.encounter.reference"], "value");
  EXPECT_EQ(m["Flag.author.reference"], "not-supported");
  EXPECT_TRUE(run(R"({"resourceType": "Flag", "status": "active", "code": {"text": "x"},
                      "subject": {"reference": "Patient/p1/_history/2"}})").empty());
}

TEST(Validator, MissingResourceTypeOrUnsupportedType) {
  EXPECT_EQ(run(R"({"id": "x"})").issues().at(0).code, "required");
  EXPECT_EQ(run(R"({"resourceType": "Medication"})").issues().at(0).code, "not-supported");
}

// ---- loading errors ---------------------------------------------------------

class BadRules : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("gw_rules_test_" + std::to_string(::getpid()) + "_" +
                                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_ / "rules");
    std::filesystem::copy_file(std::string(GW_SOURCE_DIR) + "/profiles/datatypes.json", dir_ / "datatypes.json");
    // The declared search parameters are part of a profiles directory (issue 13).
    std::filesystem::create_directories(dir_ / "search");
    std::filesystem::copy_file(std::string(GW_SOURCE_DIR) + "/profiles/search/params.json", dir_ / "search" / "params.json");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void write(const std::string& name, std::string_view text) { std::ofstream(dir_ / "rules" / name) << text; }
  std::string load_error() {
    auto v = Validator::load(dir_.string());
    EXPECT_FALSE(v.has_value());
    return v ? "" : v.error().message;
  }
  std::filesystem::path dir_;
};

TEST_F(BadRules, IllFormedJsonNamesTheFile) {
  write("Flag.json", R"({"resourceType": "Flag", "elements": {)");
  EXPECT_NE(load_error().find((dir_ / "rules" / "Flag.json").string()), std::string::npos);
}

TEST_F(BadRules, UnknownRuleKeyNamesFileAndKey) {
  write("Flag.json", R"({"resourceType": "Flag", "elements": {"status": {"type": "code", "mandatory": true}}})");
  std::string e = load_error();
  EXPECT_NE(e.find("Flag.json"), std::string::npos) << e;
  EXPECT_NE(e.find("elements.\"status\""), std::string::npos) << e;
  EXPECT_NE(e.find("mandatory"), std::string::npos) << e;
}

TEST_F(BadRules, UnknownTypeAndTopLevelKey) {
  write("Flag.json", R"({"resourceType": "Flag", "elements": {"status": {"type": "Kode"}}})");
  EXPECT_NE(load_error().find("unknown type 'Kode'"), std::string::npos);
  write("Flag.json", R"({"resourceType": "Flag", "elements": {}, "strict": true})");
  EXPECT_NE(load_error().find("strict"), std::string::npos);
  write("Flag.json", R"({"resourceType": "Patient", "elements": {}})");
  EXPECT_NE(load_error().find("resourceType"), std::string::npos);
  write("Flag.json", R"({"resourceType": "Flag", "elements": {"code.coding.sytem": {"min": 1}, "code": {"type": "CodeableConcept"}}})");
  EXPECT_NE(load_error().find("code.coding.sytem"), std::string::npos);
}

TEST_F(BadRules, UnreadableRulesDirectory) {
  std::filesystem::remove_all(dir_ / "rules");
  EXPECT_NE(load_error().find("rules"), std::string::npos);
}

TEST_F(BadRules, MinimalRulesLoadAndOverrideDatatypeChildren) {
  write("Flag.json", R"({"resourceType": "Flag", "elements": {
    "code": {"min": 1, "type": "CodeableConcept"}, "code.coding": {"min": 1}, "code.coding.system": {"min": 1}}})");
  auto v = Validator::load(dir_.string());
  ASSERT_TRUE(v.has_value()) << v.error().message;
  auto doc = gw::json::parse(R"({"resourceType": "Flag", "code": {"coding": [{"code": "x"}]}})");
  IssueSink s;
  v->validate(*doc, s);
  ASSERT_EQ(s.issues().size(), 1u) << dump(s);
  EXPECT_EQ(s.issues()[0].expression, "Flag.code.coding[0].system");
  // The override did not leak into the shared CodeableConcept definition.
  auto ok = gw::json::parse(R"({"resourceType": "Flag", "code": {"coding": [{"system": "s", "code": "x"}]},
                                "meta": {"tag": [{"code": "x"}]}})");
  IssueSink s2;
  v->validate(*ok, s2);
  EXPECT_TRUE(s2.empty()) << dump(s2);
}

}  // namespace

// ---- the CP-IS plan profile (profiles/rules/CareTeam.json "profiles") --------

namespace {

constexpr std::string_view kPlan = R"({"resourceType": "CareTeam", "status": "active",
  "identifier": [{"system": "https://cpis-gateway.nhs.uk/Id/cpis-plan", "value": "LA372|RMBC-0001|CPP"}],
  "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "342191000000101"}]}],
  "subject": {"reference": "Patient/child-1", "identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919"}},
  "period": {"start": "2026-11-04"},
  "managingOrganization": [{"identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "LA372"}, "display": "Rotherham"}],
  "telecom": [{"system": "phone", "value": "01709 336080", "use": "work", "rank": 1,
               "extension": [{"url": "https://cpis-gateway.nhs.uk/StructureDefinition/contact-purpose", "valueCode": "emergency-duty"}]}]})";

// kPlan with one top-level element replaced (or removed when value is empty).
std::string plan_with(const char* element, std::string_view value) {
  auto d = gw::json::parse(kPlan);
  gw::json::remove(*d, element);
  if (!value.empty()) {
    auto v = gw::json::parse(value);
    gw::json::Value copy;
    copy.CopyFrom(*v, d->GetAllocator());
    gw::json::set(*d, element, std::move(copy), d->GetAllocator());
  }
  return gw::json::to_string(*d);
}

}  // namespace

TEST(CpisPlanProfile, AWholePlanPasses) {
  IssueSink s = run(kPlan);
  EXPECT_TRUE(s.empty()) << dump(s);
}

TEST(CpisPlanProfile, EachMissingPartIsReportedAtItsPath) {
  struct Case {
    const char* element;
    std::string_view value;
    const char* expression;
    const char* code;
  };
  const Case cases[] = {
      {"subject", "", "CareTeam.subject", "required"},
      {"subject", R"({"reference": "Patient/child-1"})", "CareTeam.subject.identifier", "required"},
      {"subject", R"({"identifier": {"system": "https://example.org/local", "value": "X1"}})",
       "CareTeam.subject.identifier.system", "code-invalid"},
      {"subject", R"({"identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765918"}})",
       "CareTeam.subject.identifier.value", "value"},
      {"period", "", "CareTeam.period", "required"},
      {"period", R"({"end": "2026-12-01"})", "CareTeam.period.start", "required"},
      {"period", R"({"start": "2026-11-04", "end": "2026-11-03"})", "CareTeam.period.end", "invariant"},
      {"managingOrganization", "", "CareTeam.managingOrganization", "required"},
      {"managingOrganization", R"([{"display": "Rotherham"}])", "CareTeam.managingOrganization[0].identifier",
       "required"},
      {"managingOrganization", R"([{"identifier": {"system": "https://example.org/la", "value": "LA372"}}])",
       "CareTeam.managingOrganization[0].identifier.system", "code-invalid"},
      {"telecom", "", "CareTeam.telecom", "required"},
      // An office-hours number alone is not enough: out of hours is when the plan is needed.
      {"telecom", R"([{"system": "phone", "value": "01709 1", "extension": [{"url": "https://cpis-gateway.nhs.uk/StructureDefinition/contact-purpose", "valueCode": "office-hours"}]}])",
       "CareTeam.telecom", "required"},
      {"telecom", R"([{"system": "phone", "extension": [{"url": "https://cpis-gateway.nhs.uk/StructureDefinition/contact-purpose", "valueCode": "emergency-duty"}]}])",
       "CareTeam.telecom", "required"},
  };
  for (const auto& c : cases) {
    IssueSink s = run(plan_with(c.element, c.value));
    const gw::Issue* i = find(s, c.expression);
    ASSERT_NE(i, nullptr) << c.expression << " not reported for " << c.element << "=" << c.value << "\n" << dump(s);
    EXPECT_EQ(i->code, c.code) << c.expression << "\n" << dump(s);
    EXPECT_EQ(s.issues().size(), 1u) << c.expression << "\n" << dump(s);
  }
}

TEST(CpisPlanProfile, EndOnTheStartDayAndEndedPlansAreValid) {
  EXPECT_TRUE(run(plan_with("period", R"({"start": "2026-11-04", "end": "2026-11-04"})")).empty());
  EXPECT_TRUE(run(plan_with("period", R"({"start": "2020-01-01", "end": "2021-01-01"})")).empty());
}

TEST(CpisPlanProfile, ACareTeamWithoutAPlanCategoryKeepsTheBaseRules) {
  std::string team = plan_with("category", R"([{"coding": [{"system": "http://snomed.info/sct", "code": "310210009"}]}])");
  auto d = gw::json::parse(team);
  for (const char* k : {"subject", "period", "managingOrganization", "telecom"}) gw::json::remove(*d, k);
  IssueSink s = run(gw::json::to_string(*d));
  EXPECT_TRUE(s.empty()) << dump(s);
  // The same code under another system is not a plan either.
  std::string other = plan_with("category", R"([{"coding": [{"system": "http://example.org", "code": "342191000000101"}]}])");
  auto o = gw::json::parse(other);
  gw::json::remove(*o, "telecom");
  EXPECT_TRUE(run(gw::json::to_string(*o)).empty());
}

TEST(CpisPlanProfile, EveryPlanTypeIsChecked) {
  for (const char* code : {"764841000000100", "818901000000100"}) {
    std::string cat = std::string(R"([{"coding": [{"system": "http://snomed.info/sct", "code": ")") + code + "\"}]}]";
    auto d = gw::json::parse(plan_with("category", cat));
    gw::json::remove(*d, "telecom");
    IssueSink s = run(gw::json::to_string(*d));
    EXPECT_NE(find(s, "CareTeam.telecom"), nullptr) << code << "\n" << dump(s);
  }
}

TEST_F(BadRules, ProfileMistakesNameTheFileAndKey) {
  const char* base = R"({"resourceType": "Flag", "elements": {"code": {"type": "CodeableConcept"}, "period": {"type": "Period"}, "status": {"type": "code"}},
    "profiles": [%s]})";
  auto with = [&](std::string_view profile) {
    std::string t(base);
    t.replace(t.find("%s"), 2, profile);
    write("Flag.json", t);
    return load_error();
  };
  std::string e = with(R"({"name": "p", "when": {"element": "status", "system": "s", "codes": ["c"]}})");
  EXPECT_NE(e.find("profiles[0].when.element"), std::string::npos) << e;
  e = with(R"({"name": "p", "when": {"element": "code", "system": "s", "codes": ["c"]},
               "invariants": [{"check": "start-before-end", "element": "period", "message": "m"}]})");
  EXPECT_NE(e.find("profiles[0].invariants[0].check"), std::string::npos) << e;
  e = with(R"({"name": "p", "when": {"element": "code", "system": "s", "codes": ["c"]}, "elements": {"nope.x": {"min": 1}}})");
  EXPECT_NE(e.find("nope"), std::string::npos) << e;
  e = with(R"({"name": "p", "when": {"element": "code", "system": "s", "codes": []}})");
  EXPECT_NE(e.find("profiles[0].when.codes"), std::string::npos) << e;
}
