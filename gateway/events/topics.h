#pragma once
// Subscription topics as data (profiles/topics/*.json): canonical URL, the
// resource types and interactions that trigger a topic, the filter
// parameters it allows, and the roles that may subscribe to it. Loaded and
// checked once at start-up; a topic that exists is valid.
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/common/result.h"

namespace gw::events {

struct Trigger {
  std::string resource;                   // "Patient"
  std::vector<std::string> interactions;  // "create" | "update" | "delete"
  // "system|code" values; when given, only a resource carrying one of them in
  // code or category fires (a CP-IS plan among all CareTeams). Empty: any.
  std::vector<std::string> codes;
  // "system|code" the focus must carry in meta.tag ("" = any): which kind of
  // a resource type fires, e.g. only the AuditEvents of unscheduled accesses.
  std::string tag{};
};

struct TopicFilter {
  std::string parameter;  // "identifier", "patient", "patient:identifier", "organization", "code"
  std::string description;
};

struct Topic {
  std::string name;   // "patient-change"
  std::string url;    // canonical, ends in /SubscriptionTopic/<name>
  std::string title, description;
  // "active": fires now; "declared": subscriptions are accepted but the data
  // that fires it arrives with a later issue, so it does not fire yet.
  std::string status;
  std::vector<Trigger> triggers;
  std::vector<TopicFilter> filters;
  std::vector<std::string> roles;              // may subscribe
  std::vector<std::string> unrestricted_roles; // not limited to their organisation's caseload
  // Who hears about a change (see kRoutes in topics.cc):
  //   "caseload" — the subscriber's organisation cares for the Patient the
  //   focus resource is about (GP, managing organisation, CareTeam or
  //   EpisodeOfCare naming its ODS code).
  //   "plan-authority" — the subscriber's organisation is the managing
  //   organisation (the local authority) of a CP-IS plan CareTeam that the
  //   focus names (an AuditEvent's entity).
  //   "linked-children" — the focus is about a parent: the subscriber cares for
  //   at least one child linked to that parent by a family link (or, for
  //   midwifery, cares for the parent while she is pregnant). CPIS.md §3.
  //   "camhs-and-gp" — a CAMHS subscriber holds the young person's open CAMHS
  //   referral or care-team membership; a GP subscriber is the young person's
  //   practice. CPIS.md §4 (tier4-discharge).
  //   "disclosure-audience" — content derived from restricted records (a
  //   sexual-health clinic's safeguarding concern): the subscriber's role
  //   must map, through `audiences`, to a code the focus resource lists in its
  //   disclosable-to extension, and its organisation must care for the Patient
  //   (caseload as above).
  //   "acting-organisation" — the focus is an AuditEvent (a break-glass
  //   record) and the subscriber's organisation is the one that acted (an
  //   agent's who.identifier is its ODS code): the Caldicott guardian hears
  //   of their own organisation's break-glass accesses, nobody else.
  std::string route = "caseload";
  // What the subscriber is sent (CPIS.md §3 "what leaves"):
  //   "focus" — the changed resource itself (lowered to id-only when labelled);
  //   "disclosure" — a Communication the fan-out derives per subscriber,
  //   carrying only what may leave, written with the event;
  //   "disclosure-when-hidden" — the focus for roles that may see its
  //   labels, a derived Communication for every other role.
  std::string payload = "focus";
  // Conditions on the focus resource (all that are given must hold):
  //   statuses — its status is one of these;
  //   requires — these dotted paths are present (e.g. "period.end").
  std::vector<std::string> statuses, requires_paths;
  // disclosure-audience: subscriber role -> the disclosable-to code it answers to.
  std::map<std::string, std::string> audiences;
  // Subscriber role -> the relationship between its organisation and the
  // event that makes it a receiver: on the relations route (relations.h) the
  // flows' ("attending-trust-liaison", "family-health-visiting-team"...), on
  // the relationship and linked-children routes the person's (caseload,
  // camhs-care, pregnant-parent). Which roles hear is this data; the code
  // knows relationships, not roles.
  std::map<std::string, std::string> receivers;
  // Set on topics whose every event is a disclosure to be audited with its
  // purpose and legal basis (CPIS.md section 4, DESIGN.md Sensitive data).
  std::string purpose, legal_basis;

  bool audits_disclosure() const { return !legal_basis.empty(); }

  bool fires() const { return status == "active"; }
  bool disclosure() const { return payload != "focus"; }
  bool triggered_by(std::string_view type, std::string_view interaction) const;
  bool allows_filter(std::string_view parameter) const;
  bool allows_role(std::string_view role) const;
  bool unrestricted(std::string_view role) const;
  const std::vector<std::string>& trigger_types() const { return types_; }
  std::vector<std::string> types_;  // distinct trigger resource types (filled by the loader)
};

class Topics {
 public:
  // Reads every *.json in profiles_dir/topics. Errors name the file and key.
  static Result<Topics> load(const std::string& profiles_dir);
  static Result<Topic> parse(std::string_view json_text, const std::string& source);

  const Topic* by_url(std::string_view url) const;
  const Topic* by_name(std::string_view name) const;
  const std::vector<Topic>& all() const { return topics_; }

  // The R4 representation the backport IG describes: a Basic resource with
  // code SubscriptionTopic carrying the topic's canonical URL and definition.
  static std::string as_basic(const Topic& t);

 private:
  std::vector<Topic> topics_;  // sorted by name
};

}  // namespace gw::events
