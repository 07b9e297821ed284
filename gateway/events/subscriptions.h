#pragma once
// The subscriptions engine assembled: topics, the live subscription set, the
// fan-out over the change feed and the rest-hook delivery. main and the
// in-process test gateway build one of these; stop() before the store closes.
#include <memory>

#include "gateway/common/metrics.h"
#include "gateway/events/rest_hook_delivery.h"
#include "gateway/events/dispatcher.h"
#include "gateway/events/flow_timers.h"
#include "gateway/events/topics.h"
#include "gateway/store/store.h"

namespace gw::events {

struct SubscriptionsOptions {
  DeliveryOptions delivery;
  events::DispatcherOptions fanout;
  // The safeguarding flows' durable timers run when fanout.flows is set.
  events::FlowTimersOptions timers{};
};

class Subscriptions {
 public:
  // Throws std::runtime_error at start-up (TLS files, store).
  // policy: what each subscriber's role may be told of labelled content.
  Subscriptions(store::Store& store, events::Topics topics, const security::Policy& policy, metrics::Registry& metrics,
                SubscriptionsOptions opts);
  ~Subscriptions();
  void start();
  void stop();

  const events::Topics& topics() const { return topics_; }
  events::SubscriptionSet& set() { return set_; }
  RestHookDelivery& delivery() { return *delivery_; }
  events::Dispatcher& dispatcher() { return *dispatcher_; }
  // Null when no FlowContext was given (fanout.flows).
  events::FlowTimers* timers() { return timers_.get(); }
  store::Store& store() { return store_; }

 private:
  store::Store& store_;
  events::Topics topics_;
  const security::Policy& policy_;
  events::SubscriptionSet set_;
  std::unique_ptr<RestHookDelivery> delivery_;
  std::unique_ptr<events::Dispatcher> dispatcher_;
  std::unique_ptr<events::FlowTimers> timers_;
  bool started_ = false;
};

}  // namespace gw::events
