#include "gateway/events/dispatcher.h"

#include "gateway/events/escalation.h"

#include <future>
#include <set>

#include "gateway/audit/audit_rows.h"
#include "gateway/common/log.h"
#include "gateway/events/disclosure.h"
#include "gateway/events/matcher.h"
#include "gateway/model/resource_text.h"

namespace gw::events {

void SubscriptionSet::put(SubscriptionSpec s) {
  auto p = std::make_shared<const SubscriptionSpec>(std::move(s));
  std::lock_guard lk(mu_);
  subs_[p->id] = std::move(p);
}
void SubscriptionSet::erase(const std::string& id) {
  std::lock_guard lk(mu_);
  subs_.erase(id);
}
SubscriptionSet::Ptr SubscriptionSet::get(const std::string& id) const {
  std::lock_guard lk(mu_);
  auto it = subs_.find(id);
  return it == subs_.end() ? nullptr : it->second;
}
std::vector<SubscriptionSet::Ptr> SubscriptionSet::all() const {
  std::lock_guard lk(mu_);
  std::vector<Ptr> out;
  out.reserve(subs_.size());
  for (const auto& [k, v] : subs_) out.push_back(v);
  return out;
}

namespace {

std::optional<SubscriptionSpec> spec_from(const store::StoredResource& r, const security::Policy& policy) {
  auto d = json::parse(r.body);
  if (!d) return std::nullopt;
  IssueSink issues;
  SubscriptionSpec s = read_subscription(*d, issues);
  s.id = r.id;
  s.version = r.version;
  if (!s.has_owner) {
    log::warn("subscription_without_owner", {{"subscription", r.id}});
    return std::nullopt;
  }
  s.labels = policy.label_view(s.owner);
  return s;
}

// The audit of one disclosure (CPIS.md section 4: who received what about
// whom, under which purpose), committed with the event so that no disclosure
// exists without it. The actor is the recipient; whether the delivery
// succeeded is audited per attempt by the delivery ("notify" rows).
store::AuditRow disclosure_audit(const Topic& t, const SubscriptionSpec& sub, const store::ChangeRow& ch,
                                 const std::string& patient_ref) {
  store::AuditRow a;
  a.actor_ods = sub.owner.ods;
  a.actor_role = sub.owner.role;
  a.actor_system = sub.owner.system;
  a.action = "disclose";
  a.entity = ch.type + "/" + ch.id + "/_history/" + std::to_string(ch.version);
  a.outcome = "success";
  a.request_id = "change-" + std::to_string(ch.seq);
  a.detail = "topic=" + t.name + "; subscription=Subscription/" + sub.id + "; purpose=" + t.purpose +
             "; legal basis=" + t.legal_basis;
  a.patient_ref = patient_ref;
  // What the data-flow reports group by: the topic and its purpose, the
  // channel it leaves by, and whose record left (the writer of the version).
  a.topic = t.name;
  a.purpose = t.purpose.empty() ? std::string(audit::kPurposeTreatment) : t.purpose;
  a.channel = std::string(audit::kChannelRestHook);
  audit::set_source(a, ch.source);
  return a;
}

}  // namespace

std::optional<SubscriptionSpec> load_subscription(store::Store& s, const security::Policy& policy, const std::string& id) {
  auto r = s.read("Subscription", id);
  if (!r) return std::nullopt;
  return spec_from(*r, policy);
}

Result<void> load_all(store::Store& s, const security::Policy& policy, SubscriptionSet& set) {
  for (int64_t offset = 0;; offset += 200) {
    store::SearchQuery q;
    q.type = "Subscription";
    q.count = 200;
    q.offset = offset;
    q.want_total = false;
    auto page = s.search(q);
    if (!page) return page.error();
    for (const auto& r : page->items)
      if (auto spec = spec_from(r, policy)) set.put(std::move(*spec));
    if (page->items.size() < 200) return {};
  }
}

Dispatcher::Dispatcher(store::Store& store, const Topics& topics, const security::Policy& policy, SubscriptionSet& set,
                       metrics::Registry& metrics,
                       DispatcherOptions opts, Notify notify)
    : store_(store), topics_(topics), policy_(policy), set_(set), opts_(std::move(opts)), notify_(std::move(notify)) {
  events_total_ = &metrics.counter("gw_subscription_events_total", "Notification events created by the fan-out");
  withheld_total_ = &metrics.counter("gw_subscription_events_withheld_total",
                                     "Matching changes not notified because of caseload or sensitivity rules");
  disclosures_total_ = &metrics.counter("gw_subscription_disclosures_total",
                                        "Communications derived for disclosure topics (relapse-indicator, tier4-discharge)");
  lag_ = &metrics.gauge("gw_subscription_fanout_cursor", "Last change-feed seq consumed by the fan-out");
}

Dispatcher::~Dispatcher() { stop(); }

void Dispatcher::start() {
  loop_.start(
      [this] {
        auto n = run_once();
        if (!n) log::error("subscription_fanout_failed", {{"reason", n.error().message}});
        return n && *n > 0;  // more may be waiting
      },
      opts_.poll, "gw-fanout");
}

void Dispatcher::stop() { loop_.stop(); }

void Dispatcher::wake() { loop_.wake(); }

// A Subscription that did not come through /fhir/Subscription (for example
// inside a transaction Bundle) has not been checked and has no owner: it is
// never served, and says so in its status instead of sitting "requested".
void Dispatcher::mark_unowned(const std::string& id) {
  auto cur = store_.read("Subscription", id);
  if (!cur) return;
  auto d = json::parse(cur->body);
  if (!d || !d->IsObject()) return;
  if (json::get_string(*d, "status").value_or("") == "error") return;
  auto& a = d->GetAllocator();
  json::set(*d, "status", "error", a);
  json::set(*d, "error", "not accepted: a Subscription must be created or updated with POST/PUT /fhir/Subscription", a);
  store::WriteOp op;
  op.kind = store::OpKind::update;
  op.type = "Subscription";
  op.id = id;
  op.if_match = cur->version;
  op.upsert = false;
  op.body = model::storage_text(*d, "Subscription", a);
  op.index = model::index_entries("Subscription", *d);
  // Its own unit: a concurrent client update (version conflict) must not
  // hold back the cursor.
  auto r = store_.commit(store::UnitOfWork{{std::move(op)}, {}, {}, {}, {}, {}},
                         [id](Result<store::CommitOutcome> res) {
                           if (!res) log::warn("subscription_mark_failed", {{"subscription", id}});
                         });
  if (!r) log::warn("subscription_mark_refused", {{"subscription", id}});
}

bool Dispatcher::disclosure_unchanged(const store::ChangeRow& ch, const json::Value& focus, Lookup& lookup) {
  if (ch.version < 2) return false;
  auto prev = store_.vread(ch.type, ch.id, ch.version - 1);
  if (!prev || prev->deleted) return false;
  auto before = json::parse(prev->body);
  if (!before) return false;
  auto was = shareable_lines(ch.type, *before, lookup);
  auto now = shareable_lines(ch.type, focus, lookup);
  return was && now && *was == *now;
}

bool Dispatcher::add_disclosure(const Topic& topic, const SubscriptionSpec& sub, const store::ChangeRow& ch,
                                const json::Value& focus, const Decision& d, Lookup& lookup, store::UnitOfWork& unit) {
  auto disclosure = derive_disclosure(topic, sub, ch, focus, d, lookup);
  if (!disclosure) return false;
  add_to_unit(topic, sub, *disclosure, ch.type + "/" + ch.id, ch.seq, d.patient_ref, d.content, unit,
              opts_.search_params);
  // Its acknowledgement deadlines commit with it (escalation.h): there is no
  // moment where the disclosure is durable and its escalation is not.
  if (opts_.flows && opts_.flows->area) {
    std::string calendar_error;
    if (auto timers = escalation_timers(topic, sub, *disclosure, *opts_.flows->area, &calendar_error))
      unit.timer_sets.push_back(std::move(*timers));
    if (!calendar_error.empty())
      log::error("escalation_deadline_refused", {{"communication", disclosure->id}, {"reason", calendar_error}});
  }
  disclosures_total_->inc();
  return true;
}

Result<int> Dispatcher::run_once() {
  auto changes = position_.next(store_, opts_.page);
  if (changes && position_.take_reread()) {
    // Subscriptions another node's fan-out saw while this one did not run.
    if (auto r = load_all(store_, policy_, set_); !r) return r.error();
  }
  if (!changes) return changes.error();
  if (changes->empty()) return 0;
  StoreLookup lookup(store_, opts_.flows.get());
  store::UnitOfWork unit;
  std::set<std::string> got_events;
  std::vector<std::string> changed_subs;
  uint64_t withheld = 0;
  for (const auto& ch : *changes) {
    if (ch.type == "Subscription") {
      if (auto spec = load_subscription(store_, policy_, ch.id)) set_.put(std::move(*spec));
      else {
        set_.erase(ch.id);
        mark_unowned(ch.id);
      }
      changed_subs.push_back(ch.id);
      continue;
    }
    std::optional<json::Document> doc;  // the version, read once for all subscriptions
    bool doc_tried = false;
    std::optional<bool> unchanged;  // disclosure topics: decided once per change
    for (const auto& sub : set_.all()) {
      if (sub->status == "off") continue;
      if (sub->end && !sub->end->empty() && *sub->end < ch.ts) continue;
      const Topic* t = topics_.by_url(sub->topic_url);
      if (!t || !t->fires() || !t->triggered_by(ch.type, ch.interaction)) continue;
      if (!doc_tried) {
        doc_tried = true;
        // A delete has no body: decide on the version before it.
        int64_t v = ch.interaction == "delete" ? ch.version - 1 : ch.version;
        if (v >= 1) {
          auto r = store_.vread(ch.type, ch.id, v);
          if (r) {
            auto d = json::parse(r->body);
            if (d) doc = std::move(*d);
          }
        }
      }
      if (!doc) continue;
      if (t->disclosure()) {
        if (!unchanged) unchanged = ch.interaction == "update" && disclosure_unchanged(ch, *doc, lookup);
        if (*unchanged) continue;
      }
      Decision d = decide(*t, *sub, ch, *doc, lookup);
      if (!d.notify) {
        if (d.reason == "caseload" || d.reason == "sensitivity") ++withheld;
        continue;
      }
      if (d.disclose) {
        if (add_disclosure(*t, *sub, ch, *doc, d, lookup, unit)) got_events.insert(sub->id);
        continue;
      }
      store::NewEvent e;
      e.subscription = sub->id;
      e.change_seq = ch.seq;
      e.focus_type = ch.type;
      e.focus_id = ch.id;
      e.focus_version = ch.version;
      e.interaction = ch.interaction;
      e.patient_ref = d.patient_ref;
      e.content = d.content;
      unit.events.push_back(std::move(e));
      if (t->audits_disclosure()) unit.audit.push_back(disclosure_audit(*t, *sub, ch, d.patient_ref));
      got_events.insert(sub->id);
    }
  }
  int64_t last = changes->back().seq;
  if (unit.events.empty() && unit.ops.empty() && unit.audit.empty() && unit.timer_sets.empty()) {
    // Nothing for anyone: the cursor rides with the next group commit.
    if (auto r = position_.consume_lazily(store_, last, "subscription_cursor_not_saved"); !r) return r.error();
    lag_->set(last);
    withheld_total_->inc(withheld);
    if (notify_ && !changed_subs.empty()) notify_({}, changed_subs);
    return static_cast<int>(changes->size());
  }
  position_.consume_to(unit, last);  // fenced: a node that lost the claim cannot commit these events twice
  size_t n_events = unit.events.size();
  std::promise<Result<store::CommitOutcome>> p;
  auto f = p.get_future();
  if (auto r = store_.commit(std::move(unit), [&p](Result<store::CommitOutcome> res) { p.set_value(std::move(res)); });
      !r) {
    return r.error();
  }
  auto res = f.get();
  if (!res) {
    if (position_.moved_elsewhere(res.error())) {
      log::warn("subscription_fanout_moved_elsewhere", {{"cursor", position_.name()}});
      return 0;
    }
    return res.error();
  }
  position_.advance(last);
  lag_->set(last);
  events_total_->inc(n_events);
  withheld_total_->inc(withheld);
  if (notify_ && (!got_events.empty() || !changed_subs.empty())) {
    notify_(std::vector<std::string>(got_events.begin(), got_events.end()), changed_subs);
  }
  return static_cast<int>(changes->size());
}

}  // namespace gw::events
