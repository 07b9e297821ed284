#include "gateway/events/rest_hook_delivery.h"

#include <boost/asio/ssl/context.hpp>
#include <cstdio>
#include <ctime>
#include <future>
#include <stdexcept>

#include "gateway/audit/audit_rows.h"
#include "gateway/common/clock.h"
#include "gateway/common/log.h"
#include "gateway/delivery/https_poster.h"
#include "gateway/events/escalation.h"
#include "gateway/events/notification.h"
#include "gateway/events/patient_refs.h"
#include "gateway/model/resource_text.h"
#include "gateway/delivery/tls_client.h"

namespace gw::events {

using Clock = std::chrono::steady_clock;

namespace {

// "https://.../SubscriptionTopic/cpis-access" -> "cpis-access": the audit row's topic.
std::string topic_name(const std::string& url) {
  auto slash = url.find_last_of('/');
  return slash == std::string::npos ? url : url.substr(slash + 1);
}

int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// "YYYY-MM-DDThh:mm:ss.mmmZ" (the store's format) -> unix ms; 0 when unreadable.
int64_t iso_to_ms(const std::string& s) {
  std::tm t{};
  int ms = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &t.tm_year, &t.tm_mon, &t.tm_mday, &t.tm_hour, &t.tm_min,
                  &t.tm_sec, &ms) < 6) {
    return 0;
  }
  t.tm_year -= 1900;
  t.tm_mon -= 1;
  return static_cast<int64_t>(timegm(&t)) * 1000 + ms;
}

std::string label(const std::string& id) { return "subscription=\"" + id + "\""; }

}  // namespace

struct RestHookDelivery::State {
  std::string id;
  bool busy = false;
  bool handshaken = false;
  bool pending = true;  // unknown until looked: look
  Clock::time_point due{};
  int failures = 0;
  std::chrono::milliseconds backoff{0};
  Clock::time_point last_sent = Clock::now();
  std::string reported;  // the status this engine last wrote: "active" | "error" | ""
  std::string last_error;
  std::unique_ptr<delivery::HttpsPoster> poster;
  Clock::time_point gauges_at{};  // gauges are refreshed at most once a second
  // Highest event number the endpoint acknowledged in this run. Marking
  // events delivered is committed without waiting (the next notification
  // does not wait for an fsync); until that commit lands the rows still read
  // "pending", so the next page starts after this number. A crash before the
  // commit re-sends those events with the same numbers (at least once).
  int64_t acked_through = 0;
  int inflight = 0;  // delivered-commits not yet durable
};

RestHookDelivery::RestHookDelivery(store::Store& store, const events::Topics& topics, const security::Policy& policy,
                                   events::SubscriptionSet& set, metrics::Registry& metrics, DeliveryOptions opts)
    : store_(store), topics_(topics), policy_(policy), set_(set), metrics_(metrics), opts_(std::move(opts)),
      rng_(std::random_device{}()) {
  auto ctx = delivery::make_client_context(opts_.ca_file, opts_.cert_file, opts_.key_file);
  if (!ctx) throw std::runtime_error("subscription delivery TLS: " + ctx.error().message);
  tls_ = std::move(*ctx);
  if (opts_.workers < 1) opts_.workers = 1;
  const char* attempts = "gw_subscription_delivery_attempts_total";
  const char* help = "Rest-hook notification attempts by outcome";
  delivered_ = &metrics.counter(attempts, help, "outcome=\"delivered\"");
  http_error_ = &metrics.counter(attempts, help, "outcome=\"http_error\"");
  timeout_ = &metrics.counter(attempts, help, "outcome=\"timeout\"");
  unreachable_ = &metrics.counter(attempts, help, "outcome=\"unreachable\"");
  dead_letters_ = &metrics.counter("gw_subscription_dead_letters_total",
                                   "Events given up after the retry window (replay with cpis-gateway replay --dead-letters)");
  handshakes_ = &metrics.counter("gw_subscription_handshakes_total", "Successful subscription handshakes");
  heartbeats_ = &metrics.counter("gw_subscription_heartbeats_total", "Heartbeats sent");
  latency_ = &metrics.histogram("gw_subscription_delivery_latency_seconds",
                                "From the change's commit to the endpoint's 2xx (seconds)", metrics::latency_buckets());
}

