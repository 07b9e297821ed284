// Two real gateway processes on one PostgreSQL database (DESIGN.md: several
// nodes for failover and maintenance): kill -9 of either under load loses
// nothing acknowledged, the survivor takes the deliveries over within
// seconds in order, one Patient per NHS number and one message per MSH-10
// across nodes. Only in the PostgreSQL run of the suite (tests/CMakeLists.txt).
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "gateway/common/json.h"
#include "tests/support/fixtures.h"
#include "tests/support/gateway_process.h"
#include "tests/support/hook_receiver.h"
#include "tests/support/https_client.h"
#include "tests/support/mllp_test_kit.h"
#include "tests/support/patient_writers.h"
#include "tests/support/subscription_kit.h"
#include "tests/support/test_gateway.h"
#include "tests/support/test_store.h"

namespace gw {
namespace {

using namespace std::chrono_literals;
using test::GatewayProcess;
using test::HookReceiver;
using test::HttpsClient;

// Both nodes name the same data directory: on PostgreSQL it only keys the
// database schema of this test (tests/support/test_store.h), so they share it.
struct TwoNodes {
  test::TempDir dir;
  std::string data = dir.path() + "/data";
  std::string config;
  GatewayProcess a, b;

  explicit TwoNodes(const std::string& json = R"({"subscriptions":{"first_retry_ms":100,"max_backoff_ms":500,"poll_ms":200}})") {
    config = dir.path() + "/config.json";
    std::ofstream(config) << json;
  }
  bool start(GatewayProcess& p, std::vector<std::string> extra = {}) {
    extra.insert(extra.begin(), {"--config", config});
    return p.start(data, extra);
  }
};

int64_t total_of(const std::string& body) {
  auto d = json::parse(body);
  if (!d || !d->IsObject() || !d->HasMember("total")) return -1;
  return (*d)["total"].GetInt64();
}

TEST(PostgresNodesE2E, KillNineOfTheDeliveringNodeLosesNoEventAndTheOtherCarriesOnInOrder) {
  if (!test::on_postgres()) GTEST_SKIP() << "two nodes share one store on PostgreSQL only (the pg: run)";
  TwoNodes n;
  HookReceiver rx;
  rx.set_delay(30ms);  // deliveries lag the commits, so the kill lands mid-stream
  ASSERT_TRUE(n.start(n.a)) << n.a.log();
  auto on_a = HttpsClient::for_role(n.a.port(), "integration");
  auto s = on_a.request("POST", "/fhir/Subscription", test::subscription_json({.endpoint = rx.url()}),
                        {{"Content-Type", "application/fhir+json"}});
  ASSERT_TRUE(s.has_value());
  ASSERT_EQ(s->status, 201) << s->body;
  ASSERT_TRUE(rx.wait_for([](auto& p) { return test::count_type(p, "handshake") >= 1; }, 10s));
  // Node A delivers this subscription (it claimed it first); node B joins.
  ASSERT_TRUE(n.start(n.b)) << n.b.log();
  auto on_b = HttpsClient::for_role(n.b.port(), "integration");
  const int kEvents = 60;
  for (int i = 0; i < kEvents; ++i) {
    auto& c = i % 2 ? on_b : on_a;  // changes committed on both nodes
    auto r = c.request("POST", "/fhir/Patient", test::fixture("fhir/Patient.json", {{"nhs", test::nhs_number_for(6100 + i)}}),
                       {{"Content-Type", "application/fhir+json"}});
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(r->status, 201) << r->body;
  }
  ASSERT_TRUE(rx.wait_for([](auto& p) { return test::event_numbers(p).size() >= 5; }, 10s));
  n.a.kill9();
  auto killed_at = std::chrono::steady_clock::now();
  size_t before = test::event_numbers(rx.posts()).size();
  EXPECT_LT(before, static_cast<size_t>(kEvents)) << "the kill came too late to test anything";
  // The next event after the kill, whoever sends it, must come within seconds.
  ASSERT_TRUE(rx.wait_for([&](auto& p) { return test::event_numbers(p).size() > before; }, 10s))
      << "node B did not take the deliveries over";
  auto took_over = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - killed_at);
  EXPECT_LT(took_over, 5s);
  ASSERT_TRUE(rx.wait_for(
      [&](auto& p) {
        auto nums = test::event_numbers(p);
        return std::set<int64_t>(nums.begin(), nums.end()).size() >= static_cast<size_t>(kEvents);
      },
      30s))
      << test::event_numbers(rx.posts()).size();
  // Every number 1..N arrived; first deliveries came in order; a redelivery
  // (the events A sent but had not marked delivered) names the same focus.
  std::map<int64_t, std::string> focus_of;
  int64_t next_new = 1;
  for (const auto& p : rx.posts()) {
    auto seen = test::read_notification(p.body);
    if (seen.type != "event-notification") continue;
    for (size_t i = 0; i < seen.numbers.size(); ++i) {
      int64_t num = seen.numbers[i];
      std::string focus = seen.focus[i].substr(seen.focus[i].rfind("/fhir/") + 6);
      auto [it, fresh] = focus_of.emplace(num, focus);
      if (fresh) {
        EXPECT_EQ(num, next_new) << "first deliveries out of order";
        next_new = num + 1;
      } else {
        EXPECT_EQ(it->second, focus) << "event " << num << " changed meaning on redelivery";
      }
    }
  }
  EXPECT_EQ(focus_of.size(), static_cast<size_t>(kEvents));
  EXPECT_EQ(n.b.terminate(), 0);
}

TEST(PostgresNodesE2E, KillNineOfEitherNodeUnderLoadLosesNothingAcknowledged) {
  if (!test::on_postgres()) GTEST_SKIP() << "two nodes share one store on PostgreSQL only (the pg: run)";
  TwoNodes n;
  ASSERT_TRUE(n.start(n.a)) << n.a.log();
  ASSERT_TRUE(n.start(n.b)) << n.b.log();
  std::vector<std::string> acked;
  {
    test::PatientWriters on_a(n.a.port(), 4, 200000), on_b(n.b.port(), 4, 300000);
    ASSERT_TRUE(on_a.wait_for(100, 30s));
    ASSERT_TRUE(on_b.wait_for(100, 30s));
    n.a.kill9();  // mid-load: A's writers stop by themselves, B's go on
    size_t b_then = on_b.acked_count();
    EXPECT_TRUE(on_b.wait_for(b_then + 100, 30s)) << "node B stopped writing when node A died";
    on_a.stop();
    on_b.stop();
    acked = on_a.acked();
    auto more = on_b.acked();
    acked.insert(acked.end(), more.begin(), more.end());
  }
  ASSERT_GT(acked.size(), 200u);
  EXPECT_EQ(test::missing_patients(n.b.port(), acked), 0u) << "of " << acked.size() << " acknowledged";
  // And the other way round: A back, B killed, nothing lost either.
  ASSERT_TRUE(n.start(n.a)) << n.a.log();
  n.b.kill9();
  EXPECT_EQ(test::missing_patients(n.a.port(), acked), 0u) << "of " << acked.size() << " acknowledged";
  std::printf("acknowledged creates across the kills: %zu, missing: 0 expected\n", acked.size());
  EXPECT_EQ(n.a.terminate(), 0);
}

TEST(PostgresNodesE2E, ConcurrentCreatesOfOneNhsNumberOnBothNodesLeaveOnePatient) {
  if (!test::on_postgres()) GTEST_SKIP() << "two nodes share one store on PostgreSQL only (the pg: run)";
  TwoNodes n;
  ASSERT_TRUE(n.start(n.a)) << n.a.log();
  ASSERT_TRUE(n.start(n.b)) << n.b.log();
  const std::string nhs = test::nhs_number_for(6400);
  std::atomic<int> created{0}, refused{0}, other{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 8; ++t) {
    ts.emplace_back([&, t] {
      auto c = HttpsClient::for_role(t % 2 ? n.b.port() : n.a.port(), "integration");
      for (int i = 0; i < 5; ++i) {
        auto r = c.request("POST", "/fhir/Patient", test::fixture("fhir/Patient.json", {{"nhs", nhs}}),
                           {{"Content-Type", "application/fhir+json"}});
        if (!r) ++other;
        else if (r->status == 201) ++created;
        else if (r->status == 409 || r->status == 412 || r->status == 200) ++refused;
        else ++other;
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(created.load(), 1);
  EXPECT_EQ(refused.load(), 39);
  EXPECT_EQ(other.load(), 0);
  for (uint16_t port : {n.a.port(), n.b.port()}) {
    auto r = HttpsClient::for_role(port, "gp").request(
        "GET", "/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|" + nhs);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(total_of(r->body), 1) << r->body;
  }
  EXPECT_EQ(n.a.terminate(), 0);
  EXPECT_EQ(n.b.terminate(), 0);
}

TEST(PostgresNodesE2E, TheSameMsh10OnBothNodesIsStoredOnceAndAcknowledgedByBoth) {
  if (!test::on_postgres()) GTEST_SKIP() << "two nodes share one store on PostgreSQL only (the pg: run)";
  TwoNodes n("{}");
  ASSERT_TRUE(n.start(n.a, {"--mllp-listen", "127.0.0.1:0"})) << n.a.log();
  ASSERT_TRUE(n.start(n.b, {"--mllp-listen", "127.0.0.1:0"})) << n.b.log();
  const std::string nhs = test::nhs_number_for(6500);
  const std::string msg = test::systmone_a28(nhs, "MSG-TWO-NODES-1");
  std::vector<std::string> codes(2);
  std::thread ta([&] {
    test::RawMllpClient c;
    if (c.connect(n.a.mllp_port()) && c.send_message(msg)) {
      auto f = c.read_frames(1, 10s);
      if (!f.empty())
        if (auto ack = test::ack_fields(f[0])) codes[0] = ack->code;
    }
  });
  std::thread tb([&] {
    test::RawMllpClient c;
    if (c.connect(n.b.mllp_port()) && c.send_message(msg)) {
      auto f = c.read_frames(1, 10s);
      if (!f.empty())
        if (auto ack = test::ack_fields(f[0])) codes[1] = ack->code;
    }
  });
  ta.join();
  tb.join();
  EXPECT_EQ(codes[0], "AA");  // the sender's retry of a stored message is acknowledged again
  EXPECT_EQ(codes[1], "AA");
  EXPECT_EQ(test::store_scalar(n.data + "/gateway.db", "SELECT count(*) FROM idempotency"), 1);
  EXPECT_EQ(test::store_scalar(n.data + "/gateway.db", "SELECT count(*) FROM pkey WHERE key = '" + nhs + "'"), 1);
  EXPECT_EQ(test::store_scalar(n.data + "/gateway.db",
                               "SELECT count(*) FROM inbound WHERE status = 'accepted' AND control_id = 'MSG-TWO-NODES-1'"),
            1);
  EXPECT_EQ(n.a.terminate(), 0);
  EXPECT_EQ(n.b.terminate(), 0);
}

}  // namespace
}  // namespace gw
