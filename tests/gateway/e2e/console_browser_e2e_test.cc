// The web console in a real browser (issue 16): the real binary, a scripted
// load over REST and MLLP, then Debian's headless Chromium driven by
// puppeteer-core (tests/tools/console-browser.mjs) with client certificates:
//  - /dashboard (commissioner) shows exactly what /audit/flows answers for
//    the period of the load, and the queue figures of /dashboard/api/status;
//  - a message quarantined because the mapping lacked a care-team role is
//    found in /console by channel and status, viewed (raw, ACK, reason), and
//    after the mapping is fixed (the role added to the profile, the gateway
//    restarted) replayed from the page, which then shows it accepted and the
//    Patient it became; the replay is in the audit trail;
//  - a GP and a local-authority certificate get 403 on both pages.
// Screenshots of each page are kept in build/test-results/console-browser/.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "gateway/area/area.h"
#include "gateway/common/clock.h"
#include "gateway/common/json.h"
#include "tests/support/fixtures.h"
#include "tests/support/flows_kit.h"
#include "tests/support/gateway_process.h"
#include "tests/support/hook_receiver.h"
#include "tests/support/https_client.h"
#include "tests/support/mllp_test_kit.h"
#include "tests/support/pki.h"
#include "tests/support/plan_seed.h"
#include "tests/support/subscription_kit.h"
#include "tests/support/test_gateway.h"
#include "tests/support/test_store.h"
#include "tests/support/user_tokens_kit.h"

