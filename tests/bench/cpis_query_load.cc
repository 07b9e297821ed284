// CP-IS query load: the national CareTeam query over HTTPS keep-alive with
// client certificates, against plans seeded straight into the store.
//   cpis_query_load [--plans N] [--connections C] [--seconds S] [--runs R] [--mode unscheduled|silent|ceiling|all]
//                   [--data-dir DIR [--plan-every K]]
// --data-dir: on the store a seed_store.py run made there (not seeded here):
// it holds plans of L0001 for children k*K, k < N (nhs_number_for of
// tests/support/fixtures.cc); queries ask for those. The store keeps what
// the runs write (audit rows, the subscription).
// The whole stack in this process (InProcessGateway with the subscriptions
// engine; a HookReceiver with mutual TLS as the local authority's endpoint).
// N children, each with one CP-IS plan managed by L0001, which subscribes to
// cpis-access. Modes:
//   unscheduled — IsUnscheduledAccessEvent: true: every query commits an
//                 AuditEvent before its 200 and fans out one notification event;
//   silent      — IsUnscheduledAccessEvent: false: the read and an audit row;
//   ceiling     — GET /fhir/metadata: TLS, HTTP and routing only (the ceiling
//                 PERFORMANCE.md relates the targets to).
// Each run drives C connections (one thread each, one request in flight) for
// S seconds; prints one JSON line per run and one with the medians.
//
// --processes 1,2 (issue 18's several nodes): the plans are seeded into the
// store of the engine GW_TEST_STORE names, then each run starts that many real
// `cpis-gateway serve` processes on that one store (PostgreSQL: one schema;
// SQLite: one process only) and spreads the C connections over them; node
// counts alternate within each run so they meet the same machine state. The
// local authority's receiver runs in this process either way.
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gateway/common/json.h"
#include "gateway/common/log.h"
#include "gateway/events/subscriptions.h"
#include "gateway/model/resource_text.h"
#include "tests/support/bench_stats.h"
#include "tests/support/fixtures.h"
#include "tests/support/gateway_process.h"
#include "tests/support/hook_receiver.h"
#include "tests/support/subscription_kit.h"
#include "tests/support/test_gateway.h"
#include "tests/support/test_store.h"

using namespace gw;
using Clock = std::chrono::steady_clock;

namespace {

store::WriteOp op_for(const std::string& type, const std::string& id, const std::string& text, bool patient_key,
                      const std::string& nhs) {
  auto doc = json::parse(text);
  if (!doc) {
    std::fprintf(stderr, "fixture is not JSON\n");
    std::exit(1);
  }
  store::WriteOp op;
  op.kind = store::OpKind::create;
  op.type = type;
  op.id = id;
  op.index = model::index_entries(type, *doc);
  op.body = model::storage_text(*doc, type, doc->GetAllocator());
  if (patient_key) op.unique_key = nhs;
  return op;
}

// Children and their plans, committed in large units (the bulk path an upload
// would take; the REST API is not what is measured here).
bool seed(store::Store& st, int plans) {
  const int kPerUnit = 500;
  std::atomic<int> pending{0};
  std::atomic<bool> failed{false};
  for (int base = 0; base < plans; base += kPerUnit) {
    store::UnitOfWork u;
    for (int i = base; i < std::min(plans, base + kPerUnit); ++i) {
      std::string nhs = test::nhs_number_for(static_cast<uint32_t>(i));
      std::string pid = "child-" + std::to_string(i);
      u.ops.push_back(op_for("Patient", pid, test::fixture("fhir/Patient.json", {{"nhs", nhs}}), true, nhs));
      u.ops.push_back(op_for("CareTeam", "plan-" + std::to_string(i),
                             test::fixture("fhir/CpisPlan.json", {{"patient", pid},
                                                                 {"nhs", nhs},
                                                                 {"la", "L0001"},
                                                                 {"la_name", "Authority L0001"},
                                                                 {"local_id", std::to_string(i)},
                                                                 {"status", "active"},
                                                                 {"snomed", "342191000000101"},
                                                                 {"period", R"({"start":"2026-01-10"})"}}),
                             false, nhs));
    }
    ++pending;
    auto r = st.commit(std::move(u), [&](Result<store::CommitOutcome> res) {
      if (!res) failed = true;
      --pending;
    });
    if (!r) {
      std::fprintf(stderr, "the store refused a seed unit: %s\n", r.error().message.c_str());
      return false;
    }
  }
  while (pending.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return !failed.load();
}

using test::RunResult;

// This process's resident set (the whole in-process stack and the load
// threads), MiB, from /proc/self/status.
double rss_mib() {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  double kib = -1;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "VmRSS: %lf kB", &kib) == 1) break;
  std::fclose(f);
  return kib / 1024;
}

