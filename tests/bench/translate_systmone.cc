// Translate benchmark (PERFORMANCE.md target 1): one HL7 v2 ADT^A28 of about
// 1.2 KB -> FHIR transaction Bundle JSON, on one core, through the real
// adapter (parse, map, serialise). The "machine bound" case does the least
// any translator must: visit every delimiter of the same message and write
// the same Bundle JSON with the RapidJSON Writer into a reused buffer.
// Run: build/bin/translate_systmone --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "adapters/systmone/systmone_adapter.h"
#include "gateway/common/json.h"

namespace {

std::string a28_message() {
  const char* segs[] = {
      "MSH|^~\\&|SYSTMONE|RFR|ROUTE|CPISGW|20261103091500+0000||ADT^A28^ADT_A05|S1-000101|P|2.4|||||GBR|UNICODE UTF-8",
      "EVN|A28|20261103091500",
      "PID|1||9990237573^^^NHS^NH~700123^^^RFR^PI~M7700123^^^RFR^MR||THOMPSON^Ellie^May^^Miss||20190506|F|||"
      "12 Mill Lane^Rawmarsh^Rotherham^South Yorkshire^S62 6AA^GBR^H||01709 555123^PRN~07700 900555^PRS|||||||||||||||||||NSTS01",
      "PD1|||Rawmarsh Health Centre^^C87001^^^NHS^ODS|G8123456^PATEL^Anjali^^^Dr",
      "NK1|1|THOMPSON^Jade^^^Ms|MTH|12 Mill Lane^Rawmarsh^Rotherham^South Yorkshire^S62 6AA^GBR^H|07700 900123^PRS||NOK"
      "||||||||||||||||||||||||||9990079196^^^NHS^NH",
      "NK1|2|THOMPSON^Mark^^^Mr|FTH|3 Hill Street^Parkgate^Rotherham^South Yorkshire^S62 6BB^GBR^H|07700 900124^PRS||"
      "|||||||||||||||||||||||||||9990395950^^^NHS^NH",
      "PV1|1|N",
      "ZCT|HV|RFRHV1^Rawmarsh Health Visiting Team|20190601|",
      "ZCT|GP|C87001^Rawmarsh Health Centre|20190601|",
      "ZCT|SN|RFRSN2^Rawmarsh School Nursing|20230901|",
      "ZSC|Y|Y|20190601",
  };
  std::string m;
  for (const char* s : segs) {
    m += s;
    m += '\r';
  }
  return m;
}

gw::adapters::systmone::CodeMaps& maps() {
  static auto m = gw::adapters::systmone::CodeMaps::load(GW_SOURCE_DIR "/profiles");
  if (!m) std::abort();
  return *m;
}

void BM_Translate(benchmark::State& state) {
  const std::string msg = a28_message();
  gw::IssueSink probe;
  auto b = gw::adapters::systmone::hl7_to_fhir(msg, maps(), probe);
  if (!b) {
    state.SkipWithError(b.error().message.c_str());
    return;
  }
  std::size_t out_bytes = 0;
  for (auto _ : state) {
    gw::IssueSink issues;
    auto r = gw::adapters::systmone::hl7_to_fhir(msg, maps(), issues);
    benchmark::DoNotOptimize(r);
    out_bytes += r->json.size();
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * msg.size()));
  state.counters["msg_bytes"] = static_cast<double>(msg.size());
  state.counters["json_bytes"] = static_cast<double>(out_bytes) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_Translate);

void BM_MachineBound(benchmark::State& state) {
  const std::string msg = a28_message();
  gw::IssueSink probe;
  auto b = gw::adapters::systmone::hl7_to_fhir(msg, maps(), probe);
  auto doc = gw::json::parse(b->json);
  gw::json::Buffer buf;
  std::vector<uint32_t> cuts;
  cuts.reserve(1024);
  for (auto _ : state) {
    cuts.clear();
    for (uint32_t i = 0; i < msg.size(); ++i) {
      char c = msg[i];
      if (c == '|' || c == '^' || c == '~' || c == '&' || c == '\r' || c == '\\') cuts.push_back(i);
    }
    benchmark::DoNotOptimize(cuts.data());
    buf.Clear();
    gw::json::Writer w(buf);
    doc->Accept(w);
    benchmark::DoNotOptimize(buf.GetString());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * msg.size()));
}
BENCHMARK(BM_MachineBound);

}  // namespace

BENCHMARK_MAIN();
