#include "gateway/events/escalation.h"

#include <cstdio>

#include "gateway/common/log.h"
#include "gateway/events/dispatcher.h"
#include "gateway/events/flows/flow_kit.h"

namespace gw::events {

namespace {

using flows::str;

constexpr std::string_view kRecipientRelation = "disclosure-recipient";
constexpr std::string_view kNurseRelation = "designated-nurse";

std::string hash16(std::string_view a, std::string_view b) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](std::string_view s) {
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    h = (h ^ 0x1f) * 1099511628211ull;
  };
  mix(a);
  mix(b);
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string payload_json(const std::string& communication, const std::string& topic, const std::string& recipient,
                         const std::string& subscription, const std::string& sent, const std::string& subject,
                         const area::EscalationDeadlines& d, int stage, const std::string& calendar_error) {
  json::Document doc;
  doc.SetObject();
  auto& a = doc.GetAllocator();
  json::set(doc, "communication", communication, a);
  json::set(doc, "topic", topic, a);
  json::set(doc, "recipient", recipient, a);
  json::set(doc, "subscription", subscription, a);
  json::set(doc, "sent", sent, a);
  json::set(doc, "subject", subject, a);
  json::set(doc, "first", d.first, a);
  json::set(doc, "second", d.second, a);
  json::set(doc, "stage", json::Value(stage), a);
  if (!calendar_error.empty()) json::set(doc, "calendarError", calendar_error, a);
  return json::to_string(doc);
}

int stage_of(const json::Value& p) {
  const json::Value* s = json::member(p, "stage");
  return s && s->IsInt() ? s->GetInt() : 0;
}

}  // namespace

std::string escalation_subject(const std::string& communication_id) { return "Communication/" + communication_id; }

std::optional<store::TimerSet> escalation_timers(const Topic& topic, const SubscriptionSpec& sub,
                                                 const Disclosure& disclosure, const area::Area& area,
                                                 std::string* calendar_error) {
  // A disclosure about nobody the gateway knows (an unmatched concern) has
  // deadlines too: it is the receiver's to act on all the same.
  if (topic.unrestricted(sub.owner.role)) return std::nullopt;
  std::string sent = str(disclosure.resource, "sent");
  auto deadlines = area.escalation_deadlines(topic.name, sent);
  area::EscalationDeadlines d;
  std::string error;
  if (!deadlines) {
    error = deadlines.error().message;
    d = area::EscalationDeadlines{sent, sent};  // escalate at once: never a deadline silently lost
    if (calendar_error) *calendar_error = error;
  } else if (!*deadlines) {
    return std::nullopt;
  } else {
    d = **deadlines;
  }
  store::TimerSet set{std::string(kEscalationTimerKind), escalation_subject(disclosure.id), {}};
  for (int stage : {1, 2}) {
    set.timers.push_back(store::TimerRow{"escalation:" + disclosure.id + ":" + std::to_string(stage), "", "",
                                         stage == 1 ? d.first : d.second,
                                         payload_json(disclosure.id, topic.name, sub.owner.ods, sub.id, sent,
                                                      disclosure.about.empty() ? std::string() : disclosure.about.front(), d,
                                                      stage, error)});
  }
  return set;
}

std::optional<store::TimerSet> escalate_undelivered(const std::vector<store::TimerRow>& timers,
                                                    const std::string& now) {
  std::optional<store::TimerSet> out;
  for (const auto& t : timers) {
    if (t.status != "pending") continue;
    auto p = json::parse(t.payload);
    if (!p || !p->IsObject()) continue;
    if (!out) out = store::TimerSet{t.kind, t.subject, {}};
    store::TimerRow row{t.key, "", "", t.due, t.payload};
    if (stage_of(*p) == 1) {
      if (!json::member(*p, "undelivered")) json::set(*p, "undelivered", now, p->GetAllocator());
      row.payload = json::to_string(*p);
      if (now < row.due) row.due = now;
    }
    out->timers.push_back(std::move(row));
  }
  // Only worth a write when the first stage is still to come.
  if (out) {
    bool first_pending = false;
    for (const auto& t : out->timers) first_pending |= t.key.size() > 2 && t.key.compare(t.key.size() - 2, 2, ":1") == 0;
    if (!first_pending) out.reset();
  }
  return out;
}

