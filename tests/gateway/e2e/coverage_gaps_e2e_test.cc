// The weekly coverage-gaps summary with the real binary (docs/COVERAGE.md,
// docs/TIMERS.md): the commissioner subscribes with a real mutual-TLS
// receiver; the gateway schedules the next Monday's summary, is killed with
// -9, and is started again the day after that Monday (libfaketime moves its
// clock): it sends the summary once, late, with counts and no patient
// identifier; started again the day after, nothing more; a week later, the
// next week's summary, once.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "gateway/common/json.h"
#include "tests/support/fixtures.h"
#include "tests/support/gateway_process.h"
#include "tests/support/hook_receiver.h"
#include "tests/support/https_client.h"
#include "tests/support/plan_seed.h"
#include "tests/support/subscription_kit.h"
#include "tests/support/test_gateway.h"
#include "tests/support/test_store.h"

namespace gw {
namespace {

using namespace std::chrono_literals;

TEST(CoverageGapsE2E, WeeklySummaryFiresOnceAfterKillNineAndAgainTheNextWeek) {
  std::string libfaketime;
  for (const char* dir : {"/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib"})
    if (std::filesystem::exists(std::string(dir) + "/faketime/libfaketime.so.1")) {
      libfaketime = std::string(dir) + "/faketime/libfaketime.so.1";
      break;
    }
  if (libfaketime.empty()) GTEST_FAIL() << "libfaketime is missing: run deploy/install-deps.sh (package faketime)";
  auto shifted = [&](int d) {
    return std::vector<std::pair<std::string, std::string>>{{"LD_PRELOAD", libfaketime},
                                                           {"FAKETIME", "+" + std::to_string(d) + "d"}};
  };
  test::TempDir dir;
  std::string cfg = dir.path() + "/config.json";
  std::ofstream(cfg) << R"({"subscriptions":{"first_retry_ms":100,"max_backoff_ms":500,"poll_ms":200}})";
  const std::string db = dir.path() + "/data/gateway.db";
  auto scalar = [&](const std::string& sql) { return test::store_scalar(db, sql); };
  test::HookReceiver rx;
  test::GatewayProcess gw;
  ASSERT_TRUE(gw.start(dir.path() + "/data", {"--config", cfg})) << gw.log();
  auto commissioner = test::HttpsClient::for_role(gw.port(), "commissioner");
  auto s = commissioner.request(
      "POST", "/fhir/Subscription",
      test::subscription_json({.topic = "coverage-gaps", .endpoint = rx.url("/cov"), .content = "full-resource"}),
      {{"Content-Type", "application/fhir+json"}});
  ASSERT_TRUE(s.has_value());
  ASSERT_EQ(s->status, 201) << s->body;
  ASSERT_TRUE(rx.wait_for([](auto& p) { return test::count_type(p, "handshake", "/cov") >= 1; }, 10s));
  // One gap to count: a child on a plan with no practice and no care team.
  auto la = test::HttpsClient::for_role(gw.port(), "local-authority");
  auto integ = test::HttpsClient::for_role(gw.port(), "integration");
  const std::string nhs = test::nhs_number_from("999050267");
  std::string child = test::create_patient(integ, nhs, R"("birthDate":"2023-01-15")");
  ASSERT_FALSE(test::create_plan(la, child, nhs, test::PlanSeed{}).empty());

  const std::string pending = "SELECT count(*) FROM timers WHERE kind = 'coverage-gaps' AND status = 'pending'";
  for (int i = 0; i < 100 && scalar(pending) < 1; ++i) std::this_thread::sleep_for(100ms);
  ASSERT_EQ(scalar(pending), 1) << "scheduled when the engine started";
  const int64_t due = scalar(
      "SELECT CAST(strftime('%s', due) AS INTEGER) FROM timers WHERE kind = 'coverage-gaps' AND status = 'pending'");
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count();
  ASSERT_GT(due, now);
  ASSERT_LE(due - now, 7 * 86400);
  gw.kill9();
  // The day after the summary's day: the gateway was down at the time.
  const int after = static_cast<int>((due - now + 86399) / 86400) + 1;

  // (wait_for's predicate gets the posts: asking the receiver again inside it would deadlock.)
  auto numbers_in = [](const std::vector<test::ReceivedPost>& posts) {
    std::set<int64_t> out;
    for (auto n : test::event_numbers(posts, "/cov")) out.insert(n);
    return out;
  };
  auto numbers = [&] { return numbers_in(rx.posts()); };
  test::GatewayProcess later;
  later.set_env(shifted(after));
  ASSERT_TRUE(later.start(dir.path() + "/data", {"--config", cfg})) << later.log();
  ASSERT_TRUE(rx.wait_for([&](auto& p) { return numbers_in(p).size() >= 1; }, 30s)) << later.log();
  std::string body;
  for (const auto& p : rx.posts())
    if (p.target == "/cov" && p.body.find("weekly summary") != std::string::npos) body = p.body;
  EXPECT_NE(body.find("sent late: the gateway was not running at"), std::string::npos) << body;
  EXPECT_NE(body.find("[plan-no-gp-practice]: 1"), std::string::npos) << body;
  EXPECT_EQ(body.find(nhs), std::string::npos);
  EXPECT_EQ(body.find("Patient/" + child), std::string::npos);
  later.kill9();

  test::GatewayProcess again;
  again.set_env(shifted(after + 1));
  ASSERT_TRUE(again.start(dir.path() + "/data", {"--config", cfg})) << again.log();
  std::this_thread::sleep_for(2s);
  EXPECT_EQ(numbers(), (std::set<int64_t>{1})) << "one summary, whatever was resent";
  EXPECT_EQ(again.terminate(), 0);

  test::GatewayProcess next_week;
  next_week.set_env(shifted(after + 7));
  ASSERT_TRUE(next_week.start(dir.path() + "/data", {"--config", cfg})) << next_week.log();
  ASSERT_TRUE(rx.wait_for([&](auto& p) { return numbers_in(p).size() >= 2; }, 30s)) << next_week.log();
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(numbers(), (std::set<int64_t>{1, 2}));
  EXPECT_EQ(next_week.terminate(), 0);
  EXPECT_EQ(scalar("SELECT count(*) FROM timers WHERE kind = 'coverage-gaps' AND status = 'fired'"), 2);
  EXPECT_EQ(scalar(pending), 1);
}

}  // namespace
}  // namespace gw