RestHookDelivery::~RestHookDelivery() { stop(); }

void RestHookDelivery::start() {
  {
    std::lock_guard lk(mu_);
    for (const auto& s : set_.all()) {
      auto st = std::make_unique<State>();
      st->id = s->id;
      st->handshaken = s->status == "active";
      st->reported = s->status;
      states_[s->id] = std::move(st);
    }
  }
  scheduler_ = std::thread([this] {
    log::name_thread("gw-hook-sched");
    scheduler_loop();
  });
  for (int i = 0; i < opts_.workers; ++i) workers_.emplace_back([this] {
    log::name_thread("gw-hook-send");
    worker_loop();
  });
}

void RestHookDelivery::stop() {
  {
    std::lock_guard lk(mu_);
    if (stopping_ && !scheduler_.joinable()) return;
    stopping_ = true;
  }
  sched_cv_.notify_all();
  work_cv_.notify_all();
  if (scheduler_.joinable()) scheduler_.join();
  for (auto& w : workers_)
    if (w.joinable()) w.join();
  workers_.clear();
  // Delivered-marks still being committed call back into this object.
  std::unique_lock lk(mu_);
  sched_cv_.wait_for(lk, std::chrono::seconds(10), [this] {
    for (const auto& [id, st] : states_)
      if (st->inflight > 0) return false;
    return true;
  });
}

void RestHookDelivery::on_events(const std::vector<std::string>& with_events,
                                 const std::vector<std::string>& changed) {
  {
    std::lock_guard lk(mu_);
    for (const auto& id : changed) {
      auto spec = set_.get(id);
      auto& st = states_[id];
      if (!st) {
        st = std::make_unique<State>();
        st->id = id;
      }
      if (!spec) continue;
      // A client (re)requesting the subscription gets a fresh handshake now.
      if (spec->status == "requested") {
        st->handshaken = false;
        st->due = Clock::now();
        st->failures = 0;
        st->backoff = std::chrono::milliseconds(0);
      }
      if (spec->status == "off") st->reported = "off";
    }
    for (const auto& id : with_events) {
      auto& st = states_[id];
      if (!st) {
        st = std::make_unique<State>();
        st->id = id;
      }
      st->pending = true;
    }
  }
  sched_cv_.notify_one();
}

void RestHookDelivery::kick(const std::string& subscription) {
  {
    std::lock_guard lk(mu_);
    for (auto& [id, st] : states_)
      if (subscription.empty() || id == subscription) {
        st->pending = true;
        st->acked_through = 0;  // replayed events have older numbers
        st->due = Clock::now();
      }
  }
  sched_cv_.notify_one();
}

void RestHookDelivery::scheduler_loop() {
  auto next_scan = Clock::now() + opts_.poll;
  std::unique_lock lk(mu_);
  while (!stopping_) {
    auto now = Clock::now();
    if (now >= next_scan) {
      // Pending work the fan-out did not announce: replays by the CLI, or
      // events left pending by a previous run.
      lk.unlock();
      auto subs = store_.subscriptions_with_events("pending");
      lk.lock();
      if (subs) {
        for (const auto& id : *subs) {
          auto& st = states_[id];
          if (!st) {
            st = std::make_unique<State>();
            st->id = id;
          }
          st->pending = true;
        }
      }
      next_scan = Clock::now() + opts_.poll;
    }
    auto wake = next_scan;
    for (auto& [id, st] : states_) {
      if (st->busy) continue;
      auto spec = set_.get(id);
      if (!spec || spec->status == "off") continue;
      bool heartbeat = spec->heartbeat_s > 0 && st->handshaken &&
                       now - st->last_sent >= std::chrono::seconds(spec->heartbeat_s);
      bool work = st->pending || !st->handshaken || heartbeat;
      if (!work) {
        if (spec->heartbeat_s > 0 && st->handshaken) {
          wake = std::min(wake, st->last_sent + std::chrono::seconds(spec->heartbeat_s));
        }
        continue;
      }
      if (st->due > now) {
        wake = std::min(wake, st->due);
        continue;
      }
      st->busy = true;
      ready_.push_back(id);
      work_cv_.notify_one();
    }
    sched_cv_.wait_until(lk, wake);
  }
}

