#pragma once
// The "relations" route (issue 15): who hears of a safeguarding event is
// decided by the relationship between the subscriber's organisation and the
// event — the ED's paediatric liaison, the team caring for a linked child,
// the health-visiting team of the family, the service that booked the
// pregnancy, the LAC health team serving the plan's authority — never by a
// role name: which roles a topic serves, and under which relationship, is
// data (the topic's "receivers"). Each flow (a topic of this route) has its
// qualifying facts and its derived Communication in events/flows/.
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/area/area.h"
#include "gateway/common/json.h"
#include "gateway/events/matcher.h"
#include "gateway/events/subscription.h"
#include "gateway/events/topics.h"
#include "gateway/store/store.h"

namespace gw::events {

struct CoverageRules;  // coverage.h

// What the flows need beyond the store: the area's tables and the date.
struct FlowContext {
  std::shared_ptr<const area::Area> area;
  std::function<std::string()> today;  // YYYY-MM-DD, UTC; injectable for tests
  // The coverage report's rules (profiles/reports/coverage.json); null: no
  // weekly coverage-gaps summary is scheduled.
  std::shared_ptr<const CoverageRules> coverage{};
};

// Relationship names a topic's "receivers" may use.
bool is_relation(std::string_view name);
// Topics whose flow the relations route implements (by topic name).
bool is_flow(std::string_view topic_name);

// The route: the change is an event of the topic's flow and the subscriber's
// organisation stands in the relationship its role is given. Fills
// d.relation and d.concerned (the people this receiver is told about).
bool relations_allow(const Topic& topic, const SubscriptionSpec& sub, const store::ChangeRow& change,
                     const json::Value& resource, const std::string& patient_id, Lookup& lookup, Decision& d);

// What leaves for one receiver: the shareable lines, the subject (by NHS
// number only, or also by reference when it is the receiver's own patient)
// and the people concerned. Nullopt: nothing to disclose (fail closed).
struct FlowDisclosure {
  std::vector<std::string> lines;
  std::string subject_id;        // Patient id
  bool subject_literal = false;  // Patient/<id> as well as the NHS number
  std::string completeness;      // "complete" | "incomplete" | "" (pregnancy only)
  // What the content describes ("EpisodeOfCare/<id>" for a booking, whichever
  // of its resources changed): the same content about it is disclosed once.
  std::string about_ref{};
};
std::optional<FlowDisclosure> flow_disclosure(const Topic& topic, const store::ChangeRow& change,
                                              const json::Value& focus, const Decision& d, Lookup& lookup);

// The concern was referred to the authority `ods` (its referred-to-authority
// extension: the CASH/GUM adapter maps the file's ONS LA code to the
// authority's ODS code through profiles/area/services.json). Issue 15 part 6:
// a concern referred to social care reaches the authority even when the
// child has no CP-IS plan.
bool referred_authority_is(const json::Value& resource, const std::string& ods);

// relapse-indicator, a family link (RelatedPerson: the parent's NHS number
// as identifier, patient = the child) recorded after the parent's relapse-
// prevention plan: the subscriber cares for the newly linked child and the
// parent has an active plan recorded before the link. Sets d.patient_ref to the parent and
// d.concerned to the child (issue 15 part 6).
bool new_family_link_allows(const SubscriptionSpec& sub, const store::ChangeRow& change, const json::Value& link,
                            Lookup& lookup, Decision& d);
// What such a link discloses: the parent's active relapse-prevention plans
// as their shareable lines (disclosure.h), the parent (subject) and child.
struct NewLinkDisclosure {
  std::vector<std::string> lines;
  std::string parent, child;
};
// Only plans last changed before the link (`link_ts`): a plan written in the
// same transaction as the link was already disclosed with its children.
std::optional<NewLinkDisclosure> new_family_link_disclosure(const json::Value& link, const std::string& link_ts,
                                                            Lookup& lookup);

}  // namespace gw::events
