// An HL7 A40 merge that retires the NHS number of a child with CP-IS plans:
// the plans follow the surviving patient in the merge's own transaction, and
// the local authority managing each plan — only that one — is told through
// cpis-inactive-nhs-number (a real HTTPS rest-hook receiver).
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "gateway/common/json.h"
#include "gateway/events/subscriptions.h"
#include "gateway/model/cpis_plan.h"
#include "gateway/ingest/hl7_ingest.h"
#include "tests/support/fixtures.h"
#include "tests/support/hook_receiver.h"
#include "tests/support/subscription_kit.h"
#include "tests/support/test_gateway.h"

namespace gw::ingest {
namespace {

using namespace std::chrono_literals;

const std::vector<std::pair<std::string, std::string>> kJson = {{"Content-Type", "application/fhir+json"}};

std::string plan_json(const std::string& patient_id, const std::string& nhs, const std::string& la,
                      const std::string& code, const std::string& end = "") {
  return R"({"resourceType":"CareTeam","status":"active",
    "category":[{"coding":[{"system":"http://snomed.info/sct","code":")" + code + R"("}]}],
    "subject":{"reference":"Patient/)" + patient_id + R"(","identifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":")" + nhs + R"("}},
    "period":{"start":"2026-09-01")" + (end.empty() ? std::string() : R"(,"end":")" + end + "\"") + R"(},
    "managingOrganization":[{"identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":")" + la + R"("},"display":"Children's Services"}],
    "telecom":[{"system":"phone","value":"0113 222 0001","use":"work","rank":1,"extension":[{"url":"https://cpis-gateway.nhs.uk/StructureDefinition/contact-purpose","valueCode":"emergency-duty"}]}]})";
}

std::string a40(const std::string& survivor, const std::string& retired, const std::string& control_id) {
  return "MSH|^~\\&|SYSTMONE|C87001|ROUTE|CPISGW|20261106120000+0000||ADT^A40^ADT_A39|" + control_id +
         "|P|2.4\rEVN|A40|20261106120000\rPID|1||" + survivor +
         "^^^NHS^NH||THOMPSON^Noah^^^Master||20230111|M||||||||||||||||||||||||NSTS01\rMRG|" + retired + "^^^NHS^NH\r";
}

std::string id_of(const std::string& body) {
  auto d = json::parse(body);
  return d && d->IsObject() ? std::string(json::get_string(*d, "id").value_or("")) : std::string();
}

events::SubscriptionsOptions fast() {
  events::SubscriptionsOptions o;
  o.delivery.first_retry = 50ms;
  o.delivery.max_backoff = 200ms;
  o.delivery.poll = 100ms;
  o.fanout.poll = 50ms;
  return o;
}

