#pragma once
// One audit row: who (organisation, role, system) did what to which entity,
// about whom, with what outcome. Every writer builds its rows here, so the
// trail has one shape whatever the channel.
#include <string>

#include "gateway/security/principal.h"
#include "gateway/store/store.h"

namespace gw::audit {

// status: an HTTP-like outcome; below 400 is a success. patient_ref
// ("Patient/<id>") when the entity concerns one person; detail is free text
// that never holds a patient identifier.
store::AuditRow row(const security::Principal& who, std::string action, std::string entity, int status,
                    std::string request_id = {}, std::string patient_ref = {}, std::string detail = {});

}  // namespace gw::audit
