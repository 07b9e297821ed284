// References that travel (issue 13): what the gateway sends names its
// subject Patient by NHS number as well as by gateway id, and names nobody
// else it merely mentions.
#include <gtest/gtest.h>

#include <map>

#include "gateway/events/patient_refs.h"

namespace gw::events {
namespace {

class PatientsLookup final : public Lookup {
 public:
  std::optional<json::Document> patient(const std::string& id) override {
    ++asked;
    auto it = patients.find(id);
    if (it == patients.end()) return std::nullopt;
    return std::move(*json::parse(it->second));
  }
  bool in_caseload(const std::string&, const std::string&) override { return false; }
  std::map<std::string, std::string> patients;
  int asked = 0;
};

std::string patient_with(const std::string& nhs) {
  return R"({"resourceType":"Patient","identifier":[{"system":"https://fhir.nhs.uk/Id/local","value":"L1"},
            {"system":"https://fhir.nhs.uk/Id/nhs-number","value":")" + nhs + R"("}]})";
}

// The identifier added to `member` of the resource (or, for an array, its `index`th element).
std::pair<std::string, std::string> identifier_of(const json::Value& resource, const char* member, int index = -1) {
  const json::Value* ref = json::member(resource, member);
  if (ref && index >= 0) ref = &(*ref)[static_cast<json::SizeType>(index)];
  const json::Value* id = ref ? json::member(*ref, "identifier") : nullptr;
  if (!id || !id->IsObject()) return {};
  return {std::string(json::get_string(*id, "system").value_or("")),
          std::string(json::get_string(*id, "value").value_or(""))};
}

TEST(PatientRefs, TheSubjectReferenceCarriesTheNhsNumberInEveryForm) {
  PatientsLookup lookup;
  lookup.patients["p1"] = patient_with("9990000018");
  lookup.patients["p2"] = patient_with("9990000026");
  lookup.patients["p3"] = patient_with("9990000034");
  auto flag = json::parse(R"({"resourceType":"Flag","subject":{"reference":"Patient/p1"}})");
  auto enc = json::parse(R"({"resourceType":"Encounter","subject":{"reference":"https://gw.example/fhir/Patient/p2/_history/4"}})");
  auto comm = json::parse(R"({"resourceType":"Communication","subject":{"reference":"Patient/p3"}})");
  ASSERT_TRUE(flag && enc && comm);
  EXPECT_EQ(identify_subjects(*flag, flag->GetAllocator(), lookup), 1);
  EXPECT_EQ(identify_subjects(*enc, enc->GetAllocator(), lookup), 1);
  EXPECT_EQ(identify_subjects(*comm, comm->GetAllocator(), lookup), 1);
  const std::string nhs_system = "https://fhir.nhs.uk/Id/nhs-number";
  EXPECT_EQ(identifier_of(*flag, "subject"), std::make_pair(nhs_system, std::string("9990000018")));
  EXPECT_EQ(identifier_of(*enc, "subject"), std::make_pair(nhs_system, std::string("9990000026")));
  EXPECT_EQ(identifier_of(*comm, "subject"), std::make_pair(nhs_system, std::string("9990000034")));
  // The reference itself is kept as it was.
  EXPECT_EQ(json::get_string((*flag)["subject"], "reference").value_or(""), "Patient/p1");
}

TEST(PatientRefs, PatientAndBeneficiaryArraysAreIdentifiedToo) {
  PatientsLookup lookup;
  lookup.patients["a"] = patient_with("9990000018");
  lookup.patients["b"] = patient_with("9990000026");
  auto cov = json::parse(R"({"resourceType":"Coverage","beneficiary":{"reference":"Patient/a"}})");
  auto ae = json::parse(R"({"resourceType":"X","patient":[{"reference":"Patient/a"},{"reference":"Patient/b"}]})");
  ASSERT_TRUE(cov && ae);
  EXPECT_EQ(identify_subjects(*cov, cov->GetAllocator(), lookup), 1);
  EXPECT_EQ(identify_subjects(*ae, ae->GetAllocator(), lookup), 2);
  EXPECT_EQ(identifier_of(*cov, "beneficiary").second, "9990000018");
  EXPECT_EQ(identifier_of(*ae, "patient", 0).second, "9990000018");
  EXPECT_EQ(identifier_of(*ae, "patient", 1).second, "9990000026");
}

TEST(PatientRefs, NothingIsAddedWhereItWouldBeWrongOrNotKnown) {
  PatientsLookup lookup;
  lookup.patients["p1"] = patient_with("9990000018");
  lookup.patients["nonhs"] = R"({"resourceType":"Patient","identifier":[{"system":"https://fhir.nhs.uk/Id/local","value":"L"}]})";
  // An identifier already there is the sender's and is kept.
  auto own = json::parse(R"({"resourceType":"Flag","subject":{"reference":"Patient/p1","identifier":{"value":"theirs"}}})");
  // A Patient without an NHS number, one not stored, a reference to another type.
  auto nonhs = json::parse(R"({"resourceType":"Flag","subject":{"reference":"Patient/nonhs"}})");
  auto gone = json::parse(R"({"resourceType":"Flag","subject":{"reference":"Patient/gone"}})");
  auto group = json::parse(R"({"resourceType":"Flag","subject":{"reference":"Group/p1"}})");
  auto lookalike = json::parse(R"({"resourceType":"Flag","subject":{"reference":"RelatedPatient/p1"}})");
  // Others a resource mentions are not its subject: their NHS numbers stay out.
  auto linked = json::parse(R"({"resourceType":"Patient","link":[{"other":{"reference":"Patient/p1"}}],
                                "generalPractitioner":[{"reference":"Patient/p1"}]})");
  ASSERT_TRUE(own && nonhs && gone && group && lookalike && linked);
  for (auto* d : {&*own, &*nonhs, &*gone, &*group, &*lookalike, &*linked}) {
    std::string before = json::to_string(*d);
    EXPECT_EQ(identify_subjects(*d, d->GetAllocator(), lookup), 0) << before;
    EXPECT_EQ(json::to_string(*d), before);
  }
  EXPECT_EQ(json::to_string(*linked).find("9990000018"), std::string::npos);
}

TEST(PatientRefs, TheTextFormIsUnchangedUnlessSomethingWasAdded) {
  PatientsLookup lookup;
  lookup.patients["p1"] = patient_with("9990000018");
  std::string untouched = R"({"resourceType":"Flag", "subject":{"reference":"Group/g"}})";
  EXPECT_EQ(identify_subjects_text(untouched, lookup), untouched);  // not even re-serialised
  EXPECT_EQ(identify_subjects_text("not json", lookup), "not json");
  std::string changed = identify_subjects_text(R"({"resourceType":"Flag","subject":{"reference":"Patient/p1"}})", lookup);
  auto d = json::parse(changed);
  ASSERT_TRUE(d.has_value()) << changed;
  EXPECT_EQ(identifier_of(*d, "subject").second, "9990000018");
}

}  // namespace
}  // namespace gw::events
