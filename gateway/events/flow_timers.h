#pragma once
// The durable timers of the safeguarding flows (docs/TIMERS.md), one
// background worker with two steps per pass:
//  1. schedule — a change-feed consumer (cursor "flow-timers"): for each
//     change that bears on a timer (a LAC plan, a health assessment, a
//     pregnancy booking, a repeat risk assessment) it recomputes the pending
//     timers of the subject and commits them (store::TimerSet) in the same
//     transaction as its cursor, so no change is scheduled twice or missed;
//  2. fire — every pending timer due by the injected clock's now, one unit
//     each: the Communications, events and disclosure audit rows for the
//     subscribers the topic's relations route names, and the timer marked
//     fired, together. A gateway down on the day fires on restart; a clock
//     that jumps back fires nothing twice (the row says fired).
// Issue 17's escalation deadlines (escalation.h) are put into the unit that
// writes a disclosure; the kind "escalation" fires them here.
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gateway/common/metrics.h"
#include "gateway/common/wakeable_loop.h"
#include "gateway/events/dispatcher.h"
#include "gateway/events/relations.h"
#include "gateway/events/topics.h"
#include "gateway/events/feed_position.h"
#include "gateway/model/search_decl.h"
#include "gateway/store/store.h"

namespace gw::events {

inline constexpr std::string_view kRepeatAssessmentTimerKind = "pregnancy-repeat-risk-assessment";

struct FlowTimersOptions {
  std::chrono::milliseconds poll{30000};  // how often due timers are looked for without a wake-up
  int page = 500;                         // changes per scheduling transaction
  std::string cursor_name = "flow-timers";
  // "now" for firing (tests move it; production: the system clock).
  std::function<std::chrono::system_clock::time_point()> clock{};
  // The declared search parameters the Communications it writes are indexed
  // by (as any write's); nullptr: the built-in ones only.
  const model::SearchParamTable* search_params = nullptr;
};

class FlowTimers {
 public:
  // on_events: the subscriptions that got events (wakes the delivery).
  FlowTimers(store::Store& store, const Topics& topics, SubscriptionSet& subs, std::shared_ptr<const FlowContext> flows,
             metrics::Registry& metrics, FlowTimersOptions opts,
             std::function<void(const std::vector<std::string>&)> on_events);
  ~FlowTimers();
  void start();
  void stop();
  void wake();
  // One pass: schedule from the change feed, then fire what is due.
  // Returns the number of timers fired.
  Result<int> run_once();

 private:
  Result<int> schedule_once();
  Result<void> schedule_weekly();  // the coverage-gaps summary (coverage.h)
  Result<int> fire_due();
  Result<bool> fire(const store::TimerRow& t, std::vector<std::string>& got_events);
  Result<bool> fire_escalation_timer(const store::TimerRow& t, std::vector<std::string>& got_events);
  std::string now_iso() const;

  store::Store& store_;
  const Topics& topics_;
  SubscriptionSet& subs_;
  std::shared_ptr<const FlowContext> flows_;
  FlowTimersOptions opts_;
  std::function<void(const std::vector<std::string>&)> on_events_;
  FeedPosition position_{opts_.cursor_name};
  metrics::Counter* fired_ = nullptr;
  metrics::Counter* failed_ = nullptr;
  metrics::Counter* calendar_refused_ = nullptr;
  metrics::Counter* escalations_ = nullptr;
  metrics::Counter* escalations_unrouted_ = nullptr;
  bool weekly_checked_ = false;
  WakeableLoop loop_;  // last: stopped (joined) before the members it uses go
};

}  // namespace gw::events
