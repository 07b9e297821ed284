// POST /ingest/cpis-upload end to end: real TLS, real SQLite, the shipped
// profiles, policy and topics. The dev PKI's second local authority is
// LA372 (Rotherham), the authority of the shared sample file.
#include "gateway/ingest/cpis_upload.h"

#include <gtest/gtest.h>

#include <thread>

#include "gateway/common/json.h"
#include "gateway/events/subscriptions.h"
#include "tests/support/fixtures.h"
#include "tests/support/hook_receiver.h"
#include "tests/support/subscription_kit.h"
#include "tests/support/test_gateway.h"

namespace gw {
namespace {

using namespace std::chrono_literals;

const std::string kHeader =
    "LocalChildID,NHSNumber,FamilyName,GivenName,DateOfBirth,PlanType,StartDate,EndDate,DeleteDate,LAODS,LAName,"
    "OfficePhone,EmergencyPhone,LACLegalStatus\n";

std::string row(const std::string& local_id, const std::string& nhs, const std::string& ods,
                const std::string& end = "", const std::string& del = "") {
  return local_id + "," + nhs + ",DOE,Sam,2018-01-01,CPP,2026-11-01," + end + "," + del + "," + ods +
         ",Test council,01709 1,01709 336080,\n";
}

events::SubscriptionsOptions fast_options() { return test::fast_subscriptions(16, std::chrono::milliseconds(200)); }

struct Answer {
  int status = 0;
  std::vector<std::string> codes;        // details.coding.code per issue (the summary has none)
  std::vector<std::string> expressions;  // expression per issue, comma-joined
  std::string summary;
  std::string body;
};

class CpisUploadTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { gw_ = new test::InProcessGateway(config::Limits{}, fast_options()); }
  static void TearDownTestSuite() {
    delete gw_;
    gw_ = nullptr;
  }

  static Answer upload(const std::string& role, const std::string& csv) {
    auto c = gw_->client(role);
    auto r = c.request("POST", "/ingest/cpis-upload", csv, {{"Content-Type", "text/csv"}});
    EXPECT_TRUE(r.has_value());
    Answer a;
    if (!r) return a;
    a.status = r->status;
    a.body = r->body;
    auto d = json::parse(r->body);
    if (!d || !d->IsObject() || !json::member(*d, "issue")) return a;
    for (const auto& i : (*d)["issue"].GetArray()) {
      const json::Value* det = json::member(i, "details");
      a.codes.push_back(det ? std::string(json::as_view((*det)["coding"][0]["code"])) : "");
      const json::Value* e = json::member(i, "expression");
      std::string joined;
      if (e)
        for (const auto& x : e->GetArray()) joined += (joined.empty() ? "" : ",") + std::string(json::as_view(x));
      a.expressions.push_back(joined);
      if (!det) a.summary = std::string(json::get_string(i, "diagnostics").value_or(""));
    }
    return a;
  }

  static json::Document search(const std::string& role, const std::string& target) {
    auto c = gw_->client(role);
    auto r = c.request("GET", target);
    EXPECT_TRUE(r.has_value() && r->status == 200) << (r ? r->body : "");
    auto d = json::parse(r ? r->body : "{}");
    return d ? std::move(*d) : json::Document();
  }

  static std::string plan_query(const std::string& ods, const std::string& local_id) {
    return "/fhir/CareTeam?identifier=https://cpis-gateway.nhs.uk/Id/cpis-plan%7C" + ods + "%5C%7C" + local_id +
           "%5C%7CCPP";
  }

