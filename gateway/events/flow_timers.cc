#include "gateway/events/flow_timers.h"

#include <cstdio>
#include <ctime>
#include <future>
#include <map>

#include "gateway/area/working_days.h"
#include "gateway/common/log.h"
#include "gateway/events/booking_summary.h"
#include "gateway/events/coverage.h"
#include "gateway/events/disclosure.h"
#include "gateway/events/escalation.h"
#include "gateway/events/flows/flow_kit.h"
#include "gateway/events/lac_assessments.h"

namespace gw::events {

namespace {

using flows::str;

constexpr std::string_view kLacTopic = "lac-health-assessment-due";
constexpr std::string_view kPregnancyTopic = "pregnancy-notification";
constexpr std::string_view kBookingService = "booking-service";

std::optional<json::Document> current(store::Store& s, const std::string& type, const std::string& id) {
  auto r = s.read(type, id);
  if (!r) return std::nullopt;
  auto d = json::parse(r->body);
  if (!d) return std::nullopt;
  return std::move(*d);
}

Result<store::CommitOutcome> commit_and_wait(store::Store& s, store::UnitOfWork unit) {
  std::promise<Result<store::CommitOutcome>> p;
  auto f = p.get_future();
  if (auto r = s.commit(std::move(unit), [&p](Result<store::CommitOutcome> res) { p.set_value(std::move(res)); }); !r)
    return r.error();
  return f.get();
}

// The 28-week reminder of a booking: pending while no repeat social risk
// assessment is recorded after the booking, due on the day the gestation
// reaches the threshold (EDD less 40 - threshold weeks).
store::TimerSet repeat_timers(const std::string& episode_id, const json::Value& episode, Lookup& lookup,
                              const FlowContext& ctx) {
  store::TimerSet set{std::string(kRepeatAssessmentTimerKind), "EpisodeOfCare/" + episode_id, {}};
  auto b = booking_for_episode(episode, episode_id, lookup);
  if (!b || str(episode, "status") != "active" || b->edd.empty()) return set;
  for (const auto& o : lookup.about("Observation", b->woman)) {
    std::string st = str(o, "status");
    if (st == "entered-in-error" || st == "cancelled") continue;
    if (flows::coded_any(o, ctx.area->pregnancy().repeat_assessment_codes) &&
        flows::date_part(str(o, "effectiveDateTime")) >= b->booking_date)
      return set;
  }
  auto edd = area::parse_date(b->edd);
  if (!edd) return set;
  auto due = *edd - std::chrono::days(7 * (40 - ctx.area->pregnancy().repeat_assessment_weeks));
  std::string day = area::format_date(due);
  set.timers.push_back(store::TimerRow{"pregnancy:" + episode_id + ":repeat-risk-assessment:" + day, "", "",
                                       day + "T00:00:00Z",
                                       "{\"episode\":\"" + episode_id + "\",\"due\":\"" + day + "\"}"});
  return set;
}

std::string short_id(const std::string& a, const std::string& b) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : a + "\x1f" + b) h = (h ^ c) * 1099511628211ull;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace

FlowTimers::FlowTimers(store::Store& store, const Topics& topics, SubscriptionSet& subs,
                       std::shared_ptr<const FlowContext> flows, metrics::Registry& metrics, FlowTimersOptions opts,
                       std::function<void(const std::vector<std::string>&)> on_events)
    : store_(store),
      topics_(topics),
      subs_(subs),
      flows_(std::move(flows)),
      opts_(std::move(opts)),
      on_events_(std::move(on_events)) {
  if (!opts_.clock) opts_.clock = [] { return std::chrono::system_clock::now(); };
  fired_ = &metrics.counter("gw_flow_timers_fired_total", "Durable timers fired (LAC health assessments, 28-week reminders)");
  failed_ = &metrics.counter("gw_flow_timers_failed_total", "Timer firings or schedulings that failed and will be retried");
  escalations_ = &metrics.counter("gw_escalations_total",
                                  "Unacknowledged safeguarding disclosures escalated (safeguarding-escalation)");
  escalations_unrouted_ = &metrics.counter(
      "gw_escalations_unrouted_total",
      "Escalations due with no subscription to hear them (the organisation's safeguarding lead or the designated nurse)");
  calendar_refused_ = &metrics.counter(
      "gw_calendar_out_of_range_total",
      "Due dates that could not be counted because the bank-holiday table does not cover them (add the next year)");
}

FlowTimers::~FlowTimers() { stop(); }

void FlowTimers::start() {
  loop_.start(
      [this] {
        if (auto n = run_once(); !n) {
          failed_->inc();
          log::error("flow_timers_failed", {{"reason", n.error().message}});
        }
        return false;  // timers are due by the clock: look again after poll or a wake-up
      },
      opts_.poll);
}

void FlowTimers::stop() { loop_.stop(); }

void FlowTimers::wake() { loop_.wake(); }

std::string FlowTimers::now_iso() const {
  std::time_t t = std::chrono::system_clock::to_time_t(opts_.clock());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Result<int> FlowTimers::run_once() {
  for (;;) {
    auto n = schedule_once();
    if (!n) return n.error();
    if (*n == 0) break;
  }
  if (auto r = schedule_weekly(); !r) return r.error();
  return fire_due();
}

Result<void> FlowTimers::schedule_weekly() {
  // The weekly coverage summary: kept scheduled by the unit that fires it;
  // this puts the first one in place (and moves a pending one when the day
  // in profiles/ changed). Once per process is enough: firing reschedules.
  if (weekly_checked_ || !flows_->coverage) return {};
  auto set = weekly_schedule(store_, *flows_->coverage, opts_.clock());
  if (set) {
    store::UnitOfWork unit;
    unit.timer_sets.push_back(std::move(*set));
    auto res = commit_and_wait(store_, std::move(unit));
    if (!res) return res.error();
  }
  weekly_checked_ = true;
  return {};
}

Result<int> FlowTimers::schedule_once() {
  auto changes = position_.next(store_, opts_.page);
  if (!changes) return changes.error();
  if (changes->empty()) return 0;
  StoreLookup lookup(store_, flows_.get());
  const FlowContext& ctx = *flows_;
  std::map<std::string, store::TimerSet> sets;  // by subject: the last word of the page wins
  auto plan = [&](const std::string& id) {
    auto doc = current(store_, "CareTeam", id);
    if (!doc) {
      sets["CareTeam/" + id] = store::TimerSet{std::string(kLacTimerKind), "CareTeam/" + id, {}};
      return;
    }
    auto s = lac_schedule(id, *doc, lookup, ctx);
    if (!s) return;
    if (!s->error.empty()) {
      calendar_refused_->inc();
      log::error("lac_due_date_refused", {{"plan", "CareTeam/" + id}, {"reason", s->error}});
    }
    sets["CareTeam/" + id] = lac_timers(*s, ctx);
  };
  auto episode = [&](const std::string& id) {
    auto doc = current(store_, "EpisodeOfCare", id);
    if (!doc) {
      sets["EpisodeOfCare/" + id] =
          store::TimerSet{std::string(kRepeatAssessmentTimerKind), "EpisodeOfCare/" + id, {}};
      return;
    }
    if (flows::concept_has(json::member(*doc, "type"), flows::kMaternity))
      sets["EpisodeOfCare/" + id] = repeat_timers(id, *doc, lookup, ctx);
  };
  for (const auto& ch : *changes) {
    if (ch.type == "CareTeam") {
      plan(ch.id);
    } else if (ch.type == "EpisodeOfCare") {
      episode(ch.id);
    } else if (ch.type == "Encounter" || ch.type == "Observation") {
      auto doc = current(store_, ch.type, ch.id);
      if (!doc) continue;
      std::string pid = flows::patient_id_of(*doc);
      if (pid.empty()) continue;
      if (records_assessment(*doc, ctx))
        for (const auto& t : lookup.about("CareTeam", pid)) plan(str(t, "id"));
      if (ch.type == "Observation" && (flows::coded(*doc, flows::kEddCode) ||
                                       flows::coded_any(*doc, ctx.area->pregnancy().repeat_assessment_codes)))
        for (const auto& e : lookup.about("EpisodeOfCare", pid)) episode(str(e, "id"));
    }
  }
  int64_t last = changes->back().seq;
  if (sets.empty()) {
    // Nothing to schedule (most changes): the cursor rides with the next
    // group commit instead of an fsync of its own per page of changes.
    if (auto r = position_.consume_lazily(store_, last, "flow_timers_cursor_not_saved"); !r) return r.error();
    return static_cast<int>(changes->size());
  }
  store::UnitOfWork unit;
  for (auto& [subject, set] : sets) unit.timer_sets.push_back(std::move(set));
  position_.consume_to(unit, last);
  auto res = commit_and_wait(store_, std::move(unit));
  if (!res) {
    if (position_.moved_elsewhere(res.error())) return 0;  // another node scheduled these
    return res.error();
  }
  position_.advance(last);
  return static_cast<int>(changes->size());
}

Result<int> FlowTimers::fire_due() {
  // Fired by one node at a time among those sharing the store (a node that
  // dies frees the claim); a key fires at most once whatever happens, as
  // marking it fired fails once it is not pending any more.
  auto held = store_.claim("flow-timers-fire");
  if (!held) return held.error();
  if (!*held) return 0;
  auto due = store_.due_timers(now_iso(), 100);
  if (!due) return due.error();
  int fired = 0;
  std::vector<std::string> got_events;
  for (const auto& t : *due) {
    auto r = fire(t, got_events);
    if (!r) {
      failed_->inc();
      log::error("timer_fire_failed", {{"kind", t.kind}, {"reason", r.error().message}});
      continue;
    }
    if (*r) ++fired;
  }
  fired_->inc(static_cast<uint64_t>(fired));
  if (on_events_ && !got_events.empty()) on_events_(got_events);
  return fired;
}

Result<bool> FlowTimers::fire_escalation_timer(const store::TimerRow& t, std::vector<std::string>& got_events) {
  store::UnitOfWork unit;
  unit.timers_fired.push_back(t.key);
  std::string now = now_iso();
  auto fired = fire_escalation(t, store_, topics_, subs_, *flows_, now, unit, opts_.search_params);
  if (!fired) return fired.error();
  auto res = commit_and_wait(store_, std::move(unit));
  if (!res) return res.error();
  got_events.insert(got_events.end(), fired->subscriptions.begin(), fired->subscriptions.end());
  if (fired->acknowledged) {
    log::info("escalation_not_needed", {{"stage", static_cast<int64_t>(fired->stage)}});
  } else if (fired->subscriptions.empty()) {
    // Nobody subscribed to hear it: loud, never silent (an operator wires the
    // safeguarding lead's or designated nurse's subscription).
    escalations_unrouted_->inc();
    log::error("escalation_unrouted", {{"stage", static_cast<int64_t>(fired->stage)}, {"timer", t.key}});
  } else {
    escalations_->inc();
    log::info("escalation_fired", {{"stage", static_cast<int64_t>(fired->stage)},
                                   {"notified", static_cast<uint64_t>(fired->subscriptions.size())}});
  }
  return true;
}

Result<bool> FlowTimers::fire(const store::TimerRow& t, std::vector<std::string>& got_events) {
  if (t.kind == kEscalationTimerKind) return fire_escalation_timer(t, got_events);
  store::UnitOfWork unit;
  unit.timers_fired.push_back(t.key);
  if (t.kind == kCoverageTimerKind) {
    auto subs = fire_weekly_summary(store_, topics_, subs_, *flows_, t, opts_.clock(), unit);
    if (!subs) return subs.error();
    auto res = commit_and_wait(store_, std::move(unit));
    if (!res) return res.error();
    got_events.insert(got_events.end(), subs->begin(), subs->end());
    log::info("timer_fired", {{"kind", t.kind}, {"notified", static_cast<uint64_t>(subs->size())}});
    return true;
  }
  auto payload = json::parse(t.payload);
  if (!payload || !payload->IsObject()) return make_error(Errc::internal, "timer payload is not JSON", t.key);
  StoreLookup lookup(store_, flows_.get());
  const FlowContext& ctx = *flows_;
  const Topic* topic = nullptr;
  std::optional<json::Document> focus;
  store::ChangeRow as_change;
  FlowDisclosure content;
  std::string only_relation;
  if (t.kind == kLacTimerKind) {
    topic = topics_.by_name(kLacTopic);
    std::string plan_id = str(*payload, "plan");
    focus = current(store_, "CareTeam", plan_id);
    auto s = focus ? lac_schedule(plan_id, *focus, lookup, ctx) : std::nullopt;
    // Still the open assessment the timer was set for? (A completion or an
    // ended plan replaces the schedule first; this is the belt to those braces.)
    bool open = s && s->active && !s->assessments.empty() && s->assessments.back().status != "completed" &&
                s->assessments.back().due == str(*payload, "due");
    if (open) {
      const auto& a = s->assessments.back();
      std::string name = a.kind == "IHA" ? "Initial health assessment" : "Review health assessment";
      // A reminder fired after its day (the gateway was down) says so.
      std::string fire_day = t.due.substr(0, 10), today = ctx.today();
      std::string late = today > fire_day ? "; sent late: the gateway was not running on " + fire_day : "";
      content.lines.push_back(str(*payload, "stage") == "overdue"
                                  ? name + " due " + a.due + " is OVERDUE: no assessment has been recorded"
                                  : name + " due " + a.due + " (due within " +
                                        std::to_string(ctx.area->lac().due_soon_working_days) + " working days" + late +
                                        ")");
      for (auto& l : lac_lines(*s)) content.lines.push_back(std::move(l));
      content.subject_id = s->patient_id;
      content.subject_literal = true;
      as_change = store::ChangeRow{0, "CareTeam", plan_id, 0, "update", now_iso()};
    } else {
      focus.reset();
    }
  } else if (t.kind == kRepeatAssessmentTimerKind) {
    topic = topics_.by_name(kPregnancyTopic);
    only_relation = kBookingService;
    std::string ep = str(*payload, "episode");
    focus = current(store_, "EpisodeOfCare", ep);
    auto pending = focus ? repeat_timers(ep, *focus, lookup, ctx) : store::TimerSet{};
    auto b = focus ? booking_for_episode(*focus, ep, lookup) : std::nullopt;
    if (b && !pending.timers.empty()) {
      content.lines.push_back("Reminder: no repeat social risk assessment is recorded and the pregnancy reached " +
                              std::to_string(ctx.area->pregnancy().repeat_assessment_weeks) + " weeks on " +
                              str(*payload, "due"));
      for (auto& l : booking_lines(*b)) content.lines.push_back(std::move(l));
      content.subject_id = b->woman;
      content.subject_literal = true;
      as_change = store::ChangeRow{0, "EpisodeOfCare", ep, 0, "update", now_iso()};
    } else {
      focus.reset();
    }
  } else {
    return make_error(Errc::internal, "no consumer for timer kind " + t.kind, t.key);
  }
  std::vector<std::string> subs_with_events;
  if (focus && topic && topic->fires()) {
    for (const auto& sub : subs_.all()) {
      if (sub->topic_url != topic->url || sub->status == "off") continue;
      if (sub->end && !sub->end->empty() && *sub->end < as_change.ts) continue;
      Decision d;
      d.patient_ref = "Patient/" + content.subject_id;
      if (topic->unrestricted(sub->owner.role)) {
        d.concerned = {content.subject_id};
      } else if (!relations_allow(*topic, *sub, as_change, *focus, content.subject_id, lookup, d) ||
                 (!only_relation.empty() && d.relation != only_relation)) {
        continue;
      }
      auto c = flow_communication(*topic, *sub, "reminder-" + short_id(sub->id, t.key), as_change.ts, "Timer/" + t.key,
                                  content, d.concerned, lookup);
      if (!c) continue;
      add_to_unit(*topic, *sub, *c, "Timer/" + t.key, 0, d.patient_ref, sub->content, unit, opts_.search_params);
      if (auto timers = escalation_timers(*topic, *sub, *c, *ctx.area)) unit.timer_sets.push_back(std::move(*timers));
      subs_with_events.push_back(sub->id);
    }
  }
  auto res = commit_and_wait(store_, std::move(unit));
  if (!res) return res.error();
  got_events.insert(got_events.end(), subs_with_events.begin(), subs_with_events.end());
  log::info("timer_fired", {{"kind", t.kind}, {"notified", static_cast<uint64_t>(subs_with_events.size())}});
  return true;
}

}  // namespace gw::events
