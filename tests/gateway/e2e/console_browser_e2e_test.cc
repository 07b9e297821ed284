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
#include <thread>

#include "gateway/common/clock.h"
#include "gateway/common/json.h"
#include "tests/support/fixtures.h"
#include "tests/support/gateway_process.h"
#include "tests/support/https_client.h"
#include "tests/support/mllp_test_kit.h"
#include "tests/support/pki.h"
#include "tests/support/test_gateway.h"
#include "tests/support/test_store.h"

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

}  // namespace
}  // namespace gw
