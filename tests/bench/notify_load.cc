// Notify benchmark: change committed -> rest-hook receiver has it.
//   notify_load [--subscribers N] [--rate EVENTS_PER_S] [--seconds S] [--max-count M] [--workers W]
// The whole stack in this process (InProcessGateway with the subscriptions
// engine, a HookReceiver endpoint with mutual TLS). N id-only patient-change
// subscriptions; Patients are committed straight to the store at RATE per
// second (the write path every feed shares) and the latency is measured from
// each commit's durable callback to the receiver's parse of the notification
// naming it, for every subscriber. Prints one JSON line.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "gateway/common/json.h"
#include "gateway/common/log.h"
#include "gateway/events/subscriptions.h"
#include "gateway/model/resource_text.h"
#include "tests/support/bench_stats.h"
#include "tests/support/fixtures.h"
#include "tests/support/hook_receiver.h"
#include "tests/support/subscription_kit.h"
#include "tests/support/test_gateway.h"

using namespace gw;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  int subscribers = 100, rate = 1000, seconds = 5, max_count = 1, workers = 16;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    int v = std::atoi(argv[i + 1]);
    if (a == "--subscribers") subscribers = v;
    else if (a == "--rate") rate = v;
    else if (a == "--seconds") seconds = v;
    else if (a == "--max-count") max_count = v;
    else if (a == "--workers") workers = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  gw::log::set_level(gw::log::Level::error);
  events::SubscriptionsOptions so;
  so.delivery.workers = workers;
  so.delivery.first_retry = std::chrono::milliseconds(100);
  so.delivery.poll = std::chrono::milliseconds(500);
  so.fanout.poll = std::chrono::milliseconds(500);
  test::InProcessGateway gw(config::Limits{}, so);
  test::HookReceiver rx;

  for (int s = 0; s < subscribers; ++s) {
    auto c = gw.client("integration");
    auto r = c.request("POST", "/fhir/Subscription",
                       test::subscription_json({.endpoint = rx.url("/s" + std::to_string(s)), .max_count = max_count}),
                       {{"Content-Type", "application/fhir+json"}});
    if (!r || r->status != 201) {
      std::fprintf(stderr, "subscription %d refused\n", s);
      return 1;
    }
  }
  if (!rx.wait_for([&](auto& p) { return test::count_type(p, "handshake") >= static_cast<size_t>(subscribers); },
                   std::chrono::seconds(60))) {
    std::fprintf(stderr, "handshakes did not complete\n");
    return 1;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // activation updates settle

  std::mutex mu;
  std::unordered_map<std::string, Clock::time_point> committed;  // Patient id -> durable commit
  std::vector<double> lat_ms;
  std::atomic<uint64_t> deliveries{0};
  Clock::time_point last_delivery{};
  rx.set_on_post([&](test::ReceivedPost&& p) {
    auto seen = test::read_notification(p.body);
    if (seen.type != "event-notification") return;
    std::lock_guard lk(mu);
    for (const auto& f : seen.focus) {
      auto it = committed.find(f.substr(f.rfind('/') + 1));
      if (it != committed.end()) lat_ms.push_back(std::chrono::duration<double, std::milli>(p.at - it->second).count());
    }
    deliveries += seen.numbers.size();
    last_delivery = p.at;
  });

  const std::string tmpl = test::fixture("fhir/Patient.json", {{"nhs", "NHS"}});
  const int total = rate * seconds;
  auto start = Clock::now();
  std::atomic<int> commits_done{0};
  for (int i = 0; i < total; ++i) {
    auto due = start + std::chrono::microseconds(static_cast<int64_t>(1e6 * i / rate));
    std::this_thread::sleep_until(due);
    std::string body = tmpl;
    body.replace(body.find("NHS"), 3, test::nhs_number_for(2'000'000 + static_cast<uint32_t>(i)));
    auto doc = json::parse(body);
    store::WriteOp op;
    op.kind = store::OpKind::create;
    op.type = "Patient";
    op.id = model::new_uuid();
    op.index = model::index_entries("Patient", *doc);
    op.body = model::storage_text(*doc, "Patient", doc->GetAllocator());
    std::string id = op.id;
    store::UnitOfWork u;
    u.ops.push_back(std::move(op));
    auto r = gw.store().commit(std::move(u), [&, id](Result<store::CommitOutcome> res) {
      if (res) {
        std::lock_guard lk(mu);
        committed[id] = Clock::now();
      }
      ++commits_done;
    });
    if (!r) {
      std::fprintf(stderr, "commit refused: %s\n", r.error().message.c_str());
      return 1;
    }
  }
  const uint64_t want = static_cast<uint64_t>(total) * static_cast<uint64_t>(subscribers);
  auto deadline = Clock::now() + std::chrono::seconds(120);
  while (deliveries.load() < want && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  double elapsed;
  {
    std::lock_guard lk(mu);
    elapsed = std::chrono::duration<double>(last_delivery - start).count();
  }
  std::lock_guard lk(mu);
  double p50 = test::percentile(lat_ms, 0.5), p99 = test::percentile(lat_ms, 0.99), mx = test::percentile(lat_ms, 1.0);
  std::printf(
      "{\"bench\":\"notify\",\"subscribers\":%d,\"offered_events_per_s\":%d,\"seconds\":%d,\"max_count\":%d,"
      "\"workers\":%d,\"deliveries\":%llu,\"expected\":%llu,\"p50_ms\":%.2f,\"p99_ms\":%.2f,\"max_ms\":%.2f,"
      "\"deliveries_per_s\":%.0f}\n",
      subscribers, rate, seconds, max_count, workers, static_cast<unsigned long long>(deliveries.load()),
      static_cast<unsigned long long>(want), p50, p99, mx, elapsed > 0 ? static_cast<double>(deliveries.load()) / elapsed : 0);
  return deliveries.load() >= want ? 0 : 1;
}
