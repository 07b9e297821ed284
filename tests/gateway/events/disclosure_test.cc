// The linked-children and camhs-and-gp routes and the derived disclosure,
// decided against a fake Lookup (no store, no sockets): who hears, about
// which children, and that only the shareable lines leave.
#include "gateway/events/disclosure.h"

#include <gtest/gtest.h>

#include <map>
#include <set>


namespace gw::events {
namespace {

// A family: parent p (NHS 9990079196) with children c1, c2; who cares for whom.
class FakeLookup final : public Lookup {
 public:
  std::map<std::string, std::string> nhs = {{"p", "9990079196"}, {"c1", "9990237573"}, {"c2", "9990316767"}};
  std::map<std::string, std::set<std::string>> caseload;  // patient -> ODS codes
  std::set<std::string> pregnant_ids;
  std::set<std::pair<std::string, std::string>> camhs;
  std::map<std::string, std::string> resources;  // "Type/id" -> JSON

  std::optional<json::Document> patient(const std::string& id) override {
    auto it = nhs.find(id);
    if (it == nhs.end()) return std::nullopt;
    return *json::parse(R"({"resourceType":"Patient","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":")" +
                        it->second + "\"}]}");
  }
  bool in_caseload(const std::string& id, const std::string& ods) override { return caseload[id].count(ods) > 0; }
  std::vector<std::string> linked_children(const std::string& parent) override {
    return parent == "p" ? std::vector<std::string>{"c1", "c2"} : std::vector<std::string>{};
  }
  bool pregnant(const std::string& id) override { return pregnant_ids.count(id) > 0; }
  bool holds_camhs_care(const std::string& id, const std::string& ods) override { return camhs.count({id, ods}) > 0; }
  std::optional<json::Document> resource(const std::string& type, const std::string& id) override {
    auto it = resources.find(type + "/" + id);
    if (it == resources.end()) return std::nullopt;
    return *json::parse(it->second);
  }
};

Topic topic(const std::string& name) {
  auto t = Topics::load(std::string(GW_SOURCE_DIR) + "/profiles");
  EXPECT_TRUE(t.has_value());
  return *t->by_name(name);
}

// The shipped policy: what each role's notifications may reveal.
const security::Policy& policy() {
  static const security::Policy p = std::move(*security::Policy::load(std::string(GW_SOURCE_DIR) + "/profiles"));
  return p;
}

SubscriptionSpec sub(const std::string& role, const std::string& ods) {
  SubscriptionSpec s;
  s.id = "sub-" + role;
  s.owner = security::Principal{ods, role, "system"};
  s.content = "full-resource";
  s.has_owner = true;
  s.labels = policy().label_view(s.owner);
  return s;
}

store::ChangeRow change(const std::string& type, const std::string& interaction = "create") {
  store::ChangeRow c;
  c.seq = 7;
  c.type = type;
  c.id = "focus-1";
  c.version = interaction == "create" ? 1 : 2;
  c.interaction = interaction;
  c.ts = "2026-11-08T02:00:00.000Z";
  return c;
}

const char* kSignature = R"({"resourceType":"CarePlan",
  "meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"PSY"}]},
  "status":"active","intent":"plan","title":"Relapse signature","created":"2026-11-03",
  "category":[{"coding":[{"system":"https://cpis-gateway.nhs.uk/CodeSystem/care-plan-category","code":"relapse-prevention"}]}],
  "subject":{"reference":"Patient/p"},
  "author":{"type":"Practitioner","identifier":{"system":"urn:cpis-gateway:camhs:care-professional:RXE","value":"P77"},"display":"A. Worker"},
  "careTeam":[{"reference":"CareTeam/team-1"}],
  "activity":[{"id":"indicator-1","detail":{"code":{"coding":[{"system":"https://cpis-gateway.nhs.uk/CodeSystem/camhs","code":"relapse-indicator"}],"text":"Stops taking medication"},"status":"in-progress","description":"Stops taking medication"}},
              {"id":"action","detail":{"kind":"CommunicationRequest","status":"not-started","description":"Call the coordinator"}}]})";

const char* kObserved = R"({"resourceType":"Observation",
  "meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"SUD"}]},
  "status":"final","category":[{"coding":[{"system":"https://cpis-gateway.nhs.uk/CodeSystem/observation-category","code":"relapse-indicator"}]}],
  "code":{"text":"Returns to using"},"subject":{"reference":"Patient/p"},"effectiveDateTime":"2026-11-20",
  "basedOn":[{"reference":"CarePlan/plan-1"}],
  "performer":[{"type":"Practitioner","display":"B. Nurse"},{"type":"Organization","identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"RXE"}}],
  "note":[{"text":"Disclosed heroin use at home visit"}]})";