// `client_for(c)`: the connection's client (one gateway, or the nodes in turn);
// the plans asked for are those of every `every`-th child.
template <typename ClientFor>
RunResult run(ClientFor client_for, const std::string& mode, int connections, int seconds, int plans, int every) {
  test::LoadRun load(connections);
  std::vector<std::thread> threads;
  const std::string header = mode == "unscheduled" ? "true" : "false";
  // The HTTPS ceiling of the same stack in the same run: a cached answer, no store.
  const bool ceiling = mode == "ceiling";
  for (int c = 0; c < connections; ++c) {
    threads.emplace_back([&, c] {
      auto client = client_for(c);
      if (!client.connect()) {
        load.error();
        return;
      }
      std::mt19937 rng(static_cast<uint32_t>(c) * 7919u + 1);
      std::uniform_int_distribution<int> pick(0, plans - 1);
      load.wait_for_start();
      uint64_t n = 0;
      while (!load.stopping()) {
        std::string target = ceiling ? "/fhir/metadata"
                                     : "/fhir/CareTeam?patient:identifier=https://fhir.nhs.uk/Id/nhs-number%7C" +
                                           test::nhs_number_for(static_cast<uint32_t>(pick(rng) * every));
        auto t0 = Clock::now();
        auto r = client.request("GET", target, "",
                                {{"IsUnscheduledAccessEvent", header},
                                 {"TraceID", "bench-" + std::to_string(c) + "-" + std::to_string(n++)}});
        auto dt = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        // A 200 must carry the plan: an empty Bundle would measure the wrong thing.
        if (!r || r->status != 200 || (!ceiling && r->body.find("\"total\":1") == std::string::npos)) {
          load.error();
          continue;
        }
        load.record(c, dt);
      }
    });
  }
  return load.time(threads, seconds);
}


