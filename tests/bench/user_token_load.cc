// The cost of verifying a user token on every request (issue 17 part 3): the
// same read (GET /fhir/Patient/{id}, mutual TLS, keep-alive) without a token,
// with an RS256 token and with an ES256 token, in the same process and run,
// the three interleaved run by run so machine noise falls on each alike.
//   user_token_load [--connections C] [--seconds S] [--runs R]
// Every request carries a token. The gateway remembers a token whose signature
// verified (by its SHA-256, until its exp) and checks the claims, organisation
// and job role on every request: `rs256` / `es256` send one token over and
// over (a user's session), `rs256_each` / `es256_each` a different token on
// every request, from a pool larger than that memory (every signature
// verified: the first request of each session, or a token-per-request
// client). Prints one JSON line per run and one with the medians per mode and
// connection count.
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "gateway/common/log.h"
#include "tests/support/bench_stats.h"
#include "tests/support/plan_seed.h"
#include "tests/support/test_gateway.h"
#include "tests/support/user_tokens_kit.h"

using namespace gw;
using Clock = std::chrono::steady_clock;

namespace {

// `auth`: the Authorization values, taken in turn (one: the same every time).
test::RunResult run(test::InProcessGateway& gw, const std::string& target, const std::vector<std::string>& auth,
                    int connections, int seconds) {
  test::LoadRun load(connections);
  std::vector<std::thread> threads;
  for (int c = 0; c < connections; ++c) {
    threads.emplace_back([&, c] {
      auto client = gw.client("health-visiting");
      if (!client.connect()) {
        load.error();
        return;
      }
      std::vector<std::pair<std::string, std::string>> headers;
      if (!auth.empty()) headers.emplace_back("Authorization", "");
      size_t next = static_cast<size_t>(c) * 7919;
      load.wait_for_start();
      while (!load.stopping()) {
        if (!auth.empty()) headers[0].second = auth[next++ % auth.size()];
        auto t0 = Clock::now();
        auto r = client.request("GET", target, "", headers);
        auto dt = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        if (!r || r->status != 200) {
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
  std::vector<int> conns = {1, 16};
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--seconds") seconds = std::stoi(v);
    else if (k == "--runs") runs = std::stoi(v);
    else if (k == "--connections") conns = {std::stoi(v)};
    else {
      std::fprintf(stderr, "usage: user_token_load [--connections C] [--seconds S] [--runs R]\n");
      return 2;
    }
  }
  log::set_level(log::Level::error);
  test::InProcessGateway gw;
  auto integ = gw.client("integration");
  std::string pid = test::create_patient(integ, test::nhs_number_from("999091234"));
  if (pid.empty()) {
    std::fprintf(stderr, "seeding failed\n");
    return 1;
  }
  const std::string target = "/fhir/Patient/" + pid;
  test::TokenSpec rs;
  rs.org = test::dev_ods("health-visiting");
  rs.exp = 3600;
  test::TokenSpec es = rs;
  es.alg = "ES256";
  es.kid = "ec-1";
  // More distinct tokens than the gateway remembers (8 192), so none is found there.
  auto pool = [](test::TokenSpec s) {
    std::vector<std::string> out;
    for (int i = 0; i < 12'000; ++i) {
      s.sub = "user-" + std::to_string(100'000 + i);
      out.push_back("Bearer " + test::mint_token(s));
    }
    return out;
  };
  const std::vector<std::pair<std::string, std::vector<std::string>>> modes = {
      {"no_token", {}},
      {"rs256", {"Bearer " + test::mint_token(rs)}},
      {"es256", {"Bearer " + test::mint_token(es)}},
      {"rs256_each", pool(rs)},
      {"es256_each", pool(es)}};
  for (int n : conns) {
    std::vector<std::vector<double>> rps(modes.size()), p50(modes.size()), p99(modes.size());
    for (int k = 0; k < runs; ++k) {
      for (size_t m = 0; m < modes.size(); ++m) {
        test::RunResult r = run(gw, target, modes[m].second, n, seconds);
        std::printf("{\"bench\":\"user_token_%s\",\"connections\":%d,\"run\":%d,\"req_per_s\":%.0f,\"p50_ms\":%.3f,"
                    "\"p99_ms\":%.3f,\"ok\":%llu,\"errors\":%llu}\n",
                    modes[m].first.c_str(), n, k + 1, r.rps, r.p50_ms, r.p99_ms,
                    static_cast<unsigned long long>(r.ok), static_cast<unsigned long long>(r.errors));
        std::fflush(stdout);
        rps[m].push_back(r.rps);
        p50[m].push_back(r.p50_ms);
        p99[m].push_back(r.p99_ms);
      }
    }
    for (size_t m = 0; m < modes.size(); ++m)
      std::printf("{\"bench\":\"user_token_%s\",\"connections\":%d,\"median_of\":%d,\"req_per_s\":%.0f,\"p50_ms\":%.3f,"
                  "\"p99_ms\":%.3f}\n",
                  modes[m].first.c_str(), n, runs, test::median(rps[m]), test::median(p50[m]), test::median(p99[m]));
    std::fflush(stdout);
  }
  return 0;
}
