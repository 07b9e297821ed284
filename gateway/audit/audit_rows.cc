#include "gateway/audit/audit_rows.h"

namespace gw::audit {

store::AuditRow row(const security::Principal& who, std::string action, std::string entity, int status,
                    std::string request_id, std::string patient_ref, std::string detail) {
  store::AuditRow a;
  a.actor_ods = who.ods;
  a.actor_role = who.role;
  a.actor_system = who.system;
  a.action = std::move(action);
  a.entity = std::move(entity);
  a.outcome = status < 400 ? "success" : "failure";
  a.http_status = status;
  a.request_id = std::move(request_id);
  a.patient_ref = std::move(patient_ref);
  a.detail = std::move(detail);
  return a;
}

}  // namespace gw::audit
