#include "gateway/audit/audit_rows.h"

namespace gw::audit {

store::AuditRow row(const security::Principal& who, std::string action, std::string entity, int status,
                    std::string request_id, std::string patient_ref, std::string detail) {
  store::AuditRow a;
  a.actor_ods = who.ods;
  a.actor_role = who.role;
  a.actor_system = who.system;
  if (who.person) a.person = who.person->recorded();
  a.purpose = std::string(default_purpose(action));
  a.action = std::move(action);
  a.entity = std::move(entity);
  a.outcome = status < 400 ? "success" : "failure";
  a.http_status = status;
  a.request_id = std::move(request_id);
  a.patient_ref = std::move(patient_ref);
  a.detail = std::move(detail);
  a.channel = std::string(kChannelRest);
  auto slash = a.entity.find_first_of("/?");
  a.topic = a.entity.substr(0, slash);
  return a;
}

std::string_view default_purpose(std::string_view action) {
  if (action == "audit-search" || action == "audit-read" || action == "report") return kPurposeOperations;
  if (action == "admin" || action == "replay") return kPurposeSystemAdmin;
  return kPurposeTreatment;
}

void set_source(store::AuditRow& a, std::string_view source) {
  auto bar = source.find('|');
  a.src_ods = std::string(source.substr(0, bar));
  a.src_system = bar == std::string_view::npos ? std::string() : std::string(source.substr(bar + 1));
}

std::string audit_channel(std::string_view ingest_channel) {
  if (ingest_channel == "http" || ingest_channel.empty()) return std::string(kChannelRest);
  return std::string(ingest_channel);
}

std::string source_of(const security::Principal& who) { return who.ods + "|" + who.system; }

store::AuditRow disclosure(const security::Principal& recipient, std::string_view topic, std::string_view purpose,
                           std::string_view source, std::string entity, std::string patient_ref,
                           std::string_view channel, std::string request_id, std::string detail) {
  store::AuditRow a = row(recipient, "disclose", std::move(entity), 0, std::move(request_id), std::move(patient_ref),
                          std::move(detail));
  a.topic = std::string(topic);
  a.purpose = purpose.empty() ? std::string(kPurposeTreatment) : std::string(purpose);
  a.channel = std::string(channel);
  set_source(a, source);
  return a;
}

store::AuditRow delivery(const security::Principal& recipient, std::string_view topic, std::string_view purpose,
                         std::string_view source, Delivery outcome, int http_status, int64_t latency_ms,
                         std::string entity, std::string patient_ref, std::string_view channel,
                         std::string detail) {
  store::AuditRow a = row(recipient, "notify", std::move(entity), http_status, {}, std::move(patient_ref),
                          std::move(detail));
  a.outcome = outcome == Delivery::delivered ? "success" : outcome == Delivery::retry ? "retry" : "dead";
  a.latency_ms = outcome == Delivery::delivered ? std::max<int64_t>(latency_ms, 0) : 0;
  a.topic = std::string(topic);
  a.purpose = purpose.empty() ? std::string(kPurposeTreatment) : std::string(purpose);
  a.channel = std::string(channel);
  set_source(a, source);
  return a;
}

}  // namespace gw::audit
