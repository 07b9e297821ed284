// GET /audit/flows: the figures equal what a known scripted load did, in
// JSON and CSV; only commissioners and admins; bad periods are a 400 naming
// the parameter. flows_of's percentiles are checked on known groups.
#include <gtest/gtest.h>

#include <chrono>
#include <iterator>
#include <thread>

#include "gateway/admin/audit_flows.h"
#include "gateway/common/clock.h"
#include "gateway/common/json.h"
#include "tests/support/fixtures.h"
#include "tests/support/plan_seed.h"
#include "tests/support/test_gateway.h"

namespace gw::admin {
namespace {

const std::vector<std::pair<std::string, std::string>> kJson = {{"Content-Type", "application/fhir+json"}};

std::string day_of(int64_t ms) { return clock::iso_ms(ms).substr(0, 10); }

TEST(AuditFlows, CountsAScriptedLoadInJsonAndCsv) {
  test::InProcessGateway gw;
  auto gp = gw.client("gp");  // B86001 gp-systmone
  for (int i = 0; i < 3; ++i) {
    auto r = gp.request("POST", "/fhir/Patient", test::fixture("fhir/Patient.json", {{"nhs", test::nhs_number_for(400 + i)}}),
                        kJson);
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(r->status, 201) << r->body;
  }
  auto integ = gw.client("integration");  // RXX
  auto r = integ.request("POST", "/fhir/Patient", test::fixture("fhir/Patient.json", {{"nhs", test::nhs_number_for(410)}}),
                         kJson);
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->status, 201) << r->body;

  const int64_t now = clock::now_ms();
  const std::string period = "from=" + day_of(now) + "&to=" + day_of(now + 24 * 3600 * 1000);
  auto c = gw.client("commissioner");
  r = c.request("GET", "/audit/flows?" + period);
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->status, 200) << r->body;
  json::Document d;
  d.Parse(r->body.c_str());
  ASSERT_TRUE(d.IsObject() && d.HasMember("flows")) << r->body;
  int64_t gp_creates = -1, rxx_creates = -1;
  for (const auto& f : d["flows"].GetArray()) {
    std::string from = f["from_org"].GetString(), topic = f["topic"].GetString();
    if (topic != "Patient create") continue;
    EXPECT_EQ(std::string(f["to_org"].GetString()), "cpis-gateway");
    EXPECT_EQ(std::string(f["channel"].GetString()), "rest");
    EXPECT_EQ(std::string(f["purpose"].GetString()), "TREAT");
    EXPECT_EQ(f["failures"].GetInt64(), 0);
    if (from == "B86001") gp_creates = f["events"].GetInt64();
    if (from == "RXX") rxx_creates = f["events"].GetInt64();
  }
  EXPECT_EQ(gp_creates, 3) << r->body;
  EXPECT_EQ(rxx_creates, 1) << r->body;

  r = c.request("GET", "/audit/flows?" + period + "&format=csv");
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->header("content-type").value_or(""), "text/csv; charset=utf-8");
  EXPECT_EQ(r->body.rfind("from_org,from_system,to_org,channel,topic,purpose,events,", 0), 0u) << r->body;
  EXPECT_NE(r->body.find("\"B86001\",\"gp-systmone\",\"cpis-gateway\",\"rest\",\"Patient create\",\"TREAT\",3,0,0,0,0,,"),
            std::string::npos)
      << r->body;

  // Yesterday saw none of it.
  r = c.request("GET", "/audit/flows?from=" + day_of(now - 24 * 3600 * 1000) + "&to=" + day_of(now));
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(r->body.find("Patient create"), std::string::npos) << r->body;

  auto gp_report = gp.request("GET", "/audit/flows?" + period);
  ASSERT_TRUE(gp_report.has_value());
  EXPECT_EQ(gp_report->status, 403);

  for (const char* bad : {"to=2026-01-02", "from=2026-01-01", "from=2026-02-01&to=2026-01-01",
                          "from=2024-01-01&to=2026-01-01", "from=yesterday&to=2026-01-01",
                          "from=2026-01-01&to=2026-01-02&format=xml", "from=2026-01-01&to=2026-01-02&colour=1"}) {
    auto b = c.request("GET", std::string("/audit/flows?") + bad);
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ(b->status, 400) << bad << ": " << b->body;
  }
  auto missing_to = c.request("GET", "/audit/flows?from=2026-01-01");
  EXPECT_NE(missing_to->body.find("to: required"), std::string::npos) << missing_to->body;
  auto reversed = c.request("GET", "/audit/flows?from=2026-02-01&to=2026-01-01");
  EXPECT_NE(reversed->body.find("to: must be after from"), std::string::npos) << reversed->body;
}