void RestHookDelivery::worker_loop() {
  std::unique_lock lk(mu_);
  for (;;) {
    work_cv_.wait(lk, [this] { return stopping_ || !ready_.empty(); });
    if (stopping_) return;
    std::string id = std::move(ready_.front());
    ready_.pop_front();
    lk.unlock();
    try {
      serve(id);
    } catch (const std::exception& e) {
      log::error("subscription_delivery_threw", {{"subscription", id}, {"what", e.what()}});
    }
    lk.lock();
    if (auto it = states_.find(id); it != states_.end()) it->second->busy = false;
    sched_cv_.notify_one();
  }
}

void RestHookDelivery::commit_sync(store::UnitOfWork u) {
  std::promise<Result<store::CommitOutcome>> p;
  auto f = p.get_future();
  if (auto r = store_.commit(std::move(u), [&p](Result<store::CommitOutcome> res) { p.set_value(std::move(res)); });
      !r) {
    throw std::runtime_error("store refused delivery state: " + r.error().message);
  }
  auto res = f.get();
  if (!res) throw std::runtime_error("store failed delivery state: " + res.error().message);
}

bool RestHookDelivery::send(State& st, const events::SubscriptionSpec& spec, const std::string& body,
                            std::string& error, int& http_status) {
  auto url = delivery::parse_https_url(spec.endpoint);
  if (!url) {
    error = url.error().message;
    unreachable_->inc();
    return false;
  }
  if (!st.poster) st.poster = std::make_unique<delivery::HttpsPoster>(*tls_);
  auto timeout = opts_.post_timeout;
  if (spec.timeout_s > 0) timeout = std::min(timeout, std::chrono::milliseconds(spec.timeout_s * 1000));
  auto r = st.poster->post(*url, body, spec.headers, timeout);
  st.last_sent = Clock::now();
  if (!r) {
    error = r.error().message;
    (r.error().code == Errc::timeout ? timeout_ : unreachable_)->inc();
    return false;
  }
  http_status = r->status;
  if (r->status < 200 || r->status > 299) {
    error = "endpoint answered HTTP " + std::to_string(r->status);
    http_error_->inc();
    return false;
  }
  return true;
}

void RestHookDelivery::set_status(const events::SubscriptionSpec& spec, const std::string& status,
                                  const std::string& error) {
  auto cur = store_.read("Subscription", spec.id);
  if (!cur) return;
  auto doc = json::parse(cur->body);
  if (!doc) return;
  std::string now_status(json::get_string(*doc, "status").value_or(""));
  if (now_status == "off") return;  // the client's word wins
  auto& a = doc->GetAllocator();
  json::set(*doc, "status", status, a);
  if (error.empty()) json::remove(*doc, "error");
  else json::set(*doc, "error", error, a);
  store::WriteOp op;
  op.kind = store::OpKind::update;
  op.type = "Subscription";
  op.id = spec.id;
  op.if_match = cur->version;  // a client's concurrent update wins; we see it in the feed
  op.upsert = false;
  op.body = model::storage_text(*doc, "Subscription", a);
  op.index = model::index_entries("Subscription", *doc);
  store::UnitOfWork u;
  u.ops.push_back(std::move(op));
  store::AuditRow ar;
  ar.actor_ods = "";
  ar.actor_role = "system";
  ar.actor_system = "cpis-gateway subscriptions";
  ar.action = "update";
  ar.entity = "Subscription/" + spec.id;
  ar.outcome = "success";
  ar.http_status = 200;
  ar.detail = "status " + status;
  u.audit.push_back(std::move(ar));
  std::promise<Result<store::CommitOutcome>> p;
  auto f = p.get_future();
  if (auto r = store_.commit(std::move(u), [&p](Result<store::CommitOutcome> res) { p.set_value(std::move(res)); });
      !r) {
    return;
  }
  auto res = f.get();
  if (res) {
    log::info("subscription_status", {{"subscription", spec.id}, {"status", status}});
  }
}

