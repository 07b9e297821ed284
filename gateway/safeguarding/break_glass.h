#pragma once
// Legitimate relationship and break-glass (issue 17 part 3): a person opens a
// child's chronology when their organisation has the child on its caseload
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
#include "gateway/net/http.h"
#include "gateway/security/principal.h"
#include "gateway/security/user_rules.h"
#include "gateway/security/visibility.h"

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

}  // namespace gw::safeguarding