// --processes: the gateway as operators run it, one or more real processes on
// one store. Returns the exit status.
int run_processes(int plans, const std::vector<int>& conns, int seconds, int runs,
                  const std::vector<std::string>& modes, const std::vector<int>& nodes) {
  for (int n : nodes) {
    if (n < 1 || (n > 1 && !test::on_postgres())) {
      std::fprintf(stderr, "--processes: %d nodes need GW_TEST_STORE=postgresql (one store, several nodes)\n", n);
      return 2;
    }
  }
  test::TempDir dir;
  const std::string data = dir.path() + "/data";  // every node names it: on PostgreSQL it keys the schema
  std::filesystem::create_directories(data);
  auto seed_start = Clock::now();
  {
    store::SqliteOptions o;
    o.path = data + "/gateway.db";
    auto st = test::open_store(o);
    if (!st || !seed(*st, plans)) {
      std::fprintf(stderr, "seeding failed\n");
      return 1;
    }
  }
  double seed_s = std::chrono::duration<double>(Clock::now() - seed_start).count();
  std::printf("{\"bench\":\"cpis_seed\",\"plans\":%d,\"seconds\":%.1f,\"engine\":\"%s\"}\n", plans, seed_s,
              test::engine_name());
  std::fflush(stdout);
  test::HookReceiver rx;
  std::atomic<uint64_t> notifications{0};
  bool subscribed = false;
  // One line per (mode, connections, nodes) with the medians over the runs.
  struct Series {
    std::vector<double> rps, p50, p99;
  };
  for (const auto& mode : modes) {
    for (int c : conns) {
      std::vector<Series> series(nodes.size());
      for (int k = 0; k < runs; ++k) {
        for (size_t ni = 0; ni < nodes.size(); ++ni) {
          const int n = nodes[ni];
          std::vector<std::unique_ptr<test::GatewayProcess>> procs;
          for (int i = 0; i < n; ++i) {
            procs.push_back(std::make_unique<test::GatewayProcess>());
            if (!procs.back()->start(data, {"--log-level", "error"})) {
              std::fprintf(stderr, "node %d did not start:\n%s\n", i + 1, procs.back()->log().c_str());
              return 1;
            }
          }
          if (!subscribed) {
            auto la = test::HttpsClient::for_role(procs[0]->port(), "local-authority");
            auto r = la.request("POST", "/fhir/Subscription",
                                test::subscription_json({.topic = "cpis-access", .endpoint = rx.url("/la")}),
                                {{"Content-Type", "application/fhir+json"}});
            if (!r || r->status != 201 ||
                !rx.wait_for([](auto& p) { return test::count_type(p, "handshake") >= 1; }, std::chrono::seconds(30))) {
              std::fprintf(stderr, "the local authority's subscription was refused or not handshaken\n");
              return 1;
            }
            rx.set_on_post([&](test::ReceivedPost&& p) {
              notifications += test::read_notification(p.body).numbers.size();
            });
            subscribed = true;
          }
          uint64_t before = notifications.load();
          RunResult r = run(
              [&](int conn) {
                return test::HttpsClient::for_role(procs[static_cast<size_t>(conn % n)]->port(), "unscheduled-care");
              },
              mode, c, seconds, plans, 1);
          // SIGTERM: a node finishes what it has in flight; events not yet delivered
          // stay pending in the store, and the next run's nodes deliver them.
          for (auto& p : procs) p->terminate();
          std::printf("{\"bench\":\"cpis_%s\",\"engine\":\"%s\",\"nodes\":%d,\"connections\":%d,\"run\":%d,"
                      "\"req_per_s\":%.0f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"ok\":%llu,\"errors\":%llu,"
                      "\"notified_in_window\":%llu}\n",
                      mode.c_str(), test::engine_name(), n, c, k + 1, r.rps, r.p50_ms, r.p99_ms,
                      static_cast<unsigned long long>(r.ok), static_cast<unsigned long long>(r.errors),
                      static_cast<unsigned long long>(notifications.load() - before));
          std::fflush(stdout);
          series[ni].rps.push_back(r.rps);
          series[ni].p50.push_back(r.p50_ms);
          series[ni].p99.push_back(r.p99_ms);
        }
      }
      for (size_t ni = 0; ni < nodes.size(); ++ni) {
        std::printf("{\"bench\":\"cpis_%s\",\"engine\":\"%s\",\"nodes\":%d,\"connections\":%d,\"median_of\":%d,"
                    "\"req_per_s\":%.0f,\"p50_ms\":%.3f,\"p99_ms\":%.3f}\n",
                    mode.c_str(), test::engine_name(), nodes[ni], c, runs, test::median(series[ni].rps),
                    test::median(series[ni].p50), test::median(series[ni].p99));
        std::fflush(stdout);
      }
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int seconds = 5, runs = 3, plans = 100'000, every = 1;
  std::string data_dir;
  std::vector<int> conns = {1, 32};
  std::vector<std::string> modes = {"unscheduled", "silent", "ceiling"};
  std::vector<int> processes;  // empty: the in-process gateway
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--seconds") seconds = std::stoi(v);
    else if (k == "--runs") runs = std::stoi(v);
    else if (k == "--plans") plans = std::stoi(v);
    else if (k == "--connections") conns = {std::stoi(v)};
    else if (k == "--data-dir") data_dir = v;
    else if (k == "--plan-every") every = std::stoi(v);
    else if (k == "--mode" && v == "all") modes = {"unscheduled", "silent", "ceiling"};
    else if (k == "--mode" && (v == "unscheduled" || v == "silent" || v == "ceiling")) modes = {v};
    else if (k == "--processes") {
      for (size_t at = 0; at < v.size();) {
        size_t comma = v.find(',', at);
        processes.push_back(std::stoi(v.substr(at, comma - at)));
        at = comma == std::string::npos ? v.size() : comma + 1;
      }
    }
    else {
      std::fprintf(stderr,
                   "usage: cpis_query_load [--plans N] [--connections C] [--seconds S] [--runs R] "
                   "[--mode unscheduled|silent|ceiling|all] [--data-dir DIR [--plan-every K]] [--processes 1,2]\n");
      return 2;
    }
  }
  log::set_level(log::Level::error);
  if (!processes.empty()) return run_processes(plans, conns, seconds, runs, modes, processes);
  events::SubscriptionsOptions so;
  so.delivery.workers = 4;
  if (!data_dir.empty()) setenv("GW_BENCH_DATA_DIR", data_dir.c_str(), 1);  // test_gateway.cc opens that store
  test::InProcessGateway gw(config::Limits{}, so);
  test::HookReceiver rx;
  std::atomic<uint64_t> notifications{0};

  std::string subscription_id;
  auto seed_start = Clock::now();
  if (data_dir.empty() && !seed(gw.store(), plans)) {
    std::fprintf(stderr, "seeding failed\n");
    return 1;
  }
  double seed_s = std::chrono::duration<double>(Clock::now() - seed_start).count();
  {
    auto la = gw.client("local-authority");
    auto r = la.request("POST", "/fhir/Subscription",
                        test::subscription_json({.topic = "cpis-access", .endpoint = rx.url("/la")}),
                        {{"Content-Type", "application/fhir+json"}});
    if (!r || r->status != 201) {
      std::fprintf(stderr, "the local authority's subscription was refused\n");
      return 1;
    }
    if (auto d = json::parse(r->body)) subscription_id = std::string(json::get_string(*d, "id").value_or(""));
    if (!rx.wait_for([](auto& p) { return test::count_type(p, "handshake") >= 1; }, std::chrono::seconds(30))) {
      std::fprintf(stderr, "no handshake\n");
      return 1;
    }
  }
  // From here the receiver only counts what it gets (keeping every body would skew memory).
  rx.set_on_post([&](test::ReceivedPost&& p) {
    notifications += test::read_notification(p.body).numbers.size();
  });
  std::printf("{\"bench\":\"cpis_seed\",\"plans\":%d,\"seconds\":%.1f}\n", plans, seed_s);
  std::fflush(stdout);
  for (const auto& mode : modes) {
    for (int n : conns) {
      std::vector<double> rps, p50, p99;
      for (int k = 0; k < runs; ++k) {
        uint64_t before = notifications.load();
        RunResult r = run([&](int) { return gw.client("unscheduled-care"); }, mode, n, seconds, plans, every);
        double load1 = 0;
        if (FILE* f = std::fopen("/proc/loadavg", "r")) {
          if (std::fscanf(f, "%lf", &load1) != 1) load1 = 0;
          std::fclose(f);
        }
        std::printf("{\"bench\":\"cpis_%s\",\"connections\":%d,\"run\":%d,\"req_per_s\":%.0f,\"p50_ms\":%.3f,"
                    "\"p99_ms\":%.3f,\"ok\":%llu,\"errors\":%llu,\"notified_during_run\":%llu,\"rss_mib\":%.0f,"
                    "\"load_avg\":%.2f}\n",
                    mode.c_str(), n, k + 1, r.rps, r.p50_ms, r.p99_ms, static_cast<unsigned long long>(r.ok),
                    static_cast<unsigned long long>(r.errors),
                    static_cast<unsigned long long>(notifications.load() - before), rss_mib(), load1);
        std::fflush(stdout);
        rps.push_back(r.rps);
        p50.push_back(r.p50_ms);
        p99.push_back(r.p99_ms);
      }
      std::printf("{\"bench\":\"cpis_%s\",\"connections\":%d,\"median_of\":%d,\"req_per_s\":%.0f,\"p50_ms\":%.3f,"
                  "\"p99_ms\":%.3f}\n",
                  mode.c_str(), n, runs, test::median(rps), test::median(p50), test::median(p99));
      std::fflush(stdout);
    }
  }
  if (!data_dir.empty() && !subscription_id.empty()) {
    // A kept store must not fan out to this run's (gone) receiver next time.
    auto la = gw.client("local-authority");
    auto r = la.request("DELETE", "/fhir/Subscription/" + subscription_id, "", {});
    if (!r || (r->status != 200 && r->status != 204)) std::fprintf(stderr, "could not remove the subscription\n");
  }
  return 0;
}
