// Durable timers with the real binary (docs/TIMERS.md): a looked-after
// child's plan schedules "due soon" and "overdue" reminders for the LAC
// health team; the gateway is killed with -9, stays down over both days, and
// is started again "the day after" (libfaketime moves its clock): it catches
// up, sending each reminder once; killed and started again, it sends nothing
// more.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <fstream>
#include <set>
#include <thread>

#include "gateway/area/working_days.h"
#include "gateway/common/json.h"
#include "tests/support/flows_kit.h"
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

int64_t count(const std::string& db_path, const std::string& sql) { return test::store_scalar(db_path, sql); }

// Event number -> the Communication's text (an event delivered twice, at
// least once as promised, counts once).
std::map<int64_t, std::string> reminder_texts(const std::vector<test::ReceivedPost>& posts) {
  std::map<int64_t, std::string> out;
  for (const auto& p : posts) {
    auto seen = test::read_notification(p.body);
    if (seen.type != "event-notification") continue;
    auto b = json::parse(p.body);
    if (!b) continue;
    const json::Value& entries = (*b)["entry"];
    for (json::SizeType i = 1; i < entries.Size() && i - 1 < seen.numbers.size(); ++i) {
      if (!entries[i].HasMember("resource")) continue;
      std::string text;
      for (const auto& x : entries[i]["resource"]["payload"].GetArray()) text += std::string(x["contentString"].GetString()) + "\n";
      out[seen.numbers[i - 1]] = text;
    }
  }
  return out;
}

TEST(FlowTimersE2E, RemindersFireOnceAfterKillNineAndARestartTheDayAfter) {
  std::string libfaketime;
  for (const char* dir : {"/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib"})
    if (std::filesystem::exists(std::string(dir) + "/faketime/libfaketime.so.1")) {
      libfaketime = std::string(dir) + "/faketime/libfaketime.so.1";
      break;
    }
  if (libfaketime.empty()) GTEST_FAIL() << "libfaketime is missing: run deploy/install-deps.sh (package faketime)";
  auto day_after = [&](int d) {
    return std::vector<std::pair<std::string, std::string>>{{"LD_PRELOAD", libfaketime},
                                                           {"FAKETIME", "+" + std::to_string(d) + "d"}};
  };
  using namespace std::chrono;
  const area::Date today = floor<days>(system_clock::now());
  auto calendar = area::WorkingDays::load(std::string(GW_SOURCE_DIR) + "/profiles", today).value();
  const area::Date due = calendar.add(today, 20).value();
  const area::Date soon = calendar.add(due, -5).value();
  // "The day after" the overdue reminder's day (due + 1): down on both days.
  const int offset = static_cast<int>((due + days(2) - today).count());

  test::TempDir dir;
  std::string cfg = dir.path() + "/config.json";
  std::ofstream(cfg) << R"({"subscriptions":{"first_retry_ms":100,"max_backoff_ms":500,"poll_ms":200}})";
  const std::string db = dir.path() + "/data/gateway.db";
  test::HookReceiver rx;
  test::GatewayProcess gw;
  ASSERT_TRUE(gw.start(dir.path() + "/data", {"--config", cfg})) << gw.log();
  auto lac = test::HttpsClient::for_role(gw.port(), "lac-health");
  auto s = lac.request("POST", "/fhir/Subscription",
                       test::subscription_json({.topic = "lac-health-assessment-due", .endpoint = rx.url("/lac"),
                                                .content = "full-resource"}),
                       {{"Content-Type", "application/fhir+json"}});
  ASSERT_TRUE(s.has_value());
  ASSERT_EQ(s->status, 201) << s->body;
  ASSERT_TRUE(rx.wait_for([](auto& p) { return test::count_type(p, "handshake", "/lac") >= 1; }, 10s));
  auto integ = test::HttpsClient::for_role(gw.port(), "integration");
  const std::string nhs = test::nhs_number_from("999050259");
  std::string child = test::create_patient(integ, nhs, R"("birthDate":"2020-01-15")");
  auto la = test::HttpsClient::for_role(gw.port(), "local-authority");
  test::PlanSeed plan;
  plan.abbreviation = "LAC";
  plan.start = area::format_date(today);
  ASSERT_FALSE(test::create_plan(la, child, nhs, plan).empty());
  ASSERT_TRUE(rx.wait_for([](auto& p) { return test::event_numbers(p, "/lac").size() >= 1; }, 15s));
  for (int i = 0; i < 100 && count(db, "SELECT count(*) FROM timers WHERE kind = 'lac-health-assessment' AND status = 'pending'") < 2; ++i)
    std::this_thread::sleep_for(100ms);
  ASSERT_EQ(count(db, "SELECT count(*) FROM timers WHERE kind = 'lac-health-assessment' AND status = 'pending'"), 2) << "scheduled before the crash";
  gw.kill9();

  test::GatewayProcess later;
  later.set_env(day_after(offset));
  ASSERT_TRUE(later.start(dir.path() + "/data", {"--config", cfg})) << later.log();
  auto distinct = [](const std::vector<test::ReceivedPost>& p) {
    auto n = test::event_numbers(p, "/lac");
    return std::set<int64_t>(n.begin(), n.end()).size();
  };
  ASSERT_TRUE(rx.wait_for([&](auto& p) { return distinct(p) >= 3; }, 30s))
      << test::event_numbers(rx.posts(), "/lac").size() << "\n" << later.log();
  auto texts = reminder_texts(rx.posts());
  ASSERT_GE(texts.size(), 3u);
  const std::string due_text = area::format_date(due);
  EXPECT_NE(texts[1].find("Initial health assessment due " + due_text + ": not yet done"), std::string::npos) << texts[1];
  EXPECT_NE(texts[2].find("due " + due_text + " (due within 5 working days; sent late: the gateway was not running on " +
                          area::format_date(soon) + ")"),
            std::string::npos)
      << texts[2];
  EXPECT_NE(texts[3].find("due " + due_text + " is OVERDUE"), std::string::npos) << texts[3];
  later.kill9();

  test::GatewayProcess again;
  again.set_env(day_after(offset + 1));
  ASSERT_TRUE(again.start(dir.path() + "/data", {"--config", cfg})) << again.log();
  std::this_thread::sleep_for(2s);
  std::set<int64_t> numbers;
  for (auto n : test::event_numbers(rx.posts(), "/lac")) numbers.insert(n);
  EXPECT_EQ(numbers, (std::set<int64_t>{1, 2, 3})) << "each reminder once, whatever was resent";
  EXPECT_EQ(count(db, "SELECT count(*) FROM timers WHERE kind = 'lac-health-assessment' AND status = 'fired'"), 2);
  EXPECT_EQ(count(db, "SELECT count(*) FROM timers WHERE kind = 'lac-health-assessment' AND status = 'pending'"), 0);
  EXPECT_EQ(again.terminate(), 0);
}

}  // namespace
}  // namespace gw
