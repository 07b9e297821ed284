#include "gateway/safeguarding/break_glass.h"

#include "gateway/audit/audit_rows.h"
#include "gateway/audit/person.h"
#include "gateway/common/clock.h"
#include "gateway/common/json_out.h"
#include "gateway/fhir/responses.h"
#include "gateway/model/cpis_plan.h"
#include "gateway/model/resource_text.h"

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
  audit::system_agent_members(o, who, false);
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

bool related(const security::Principal& who, const security::Policy& policy, events::Lookup& lookup,
             const std::string& patient_id, bool named_in_resource) {
  return named_in_resource || policy.allows_operation(who, "admin") || lookup.in_caseload(patient_id, who.ods);
}

Gate relationship_gate(const net::Request& req, const security::Policy& policy, events::Lookup& lookup,
                       const std::string& patient_id, bool named_in_resource, std::string_view what) {
  const auto& who = req.principal;
  Gate g;
  if (related(who, policy, lookup, patient_id, named_in_resource)) return g;
  auto r = break_glass_reason(req, policy.users());
  if (!r) {
    g.verdict = Gate::Verdict::bad_reason;
    g.error = r.error();
    return g;
  }
  if (!*r) {
    g.verdict = Gate::Verdict::refused;
    g.error = make_error(Errc::forbidden,
                         "this child is not on your organisation's caseload (no GP registration, managing "
                         "organisation, care team or episode of care names " + who.ods +
                             "). If you must see " + std::string(what) +
                             " now, repeat the request with an X-Break-Glass-Reason header saying why (" +
                             std::to_string(policy.users().min_reason) + " to " +
                             std::to_string(policy.users().max_reason) +
                             " characters): the access is then allowed for that request, audited with the reason, "
                             "and your organisation's Caldicott guardian is told.",
                         "X-Break-Glass-Reason");
    return g;
  }
  if (!who.person) {
    g.verdict = Gate::Verdict::needs_person;
    return g;
  }
  g.verdict = Gate::Verdict::break_glass;
  g.reason = std::move(**r);
  return g;
}

namespace {

// "Patient/<id>" from a Reference's reference ("" otherwise).
std::string patient_of(const json::Value& resource) {
  for (const char* k : {"subject", "patient"}) {
    const json::Value* ref = json::member(resource, k);
    if (!ref || !ref->IsObject()) continue;
    std::string_view r = json::get_string(*ref, "reference").value_or("");
    if (r.rfind("Patient/", 0) == 0 && r.size() > 8 && r.find('/', 8) == std::string_view::npos)
      return std::string(r.substr(8));
  }
  return {};
}

}  // namespace

GatedRead gated_read(const security::Principal& who, const security::Relationships& rules, std::string_view type,
                     std::string_view interaction, const json::Value& resource) {
  GatedRead out;
  if (!who.person) return out;
  const auto* rule = rules.rule(type, interaction);
  if (!rule || !security::Relationships::gates(*rule, resource)) return out;
  out.patient_id = patient_of(resource);
  if (out.patient_id.empty()) return out;
  out.gated = true;
  for (const auto& e : rule->related_by)
    if (security::names_any(resource, e, who.ods)) out.named = true;
  return out;
}

net::Response gate_refusal(const Gate& g, const char* route) {
  if (g.verdict == Gate::Verdict::needs_person) return fhir::person_required_response("Break-glass", route);
  return fhir::outcome_response(g.error, route);
}

Result<write::Request> break_glass_record(const net::Request& req, const std::string& patient_id,
                                          const std::string& what, const std::string& action,
                                          const std::string& entity, const std::string& detail,
                                          const std::string& reason) {
  const auto& who = req.principal;
  write::Request w;
  w.who = who;
  w.request_id = req.audit_id();
  w.internal = true;
  w.purpose = std::string(kPurposeBreakGlass);
  auto doc = json::parse(break_glass_event(who, patient_id, what, clock::iso_now()));
  if (!doc) return doc.error();
  write::Entry e;
  e.method = write::Method::put;
  e.type = "AuditEvent";
  e.id = model::new_uuid();
  json::set(*doc, "id", std::string_view(e.id), doc->GetAllocator());
  e.resource = std::make_shared<json::Document>(std::move(*doc));
  w.entries.push_back(std::move(e));
  const std::string patient_ref = "Patient/" + patient_id;
  w.audit.push_back(audit::row(who, action, entity, 200, req.audit_id(), patient_ref, detail));
  w.audit.push_back(audit::row(who, "break-glass", what, 200, req.audit_id(), patient_ref,
                               "break-glass reason: " + reason));
  for (auto& a : w.audit) a.purpose = std::string(kPurposeBreakGlass);
  return w;
}

}  // namespace gw::safeguarding
