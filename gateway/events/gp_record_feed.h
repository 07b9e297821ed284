#pragma once
// CP-IS plans into the GP record (CPIS.md section 2, "Into the GP record"):
// every change of a plan CareTeam is rendered to the SystmOne dialect and
// sent over MLLP to the patient's registered practice.
//
// Two stages, both durable, so that a plan committed before a crash still
// reaches the practice after the restart:
//  1. Queueing: a change-feed consumer with its own cursor ("gp-hl7") turns
//     each plan version into a message queued for the practice, and commits
//     the queued messages together with the cursor advance (all or nothing).
//  2. Delivery: per practice, strictly in queue order (one worker at a time
//     per practice, practices in parallel), the oldest message is sent and
//     settled: delivered on AA/CA; dead-lettered at once on AR/CR,
//     when nothing can be sent (no practice, no endpoint configured for it,
//     the plan cannot be rendered); AE, a bad ACK or a transport failure is
//     retried with backoff until retry_for has passed since the first failed
//     attempt, then every queued message of that practice is dead-lettered.
//
// The queues are the subscription engine's event table under the reserved
// names "gp-hl7:<practice ODS>" ("gp-hl7:none" when the patient has no
// registered practice): the same numbering, delivery state and dead-letter
// bookkeeping, and `cpis-gateway replay --dead-letters --subscription
// gp-hl7:<ODS>` (or --all) puts dead messages back in the queue. A queue name
// is never a Subscription id (those are UUIDs), so the rest-hook delivery
// never serves one. Dead letters are counted on /metrics
// (gw_gp_hl7_dead_letters_total{practice,reason}, gw_gp_hl7_dead{practice}).
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "gateway/common/json.h"
#include "gateway/common/metrics.h"
#include "gateway/events/hl7_outbound.h"
#include "gateway/events/feed_position.h"
#include "gateway/store/store.h"

namespace gw::events {

inline constexpr std::string_view kGpQueuePrefix = "gp-hl7:";
inline constexpr std::string_view kNoPractice = "none";

// "gp-hl7:<ods>", or "gp-hl7:none" for an empty ODS code.
std::string gp_queue(std::string_view practice_ods);

struct GpRecordOptions {
  std::string cursor_name = "gp-hl7";
  int page = 200;                                   // changes per queueing transaction
  int drain = 50;                                   // messages per practice per turn (others get a turn)
  int workers = 4;                                  // practices sent to in parallel (each strictly in order)
  std::chrono::milliseconds poll{500};              // change feed and retries looked at this often
  std::chrono::milliseconds first_retry{5'000};     // then doubling (jittered down to half)
  std::chrono::milliseconds max_backoff{300'000};
  std::chrono::milliseconds retry_for{24LL * 3600 * 1000};  // then the practice's queue is dead-lettered
};

class GpRecordFeed {
 public:
  GpRecordFeed(store::Store& store, Hl7Outbound& outbound, metrics::Registry& metrics, GpRecordOptions opts);
  ~GpRecordFeed();
  void start();
  void stop();
  void wake();

  // One queueing transaction (tests and the thread): the number of changes consumed.
  Result<int> queue_once();

  enum class Settle { delivered, dead, retry };

 private:
  struct Verdict {
    Settle settle = Settle::retry;
    std::string reason;  // metrics label for dead letters
    std::string error;   // kept with the message; may quote the practice's ACK text
  };
  struct PracticeState {
    int failures = 0;
    std::chrono::steady_clock::time_point due{};
    bool busy = false;  // a worker has it: one sender per practice keeps the order
  };

  void loop();
  void schedule_due();
  void worker_loop();
  int drain(const std::string& queue, PracticeState& st);
  Result<std::string> practice_of(const json::Value& plan, std::string& patient_ref);
  Verdict attempt(const std::string& queue, const store::EventRow& message);
  Result<void> settle(const std::string& queue, const store::EventRow& message, const Verdict& v);
  Result<store::CommitOutcome> commit_sync(store::UnitOfWork unit);
  std::chrono::milliseconds backoff(int failures);
  void refresh_gauges(const std::string& queue);

  store::Store& store_;
  Hl7Outbound& outbound_;
  metrics::Registry& metrics_;
  GpRecordOptions opts_;
  FeedPosition position_{opts_.cursor_name};
  std::mutex rng_mu_;
  std::mt19937_64 rng_{std::random_device{}()};

  std::mutex mu_;  // guards everything below
  std::map<std::string, PracticeState> practices_;
  std::deque<std::string> ready_;  // queues handed to the workers
  std::condition_variable cv_, work_cv_;
  bool woken_ = false, stopping_ = false;
  std::thread thread_;
  std::vector<std::thread> workers_;
  metrics::Counter *queued_, *delivered_, *retries_;
  metrics::Gauge* cursor_gauge_;
};

}  // namespace gw::events