  static test::InProcessGateway* gw_;
};
test::InProcessGateway* CpisUploadTest::gw_ = nullptr;

TEST_F(CpisUploadTest, TheSampleFileGivesCpr06ThreeTimesAndCpr07ForRmbc0004) {
  Answer a = upload("local-authority-2", test::fixture("cpis/upload_sample.csv"));
  ASSERT_EQ(a.status, 200) << a.body;
  EXPECT_EQ(a.codes, (std::vector<std::string>{"CPR06", "CPR06", "CPR06", "CPR07", ""})) << a.body;
  // RMBC-0004 has no emergency number (and its NHS number fails Modulus 11).
  EXPECT_EQ(a.expressions[3], "row 5.NHSNumber,row 5.EmergencyPhone");
  EXPECT_NE(a.body.find("LocalChildID RMBC-0004: rejected"), std::string::npos);
  EXPECT_NE(a.body.find("EmergencyPhone (the emergency-duty, out-of-hours number) is required"), std::string::npos);
  EXPECT_EQ(a.body.find("9219068409"), std::string::npos) << "an NHS number in the answer";
  EXPECT_NE(a.summary.find("4 records: 3 accepted (CPR06), 1 rejected (CPR07)"), std::string::npos) << a.summary;
  // The three plans are stored as CareTeams managed by LA372; RMBC-0004 is not.
  auto plans = search("local-authority-2", plan_query("LA372", "RMBC-0001"));
  ASSERT_EQ(plans["entry"].Size(), 1u);
  EXPECT_EQ(json::as_view(plans["entry"][0]["resource"]["managingOrganization"][0]["identifier"]["value"]), "LA372");
  EXPECT_EQ(search("local-authority-2", plan_query("LA372", "RMBC-0004"))["entry"].Size(), 0u);

  // The file is kept, as sent, with the accepted plans (the CPR07 reason with it).
  auto inbound = search("admin", "/admin/quarantine?status=accepted");
  bool kept = false;
  for (const auto& m : inbound["messages"].GetArray()) {
    if (json::as_view(m["adapter"]) != "cpis-upload" || json::as_view(m["sender_ods"]) != "LA372") continue;
    kept = m["raw_bytes"].GetUint64() == test::fixture("cpis/upload_sample.csv").size();
    EXPECT_NE(json::to_string(m["issues"]).find("row 5.EmergencyPhone"), std::string::npos);
  }
  EXPECT_TRUE(kept) << json::to_string(inbound);

  // The same file again changes nothing and says so; the plans stay at version 1.
  Answer again = upload("local-authority-2", test::fixture("cpis/upload_sample.csv"));
  EXPECT_EQ(again.status, 200) << again.body;
  EXPECT_NE(again.summary.find("already accepted"), std::string::npos) << again.summary;
  auto after = search("local-authority-2", plan_query("LA372", "RMBC-0001"));
  EXPECT_EQ(json::as_view(after["entry"][0]["resource"]["meta"]["versionId"]), "1");
}

TEST_F(CpisUploadTest, AReUploadUpdatesThePlanAndCountsKnownNhsNumbers) {
  std::string nhs = test::nhs_number_for(7001);
  Answer first = upload("local-authority", kHeader + row("RE-1", nhs, "L0001"));
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_NE(first.summary.find("0 of 1 (0.0 %), below the 95 %"), std::string::npos) << first.summary;
  // Ending the plan: a new file, the same plan identifier.
  Answer second = upload("local-authority", kHeader + row("RE-1", nhs, "L0001", "2026-11-20"));
  ASSERT_EQ(second.status, 200) << second.body;
  EXPECT_NE(second.summary.find("1 of 1 (100.0 %)"), std::string::npos) << second.summary;
  auto plans = search("local-authority", plan_query("L0001", "RE-1"));
  ASSERT_EQ(plans["entry"].Size(), 1u);
  const json::Value& plan = plans["entry"][0]["resource"];
  EXPECT_EQ(json::as_view(plan["meta"]["versionId"]), "2");
  EXPECT_EQ(json::as_view(plan["period"]["end"]), "2026-11-20");
  // One Patient for the NHS number.
  auto patients = search("local-authority", "/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number%7C" + nhs);
  EXPECT_EQ(patients["entry"].Size(), 1u);
}

TEST_F(CpisUploadTest, WithdrawingAnUnknownPlanIsCpr07AndAKnownOneIsEnteredInError) {
  std::string nhs = test::nhs_number_for(7002);
  Answer unknown = upload("local-authority", kHeader + row("WD-1", nhs, "L0001", "", "2026-11-25"));
  EXPECT_EQ(unknown.status, 422) << unknown.body;
  ASSERT_EQ(unknown.codes.size(), 2u);
  EXPECT_EQ(unknown.codes[0], "CPR07");
  EXPECT_EQ(unknown.expressions[0], "row 2.DeleteDate");
  ASSERT_EQ(upload("local-authority", kHeader + row("WD-2", nhs, "L0001")).status, 200);
  Answer known = upload("local-authority", kHeader + row("WD-2", nhs, "L0001", "", "2026-11-25"));
  ASSERT_EQ(known.status, 200) << known.body;
  EXPECT_EQ(known.codes[0], "CPR06");
  auto plans = search("local-authority", plan_query("L0001", "WD-2"));
  EXPECT_EQ(json::as_view(plans["entry"][0]["resource"]["status"]), "entered-in-error");
}

TEST_F(CpisUploadTest, RowsOfAnotherAuthorityAreRejectedAndOnlyLocalAuthoritiesMayUpload) {
  Answer a = upload("local-authority", kHeader + row("X-1", test::nhs_number_for(7003), "LA372"));
  EXPECT_EQ(a.status, 422) << a.body;
  EXPECT_EQ(a.expressions[0], "row 2.LAODS");
  EXPECT_EQ(search("local-authority-2", plan_query("LA372", "X-1"))["entry"].Size(), 0u);
  for (const char* role : {"integration", "gp", "admin"}) {
    Answer denied = upload(role, kHeader + row("X-2", test::nhs_number_for(7004), "RXX"));
    EXPECT_EQ(denied.status, 403) << role << ": " << denied.body;
  }
}

TEST_F(CpisUploadTest, AFileThatIsNotAnUploadIsKeptAndRefused) {
  Answer a = upload("local-authority", "Name,Colour\nx,y\n");
  EXPECT_EQ(a.status, 422) << a.body;
  EXPECT_NE(a.body.find("unknown column"), std::string::npos) << a.body;
  EXPECT_NE(a.body.find("kept as inbound message"), std::string::npos) << a.body;
  auto quarantined = search("admin", "/admin/quarantine");
  bool kept = false;
  for (const auto& m : quarantined["messages"].GetArray())
    kept = kept || (json::as_view(m["adapter"]) == "cpis-upload" && json::as_view(m["status"]) == "quarantined" &&
                    std::string(json::as_view(m["reason"])).find("unknown column") != std::string::npos);
  EXPECT_TRUE(kept) << json::to_string(quarantined);
}

TEST_F(CpisUploadTest, TheChildsGpIsNotifiedOfAnUploadedPlanAndAnotherChildsGpIsNot) {
  test::HookReceiver rx;
  auto gp = gw_->client("gp");  // O=B86001
  auto sub = gp.request("POST", "/fhir/Subscription",
                        test::subscription_json({.topic = "cpis-plan-change", .endpoint = rx.url("/gp")}),
                        {{"Content-Type", "application/fhir+json"}});
  ASSERT_TRUE(sub && sub->status == 201) << (sub ? sub->body : "");
  ASSERT_TRUE(rx.wait_for([](const auto& p) { return test::count_type(p, "handshake", "/gp") >= 1; }, 10s));

  // Two children known to the gateway: one registered at B86001, one elsewhere.
  auto integration = gw_->client("integration");
  std::string mine = test::nhs_number_for(7101), theirs = test::nhs_number_for(7102);
  std::string elsewhere = test::fixture("fhir/Patient.json", {{"nhs", theirs}});
  elsewhere.replace(elsewhere.find("\"B86001\""), 8, "\"Y99999\"");
  for (const auto& body : {test::fixture("fhir/Patient.json", {{"nhs", mine}}), elsewhere}) {
    auto r = integration.request("POST", "/fhir/Patient", body, {{"Content-Type", "application/fhir+json"}});
    ASSERT_TRUE(r && r->status == 201) << (r ? r->body : "");
  }
  ASSERT_EQ(upload("local-authority", kHeader + row("GP-2", theirs, "L0001")).status, 200);
  ASSERT_EQ(upload("local-authority", kHeader + row("GP-1", mine, "L0001")).status, 200);
  ASSERT_TRUE(rx.wait_for([](const auto& p) { return test::event_numbers(p, "/gp").size() >= 1; }, 15s));
  std::this_thread::sleep_for(1s);  // room for a wrong second event to arrive
  auto posts = rx.posts();
  std::vector<std::string> focus;
  for (const auto& p : posts) {
    auto n = test::read_notification(p.body);
    if (n.type == "event-notification") focus.insert(focus.end(), n.focus.begin(), n.focus.end());
  }
  ASSERT_EQ(focus.size(), 1u);
  auto plan = search("local-authority", plan_query("L0001", "GP-1"));
  std::string id(json::as_view(plan["entry"][0]["resource"]["id"]));
  EXPECT_NE(focus[0].find("/CareTeam/" + id), std::string::npos) << focus[0];
}

}  // namespace
}  // namespace gw
