// `cpis-gateway audit verify` on the trail a real gateway wrote: intact after
// a clean shutdown (with the checkpoint it signed on the way out), and
// naming the first bad record once a row is changed with plain SQL on the
// database file, as someone with the sqlite3 shell would.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>

#include "tests/support/gateway_process.h"
#include "tests/support/patient_writers.h"
#include "tests/support/pki.h"
#include "tests/support/test_gateway.h"

namespace gw {
namespace {

using test::GatewayProcess;

bool exec_sql(const std::string& db, const std::string& sql, std::string& err) {
  sqlite3* h = nullptr;
  if (sqlite3_open(db.c_str(), &h) != SQLITE_OK) {
    err = "cannot open";
    sqlite3_close(h);
    return false;
  }
  char* e = nullptr;
  int rc = sqlite3_exec(h, sql.c_str(), nullptr, nullptr, &e);
  if (e) err = e;
  sqlite3_free(e);
  sqlite3_close(h);
  return rc == SQLITE_OK;
}

TEST(AuditVerify, IntactTrailPassesAndAnSqliteEditIsNamed) {
  test::TempDir dir;
  GatewayProcess gw;
  ASSERT_TRUE(gw.start(dir.path())) << gw.log();
  {
    test::PatientWriters writers(gw.port(), 2, 300000);
    ASSERT_TRUE(writers.wait_for(20, std::chrono::seconds(20))) << gw.log();
    writers.stop();
  }
  EXPECT_EQ(gw.terminate(), 0) << gw.log();

  const std::string ca = test::dev_pki_dir() + "/ca.pem";
  std::string out;
  int rc = test::run_gateway_command({"audit", "verify", "--data-dir", dir.path(), "--ca", ca}, out);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("intact"), std::string::npos) << out;
  // The shutdown checkpoint, signed with the server key and chaining to the CA.
  EXPECT_NE(out.find("signed and verified"), std::string::npos) << out;
  EXPECT_EQ(out.find(" 0 signed and verified"), std::string::npos) << out;

  std::string err;
  const std::string db = dir.path() + "/gateway.db";
  ASSERT_TRUE(exec_sql(db, "UPDATE audit SET outcome = 'failure' WHERE seq = 5", err)) << err;
  rc = test::run_gateway_command({"audit", "verify", "--data-dir", dir.path(), "--ca", ca}, out);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("NOT INTACT: first bad record 5:"), std::string::npos) << out;

  // A usage error is not a verdict.
  rc = test::run_gateway_command({"audit", "verify"}, out);
  EXPECT_EQ(rc, 2) << out;
}

}  // namespace
}  // namespace gw
