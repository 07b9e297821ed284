#pragma once
// The fan-out: consumes the store's change feed in seq order from a durable
// cursor, decides for every live subscription whether the change is an event
// for it, and commits the new events (numbered by the store) together with
// the cursor advance — so a crash either loses both or neither.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gateway/common/json.h"
#include "gateway/common/metrics.h"
#include "gateway/common/wakeable_loop.h"
#include "gateway/events/matcher.h"
#include "gateway/events/relations.h"
#include "gateway/events/subscription.h"
#include "gateway/events/topics.h"
#include "gateway/model/search_decl.h"
#include "gateway/events/feed_position.h"
#include "gateway/security/policy.h"
#include "gateway/store/store.h"

namespace gw::events {

// The live subscriptions, shared by the fan-out and the delivery workers.
class SubscriptionSet {
 public:
  using Ptr = std::shared_ptr<const SubscriptionSpec>;
  void put(SubscriptionSpec s);
  void erase(const std::string& id);
  Ptr get(const std::string& id) const;
  std::vector<Ptr> all() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, Ptr> subs_;
};

// Reads a stored Subscription into a spec; nullopt when it is gone or was
// not written through the Subscription endpoint (no owner).
// The owner's view of labelled content comes from the policy.
std::optional<SubscriptionSpec> load_subscription(store::Store& s, const security::Policy& policy, const std::string& id);
// Every stored Subscription (start-up).
Result<void> load_all(store::Store& s, const security::Policy& policy, SubscriptionSet& set);

struct DispatcherOptions {
  int page = 500;                               // changes per transaction
  std::chrono::milliseconds poll{1000};         // re-check without a wake-up
  std::string cursor_name = "subscriptions";
  // The declared search parameters the Communications it derives are indexed
  // by (as any write's); nullptr: the built-in ones only.
  const model::SearchParamTable* search_params = nullptr;
  // The area's tables and the date for topics of the relations route
  // (relations.h); without them those topics hear nothing.
  std::shared_ptr<const FlowContext> flows{};
};

class Dispatcher {
 public:
  // on_events(subscriptions that got events, subscriptions whose resource changed)
  using Notify = std::function<void(const std::vector<std::string>&, const std::vector<std::string>&)>;
  Dispatcher(store::Store& store, const Topics& topics, const security::Policy& policy, SubscriptionSet& set,
             metrics::Registry& metrics,
             DispatcherOptions opts, Notify notify);
  ~Dispatcher();
  void start();
  void stop();
  void wake();
  // One pass (tests and the thread): returns the number of changes consumed.
  Result<int> run_once();

 private:
  void mark_unowned(const std::string& id);
  // Disclosure topics (disclosure.h): writes the derived Communication, its
  // event and the disclosure audit into the fan-out's unit. False when
  // nothing may be disclosed for this subscriber.
  bool add_disclosure(const Topic& topic, const SubscriptionSpec& sub, const store::ChangeRow& ch,
                      const json::Value& focus, const Decision& d, Lookup& lookup, store::UnitOfWork& unit);
  // An update whose shareable content is what the previous version already
  // disclosed (an extract re-sent unchanged): nothing new leaves.
  bool disclosure_unchanged(const store::ChangeRow& ch, const json::Value& focus, Lookup& lookup);
  store::Store& store_;
  const Topics& topics_;
  const security::Policy& policy_;
  SubscriptionSet& set_;
  DispatcherOptions opts_;
  Notify notify_;
  FeedPosition position_{opts_.cursor_name};
  metrics::Counter* events_total_ = nullptr;
  metrics::Counter* withheld_total_ = nullptr;
  metrics::Counter* disclosures_total_ = nullptr;
  metrics::Gauge* lag_ = nullptr;
  WakeableLoop loop_;  // last: stopped (joined) before the members it uses go
};

}  // namespace gw::events