class MergePlanTest : public ::testing::Test {
 protected:
  std::string create(const std::string& type, const std::string& body) {
    auto r = integration_.request("POST", "/fhir/" + type, body, kJson);
    EXPECT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 201) << r->body;
    return id_of(r->body);
  }
  json::Document read(const std::string& path) {
    auto r = integration_.request("GET", "/fhir/" + path);
    EXPECT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 200) << r->body;
    return std::move(*json::parse(r->body));
  }
  IngestResult ingest(const std::string& raw) {
    std::promise<IngestResult> p;
    Source src;
    src.channel = "mllp";
    src.principal = security::Principal{"C87001", "integration", "SYSTMONE"};
    gw_.systmone().handle(raw, src, [&p](IngestResult r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  }
  // Waits until the subscription fan-out has consumed every change so far.
  bool fanout_caught_up() {
    auto all = gw_.store().changes_after(0, 100000);
    if (!all || all->empty()) return false;
    int64_t last = all->back().seq;
    auto until = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < until) {
      auto c = gw_.store().cursor("subscriptions");
      if (c && *c >= last) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }
  int64_t events_of(const std::string& subscription) {
    auto c = gw_.store().event_counts(subscription);
    return c ? c->events : -1;
  }

  test::InProcessGateway gw_{config::Limits{}, fast()};
  test::HttpsClient integration_ = gw_.client("integration");
  test::HookReceiver rx_;
};

TEST_F(MergePlanTest, PlansFollowTheSurvivorAndOnlyTheManagingAuthorityIsTold) {
  // The local authority L0001 (the dev PKI's local-authority certificate) subscribes.
  auto la = gw_.client("local-authority");
  auto s = la.request("POST", "/fhir/Subscription",
                      test::subscription_json({.topic = "cpis-inactive-nhs-number", .endpoint = rx_.url("/la")}),
                      kJson);
  ASSERT_TRUE(s.has_value());
  ASSERT_EQ(s->status, 201) << s->body;
  std::string la_sub = id_of(s->body);
  ASSERT_TRUE(rx_.wait_for([](auto& p) { return test::count_type(p, "handshake", "/la") >= 1; }, 10s));
  // A GP may not subscribe: the topic is for local authorities only.
  auto gp = gw_.client("gp");
  auto gs = gp.request("POST", "/fhir/Subscription",
                       test::subscription_json({.topic = "cpis-inactive-nhs-number", .endpoint = rx_.url("/gp")}),
                       kJson);
  ASSERT_TRUE(gs.has_value());
  EXPECT_EQ(gs->status, 403) << gs->body;

  const std::string retired = test::nhs_number_for(7001), survivor = test::nhs_number_for(7002);
  std::string child = create("Patient", test::fixture("fhir/Patient.json", {{"nhs", retired}}));
  std::string ours = create("CareTeam", plan_json(child, retired, "L0001", "342191000000101"));
  std::string theirs = create("CareTeam", plan_json(child, retired, "L0002", "764841000000100"));
  std::string caseload = create("CareTeam", test::fixture("fhir/CareTeam.json", {{"patient", child}}));
  ASSERT_TRUE(fanout_caught_up());
  EXPECT_EQ(events_of(la_sub), 0) << "creating a plan is not a merge";

  IngestResult r = ingest(a40(survivor, retired, "MERGE-1"));
  ASSERT_EQ(r.outcome, Outcome::accepted) << r.ack;

  // Both plans now name the surviving patient and carry the retired number.
  auto found = read("Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|" + survivor);
  const json::Value* entries = json::member(found, "entry");
  ASSERT_TRUE(entries && entries->IsArray() && entries->Size() == 1u);
  std::string survivor_id(json::get_string(*json::member((*entries)[0], "resource"), "id").value_or(""));
  for (const std::string& plan : {ours, theirs}) {
    auto ct = read("CareTeam/" + plan);
    const json::Value* subject = json::member(ct, "subject");
    ASSERT_NE(subject, nullptr);
    EXPECT_EQ(json::get_string(*subject, "reference").value_or(""), "Patient/" + survivor_id);
    EXPECT_EQ(json::get_string(*json::member(*subject, "identifier"), "value").value_or(""), survivor);
    const json::Value* exts = json::member(ct, "extension");
    ASSERT_TRUE(exts && exts->IsArray());
    bool marked = false;
    for (const auto& x : exts->GetArray())
      if (json::get_string(x, "url").value_or("") == model::cpis::kSupersededNhsNumberUrl)
        marked = json::get_string(*json::member(x, "valueIdentifier"), "value").value_or("") == retired;
    EXPECT_TRUE(marked) << plan;
  }
  // A CareTeam that is not a plan is left alone.
  auto other = read("CareTeam/" + caseload);
  EXPECT_EQ(json::get_string(*json::member(other, "subject"), "reference").value_or(""), "Patient/" + child);

  // L0001 hears about its own plan, not about L0002's.
  ASSERT_TRUE(rx_.wait_for([](auto& p) { return test::event_numbers(p, "/la").size() >= 1; }, 10s));
  ASSERT_TRUE(fanout_caught_up());
  EXPECT_EQ(events_of(la_sub), 1);
  bool about_ours = false;
  for (const auto& p : rx_.posts()) {
    auto seen = test::read_notification(p.body);
    if (seen.type != "event-notification") continue;
    ASSERT_EQ(seen.focus.size(), 1u);
    about_ours = seen.focus[0].ends_with("CareTeam/" + ours);
  }
  EXPECT_TRUE(about_ours);

  // Ending the moved plan later keeps the mark but is not another move.
  auto ct = read("CareTeam/" + ours);
  ASSERT_NE(json::member(ct, "period"), nullptr);
  json::set(const_cast<json::Value&>(*json::member(ct, "period")), "end", std::string_view("2026-11-20"),
            ct.GetAllocator());
  auto put = integration_.request("PUT", "/fhir/CareTeam/" + ours, json::to_string(ct), kJson);
  ASSERT_TRUE(put.has_value());
  ASSERT_EQ(put->status, 200) << put->body;
  ASSERT_TRUE(fanout_caught_up());
  EXPECT_EQ(events_of(la_sub), 1);
}

TEST_F(MergePlanTest, AMergeOfAPatientWithoutPlansChangesNoCareTeam) {
  const std::string retired = test::nhs_number_for(7003), survivor = test::nhs_number_for(7004);
  std::string child = create("Patient", test::fixture("fhir/Patient.json", {{"nhs", retired}}));
  std::string caseload = create("CareTeam", test::fixture("fhir/CareTeam.json", {{"patient", child}}));
  IngestResult r = ingest(a40(survivor, retired, "MERGE-2"));
  ASSERT_EQ(r.outcome, Outcome::accepted) << r.ack;
  auto h = integration_.request("GET", "/fhir/CareTeam/" + caseload + "/_history");
  ASSERT_TRUE(h.has_value());
  auto d = json::parse(h->body);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(json::member(*d, "entry")->Size(), 1u);
}

}  // namespace
}  // namespace gw::ingest
