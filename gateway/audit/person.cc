#include "gateway/audit/person.h"

#include "gateway/model/cpis_plan.h"

namespace gw::audit {

void person_agent(json::Out& o, const security::Person& p, std::string_view purpose_system,
                  std::string_view purpose_code, std::string_view purpose_display) {
  o.w.StartObject();
  o.w.Key("type");
  o.codeable("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "IRCP", "information recipient");
  o.w.Key("role");
  o.w.StartArray();
  o.codeable(kJobRoleSystem, p.job_role);
  o.w.EndArray();
  o.w.Key("who");
  o.w.StartObject();
  o.kv("type", "Practitioner");
  o.w.Key("identifier");
  o.w.StartObject();
  o.kv("system", p.issuer);
  o.kv("value", p.id);
  o.w.EndObject();
  o.kv("display", p.name);
  o.w.EndObject();
  o.kv("name", p.name);
  o.w.Key("requestor");
  o.w.Bool(true);
  if (!purpose_code.empty()) {
    o.w.Key("purposeOfUse");
    o.w.StartArray();
    o.codeable(purpose_system, purpose_code, purpose_display);
    o.w.EndArray();
  }
  o.w.EndObject();
}

void system_agent_members(json::Out& o, const security::Principal& system, bool requestor) {
  o.w.Key("type");
  o.codeable("http://dicom.nema.org/resources/ontology/DCM", "110153", "Source Role ID");
  o.w.Key("who");
  o.w.StartObject();
  o.kv("type", "Organization");
  o.w.Key("identifier");
  o.w.StartObject();
  o.kv("system", model::cpis::kOdsSystem);
  o.kv("value", system.ods);
  o.w.EndObject();
  o.kv("display", system.system);
  o.w.EndObject();
  // The certificate's role (OU=), the gateway's own role names.
  o.w.Key("role");
  o.w.StartArray();
  o.w.StartObject();
  o.kv("text", system.role);
  o.w.EndObject();
  o.w.EndArray();
  o.kv("name", system.system);
  o.w.Key("requestor");
  o.w.Bool(requestor);
}

std::optional<security::Person> person_of_record(std::string_view recorded) {
  security::Person p;
  std::string* parts[] = {&p.id, &p.job_role, &p.name};
  for (std::string* part : parts) {
    auto bar = recorded.find('|');
    if (bar == std::string_view::npos) return std::nullopt;
    *part = std::string(recorded.substr(0, bar));
    recorded.remove_prefix(bar + 1);
  }
  p.issuer = std::string(recorded);
  if (p.id.empty() || p.issuer.empty()) return std::nullopt;
  return p;
}

}  // namespace gw::audit
