// testssl.sh (Debian's package) audits the real binary's HTTPS and MLLP/TLS
// listeners from outside: TLS 1.2 and 1.3 only, AEAD suites with forward
// secrecy only, and no finding above LOW. The reports are kept for CI under
// build/testssl/ (<listener>.json, testssl's flat JSON, and <listener>.log).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "gateway/common/json.h"
#include "tests/support/gateway_process.h"
#include "tests/support/pki.h"
#include "tests/support/test_gateway.h"

namespace gw {
namespace {

struct Finding {
  std::string id, severity, text;
};

// Runs testssl against 127.0.0.1:port; the findings from its JSON report.
std::vector<Finding> audit(const std::string& listener, uint16_t port, std::string& why) {
  std::string out = std::string(GW_BUILD_DIR) + "/testssl";
  std::filesystem::create_directories(out);
  std::string json_file = out + "/" + listener + ".json", log_file = out + "/" + listener + ".log";
  std::filesystem::remove(json_file);
  // Protocols, cipher categories, forward secrecy, server preferences and
  // defaults, and the vulnerability checks; --fast and the timeouts keep a
  // run to about a minute. The listeners require a client certificate,
  // which this testssl cannot present: the HTTP-level checks find nothing.
  // --add-ca: the dev CA is not a public one, and the chain should be judged
  // as a trust's clients, which hold that CA, judge it.
  std::string cmd = "timeout 280 testssl --quiet --color 0 --warnings off --fast --openssl-timeout 10 "
                    "--connect-timeout 10 --add-ca '" + test::dev_pki_dir() + "/ca.pem' -p -s -f -P -S -U --jsonfile '" +
                    json_file + "' 127.0.0.1:" + std::to_string(port) + " > '" + log_file + "' 2>&1";
  int rc = std::system(cmd.c_str());
  std::ifstream in(json_file);
  if (!in) {
    why = "testssl wrote no report (exit " + std::to_string(WEXITSTATUS(rc)) + "); see " + log_file;
    return {};
  }
  std::stringstream ss;
  ss << in.rdbuf();
  auto d = json::parse(ss.str());
  if (!d || !d->IsArray()) {
    why = "the report " + json_file + " is not a JSON array";
    return {};
  }
  std::vector<Finding> findings;
  for (const auto& f : d->GetArray()) {
    findings.push_back(Finding{std::string(json::get_string(f, "id").value_or("")),
                               std::string(json::get_string(f, "severity").value_or("")),
                               std::string(json::get_string(f, "finding").value_or(""))});
  }
  return findings;
}

void expect_clean(const std::string& listener, bool mllp) {
  test::TempDir dir;
  test::GatewayProcess gw;
  ASSERT_TRUE(gw.start(dir.path(), {"--mllp-tls-listen", "127.0.0.1:0"})) << gw.log();
  std::string why;
  auto findings = audit(listener, mllp ? gw.mllp_tls_port() : gw.port(), why);
  ASSERT_FALSE(findings.empty()) << why;
  std::map<std::string, std::string> by_id;
  for (const auto& f : findings) {
    by_id[f.id] = f.text;
    if (f.severity == "MEDIUM" || f.severity == "HIGH" || f.severity == "CRITICAL")
      ADD_FAILURE() << listener << ": testssl " << f.severity << " " << f.id << ": " << f.text;
    if (f.id == "scanProblem" || f.severity == "FATAL") ADD_FAILURE() << listener << ": testssl could not scan: " << f.text;
  }
  // The protocol floor and ceiling, as testssl saw them.
  for (const char* old : {"SSLv2", "SSLv3", "TLS1", "TLS1_1"}) {
    ASSERT_TRUE(by_id.count(old)) << listener << ": no " << old << " result";
    EXPECT_EQ(by_id[old].rfind("not offered", 0), 0u) << listener << " " << old << ": " << by_id[old];
  }
  EXPECT_EQ(by_id["TLS1_2"].rfind("offered", 0), 0u) << by_id["TLS1_2"];
  EXPECT_EQ(by_id["TLS1_3"].rfind("offered", 0), 0u) << by_id["TLS1_3"];
  // No cipher category without forward secrecy or with CBC/NULL/export.
  for (const char* weak : {"cipherlist_NULL", "cipherlist_aNULL", "cipherlist_EXPORT", "cipherlist_LOW",
                           "cipherlist_3DES_IDEA", "cipherlist_AVERAGE"}) {
    if (by_id.count(weak)) {
      EXPECT_EQ(by_id[weak].rfind("not offered", 0), 0u) << listener << " " << weak << ": " << by_id[weak];
    }
  }
  ::testing::Test::RecordProperty("report", std::string(GW_BUILD_DIR) + "/testssl/" + listener + ".json");
}

TEST(TlsAudit, TheHttpsListenerHasNoTestsslFindingAboveLow) { expect_clean("https", false); }

TEST(TlsAudit, TheMllpTlsListenerHasNoTestsslFindingAboveLow) { expect_clean("mllp-tls", true); }

}  // namespace
}  // namespace gw
