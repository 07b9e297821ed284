// GET /audit/flows over a large trail (issue 16): how long the report's
// store query (store::Store::summarise_audit, what AuditFlows runs) takes to
// answer a month and a year of a trail of N audit events spread evenly over
// a year, against a plain SELECT count(*) over the same rows in the same run.
//
// The rows are generated with one SQL statement straight into the audit table
// of a store the gateway made (the write path is not what is measured here:
// the writer would stamp them all "now"), with the spread of a busy trust:
// 40 organisations, 12 actions, 6 channels, 20 topics, 4 purposes, 4
// outcomes, latencies on delivered notifications. Each query runs 3 times
// (the first on a cold page cache only if the OS dropped it; the file is
// fresh, so expect it warm) and the median is printed.
//
// Run: build/bin/audit_flows_bench [rows=10000000] [dir=/tmp]
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "gateway/common/clock.h"
#include "gateway/store/store.h"
#include "tests/support/bench_stats.h"

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

bool exec(sqlite3* db, const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::fprintf(stderr, "sql: %s\n", err ? err : "?");
    sqlite3_free(err);
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  const int64_t rows = argc > 1 ? std::atoll(argv[1]) : 10'000'000;
  const fs::path dir = fs::path(argc > 2 ? argv[2] : "/tmp") / ("gw-audit-bench-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string db_path = (dir / "gateway.db").string();
  const int64_t year_ms = 365LL * 86'400'000;
  const int64_t start = gw::clock::now_ms() - year_ms;
  {
    // The gateway makes the file (schema, migrations), then closes it.
    gw::store::SqliteOptions o;
    o.path = db_path;
    gw::store::open_sqlite(o)->close();
  }
  sqlite3* db = nullptr;
  if (sqlite3_open(db_path.c_str(), &db) != SQLITE_OK) return 2;
  exec(db, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-262144;");
  auto t0 = Clock::now();
  // ts in seq order (a time range is a seq range, as the writer guarantees).
  const std::string step = std::to_string(year_ms / rows);
  std::string sql =
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < " + std::to_string(rows) +
      ") INSERT INTO audit(seq, ts, actor_ods, actor_role, actor_system, action, entity, outcome, http_status, "
      "request_id, detail, patient_ref, person, channel, purpose, src_ods, src_system, topic, latency_ms, items) "
      "SELECT i, strftime('%Y-%m-%dT%H:%M:%fZ', (" + std::to_string(start) + " + i * " + step +
      ") / 1000.0, 'unixepoch'), "
      "'ORG' || (i % 40), 'role' || (i % 7), 'system' || (i % 40), "
      "CASE i % 12 WHEN 0 THEN 'notify' WHEN 1 THEN 'disclose' WHEN 2 THEN 'search' WHEN 3 THEN 'create' "
      "WHEN 4 THEN 'update' WHEN 5 THEN 'ingest' ELSE 'read' END, 'Patient/' || (i % 100000), "
      "CASE WHEN i % 97 = 0 THEN 'failure' WHEN i % 12 = 0 AND i % 31 = 0 THEN 'retry' "
      "WHEN i % 12 = 0 AND i % 1009 = 0 THEN 'dead' ELSE 'success' END, 200, 'r' || i, '', "
      "'Patient/' || (i % 100000), '', "
      "CASE i % 6 WHEN 0 THEN 'rest-hook' WHEN 1 THEN 'mllp' WHEN 2 THEN 'file' WHEN 3 THEN 'gp-feed' "
      "ELSE 'rest' END, CASE i % 4 WHEN 0 THEN 'ETREAT' WHEN 1 THEN 'HOPERAT' ELSE 'TREAT' END, "
      "CASE WHEN i % 12 < 2 THEN 'SRC' || (i % 13) ELSE '' END, '', 'topic' || (i % 20), "
      "CASE WHEN i % 12 = 0 THEN 50 + (i % 5000) ELSE 0 END, i % 3 FROM n";
  if (!exec(db, sql)) return 2;
  std::printf("generated %lld audit rows over a year in %.1f s; file %.0f MiB\n", static_cast<long long>(rows),
              ms_since(t0) / 1000, static_cast<double>(fs::file_size(db_path)) / (1 << 20));
  sqlite3_close(db);

  gw::store::SqliteOptions o;
  o.path = db_path;
  auto store = gw::store::open_sqlite(o);
  sqlite3* raw = nullptr;
  sqlite3_open_v2(db_path.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr);
  struct Period {
    const char* name;
    int64_t from, to;
  };
  const int64_t end = start + year_ms;
  for (const Period& p : {Period{"month", end - 30LL * 86'400'000, end}, Period{"year", start, end + 86'400'000}}) {
    gw::store::AuditSummaryQuery q;
    q.ts_from = gw::clock::iso_ms(p.from);
    q.ts_to = gw::clock::iso_ms(p.to);
    std::vector<double> report_ms, count_ms;
    int64_t events = 0, groups = 0, counted = 0;
    std::string error;
    for (int run = 0; run < 3; ++run) {
      auto t = Clock::now();
      auto g = store->summarise_audit(q);
      report_ms.push_back(ms_since(t));
      if (!g) {
        error = g.error().message;
        break;
      }
      groups = static_cast<int64_t>(g->size());
      events = 0;
      for (const auto& x : *g) events += x.events;
      // The plain count of the same rows: ts bounds through the primary key,
      // as the report finds its seq range.
      t = Clock::now();
      sqlite3_stmt* st = nullptr;
      sqlite3_prepare_v2(raw, "SELECT count(*) FROM audit WHERE ts >= ?1 AND ts < ?2", -1, &st, nullptr);
      sqlite3_bind_text(st, 1, q.ts_from.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(st, 2, q.ts_to.c_str(), -1, SQLITE_TRANSIENT);
      if (sqlite3_step(st) == SQLITE_ROW) counted = sqlite3_column_int64(st, 0);
      sqlite3_finalize(st);
      count_ms.push_back(ms_since(t));
    }
    if (!error.empty()) {
      std::printf("%-5s  report refused after %.0f ms: %s\n", p.name, report_ms.back(), error.c_str());
      continue;
    }
    std::printf("%-5s  %9lld events in %6lld groups: report %8.0f ms (median of 3)   count(*) %8.0f ms (%lld rows)\n",
                p.name, static_cast<long long>(events), static_cast<long long>(groups), gw::test::median(report_ms),
                gw::test::median(count_ms), static_cast<long long>(counted));
  }
  sqlite3_close(raw);
  store->close();
  store.reset();
  fs::remove_all(dir);
  return 0;
}
