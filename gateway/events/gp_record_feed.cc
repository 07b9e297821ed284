#include "gateway/events/gp_record_feed.h"

#include <cstdio>
#include <future>

#include "gateway/audit/audit_rows.h"
#include "gateway/common/clock.h"
#include "gateway/common/json.h"
#include "gateway/common/log.h"
#include "gateway/model/cpis_plan.h"
#include "gateway/identity/nhs_number.h"

namespace gw::events {

namespace {

using Clock = std::chrono::steady_clock;

int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// MSH-10 for one queued message: the same on every resend of it (after a
// crash or a replay), different for every message. The plan's id (a UUID)
// and version are in it, so a gateway whose store was rebuilt, numbering
// queues from 1 again, does not reuse ids a practice has already filed.
// 20 characters.
std::string control_id_for(const std::string& queue, const store::EventRow& m) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a
  auto mix = [&h](std::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ULL;
    }
  };
  mix(queue);
  mix("#" + std::to_string(m.number) + "#" + m.focus_type + "/" + m.focus_id + "/" + std::to_string(m.focus_version) +
      "#" + m.interaction);
  char buf[24];
  std::snprintf(buf, sizeof buf, "CPIS%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// The first generalPractitioner that is an organisation with an ODS code.
std::string registered_practice(const json::Value& patient) {
  const json::Value* gps = json::member(patient, "generalPractitioner");
  if (!gps || !gps->IsArray()) return {};
  for (const auto& r : gps->GetArray()) {
    const json::Value* id = json::member(r, "identifier");
    if (id && json::get_string(*id, "system").value_or("") == model::cpis::kOdsSystem)
      if (auto v = json::get_string(*id, "value"); v && !v->empty()) return std::string(*v);
  }
  return {};
}

// Every attempt is a disclosure (or an attempted one) to the practice, audited
// like a notification: who received what about whom, and whether it arrived.
// Never the ACK text, which is the practice's free text.
store::AuditRow disclosure(const std::string& practice, const store::EventRow& m, GpRecordFeed::Settle settle,
                           const std::string& reason) {
  store::AuditRow a;
  a.actor_ods = practice == kNoPractice ? "" : practice;
  a.actor_role = "gp";
  a.actor_system = "gp-hl7 mllp";
  a.action = "notify";
  a.entity = gp_queue(practice);
  // Delivered; given up (dead-lettered: a reason is given); or to be retried.
  a.outcome = settle == GpRecordFeed::Settle::delivered ? "success" : !reason.empty() ? "dead" : "retry";
  a.channel = std::string(audit::kChannelGpFeed);
  a.topic = "gp-record";
  a.purpose = std::string(audit::kPurposeTreatment);
  if (settle == GpRecordFeed::Settle::delivered)
    if (auto created = clock::parse_iso_ms(m.created)) a.latency_ms = std::max<int64_t>(clock::now_ms() - *created, 0);
  a.detail = "message " + std::to_string(m.number) + " " + m.focus_type + "/" + m.focus_id + "/_history/" +
             std::to_string(m.focus_version) + " ORU^R01: " +
             (settle == GpRecordFeed::Settle::delivered ? "accepted"
              : reason.empty()                          ? "to retry"
                                                        : "dead-lettered (" + reason + ")");
  a.patient_ref = m.patient_ref;
  return a;
}

std::string label(std::string_view practice) { return "practice=\"" + std::string(practice) + "\""; }

}  // namespace

std::string gp_queue(std::string_view practice_ods) {
  return std::string(kGpQueuePrefix) + std::string(practice_ods.empty() ? kNoPractice : practice_ods);
}

GpRecordFeed::GpRecordFeed(store::Store& store, Hl7Outbound& outbound, metrics::Registry& metrics,
                           GpRecordOptions opts)
    : store_(store), outbound_(outbound), metrics_(metrics), opts_(std::move(opts)) {
  queued_ = &metrics.counter("gw_gp_hl7_queued_total", "CP-IS plan changes queued for the GP practice (HL7 v2)");
  delivered_ = &metrics.counter("gw_gp_hl7_delivered_total", "CP-IS plan messages acknowledged AA by the practice");
  retries_ = &metrics.counter("gw_gp_hl7_retries_total",
                              "CP-IS plan messages to retry (AE, bad ACK or practice unreachable)");
  cursor_gauge_ = &metrics.gauge("gw_gp_hl7_cursor", "Last change-feed seq queued for GP practices");
}

GpRecordFeed::~GpRecordFeed() { stop(); }

void GpRecordFeed::start() {
  stopping_ = false;
  for (int i = 0; i < std::max(1, opts_.workers); ++i) workers_.emplace_back([this] {
    log::name_thread("gw-gp-send");
    worker_loop();
  });
  thread_ = std::thread([this] {
    log::name_thread("gw-gp-queue");
    loop();
  });
}

void GpRecordFeed::stop() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  work_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  for (auto& w : workers_)
    if (w.joinable()) w.join();
  workers_.clear();
}

