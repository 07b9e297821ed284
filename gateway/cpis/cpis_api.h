#pragma once
// The read side of the national CP-IS FHIR R4 API (CPIS.md section 2), so a
// client written for NHS England's service works against the gateway
// unchanged:
//   GET /fhir/CareTeam?patient:identifier=https://fhir.nhs.uk/Id/nhs-number|{nhs}
//       (headers IsUnscheduledAccessEvent: true|false, TraceID) — the plans in scope;
//   GET /fhir/AuditEvent?patient:identifier=…  — the access trail;
//   GET /fhir/Flag?patient:identifier=…       — one derived Flag per plan in scope
//       plus the stored Flags the caller may see.
// An unscheduled access to a child with a plan in scope is recorded as a BALP
// AuditEvent, committed before the answer leaves; that AuditEvent is what the
// cpis-access topic notifies the responsible local authority of.
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "gateway/common/json.h"
#include "gateway/net/http.h"
#include "gateway/security/policy.h"
#include "gateway/security/visibility.h"
#include "gateway/store/store.h"
#include "gateway/write/write_service.h"

namespace gw::cpis {


inline constexpr std::string_view kAccessTagSystem = "https://cpis-gateway.nhs.uk/CodeSystem/cpis-access";
inline constexpr std::string_view kSpineErrorSystem = "https://fhir.nhs.uk/CodeSystem/Spine-ErrorOrWarningCode";
inline constexpr std::string_view kPlanReferenceUrl = "https://cpis-gateway.nhs.uk/StructureDefinition/cpis-plan";
inline constexpr std::string_view kRoleProfileSystem = "https://fhir.nhs.uk/Id/sds-role-profile-id";
inline constexpr std::string_view kTraceIdSystem = "https://cpis-gateway.nhs.uk/Id/trace-id";
// Care settings query CP-IS; commissioners and admins see every access record.
inline constexpr std::string_view kQueryOperation = "cpis-query";
inline constexpr std::string_view kTrailOperation = security::kTrailOperation;
// The care-role view of the trail, as the national API: the 25 most recent.
inline constexpr int kRecentAccesses = 25;

// One CP-IS query as it is recorded.
struct Access {
  bool unscheduled = false;
  security::Principal caller;
  std::string remote;                     // peer address
  std::string user_role_profile;          // NHSD-Session-URID, "" when not sent
  std::string user_name;                  // X-User-Name, "" when not sent
  std::optional<security::Person> person; // from a verified user token (security/user_tokens.h)
  std::string trace_id;                   // TraceID, "" when not sent
  std::string nhs_number;                 // normalised
  std::string patient_id;
  std::vector<std::string> plan_ids;      // CareTeam ids of the plans in scope that were served
  std::string query;                      // the raw query string (BALP query entity)
  std::string resource_type;              // the type searched (CareTeam, Flag)
  std::string recorded;                   // ISO 8601 instant
};

// The AuditEvent (BALP Query shape) recording one access, as JSON text without id.
std::string access_audit_event(const Access& a);

// The Flag derived from a plan CareTeam (not stored), as JSON text.
std::string derived_flag(const json::Value& care_team, const std::string& care_team_id);

// What CpisApi works with.
struct CpisContext {
  store::Store& store;
  write::WriteService& writes;                            // access records and audit rows
  const security::Policy& policy;
  std::function<std::string()> today;                     // YYYY-MM-DD, injectable
  std::function<std::string(const net::Request&)> base;  // ".../fhir" for fullUrls
};

class CpisApi {
 public:
  explicit CpisApi(CpisContext ctx) : ctx_(std::move(ctx)) {}

  // True when a search of `type` is answered here: every AuditEvent search;
  // a CareTeam search that carries the national API's headers
  // (IsUnscheduledAccessEvent or TraceID); a Flag search by NHS number alone
  // from a role that may query CP-IS. Other searches stay with the REST API.
  bool handles(const std::string& type, const net::Request& req) const;
  // Answers the search (called on a network thread; reads run on the store's pool).
  void search(const std::string& type, net::Request req, net::Respond respond);

 private:
  struct Query;
  void care_team(net::Request req, net::Respond respond, Query q);
  void flags(net::Request req, net::Respond respond, Query q);
  void audit_events(net::Request req, net::Respond respond, Query q);
  void answer_after_recording(const net::Request& req, net::Respond& respond, const Query& q, const std::string& type,
                              const std::string& patient_id, std::vector<std::string> plan_ids, std::string body,
                              const char* route);

  CpisContext ctx_;
};

}  // namespace gw::cpis
