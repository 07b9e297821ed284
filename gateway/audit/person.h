#pragma once
// The person behind an access, as a BALP user agent (IHE BALP "user" agent:
// who.identifier = the issuer's id of the user, name, the national RBAC job
// role as the agent's role), shared by the audit trail's AuditEvents, the
// CP-IS access record and the break-glass record.
#include <optional>
#include <string_view>

#include "gateway/common/json_out.h"
#include "gateway/security/principal.h"

namespace gw::audit {

// The code system of the token's role claim (national RBAC job roles).
inline constexpr std::string_view kJobRoleSystem = "https://fhir.nhs.uk/Id/sds-role-code";

// One agent object: the user, requestor true, with the purpose of use when given.
void person_agent(json::Out& o, const security::Person& p, std::string_view purpose_system = {},
                  std::string_view purpose_code = {}, std::string_view purpose_display = {});

// The members of the agent for the system a request came through, BALP's
// client: type Source Role ID, who = the organisation (certificate O=) shown
// as the system (CN=), role = the gateway role (OU=), name, requestor. The
// caller opens and closes the agent object, so it may add members (network).
void system_agent_members(json::Out& o, const security::Principal& system, bool requestor);

// A Person from the audit row's person column (Person::recorded()), or
// nullopt when the column holds something else (an older free-text name).
std::optional<security::Person> person_of_record(std::string_view recorded);

}  // namespace gw::audit
