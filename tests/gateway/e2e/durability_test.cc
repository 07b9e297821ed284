// The real binary, killed without warning: everything it answered 2xx for
// must be there after a restart. Also the SIGTERM drain and the CLI surface.
#include <gtest/gtest.h>

#include <chrono>

#include "gateway/common/json.h"
#include "tests/support/fixtures.h"
#include "tests/support/gateway_process.h"
#include "tests/support/https_client.h"
#include "tests/support/patient_writers.h"
#include "tests/support/test_gateway.h"

namespace gw {
namespace {

using test::GatewayProcess;
using test::HttpsClient;

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
  auto read = c2.request("GET", "/fhir/Patient/" + test::resource_id(r->body));
  ASSERT_TRUE(read.has_value());
  EXPECT_EQ(read->status, 200) << read->body;
}

TEST(Durability, KillNineUnderConcurrentLoadLosesNothingAcknowledged) {
  test::TempDir dir;
  GatewayProcess gw;
  ASSERT_TRUE(gw.start(dir.path())) << gw.log();
  test::PatientWriters writers(gw.port(), 8, 100000);
  // Kill while requests are in flight on every connection.
  writers.wait_for(150, std::chrono::seconds(2));
  gw.kill9();
  writers.stop();
  auto acked = writers.acked();
  ASSERT_GT(acked.size(), 50u);

  GatewayProcess again;
  ASSERT_TRUE(again.start(dir.path())) << again.log();
  EXPECT_EQ(test::missing_patients(again.port(), acked), 0u) << "of " << acked.size() << " acknowledged creates";
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
  auto read = c2.request("GET", "/fhir/Patient/" + test::resource_id(r->body));
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