void RestHookDelivery::refresh_gauges(const std::string& id) {
  {
    std::lock_guard lk(mu_);
    auto it = states_.find(id);
    if (it != states_.end()) {
      auto now = Clock::now();
      bool idle = !it->second->pending;  // the last refresh of a burst must not be skipped
      if (!idle && now - it->second->gauges_at < std::chrono::seconds(1)) return;
      it->second->gauges_at = now;
    }
  }
  auto c = store_.event_counts(id);
  if (!c) return;
  metrics_.gauge("gw_subscription_pending_events", "Events not yet acknowledged, per subscription", label(id))
      .set(c->pending);
  int64_t age = c->oldest_pending.empty() ? 0 : (unix_ms() - iso_to_ms(c->oldest_pending)) / 1000;
  metrics_
      .gauge("gw_subscription_oldest_pending_age_seconds", "Age of the oldest unacknowledged event, per subscription",
             label(id))
      .set(age);
  metrics_.gauge("gw_subscription_dead_events", "Dead-lettered events, per subscription", label(id)).set(c->dead);
}

void RestHookDelivery::failed(State& st, const events::SubscriptionSpec& spec,
                              const std::vector<store::EventRow>& evs, const std::string& error, int http_status) {
  int64_t now = unix_ms();
  store::UnitOfWork u;
  int64_t first_ms = now;
  if (!evs.empty() && evs.front().first_attempt_ms > 0) first_ms = evs.front().first_attempt_ms;
  bool give_up = !evs.empty() && now - first_ms >= opts_.retry_for.count();
  if (!evs.empty()) {
    u.event_updates.push_back(
        store::EventUpdate{spec.id, evs.front().number, evs.back().number, "", 1, now, error, "pending"});
    // One audit row per event and attempt: retried, or given up (dead).
    for (const auto& e : evs) {
      u.audit.push_back(audit::delivery(spec.owner, topic_name(spec.topic_url), "", "",
                                        give_up ? audit::Delivery::dead : audit::Delivery::retry, http_status, 0,
                                        "Subscription/" + spec.id, e.patient_ref, audit::kChannelRestHook,
                                        "event " + std::to_string(e.number) + " " + e.focus_type + "/" + e.focus_id +
                                            " " + e.content + ": " + error));
    }
  }
  if (give_up) {
    // Past the retry window: every pending event of this subscription is
    // dead-lettered (kept, counted, replayable), so that later events start
    // a fresh window instead of each waiting out the whole backlog.
    u.event_updates.push_back(store::EventUpdate{spec.id, 1, INT64_MAX, "dead", 0, -1, error, "pending"});
  }
  if (give_up) escalate_dead_letters(spec.id, u);
  int64_t dead_before = 0;
  if (give_up) {
    auto c = store_.event_counts(spec.id);
    dead_before = c ? c->dead : 0;
  }
  commit_sync(std::move(u));
  st.last_error = error;
  log::warn("subscription_delivery_failed",
            {{"subscription", spec.id}, {"error", error}, {"failures", st.failures + 1}});
  if (give_up) {
    auto c = store_.event_counts(spec.id);
    int64_t dead = c ? c->dead - dead_before : 0;
    dead_letters_->inc(static_cast<uint64_t>(std::max<int64_t>(0, dead)));
    log::error("subscription_dead_lettered", {{"subscription", spec.id}, {"dead_events", dead}});
    st.pending = false;
    st.failures = 0;
    st.backoff = std::chrono::milliseconds(0);
    st.due = Clock::now();
    set_status(spec, "error", "events dead-lettered after the retry window: " + error);
    st.reported = "error";
    return;
  }
  st.backoff = st.failures == 0 ? opts_.first_retry : std::min(opts_.max_backoff, st.backoff * 2);
  ++st.failures;
  double jitter = std::uniform_real_distribution<double>(0.0, opts_.jitter)(rng_);
  auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(st.backoff * (1.0 - jitter));
  st.due = Clock::now() + wait;
  if (st.reported != "error") {
    set_status(spec, "error", error);
    st.reported = "error";
  }
}

