#include "gateway/audit/balp.h"

#include <charconv>

#include "gateway/audit/person.h"
#include "gateway/common/json_out.h"

namespace gw::audit {

namespace {

constexpr std::string_view kDcm = "http://dicom.nema.org/resources/ontology/DCM";
constexpr std::string_view kEventType = "http://terminology.hl7.org/CodeSystem/audit-event-type";
constexpr std::string_view kRestful = "http://hl7.org/fhir/restful-interaction";
constexpr std::string_view kEntityType = "http://terminology.hl7.org/CodeSystem/audit-entity-type";
constexpr std::string_view kObjectRole = "http://terminology.hl7.org/CodeSystem/object-role";
constexpr std::string_view kActReason = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
constexpr std::string_view kPurposeSystem = "https://cpis-gateway.nhs.uk/CodeSystem/purpose-of-use";
constexpr std::string_view kParticipation = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";
constexpr std::string_view kOds = "https://fhir.nhs.uk/Id/ods-organization-code";
constexpr std::string_view kGateway = "cpis-gateway";

// How each stored action is typed. Interactions of the FHIR REST API keep
// BALP's own codes; the gateway's other events carry DICOM event types with
// a subtype of the gateway's code system.
struct Kind {
  std::string_view action;
  std::string_view type_system, type_code, type_display;
  std::string_view subtype_system, subtype_code, subtype_display;
  char fhir_action;  // C R U D E
};

constexpr Kind kKinds[] = {
    {"read", kEventType, "rest", "Restful Operation", kRestful, "read", "read", 'R'},
    {"vread", kEventType, "rest", "Restful Operation", kRestful, "vread", "vread", 'R'},
    {"history", kEventType, "rest", "Restful Operation", kRestful, "history-instance", "history-instance", 'R'},
    {"search", kEventType, "rest", "Restful Operation", kRestful, "search-type", "search-type", 'E'},
    {"create", kEventType, "rest", "Restful Operation", kRestful, "create", "create", 'C'},
    {"update", kEventType, "rest", "Restful Operation", kRestful, "update", "update", 'U'},
    {"delete", kEventType, "rest", "Restful Operation", kRestful, "delete", "delete", 'D'},
    {"transaction", kEventType, "rest", "Restful Operation", kRestful, "transaction", "transaction", 'E'},
    {"batch", kEventType, "rest", "Restful Operation", kRestful, "batch", "batch", 'E'},
    {"operation", kEventType, "rest", "Restful Operation", kRestful, "operation", "operation", 'E'},
    {"ingest", kDcm, "110107", "Import", kSubtypeSystem, "ingest", "Legacy message or file record received", 'C'},
    {"disclose", kDcm, "110106", "Export", kSubtypeSystem, "disclose", "Disclosure decided for a recipient", 'R'},
    {"notify", kDcm, "110106", "Export", kSubtypeSystem, "notify", "Delivery attempt", 'R'},
    {"replay", kDcm, "110100", "Application Activity", kSubtypeSystem, "replay", "Kept message replayed", 'E'},
    {"admin", kDcm, "110100", "Application Activity", kSubtypeSystem, "admin", "Administrative action", 'E'},
    {"audit-search", kEventType, "rest", "Restful Operation", kSubtypeSystem, "audit-search", "Audit trail searched", 'E'},
    {"audit-read", kEventType, "rest", "Restful Operation", kSubtypeSystem, "audit-read", "Audit event read", 'R'},
    {"report", kDcm, "110100", "Application Activity", kSubtypeSystem, "report", "Data-flow report", 'E'},
    {"break-glass", kDcm, "110113", "Security Alert", kSubtypeSystem, "break-glass", "Break-glass access", 'R'},
};

const Kind& kind_of(std::string_view action) {
  for (const auto& k : kKinds)
    if (k.action == action) return k;
  static constexpr Kind kOther{"", kDcm, "110100", "Application Activity", kSubtypeSystem, "", "", 'E'};
  return kOther;
}

std::string_view outcome_code(std::string_view outcome) {
  if (outcome == "success") return "0";
  if (outcome == "retry") return "4";   // minor failure: tried again
  if (outcome == "dead") return "12";   // major failure: given up
  return "8";                           // serious failure
}

bool is_v3_reason(std::string_view code) {
  for (std::string_view c : {"TREAT", "ETREAT", "HOPERAT", "HSYSADMIN", "COC", "PUBHLTH", "HPAYMT", "PATRQT", "BTG"})
    if (code == c) return true;
  return false;
}

bool is_reference(std::string_view s) {
  auto slash = s.find('/');
  return slash != std::string_view::npos && slash > 0 && slash + 1 < s.size() &&
         s.find_first_of("?# ") == std::string_view::npos;
}

void organisation(json::Out& o, std::string_view ods, std::string_view system) {
  o.w.StartObject();
  if (!ods.empty()) {
    o.w.Key("identifier");
    o.w.StartObject();
    o.kv("system", kOds);
    o.kv("value", ods);
    o.w.EndObject();
  }
  if (!system.empty()) o.kv("display", system);
  o.w.EndObject();
}

void gateway_agent(json::Out& o, std::string_view role_code, std::string_view role_display) {
  o.w.StartObject();
  o.w.Key("type");
  o.codeable(kDcm, role_code, role_display);
  o.w.Key("who");
  o.w.StartObject();
  o.kv("display", kGateway);
  o.w.EndObject();
  o.w.Key("requestor");
  o.w.Bool(false);
  o.w.EndObject();
}

}  // namespace

std::string trail_id(int64_t seq) { return std::string(kTrailIdPrefix) + std::to_string(seq); }

std::optional<int64_t> seq_of_trail_id(std::string_view id) {
  if (!id.starts_with(kTrailIdPrefix)) return std::nullopt;
  id.remove_prefix(kTrailIdPrefix.size());
  int64_t seq = 0;
  auto [p, ec] = std::from_chars(id.data(), id.data() + id.size(), seq);
  if (ec != std::errc() || p != id.data() + id.size() || seq <= 0) return std::nullopt;
  return seq;
}

std::string balp_event(const store::AuditRecord& r) {
  const Kind& k = kind_of(r.action);
  const bool outward = r.action == "disclose" || r.action == "notify";
  json::Out o;
  o.w.StartObject();
  o.kv("resourceType", "AuditEvent");
  o.kv("id", trail_id(r.seq));
  o.w.Key("meta");
  o.w.StartObject();
  o.kv("lastUpdated", r.ts);
  o.w.EndObject();
  o.w.Key("type");
  o.coding(k.type_system, k.type_code, k.type_display);
  o.w.Key("subtype");
  o.w.StartArray();
  if (!k.subtype_code.empty()) o.coding(k.subtype_system, k.subtype_code, k.subtype_display);
  else o.coding(kSubtypeSystem, r.action);
  o.w.EndArray();
  o.w.Key("action");
  o.s(std::string_view(&k.fhir_action, 1));
  o.kv("recorded", r.ts);
  o.kv("outcome", outcome_code(r.outcome));
  if (!r.detail.empty()) o.kv("outcomeDesc", r.detail);
  if (!r.purpose.empty()) {
    o.w.Key("purposeOfEvent");
    o.w.StartArray();
    o.codeable(is_v3_reason(r.purpose) ? kActReason : kPurposeSystem, r.purpose);
    o.w.EndArray();
  }

  o.w.Key("agent");
  o.w.StartArray();
  // The organisation and system that acted: the client of a request, the
  // sender of a message, or the recipient of a disclosure.
  o.w.StartObject();
  o.w.Key("type");
  if (outward) o.codeable(kDcm, "110152", "Destination Role ID");
  else o.codeable(kDcm, "110153", "Source Role ID");
  o.w.Key("who");
  organisation(o, r.actor_ods, r.actor_system);
  if (!r.actor_role.empty()) {
    o.w.Key("role");
    o.w.StartArray();
    o.w.StartObject();
    o.kv("text", r.actor_role);
    o.w.EndObject();
    o.w.EndArray();
  }
  if (!r.actor_system.empty()) o.kv("name", r.actor_system);
  o.w.Key("requestor");
  o.w.Bool(!outward && r.person.empty());
  o.w.EndObject();
  if (auto p = person_of_record(r.person)) {
    // The user a verified token named (security/user_tokens.h).
    person_agent(o, *p);
  } else if (!r.person.empty()) {
    o.w.StartObject();
    o.w.Key("type");
    o.codeable(kParticipation, "IRCP", "information recipient");
    o.w.Key("who");
    o.w.StartObject();
    o.kv("display", r.person);
    o.w.EndObject();
    o.w.Key("requestor");
    o.w.Bool(true);
    o.w.EndObject();
  }
  if (outward) {
    // Whose record left, and the gateway that sent it.
    if (!r.src_ods.empty() || !r.src_system.empty()) {
      o.w.StartObject();
      o.w.Key("type");
      o.codeable(kDcm, "110153", "Source Role ID");
      o.w.Key("who");
      organisation(o, r.src_ods, r.src_system);
      o.w.Key("requestor");
      o.w.Bool(false);
      o.w.EndObject();
    }
    gateway_agent(o, "110153", "Source Role ID");
  } else {
    gateway_agent(o, "110152", "Destination Role ID");
  }
  o.w.EndArray();

  o.w.Key("source");
  o.w.StartObject();
  o.kv("site", kGateway);
  o.w.Key("observer");
  o.w.StartObject();
  o.kv("display", std::string(kGateway) + (r.channel.empty() ? "" : " " + r.channel));
  o.w.EndObject();
  o.w.Key("type");
  o.w.StartArray();
  o.coding("http://terminology.hl7.org/CodeSystem/security-source-type", "4", "Application Server");
  if (!r.channel.empty()) o.coding(kChannelSystem, r.channel);
  o.w.EndArray();
  o.w.EndObject();

  o.w.Key("entity");
  o.w.StartArray();
  if (!r.patient_ref.empty()) {
    o.w.StartObject();
    o.w.Key("what");
    o.w.StartObject();
    o.kv("reference", r.patient_ref);
    o.w.EndObject();
    o.w.Key("type");
    o.coding(kEntityType, "1", "Person");
    o.w.Key("role");
    o.coding(kObjectRole, "1", "Patient");
    o.w.EndObject();
  }
  if (!r.entity.empty() && r.entity != r.patient_ref) {
    o.w.StartObject();
    o.w.Key("what");
    o.w.StartObject();
    if (is_reference(r.entity)) o.kv("reference", r.entity);
    else o.kv("display", r.entity);
    o.w.EndObject();
    o.w.Key("type");
    o.coding(kEntityType, "2", "System Object");
    o.w.Key("role");
    if (r.action == "search" || r.action == "audit-search") o.coding(kObjectRole, "24", "Query");
    else o.coding(kObjectRole, "4", "Domain Resource");
    if (!r.topic.empty()) o.kv("name", r.topic);
    if (r.items > 0 || r.latency_ms > 0) {
      o.w.Key("detail");
      o.w.StartArray();
      if (r.items > 0) {
        o.w.StartObject();
        o.kv("type", "items");
        o.kv("valueString", std::to_string(r.items));
        o.w.EndObject();
      }
      if (r.latency_ms > 0) {
        o.w.StartObject();
        o.kv("type", "latency-ms");
        o.kv("valueString", std::to_string(r.latency_ms));
        o.w.EndObject();
      }
      o.w.EndArray();
    }
    o.w.EndObject();
  }
  if (!r.request_id.empty()) {
    o.w.StartObject();
    o.w.Key("what");
    o.w.StartObject();
    o.w.Key("identifier");
    o.w.StartObject();
    o.kv("system", kRequestIdSystem);
    o.kv("value", r.request_id);
    o.w.EndObject();
    o.w.EndObject();
    o.w.Key("type");
    o.coding(kEntityType, "2", "System Object");
    o.w.Key("role");
    o.coding(kObjectRole, "3", "Report");
    o.w.EndObject();
  }
  o.w.EndArray();
  o.w.EndObject();
  return o.text();
}

std::vector<std::string> actions_of_type(std::string_view code) {
  std::vector<std::string> out;
  for (const auto& k : kKinds)
    if (k.type_code == code) out.emplace_back(k.action);
  return out;
}

std::optional<std::string> action_of_subtype(std::string_view code) {
  for (const auto& k : kKinds)
    if (k.subtype_code == code) return std::string(k.action);
  return std::nullopt;
}

std::optional<std::string> outcome_of_code(std::string_view code) {
  if (code == "0") return "success";
  if (code == "4") return "retry";
  if (code == "8") return "failure";
  if (code == "12") return "dead";
  return std::nullopt;
}

}  // namespace gw::audit
