// The real binary, killed without warning: everything it answered 2xx for
// must be there after a restart. Also the SIGTERM drain and the CLI surface.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "gateway/common/json.h"
#include "tests/support/fixtures.h"
#include "tests/support/gateway_process.h"
#include "tests/support/https_client.h"
#include "tests/support/test_gateway.h"

namespace gw {
namespace {

using test::GatewayProcess;
using test::HttpsClient;

std::string id_of(const std::string& body) {
  auto d = json::parse(body);
  if (!d || !d->IsObject()) return {};
  return std::string(json::get_string(*d, "id").value_or(""));
}

TEST(Durability, KillNineRightAfterA201KeepsTheResource) {
  test::TempDir dir;
  GatewayProcess gw;
  ASSERT_TRUE(gw.start(dir.path())) << gw.log();
  auto c = HttpsClient::for_role(gw.port(), "integration");
  auto r = c.request("POST", "/fhir/Patient", test::fixture("fhir/Patient.json", {{"nhs", test::nhs_number_for(1)}}),
                     {{"Content-Type", "application/fhir+json"}});
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->status, 201) << r->body;
  gw.kill9();  // no drain, no close: only what was fsync'd survives

  GatewayProcess again;
  ASSERT_TRUE(again.start(dir.path())) << again.log();
  auto c2 = HttpsClient::for_role(again.port(), "gp");
  auto read = c2.request("GET", "/fhir/Patient/" + id_of(r->body));
  ASSERT_TRUE(read.has_value());
  EXPECT_EQ(read->status, 200) << read->body;
}

TEST(Durability, KillNineUnderConcurrentLoadLosesNothingAcknowledged) {
  test::TempDir dir;
  GatewayProcess gw;
  ASSERT_TRUE(gw.start(dir.path())) << gw.log();
  std::mutex mu;
  std::vector<std::string> acked;
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int t = 0; t < 8; ++t) {
    writers.emplace_back([&, t] {
      auto c = HttpsClient::for_role(gw.port(), "integration");
      for (uint32_t i = 0; !stop.load(); ++i) {
        auto r = c.request("POST", "/fhir/Patient",
                           test::fixture("fhir/Patient.json", {{"nhs", test::nhs_number_for(100000 + t * 10000 + i)}}),
                           {{"Content-Type", "application/fhir+json"}});
        if (!r) return;  // the server died under us: that request was never acknowledged
        if (r->status == 201) {
          std::lock_guard<std::mutex> lock(mu);
          acked.push_back(id_of(r->body));
        }
      }
    });
  }
  // Kill while requests are in flight on every connection.
  for (int i = 0; i < 400; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::lock_guard<std::mutex> lock(mu);
    if (acked.size() >= 150) break;
  }
  gw.kill9();
  stop = true;
  for (auto& w : writers) w.join();
  ASSERT_GT(acked.size(), 50u);

  GatewayProcess again;
  ASSERT_TRUE(again.start(dir.path())) << again.log();
  auto c = HttpsClient::for_role(again.port(), "gp");
  size_t missing = 0;
  for (const auto& id : acked) {
    auto r = c.request("GET", "/fhir/Patient/" + id);
    if (!r || r->status != 200) ++missing;
  }
  EXPECT_EQ(missing, 0u) << "of " << acked.size() << " acknowledged creates";
}

TEST(Durability, SigtermDrainsAndExitsZero) {
  test::TempDir dir;
  GatewayProcess gw;
  ASSERT_TRUE(gw.start(dir.path())) << gw.log();
  auto c = HttpsClient::for_role(gw.port(), "integration");
  auto r = c.request("POST", "/fhir/Patient", test::fixture("fhir/Patient.json", {{"nhs", test::nhs_number_for(7)}}),
                     {{"Content-Type", "application/fhir+json"}});
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->status, 201);
  EXPECT_EQ(gw.terminate(), 0) << gw.log();
  EXPECT_EQ(gw.log().find(test::nhs_number_for(7)), std::string::npos) << "an NHS number reached the log";

  GatewayProcess again;
  ASSERT_TRUE(again.start(dir.path())) << again.log();
  auto c2 = HttpsClient::for_role(again.port(), "gp");
  auto read = c2.request("GET", "/fhir/Patient/" + id_of(r->body));
  ASSERT_TRUE(read.has_value());
  EXPECT_EQ(read->status, 200);
}

TEST(Cli, VersionHelpAndStartUpErrors) {
  std::string out;
  EXPECT_EQ(test::run_gateway_command({"version"}, out), 0);
  EXPECT_NE(out.find("cpis-gateway "), std::string::npos);
  out.clear();
  EXPECT_EQ(test::run_gateway_command({"--help"}, out), 0);
  EXPECT_NE(out.find("serve"), std::string::npos);
  out.clear();
  EXPECT_NE(test::run_gateway_command({"serve", "--no-such-flag"}, out), 0);
  EXPECT_NE(out.find("--no-such-flag"), std::string::npos) << out;

  test::TempDir dir;
  std::string cfg = dir.path() + "/bad.json";
  FILE* f = std::fopen(cfg.c_str(), "w");
  std::fputs("{\"limits\":{\"body_byts\":10}}", f);
  std::fclose(f);
  out.clear();
  EXPECT_NE(test::run_gateway_command({"serve", "--config", cfg}, out), 0);
  EXPECT_NE(out.find("body_byts"), std::string::npos) << out;
}

}  // namespace
}  // namespace gw
