// CASH/GUM parse + map benchmark: a generated 100 000-row GUMCAD-style file
// (about 70 % ATTENDANCE, 30 % RISK, 1 in 10 with an NHS number, 1 in 20
// quoted practitioner names with a comma) through CashGumAdapter::parse_rows
// and bundle_of: CSV reading, validation, mapping and the transaction Bundle
// JSON, on one core. Reports rows/s. Store time is not included (see
// issue 7's end-to-end figure, measured by the ingest route).
// Run: build/bin/cashgum_parse --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "adapters/cashgum/cashgum_adapter.h"

namespace {

using gw::adapters::cashgum::CashGumAdapter;

std::string generate(int rows) {
  std::string out =
      "RecordType,ClinicID,PatientID,NHSNumber,DateOfBirth,Age,Gender,LA,AttendanceDate,ActivityCode,RiskOutcome,"
      "CSEIndicators,ReferredTo,ReferralDate,Practitioner\r\n";
  const char* codes[] = {"T1", "T2", "T3", "T4", "C4", "B", "P1A", "86406008"};
  const char* outcomes[] = {"NO_CONCERN", "CONCERN_ADVICE", "CONCERN_REFERRED", "CSE_RISK"};
  char line[512];
  for (int i = 0; i < rows; ++i) {
    int age = 13 + i % 30;
    bool risk = i % 10 >= 7;
    const char* nhs = i % 10 == 0 ? "9990475148" : "";
    std::snprintf(line, sizeof line, "%s,RFRSH,GUM-2026-%06d,%s,%s,%d,%d,E08000018,%02d/%02d/2026,%s,%s,%s,%s,%s,%s\r\n",
                  risk ? "RISK" : "ATTENDANCE", i, nhs, i % 3 == 0 ? "2010-02-03" : "", age, 1 + i % 2, 1 + i % 28,
                  1 + i % 12, risk ? "" : codes[i % 8], risk ? outcomes[i % 4] : "",
                  risk ? "OLDER_PARTNER;GIFTS" : "", risk ? (i % 2 ? "SOCIAL_CARE" : "NONE") : "", "",
                  i % 20 == 0 ? "\"Smith, Dr K\"" : "Nurse A");
    out += line;
  }
  return out;
}

const CashGumAdapter& adapter() {
  static auto a = CashGumAdapter::create(GW_SOURCE_DIR "/profiles");
  if (!a) std::abort();
  return static_cast<const CashGumAdapter&>(**a);
}

void BM_ParseMap100k(benchmark::State& state) {
  const int rows = static_cast<int>(state.range(0));
  const std::string file = generate(rows);
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
