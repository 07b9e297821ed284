#include "tests/support/test_store.h"

#include <sqlite3.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "gateway/store/postgres/pg.h"

namespace gw::test {

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string schema_for(const std::string& db_path) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a: stable, no collisions among a run's temp paths in practice
  for (unsigned char c : db_path) h = (h ^ c) * 1099511628211ull;
  char buf[32];
  std::snprintf(buf, sizeof buf, "gwt_%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace

bool on_postgres() { return env("GW_TEST_STORE") == "postgresql"; }
const char* engine_name() { return on_postgres() ? "postgresql" : "sqlite"; }

std::string pg_admin_conninfo() {
  // The cluster ctest starts for the run (tests/CMakeLists.txt), unless the
  // environment names another (a cluster of one's own when running by hand).
  std::string c = env("GW_TEST_PG_CONNINFO");
  if (!c.empty()) return c;
  return std::string("host=") + GW_TEST_PG_DIR + " port=5432 dbname=postgres user=postgres";
}

std::string pg_conninfo_for(const std::string& db_path) {
  const std::string schema = schema_for(db_path);
  auto admin = store::pg::Conn::open(pg_admin_conninfo());
  if (!admin) throw std::runtime_error(admin.error().message);
  if (auto r = (*admin)->run("CREATE SCHEMA IF NOT EXISTS " + schema); !r) {
    // Two stores of one test creating it at once: the loser finds it made.
    if ((*admin)->last_state() != store::pg::kUniqueViolation) throw std::runtime_error(r.error().message);
  }
  return pg_admin_conninfo() + " options='-c search_path=" + schema + "'";
}

std::unique_ptr<store::Store> open_store(const store::SqliteOptions& o) {
  if (!on_postgres()) return store::open_sqlite(o);
  store::PostgresOptions p;
  p.conninfo = pg_conninfo_for(o.path);
  p.reader_threads = o.reader_threads;
  p.writer_queue_capacity = o.writer_queue_capacity;
  p.reader_queue_capacity = o.reader_queue_capacity;
  p.max_batch = o.max_batch;
  p.lazy_delay = o.lazy_delay;
  p.metrics = o.metrics;
  return store::open_postgres(p);
}

int64_t store_scalar(const std::string& db_path, const std::string& sql) {
  if (on_postgres()) {
    auto c = store::pg::Conn::open(pg_conninfo_for(db_path));
    if (!c) throw std::runtime_error(c.error().message);
    auto r = (*c)->exec(sql);
    if (!r) throw std::runtime_error(r.error().message + " in: " + sql);
    return r->empty() || r->is_null(0, 0) ? -1 : r->int64(0, 0);
  }
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    throw std::runtime_error("cannot open " + db_path);
  }
  sqlite3_busy_timeout(db, 2000);  // beside a running gateway (WAL): a checkpoint may hold it briefly
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
    std::string why = sqlite3_errmsg(db);
    sqlite3_close(db);
    throw std::runtime_error(why + " in: " + sql);
  }
  int64_t v = -1;
  if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

std::vector<std::string> engine_args(const std::string& data_dir) {
  if (!on_postgres()) return {};
  return {"--store-engine", "postgresql", "--store-conninfo", pg_conninfo_for(data_dir + "/gateway.db")};
}

}  // namespace gw::test