const char* kSpell = R"({"resourceType":"Encounter",
  "meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"PSY"},{"system":"http://terminology.hl7.org/CodeSystem/v3-Confidentiality","code":"R"}]},
  "status":"finished","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"IMP"},
  "serviceType":{"coding":[{"system":"https://cpis-gateway.nhs.uk/CodeSystem/service","code":"camhs-tier4"}]},
  "subject":{"reference":"Patient/p"},"period":{"start":"2026-09-20","end":"2026-11-05"},
  "hospitalization":{"dischargeDisposition":{"text":"HOME"}},"location":[{"location":{"display":"Adolescent Unit"}}],
  "serviceProvider":{"identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"RXX"}}})";

json::Document doc(const char* text) { return *json::parse(text); }

std::set<std::string> about_nhs(const Disclosure& d) {
  std::set<std::string> out;
  if (!d.resource.HasMember("about")) return out;
  for (const auto& a : d.resource["about"].GetArray()) out.insert(a["identifier"]["value"].GetString());
  return out;
}

TEST(LinkedChildren, EachServiceIsToldAboutTheChildrenItCaresForOnly) {
  FakeLookup l;
  l.caseload = {{"c1", {"GP1", "SN1"}}, {"c2", {"GP1", "HV1"}}};
  Topic t = topic("relapse-indicator");
  auto plan = doc(kSignature);
  struct Case {
    std::string role, ods;
    std::set<std::string> children;
  };
  for (const Case& c : std::vector<Case>{{"gp", "GP1", {"9990237573", "9990316767"}},
                                         {"school-nursing", "SN1", {"9990237573"}},
                                         {"health-visiting", "HV1", {"9990316767"}}}) {
    Decision d = decide(t, sub(c.role, c.ods), change("CarePlan"), plan, l);
    ASSERT_TRUE(d.notify) << c.role << " " << d.reason;
    EXPECT_TRUE(d.disclose);
    EXPECT_EQ(d.content, "full-resource");  // a disclosure has no labels to lower it for
    auto disc = derive_disclosure(t, sub(c.role, c.ods), change("CarePlan"), plan, d, l);
    ASSERT_TRUE(disc.has_value());
    EXPECT_EQ(about_nhs(*disc), c.children) << c.role;
  }
  // Caring for nobody in the family: not told.
  Decision other = decide(t, sub("health-visiting", "HV9"), change("CarePlan"), plan, l);
  EXPECT_FALSE(other.notify);
  EXPECT_EQ(other.reason, "caseload");
}

TEST(LinkedChildren, AnOrganizationFilterIsMetByTheCaringServiceOfAChild) {
  FakeLookup l;
  l.caseload = {{"c2", {"HV1"}}};
  Topic t = topic("relapse-indicator");
  auto plan = doc(kSignature);
  SubscriptionSpec own = sub("health-visiting", "HV1");
  own.filters.push_back(Filter{"CarePlan", "organization", {"HV1"}});
  EXPECT_TRUE(decide(t, own, change("CarePlan"), plan, l).notify);
  SubscriptionSpec elsewhere = sub("health-visiting", "HV1");
  elsewhere.filters.push_back(Filter{"CarePlan", "organization", {"HV2"}});
  EXPECT_EQ(decide(t, elsewhere, change("CarePlan"), plan, l).reason, "filter");
}

TEST(LinkedChildren, MidwiferyOnlyWhileCaringForThePregnantParent) {
  FakeLookup l;
  l.caseload = {{"p", {"MW1"}}};
  Topic t = topic("relapse-indicator");
  auto plan = doc(kSignature);
  EXPECT_FALSE(decide(t, sub("midwifery", "MW1"), change("CarePlan"), plan, l).notify);
  l.pregnant_ids.insert("p");
  Decision d = decide(t, sub("midwifery", "MW1"), change("CarePlan"), plan, l);
  ASSERT_TRUE(d.notify);
  EXPECT_TRUE(d.pregnancy);
  EXPECT_TRUE(d.concerned.empty());
  // Caring for the pregnant parent counts for midwifery only.
  EXPECT_FALSE(decide(t, sub("health-visiting", "MW1"), change("CarePlan"), plan, l).notify);
}

TEST(Disclosure, CarriesTheShareableLinesAndNothingOfTheRecord) {
  FakeLookup l;
  l.caseload = {{"c1", {"GP1"}}};
  l.resources["CareTeam/team-1"] = R"({"resourceType":"CareTeam","name":"Adult MH Team","telecom":[{"system":"phone","value":"01709 000000"}],
    "meta":{"security":[{"code":"PSY"}]},"participant":[{"member":{"display":"A. Worker"}}]})";
  l.resources["CarePlan/plan-1"] = kSignature;
  Topic t = topic("relapse-indicator");
  auto plan = doc(kSignature);
  Decision d = decide(t, sub("gp", "GP1"), change("CarePlan"), plan, l);
  auto disc = derive_disclosure(t, sub("gp", "GP1"), change("CarePlan"), plan, d, l);
  ASSERT_TRUE(disc.has_value());
  std::string text = json::to_string(disc->resource);
  for (const char* want : {"Relapse signature recorded on 2026-11-03", "Indicator: Stops taking medication",
                           "Agreed action: Call the coordinator", "Contact: A. Worker, Adult MH Team, 01709 000000",
                           "\"recipient\":[{\"type\":\"Organization\",\"identifier\":{\"system\":\"https://fhir.nhs.uk/Id/ods-organization-code\",\"value\":\"GP1\"}}]"})
    EXPECT_NE(text.find(want), std::string::npos) << want << " in " << text;
  EXPECT_EQ(disc->id, "disclosure-sub-gp-7");
  EXPECT_EQ(disc->about, (std::vector<std::string>{"p", "c1"}));
  for (const char* leak : {"PSY", "security", "CarePlan", "careTeam", "Patient/p\"", "9990316767"})
    EXPECT_EQ(text.find(leak), std::string::npos) << leak << " in " << text;

  // An observed indicator: its note stays behind; the contact comes from the signature's team.
  auto obs = doc(kObserved);
  Decision od = decide(t, sub("gp", "GP1"), change("Observation"), obs, l);
  ASSERT_TRUE(od.notify);
  auto od_disc = derive_disclosure(t, sub("gp", "GP1"), change("Observation"), obs, od, l);
  ASSERT_TRUE(od_disc.has_value());
  std::string otext = json::to_string(od_disc->resource);
  EXPECT_NE(otext.find("Indicator observed on 2026-11-20: Returns to using"), std::string::npos) << otext;
  EXPECT_NE(otext.find("Contact: B. Nurse, Adult MH Team, 01709 000000"), std::string::npos) << otext;
  for (const char* leak : {"heroin", "note", "SUD", "Observation", "RXE"})
    EXPECT_EQ(otext.find(leak), std::string::npos) << leak << " in " << otext;
}