namespace gw {
namespace {

namespace fs = std::filesystem;
using test::GatewayProcess;
using test::HttpsClient;

struct NodeRun {
  int status = -1;
  std::string out;
};

NodeRun node(const std::vector<std::string>& args) {
  std::string cmd = "cd '" + std::string(GW_SOURCE_DIR) + "/tests/tools' && timeout 180 node console-browser.mjs";
  for (const auto& a : args) cmd += " '" + a + "'";
  NodeRun r;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) r.out.append(buf, n);
  int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// The last line the script printed: its JSON result.
std::optional<json::Document> result_of(const NodeRun& r) {
  auto end = r.out.find_last_not_of("\n");
  if (end == std::string::npos) return std::nullopt;
  auto start = r.out.rfind('\n', end);
  auto d = json::parse(r.out.substr(start == std::string::npos ? 0 : start + 1, end + 1 - (start == std::string::npos ? 0 : start + 1)));
  if (!d) return std::nullopt;
  return std::move(*d);
}

// Whether none of the URLs the pages requested (the script's "urls") holds `text`.
bool no_url_with(const json::Document& result, const std::string& text) {
  if (!result.HasMember("urls") || !result["urls"].IsArray()) return false;
  for (const auto& u : result["urls"].GetArray())
    if (std::string(u.GetString()).find(text) != std::string::npos) return false;
  return true;
}

std::string iso_seconds(int64_t ms) { return clock::iso_ms(ms).substr(0, 19) + "Z"; }

// A care-team role the shipped mapping does not know: the message is quarantined.
std::string message_with_role(const std::string& nhs, const std::string& control_id, const std::string& role) {
  return test::systmone_a28(nhs, control_id) + "ZCT|" + role + "|C87001^Rawmarsh Health Centre|20190601\r";
}

TEST(ConsoleBrowser, DashboardFiguresQuarantineFoundViewedAndReplayedFromThePage) {
  test::TempDir dir;
  // A profiles directory of our own, so the mapping can be fixed; the web
  // files sit beside it, as installed.
  const fs::path profiles = fs::path(dir.path()) / "profiles";
  fs::copy(fs::path(GW_SOURCE_DIR) / "profiles", profiles, fs::copy_options::recursive);
  fs::copy(fs::path(GW_SOURCE_DIR) / "web", fs::path(dir.path()) / "web", fs::copy_options::recursive);
  const std::string data = (fs::path(dir.path()) / "data").string();
  fs::create_directories(data);
  const std::string out = std::string(GW_BUILD_DIR) + "/test-results/console-browser";
  fs::create_directories(out);
  const std::string& pki = test::dev_pki_dir();
  const std::vector<std::string> args = {"--mllp-listen", "127.0.0.1:0", "--profiles-dir", profiles.string()};

  const int64_t started = clock::now_ms() - 1000;
  int64_t bad_id = 0;
  const std::string bad_nhs = test::nhs_number_for(4242);
  {
    GatewayProcess gw;
    ASSERT_TRUE(gw.start(data, args)) << gw.log();
    // The scripted load: three good ADT messages and one with an unknown
    // care-team role over MLLP; reads over REST by a GP.
    test::RawMllpClient c;
    ASSERT_TRUE(c.connect(gw.mllp_port()));
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(c.send_message(test::systmone_a28(test::nhs_number_for(100 + i), "LOAD-" + std::to_string(i))));
      auto f = c.read_frames(1);
      ASSERT_EQ(f.size(), 1u);
      ASSERT_EQ(test::ack_fields(f[0])->code, "AA") << f[0];
    }
    ASSERT_TRUE(c.send_message(message_with_role(bad_nhs, "CONSOLE-BAD", "PN")));
    auto f = c.read_frames(1);
    ASSERT_EQ(f.size(), 1u);
    ASSERT_EQ(test::ack_fields(f[0])->code, "AE") << f[0];
    auto gp = HttpsClient::for_role(gw.port(), "gp");
    for (int i = 0; i < 2; ++i) ASSERT_EQ(gp.request("GET", "/fhir/Patient?_count=5")->status, 200);
    auto admin = HttpsClient::for_role(gw.port(), "admin");
    auto q = json::parse(admin.request("GET", "/admin/quarantine")->body);
    ASSERT_TRUE(q.has_value());
    ASSERT_EQ((*q)["messages"].Size(), 1u);
    bad_id = (*q)["messages"][0]["id"].GetInt64();

    // The period ends after the load's rows were committed (reads' rows ride
    // the next group commit) and before the browser makes any of its own.
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    const int64_t end = (clock::now_ms() / 1000 + 1) * 1000;
    std::this_thread::sleep_for(std::chrono::milliseconds(end - clock::now_ms() + 300));
    const std::string port = std::to_string(gw.port());
    NodeRun dash = node({"--phase", "dashboard", "--port", port, "--pki", pki, "--out", out, "--from",
                     iso_seconds(started / 1000 * 1000), "--to", iso_seconds(end)});
    ASSERT_EQ(dash.status, 0) << dash.out;
    auto d = result_of(dash);
    ASSERT_TRUE(d.has_value()) << dash.out;
    const auto& shown = (*d)["shown"];
    // The load itself, as the page shows it: the quarantined message is a
    // failure and is counted in the quarantine; MLLP ingest flows are there.
    EXPECT_GE(std::stoi(shown["failures"].GetString()), 1) << dash.out;
    EXPECT_EQ(std::string(shown["quarantined"].GetString()), "1") << dash.out;
    bool mllp = false;
    for (const auto& row : shown["flowRows"].GetArray())
      if (std::string(row[3].GetString()) == "mllp" && std::stoi(row[6].GetString()) >= 3) mllp = true;
    EXPECT_TRUE(mllp) << "no MLLP flow with the 3 accepted messages on the page: " << dash.out;

    NodeRun find = node({"--phase", "find", "--port", port, "--pki", pki, "--out", out, "--message", std::to_string(bad_id)});
    ASSERT_EQ(find.status, 0) << find.out;
    auto fr = result_of(find);
    ASSERT_TRUE(fr.has_value()) << find.out;
    const auto& seen = (*fr)["seen"];
    EXPECT_EQ(std::string(seen["status"].GetString()), "quarantined");
    EXPECT_NE(std::string(seen["reason"].GetString()).find("care team role"), std::string::npos) << find.out;
    EXPECT_NE(std::string(seen["raw"].GetString()).find("ZCT|PN|"), std::string::npos) << find.out;
    EXPECT_NE(std::string(seen["answer"].GetString()).find("MSA|AE|CONSOLE-BAD"), std::string::npos) << find.out;
    EXPECT_TRUE(seen["replayVisible"].GetBool());
    // No URL the page made carries the patient's NHS number (the page's
    // text does: the raw message is shown).
    EXPECT_TRUE(no_url_with(*fr, bad_nhs)) << find.out;

    for (const char* role : {"gp", "local-authority"}) {
      NodeRun no = node({"--phase", "forbidden", "--role", role, "--port", port, "--pki", pki, "--out", out});
      EXPECT_EQ(no.status, 0) << role << ": " << no.out;
    }
    EXPECT_EQ(gw.terminate(), 0);
  }

