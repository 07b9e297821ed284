// HTTPS load generator with client certificates against the real binary.
//   https_load [--connections N] [--seconds S] [--runs R] [--mode read|create|both]
// Starts build/bin/cpis-gateway on a fresh data dir, seeds patients, then for
// each mode and run drives N keep-alive connections (one thread each, one
// request in flight per connection) for S seconds. Prints one JSON line per
// run and one with the medians over the runs.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/bench_stats.h"
#include "tests/support/fixtures.h"
#include "tests/support/gateway_process.h"
#include "tests/support/https_client.h"
#include "tests/support/test_gateway.h"

using namespace gw;
using Clock = std::chrono::steady_clock;

namespace {

using test::RunResult;

std::atomic<uint32_t> g_next_patient{1'000'000};

RunResult run(uint16_t port, const std::string& mode, int connections, int seconds, int seeded) {
  const std::string patient_template = test::fixture("fhir/Patient.json", {{"nhs", "NHS_NUMBER"}});
  test::LoadRun load(connections);
  std::vector<std::thread> threads;
  for (int c = 0; c < connections; ++c) {
    threads.emplace_back([&, c] {
      auto client = test::HttpsClient::for_role(port, "integration");
      if (!client.connect()) {
        load.error();
        return;
      }
      load.wait_for_start();
      uint32_t i = static_cast<uint32_t>(c);
      while (!load.stopping()) {
        std::string target, body, method;
        if (mode == "read") {
          method = "GET";
          target = "/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number%7C" +
                   test::nhs_number_for(i++ % static_cast<uint32_t>(seeded));
        } else {
          method = "POST";
          target = "/fhir/Patient";
          body = patient_template;
          body.replace(body.find("NHS_NUMBER"), 10, test::nhs_number_for(g_next_patient.fetch_add(1)));
        }
        auto t0 = Clock::now();
        auto r = client.request(method, target, body, {{"Content-Type", "application/fhir+json"}});
        auto dt = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        if (!r || (r->status != 200 && r->status != 201)) {
          load.error();
          continue;
        }
        load.record(c, dt);
      }
    });
  }
  return load.time(threads, seconds);
}

}  // namespace

int main(int argc, char** argv) {
  int seconds = 5, runs = 3, seeded = 1000;
  std::vector<int> conns = {1, 32};
  std::vector<std::string> modes = {"read", "create"};
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--seconds") seconds = std::stoi(v);
    else if (k == "--runs") runs = std::stoi(v);
    else if (k == "--connections") conns = {std::stoi(v)};
    else if (k == "--mode" && v != "both") modes = {v};
    else {
      std::fprintf(stderr, "usage: https_load [--connections N] [--seconds S] [--runs R] [--mode read|create|both]\n");
      return 2;
    }
  }
  test::TempDir dir;
  test::GatewayProcess gw;
  if (!gw.start(dir.path(), {"--log-level", "warn"})) {
    std::fprintf(stderr, "gateway did not start:\n%s\n", gw.log().c_str());
    return 1;
  }
  {
    auto c = test::HttpsClient::for_role(gw.port(), "integration");
    for (int i = 0; i < seeded; ++i) {
      auto r = c.request("POST", "/fhir/Patient",
                         test::fixture("fhir/Patient.json", {{"nhs", test::nhs_number_for(static_cast<uint32_t>(i))}}),
                         {{"Content-Type", "application/fhir+json"}});
      if (!r || r->status != 201) {
        std::fprintf(stderr, "seeding failed at %d\n", i);
        return 1;
      }
    }
  }
  for (const auto& mode : modes) {
    for (int n : conns) {
      std::vector<double> rps, p50, p99;
      for (int k = 0; k < runs; ++k) {
        RunResult r = run(gw.port(), mode, n, seconds, seeded);
        std::printf("{\"bench\":\"https_%s\",\"connections\":%d,\"run\":%d,\"req_per_s\":%.0f,\"p50_ms\":%.3f,"
                    "\"p99_ms\":%.3f,\"ok\":%llu,\"errors\":%llu}\n",
                    mode.c_str(), n, k + 1, r.rps, r.p50_ms, r.p99_ms, static_cast<unsigned long long>(r.ok),
                    static_cast<unsigned long long>(r.errors));
        std::fflush(stdout);
        rps.push_back(r.rps);
        p50.push_back(r.p50_ms);
        p99.push_back(r.p99_ms);
      }
      std::printf("{\"bench\":\"https_%s\",\"connections\":%d,\"median_of\":%d,\"req_per_s\":%.0f,\"p50_ms\":%.3f,"
                  "\"p99_ms\":%.3f}\n",
                  mode.c_str(), n, runs, test::median(rps), test::median(p50), test::median(p99));
      std::fflush(stdout);
    }
  }
  return gw.terminate() == 0 ? 0 : 1;
}
