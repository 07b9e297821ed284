#include "gateway/events/patient_refs.h"

#include "gateway/identity/nhs_number.h"

namespace gw::events {

namespace {

// "Patient/<id>", ".../fhir/Patient/<id>" or ".../Patient/<id>/_history/n" -> id; "" otherwise.
std::string patient_id_of(std::string_view ref) {
  size_t at = ref.rfind("Patient/");
  if (at == std::string_view::npos || (at > 0 && ref[at - 1] != '/')) return {};
  std::string_view id = ref.substr(at + 8);
  id = id.substr(0, id.find('/'));
  return std::string(id);
}

std::string nhs_number_of(const std::string& patient_id, Lookup& lookup) {
  auto p = lookup.patient(patient_id);
  if (!p || !p->IsObject()) return {};
  if (const json::Value* ids = json::member(*p, "identifier"); ids && ids->IsArray())
    for (const auto& i : ids->GetArray())
      if (i.IsObject() && json::get_string(i, "system") == identity::kNhsNumberSystem)
        if (auto v = json::get_string(i, "value")) return std::string(*v);
  return {};
}

int identify(json::Value& ref, json::Allocator& a, Lookup& lookup) {
  if (!ref.IsObject() || json::member(ref, "identifier")) return 0;
  auto r = json::get_string(ref, "reference");
  if (!r) return 0;
  std::string id = patient_id_of(*r);
  if (id.empty()) return 0;
  std::string nhs = nhs_number_of(id, lookup);
  if (nhs.empty()) return 0;
  json::Value ident(rapidjson::kObjectType);
  json::set(ident, "system", identity::kNhsNumberSystem, a);
  json::set(ident, "value", nhs, a);
  json::set(ref, "identifier", std::move(ident), a);
  return 1;
}

}  // namespace

int identify_subjects(json::Value& resource, json::Allocator& a, Lookup& lookup) {
  if (!resource.IsObject()) return 0;
  int n = 0;
  for (const char* k : {"subject", "patient", "beneficiary"}) {
    auto it = resource.FindMember(k);
    if (it == resource.MemberEnd()) continue;
    if (it->value.IsArray()) {
      for (auto& e : it->value.GetArray()) n += identify(e, a, lookup);
    } else {
      n += identify(it->value, a, lookup);
    }
  }
  return n;
}

std::string identify_subjects_text(const std::string& served, Lookup& lookup) {
  auto d = json::parse(served);
  if (!d) return served;
  if (identify_subjects(*d, d->GetAllocator(), lookup) == 0) return served;
  return json::to_string(*d);
}

}  // namespace gw::events