  // The mapping fix: the role is added to the profile, the gateway restarted.
  {
    const fs::path mapping = profiles / "adapters" / "systmone.json";
    std::ifstream in(mapping);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto at = text.find("\"HV\": \"Health visitor\"");
    ASSERT_NE(at, std::string::npos);
    text.insert(at, "\"PN\": \"Practice nurse\", ");
    std::ofstream(mapping, std::ios::trunc) << text;
  }
  GatewayProcess gw;
  ASSERT_TRUE(gw.start(data, args)) << gw.log();
  NodeRun replay = node({"--phase", "replay", "--port", std::to_string(gw.port()), "--pki", pki, "--out", out,
                     "--message", std::to_string(bad_id)});
  ASSERT_EQ(replay.status, 0) << replay.out;
  auto rr = result_of(replay);
  ASSERT_TRUE(rr.has_value()) << replay.out;
  EXPECT_TRUE(no_url_with(*rr, bad_nhs)) << replay.out;
  EXPECT_GT((*rr)["urls"].Size(), 5u) << "the script did not record the page's requests";
  // What the page said is what the store holds: replayed, the patient exists,
  // and who replayed it from the console is in the trail.
  auto admin = HttpsClient::for_role(gw.port(), "admin");
  auto row = json::parse(admin.request("GET", "/admin/quarantine/" + std::to_string(bad_id))->body);
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(std::string((*row)["status"].GetString()), "replayed");
  auto gp = HttpsClient::for_role(gw.port(), "gp");
  auto found = json::parse(gp.request("GET", "/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number%7C" + bad_nhs)->body);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ((*found)["total"].GetInt(), 1);
  auto commissioner = HttpsClient::for_role(gw.port(), "commissioner");
  auto trail = commissioner.request("GET", "/fhir/AuditEvent?subtype=replay&agent=RXX&entity=inbound/" + std::to_string(bad_id));
  ASSERT_TRUE(trail.has_value());
  auto t = json::parse(trail->body);
  ASSERT_TRUE(t.has_value()) << trail->body;
  EXPECT_EQ((*t)["total"].GetInt(), 1) << trail->body;  // by the integration certificate (RXX)
  for (const char* shot : {"dashboard.png", "console-quarantined.png", "console-replayed.png", "forbidden-gp.png"})
    EXPECT_GT(fs::file_size(fs::path(out) / shot), 2000u) << shot;
}

std::string libfaketime_path() {
  for (const char* dir : {"/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib"})
    if (fs::exists(std::string(dir) + "/faketime/libfaketime.so.1")) return std::string(dir) + "/faketime/libfaketime.so.1";
  return {};
}

// Issue 17 on the dashboard, in the browser: three children's ED attendances
// disclosed to paediatric liaison (RXX05) by the real binary, one
// acknowledged; a health visitor breaks the glass twice on a chronology; the
// gateway is stopped and started again after the first deadline
// (libfaketime), and the timers escalate the two unacknowledged to RXX05's
// safeguarding lead. The page shows 4 waiting (2 disclosures, 2
// escalations), 2 escalated, per organisation and topic, and the break-glass
// count by person with its CSV — and these are what the APIs answer.
TEST(ConsoleBrowser, DashboardShowsWhatWaitsWhatEscalatedAndBreakGlassByPerson) {
  using namespace std::chrono;
  const std::string libfaketime = libfaketime_path();
  if (libfaketime.empty()) GTEST_FAIL() << "libfaketime is missing: run deploy/install-deps.sh (package faketime)";
  test::TempDir dir;  // the shipped profiles, and the web files beside them
  const std::string cfg = dir.path() + "/config.json";
  std::ofstream(cfg) << R"({"subscriptions":{"first_retry_ms":100,"max_backoff_ms":500,"poll_ms":200},)"
                     << R"("users":{"issuers":[{"issuer":")" << test::kTestIssuer << R"(","audience":")"
                     << test::kTestAudience << R"(","jwks_file":")" << test::test_jwks_file() << R"("}]}})";
  const std::string data = dir.path() + "/data";
  const std::string out = std::string(GW_BUILD_DIR) + "/test-results/console-browser";
  fs::create_directories(out);
  const std::vector<std::string> args = {"--config", cfg};
  test::HookReceiver rx;
  test::GatewayProcess gw;
  ASSERT_TRUE(gw.start(data, args)) << gw.log();
  auto subscribe = [&](const std::string& role, const std::string& topic, const std::string& path) {
    auto c = HttpsClient::for_role(gw.port(), role);
    auto s = c.request("POST", "/fhir/Subscription",
                       test::subscription_json({.topic = topic, .endpoint = rx.url(path), .content = "full-resource"}),
                       {{"Content-Type", "application/fhir+json"}});
    ASSERT_TRUE(s.has_value());
    ASSERT_EQ(s->status, 201) << s->body;
    ASSERT_TRUE(rx.wait_for([&](auto& p) { return test::count_type(p, "handshake", path) >= 1; }, 10s));
  };
  subscribe("paediatric-liaison", "child-ed-attendance", "/pl");
  subscribe("paediatric-liaison", "safeguarding-escalation", "/lead");
  auto integ = HttpsClient::for_role(gw.port(), "integration");
  const std::vector<std::string> children = {"9990500002", test::nhs_number_from("999050004"),
                                             test::nhs_number_from("999050005")};
  for (size_t i = 0; i < children.size(); ++i)
    for (const std::string& m : {test::a28(children[i], "Child" + std::to_string(i), "20190611", "B86001", {}),
                                 test::ed_a04(children[i], "20190611", "RXX01", "20261201", "B" + std::to_string(i), {})}) {
      auto r = integ.request("POST", "/ingest/systmone", m, {{"Content-Type", "application/hl7-v2"}});
      ASSERT_TRUE(r.has_value());
      ASSERT_EQ(r->status, 200) << r->body;
    }
  ASSERT_TRUE(rx.wait_for([](auto& p) { return test::event_numbers(p, "/pl").size() >= 3; }, 20s)) << gw.log();
  auto disclosures = test::focus_resources(rx.posts(), "/pl");
  ASSERT_EQ(disclosures.size(), 3u);
  const std::string sent = disclosures[0]["sent"].GetString();
  auto pl = HttpsClient::for_role(gw.port(), "paediatric-liaison");
  auto ack = pl.request("POST", "/fhir/Communication/" + std::string(disclosures[2]["id"].GetString()) + "/$acknowledge", "",
                        {{"Content-Type", "application/fhir+json"}});
  ASSERT_TRUE(ack.has_value());
  ASSERT_EQ(ack->status, 200) << ack->body;
  // A health visitor (RXX02, no caseload link) breaks the glass twice.
  auto hv = HttpsClient::for_role(gw.port(), "health-visiting");
  auto found = json::parse(hv.request("GET", "/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number%7C" + children[0])->body);
  ASSERT_TRUE(found.has_value());
  ASSERT_TRUE(found->HasMember("entry"));
  const std::string child = (*found)["entry"][0]["resource"]["id"].GetString();
  for (int i = 0; i < 2; ++i) {
    auto r = hv.request("GET", "/fhir/Patient/" + child + "/$chronology", "",
                        {test::user_header("health-visiting", "R8001", "hv-user-3", "Sam Visitor"),
                         {"X-Break-Glass-Reason", "Child seen at home visit with bruising; GP closed"}});
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(r->status, 200) << r->body;
  }
  EXPECT_EQ(gw.terminate(), 0);

  // Started again an hour past the first deadline: the timers catch up.
  auto area = area::Area::load(std::string(GW_SOURCE_DIR) + "/profiles", floor<days>(system_clock::now())).value();
  auto deadlines = area->escalation_deadlines("child-ed-attendance", sent).value().value();
  auto at = system_clock::time_point(milliseconds(clock::parse_iso_ms(deadlines.first).value())) + hours(1);
  const int first = static_cast<int>(ceil<days>(at - system_clock::now()).count());
  test::GatewayProcess later;
  later.set_env({{"LD_PRELOAD", libfaketime}, {"FAKETIME", "+" + std::to_string(first) + "d"}});
  ASSERT_TRUE(later.start(data, args)) << later.log();
  ASSERT_TRUE(rx.wait_for([](auto& p) {
    auto n = test::event_numbers(p, "/lead");
    return std::set<int64_t>(n.begin(), n.end()).size() >= 2;
  }, 30s)) << later.log();
  std::this_thread::sleep_for(std::chrono::seconds(1));

  NodeRun page = node({"--phase", "backlog", "--port", std::to_string(later.port()), "--pki", test::dev_pki_dir(),
                       "--out", out});
  ASSERT_EQ(page.status, 0) << page.out;
  auto r = result_of(page);
  ASSERT_TRUE(r.has_value()) << page.out;
  const auto& shown = (*r)["shown"];
  EXPECT_EQ(std::string(shown["unacknowledged"].GetString()), "4") << page.out;
  EXPECT_EQ(std::string(shown["escalated"].GetString()), "2") << page.out;
  EXPECT_EQ(std::string(shown["escalatedToNurse"].GetString()), "0") << page.out;
  std::vector<std::vector<std::string>> rows;
  for (const auto& tr : shown["backlog"].GetArray()) {
    rows.emplace_back();
    for (const auto& td : tr.GetArray()) rows.back().emplace_back(td.GetString());
  }
  EXPECT_EQ(rows, (std::vector<std::vector<std::string>>{{"RXX05", "child-ed-attendance", "2", "2", "0"},
                                                         {"RXX05", "safeguarding-escalation", "2", "0", "0"}}))
      << page.out;
  ASSERT_EQ(shown["breakGlass"].Size(), 1u) << page.out;
  const auto& g = shown["breakGlass"][0];
  EXPECT_EQ(std::string(g[0].GetString()) + "|" + g[1].GetString() + "|" + g[2].GetString() + "|" + g[3].GetString(),
            "RXX02|hv-user-3|Sam Visitor|2")
      << page.out;
  EXPECT_EQ(std::string(shown["csvLines"][1].GetString()),
            std::string("\"RXX02\",\"hv-user-3\",\"Sam Visitor\",\"") + test::kTestIssuer + "\",2")
      << page.out;
  // The reason is nowhere on the page's data.
  EXPECT_EQ(page.out.find("bruising"), std::string::npos);
  for (const auto& c : children) EXPECT_TRUE(no_url_with(*r, c)) << page.out;
  EXPECT_GT(fs::file_size(fs::path(out) / "dashboard-backlog.png"), 2000u);
  EXPECT_EQ(later.terminate(), 0);
}

}  // namespace
}  // namespace gw