TEST(Disclosure, OtherCarePlansAndObservationsOfTheParentDoNotFire) {
  FakeLookup l;
  l.caseload = {{"c1", {"GP1"}}};
  Topic t = topic("relapse-indicator");
  std::string mhs008 = kSignature;
  mhs008.replace(mhs008.find("relapse-prevention"), 18, "treatment");
  auto plan = doc(mhs008.c_str());
  Decision d = decide(t, sub("gp", "GP1"), change("CarePlan"), plan, l);
  EXPECT_FALSE(d.notify);
  EXPECT_EQ(d.reason, "not-triggered");
  // And a focus of a kind whose shareable content is unknown is never disclosed.
  EXPECT_FALSE(shareable_lines("CarePlan", plan, l).has_value());
}

TEST(CamhsAndGp, Tier4DischargeGoesToTheCamhsTeamAsTheSpellAndToTheGpAsANotice) {
  FakeLookup l;
  l.caseload = {{"p", {"GP1"}}};
  l.camhs = {{"p", "CAMHS1"}};
  Topic t = topic("tier4-discharge");
  auto spell = doc(kSpell);
  Decision c = decide(t, sub("camhs", "CAMHS1"), change("Encounter", "update"), spell, l);
  ASSERT_TRUE(c.notify) << c.reason;
  EXPECT_FALSE(c.disclose);  // CAMHS may see PSY: the spell itself
  EXPECT_EQ(c.content, "full-resource");
  Decision g = decide(t, sub("gp", "GP1"), change("Encounter", "update"), spell, l);
  ASSERT_TRUE(g.notify) << g.reason;
  EXPECT_TRUE(g.disclose);
  auto disc = derive_disclosure(t, sub("gp", "GP1"), change("Encounter", "update"), spell, g, l);
  ASSERT_TRUE(disc.has_value());
  std::string text = json::to_string(disc->resource);
  EXPECT_NE(text.find("Discharged from Tier 4 CAMHS inpatient care on 2026-11-05"), std::string::npos) << text;
  EXPECT_NE(text.find("\"subject\":{\"reference\":\"Patient/p\""), std::string::npos) << text;
  for (const char* leak : {"HOME", "Adolescent", "PSY", "2026-09-20"})
    EXPECT_EQ(text.find(leak), std::string::npos) << leak << " in " << text;
  // A CAMHS team that does not hold the referral, and any other role: not told.
  EXPECT_FALSE(decide(t, sub("camhs", "CAMHS2"), change("Encounter", "update"), spell, l).notify);
  // An open spell, or another service's Encounter, is not a Tier 4 discharge.
  std::string open = kSpell;
  open.replace(open.find("\"finished\""), 10, "\"in-progress\"");
  EXPECT_EQ(decide(t, sub("gp", "GP1"), change("Encounter"), doc(open.c_str()), l).reason, "focus-condition");
  std::string no_end = kSpell;
  no_end.replace(no_end.find(",\"end\":\"2026-11-05\""), 19, "");
  EXPECT_EQ(decide(t, sub("gp", "GP1"), change("Encounter"), doc(no_end.c_str()), l).reason, "focus-condition");
  std::string other = kSpell;
  other.replace(other.find("camhs-tier4"), 11, "camhs");
  EXPECT_EQ(decide(t, sub("gp", "GP1"), change("Encounter"), doc(other.c_str()), l).reason, "not-triggered");  // codes are trigger conditions
}

}  // namespace
}  // namespace gw::events
