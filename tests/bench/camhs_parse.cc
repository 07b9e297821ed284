// Records/s for CAMHS XML parse + XSD validation + map to FHIR of a generated
// extract of 10 000 patients (each with indicators, a care coordinator, a
// referral, a contact; every 10th a relapse signature, an observed indicator
// and two dependants; every 20th a Tier 4 spell).
// BM_CamhsIngest10k: the same extract through the real ingest path —
// POST /ingest/camhs over mutual TLS to an in-process gateway with a fresh
// SQLite store per run: parse, map, CP-IS cross-check, validation,
// conditional-reference resolution and merge, one durable (fsync'd)
// transaction; timed until the answer, which is sent after the commit.
//   cmake --build build -j2 --target camhs_parse && build/bin/camhs_parse
#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>

#include "adapters/camhs/camhs_adapter.h"
#include "tests/support/test_gateway.h"

namespace {

std::string nhs_number(unsigned base) {
  for (;; ++base) {
    char d[10];
    std::snprintf(d, sizeof d, "%09u", base);
    int sum = 0;
    for (int i = 0; i < 9; ++i) sum += (d[i] - '0') * (10 - i);
    int c = 11 - sum % 11;
    if (c == 11) c = 0;
    if (c == 10) continue;
    return std::string(d, 9) + static_cast<char>('0' + c);
  }
}

std::string extract(int patients) {
  std::string x = R"(<?xml version="1.0" encoding="UTF-8"?>
<MHSExtract xmlns="urn:cpis-gateway:camhs:1" OrgIDProvider="RXE" ReportingPeriodStart="2026-11-01" ReportingPeriodEnd="2026-11-30" Created="2026-12-01T02:00:00Z">
)";
  unsigned next = 999200000;
  for (int i = 0; i < patients; ++i) {
    std::string id = "RXE-" + std::to_string(i);
    std::string nhs = nhs_number(next);
    next = static_cast<unsigned>(std::stoul(nhs.substr(0, 9))) + 1;
    const bool adult = i % 2 == 0;
    x += "  <Patient LocalPatientID=\"" + id + "\" NHSNumber=\"" + nhs +
         "\" NHSNumberStatus=\"01\" BirthDate=\"1990-01-01\" Gender=\"2\" Postcode=\"S60 1AA\">\n";
    x += "    <Indicators CPP=\"X\" LACStatus=\"N\" YoungCarer=\"N\"/>\n";
    x += "    <CareCoordinator CareProfLocalID=\"P77\" Name=\"A. Worker\" Team=\"Team\" Phone=\"01709 000000\" Start=\"2026-01-01\"/>\n";
    x += "    <Referral ServiceRequestID=\"R" + std::to_string(i) + "\" Received=\"2026-01-01\" Source=\"GP\" TeamType=\"" +
         (adult ? "A01" : "C01") + "\" Priority=\"ROUTINE\" Discharged=\"\"/>\n";
    x += "    <CareContact ServiceRequestID=\"R" + std::to_string(i) + "\" Date=\"2026-11-02\" Attended=\"5\"/>\n";
    if (i % 20 == 1)
      x += "    <HospitalSpell HospProvSpellID=\"H" + std::to_string(i) +
           "\" Start=\"2026-10-01\" End=\"2026-11-05\" Tier=\"4\" Ward=\"Unit\" DischargeDestination=\"HOME\" ProviderODS=\"RXX\"/>\n";
    if (i % 10 == 0) {
      x += "    <RelapseSignature CarePlanID=\"CP" + std::to_string(i) +
           "\" Recorded=\"2026-10-20\" ReviewDue=\"2027-01-20\" CareProfLocalID=\"P77\">\n"
           "      <Indicator Seq=\"1\" Text=\"Stops taking medication\" Snomed=\"\"/>\n"
           "      <Indicator Seq=\"2\" Text=\"Keeps the children home from school\" Snomed=\"\"/>\n"
           "      <Action>Call the care coordinator the same day</Action>\n    </RelapseSignature>\n";
      x += "    <IndicatorObserved Seq=\"1\" Date=\"2026-11-02\" ObservedBy=\"P77\"/>\n";
      for (int k = 0; k < 2; ++k) {
        std::string c = nhs_number(next);
        next = static_cast<unsigned>(std::stoul(c.substr(0, 9))) + 1;
        x += "    <Dependant NHSNumber=\"" + c + "\" LocalName=\"Child\" BirthDate=\"2019-05-06\" Relationship=\"CHD\" ParentalResponsibility=\"Y\"/>\n";
      }
    }
    x += "  </Patient>\n";
  }
  x += "</MHSExtract>\n";
  return x;
}

