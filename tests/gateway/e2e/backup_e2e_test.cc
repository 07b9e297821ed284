// `cpis-gateway backup` against the real binary while it commits: the copy is
// intact, restores into a fresh data directory, and the gateway started on it
// serves every write acknowledged before the backup began. (A plain file copy
// of gateway.db fails this: acknowledged commits still in the WAL are missing.)
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <filesystem>

#include "tests/support/gateway_process.h"
#include "tests/support/https_client.h"
#include "tests/support/patient_writers.h"
#include "tests/support/test_gateway.h"

namespace gw {
namespace {

using test::GatewayProcess;

std::string pragma(const std::string& db, const char* sql) {
  sqlite3* h = nullptr;
  if (sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(h);
    return "cannot open";
  }
  std::string out;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(h, sql, -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
    out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  sqlite3_close(h);
  return out;
}

TEST(Backup, TakenUnderWriteLoadRestoresWithEveryWriteAcknowledgedBeforeIt) {
  test::TempDir dir, out, restored;
  GatewayProcess gw;
  ASSERT_TRUE(gw.start(dir.path())) << gw.log();

  test::PatientWriters writers(gw.port(), 4, 200000);
  writers.wait_for(150, std::chrono::seconds(10));
  // Every one of these was answered 201 before the backup started.
  std::vector<std::string> before = writers.acked();
  ASSERT_GE(before.size(), 100u) << gw.log();
  const std::string file = out.path() + "/gateway-backup.db";
  std::string output;
  int rc = test::run_gateway_command({"backup", "--data-dir", dir.path(), "--to", file}, output);
  size_t during = writers.acked_count();
  // The writers go on a little, so the gateway is demonstrably still
  // committing after the copy (the copy did not stop the writer).
  writers.wait_for(during + 20, std::chrono::seconds(5));
  writers.stop();
  ASSERT_EQ(rc, 0) << output;
  EXPECT_NE(output.find("integrity ok"), std::string::npos) << output;
  EXPECT_GT(writers.acked_count(), during) << "writes stopped during or after the backup";
  EXPECT_EQ(gw.terminate(), 0) << gw.log();

  EXPECT_EQ(pragma(file, "PRAGMA integrity_check"), "ok");
  EXPECT_EQ(pragma(file, "PRAGMA journal_mode"), "delete") << "a backup is one self-contained file";
  EXPECT_FALSE(std::filesystem::exists(file + "-wal"));

  // Restore: the file as gateway.db in an empty data directory. Its audit
  // trail (every write above left a record) is intact as copied.
  std::filesystem::copy_file(file, restored.path() + "/gateway.db");
  output.clear();
  EXPECT_EQ(test::run_gateway_command({"audit", "verify", "--data-dir", restored.path()}, output), 0) << output;
  EXPECT_NE(output.find("intact"), std::string::npos) << output;
  GatewayProcess back;
  ASSERT_TRUE(back.start(restored.path(), {"--ops-listen", "127.0.0.1:0"})) << back.log();
  auto ready = test::plain_http_request(back.ops_port(), "GET", "/readyz");
  ASSERT_TRUE(ready.has_value());
  EXPECT_EQ(ready->status, 200) << ready->body;
  EXPECT_EQ(test::missing_patients(back.port(), before), 0u)
      << "of " << before.size() << " acknowledged before the backup";
  EXPECT_EQ(back.terminate(), 0) << back.log();
}

TEST(Backup, NeverOverwritesAndNamesWhatIsWrong) {
  test::TempDir dir, out;
  std::string output;
  EXPECT_EQ(test::run_gateway_command({"backup", "--data-dir", dir.path(), "--to", out.path() + "/b.db"}, output), 2);
  EXPECT_NE(output.find("no gateway store at " + dir.path() + "/gateway.db"), std::string::npos) << output;
  EXPECT_FALSE(std::filesystem::exists(out.path() + "/b.db"));

  {
    GatewayProcess gw;  // makes a store
    ASSERT_TRUE(gw.start(dir.path())) << gw.log();
    EXPECT_EQ(gw.terminate(), 0);
  }
  output.clear();
  ASSERT_EQ(test::run_gateway_command({"backup", "--data-dir", dir.path(), "--to", out.path() + "/b.db"}, output), 0)
      << output;
  output.clear();
  EXPECT_EQ(test::run_gateway_command({"backup", "--data-dir", dir.path(), "--to", out.path() + "/b.db"}, output), 2);
  EXPECT_NE(output.find("already exists"), std::string::npos) << output;
  output.clear();
  EXPECT_EQ(test::run_gateway_command({"backup", "--data-dir", dir.path()}, output), 2);
  EXPECT_NE(output.find("--to FILE"), std::string::npos) << output;
}

}  // namespace
}  // namespace gw
