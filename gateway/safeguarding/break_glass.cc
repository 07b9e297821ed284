#include "gateway/safeguarding/break_glass.h"

#include "gateway/audit/person.h"
#include "gateway/common/json_out.h"
#include "gateway/fhir/responses.h"
#include "gateway/model/cpis_plan.h"

namespace gw::safeguarding {

namespace {

// Characters, not bytes: a reason in Welsh or with accents is not shorter.
size_t code_points(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

std::string_view trimmed(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

Result<std::optional<std::string>> break_glass_reason(const net::Request& req, const security::UserRules& rules) {
  auto h = req.header(kBreakGlassHeader);
  if (!h) return std::optional<std::string>();
  std::string_view r = trimmed(*h);
  size_t n = code_points(r);
  if (n < rules.min_reason || n > rules.max_reason)
    return make_error(Errc::invalid_input,
                      "X-Break-Glass-Reason must say why, in " + std::to_string(rules.min_reason) + " to " +
                          std::to_string(rules.max_reason) + " characters (it has " + std::to_string(n) + ")",
                      "X-Break-Glass-Reason");
  for (unsigned char c : r)
    if (c < 0x20 || c == 0x7F)
      return make_error(Errc::invalid_input, "X-Break-Glass-Reason must be plain text", "X-Break-Glass-Reason");
  return std::optional<std::string>(std::string(r));
}

std::string break_glass_event(const security::Principal& who, const std::string& patient_id, std::string_view what,
                              const std::string& recorded) {
  constexpr std::string_view kDcm = "http://dicom.nema.org/resources/ontology/DCM";
  constexpr std::string_view kActReason = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
  json::Out o;
  o.w.StartObject();
  o.kv("resourceType", "AuditEvent");
  o.w.Key("meta");
  o.w.StartObject();
  o.w.Key("tag");
  o.w.StartArray();
  o.coding(kBreakGlassTagSystem, "opened", "A record opened outside the organisation's caseload");
  o.w.EndArray();
  o.w.EndObject();
  o.w.Key("type");
  o.coding(kDcm, "110113", "Security Alert");
  o.w.Key("subtype");
  o.w.StartArray();
  o.coding(kBreakGlassTagSystem, "break-glass", "Break-glass access");
  o.w.EndArray();
  o.kv("action", "R");
  o.kv("recorded", recorded);
  o.kv("outcome", "0");
  o.w.Key("purposeOfEvent");
  o.w.StartArray();
  o.codeable(kActReason, kPurposeBreakGlass, "break the glass");
  o.w.EndArray();
  o.w.Key("agent");
  o.w.StartArray();
  // The organisation and system the person acted through (certificate O=, CN=).
  o.w.StartObject();
  o.w.Key("type");
  o.codeable(kDcm, "110153", "Source Role ID");
  o.w.Key("who");
  o.w.StartObject();
  o.kv("type", "Organization");
  o.w.Key("identifier");
  o.w.StartObject();
  o.kv("system", model::cpis::kOdsSystem);
  o.kv("value", who.ods);
  o.w.EndObject();
  o.kv("display", who.system);
  o.w.EndObject();
  o.w.Key("role");
  o.w.StartArray();
  o.w.StartObject();
  o.kv("text", who.role);
  o.w.EndObject();
  o.w.EndArray();
  o.kv("name", who.system);
  o.w.Key("requestor");
  o.w.Bool(false);
  o.w.EndObject();
  if (who.person) audit::person_agent(o, *who.person, kActReason, kPurposeBreakGlass, "break the glass");
  o.w.EndArray();
  o.w.Key("source");
  o.w.StartObject();
  o.kv("site", "cpis-gateway");
  o.w.Key("observer");
  o.w.StartObject();
  o.kv("display", "cpis-gateway");
  o.w.EndObject();
  o.w.EndObject();
  o.w.Key("entity");
  o.w.StartArray();
  o.w.StartObject();
  o.w.Key("what");
  o.w.StartObject();
  o.kv("reference", "Patient/" + patient_id);
  o.w.EndObject();
  o.w.Key("type");
  o.coding("http://terminology.hl7.org/CodeSystem/audit-entity-type", "1", "Person");
  o.w.Key("role");
  o.coding("http://terminology.hl7.org/CodeSystem/object-role", "1", "Patient");
  o.w.EndObject();
  o.w.StartObject();
  o.w.Key("type");
  o.coding("http://terminology.hl7.org/CodeSystem/audit-entity-type", "2", "System Object");
  o.w.Key("role");
  o.coding("http://terminology.hl7.org/CodeSystem/object-role", "24", "Query");
  o.kv("description", what);
  o.w.EndObject();
  o.w.EndArray();
  o.w.EndObject();
  return o.text();
}

}  // namespace gw::safeguarding
