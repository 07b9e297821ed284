// $chronology (issue 15 part 5) with every sensitivity label for every role:
// a child's ED attendances carrying no label, PSY, SUD, STD, HIV and SEX, a
// Tier 4 spell (PSY), a parent's relapse-prevention plan (PSY), a CP-IS plan
// and a concern. For each of the fifteen roles the answer must list exactly
// what the policy data lets it read (by reference), a display-only summary
// where profiles/operations/chronology.json gives that role one — never for
// sexual-health content — and nothing else. Each call is audited.
#include "gateway/safeguarding/chronology.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "gateway/common/json.h"
#include "gateway/security/policy.h"
#include "gateway/security/principal.h"
#include "tests/support/flows_kit.h"
#include "tests/support/plan_seed.h"
#include "tests/support/test_gateway.h"
#include "tests/support/test_store.h"
#include "tests/support/user_tokens_kit.h"

namespace gw {
namespace {

const std::vector<std::string> kRoles = {"local-authority", "unscheduled-care", "gp", "health-visiting", "midwifery",
                                         "school-nursing", "paediatric-liaison", "lac-health", "camhs",
                                         "adult-mental-health", "substance-misuse", "sexual-health", "commissioner",
                                         "integration", "admin"};
// Who writes content with each label (a role that may see it), and the day it happened.
const std::vector<std::tuple<std::string, std::string, std::string>> kLabels = {
    {"", "integration", "2026-10-01"},  {"PSY", "camhs", "2026-10-02"},        {"SUD", "substance-misuse", "2026-10-03"},
    {"STD", "sexual-health", "2026-10-04"}, {"HIV", "sexual-health", "2026-10-05"}, {"SEX", "sexual-health", "2026-10-06"}};

std::string meta(const std::string& label) {
  return label.empty() ? std::string()
                       : R"("meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":")" +
                             label + R"("}]},)";
}

std::string ed(const std::string& label, const std::string& patient, const std::string& day) {
  return R"({"resourceType":"Encounter",)" + meta(label) +
         R"("status":"finished","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"EMER"},)"
         R"("subject":{"reference":"Patient/)" + patient + R"("},"period":{"start":")" + day + R"(T10:00:00+00:00"},)"
         R"("serviceProvider":{"identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"RXX"}}})";
}

struct Entry {
  std::string category, date, reference, display;
};

std::vector<Entry> entries_of(const std::string& bundle) {
  std::vector<Entry> out;
  auto d = json::parse(bundle);
  if (!d) return out;
  const json::Value& list = (*d)["entry"][0]["resource"];
  EXPECT_STREQ(list["resourceType"].GetString(), "List");
  EXPECT_STREQ(list["code"]["coding"][0]["code"].GetString(), "chronology");
  if (!list.HasMember("entry")) return out;
  for (const auto& e : list["entry"].GetArray()) {
    Entry x{e["flag"]["coding"][0]["code"].GetString(), e["date"].GetString(), "", e["item"]["display"].GetString()};
    if (e["item"].HasMember("reference")) x.reference = e["item"]["reference"].GetString();
    out.push_back(std::move(x));
  }
  return out;
}

int64_t audit_rows(const std::string& db_path, const std::string& like) {
  return test::store_scalar(db_path, "SELECT count(*) FROM audit WHERE action = 'operation' AND entity LIKE '" + like + "'");
}

std::vector<std::pair<std::string, std::string>> person(const std::string& role) {
  return {test::user_header(role), {"X-Break-Glass-Reason", "Chronology reviewed for the label-matrix test"}};
}

