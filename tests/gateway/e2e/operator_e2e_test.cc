// What an operator meets on day one, against the real binary (issue 13):
// command-line errors that read alike for every subcommand, start-up that
// names the setting of a missing file before anything is opened, log lines
// that carry the caller's X-Request-ID and an MLLP message's control id, and
// ids in the log that are the ids /admin shows.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "gateway/common/json.h"
#include "tests/support/fixtures.h"
#include "tests/support/gateway_process.h"
#include "tests/support/https_client.h"
#include "tests/support/mllp_test_kit.h"
#include "tests/support/pki.h"
#include "tests/support/test_gateway.h"

namespace gw {
namespace {

namespace fs = std::filesystem;
using test::GatewayProcess;
using test::HttpsClient;
using test::run_gateway_command;

struct CmdRun {
  int code = -1;
  std::string out;
};
CmdRun run(const std::vector<std::string>& args) {
  CmdRun r;
  r.code = run_gateway_command(args, r.out);
  return r;
}

TEST(OperatorCli, EveryUnknownOptionGetsTheSameErrorInEverySubcommand) {
  for (const char* cmd : {"serve", "replay", "backup"}) {
    CmdRun alone = run({cmd, "--bogus"});
    CmdRun with_value = run({cmd, "--bogus", "x"});
    EXPECT_EQ(alone.code, 2) << cmd;
    EXPECT_EQ(with_value.code, 2) << cmd;
    EXPECT_EQ(alone.out, with_value.out) << cmd;
    std::string want = std::string("cpis-gateway: ") + cmd + ": unknown option '--bogus' (try 'cpis-gateway " + cmd +
                       " --help')\n";
    EXPECT_EQ(alone.out, want) << cmd;
    CmdRun help = run({cmd, "--help"});
    EXPECT_EQ(help.code, 0) << cmd;
    EXPECT_EQ(help.out.rfind(std::string("usage: cpis-gateway ") + cmd, 0), 0u) << help.out;
    // A stray word is named as such, and an option without its value names the option.
    CmdRun stray = run({cmd, "stray"});
    EXPECT_EQ(stray.code, 2);
    EXPECT_NE(stray.out.find("unexpected argument 'stray'"), std::string::npos) << stray.out;
    CmdRun missing = run({cmd, "--data-dir"});
    EXPECT_EQ(missing.code, 2);
    EXPECT_NE(missing.out.find("--data-dir"), std::string::npos) << missing.out;
  }
}

TEST(OperatorCli, EnumeratedValuesAreChecked) {
  CmdRun verbose = run({"serve", "--log-level", "verbose"});
  EXPECT_EQ(verbose.code, 2);
  EXPECT_NE(verbose.out.find("--log-level"), std::string::npos) << verbose.out;
  EXPECT_NE(verbose.out.find("verbose"), std::string::npos) << verbose.out;
  EXPECT_NE(verbose.out.find("debug"), std::string::npos) << "the allowed values are not listed: " << verbose.out;
  CmdRun id = run({"replay", "--data-dir", "/nonexistent", "--id", "-3"});
  EXPECT_EQ(id.code, 2);
  EXPECT_NE(id.out.find("--id"), std::string::npos) << id.out;
}

// Without ./pki the gateway said "subscription delivery TLS: cannot load CA"
// after it had opened (and created) the store.
TEST(OperatorStartUp, MissingFilesAreNamedBySettingBeforeTheStoreIsOpened) {
  test::TempDir dir;
  std::string data = dir.path() + "/data";
  CmdRun r = run({"serve", "--data-dir", data, "--https-listen", "127.0.0.1:0", "--profiles-dir",
               std::string(GW_SOURCE_DIR) + "/profiles", "--tls-cert", dir.path() + "/pki/server.pem", "--tls-key",
               dir.path() + "/pki/server.key", "--client-ca", dir.path() + "/pki/ca.pem"});
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("3 files missing"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tls.cert (--tls-cert): '" + dir.path() + "/pki/server.pem' does not exist"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("tls.key (--tls-key)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tls.client_ca (--client-ca)"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("subscription"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(data + "/gateway.db")) << "the store was opened before the files were checked";

  // A config file's own outbound CA is named by its key.
  const std::string& pki = test::dev_pki_dir();
  std::string cfg = dir.path() + "/gateway.json";
  std::ofstream(cfg) << R"({"subscriptions": {"endpoint_ca": ")" << dir.path() << R"(/hooks-ca.pem"}})";
  CmdRun sub = run({"serve", "--config", cfg, "--data-dir", data, "--https-listen", "127.0.0.1:0", "--profiles-dir",
                 std::string(GW_SOURCE_DIR) + "/profiles", "--tls-cert", pki + "/server.pem", "--tls-key",
                 pki + "/server.key", "--client-ca", pki + "/ca.pem"});
  EXPECT_EQ(sub.code, 2) << sub.out;
  EXPECT_NE(sub.out.find("subscriptions.endpoint_ca: '" + dir.path() + "/hooks-ca.pem' does not exist"),
            std::string::npos)
      << sub.out;
  EXPECT_FALSE(fs::exists(data + "/gateway.db"));
}

TEST(OperatorStartUp, AConfigFileErrorIsReportedWithLineAndColumn) {
  test::TempDir dir;
  std::string cfg = dir.path() + "/gateway.json";
  std::ofstream(cfg) << "{\n  \"https\": {\"threads\": 0},\n  \"log_level\": \"loud\"\n}\n";
  CmdRun r = run({"serve", "--config", cfg});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find(cfg + ":2:13: https.threads must be between 1 and 256"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(cfg + ":3:3: log_level: \"loud\" is not one of: debug, info, warn, error (at /log_level)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("2 problems"), std::string::npos) << r.out;
}

// serve --check-config: the file against its schema, the flags over it, the
// profile files and the files start-up needs, then exit without a store.
TEST(OperatorStartUp, CheckConfigChecksFileFlagsAndProfilesAndOpensNothing) {
  test::TempDir dir;
  const std::string& pki = test::dev_pki_dir();
  const std::string profiles = std::string(GW_SOURCE_DIR) + "/profiles";
  const std::string data = dir.path() + "/data";
  std::string cfg = dir.path() + "/gateway.json";
  // The file names PostgreSQL without a conninfo and a bad listen address;
  // the flags put both right, so the flags are applied over the file.
  std::ofstream(cfg) << "{\n  \"store\": {\"engine\": \"postgresql\"},\n  \"tls\": {\"cert\": \"/nowhere.pem\"}\n}\n";
  std::vector<std::string> base = {"serve", "--config", cfg, "--data-dir", data, "--profiles-dir", profiles,
                                   "--tls-key", pki + "/server.key", "--client-ca", pki + "/ca.pem", "--check-config"};
  CmdRun no_conninfo = run(base);
  EXPECT_EQ(no_conninfo.code, 2) << no_conninfo.out;
  EXPECT_NE(no_conninfo.out.find("store.engine postgresql needs store.conninfo"), std::string::npos) << no_conninfo.out;

  auto with = base;
  with.insert(with.end(), {"--store-engine", "sqlite"});
  CmdRun missing = run(with);
  EXPECT_EQ(missing.code, 2) << missing.out;
  EXPECT_NE(missing.out.find("tls.cert (--tls-cert): '/nowhere.pem' does not exist"), std::string::npos) << missing.out;

  with.insert(with.end(), {"--tls-cert", pki + "/server.pem"});
  CmdRun ok = run(with);
  EXPECT_EQ(ok.code, 0) << ok.out;
  EXPECT_NE(ok.out.find("config: " + cfg + " matches profiles/schemas/config.schema.json"), std::string::npos) << ok.out;
  EXPECT_NE(ok.out.find("profiles: " + profiles), std::string::npos) << ok.out;
  EXPECT_FALSE(fs::exists(data + "/gateway.db")) << "--check-config opened the store";

  // The same with --store-engine postgresql and a conninfo on the command line: checked, not connected to.
  auto pg = base;
  pg.insert(pg.end(), {"--store-conninfo", "host=/nonexistent dbname=x", "--tls-cert", pki + "/server.pem"});
  CmdRun pg_ok = run(pg);
  EXPECT_EQ(pg_ok.code, 0) << pg_ok.out;

  // A file with several problems: every one, with line and column, and nothing checked after it.
  std::ofstream(cfg, std::ios::trunc) << "{\n  \"store\": {\"engine\": \"mysql\"},\n  \"mllp\": {\"max_in_flight\": 0, \"allow\": [{\"cidr\": \"10.0.0.0/8\"}]}\n}\n";
  CmdRun bad = run(base);
  EXPECT_EQ(bad.code, 2) << bad.out;
  EXPECT_NE(bad.out.find("3 problems"), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find(cfg + ":2:13: store.engine: \"mysql\" is not one of: sqlite, postgresql (at /store/engine)"),
            std::string::npos)
      << bad.out;
  EXPECT_NE(bad.out.find(cfg + ":3:12: mllp.max_in_flight must be between 1 and 1024, not 0 (at /mllp/max_in_flight)"),
            std::string::npos)
      << bad.out;
  EXPECT_NE(bad.out.find(cfg + ":3:42: mllp.allow[0]: missing required key 'ods' (at /mllp/allow/0)"), std::string::npos)
      << bad.out;
}

// The X-Request-ID a caller sends is in the log line of its request (and one
// is minted and logged when it sends none); an MLLP message's lines carry its
// MSH-10, and the inbound_id logged is the id /admin lists.
TEST(OperatorLogs, RequestIdsControlIdsAndInboundIdsInTheLog) {
  test::TempDir dir;
  GatewayProcess gw;
  ASSERT_TRUE(gw.start(dir.path(), {"--mllp-listen", "127.0.0.1:0"})) << gw.log();
  auto gp = HttpsClient::for_role(gw.port(), "gp");
  auto r = gp.request("GET", "/fhir/metadata", "", {{"X-Request-ID", "trace-from-client-1"}});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->header("x-request-id").value_or(""), "trace-from-client-1");
  ASSERT_TRUE(gw.wait_for_log("request_id=trace-from-client-1")) << gw.log();
  std::regex line_re("event=request [^\n]*request_id=trace-from-client-1[^\n]*\n");
  EXPECT_TRUE(std::regex_search(gw.log(), line_re)) << gw.log();
  auto minted = gp.request("GET", "/fhir/metadata");
  ASSERT_TRUE(minted.has_value());
  std::string id = minted->header("x-request-id").value_or("");
  ASSERT_EQ(id.size(), 32u);
  EXPECT_TRUE(gw.wait_for_log("request_id=" + id)) << gw.log();

  test::RawMllpClient mllp;
  ASSERT_TRUE(mllp.connect(gw.mllp_port()));
  ASSERT_TRUE(mllp.send_message(test::systmone_a28(test::nhs_number_for(4242), "CTRL-OK-1")));
  std::string nhs = test::nhs_number_for(4243);
  std::string wrong = nhs.substr(0, 9) + static_cast<char>('0' + (nhs[9] - '0' + 1) % 10);
  ASSERT_TRUE(mllp.send_message(test::systmone_a28(wrong, "CTRL-BAD-2")));
  auto acks = mllp.read_frames(2);
  ASSERT_EQ(acks.size(), 2u);
  EXPECT_EQ(test::ack_fields(acks[0])->code, "AA");
  EXPECT_EQ(test::ack_fields(acks[1])->code, "AE");
  ASSERT_TRUE(gw.wait_for_log("control_id=CTRL-BAD-2")) << gw.log();

  std::smatch ok, bad;
  std::string log = gw.log();
  ASSERT_TRUE(std::regex_search(log, ok, std::regex("event=ingest [^\n]*control_id=CTRL-OK-1 outcome=accepted inbound_id=([0-9]+)")))
      << log;
  ASSERT_TRUE(std::regex_search(log, bad, std::regex("event=ingest [^\n]*control_id=CTRL-BAD-2 outcome=invalid inbound_id=([0-9]+)")))
      << log;
  EXPECT_NE(ok[1].str(), "0") << "an accepted message is kept and has an id";
  auto admin = HttpsClient::for_role(gw.port(), "admin");
  auto q = admin.request("GET", "/admin/quarantine");
  ASSERT_TRUE(q.has_value());
  auto d = json::parse(q->body);
  ASSERT_TRUE(d && d->HasMember("messages")) << q->body;
  ASSERT_EQ((*d)["messages"].Size(), 1u) << q->body;
  EXPECT_EQ(std::to_string((*d)["messages"][0]["id"].GetInt64()), bad[1].str()) << q->body;
  EXPECT_NE(q->body.find("CTRL-BAD-2"), std::string::npos) << q->body;
  EXPECT_EQ(log.find(nhs.substr(0, 9)), std::string::npos) << "an NHS number reached the log";
}

}  // namespace
}  // namespace gw
