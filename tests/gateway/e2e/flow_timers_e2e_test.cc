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

#include "gateway/area/area.h"
#include "gateway/area/working_days.h"
#include "gateway/common/clock.h"
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

std::string libfaketime_path() {
  for (const char* dir : {"/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib"})
    if (std::filesystem::exists(std::string(dir) + "/faketime/libfaketime.so.1"))
      return std::string(dir) + "/faketime/libfaketime.so.1";
  return {};
}

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
  const std::string libfaketime = libfaketime_path();
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

// Issue 17: an unacknowledged disclosure escalates with the real binary —
// the child's ED attendance reaches paediatric liaison (a real HTTPS
// receiver), the gateway is killed with -9, and started again after the
// first deadline (libfaketime): the liaison's safeguarding lead hears once;
// killed and started again the same day, nothing more; after the second
// deadline the commissioner's designated nurse hears once.
TEST(EscalationE2E, UnacknowledgedDisclosureEscalatesOnceAcrossKillNineToTheLeadThenTheNurse) {
  const std::string libfaketime = libfaketime_path();
  if (libfaketime.empty()) GTEST_FAIL() << "libfaketime is missing: run deploy/install-deps.sh (package faketime)";
  using namespace std::chrono;
  auto later_by = [&](int d) {
    return std::vector<std::pair<std::string, std::string>>{{"LD_PRELOAD", libfaketime},
                                                           {"FAKETIME", "+" + std::to_string(d) + "d"}};
  };
  test::TempDir dir;
  std::string cfg = dir.path() + "/config.json";
  std::ofstream(cfg) << R"({"subscriptions":{"first_retry_ms":100,"max_backoff_ms":500,"poll_ms":200}})";
  const std::string db = dir.path() + "/data/gateway.db";
  test::HookReceiver rx;
  test::GatewayProcess gw;
  ASSERT_TRUE(gw.start(dir.path() + "/data", {"--config", cfg})) << gw.log();
  auto subscribe = [&](const std::string& role, const std::string& topic, const std::string& path) {
    auto c = test::HttpsClient::for_role(gw.port(), role);
    auto s = c.request("POST", "/fhir/Subscription",
                       test::subscription_json({.topic = topic, .endpoint = rx.url(path), .content = "full-resource"}),
                       {{"Content-Type", "application/fhir+json"}});
    ASSERT_TRUE(s.has_value());
    ASSERT_EQ(s->status, 201) << s->body;
    ASSERT_TRUE(rx.wait_for([&](auto& p) { return test::count_type(p, "handshake", path) >= 1; }, 10s));
  };
  subscribe("paediatric-liaison", "child-ed-attendance", "/pl");
  subscribe("paediatric-liaison", "safeguarding-escalation", "/lead");
  subscribe("commissioner", "safeguarding-escalation", "/nurse");
  auto integ = test::HttpsClient::for_role(gw.port(), "integration");
  for (const std::string& m : {test::a28("9990500002", "Mia", "20190611", "B86001", {}),
                               test::ed_a04("9990500002", "20190611", "RXX01", "20261201", "E1", {})}) {
    auto r = integ.request("POST", "/ingest/systmone", m, {{"Content-Type", "application/hl7-v2"}});
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(r->status, 200) << r->body;
  }
  ASSERT_TRUE(rx.wait_for([](auto& p) { return test::event_numbers(p, "/pl").size() >= 1; }, 15s));
  auto disclosures = test::focus_resources(rx.posts(), "/pl");
  ASSERT_EQ(disclosures.size(), 1u);
  std::string sent = disclosures[0]["sent"].GetString();
  EXPECT_STREQ(disclosures[0]["status"].GetString(), "in-progress");
  for (int i = 0; i < 100 && count(db, "SELECT count(*) FROM timers WHERE kind = 'escalation' AND status = 'pending'") < 2; ++i)
    std::this_thread::sleep_for(100ms);
  ASSERT_EQ(count(db, "SELECT count(*) FROM timers WHERE kind = 'escalation' AND status = 'pending'"), 2);
  gw.kill9();

  // Whole days from now to an hour past each deadline (the second is at
  // least two days after the first, so the first offset is before it).
  auto area = area::Area::load(std::string(GW_SOURCE_DIR) + "/profiles", floor<days>(system_clock::now())).value();
  auto deadlines = area->escalation_deadlines("child-ed-attendance", sent).value().value();
  auto days_to = [](const std::string& iso) {
    auto at = system_clock::time_point(milliseconds(clock::parse_iso_ms(iso).value())) + hours(1);
    return static_cast<int>(ceil<days>(at - system_clock::now()).count());
  };
  const int first = days_to(deadlines.first), second = days_to(deadlines.second);
  ASSERT_LT(first, second);
  // (wait_for's predicate gets the posts: asking the receiver again inside it would deadlock.)
  auto distinct_in = [](const std::vector<test::ReceivedPost>& posts, const std::string& path) {
    auto n = test::event_numbers(posts, path);
    return std::set<int64_t>(n.begin(), n.end()).size();
  };
  auto distinct = [&](const std::string& path) { return distinct_in(rx.posts(), path); };
  test::GatewayProcess after_first;
  after_first.set_env(later_by(first));
  ASSERT_TRUE(after_first.start(dir.path() + "/data", {"--config", cfg})) << after_first.log();
  ASSERT_TRUE(rx.wait_for([&](auto& p) { return distinct_in(p, "/lead") >= 1; }, 30s)) << after_first.log();
  auto lead = test::focus_resources(rx.posts(), "/lead");
  ASSERT_FALSE(lead.empty());
  std::string text = test::payload_text(lead[0]);
  EXPECT_NE(text.find("Communication/" + std::string(disclosures[0]["id"].GetString())), std::string::npos) << text;
  EXPECT_NE(text.find("was not acknowledged by its deadline " + deadlines.first), std::string::npos) << text;
  after_first.kill9();

  test::GatewayProcess same_day;
  same_day.set_env(later_by(first));
  ASSERT_TRUE(same_day.start(dir.path() + "/data", {"--config", cfg})) << same_day.log();
  std::this_thread::sleep_for(2s);
  EXPECT_EQ(distinct("/lead"), 1u);
  EXPECT_EQ(distinct("/nurse"), 0u) << "the second deadline has not passed";
  same_day.kill9();

  test::GatewayProcess after_second;
  after_second.set_env(later_by(second));
  ASSERT_TRUE(after_second.start(dir.path() + "/data", {"--config", cfg})) << after_second.log();
  ASSERT_TRUE(rx.wait_for([&](auto& p) { return distinct_in(p, "/nurse") >= 1; }, 30s)) << after_second.log();
  auto nurse = test::focus_resources(rx.posts(), "/nurse");
  ASSERT_FALSE(nurse.empty());
  EXPECT_STREQ(nurse[0]["recipient"][0]["identifier"]["value"].GetString(), "QWO");
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(distinct("/lead"), 1u);
  EXPECT_EQ(distinct("/nurse"), 1u);
  EXPECT_EQ(count(db, "SELECT count(*) FROM timers WHERE kind = 'escalation' AND status = 'fired'"), 2);
  EXPECT_EQ(after_second.terminate(), 0);
}

}  // namespace
}  // namespace gw
