// The PostgreSQL password never reaches a log, an error or the output of the
// binary (issue 18: "password from a file or the environment, never in
// logs"). StoreConninfo needs no database and runs in every run of the
// suite; PostgresConninfo starts a gateway on the run's cluster and runs in
// the PostgreSQL run only (suites named Postgres*, tests/CMakeLists.txt).
#include <gtest/gtest.h>

#include "gateway/store/postgres/pg.h"
#include "tests/support/pki.h"
#include "tests/support/gateway_process.h"
#include "tests/support/test_gateway.h"
#include "tests/support/test_store.h"

namespace gw {
namespace {

constexpr const char* kSecret = "S3cret-pw-7f2a";

TEST(StoreConninfo, RedactionDropsThePasswordInBothSpellings) {
  using store::pg::conninfo_has_password;
  using store::pg::redact_conninfo;
  const std::string kv = std::string("host=db dbname=cpis user=cpis password=") + kSecret;
  EXPECT_EQ(redact_conninfo(kv).find(kSecret), std::string::npos) << redact_conninfo(kv);
  EXPECT_NE(redact_conninfo(kv).find("dbname=cpis"), std::string::npos) << redact_conninfo(kv);
  EXPECT_TRUE(conninfo_has_password(kv));
  const std::string uri = std::string("postgresql://cpis:") + kSecret + "@db/cpis";
  EXPECT_EQ(redact_conninfo(uri).find(kSecret), std::string::npos) << redact_conninfo(uri);
  EXPECT_TRUE(conninfo_has_password(uri));
  EXPECT_FALSE(conninfo_has_password("host=db dbname=cpis user=cpis passfile=/etc/cpis-gateway/pgpass"));
  // Nothing of a conninfo libpq cannot parse is echoed back.
  const std::string broken = std::string("host=db password='") + kSecret;
  EXPECT_EQ(redact_conninfo(broken).find(kSecret), std::string::npos) << redact_conninfo(broken);
}

TEST(StoreConninfo, AServerThatCannotBeReachedIsNamedWithoutThePassword) {
  test::TempDir dir;
  std::string out;
  int rc = test::run_gateway_command(
      {"serve", "--data-dir", dir.path(), "--store-engine", "postgresql", "--store-conninfo",
       std::string("host=") + dir.path() + "/no-server port=5999 dbname=cpis user=cpis connect_timeout=2 password=" +
           kSecret,
       // The files start-up checks before it opens the store are there: the store is what fails.
       "--tls-cert", test::dev_pki_dir() + "/server.pem", "--tls-key", test::dev_pki_dir() + "/server.key",
       "--client-ca", test::dev_pki_dir() + "/ca.pem"},
      out);
  EXPECT_NE(rc, 0) << out;
  EXPECT_NE(out.find("dbname=cpis"), std::string::npos) << "the error says which database: " << out;
  EXPECT_EQ(out.find(kSecret), std::string::npos) << out;
}

TEST(StoreConninfo, PostgresqlWithoutAConninfoIsRefusedAtStart) {
  test::TempDir dir;
  std::string out;
  int rc = test::run_gateway_command({"serve", "--data-dir", dir.path(), "--store-engine", "postgresql"}, out);
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("conninfo"), std::string::npos) << out;
  rc = test::run_gateway_command({"serve", "--data-dir", dir.path(), "--store-engine", "oracle"}, out);
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("--store-engine"), std::string::npos) << out;
}

// A password in the conninfo works (the test cluster trusts its socket, so
// any password is accepted) but is warned about and never logged.
TEST(PostgresConninfo, APasswordInTheConninfoIsWarnedAboutAndNeverLogged) {
  if (!test::on_postgres()) GTEST_SKIP() << "a gateway on PostgreSQL: the pg: run only (--gw-store=postgresql)";
  test::TempDir dir;
  test::GatewayProcess gw;
  const std::string conninfo =
      test::pg_conninfo_for(dir.path() + "/gateway.db") + " password=" + kSecret;
  ASSERT_TRUE(gw.start(dir.path(), {"--store-conninfo", conninfo})) << gw.log();
  EXPECT_TRUE(gw.wait_for_log("store_conninfo_has_password")) << gw.log();
  EXPECT_NE(gw.log().find("engine=postgresql"), std::string::npos) << gw.log();
  EXPECT_EQ(gw.terminate(), 0);
  EXPECT_EQ(gw.log().find(kSecret), std::string::npos) << gw.log();
}

}  // namespace
}  // namespace gw