void BM_CamhsParse10k(benchmark::State& state) {
  auto a = gw::adapters::camhs::CamhsAdapter::create(GW_SOURCE_DIR "/profiles");
  if (!a) {
    state.SkipWithError(a.error().message.c_str());
    return;
  }
  const int patients = static_cast<int>(state.range(0));
  const std::string doc = extract(patients);
  std::size_t bytes = 0;
  for (auto _ : state) {
    gw::IssueSink issues;
    auto b = (*a)->parse(doc, issues);
    if (!b) {
      state.SkipWithError(b.error().message.c_str());
      return;
    }
    bytes = b->json.size();
    benchmark::DoNotOptimize(b->json.data());
  }
  state.counters["records/s"] = benchmark::Counter(static_cast<double>(patients) * state.iterations(), benchmark::Counter::kIsRate);
  state.counters["xml_MB"] = static_cast<double>(doc.size()) / 1e6;
  state.counters["fhir_MB"] = static_cast<double>(bytes) / 1e6;
}
BENCHMARK(BM_CamhsParse10k)->Arg(10000)->Unit(benchmark::kMillisecond)->UseRealTime();

// POSTs one extract; false (and the benchmark skipped) unless it is accepted.
bool ingest(benchmark::State& state, gw::test::HttpsClient& client, const std::string& doc) {
  auto r = client.request("POST", "/ingest/camhs", doc, {{"Content-Type", "application/xml"}});
  if (r && r->status == 200) return true;
  static std::string why;
  why = r ? "HTTP " + std::to_string(r->status) + ": " + r->body.substr(0, 300) : r.error().message;
  state.SkipWithError(why.c_str());
  return false;
}

// range(0) patients; range(1) = 1: the store already holds last month's
// extract of the same people, so every record is an update merged into the
// stored Patient (profiles/merge) rather than a create.
void BM_CamhsIngest10k(benchmark::State& state) {
  const int patients = static_cast<int>(state.range(0));
  const bool update = state.range(1) == 1;
  const std::string doc = extract(patients);
  std::string previous = doc;  // another file (another SHA-256) about the same people
  const std::string created = "Created=\"2026-12-01";
  previous.replace(previous.find(created), created.size(), "Created=\"2026-11-01");
  gw::config::Limits limits;
  limits.body_bytes = 64 * 1024 * 1024;
  limits.read_timeout = limits.handler_timeout = std::chrono::minutes(10);
  for (auto _ : state) {
    state.PauseTiming();
    auto gw = std::make_unique<gw::test::InProcessGateway>(limits);  // an empty store each run
    auto client = gw->client("integration");
    client.set_timeout(std::chrono::minutes(10));
    if (!client.connect()) {
      state.SkipWithError("cannot connect");
      return;
    }
    if (update && !ingest(state, client, previous)) return;
    state.ResumeTiming();
    if (!ingest(state, client, doc)) return;
    state.PauseTiming();
    gw.reset();
    state.ResumeTiming();
  }
  state.counters["records/s"] = benchmark::Counter(static_cast<double>(patients) * state.iterations(), benchmark::Counter::kIsRate);
  state.counters["xml_MB"] = static_cast<double>(doc.size()) / 1e6;
}
BENCHMARK(BM_CamhsIngest10k)
    ->ArgNames({"patients", "update"})
    ->Args({10000, 0})
    ->Args({10000, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(1);

}  // namespace

BENCHMARK_MAIN();
