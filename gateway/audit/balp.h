#pragma once
// The audit trail as FHIR R4 AuditEvents in the shape of IHE Basic Audit Log
// Patterns (BALP): one stored row (store::AuditRecord) becomes one AuditEvent
// with its type and subtype, action, recorded time, outcome, purpose of use,
// agents (the organisation and system, the person when known, the gateway,
// and for a disclosure the organisation whose record left), the source
// (gateway and channel) and entities (the patient, what was touched, the
// request). Rendered on read: the trail stores compact rows (docs/AUDIT.md).
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/store/store.h"

namespace gw::audit {

inline constexpr std::string_view kTrailIdPrefix = "trail-";
inline constexpr std::string_view kSubtypeSystem = "https://cpis-gateway.nhs.uk/CodeSystem/audit-subtype";
inline constexpr std::string_view kChannelSystem = "https://cpis-gateway.nhs.uk/CodeSystem/audit-channel";
inline constexpr std::string_view kRequestIdSystem = "https://cpis-gateway.nhs.uk/Id/request-id";

// "trail-<seq>" and back.
std::string trail_id(int64_t seq);
std::optional<int64_t> seq_of_trail_id(std::string_view id);

// The AuditEvent JSON text of one record.
std::string balp_event(const store::AuditRecord& r);

// BALP search tokens to stored values. type: "rest", "110107"... -> the
// actions of that type; subtype: "read", "search-type", "ingest"... -> the
// action; outcome: "0", "4", "8", "12" -> the stored outcome. Empty / nullopt
// when the code means nothing here (the caller answers 400 naming it).
std::vector<std::string> actions_of_type(std::string_view code);
std::optional<std::string> action_of_subtype(std::string_view code);
std::optional<std::string> outcome_of_code(std::string_view code);

}  // namespace gw::audit
