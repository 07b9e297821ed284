// Durable HL7 v2 ingest over MLLP against the real binary: every message is
// an ADT^A28 for a new child, answered AA only after its FHIR is committed.
//   mllp_ingest [--connections N] [--seconds S] [--runs R] [--rate MSGS_PER_S]
// Without --rate: closed loop, one message in flight per connection, at 1 and
// 32 connections. With --rate: open loop at that offered rate spread over the
// connections, reporting ACK latency p50/p99 (PERFORMANCE.md: p99 <= 10 ms at
// 5 k msg/s). One JSON line per run, then the medians.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/bench_stats.h"
#include "tests/support/fixtures.h"
#include "tests/support/gateway_process.h"
#include "tests/support/mllp_test_kit.h"
#include "tests/support/test_gateway.h"

using namespace gw;
using Clock = std::chrono::steady_clock;

namespace {

std::atomic<uint32_t> g_seq{1};

std::string a28(uint32_t n) {
  std::string ctl = "B" + std::to_string(n);
  return "MSH|^~\\&|SYSTMONE|RFR|ROUTE|CPISGW|20261103091500+0000||ADT^A28^ADT_A05|" + ctl +
         "|P|2.4|||||GBR|UNICODE UTF-8\rEVN|A28|20261103091500\rPID|1||" + test::nhs_number_for(n) +
         "^^^NHS^NH~7" + std::to_string(n) +
         "^^^RFR^PI||BENCH^Child^May^^Miss||20190506|F|||12 Mill Lane^Rawmarsh^Rotherham^South Yorkshire^S62 6AA^GBR^H||"
         "01709 555123^PRN|||||||||||||||||||NSTS01\rPD1|||Rawmarsh Health Centre^^C87001^^^NHS^ODS\rPV1|1|N\r"
         "ZCT|HV|RFRHV1^Rawmarsh Health Visiting Team|20190601|\rZSC|Y|Y|20190601\r";
}

using test::RunResult;

RunResult run(uint16_t port, int connections, int seconds, double offered) {
  test::LoadRun load(connections);
  std::vector<std::thread> threads;
  for (int c = 0; c < connections; ++c) {
    threads.emplace_back([&, c] {
      test::RawMllpClient client;
      if (!client.connect(port)) {
        load.error();
        return;
      }
      load.wait_for_start();
      auto next = Clock::now();
      auto gap = offered > 0 ? std::chrono::duration_cast<Clock::duration>(
                                   std::chrono::duration<double>(connections / offered))
                             : Clock::duration::zero();
      while (!load.stopping()) {
        if (offered > 0) {
          std::this_thread::sleep_until(next);
          next += gap;
        }
        uint32_t n = g_seq.fetch_add(1);
        auto t0 = Clock::now();
        if (!client.send_message(a28(n))) {
          load.error();
          return;
        }
        auto frames = client.read_frames(1, std::chrono::seconds(10));
        auto dt = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        auto f = frames.empty() ? std::nullopt : test::ack_fields(frames[0]);
        if (!f || f->code != "AA") {
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
  int seconds = 5, runs = 3;
  double rate = 0;
  std::vector<int> conns = {1, 32};
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--seconds") seconds = std::stoi(v);
    else if (k == "--runs") runs = std::stoi(v);
    else if (k == "--connections") conns = {std::stoi(v)};
    else if (k == "--rate") rate = std::stod(v);
    else {
      std::fprintf(stderr, "usage: mllp_ingest [--connections N] [--seconds S] [--runs R] [--rate MSGS_PER_S]\n");
      return 2;
    }
  }
  if (rate > 0 && conns.size() > 1) conns = {32};
  test::TempDir dir;
  test::GatewayProcess gw;
  if (!gw.start(dir.path(), {"--mllp-listen", "127.0.0.1:0", "--log-level", "warn"})) {
    std::fprintf(stderr, "gateway did not start:\n%s\n", gw.log().c_str());
    return 1;
  }
  for (int n : conns) {
    std::vector<double> rates, p50, p99;
    for (int k = 0; k < runs; ++k) {
      RunResult r = run(gw.mllp_port(), n, seconds, rate);
      std::printf("{\"bench\":\"mllp_ingest_durable\",\"connections\":%d,\"offered_per_s\":%.0f,\"run\":%d,"
                  "\"msgs_per_s\":%.0f,\"ack_p50_ms\":%.3f,\"ack_p99_ms\":%.3f,\"ok\":%llu,\"errors\":%llu}\n",
                  n, rate, k + 1, r.rps, r.p50_ms, r.p99_ms, static_cast<unsigned long long>(r.ok),
                  static_cast<unsigned long long>(r.errors));
      std::fflush(stdout);
      rates.push_back(r.rps);
      p50.push_back(r.p50_ms);
      p99.push_back(r.p99_ms);
    }
    std::printf("{\"bench\":\"mllp_ingest_durable\",\"connections\":%d,\"offered_per_s\":%.0f,\"median_of\":%d,"
                "\"msgs_per_s\":%.0f,\"ack_p50_ms\":%.3f,\"ack_p99_ms\":%.3f}\n",
                n, rate, runs, test::median(rates), test::median(p50), test::median(p99));
    std::fflush(stdout);
  }
  return gw.terminate() == 0 ? 0 : 1;
}
