#pragma once
// The engine the suite runs against. ctest registers gw_tests twice (see
// tests/CMakeLists.txt): as it is, on the embedded SQLite store, and the
// store, REST, ingest, subscription and CP-IS suites again with
// --gw-store=postgresql (GW_TEST_STORE=postgresql in the environment) on the
// throw-away cluster that tests/support/pg_cluster.sh started for the run
// (GW_TEST_PG_CONNINFO names another). Every such test opens its store
// through here, so one test body serves both engines.
//
// On PostgreSQL each store "file" is a schema of its own, named after the
// file's path: a test that reopens the same path (a restart, a kill -9)
// reopens the same data; tests running side by side never see each other's.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gateway/store/store.h"

namespace gw::test {

bool on_postgres();
const char* engine_name();  // "sqlite" | "postgresql"

// The conninfo of the store kept at `db_path` (PostgreSQL: its schema,
// created when missing).
std::string pg_conninfo_for(const std::string& db_path);
// A second schema-less connection to the test cluster (admin work in tests).
std::string pg_admin_conninfo();

// Opens the store at `db_path` with the embedded store's options; on
// PostgreSQL the same queue, batch and reader settings and the metrics.
std::unique_ptr<store::Store> open_store(const store::SqliteOptions& o);

// One integer from a query on the store at `db_path`, on its own connection
// (as an auditor would with sqlite3 or psql); -1 when there is no row. The
// SQL must be valid on both engines (the tables and columns are the same).
// Beside a running gateway too. Throws when the store cannot be read.
int64_t store_scalar(const std::string& db_path, const std::string& sql);

// `serve` flags that put a gateway process on this engine for `data_dir`
// (none on SQLite: the data directory holds the store).
std::vector<std::string> engine_args(const std::string& data_dir);

}  // namespace gw::test
