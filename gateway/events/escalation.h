#pragma once
// Acknowledgement deadlines of safeguarding disclosures (issue 17 part 1,
// docs/FLOWS.md "Acknowledgement and escalation", docs/TIMERS.md).
//
// A disclosure (the Communication derived per receiver, disclosure.h) starts
// `in-progress`; its receiving organisation acknowledges it
// (`$acknowledge`, safeguarding/acknowledge.h), which makes it `completed`
// and cancels its timers. The unit that writes the disclosure schedules two
// durable timers of kind "escalation" for the subject
// "Communication/<id>": the first deadline (the topic's working days,
// profiles/area/flow-rules.json acknowledgement) escalates on the topic
// safeguarding-escalation to the receiving organisation's subscription (its
// safeguarding lead); the second, still unacknowledged, to the area's
// designated nurse (profiles/area/services.json designatedNurse). A
// dead-lettered delivery brings the first forward to "now": delivery failure
// is not silence.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/area/area.h"
#include "gateway/common/json.h"
#include "gateway/events/disclosure.h"
#include "gateway/events/relations.h"
#include "gateway/events/subscription.h"
#include "gateway/events/topics.h"
#include "gateway/model/search_decl.h"
#include "gateway/store/store.h"

namespace gw::events {

class SubscriptionSet;

inline constexpr std::string_view kEscalationTimerKind = "escalation";
inline constexpr std::string_view kEscalationTopic = "safeguarding-escalation";

// "Communication/<id>": the subject of a disclosure's escalation timers.
std::string escalation_subject(const std::string& communication_id);

// The escalation timers of a disclosure just derived for `sub` (to commit in
// the unit that writes it). Nullopt when the topic has no deadline, or the
// receiver is an unrestricted role (admin hears every event; it is not the
// service that must act). When the calendar cannot count the deadline
// (a day outside the bank-holiday table) both timers fall due at once and
// `calendar_error` says why: a deadline that cannot be counted is escalated,
// never dropped.
std::optional<store::TimerSet> escalation_timers(const Topic& topic, const SubscriptionSpec& sub,
                                                 const Disclosure& disclosure, const area::Area& area,
                                                 std::string* calendar_error = nullptr);

// The delivery of the disclosure failed for good (dead-lettered at `now`):
// its pending first-stage timer falls due now and says so. `timers` are the
// subject's (Store::timers_of). Nullopt when nothing is pending at the first
// stage (acknowledged, or escalated already).
std::optional<store::TimerSet> escalate_undelivered(const std::vector<store::TimerRow>& timers,
                                                    const std::string& now);

// What firing one escalation timer writes into `unit`: an escalation
// Communication, its event and disclosure audit for each receiving
// subscription. Nothing when the disclosure was acknowledged (or is gone).
// Returns the subscriptions given events; `receivers` is set to how many
// subscriptions the escalation went to (0 with `acknowledged` false: nobody
// subscribed to hear it — the caller counts and logs that).
struct EscalationFired {
  std::vector<std::string> subscriptions;
  bool acknowledged = false;  // nothing to escalate any more
  int stage = 0;
};
Result<EscalationFired> fire_escalation(const store::TimerRow& timer, store::Store& store, const Topics& topics,
                                        SubscriptionSet& subs, const FlowContext& ctx, const std::string& now,
                                        store::UnitOfWork& unit,
                                        const model::SearchParamTable* search_params = nullptr);

}  // namespace gw::events