TEST(Chronology, EveryLabelForEveryRole) {
  test::InProcessGateway gw;
  const std::string profiles = std::string(GW_SOURCE_DIR) + "/profiles";
  auto policy = security::Policy::load(profiles).value();
  auto rules = safeguarding::ChronologyRules::load(profiles).value();
  auto integ = gw.client("integration");
  const std::string child_nhs = test::nhs_number_from("999050185"), parent_nhs = test::nhs_number_from("999050222");
  std::string child = test::create_patient(integ, child_nhs, R"("birthDate":"2019-05-06")");
  std::string parent = test::create_patient(integ, parent_nhs);
  test::create_family_link(integ, child, child_nhs, parent_nhs);
  auto la = gw.client("local-authority");
  test::PlanSeed plan;
  plan.start = "2026-03-01";
  test::create_plan(la, child, child_nhs, plan);
  std::map<std::string, std::string> ed_ids;  // label -> Encounter id
  for (const auto& [label, author, day] : kLabels) {
    auto c = gw.client(author);
    ed_ids[label] = test::create_resource(c, "Encounter", ed(label, child, day));
  }
  auto camhs = gw.client("camhs");
  std::string tier4 = test::create_resource(
      camhs, "Encounter",
      R"({"resourceType":"Encounter",)" + meta("PSY") +
          R"("status":"finished","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"IMP"},)"
          R"("serviceType":{"coding":[{"system":"https://cpis-gateway.nhs.uk/CodeSystem/service","code":"camhs-tier4"}]},)"
          R"("subject":{"reference":"Patient/)" + child + R"("},"period":{"start":"2026-08-01","end":"2026-09-15"}})");
  std::string relapse = test::create_resource(
      camhs, "CarePlan",
      R"({"resourceType":"CarePlan",)" + meta("PSY") +
          R"("status":"active","intent":"plan","category":[{"coding":[{"system":"https://cpis-gateway.nhs.uk/CodeSystem/care-plan-category","code":"relapse-prevention"}]}],)"
          R"("subject":{"reference":"Patient/)" + parent + R"("},"created":"2026-07-20"})");
  auto gp = gw.client("gp");
  std::string concern = test::create_resource(
      gp, "Flag",
      R"({"resourceType":"Flag","status":"active","code":{"text":"Safeguarding concern"},"subject":{"reference":"Patient/)" +
          child + R"("},"period":{"start":"2026-07-01"}})");
  ASSERT_FALSE(tier4.empty());
  ASSERT_FALSE(relapse.empty());
  ASSERT_FALSE(concern.empty());

  int calls = 0;
  for (const auto& role : kRoles) {
    SCOPED_TRACE(role);
    auto c = gw.client(role);
    // A person, with a break-glass reason (most of these organisations do
    // not have the child on their caseload; break_glass_test.cc covers that rule).
    auto r = c.request("GET", "/fhir/Patient/" + child + "/$chronology", "", person(role));
    ASSERT_TRUE(r.has_value());
    ++calls;
    security::Principal who{"X", role, "test"};
    if (!policy.allows_operation(who, "chronology")) {
      EXPECT_EQ(r->status, 403) << r->body;
      continue;
    }
    ASSERT_EQ(r->status, 200) << r->body;
    auto entries = entries_of(r->body);
    auto hidden = policy.hidden_labels(who);
    auto find = [&](const std::string& category, const std::string& date_prefix) -> const Entry* {
      for (const auto& e : entries)
        if (e.category == category && e.date.rfind(date_prefix, 0) == 0) return &e;
      return nullptr;
    };
    // What the policy data says this role gets for one resource.
    auto expect = [&](const std::string& what, const std::string& category, const std::string& type, const std::string& id,
                      const std::string& label, const Entry* e) {
      bool readable = policy.allows(who, type, "read") &&
                      (label.empty() || std::find(hidden.begin(), hidden.end(), label) == hidden.end());
      auto s = rules.summaries.find(category);
      bool summary = !readable && s != rules.summaries.end() &&
                     std::find(s->second.roles.begin(), s->second.roles.end(), role) != s->second.roles.end() &&
                     std::find(rules.never_summarised.begin(), rules.never_summarised.end(), label) ==
                         rules.never_summarised.end();
      if (readable) {
        ASSERT_NE(e, nullptr) << what << " should be listed with its reference";
        EXPECT_EQ(e->reference, type + "/" + id) << what;
      } else if (summary) {
        ASSERT_NE(e, nullptr) << what << " should be a display-only summary";
        EXPECT_TRUE(e->reference.empty()) << what << " must not point at what the role cannot read";
        EXPECT_EQ(e->display, s->second.text) << what;
      } else {
        EXPECT_EQ(e, nullptr) << what << " must not be listed at all";
      }
    };
    for (const auto& [label, author, day] : kLabels)
      expect("ED attendance labelled '" + label + "'", "ed-attendance", "Encounter", ed_ids[label], label,
             find("ed-attendance", day));
    expect("Tier 4 spell", "tier4-spell", "Encounter", tier4, "PSY", find("tier4-spell", "2026-09-15"));
    expect("parent's relapse plan", "parent-relapse-plan", "CarePlan", relapse, "PSY", find("parent-relapse-plan", "2026-07-20"));
    expect("concern", "safeguarding-concern", "Flag", concern, "", find("safeguarding-concern", "2026-07-01"));
    const Entry* start = find("cpis-plan-start", "2026-03-01");
    if (policy.allows(who, "CareTeam", "read")) {
      EXPECT_NE(start, nullptr);
    }
    // Newest first.
    for (size_t i = 1; i < entries.size(); ++i) EXPECT_GE(entries[i - 1].date, entries[i].date);
    // A GP never learns of a sexual-health attendance, in any form.
    if (role == "gp") {
      for (const char* day : {"2026-10-04", "2026-10-05", "2026-10-06"}) {
        EXPECT_EQ(find("ed-attendance", day), nullptr);
      }
      EXPECT_EQ(r->body.find(ed_ids["STD"]), std::string::npos);
    }
  }
  // By NHS number, and an unknown child.
  auto c = gw.client("health-visiting");
  auto by_id = c.request("GET", "/fhir/Patient/$chronology?identifier=https://fhir.nhs.uk/Id/nhs-number%7C" + child_nhs, "",
                         person("health-visiting"));
  ASSERT_TRUE(by_id.has_value());
  EXPECT_EQ(by_id->status, 200) << by_id->body;
  EXPECT_NE(by_id->body.find("Patient/" + child), std::string::npos);
  auto bad = c.request("GET", "/fhir/Patient/$chronology?identifier=https://fhir.nhs.uk/Id/nhs-number%7C9990500003", "",
                       person("health-visiting"));
  EXPECT_EQ(bad->status, 400);
  auto unknown = c.request("GET", "/fhir/Patient/no-such-child/$chronology", "", person("health-visiting"));
  EXPECT_EQ(unknown->status, 404);
  calls += 3;
  // Every call audited (the 403s included), with no identifier in the text.
  gw.store().close();
  EXPECT_EQ(audit_rows(gw.data_dir() + "/gateway.db", "%$chronology"), calls);
}

}  // namespace
}  // namespace gw