TEST(AuditFlows, SafeguardingFiguresCountUnscheduledCpisQueriesAndWhetherTheyFoundAPlan) {
  test::InProcessGateway gw;
  auto admin = gw.client("admin");
  const std::string with_plan = test::nhs_number_for(501), without = test::nhs_number_for(502);
  std::string child = test::create_patient(admin, with_plan);
  test::create_patient(admin, without);
  ASSERT_FALSE(test::create_plan(admin, child, with_plan, test::PlanSeed{}).empty());
  auto ed = gw.client("unscheduled-care");  // RXX01
  const std::vector<std::pair<std::string, std::string>> unscheduled = {{"IsUnscheduledAccessEvent", "true"},
                                                                        {"TraceID", "t-1"}};
  for (const auto& nhs : {with_plan, without}) {
    auto r = ed.request("GET", "/fhir/CareTeam?patient:identifier=https://fhir.nhs.uk/Id/nhs-number%7C" + nhs, "",
                        unscheduled);
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(r->status, 200) << r->body;
  }
  const int64_t now = clock::now_ms();
  const std::string target = "/audit/flows?from=" + day_of(now) + "&to=" + day_of(now + 24 * 3600 * 1000);
  auto c = gw.client("commissioner");
  int64_t queries = -1, found = -1;
  json::Document d;
  // The query that found nothing is audited with the next group commit.
  for (int i = 0; i < 100 && queries < 2; ++i) {
    auto r = c.request("GET", target);
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(r->status, 200) << r->body;
    d.Parse(r->body.c_str());
    ASSERT_TRUE(d.HasMember("safeguarding")) << r->body;
    for (const auto& s : d["safeguarding"]["cpis_queries_by_unscheduled_care_site"].GetArray()) {
      if (std::string(s["site"].GetString()) != "RXX01") continue;
      queries = s["queries"].GetInt64();
      found = s["found_plan"].GetInt64();
    }
    if (queries < 2) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(queries, 2);
  EXPECT_EQ(found, 1);
  // Every safeguarding topic is listed, and what cannot be counted says so.
  EXPECT_EQ(d["safeguarding"]["disclosures_by_topic"].Size(), std::size(kSafeguardingTopics));
  EXPECT_EQ(d["safeguarding"]["not_counted"].Size(), 2u);
}

TEST(AuditFlows, SafeguardingDisclosuresByTopic) {
  store::AuditGroup a;
  a.action = "notify";
  a.topic = "relapse-indicator";
  a.outcome = "success";
  a.latency_ms = 300;
  a.events = 4;
  store::AuditGroup b = a;
  b.outcome = "dead";
  b.latency_ms = 0;
  b.events = 1;
  store::AuditGroup other = a;
  other.topic = "patient-change";  // not a safeguarding topic
  auto sg = safeguarding_of({a, b, other});
  ASSERT_EQ(sg.disclosures.size(), std::size(kSafeguardingTopics));
  for (const auto& t : sg.disclosures) {
    if (t.topic == "relapse-indicator") {
      EXPECT_EQ(t.delivered, 4);
      EXPECT_EQ(t.dead, 1);
      EXPECT_EQ(t.latency_median_ms, 300);
    } else {
      EXPECT_EQ(t.delivered, 0) << t.topic;
      EXPECT_EQ(t.latency_median_ms, -1) << t.topic;
    }
  }
}

TEST(AuditFlows, LatencyPercentilesComeFromDeliveredNotifications) {
  auto g = [](std::string outcome, int64_t latency, int64_t events) {
    store::AuditGroup x;
    x.actor_ods = "LA1";
    x.src_ods = "RX1";
    x.action = "notify";
    x.channel = "rest-hook";
    x.topic = "cpis-access";
    x.purpose = "TREAT";
    x.outcome = std::move(outcome);
    x.latency_ms = latency;
    x.events = events;
    return x;
  };
  // 100 deliveries: 98 at 100 ms, 1 at 2000 ms, 1 at 9000 ms; 5 retries, 1 dead.
  auto flows = flows_of({g("success", 100, 98), g("success", 2000, 1), g("success", 9000, 1), g("retry", 0, 5),
                         g("dead", 0, 1)});
  ASSERT_EQ(flows.size(), 1u);
  const Flow& f = flows[0];
  EXPECT_EQ(f.from_org, "RX1");
  EXPECT_EQ(f.to_org, "LA1");
  EXPECT_EQ(f.events, 106);
  EXPECT_EQ(f.delivered, 100);
  EXPECT_EQ(f.retries, 5);
  EXPECT_EQ(f.dead, 1);
  EXPECT_EQ(f.latency_median_ms, 100);
  EXPECT_EQ(f.latency_p99_ms, 2000);
}

}  // namespace
}  // namespace gw::admin
