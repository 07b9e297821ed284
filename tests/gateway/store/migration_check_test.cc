// `cpis-gateway serve --check-migrations` (issue 18, upgrade): the dry run an
// operator runs before starting a new version. It names the store's schema
// version and the steps starting would apply, proves they apply by running
// them in a transaction that is rolled back, and changes nothing. A store
// written by a newer gateway is refused by the check and by opening alike.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "gateway/store/postgres/schema.h"
#include "gateway/store/sqlite/schema.h"
#include "gateway/store/store.h"
#include "tests/support/gateway_process.h"
#include "tests/support/test_gateway.h"
#include "tests/support/test_store.h"

namespace gw::store {
namespace {

namespace fs = std::filesystem;

int known_version() {
  return test::on_postgres() ? pg::migrations().back().version : sqlite::migrations().back().version;
}

int check(const std::string& data_dir, std::string& output) {
  std::vector<std::string> args = {"serve", "--check-migrations", "--data-dir", data_dir,
                                   "--profiles-dir", std::string(GW_SOURCE_DIR) + "/profiles"};
  for (auto& a : test::engine_args(data_dir)) args.push_back(a);
  return test::run_gateway_command(args, output);
}

void sqlite_exec(const std::string& db, const std::string& sql) {
  sqlite3* h = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &h), SQLITE_OK);
  char* err = nullptr;
  ASSERT_EQ(sqlite3_exec(h, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
  sqlite3_close(h);
}

TEST(MigrationCheck, AnUpToDateStoreHasNothingPendingAndANewerOneIsRefused) {
  test::TempDir dir;
  const std::string db = dir.path() + "/gateway.db";
  {
    SqliteOptions o;
    o.path = db;
    auto s = test::open_store(o);
    s->close();
  }
  std::string out;
  ASSERT_EQ(check(dir.path(), out), 0) << out;
  EXPECT_NE(out.find("at version " + std::to_string(known_version()) + ", this gateway knows up to " +
                     std::to_string(known_version())),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("pending: none"), std::string::npos) << out;

  // A later gateway's step: the check and start-up both refuse, naming both versions.
  const std::string newer = "INSERT INTO schema_version(version, applied) VALUES(999, '2030-01-01T00:00:00Z')";
  if (test::on_postgres()) {
    test::store_scalar(db, newer + " RETURNING version");
  } else {
    sqlite_exec(db, newer);
  }
  out.clear();
  EXPECT_EQ(check(dir.path(), out), 1) << out;
  EXPECT_NE(out.find("schema version 999"), std::string::npos) << out;
  EXPECT_NE(out.find("knows versions up to " + std::to_string(known_version())), std::string::npos) << out;
  EXPECT_NE(out.find("downgrade is not supported"), std::string::npos) << out;
  SqliteOptions o;
  o.path = db;
  try {
    auto s = test::open_store(o);
    ADD_FAILURE() << "a store at schema 999 opened";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("schema version 999"), std::string::npos) << e.what();
  }
}

TEST(MigrationCheck, AMissingStoreIsReportedAndNotCreated) {
  test::TempDir dir;
  std::string out;
  ASSERT_EQ(check(dir.path(), out), 0) << out;
  EXPECT_NE(out.find("none yet; starting creates it at version " + std::to_string(known_version())),
            std::string::npos)
      << out;
  if (test::on_postgres()) {
    // The schema_version table of the dry run was rolled back with the rest.
    EXPECT_EQ(test::store_scalar(dir.path() + "/gateway.db",
                                 "SELECT count(*) FROM information_schema.tables WHERE table_schema = "
                                 "current_schema() AND table_name IN ('schema_version', 'ver', 'res')"),
              0);
  } else {
    EXPECT_FALSE(fs::exists(dir.path() + "/gateway.db"));
  }
}

// The embedded store of the first release (schema 5): the dry run applies
// every later step, including the layout-6 re-lay of its rows, and rolls it
// all back; starting afterwards migrates it for real.
TEST(MigrationCheck, AnOlderStoreListsItsStepsProvesThemAndIsLeftUnchanged) {
  test::TempDir dir;
  const std::string db = dir.path() + "/gateway.db";
  std::ifstream in(fs::path(GW_SOURCE_DIR) / "tests/fixtures/store/release-0.1.sql", std::ios::binary);
  std::stringstream dump;
  dump << in.rdbuf();
  ASSERT_FALSE(dump.str().empty());
  sqlite_exec(db, dump.str());
  const int64_t resources = test::store_scalar(db, "SELECT count(*) FROM resources");
  ASSERT_GT(resources, 0);

  std::string out;
  ASSERT_EQ(check(dir.path(), out), 0) << out;
  std::string steps;
  size_t n = 0;
  for (const auto& m : sqlite::migrations()) {
    if (m.version <= 5) continue;
    steps += (steps.empty() ? "" : ", ") + std::to_string(m.version);
    ++n;
  }
  EXPECT_NE(out.find("at version 5,"), std::string::npos) << out;
  EXPECT_NE(out.find("pending: " + std::to_string(n) + " step(s): " + steps + "\n"), std::string::npos) << out;
  EXPECT_NE(out.find("rolled back"), std::string::npos) << out;
  // Nothing changed: still schema 5, the old tables and rows, no new ones.
  EXPECT_EQ(test::store_scalar(db, "SELECT MAX(version) FROM schema_version"), 5);
  EXPECT_EQ(test::store_scalar(db, "SELECT count(*) FROM resources"), resources);
  EXPECT_EQ(test::store_scalar(db, "SELECT count(*) FROM sqlite_schema WHERE name IN ('ver', 'res', 'timers')"), 0);

  SqliteOptions o;
  o.path = db;
  auto s = open_sqlite(o);
  EXPECT_EQ(test::store_scalar(db, "SELECT MAX(version) FROM schema_version"), sqlite::migrations().back().version);
  out.clear();
  s->close();
  s.reset();
  ASSERT_EQ(check(dir.path(), out), 0) << out;
  EXPECT_NE(out.find("pending: none"), std::string::npos) << out;
}

}  // namespace
}  // namespace gw::store
