#include "gateway/events/subscriptions.h"

#include <stdexcept>

namespace gw::events {

Subscriptions::Subscriptions(store::Store& store, events::Topics topics, const security::Policy& policy,
                             metrics::Registry& metrics, SubscriptionsOptions opts)
    : store_(store), topics_(std::move(topics)), policy_(policy) {
  delivery_ = std::make_unique<RestHookDelivery>(store_, topics_, policy_, set_, metrics, opts.delivery);
  RestHookDelivery* d = delivery_.get();
  dispatcher_ = std::make_unique<events::Dispatcher>(
      store_, topics_, policy_, set_, metrics, opts.fanout,
      [d](const std::vector<std::string>& with_events, const std::vector<std::string>& changed) {
        d->on_events(with_events, changed);
      });
  if (opts.fanout.flows)
    timers_ = std::make_unique<events::FlowTimers>(
        store_, topics_, set_, opts.fanout.flows, metrics, opts.timers,
        [d](const std::vector<std::string>& with_events) { d->on_events(with_events, {}); });
}

Subscriptions::~Subscriptions() { stop(); }

void Subscriptions::start() {
  if (auto r = events::load_all(store_, policy_, set_); !r) {
    throw std::runtime_error("subscriptions: cannot load: " + r.error().message);
  }
  delivery_->start();
  dispatcher_->start();
  if (timers_) timers_->start();
  events::Dispatcher* f = dispatcher_.get();
  events::FlowTimers* t = timers_.get();
  store_.set_commit_listener([f, t] {
    f->wake();
    if (t) t->wake();
  });
  started_ = true;
}

void Subscriptions::stop() {
  if (!started_) return;
  started_ = false;
  store_.set_commit_listener(nullptr);
  dispatcher_->stop();
  if (timers_) timers_->stop();
  delivery_->stop();
}

}  // namespace gw::events
