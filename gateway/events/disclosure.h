#pragma once
// What leaves for one subscriber of a disclosure topic (CPIS.md §3 and §4):
// the focus (a relapse signature, an observed indicator, a Tier 4 spell) is
// labelled PSY/SUD and stays where it is; the fan-out derives, per receiving
// subscription, a FHIR R4 Communication that carries only the shareable
// elements — the indicators, the dates, who to contact, and the people
// concerned that the receiver cares for, by NHS number. Never the diagnosis,
// encounters, referrals, clinical notes or siblings the receiver does not
// care for. The Communication has no sensitivity label and is readable only
// by its recipient organisation (profiles/policy/access.json).
#include <optional>
#include <string>
#include <vector>

#include "gateway/common/json.h"
#include "gateway/model/search_decl.h"
#include "gateway/events/matcher.h"
#include "gateway/events/relations.h"
#include "gateway/events/subscription.h"
#include "gateway/events/topics.h"
#include "gateway/store/store.h"

namespace gw::events {

inline constexpr std::string_view kDisclosureIdSystem = "https://cpis-gateway.nhs.uk/Id/disclosure";
inline constexpr std::string_view kDisclosureTopicSystem = "https://cpis-gateway.nhs.uk/CodeSystem/notification-topic";
inline constexpr std::string_view kDisclosurePurposeSystem = "https://cpis-gateway.nhs.uk/CodeSystem/disclosure-purpose";

struct Disclosure {
  std::string id;                    // Communication id: one per subscription and change
  json::Document resource;           // the Communication (no meta)
  std::vector<std::string> about;    // Patient ids concerned (audit), the subject first
  std::string purpose;               // disclosure-purpose code (audit)
  std::string writer;                // "ODS|system" whose record it was derived from (audit src), may be empty
};

// The Communication for this subscriber, or nullopt when the focus is not a
// kind whose shareable content is known (then nothing is sent: fail closed).
std::optional<Disclosure> derive_disclosure(const Topic& topic, const SubscriptionSpec& sub,
                                            const store::ChangeRow& change, const json::Value& focus,
                                            const Decision& decision, Lookup& lookup);

// The Communication of a relations-route flow (relations.h) for one
// subscriber: `id` is the disclosure's id, `sent` its time, `concerned` the
// people this receiver is told about. Nullopt when a Communication with the
// same content about the same focus was already made for this subscription
// (a message re-sent unchanged discloses nothing new).
std::optional<Disclosure> flow_communication(const Topic& topic, const SubscriptionSpec& sub, const std::string& id,
                                             const std::string& sent, const std::string& focus_ref,
                                             const FlowDisclosure& content, const std::vector<std::string>& concerned,
                                             Lookup& lookup);

// Writes a disclosure into the unit that commits it: the Communication, the
// subscription's event pointing at it, and one audit row (action disclose)
// per person concerned with the topic's purpose and legal basis, so that no
// disclosure exists without its account. `source` names what it was derived
// from ("Encounter/<id>", "Timer/<key>").
void add_to_unit(const Topic& topic, const SubscriptionSpec& sub, const Disclosure& disclosure,
                 const std::string& source, int64_t change_seq, const std::string& patient_ref,
                 const std::string& content, store::UnitOfWork& unit,
                 const model::SearchParamTable* search_params = nullptr);  // nullptr: built-in index rows only

// The shareable lines of a focus (Communication.payload), or nullopt when it
// is not a kind this knows. Compared across versions so that an extract
// re-sent unchanged does not disclose again.
std::optional<std::vector<std::string>> shareable_lines(const std::string& type, const json::Value& focus,
                                                        Lookup& lookup);

}  // namespace gw::events
