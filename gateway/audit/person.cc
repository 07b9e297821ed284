#include "gateway/audit/person.h"

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
