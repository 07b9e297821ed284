// CASH/GUM parse + map benchmark: a generated 100 000-row GUMCAD-style file
// (about 70 % ATTENDANCE, 30 % RISK, 1 in 10 with an NHS number, 1 in 20
// quoted practitioner names with a comma; tests/bench/cashgum_rows.h) through CashGumAdapter::parse_rows
// and bundle_of: CSV reading, validation, mapping and the transaction Bundle
// JSON, on one core. Reports rows/s. Store time is not included (see
// issue 7's end-to-end figure, measured by the ingest route).
// Run: build/bin/cashgum_parse --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "adapters/cashgum/cashgum_adapter.h"
#include "tests/bench/cashgum_rows.h"

namespace {

using gw::adapters::cashgum::CashGumAdapter;
using gw::test::generate_gumcad;

const CashGumAdapter& adapter() {
  static auto a = CashGumAdapter::create(GW_SOURCE_DIR "/profiles");
  if (!a) std::abort();
  return static_cast<const CashGumAdapter&>(**a);
}

void BM_ParseMap100k(benchmark::State& state) {
  const int rows = static_cast<int>(state.range(0));
  const std::string file = generate_gumcad(rows);
  std::size_t bytes = 0;
  for (auto _ : state) {
    auto r = adapter().parse_rows(file);
    if (!r) {
      state.SkipWithError(r.error().message.c_str());
      return;
    }
    auto b = CashGumAdapter::bundle_of(*r);
    bytes = b.json.size();
    benchmark::DoNotOptimize(b.json.data());
  }
  state.counters["rows_per_s"] = benchmark::Counter(static_cast<double>(rows) * static_cast<double>(state.iterations()),
                                                    benchmark::Counter::kIsRate);
  state.counters["bundle_MB"] = static_cast<double>(bytes) / 1e6;
  state.counters["input_MB"] = static_cast<double>(file.size()) / 1e6;
}
BENCHMARK(BM_ParseMap100k)->Arg(100000)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