void GpRecordFeed::wake() {
  {
    std::lock_guard lk(mu_);
    woken_ = true;
  }
  cv_.notify_one();
}

// Queueing and scheduling; the sends happen on the workers, so a practice
// that is slow to answer holds up only its own queue.
void GpRecordFeed::loop() {
  for (;;) {
    while (true) {
      auto n = queue_once();
      if (!n) {
        log::error("gp_hl7_queueing_failed", {{"reason", n.error().message}});
        break;
      }
      if (*n == 0) break;
      std::lock_guard lk(mu_);
      if (stopping_) return;
    }
    schedule_due();
    std::unique_lock lk(mu_);
    if (stopping_) return;
    cv_.wait_for(lk, opts_.poll, [this] { return woken_ || stopping_; });
    woken_ = false;
    if (stopping_) return;
  }
}

void GpRecordFeed::schedule_due() {
  auto queues = store_.subscriptions_with_events("pending");
  if (!queues) {
    log::error("gp_hl7_scan_failed", {{"reason", queues.error().message}});
    return;
  }
  const auto now = Clock::now();
  std::lock_guard lk(mu_);
  for (const auto& queue : *queues) {
    if (queue.rfind(kGpQueuePrefix, 0) != 0) continue;
    PracticeState& st = practices_[queue];
    if (st.busy || st.due > now) continue;
    st.busy = true;
    ready_.push_back(queue);
    work_cv_.notify_one();
  }
}

void GpRecordFeed::worker_loop() {
  std::unique_lock lk(mu_);
  for (;;) {
    work_cv_.wait(lk, [this] { return stopping_ || !ready_.empty(); });
    if (stopping_) return;
    std::string queue = std::move(ready_.front());
    ready_.pop_front();
    PracticeState st = practices_[queue];
    lk.unlock();
    int settled = drain(queue, st);
    lk.lock();
    st.busy = false;
    practices_[queue] = st;
    // A full drain may have left more: look again without waiting for the poll.
    if (settled >= opts_.drain) {
      woken_ = true;
      cv_.notify_one();
    }
  }
}

Result<store::CommitOutcome> GpRecordFeed::commit_sync(store::UnitOfWork unit) {
  std::promise<Result<store::CommitOutcome>> p;
  auto f = p.get_future();
  if (auto r = store_.commit(std::move(unit), [&p](Result<store::CommitOutcome> res) { p.set_value(std::move(res)); });
      !r) {
    return r.error();
  }
  return f.get();
}

// The practice the plan's subject is registered with ("" when none is
// known). A plan's subject names the Patient by reference, or only by NHS
// number (resolved to the live Patient keyed on it).
Result<std::string> GpRecordFeed::practice_of(const json::Value& plan, std::string& patient_ref) {
  const json::Value* subject = json::member(plan, "subject");
  if (!subject) return std::string();
  std::string id;
  std::string_view ref = json::get_string(*subject, "reference").value_or("");
  if (ref.rfind("Patient/", 0) == 0) {
    id = std::string(ref.substr(8));
  } else if (const json::Value* ident = json::member(*subject, "identifier");
             ident && json::get_string(*ident, "system").value_or("") == identity::kNhsNumberSystem) {
    auto found = store_.find_by_unique_key(std::string(json::get_string(*ident, "value").value_or("")));
    if (!found) return found.error();
    if (*found) id = **found;
  }
  if (id.empty()) return std::string();
  patient_ref = "Patient/" + id;
  auto p = store_.read("Patient", id);
  if (!p) {
    if (p.error().code == Errc::not_found || p.error().code == Errc::gone) return std::string();
    return p.error();
  }
  auto doc = json::parse(p->body);
  if (!doc) return std::string();
  return registered_practice(*doc);
}

