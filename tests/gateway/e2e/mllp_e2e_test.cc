// HL7 v2 over MLLP into the real binary: a client nobody here wrote, a kill -9
// in the middle of a load (every AA must be found after restart), and the
// replay command on a quarantined message.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <thread>

#include "gateway/common/json.h"
#include "gateway/delivery/mllp_sender.h"
#include "tests/support/pki.h"
#include "tests/support/fixtures.h"
#include "tests/support/gateway_process.h"
#include "tests/support/https_client.h"
#include "tests/support/mllp_test_kit.h"
#include "tests/support/test_gateway.h"

namespace gw {
namespace {

using test::GatewayProcess;
using test::HttpsClient;


int patients_with(HttpsClient& c, const std::string& nhs) {
  auto r = c.request("GET", "/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number%7C" + nhs);
  if (!r || r->status != 200) return -1;
  auto d = json::parse(r->body);
  return d && d->IsObject() && d->HasMember("total") ? (*d)["total"].GetInt() : -1;
}

struct CmdResult {
  int status = -1;
  std::string out;
};
CmdResult run(const std::string& cmd) {
  CmdResult r;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) r.out.append(buf, n);
  int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

TEST(MllpEndToEnd, NodeHl7ClientSendsSamplesAndGetsAaOnlyForCommittedMessages) {
  test::TempDir dir;
  GatewayProcess gw;
  ASSERT_TRUE(gw.start(dir.path(), {"--mllp-listen", "127.0.0.1:0"})) << gw.log();
  const std::string fixtures = std::string(GW_SOURCE_DIR) + "/tests/fixtures/systmone/";
  CmdResult r = run("node " + std::string(GW_SOURCE_DIR) + "/tests/tools/mllp-send.js --port " +
              std::to_string(gw.mllp_port()) + " " + fixtures + "adt_a28_child.hl7 " + fixtures +
              "adt_a28_parent.hl7 " + fixtures + "broken/bad_nhs_checksum.hl7");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("AA|S1-000101"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("AA|S1-000102"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("AE|"), std::string::npos) << r.out;
  auto c = HttpsClient::for_role(gw.port(), "gp");
  EXPECT_EQ(patients_with(c, "9990237573"), 1);
  EXPECT_EQ(patients_with(c, "9990079196"), 1);
  // The bad message is in the quarantine, for admins only.
  auto admin = HttpsClient::for_role(gw.port(), "admin");
  auto q = admin.request("GET", "/admin/quarantine");
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(q->status, 200);
  EXPECT_NE(q->body.find("\"channel\":\"mllp\""), std::string::npos) << q->body;
  EXPECT_EQ(c.request("GET", "/admin/quarantine")->status, 403);
  EXPECT_EQ(gw.log().find("9990237573"), std::string::npos) << "an NHS number reached the log";
}

TEST(MllpEndToEnd, MutualTlsListenerTakesIntegrationCertificatesOnly) {
  test::TempDir dir;
  GatewayProcess gw;
  ASSERT_TRUE(gw.start(dir.path(), {"--mllp-tls-listen", "127.0.0.1:0"})) << gw.log();
  const std::string& pki = test::dev_pki_dir();
  auto endpoint = [&](const std::string& role) {
    delivery::MllpEndpoint e = test::tls_feed(gw.mllp_tls_port(), pki, role);
    e.max_attempts = 2;
    e.initial_backoff = std::chrono::milliseconds(50);
    e.ack_timeout = std::chrono::milliseconds(3000);
    return e;
  };
  delivery::MllpSender feed(endpoint("integration"));
  std::string nhs = test::nhs_number_for(4242);
  auto r = feed.send(test::systmone_a28(nhs, "TLS-1"));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->ack_code, "AA") << r->text << r->last_error;
  auto c = HttpsClient::for_role(gw.port(), "gp");
  EXPECT_EQ(patients_with(c, nhs), 1);
  // A GP system's certificate is valid but its role is not a feed's.
  delivery::MllpSender gp(endpoint("gp"));
  auto refused = gp.send(test::systmone_a28(test::nhs_number_for(4243), "TLS-2"));
  ASSERT_TRUE(refused.has_value());
  EXPECT_FALSE(refused->ok());
  EXPECT_EQ(patients_with(c, test::nhs_number_for(4243)), 0);
}

TEST(MllpEndToEnd, KillNineUnderLoadLosesNoAcknowledgedMessage) {
  test::TempDir dir;
  GatewayProcess gw;
  ASSERT_TRUE(gw.start(dir.path(), {"--mllp-listen", "127.0.0.1:0", "--log-level", "warn"})) << gw.log();
  std::mutex mu;
  std::vector<std::string> acked;  // NHS numbers whose message got AA
  std::atomic<bool> stop{false};
  std::vector<std::thread> senders;
  for (int t = 0; t < 8; ++t) {
    senders.emplace_back([&, t] {
      test::RawMllpClient c;
      if (!c.connect(gw.mllp_port())) return;
      for (uint32_t i = 0; !stop.load(); ++i) {
        std::string nhs = test::nhs_number_for(500000 + t * 10000 + i);
        std::string ctl = "K" + std::to_string(t) + "-" + std::to_string(i);
        if (!c.send_message(test::systmone_a28(nhs, ctl))) return;
        auto frames = c.read_frames(1, std::chrono::seconds(10));
        if (frames.empty()) return;  // killed: this one was never acknowledged
        auto f = test::ack_fields(frames[0]);
        if (f && f->code == "AA" && f->control_id == ctl) {
          std::lock_guard lk(mu);
          acked.push_back(nhs);
        }
      }
    });
  }
  for (int i = 0; i < 1000; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::lock_guard lk(mu);
    if (acked.size() >= 200) break;
  }
  gw.kill9();
  stop = true;
  for (auto& s : senders) s.join();
  ASSERT_GT(acked.size(), 50u);

  GatewayProcess again;
  ASSERT_TRUE(again.start(dir.path())) << again.log();
  auto c = HttpsClient::for_role(again.port(), "gp");
  size_t missing = 0;
  for (const auto& nhs : acked)
    if (patients_with(c, nhs) != 1) ++missing;
  EXPECT_EQ(missing, 0u) << "of " << acked.size() << " acknowledged messages";
}

TEST(MllpEndToEnd, ReplayCommandRerunsTheQuarantine) {
  test::TempDir dir;
  int64_t bad_id = 0;
  {
    GatewayProcess gw;
    ASSERT_TRUE(gw.start(dir.path(), {"--mllp-listen", "127.0.0.1:0"})) << gw.log();
    test::RawMllpClient c;
    ASSERT_TRUE(c.connect(gw.mllp_port()));
    // A wrong check digit: AE, quarantined.
    std::string nhs = test::nhs_number_for(77);
    std::string wrong = nhs.substr(0, 9) + static_cast<char>('0' + (nhs[9] - '0' + 1) % 10);
    ASSERT_TRUE(c.send_message(test::systmone_a28(wrong, "RP-1")));
    auto frames = c.read_frames(1);
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(test::ack_fields(frames[0])->code, "AE");
    auto admin = HttpsClient::for_role(gw.port(), "admin");
    auto q = json::parse(admin.request("GET", "/admin/quarantine")->body);
    ASSERT_TRUE(q.has_value());
    bad_id = (*q)["messages"][0]["id"].GetInt64();
    EXPECT_EQ(gw.terminate(), 0);
  }
  // Still invalid: the command says so, exits 1 and the message stays quarantined.
  // Through run_gateway_command: on the engine of this run (tests/support/test_store.h).
  CmdResult r;
  r.status = test::run_gateway_command({"replay", "--data-dir", dir.path(), "--profiles-dir",
                                        std::string(GW_SOURCE_DIR) + "/profiles", "--id", std::to_string(bad_id)},
                                       r.out);
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("invalid"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("PID-3"), std::string::npos) << r.out;
  CmdResult none;
  none.status = test::run_gateway_command({"replay", "--data-dir", dir.path()}, none.out);
  EXPECT_EQ(none.status, 2) << none.out;  // says which messages to replay
  CmdResult help;
  help.status = test::run_gateway_command({"replay", "--help"}, help.out);
  EXPECT_EQ(help.status, 0);
}

}  // namespace
}  // namespace gw
