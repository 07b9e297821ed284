#include "gateway/events/matcher.h"

#include <algorithm>

#include "gateway/fhir/resource_text.h"
#include "gateway/identity/nhs_number.h"

namespace gw::events {

namespace {

bool token_matches(const std::vector<store::IndexEntry>& index, const std::string& param, const std::string& want) {
  std::string system, value = want;
  bool has_system = false;
  if (auto bar = want.find('|'); bar != std::string::npos) {
    system = want.substr(0, bar);
    value = want.substr(bar + 1);
    has_system = true;
  }
  for (const auto& e : index) {
    if (e.param != param || e.value != value) continue;
    if (!has_system || e.system == system) return true;
  }
  return false;
}

// Any coding in code/category equal to system|code (or code alone).
bool has_code(const json::Value& v, const std::string& want) {
  std::string system, code = want;
  if (auto bar = want.find('|'); bar != std::string::npos) {
    system = want.substr(0, bar);
    code = want.substr(bar + 1);
  }
  auto check_cc = [&](const json::Value& cc) {
    const json::Value* cod = json::member(cc, "coding");
    if (!cod || !cod->IsArray()) return false;
    for (const auto& c : cod->GetArray()) {
      auto cs = json::get_string(c, "code");
      auto sy = json::get_string(c, "system");
      if (cs && *cs == code && (system.empty() || (sy && *sy == system))) return true;
    }
    return false;
  };
  for (const char* k : {"code", "category"}) {
    const json::Value* m = json::member(v, k);
    if (!m) continue;
    if (m->IsArray()) {
      for (const auto& cc : m->GetArray())
        if (cc.IsObject() && check_cc(cc)) return true;
    } else if (m->IsObject() && check_cc(*m)) {
      return true;
    }
  }
  return false;
}

// Sensitivity labels in meta.security.
struct Labels {
  bool sexual_health = false;  // R, STD, HIV, SEX
  bool psy = false, sud = false;
};

Labels labels_of(const json::Value& r) {
  Labels l;
  const json::Value* meta = json::member(r, "meta");
  const json::Value* sec = meta ? json::member(*meta, "security") : nullptr;
  if (!sec || !sec->IsArray()) return l;
  for (const auto& c : sec->GetArray()) {
    auto code = json::get_string(c, "code");
    if (!code) continue;
    if (*code == "R" || *code == "STD" || *code == "HIV" || *code == "SEX") l.sexual_health = true;
    if (*code == "PSY") l.psy = true;
    if (*code == "SUD") l.sud = true;
  }
  return l;
}

constexpr std::string_view kDisclosableTo = "https://cpis-gateway.nhs.uk/StructureDefinition/disclosable-to";

// disclosure-audience: the service that recorded the concern decided who may
// hear of it (disclosable-to); of those audiences, only the organisations that
// care for the child do. A role the topic gives no audience hears nothing.
bool disclosure_audience_allows(const Topic& topic, const SubscriptionSpec& sub, const std::string& patient_id,
                                const json::Value& resource, Lookup& lookup, Decision& d) {
  auto audience = topic.audiences.find(sub.owner.role);
  if (audience == topic.audiences.end() || !disclosable_to(resource, audience->second)) {
    d.reason = "audience";
    return false;
  }
  return !patient_id.empty() && lookup.in_caseload(patient_id, sub.owner.ods);
}

// One function per route named in topics.cc kRoutes. May fill d (for
// example with the people concerned); sets d.reason when it refuses.
bool route_allows(const Topic& topic, const SubscriptionSpec& sub, const std::string& patient_id,
                  const json::Value& resource, Lookup& lookup, Decision& d) {
  if (topic.route == "caseload") return !patient_id.empty() && lookup.in_caseload(patient_id, sub.owner.ods);
  if (topic.route == "disclosure-audience")
    return disclosure_audience_allows(topic, sub, patient_id, resource, lookup, d);
  d.reason = "route";
  return false;
}

// "Patient/<id>" of the Patient a subject/patient reference names only by
// NHS number (a logical reference), or "".
std::string patient_ref_by_nhs_number(const json::Value& resource, Lookup& lookup) {
  for (const char* k : {"subject", "patient"}) {
    const json::Value* ref = json::member(resource, k);
    const json::Value* ident = ref && ref->IsObject() ? json::member(*ref, "identifier") : nullptr;
    if (!ident || !ident->IsObject()) continue;
    if (json::get_string(*ident, "system").value_or("") != identity::kNhsNumberSystem) continue;
    auto nhs = identity::normalise_nhs_number(json::get_string(*ident, "value").value_or(""));
    if (!nhs) continue;
    if (auto id = lookup.patient_id_by_nhs_number(*nhs)) return "Patient/" + *id;
  }
  return {};
}

}  // namespace

bool names_organisation(const json::Value& v, const std::string& ods) {
  if (v.IsObject()) {
    if (auto ref = json::get_string(v, "reference"); ref && *ref == "Organization/" + ods) return true;
    if (const json::Value* id = json::member(v, "identifier"); id && id->IsObject()) {
      auto sys = json::get_string(*id, "system");
      auto val = json::get_string(*id, "value");
      if (val && *val == ods && (!sys || *sys == "https://fhir.nhs.uk/Id/ods-organization-code")) return true;
    }
    for (const auto& m : v.GetObject()) {
      std::string_view k(m.name.GetString(), m.name.GetStringLength());
      if (k == "identifier" || k == "meta" || k == "text") continue;  // the resource's own identifiers are not references
      if (names_organisation(m.value, ods)) return true;
    }
  } else if (v.IsArray()) {
    for (const auto& e : v.GetArray())
      if (names_organisation(e, ods)) return true;
  }
  return false;
}

std::string patient_ref_of(const std::string& type, const std::string& id, const json::Value& resource) {
  if (type == "Patient") return "Patient/" + id;
  for (const auto& e : fhir::index_entries(type, resource))
    if (e.param == "patient" || e.param == "subject") return e.value;
  return {};
}

bool disclosable_to(const json::Value& resource, std::string_view audience) {
  const json::Value* ext = json::member(resource, "extension");
  if (!ext || !ext->IsArray()) return false;
  for (const auto& e : ext->GetArray())
    if (json::get_string(e, "url").value_or("") == kDisclosableTo &&
        json::get_string(e, "valueCode").value_or("") == audience)
      return true;
  return false;
}

std::optional<std::string> StoreLookup::patient_id_by_nhs_number(const std::string& nhs) {
  auto r = store_.find_by_unique_key(nhs);
  if (!r) return std::nullopt;
  return *r;
}

std::optional<json::Document> StoreLookup::patient(const std::string& id) {
  auto r = store_.read("Patient", id);
  if (!r) return std::nullopt;
  auto d = json::parse(r->body);
  if (!d) return std::nullopt;
  return std::move(*d);
}

bool StoreLookup::in_caseload(const std::string& patient_id, const std::string& ods) {
  if (auto p = patient(patient_id)) {
    for (const char* k : {"generalPractitioner", "managingOrganization"})
      if (const json::Value* m = json::member(*p, k); m && names_organisation(*m, ods)) return true;
  }
  for (const char* type : {"CareTeam", "EpisodeOfCare"}) {
    store::SearchQuery q;
    q.type = type;
    q.params.push_back(store::ParamConstraint{"patient", {{"", "Patient/" + patient_id}}});
    q.count = 200;
    q.want_total = false;
    auto page = store_.search(q);
    if (!page) continue;
    for (const auto& r : page->items) {
      auto d = json::parse(r.body);
      if (d && names_organisation(*d, ods)) return true;
    }
  }
  return false;
}

Decision decide(const Topic& topic, const SubscriptionSpec& sub, const store::ChangeRow& change,
                const json::Value& resource, Lookup& lookup) {
  Decision d;
  if (!topic.fires() || !topic.triggered_by(change.type, change.interaction)) {
    d.reason = "not-triggered";
    return d;
  }
  d.patient_ref = patient_ref_of(change.type, change.id, resource);
  if (d.patient_ref.empty()) d.patient_ref = patient_ref_by_nhs_number(resource, lookup);
  std::string patient_id = d.patient_ref.rfind("Patient/", 0) == 0 ? d.patient_ref.substr(8) : std::string();
  std::optional<json::Document> patient_doc;
  auto patient = [&]() -> const json::Value* {
    if (change.type == "Patient") return &resource;
    if (!patient_doc && !patient_id.empty()) patient_doc = lookup.patient(patient_id);
    return patient_doc ? &*patient_doc : nullptr;
  };
  auto index = fhir::index_entries(change.type, resource);
  for (const auto& f : sub.filters) {
    if (!f.resource.empty() && f.resource != change.type) {
      d.reason = "filter-resource";
      return d;
    }
    bool any = false;
    for (const auto& v : f.values) {
      if (f.parameter == "identifier") {
        any = token_matches(index, "identifier", v);
      } else if (f.parameter == "patient") {
        any = !d.patient_ref.empty() && (v == d.patient_ref || v.ends_with("/" + d.patient_ref));
      } else if (f.parameter == "patient:identifier") {
        const json::Value* p = patient();
        any = p && token_matches(fhir::index_entries("Patient", *p), "identifier", v);
      } else if (f.parameter == "organization") {
        any = !patient_id.empty() && lookup.in_caseload(patient_id, v);
      } else if (f.parameter == "code") {
        any = has_code(resource, v);
      }
      if (any) break;
    }
    if (!any) {
      d.reason = "filter";
      return d;
    }
  }
  // Route: a subscriber from an organisation hears only about the people the
  // topic's route puts in its care.
  if (!topic.unrestricted(sub.owner.role) && !route_allows(topic, sub, patient_id, resource, lookup, d)) {
    if (d.reason.empty()) d.reason = "caseload";
    return d;
  }
  d.content = sub.content;
  Labels l = labels_of(resource);
  if (l.sexual_health && sub.owner.role != "sexual-health") {
    // Not even that something changed: the existence of a sexual-health
    // record is itself sensitive (DESIGN.md, Sensitive data).
    d.reason = "sensitivity";
    return d;
  }
  bool psy_ok = sub.owner.role == "adult-mental-health" || sub.owner.role == "camhs";
  bool sud_ok = sub.owner.role == "substance-misuse";
  if (d.content == "full-resource" && ((l.psy && !psy_ok) || (l.sud && !sud_ok))) d.content = "id-only";
  if (change.interaction == "delete" && d.content == "full-resource") d.content = "id-only";
  d.notify = true;
  return d;
}

}  // namespace gw::events
