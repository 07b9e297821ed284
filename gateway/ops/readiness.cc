#include "gateway/ops/readiness.h"

#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "gateway/common/json.h"
#include "gateway/common/log.h"

namespace gw::ops {

namespace {

using Clock = std::chrono::steady_clock;

struct Backlog {
  bool known = false;
  std::string error;          // why it is not known
  int64_t queues_pending = 0;  // subscriptions and GP-practice queues with pending events
  int64_t pending_events = 0;
  std::string oldest_pending;  // created of the oldest pending event (ISO 8601 UTC), "" when none
  int64_t queues_dead = 0;     // queues holding dead-lettered events (replayable)
};

// Runs on a store reader thread. Subscriptions and GP-practice queues are the
// same kind of row (sub_events), so one pass covers both.
Backlog read_backlog(store::Store& store) {
  Backlog b;
  auto pending = store.subscriptions_with_events("pending");
  if (!pending) {
    b.error = pending.error().message;
    return b;
  }
  for (const auto& q : *pending) {
    auto c = store.event_counts(q);
    if (!c) {
      b.error = c.error().message;
      return b;
    }
    if (c->pending == 0) continue;  // delivered since the list was read
    ++b.queues_pending;
    b.pending_events += c->pending;
    if (!c->oldest_pending.empty() && (b.oldest_pending.empty() || c->oldest_pending < b.oldest_pending))
      b.oldest_pending = c->oldest_pending;  // ISO 8601 UTC strings of one format order as times do
  }
  auto dead = store.subscriptions_with_events("dead");
  if (!dead) {
    b.error = dead.error().message;
    return b;
  }
  b.queues_dead = static_cast<int64_t>(dead->size());
  b.known = true;
  return b;
}

enum class StoreState { ok, failing, not_probed };

std::string render(bool draining, StoreState store, const std::string& store_detail, double probe_ms,
                   const Backlog& b) {
  const bool store_ok = store == StoreState::ok;
  json::Buffer buf;
  json::Writer w(buf);
  w.StartObject();
  w.Key("status");
  w.String(!draining && store_ok ? "ready" : "not ready");
  if (draining) {
    w.Key("reason");
    w.String("draining: the gateway is shutting down");
  }
  w.Key("store");
  w.StartObject();
  w.Key("status");
  w.String(store_ok ? "ok" : store == StoreState::failing ? "failing" : "not probed");
  if (!store_detail.empty()) {
    w.Key("detail");
    w.String(store_detail.c_str(), static_cast<json::SizeType>(store_detail.size()));
  }
  if (probe_ms >= 0) {
    w.Key("probe_ms");
    w.Double(probe_ms);
  }
  w.EndObject();
  w.Key("delivery");
  w.StartObject();
  if (b.known) {
    w.Key("queues_pending");
    w.Int64(b.queues_pending);
    w.Key("pending_events");
    w.Int64(b.pending_events);
    w.Key("oldest_pending");
    if (b.oldest_pending.empty())
      w.Null();
    else
      w.String(b.oldest_pending.c_str(), static_cast<json::SizeType>(b.oldest_pending.size()));
    w.Key("queues_dead");
    w.Int64(b.queues_dead);
  } else {
    w.Key("status");
    w.String("unknown");
    w.Key("detail");
    std::string d = b.error.empty() ? "not read: the store probe did not complete" : b.error;
    w.String(d.c_str(), static_cast<json::SizeType>(d.size()));
  }
  w.EndObject();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace

// Shared with the store's threads through the probe's callbacks, so a probe
// that finishes after the Readiness is gone (store closing) touches nothing freed.
struct Readiness::State {
  store::Store& store;
  std::function<bool()> draining;
  ReadinessOptions opts;

  std::mutex mu;
  bool in_flight = false;
  Clock::time_point started;
  int64_t next_value = 0;  // the value the next probe writes
  std::vector<std::function<void(ReadinessReport)>> waiters;
  std::optional<ReadinessReport> last;
  Clock::time_point last_at;

  State(store::Store& s, std::function<bool()> d, ReadinessOptions o)
      : store(s), draining(std::move(d)), opts(std::move(o)) {
    // Distinct from whatever a previous run left in the probe row, so a read
    // that returned an old row could never pass for this run's write.
    next_value = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
  }

  // Answers everyone waiting for the probe that just ended and keeps the result.
  void finish(ReadinessReport r) {
    std::vector<std::function<void(ReadinessReport)>> ws;
    {
      std::lock_guard lk(mu);
      in_flight = false;
      last = r;
      last_at = Clock::now();
      ws.swap(waiters);
    }
    if (!r.ready) log::warn("readiness_failed", {{"body", r.body}});
    for (auto& w : ws) w(r);
  }
};

Readiness::Readiness(store::Store& store, std::function<bool()> draining, ReadinessOptions opts)
    : state_(std::make_shared<State>(store, std::move(draining), std::move(opts))) {}

Readiness::~Readiness() = default;

void Readiness::check(std::function<void(ReadinessReport)> done) {
  auto st = state_;
  if (st->draining()) {
    done(ReadinessReport{false, render(true, StoreState::not_probed, "", -1, Backlog{})});
    return;
  }
  int64_t value = 0;
  Clock::time_point t0;
  {
    std::unique_lock lk(st->mu);
    auto now = Clock::now();
    if (st->last && now - st->last_at < st->opts.reuse) {
      ReadinessReport r = *st->last;
      lk.unlock();
      done(std::move(r));
      return;
    }
    if (st->in_flight) {
      auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(now - st->started);
      if (waited < st->opts.probe_timeout) {
        st->waiters.push_back(std::move(done));
        return;
      }
      // The writer has not committed the probe in time: every /readyz says so
      // at once (and releases whoever waited) until the probe finally returns.
      std::vector<std::function<void(ReadinessReport)>> ws;
      ws.swap(st->waiters);
      lk.unlock();
      ReadinessReport r{false, render(false, StoreState::failing,
                                      "the write probe has not committed for " + std::to_string(waited.count()) +
                                          " ms (writer stuck or disk not answering)",
                                      -1, Backlog{})};
      for (auto& w : ws) w(r);
      done(std::move(r));
      return;
    }
    st->in_flight = true;
    st->started = t0 = now;
    st->waiters.push_back(std::move(done));
    value = ++st->next_value;
  }

  auto fail = [st](const std::string& why) { st->finish(ReadinessReport{false, render(false, StoreState::failing, why, -1, {})}); };
  store::UnitOfWork probe;
  probe.cursor = std::make_pair(st->opts.probe_cursor, value);
  auto queued = st->store.commit(std::move(probe), [st, value, t0, fail](Result<store::CommitOutcome> r) {
    if (!r) return fail("the write probe failed: " + r.error().message);
    auto read = st->store.run_read([st, value, t0, fail] {
      auto got = st->store.cursor(st->opts.probe_cursor);
      if (!got) return fail("the read probe failed: " + got.error().message);
      if (*got != value) {
        return fail("the read probe returned " + std::to_string(*got) + " where " + std::to_string(value) +
                    " was committed");
      }
      double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      st->finish(ReadinessReport{true, render(false, StoreState::ok, "", ms, read_backlog(st->store))});
    });
    if (!read) fail("the read probe could not be queued: " + read.error().message);
  });
  if (!queued) fail("the write probe could not be queued: " + queued.error().message);
}

}  // namespace gw::ops