// Delivery failure is not silence (issue 17): a disclosure whose event is
// dead-lettered has not reached its receiver, so its first escalation falls
// due now, in the unit that dead-letters it (escalation.h).
void RestHookDelivery::escalate_dead_letters(const std::string& subscription, store::UnitOfWork& u) {
  std::string now = clock::iso_now().substr(0, 19) + "Z";
  int64_t from = 1;
  for (int pages = 0; pages < 100; ++pages) {
    auto evs = store_.events(subscription, from, 0, "pending", 1000);
    if (!evs || evs->empty()) return;
    for (const auto& e : *evs) {
      if (e.focus_type != "Communication") continue;
      auto timers = store_.timers_of(std::string(kEscalationTimerKind), escalation_subject(e.focus_id));
      if (!timers) return;  // a store without timers
      if (auto set = escalate_undelivered(*timers, now)) u.timer_sets.push_back(std::move(*set));
    }
    from = evs->back().number + 1;
  }
}

void RestHookDelivery::serve(const std::string& id) {
  State* stp = nullptr;
  {
    std::lock_guard lk(mu_);
    stp = states_[id].get();
  }
  State& st = *stp;
  // Read afresh: the fan-out that keeps set_ current may run on another node.
  if (auto fresh = load_subscription(store_, policy_, id)) set_.put(std::move(*fresh));
  auto spec = set_.get(id);
  if (!spec || spec->status == "off") {
    st.pending = false;
    return;
  }
  // One node delivers a subscription, so its events stay in order across
  // nodes; the node that holds it keeps it. Another node's poll takes it
  // over once the holder is gone (its claim dies with its connection).
  auto held = store_.claim("subscription:" + id);
  if (!held || !*held) {
    st.due = Clock::now() + opts_.poll;
    return;
  }
  const events::Topic* topic = topics_.by_url(spec->topic_url);
  std::string topic_url = topic ? topic->url : spec->topic_url;
  std::string error;
  int http_status = 0;

  auto status_notification = [&](const std::string& type, const std::string& status) {
    auto c = store_.event_counts(id);
    Notification n;
    n.base = opts_.base_url;
    n.subscription_id = id;
    n.topic_url = topic_url;
    n.status = status;
    n.type = type;
    n.events_since_start = c ? c->events : 0;
    n.content = spec->content;
    return notification_bundle(n);
  };

  if (!st.handshaken) {
    if (!send(st, *spec, status_notification("handshake", "requested"), error, http_status)) {
      failed(st, *spec, {}, "handshake: " + error, http_status);
      return;
    }
    handshakes_->inc();
    st.handshaken = true;
    st.failures = 0;
    st.backoff = std::chrono::milliseconds(0);
    st.last_error.clear();
    set_status(*spec, "active", "");
    st.reported = "active";
    log::info("subscription_handshake", {{"subscription", id}});
  }

  int64_t per = std::clamp<int64_t>(spec->max_count, 1, opts_.max_events_per_notification);
  for (int round = 0; round < 64; ++round) {
    int64_t from = 1;
    {
      std::lock_guard lk(mu_);
      from = st.acked_through + 1;
      // Nothing in flight: anything still pending below the mark (a replay
      // from the command line, a failed commit) must go again.
      if (st.inflight == 0) from = 1;
    }
    auto evs = store_.events(id, from, 0, "pending", static_cast<int>(per));
    if (!evs) {
      log::error("subscription_events_read_failed", {{"subscription", id}, {"reason", evs.error().message}});
      st.due = Clock::now() + std::chrono::seconds(1);
      return;
    }
    if (evs->empty()) {
      st.pending = false;
      break;
    }
    Notification n;
    n.base = opts_.base_url;
    n.subscription_id = id;
    n.topic_url = topic_url;
    n.status = st.reported == "error" ? "error" : "active";
    n.type = "event-notification";
    n.events_since_start = evs->back().number;
    n.content = spec->content;
    StoreLookup lookup(store_);  // the NHS numbers of the resources' subjects
    for (const auto& e : *evs) {
      NotificationEvent ne;
      ne.number = e.number;
      ne.timestamp = e.created;
      ne.focus_type = e.focus_type;
      ne.focus_id = e.focus_id;
      ne.focus_version = e.focus_version;
      ne.interaction = e.interaction;
      if (e.content == "full-resource") {
        if (auto r = store_.vread(e.focus_type, e.focus_id, e.focus_version))
          ne.resource_json = identify_subjects_text(model::served_text(*r), lookup);
      }
      n.events.push_back(std::move(ne));
    }
    // The event's own content decision (sensitivity may have lowered it)
    // applies to the whole notification: the lowest of the batch.
    for (const auto& e : *evs) {
      if (e.content == "empty") n.content = "empty";
      else if (e.content == "id-only" && n.content == "full-resource") n.content = "id-only";
    }
    if (!send(st, *spec, notification_bundle(n), error, http_status)) {
      failed(st, *spec, *evs, error, http_status);
      refresh_gauges(id);
      return;
    }
    int64_t now = unix_ms();
    store::UnitOfWork u;
    u.event_updates.push_back(
        store::EventUpdate{id, evs->front().number, evs->back().number, "delivered", 1, 0, std::string(), "pending"});
    for (const auto& e : *evs) {
      int64_t created = iso_to_ms(e.created);
      if (created > 0) latency_->observe(static_cast<double>(now - created) / 1000.0);
      // Delivered: with the latency from the event's commit, for the data-flow reports.
      u.audit.push_back(audit::delivery(spec->owner, topic_name(spec->topic_url), "", "", audit::Delivery::delivered,
                                        http_status, created > 0 ? now - created : 0, "Subscription/" + id,
                                        e.patient_ref, audit::kChannelRestHook,
                                        "event " + std::to_string(e.number) + " " + e.focus_type + "/" + e.focus_id +
                                            " " + n.content));
    }
    {
      std::lock_guard lk(mu_);
      st.acked_through = evs->back().number;
      ++st.inflight;
    }
    auto r = store_.commit(std::move(u), [this, id](Result<store::CommitOutcome> res) {
      std::lock_guard lk(mu_);
      auto it = states_.find(id);
      if (it == states_.end()) return;
      --it->second->inflight;
      if (!res) {
        // Still pending in the store: send again (same numbers).
        log::error("subscription_ack_commit_failed", {{"subscription", id}, {"reason", res.error().message}});
        it->second->acked_through = 0;
        it->second->pending = true;
      }
      sched_cv_.notify_one();
    });
    if (!r) {
      std::lock_guard lk(mu_);
      --st.inflight;
      st.acked_through = 0;
      throw std::runtime_error("store refused delivery state: " + r.error().message);
    }
    delivered_->inc(evs->size());
    if (st.failures > 0 || st.reported != "active") {
      st.failures = 0;
      st.backoff = std::chrono::milliseconds(0);
      st.last_error.clear();
      set_status(*spec, "active", "");
      st.reported = "active";
    }
  }
  if (!st.pending && spec->heartbeat_s > 0 && Clock::now() - st.last_sent >= std::chrono::seconds(spec->heartbeat_s)) {
    if (!send(st, *spec, status_notification("heartbeat", st.reported == "error" ? "error" : "active"), error,
              http_status)) {
      failed(st, *spec, {}, "heartbeat: " + error, http_status);
    } else {
      heartbeats_->inc();
      if (st.reported != "active") {
        set_status(*spec, "active", "");
        st.reported = "active";
      }
    }
  }
  refresh_gauges(id);
}

