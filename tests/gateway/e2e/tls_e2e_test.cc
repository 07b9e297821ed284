// Certificates in the real binary: revocation lists checked on every
// handshake, SIGHUP reloading certificate, key, client CA and CRLs without a
// restart or a dropped connection, a bad file refused with the old one kept,
// and start-up refusing files and directories an operator named that are not
// there. Each test works on its own copy of the dev PKI, which it changes.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "gateway/delivery/mllp_sender.h"
#include "tests/support/fixtures.h"
#include "tests/support/gateway_process.h"
#include "tests/support/https_client.h"
#include "tests/support/mllp_test_kit.h"
#include "tests/support/pki.h"
#include "tests/support/test_gateway.h"

namespace gw {
namespace {

using test::GatewayProcess;
using test::HttpsClient;


size_t count_of(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) ++n;
  return n;
}

// A gateway on its own copy of the dev PKI, with the copy's CRL loaded.
struct PkiGateway {
  test::TempDir dir;
  std::string pki = dir.path() + "/pki";
  GatewayProcess gw;

  explicit PkiGateway(std::vector<std::string> extra = {}) {
    test::copy_dev_pki(pki);
    std::vector<std::string> args = {"--tls-cert", pki + "/server.pem", "--tls-key", pki + "/server.key",
                                     "--client-ca", pki + "/ca.pem",    "--crl",     pki + "/crl.pem",
                                     "--mllp-tls-listen", "127.0.0.1:0"};
    args.insert(args.end(), extra.begin(), extra.end());
    started = gw.start(dir.path() + "/data", args);
  }
  bool started = false;

  HttpsClient client(const std::string& role) const {
    HttpsClient c("127.0.0.1", gw.port(), pki + "/ca.pem", pki + "/client-" + role + ".pem",
                  pki + "/client-" + role + ".key");
    c.set_timeout(std::chrono::seconds(5));
    return c;
  }
  // A fresh connection and one request; the status, or 0 when refused.
  int fresh_status(const std::string& role) const {
    auto c = client(role);
    auto r = c.request("GET", "/fhir/metadata");
    return r ? r->status : 0;
  }
  delivery::MllpEndpoint feed(const std::string& role) const {
    delivery::MllpEndpoint e = test::tls_feed(gw.mllp_tls_port(), pki, role);
    e.max_attempts = 1;
    e.ack_timeout = std::chrono::seconds(5);
    return e;
  }
  // Sends SIGHUP and waits until both TLS listeners have answered it.
  bool reload(const std::string& event) {
    size_t before = count_of(gw.refresh_log(), "event=" + event);
    gw.send_signal(SIGHUP);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      if (count_of(gw.refresh_log(), "event=" + event) >= before + 2) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }
};

TEST(TlsE2E, ARevokedClientCertificateIsRefusedAfterSighupWhileOpenConnectionsCarryOn) {
  PkiGateway g;
  ASSERT_TRUE(g.started) << g.gw.log();
  auto open_https = g.client("gp");
  ASSERT_EQ(open_https.request("GET", "/fhir/metadata")->status, 200);
  delivery::MllpSender open_feed(g.feed("integration"));
  auto first = open_feed.send(test::systmone_a28(test::nhs_number_for(7101), "CRL-1"));
  ASSERT_TRUE(first.has_value());
  ASSERT_EQ(first->ack_code, "AA") << first->last_error;

  test::revoke_client(g.pki, "gp");
  test::revoke_client(g.pki, "integration");
  // The CRL is read at start-up and on SIGHUP, not behind the operator's back.
  EXPECT_EQ(g.fresh_status("gp"), 200);

  ASSERT_TRUE(g.reload("tls_reloaded")) << g.gw.refresh_log();
  EXPECT_EQ(g.fresh_status("gp"), 0) << "a revoked certificate was accepted after the reload";
  EXPECT_EQ(g.fresh_status("camhs"), 200) << "a certificate nobody revoked was refused";
  delivery::MllpSender new_feed(g.feed("integration"));
  auto refused = new_feed.send(test::systmone_a28(test::nhs_number_for(7102), "CRL-2"));
  ASSERT_TRUE(refused.has_value());
  EXPECT_FALSE(refused->ok()) << "a revoked feed certificate was accepted on MLLP/TLS";

  // Established connections were not dropped by the reload: the same
  // connections answer (a reconnect would now be refused).
  auto again = open_https.request("GET", "/fhir/metadata");
  ASSERT_TRUE(again.has_value()) << again.error().message;
  EXPECT_EQ(again->status, 200);
  auto second = open_feed.send(test::systmone_a28(test::nhs_number_for(7103), "CRL-3"));
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->ack_code, "AA") << second->last_error;
  EXPECT_EQ(second->attempts, 1);
  EXPECT_EQ(g.gw.refresh_log().find("9990237573"), std::string::npos);
}