Result<EscalationFired> fire_escalation(const store::TimerRow& timer, store::Store& store, const Topics& topics,
                                        SubscriptionSet& subs, const FlowContext& ctx, const std::string& now,
                                        store::UnitOfWork& unit, const model::SearchParamTable* search_params) {
  EscalationFired out;
  auto payload = json::parse(timer.payload);
  if (!payload || !payload->IsObject()) return make_error(Errc::internal, "escalation timer payload is not JSON", timer.key);
  out.stage = stage_of(*payload);
  std::string comm_id = str(*payload, "communication");
  // Acknowledged (completed), withdrawn or gone: nothing to escalate. This is
  // the belt to $acknowledge's braces (it cancels the timers in its unit).
  auto stored = store.read("Communication", comm_id);
  std::optional<json::Document> comm;
  if (stored && !stored->deleted)
    if (auto d = json::parse(stored->body)) comm = std::move(*d);
  if (!comm || str(*comm, "status") != "in-progress") {
    out.acknowledged = true;
    return out;
  }
  const Topic* topic = topics.by_name(kEscalationTopic);
  if (!topic || !topic->fires()) return out;
  const Topic* original = topics.by_name(str(*payload, "topic"));
  std::string about = original ? original->title : str(*payload, "topic");
  std::string recipient = str(*payload, "recipient");
  std::string target;
  std::string_view relation;
  FlowDisclosure content;
  content.subject_id = str(*payload, "subject");
  content.about_ref = escalation_subject(comm_id) + "#" + std::to_string(out.stage);
  const std::string what = "The " + str(*payload, "topic") + " disclosure Communication/" + comm_id + " (" + about +
                           ") sent " + str(*payload, "sent") + " to " + recipient;
  if (out.stage == 1) {
    target = recipient;
    relation = kRecipientRelation;
    content.lines.push_back(what + " was not acknowledged by its deadline " + str(*payload, "first") + ".");
  } else {
    if (!ctx.area->designated_nurse()) return out;  // the area names none: counted as unrouted
    target = ctx.area->designated_nurse()->ods;
    relation = kNurseRelation;
    content.lines.push_back(what + " is still not acknowledged at its second deadline " + str(*payload, "second") +
                            "; the organisation's safeguarding lead was told at " + str(*payload, "first") + ".");
  }
  if (std::string u = str(*payload, "undelivered"); !u.empty())
    content.lines.push_back("Delivery to " + recipient + " failed: the notification was dead-lettered on " + u +
                            " and has not been received by its system.");
  if (std::string e = str(*payload, "calendarError"); !e.empty())
    content.lines.push_back("The deadline could not be counted (" + e + "): escalated at once.");
  if (timer.due.substr(0, 10) < now.substr(0, 10))
    content.lines.push_back("Sent late: the gateway was not running when this fell due (" + timer.due + ").");
  content.lines.push_back("The receiving organisation acknowledges it with POST /fhir/Communication/" + comm_id +
                          "/$acknowledge.");
  StoreLookup lookup(store, &ctx);
  for (const auto& sub : subs.all()) {
    if (sub->topic_url != topic->url || sub->status == "off") continue;
    if (sub->end && !sub->end->empty() && *sub->end < now) continue;
    if (!topic->unrestricted(sub->owner.role)) {
      auto rel = topic->receivers.find(sub->owner.role);
      if (rel == topic->receivers.end() || rel->second != relation || sub->owner.ods != target) continue;
    }
    auto c = flow_communication(*topic, *sub, "escalation-" + hash16(sub->id, timer.key), now,
                                escalation_subject(comm_id), content, {}, lookup);
    if (!c) continue;
    add_to_unit(*topic, *sub, *c, escalation_subject(comm_id), 0,
                content.subject_id.empty() ? std::string() : "Patient/" + content.subject_id, sub->content, unit,
                search_params);
    out.subscriptions.push_back(sub->id);
  }
  return out;
}

}  // namespace gw::events
