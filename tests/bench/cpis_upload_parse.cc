// CP-IS upload parse + map benchmark: a generated 10 000-row local-authority
// file (CPP, LAC with a legal status, UCPP; one in five ended; one in fifty
// with a bad NHS number and one in fifty without an emergency number, which
// are rejected) through CpisUploadAdapter::parse_records and bundle_of: CSV
// reading, the row rules, the mapping to Patient + plan CareTeam and the
// transaction Bundle JSON, on one core. No store (the match-rate lookups and
// the commit are the ingest route's). Reports rows/s; read the median.
// Run: build/bin/cpis_upload_parse --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "adapters/cpis/cpis_upload_adapter.h"
#include "tests/support/fixtures.h"

namespace {

using gw::adapters::cpis::CpisUploadAdapter;

std::string generate(int rows) {
  std::string out =
      "LocalChildID,NHSNumber,FamilyName,GivenName,DateOfBirth,PlanType,StartDate,EndDate,DeleteDate,LAODS,LAName,"
      "OfficePhone,EmergencyPhone,LACLegalStatus\r\n";
  const char* types[] = {"CPP", "LAC", "UCPP"};
  char line[512];
  for (int i = 0; i < rows; ++i) {
    const char* type = types[i % 3];
    std::string nhs = i % 50 == 7 ? std::string("9990237574") : gw::test::nhs_number_for(static_cast<uint32_t>(i));
    std::snprintf(line, sizeof line,
                  "BENCH-%06d,%s,SURNAME%d,Given,2015-%02d-%02d,%s,2026-%02d-01,%s,,LA372,Rotherham Metropolitan "
                  "Borough Council,01709 336080,%s,%s\r\n",
                  i, nhs.c_str(), i % 97, 1 + i % 12, 1 + i % 28, type, 1 + i % 10, i % 5 == 0 ? "2026-11-20" : "",
                  i % 50 == 13 ? "" : "01709 336080", i % 3 == 1 ? "C2" : "");
    out += line;
  }
  return out;
}

const CpisUploadAdapter& adapter() {
  static auto a = CpisUploadAdapter::create();
  if (!a) std::abort();
  return static_cast<const CpisUploadAdapter&>(**a);
}

void BM_ParseMap(benchmark::State& state) {
  const int rows = static_cast<int>(state.range(0));
  const std::string file = generate(rows);
  const gw::adapters::cpis::UploadContext ctx{"LA372", "2026-11-27"};
  std::size_t bytes = 0, accepted = 0;
  for (auto _ : state) {
    auto r = adapter().parse_records(file, ctx);
    if (!r) {
      state.SkipWithError(r.error().message.c_str());
      return;
    }
    auto b = CpisUploadAdapter::bundle_of(r->records);
    bytes = b.json.size();
    accepted = 0;
    for (const auto& rec : r->records) accepted += rec.accepted() ? 1 : 0;
    benchmark::DoNotOptimize(b.json.data());
  }
  state.counters["rows_per_s"] = benchmark::Counter(static_cast<double>(rows) * static_cast<double>(state.iterations()),
                                                    benchmark::Counter::kIsRate);
  state.counters["accepted"] = static_cast<double>(accepted);
  state.counters["bundle_MB"] = static_cast<double>(bytes) / 1e6;
  state.counters["input_MB"] = static_cast<double>(file.size()) / 1e6;
}
BENCHMARK(BM_ParseMap)->Arg(10000)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
