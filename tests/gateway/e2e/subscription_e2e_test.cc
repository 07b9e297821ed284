// The real binary as a child process, the rest-hook receiver in this
// process: kill -9 in the middle of deliveries loses no event, and the
// dead-letter replay command brings given-up events back.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "gateway/common/json.h"
#include "tests/support/fixtures.h"
#include "tests/support/gateway_process.h"
#include "tests/support/hook_receiver.h"
#include "tests/support/https_client.h"
#include "tests/support/subscription_kit.h"
#include "tests/support/test_gateway.h"

namespace gw {
namespace {

using namespace std::chrono_literals;
using test::GatewayProcess;
using test::HookReceiver;
using test::HttpsClient;

std::string id_of(const std::string& body) {
  auto d = json::parse(body);
  if (!d || !d->IsObject()) return {};
  return std::string(json::get_string(*d, "id").value_or(""));
}

std::string write_config(const test::TempDir& dir, const std::string& subscriptions) {
  std::string path = dir.path() + "/config.json";
  std::ofstream(path) << "{\"subscriptions\":" << subscriptions << "}";
  return path;
}

TEST(SubscriptionE2E, KillNineInTheMiddleOfDeliveriesLosesNoEvent) {
  test::TempDir dir;
  std::string cfg = write_config(dir, R"({"first_retry_ms":100,"max_backoff_ms":500,"poll_ms":200})");
  HookReceiver rx;
  rx.set_delay(20ms);  // deliveries lag the commits, so the kill lands mid-stream
  GatewayProcess gw;
  ASSERT_TRUE(gw.start(dir.path() + "/data", {"--config", cfg})) << gw.log();
  auto c = HttpsClient::for_role(gw.port(), "integration");
  auto s = c.request("POST", "/fhir/Subscription", test::subscription_json({.endpoint = rx.url()}),
                     {{"Content-Type", "application/fhir+json"}});
  ASSERT_TRUE(s.has_value());
  ASSERT_EQ(s->status, 201) << s->body;
  ASSERT_TRUE(rx.wait_for([](auto& p) { return test::count_type(p, "handshake") >= 1; }, 10s));
  const int kEvents = 60;
  std::map<int64_t, std::string> expected_focus;  // filled from what arrives; must stay consistent
  for (int i = 0; i < kEvents; ++i) {
    auto r = c.request("POST", "/fhir/Patient", test::fixture("fhir/Patient.json", {{"nhs", test::nhs_number_for(500 + i)}}),
                       {{"Content-Type", "application/fhir+json"}});
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(r->status, 201) << r->body;
  }
  ASSERT_TRUE(rx.wait_for([](auto& p) { return test::event_numbers(p).size() >= 5; }, 10s));
  gw.kill9();
  size_t before = test::event_numbers(rx.posts()).size();
  EXPECT_LT(before, static_cast<size_t>(kEvents)) << "the kill came too late to test anything";

  GatewayProcess again;
  ASSERT_TRUE(again.start(dir.path() + "/data", {"--config", cfg})) << again.log();
  ASSERT_TRUE(rx.wait_for(
      [&](auto& p) {
        auto n = test::event_numbers(p);
        return std::set<int64_t>(n.begin(), n.end()).size() >= static_cast<size_t>(kEvents);
      },
      30s))
      << test::event_numbers(rx.posts()).size();
  // Every number 1..N arrived; a duplicate always carries the same focus as
  // the first delivery of that number; first deliveries came in order.
  int64_t next_new = 1;
  for (const auto& p : rx.posts()) {
    auto seen = test::read_notification(p.body);
    if (seen.type != "event-notification") continue;
    ASSERT_EQ(seen.numbers.size(), seen.focus.size());
    for (size_t i = 0; i < seen.numbers.size(); ++i) {
      int64_t n = seen.numbers[i];
      ASSERT_GE(n, 1);
      ASSERT_LE(n, kEvents);
      // The base URL names the port, which changes with the restart.
      std::string focus = seen.focus[i].substr(seen.focus[i].rfind("/fhir/") + 6);
      auto [it, fresh] = expected_focus.emplace(n, focus);
      if (fresh) {
        EXPECT_EQ(n, next_new) << "first deliveries out of order";
        next_new = n + 1;
      } else {
        EXPECT_EQ(it->second, focus) << "event " << n << " changed meaning on redelivery";
      }
    }
  }
  EXPECT_EQ(expected_focus.size(), static_cast<size_t>(kEvents));
  EXPECT_EQ(again.terminate(), 0);
}

TEST(SubscriptionE2E, DeadLettersComeBackWithTheReplayCommand) {
  test::TempDir dir;
  std::string cfg = write_config(dir, R"({"first_retry_ms":50,"max_backoff_ms":100,"retry_for_seconds":1,"poll_ms":100})");
  HookReceiver rx;
  GatewayProcess gw;
  ASSERT_TRUE(gw.start(dir.path() + "/data", {"--config", cfg})) << gw.log();
  auto c = HttpsClient::for_role(gw.port(), "integration");
  auto s = c.request("POST", "/fhir/Subscription", test::subscription_json({.endpoint = rx.url()}),
                     {{"Content-Type", "application/fhir+json"}});
  ASSERT_TRUE(s.has_value());
  ASSERT_EQ(s->status, 201) << s->body;
  std::string sid = id_of(s->body);
  ASSERT_TRUE(rx.wait_for([](auto& p) { return test::count_type(p, "handshake") >= 1; }, 10s));
  rx.set_path_mode("/hook", HookReceiver::Mode::down);
  for (int i = 0; i < 3; ++i) {
    auto r = c.request("POST", "/fhir/Patient", test::fixture("fhir/Patient.json", {{"nhs", test::nhs_number_for(900 + i)}}),
                       {{"Content-Type", "application/fhir+json"}});
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(r->status, 201);
  }
  auto admin = HttpsClient::for_role(gw.port(), "admin");
  std::string metrics;
  auto end = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < end) {
    auto m = admin.request("GET", "/metrics");
    if (m && m->body.find("gw_subscription_dead_letters_total 3") != std::string::npos) {
      metrics = m->body;
      break;
    }
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_FALSE(metrics.empty()) << "events were not dead-lettered";
  EXPECT_EQ(gw.terminate(), 0);

  std::string out;
  EXPECT_NE(test::run_gateway_command({"replay", "--dead-letters"}, out), 0) << out;  // says which
  ASSERT_EQ(test::run_gateway_command(
                {"replay", "--data-dir", dir.path() + "/data", "--dead-letters", "--subscription", sid}, out),
            0)
      << out;
  EXPECT_NE(out.find("requeued 3"), std::string::npos) << out;

  rx.set_path_mode("/hook", HookReceiver::Mode::ok);
  GatewayProcess again;
  ASSERT_TRUE(again.start(dir.path() + "/data", {"--config", cfg})) << again.log();
  ASSERT_TRUE(rx.wait_for([](auto& p) { return test::event_numbers(p).size() >= 3; }, 15s));
  EXPECT_EQ(test::event_numbers(rx.posts()), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(again.terminate(), 0);
}

// The real binary wires the disclosure topics and the CAMHS rendering: a
// CAMHS extract accepted over HTTPS reaches the GP of the linked child as a
// Communication, and the discharged spell renders as CAMHS XML.
TEST(SubscriptionE2E, RelapseDisclosureAndCamhsRenderingInTheRealBinary) {
  test::TempDir dir;
  std::string cfg = write_config(dir, R"({"first_retry_ms":100,"max_backoff_ms":500,"poll_ms":200})");
  HookReceiver rx;
  GatewayProcess gw;
  ASSERT_TRUE(gw.start(dir.path() + "/data", {"--config", cfg})) << gw.log();
  auto gp = HttpsClient::for_role(gw.port(), "gp");
  auto s = gp.request("POST", "/fhir/Subscription",
                      test::subscription_json({.topic = "relapse-indicator", .endpoint = rx.url(), .content = "full-resource"}),
                      {{"Content-Type", "application/fhir+json"}});
  ASSERT_TRUE(s.has_value());
  ASSERT_EQ(s->status, 201) << s->body;
  ASSERT_TRUE(rx.wait_for([](auto& p) { return test::count_type(p, "handshake") >= 1; }, 10s));
  auto feed = HttpsClient::for_role(gw.port(), "integration");
  // Noah registered at GP practice B86001 (the gp certificate's organisation).
  auto a28 = feed.request("POST", "/ingest/systmone",
                          "MSH|^~\\&|SYSTMONE|RFR|ROUTE|CPISGW|20261103091500+0000||ADT^A28^ADT_A05|E2E-1|P|2.4\r"
                          "EVN|A28|20261103091500\rPID|1||9990316767^^^NHS^NH||THOMPSON^Noah||20230111|M\r"
                          "PD1|||Practice^^B86001^^^NHS^ODS\r");
  ASSERT_TRUE(a28.has_value());
  ASSERT_EQ(a28->status, 200) << a28->body;
  auto x = feed.request("POST", "/ingest/camhs", test::fixture("camhs/extract_sample.xml"), {{"Content-Type", "application/xml"}});
  ASSERT_TRUE(x.has_value());
  ASSERT_EQ(x->status, 200) << x->body;
  ASSERT_TRUE(rx.wait_for([](auto& p) { return test::event_numbers(p).size() >= 1; }, 15s));
  std::string body;
  for (const auto& p : rx.posts())
    if (test::read_notification(p.body).type == "event-notification") body = p.body;
  EXPECT_NE(body.find("\"resourceType\":\"Communication\""), std::string::npos) << body;
  EXPECT_NE(body.find("9990316767"), std::string::npos);   // Noah, in this GP's care
  EXPECT_EQ(body.find("9990237573"), std::string::npos);   // Ellie is not registered here
  EXPECT_EQ(body.find("\"PSY\""), std::string::npos);

  auto camhs = HttpsClient::for_role(gw.port(), "camhs");
  auto enc = camhs.request("GET", "/fhir/Encounter?_count=5");
  ASSERT_TRUE(enc.has_value());
  auto d = json::parse(enc->body);
  ASSERT_TRUE(d && d->HasMember("entry")) << enc->body;
  std::string id = (*d)["entry"][0]["resource"]["id"].GetString();
  auto xml = camhs.request("GET", "/render/camhs/Encounter/" + id);
  ASSERT_TRUE(xml.has_value());
  EXPECT_EQ(xml->status, 200) << xml->body;
  EXPECT_NE(xml->body.find("<HospitalSpell"), std::string::npos) << xml->body;
  EXPECT_EQ(gw.terminate(), 0);
}

}  // namespace
}  // namespace gw