Result<int> GpRecordFeed::queue_once() {
  auto changes = position_.next(store_, opts_.page);  // on one node at a time (FeedPosition)
  if (!changes) return changes.error();
  if (changes->empty()) return 0;
  store::UnitOfWork unit;
  for (const auto& ch : *changes) {
    if (ch.type != "CareTeam") continue;
    // A deleted plan is sent as withdrawn, from the version before the delete.
    int64_t v = ch.interaction == "delete" ? ch.version - 1 : ch.version;
    if (v < 1) continue;
    auto r = store_.vread(ch.type, ch.id, v);
    if (!r) {
      if (r.error().code == Errc::not_found || r.error().code == Errc::gone) continue;
      return r.error();  // the cursor stays: tried again at the next pass
    }
    auto doc = json::parse(r->body);
    if (!doc || !model::cpis::plan_type_of(*doc)) continue;
    std::string patient_ref;
    auto practice = practice_of(*doc, patient_ref);
    if (!practice) return practice.error();
    store::NewEvent e;
    e.subscription = gp_queue(*practice);
    e.change_seq = ch.seq;
    e.focus_type = ch.type;
    e.focus_id = ch.id;
    e.focus_version = v;
    e.interaction = ch.interaction;
    e.patient_ref = patient_ref;
    unit.events.push_back(std::move(e));
  }
  int64_t last = changes->back().seq;
  size_t n = unit.events.size();
  if (n == 0 && unit.ops.empty() && unit.audit.empty()) {
    // No plan among these changes: the cursor rides with the next group commit.
    if (auto r = position_.consume_lazily(store_, last, "gp_hl7_cursor_not_saved"); !r) return r.error();
    cursor_gauge_->set(last);
    return static_cast<int>(changes->size());
  }
  position_.consume_to(unit, last);
  auto res = commit_sync(std::move(unit));
  if (!res) {
    if (position_.moved_elsewhere(res.error())) return 0;  // another node queued these
    return res.error();
  }
  position_.advance(last);
  cursor_gauge_->set(last);
  queued_->inc(n);
  return static_cast<int>(changes->size());
}

std::chrono::milliseconds GpRecordFeed::backoff(int failures) {
  auto d = opts_.first_retry;
  for (int i = 1; i < failures && d < opts_.max_backoff; ++i) d *= 2;
  d = std::min(d, opts_.max_backoff);
  std::uniform_int_distribution<int64_t> dist(d.count() / 2, d.count());
  std::lock_guard lk(rng_mu_);
  return std::chrono::milliseconds(dist(rng_));
}

// What to do with one queued message: build the Bundle the renderer needs
// (the plan version as queued, the patient as now), send it, classify.
GpRecordFeed::Verdict GpRecordFeed::attempt(const std::string& queue, const store::EventRow& m) {
  const std::string practice = queue.substr(kGpQueuePrefix.size());
  if (practice == kNoPractice) return {Settle::dead, "no-practice", "the patient has no registered GP practice"};
  if (!outbound_.has_endpoint(practice))
    return {Settle::dead, "no-endpoint", "no MLLP endpoint is configured for practice " + practice};
  auto plan = store_.vread(m.focus_type, m.focus_id, m.focus_version);
  if (!plan) return {Settle::retry, "", "reading the plan: " + plan.error().message};
  auto plan_doc = json::parse(plan->body);
  if (!plan_doc || !plan_doc->IsObject()) return {Settle::dead, "unrenderable", "the stored plan is not JSON"};
  auto& a = plan_doc->GetAllocator();
  if (m.interaction == "delete") json::set(*plan_doc, "status", "entered-in-error", a);
  if (m.patient_ref.rfind("Patient/", 0) != 0)
    return {Settle::dead, "unrenderable", "the plan names no stored patient"};
  auto patient = store_.read("Patient", m.patient_ref.substr(8));
  if (!patient) {
    if (patient.error().code == Errc::not_found || patient.error().code == Errc::gone)
      return {Settle::dead, "unrenderable", "the plan's patient is no longer stored"};
    return {Settle::retry, "", "reading the patient: " + patient.error().message};
  }
  std::string bundle = R"({"resourceType":"Bundle","type":"collection","entry":[{"resource":)" + patient->body +
                       R"(},{"resource":)" + json::to_string(*plan_doc) + "}]}";
  IssueSink issues;
  auto out = outbound_.send(practice, adapters::Bundle{std::move(bundle)}, issues, control_id_for(queue, m));
  if (!out) {
    if (out.error().code == Errc::unprocessable || out.error().code == Errc::invalid_input) {
      std::string why = out.error().message;
      for (const auto& i : issues.issues())
        if (i.severity == Severity::error) why += "; " + i.expression + ": " + i.message;
      return {Settle::dead, "unrenderable", why};
    }
    return {Settle::retry, "", out.error().message};
  }
  std::string said = out->text.empty() ? "" : ": " + out->text;
  switch (out->status) {
    case delivery::SendStatus::accepted: return {Settle::delivered, "", ""};
    case delivery::SendStatus::rejected:
      return {Settle::dead, "rejected", "rejected by the practice (" + out->ack_code + ")" + said};
    case delivery::SendStatus::application_error:
      return {Settle::retry, "", "application error from the practice (" + out->ack_code + ")" + said};
    case delivery::SendStatus::bad_ack:
    case delivery::SendStatus::unreachable: return {Settle::retry, "", out->last_error};
  }
  return {Settle::retry, "", out->last_error};
}

