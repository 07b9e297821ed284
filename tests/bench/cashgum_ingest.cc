// CASH/GUM end to end: a generated GUMCAD-style file (tests/bench/cashgum_rows.h)
// POSTed to /ingest/cashgum over HTTPS (mutual TLS, the sexual-health client
// certificate) on an in-process gateway with a fresh SQLite store
// (WAL, synchronous=FULL): CSV parse, mapping, the transaction (validation,
// index rows, labels), the durable commit with the raw file and its
// idempotency key, and the per-row answer. The clock stops when the answer
// arrives, which the gateway sends only after the fsync. Each run uses a new
// store; the figure is the median of the runs. Parse + map alone is timed on
// the same file for comparison.
// Run: build/bin/cashgum_ingest [rows=100000] [runs=3]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "adapters/cashgum/cashgum_adapter.h"
#include "gateway/common/json.h"
#include "tests/bench/cashgum_rows.h"
#include "tests/support/bench_stats.h"
#include "tests/support/test_gateway.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double parse_map_seconds(const std::string& file) {
  auto a = gw::adapters::cashgum::CashGumAdapter::create(GW_SOURCE_DIR "/profiles");
  if (!a) std::abort();
  auto t0 = Clock::now();
  gw::IssueSink sink;
  auto b = (*a)->parse(file, sink);
  if (!b) std::abort();
  return seconds_since(t0);
}

// One POST of the whole file to a fresh gateway; seconds, or a negative value on failure.
double ingest_seconds(const std::string& file, int* resources) {
  gw::config::Limits limits;
  limits.body_bytes = 512u * 1024 * 1024;
  limits.read_timeout = std::chrono::minutes(10);
  limits.handler_timeout = std::chrono::minutes(10);
  gw::test::InProcessGateway gw(limits);
  auto c = gw.client("sexual-health");
  c.set_timeout(std::chrono::minutes(10));
  if (!c.connect()) return -1;
  auto t0 = Clock::now();
  auto r = c.request("POST", "/ingest/cashgum", file, {{"Content-Type", "text/csv"}});
  double s = seconds_since(t0);
  if (!r || r->status != 200) {
    std::fprintf(stderr, "ingest failed: %d %.300s\n", r ? r->status : 0, r ? r->body.c_str() : "");
    return -1;
  }
  auto d = gw::json::parse(r->body);
  *resources = d && d->IsObject() && d->HasMember("resources") ? (*d)["resources"].GetInt() : -1;
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  int rows = argc > 1 ? std::atoi(argv[1]) : 100000;
  int runs = argc > 2 ? std::atoi(argv[2]) : 3;
  std::string file = gw::test::generate_gumcad(rows);
  std::printf("file: %d rows, %.1f MB\n", rows, static_cast<double>(file.size()) / 1e6);
  std::vector<double> parse, ingest;
  for (int i = 0; i < runs; ++i) {
    parse.push_back(parse_map_seconds(file));
    int resources = 0;
    double s = ingest_seconds(file, &resources);
    if (s < 0) return 1;
    ingest.push_back(s);
    std::printf("run %d: parse+map %.3f s, ingest end to end %.3f s (%d resources, %.0f rows/s)\n", i + 1,
                parse.back(), s, resources, rows / s);
  }
  double pm = gw::test::median(parse), e2e = gw::test::median(ingest);
  std::printf("median parse+map: %.3f s = %.0f rows/s\n", pm, rows / pm);
  std::printf("median end to end (HTTPS, parse, map, store, fsync): %.3f s = %.0f rows/s (target 50000)\n", e2e,
              rows / e2e);
  return 0;
}
