#pragma once
// Rest-hook delivery: a scheduler picks subscriptions that have due work
// (a handshake, pending events, a heartbeat) and hands each to one worker of
// a bounded pool, so a subscription's events go strictly in order (the next
// notification only after the previous one was acknowledged with 2xx and
// that was committed) while different subscriptions proceed in parallel and
// a dead endpoint only ever occupies its own schedule slot. Events are paged
// from the store, never held in memory beyond one notification.
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gateway/common/metrics.h"
#include "gateway/events/dispatcher.h"
#include "gateway/events/topics.h"
#include "gateway/store/store.h"

namespace boost::asio::ssl {
class context;
}

namespace gw::delivery {
class HttpsPoster;
}

namespace gw::events {

struct DeliveryOptions {
  int workers = 16;
  std::chrono::milliseconds first_retry{5000};      // first retry within this
  std::chrono::milliseconds max_backoff{600'000};   // doubling, capped here
  std::chrono::milliseconds retry_for{72LL * 3600 * 1000};  // then dead-letter
  std::chrono::milliseconds post_timeout{10'000};   // unless the subscription's backport-timeout is shorter
  std::chrono::milliseconds poll{2000};             // re-scan the store for pending work (replays from the CLI)
  double jitter = 0.2;                              // backoff * (1 - jitter * U[0,1))
  int max_events_per_notification = 100;            // upper bound on backport-max-count
  std::string base_url;                             // "https://host:port/fhir" in notifications
  std::string ca_file, cert_file, key_file;         // endpoint CA; the gateway's certificate and key
};


class RestHookDelivery {
 public:
  // Throws std::runtime_error at start-up when the TLS files cannot be loaded.
  // The policy gives a subscription read afresh its owner's view of labelled
  // content (another node's fan-out may be the one that keeps `set` current).
  RestHookDelivery(store::Store& store, const events::Topics& topics, const security::Policy& policy,
                   events::SubscriptionSet& set, metrics::Registry& metrics, DeliveryOptions opts);
  ~RestHookDelivery();
  void start();
  void stop();
  // Before start(): the FHIR base the notifications name (known once the listener is bound).
  void set_base_url(std::string base) { opts_.base_url = std::move(base); }

  // From the fan-out: these subscriptions got events / their resource changed.
  void on_events(const std::vector<std::string>& with_events, const std::vector<std::string>& changed);
  // Pending work may exist (a replay): look now instead of at the next poll.
  void kick(const std::string& subscription);

  // Dead-lettered events of one subscription (or all, when empty) go back to
  // pending; returns how many. Commits synchronously. `audit`, when given, is
  // the replay's audit row: committed in the same unit as the replay (its
  // detail gains how many were made pending), even when there was none.
  static Result<int64_t> replay_dead_letters(store::Store& store, const std::string& subscription,
                                             std::optional<store::AuditRow> audit = std::nullopt);

 private:
  struct State;
  void scheduler_loop();
  void worker_loop();
  void serve(const std::string& id);
  bool send(State& st, const events::SubscriptionSpec& spec, const std::string& body, std::string& error,
            int& http_status);
  void escalate_dead_letters(const std::string& subscription, store::UnitOfWork& u);
  void failed(State& st, const events::SubscriptionSpec& spec, const std::vector<store::EventRow>& evs,
              const std::string& error, int http_status);
  void set_status(const events::SubscriptionSpec& spec, const std::string& status, const std::string& error);
  void refresh_gauges(const std::string& id);
  void commit_sync(store::UnitOfWork u);

  store::Store& store_;
  const events::Topics& topics_;
  const security::Policy& policy_;
  events::SubscriptionSet& set_;
  metrics::Registry& metrics_;
  DeliveryOptions opts_;
  std::unique_ptr<boost::asio::ssl::context> tls_;

  std::mutex mu_;
  std::condition_variable sched_cv_, work_cv_;
  std::map<std::string, std::unique_ptr<State>> states_;
  std::deque<std::string> ready_;
  bool stopping_ = false;
  std::thread scheduler_;
  std::vector<std::thread> workers_;
  std::mt19937_64 rng_;

  metrics::Counter *delivered_, *http_error_, *timeout_, *unreachable_, *dead_letters_, *handshakes_, *heartbeats_;
  metrics::Histogram* latency_;
};

}  // namespace gw::events
