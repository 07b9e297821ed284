// The CP-IS cross-check of a CAMHS extract: the MHS005 CPP / LACStatus
// indicators against the plans the gateway holds, every mismatch answered per
// record (by LocalPatientID) and kept with the inbound file.
#include <gtest/gtest.h>

#include <filesystem>
#include <future>
#include <fstream>
#include <sstream>

#include "gateway/common/json.h"
#include "gateway/ingest/plan_crosscheck.h"
#include "tests/support/plan_seed.h"
#include "tests/support/test_gateway.h"

namespace gw {
namespace {

namespace fs = std::filesystem;
using test::InProcessGateway;
using test::PlanSeed;

std::string sample() {
  std::ifstream in(fs::path(GW_SOURCE_DIR) / "tests/fixtures/camhs/extract_sample.xml", std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The sample extract: RXE-A-5511 (9990079196) CPP "X" (not stated), LAC "N";
// RXE-C-0042 (9990633525) CPP "1" (on a plan), LAC "N".
constexpr const char* kAdult = "9990079196";
constexpr const char* kYoungPerson = "9990633525";

std::vector<std::pair<std::string, std::string>> mismatches(const json::Document& answer) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& i : answer["issues"].GetArray()) {
    std::string msg(json::get_string(i, "message").value_or(""));
    if (msg.rfind("CP-IS mismatch", 0) == 0)
      out.emplace_back(std::string(json::get_string(i, "expression").value_or("")), msg);
  }
  return out;
}

TEST(PlanCrossCheck, EveryMismatchIsAnsweredPerRecordAndKeptWithTheFile) {
  InProcessGateway gw;
  auto admin = gw.client("admin");
  std::string yp = test::create_patient(admin, kYoungPerson);
  PlanSeed lac;
  lac.abbreviation = "LAC";
  test::create_plan(admin, yp, kYoungPerson, lac);
  PlanSeed ended_cpp;  // ended within the 12 months: in scope, but not current
  ended_cpp.start = "2025-01-01";
  ended_cpp.end = "2026-03-31";
  test::create_plan(admin, yp, kYoungPerson, ended_cpp);
  std::string adult = test::create_patient(admin, kAdult);
  PlanSeed withdrawn;
  withdrawn.status = "entered-in-error";
  test::create_plan(admin, adult, kAdult, withdrawn);

  auto camhs = gw.client("integration");
  auto r = camhs.request("POST", "/ingest/camhs", sample(), {{"Content-Type", "application/xml"}});
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->status, 200) << r->body;
  auto d = json::parse(r->body);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ((*d)["planMismatches"].GetInt(), 2) << r->body;
  auto found = mismatches(*d);
  ASSERT_EQ(found.size(), 2u) << r->body;
  EXPECT_EQ(found[0].first, "Patient[LocalPatientID=RXE-C-0042].Indicators.CPP");
  EXPECT_NE(found[0].second.find("no current CPP plan (the last one ended on 2026-03-31)"), std::string::npos)
      << found[0].second;
  EXPECT_EQ(found[1].first, "Patient[LocalPatientID=RXE-C-0042].Indicators.LACStatus");
  EXPECT_NE(found[1].second.find("holds a current LAC plan (local authority L0001)"), std::string::npos);
  // A withdrawn plan is no plan: "not stated" about the adult is no mismatch.
  EXPECT_EQ(r->body.find("RXE-A-5511].Indicators"), std::string::npos) << r->body;
  EXPECT_EQ(r->body.find(kYoungPerson), std::string::npos) << "records are named by local id only";

  // Kept with the inbound file for later.
  ASSERT_TRUE(d->HasMember("inbound_id")) << r->body;
  auto kept = admin.request("GET", "/admin/quarantine/" + std::to_string((*d)["inbound_id"].GetInt64()));
  ASSERT_EQ(kept->status, 200);
  auto k = json::parse(kept->body);
  EXPECT_EQ(json::get_string(*k, "status").value_or(""), "accepted");
  EXPECT_EQ(mismatches(*k).size(), 2u) << kept->body;
}

TEST(PlanCrossCheck, AgreeingIndicatorsGiveNoMismatch) {
  InProcessGateway gw;
  auto admin = gw.client("admin");
  std::string yp = test::create_patient(admin, kYoungPerson);
  test::create_plan(admin, yp, kYoungPerson, PlanSeed{});  // CPP, current: the extract's "1" agrees
  PlanSeed old_lac;
  old_lac.abbreviation = "LAC";
  old_lac.start = "2024-01-01";
  old_lac.end = "2026-01-31";  // ended: "N" is right
  test::create_plan(admin, yp, kYoungPerson, old_lac);

  auto camhs = gw.client("integration");
  auto r = camhs.request("POST", "/ingest/camhs", sample(), {{"Content-Type", "application/xml"}});
  ASSERT_EQ(r->status, 200) << r->body;
  auto d = json::parse(r->body);
  EXPECT_EQ((*d)["planMismatches"].GetInt(), 0) << r->body;
  EXPECT_TRUE(mismatches(*d).empty());
}

TEST(PlanCrossCheck, NotStatedWithACurrentPlanIsAMismatchAndScopeFollowsToday) {
  // Pure part: the indicators a Bundle states, read without the store.
  auto bundle = json::parse(R"({"resourceType":"Bundle","entry":[
    {"fullUrl":"urn:uuid:p","resource":{"resourceType":"Patient","identifier":[
      {"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9990079196"},
      {"system":"urn:cpis-gateway:local-id:RXE","value":"LP1"}]}},
    {"fullUrl":"urn:uuid:o","resource":{"resourceType":"Observation","subject":{"reference":"urn:uuid:p"},
      "component":[
       {"code":{"coding":[{"code":"CPP"}]},"valueCodeableConcept":{"coding":[{"system":"https://cpis-gateway.nhs.uk/CodeSystem/plan-status","code":"unknown"}]}},
       {"code":{"coding":[{"code":"YoungCarer"}]},"valueCodeableConcept":{"coding":[{"system":"https://cpis-gateway.nhs.uk/CodeSystem/plan-status","code":"young-carer"}]}}]}}]})");
  ASSERT_TRUE(bundle.has_value());
  auto stated = ingest::stated_plan_indicators(*bundle);
  ASSERT_EQ(stated.size(), 1u) << "young-carer is not a plan indicator";
  EXPECT_EQ(stated[0].local_id, "LP1");
  EXPECT_EQ(stated[0].indicator, "CPP");
  EXPECT_EQ(stated[0].status, "unknown");

  InProcessGateway gw;
  auto admin = gw.client("admin");
  std::string p = test::create_patient(admin, kAdult);
  PlanSeed cpp;
  cpp.start = "2026-01-01";
  cpp.end = "2026-12-31";
  test::create_plan(admin, p, kAdult, cpp);
  std::vector<Issue> now, later;
  std::promise<void> done;
  ASSERT_TRUE(gw.store()
                  .run_read([&] {
                    now = ingest::plan_mismatches(gw.store(), stated, "2026-11-27");
                    later = ingest::plan_mismatches(gw.store(), stated, "2027-01-15");
                    done.set_value();
                  })
                  .has_value());
  done.get_future().wait();
  ASSERT_EQ(now.size(), 1u);
  EXPECT_EQ(now[0].expression, "Patient[LocalPatientID=LP1].Indicators.CPP");
  EXPECT_NE(now[0].message.find("does not state"), std::string::npos);
  EXPECT_TRUE(later.empty()) << "once the plan has ended, not stated is no mismatch";
}

}  // namespace
}  // namespace gw
