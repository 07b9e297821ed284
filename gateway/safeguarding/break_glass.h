#pragma once
// Legitimate relationship and break-glass (issue 17 part 3): a person opens a
// child's chronology or safeguarding detail (what
// profiles/policy/relationships.json lists: $chronology, and reads of Flags,
// disclosures and CP-IS plans about the child) when their organisation has
// the child on its caseload
// (events::Lookup::in_caseload: GP practice, managing organisation, CareTeam
// or EpisodeOfCare naming its ODS code); otherwise only with a reason in
// X-Break-Glass-Reason. A break-glass access is recorded as an AuditEvent
// (tagged break-glass|opened, purpose BTG) that the topic break-glass sends
// to the organisation's Caldicott guardian: who, when, which child, and that
// a reason was given. The reason itself stays in the audit trail: it is free
// text and may hold clinical detail, which a notification must not carry.
#include <optional>
#include <string>
#include <string_view>

#include "gateway/common/result.h"
#include "gateway/events/matcher.h"
#include "gateway/net/http.h"
#include "gateway/security/policy.h"
#include "gateway/security/principal.h"
#include "gateway/security/relationships.h"
#include "gateway/security/user_rules.h"
#include "gateway/security/visibility.h"
#include "gateway/write/write_service.h"

namespace gw::safeguarding {

inline constexpr std::string_view kBreakGlassTagSystem = security::kBreakGlassTagSystem;
inline constexpr std::string_view kBreakGlassHeader = "x-break-glass-reason";
inline constexpr std::string_view kPurposeBreakGlass = "BTG";  // v3-ActReason "break the glass"

// The request's break-glass reason: nullopt when it sent none; an error
// (400, naming the header) when it is shorter or longer than users.json allows.
Result<std::optional<std::string>> break_glass_reason(const net::Request& req, const security::UserRules& rules);

// The AuditEvent JSON (without id) recording that `who` opened `what`
// ("Patient/<id>/$chronology") of the child outside their caseload. Holds
// no reason and no clinical content.
std::string break_glass_event(const security::Principal& who, const std::string& patient_id, std::string_view what,
                              const std::string& recorded);

// The gate, one for every path that opens a child's safeguarding detail
// ($chronology in flows_api.cc, the FHIR reads in fhir/rest.cc).
struct Gate {
  enum class Verdict {
    related,       // a legitimate relationship: go ahead
    break_glass,   // no relationship, a valid reason and a person: go ahead, and record it (break_glass_record)
    refused,       // 403: no relationship, no reason (the answer says how to break the glass)
    bad_reason,    // 400: the reason is out of bounds or not plain text
    needs_person,  // 401: a reason without a user token
  };
  Verdict verdict = Verdict::related;
  std::string reason;   // break_glass: the reason given
  Error error{};        // refused, bad_reason: the error to answer
  bool open() const { return verdict == Verdict::related || verdict == Verdict::break_glass; }
};

// A legitimate relationship of `who` with the person `patient_id`: the
// service administrators (operation admin), `named_in_resource`, or the
// caller's organisation having them on its caseload.
bool related(const security::Principal& who, const security::Policy& policy, events::Lookup& lookup,
             const std::string& patient_id, bool named_in_resource);

// Decides for the caller of `req` and the person `patient_id`. Related: the
// service administrators (operation admin), the caller's organisation having
// the person on its caseload (events::Lookup::in_caseload), or
// `named_in_resource` (the caller's organisation is named where the policy
// says that is a relationship itself: the recipient of a disclosure, say).
// `what` says what was asked for, for the refusal ("this child's chronology").
Gate relationship_gate(const net::Request& req, const security::Policy& policy, events::Lookup& lookup,
                       const std::string& patient_id, bool named_in_resource, std::string_view what);

// Whether a stored resource is opened only on a relationship for `who` with
// this interaction (relationships.json, for a person's request;
// a system without a person is governed by the access rules alone), and if
// so the id of the Patient it is about ("" when it is about nobody: not
// gated) and whether the caller's organisation is named in one of the
// rule's relatedBy elements.
struct GatedRead {
  bool gated = false;
  std::string patient_id;
  bool named = false;
};
GatedRead gated_read(const security::Principal& who, const security::Relationships& rules, std::string_view type,
                     std::string_view interaction, const json::Value& resource);

// The answer for a gate that is not open (400, 401 or 403 OperationOutcome).
net::Response gate_refusal(const Gate& g, const char* route);

// The unit that records a break-glass access before the answer leaves: the
// AuditEvent the topic break-glass tells the Caldicott guardian of (no reason,
// no content), the access's own audit row (`action` on `entity`, `detail`)
// and the break-glass row with the reason, all with purpose of use BTG.
Result<write::Request> break_glass_record(const net::Request& req, const std::string& patient_id,
                                          const std::string& what, const std::string& action,
                                          const std::string& entity, const std::string& detail,
                                          const std::string& reason);

}  // namespace gw::safeguarding