// Commits the outcome of one attempt. A retry whose window (from the first
// failed attempt, kept in the store so a restart does not reopen it) has
// passed dead-letters every queued message of the practice, as the rest-hook
// delivery does for a subscription: they would only wait for the same fate.
Result<void> GpRecordFeed::settle(const std::string& queue, const store::EventRow& m, const Verdict& v) {
  const int64_t now = unix_ms();
  store::UnitOfWork u;
  std::string practice = queue.substr(kGpQueuePrefix.size());
  std::string reason = v.reason;
  if (v.settle == Settle::delivered) {
    u.event_updates.push_back({queue, m.number, m.number, "delivered", 1, -1, std::string(), "pending"});
  } else if (v.settle == Settle::dead) {
    u.event_updates.push_back({queue, m.number, m.number, "dead", 1, now, v.error.substr(0, 1000), "pending"});
  } else if (m.first_attempt_ms > 0 && now - m.first_attempt_ms >= opts_.retry_for.count()) {
    reason = "retry-window";
    std::string err = "given up after the retry window: " + v.error.substr(0, 1000);
    u.event_updates.push_back({queue, m.number, m.number, "", 1, -1, std::string(), "pending"});
    u.event_updates.push_back({queue, 1, INT64_MAX, "dead", 0, now, err, "pending"});
  } else {
    u.event_updates.push_back({queue, m.number, m.number, "", 1, now, v.error.substr(0, 1000), "pending"});
  }
  u.audit.push_back(disclosure(practice, m, v.settle, reason));
  int64_t dead_before = 0;
  if (!reason.empty())
    if (auto c = store_.event_counts(queue)) dead_before = c->dead;
  auto res = commit_sync(std::move(u));
  if (!res) return res.error();
  if (v.settle == Settle::delivered) {
    delivered_->inc();
  } else if (!reason.empty()) {
    auto c = store_.event_counts(queue);
    int64_t dead = c ? std::max<int64_t>(1, c->dead - dead_before) : 1;
    metrics_
        .counter("gw_gp_hl7_dead_letters_total",
                 "CP-IS plan messages not delivered to the GP practice (replay: cpis-gateway replay --dead-letters "
                 "--subscription gp-hl7:<ODS>)",
                 label(practice) + ",reason=\"" + reason + "\"")
        .inc(static_cast<uint64_t>(dead));
    // Nowhere to send it is a configuration matter (warn); a practice that
    // refused or never took it is a failure (error).
    bool undeliverable = reason == "no-endpoint" || reason == "no-practice";
    log::write(undeliverable ? log::Level::warn : log::Level::error, "gp_hl7_dead_lettered",
               {{"practice", practice}, {"reason", reason}, {"messages", dead}});
  } else {
    retries_->inc();
  }
  return {};
}

void GpRecordFeed::refresh_gauges(const std::string& queue) {
  auto c = store_.event_counts(queue);
  if (!c) return;
  std::string practice = queue.substr(kGpQueuePrefix.size());
  metrics_.gauge("gw_gp_hl7_pending", "CP-IS plan messages waiting for the GP practice", label(practice))
      .set(c->pending);
  metrics_.gauge("gw_gp_hl7_dead", "CP-IS plan messages dead-lettered, per practice", label(practice)).set(c->dead);
}

// Sends one practice's queue in order until it is empty, `drain` messages
// were settled, or a message must wait for a retry.
int GpRecordFeed::drain(const std::string& queue, PracticeState& st) {
  int settled = 0;
  // A practice's messages go from one node only, in order; the node that
  // holds its queue keeps it (a node that dies frees it).
  auto held = store_.claim("gp-hl7-send:" + queue);
  if (!held || !*held) {
    st.due = Clock::now() + opts_.poll;
    return 0;
  }
  for (; settled < opts_.drain;) {
    auto next = store_.events(queue, 1, 0, "pending", 1);
    if (!next || next->empty()) break;
    const store::EventRow& m = next->front();
    Verdict v = attempt(queue, m);
    if (auto r = settle(queue, m, v); !r) {
      log::error("gp_hl7_settle_failed", {{"reason", r.error().message}});
      st.due = Clock::now() + opts_.first_retry;
      break;
    }
    if (v.settle == Settle::retry) {
      st.due = Clock::now() + backoff(++st.failures);
      log::warn("gp_hl7_retry", {{"practice", queue.substr(kGpQueuePrefix.size())}, {"failures", st.failures}});
      break;
    }
    st.failures = 0;
    ++settled;
  }
  refresh_gauges(queue);
  return settled;
}

}  // namespace gw::events