TEST(TlsE2E, ABadFileOnSighupIsRefusedWithItsNameAndTheOldCertificatesStayInUse) {
  PkiGateway g;
  ASSERT_TRUE(g.started) << g.gw.log();
  std::string good_key;
  {
    std::ifstream in(g.pki + "/server.key");
    good_key.assign(std::istreambuf_iterator<char>(in), {});
  }
  { std::ofstream(g.pki + "/server.key", std::ios::trunc) << "not a key\n"; }
  ASSERT_TRUE(g.reload("tls_reload_refused")) << g.gw.refresh_log();
  const std::string& log = g.gw.refresh_log();
  auto event_at = log.rfind("event=tls_reload_refused");
  auto line_at = log.rfind('\n', event_at) + 1;  // npos + 1 = 0 when it is the first line
  std::string line = log.substr(line_at, log.find('\n', event_at) - line_at);
  EXPECT_NE(line.find("server.key"), std::string::npos) << line;
  EXPECT_NE(line.find("level=error"), std::string::npos) << log;
  EXPECT_EQ(g.fresh_status("gp"), 200) << "the old certificate and key should still be in use";

  // A CRL that is not one is refused the same way.
  { std::ofstream(g.pki + "/server.key", std::ios::trunc) << good_key; }
  { std::ofstream(g.pki + "/crl.pem", std::ios::trunc) << "-----BEGIN X509 CRL-----\ngarbage\n-----END X509 CRL-----\n"; }
  ASSERT_TRUE(g.reload("tls_reload_refused")) << g.gw.refresh_log();
  EXPECT_NE(g.gw.refresh_log().rfind("crl.pem"), std::string::npos);
  EXPECT_EQ(g.fresh_status("gp"), 200);
  EXPECT_TRUE(g.gw.running());
}

TEST(TlsE2E, ACrlOrProfilesDirectoryThatIsNotThereStopsStartUpWithItsName) {
  test::TempDir dir;
  const std::string& pki = test::dev_pki_dir();
  std::string out;
  int rc = test::run_gateway_command(
      {"serve", "--data-dir", dir.path() + "/data", "--https-listen", "127.0.0.1:0", "--tls-cert", pki + "/server.pem",
       "--tls-key", pki + "/server.key", "--client-ca", pki + "/ca.pem", "--profiles-dir",
       std::string(GW_SOURCE_DIR) + "/profiles", "--crl", dir.path() + "/missing-crl.pem"},
      out);
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("missing-crl.pem"), std::string::npos) << out;

  out.clear();
  rc = test::run_gateway_command({"serve", "--data-dir", dir.path() + "/data", "--https-listen", "127.0.0.1:0",
                                  "--tls-cert", pki + "/server.pem", "--tls-key", pki + "/server.key",
                                  "--client-ca", pki + "/ca.pem", "--profiles-dir", dir.path() + "/no-profiles"},
                                 out);
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("profiles directory '" + dir.path() + "/no-profiles' does not exist"), std::string::npos) << out;

  // The same from a config file's tls.crl_files.
  std::string config = dir.path() + "/gateway.json";
  std::ofstream(config) << R"({"tls": {"crl_files": [")" << dir.path() << R"(/also-missing.pem"]}})";
  out.clear();
  rc = test::run_gateway_command({"serve", "--config", config, "--data-dir", dir.path() + "/data", "--https-listen",
                                  "127.0.0.1:0", "--tls-cert", pki + "/server.pem", "--tls-key", pki + "/server.key",
                                  "--client-ca", pki + "/ca.pem", "--profiles-dir",
                                  std::string(GW_SOURCE_DIR) + "/profiles"},
                                 out);
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("also-missing.pem"), std::string::npos) << out;
}

}  // namespace
}  // namespace gw