Result<int64_t> RestHookDelivery::replay_dead_letters(store::Store& store, const std::string& subscription,
                                                      std::optional<store::AuditRow> audit) {
  std::vector<std::string> subs;
  if (subscription.empty()) {
    auto s = store.subscriptions_with_events("dead");
    if (!s) return s.error();
    subs = *s;
  } else {
    subs.push_back(subscription);
  }
  int64_t total = 0;
  store::UnitOfWork u;
  for (const auto& id : subs) {
    auto c = store.event_counts(id);
    if (!c) return c.error();
    total += c->dead;
    u.event_updates.push_back(store::EventUpdate{id, 1, INT64_MAX, "pending", 0, 0, std::string(), "dead"});
  }
  if (audit) {
    audit->detail += (audit->detail.empty() ? "" : ": ") + std::to_string(total) + " dead letters made pending";
    u.audit.push_back(std::move(*audit));
  }
  if (u.event_updates.empty() && u.audit.empty()) return total;
  std::promise<Result<store::CommitOutcome>> p;
  auto f = p.get_future();
  if (auto r = store.commit(std::move(u), [&p](Result<store::CommitOutcome> res) { p.set_value(std::move(res)); });
      !r) {
    return r.error();
  }
  auto res = f.get();
  if (!res) return res.error();
  return total;
}

}  // namespace gw::events
