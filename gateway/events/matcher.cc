#include "gateway/events/matcher.h"

#include <algorithm>

#include "gateway/fhir/cpis_plan.h"
#include "gateway/fhir/resource_text.h"

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

// The ids of the CareTeams an AuditEvent's entities point at.
std::vector<std::string> care_teams_named(const json::Value& resource) {
  std::vector<std::string> out;
  const json::Value* entities = json::member(resource, "entity");
  if (!entities || !entities->IsArray()) return out;
  for (const auto& e : entities->GetArray()) {
    const json::Value* what = e.IsObject() ? json::member(e, "what") : nullptr;
    auto ref = what && what->IsObject() ? json::get_string(*what, "reference") : std::nullopt;
    if (ref && ref->rfind("CareTeam/", 0) == 0) out.emplace_back(ref->substr(9));
  }
  return out;
}

// plan-authority: the local authority responsible for a plan the focus names,
// and no one else (not the GP or the ED that also appear on the child's
// care teams). Read from the stored plan, not from the focus.
bool plan_authority(const SubscriptionSpec& sub, const json::Value& resource, Lookup& lookup) {
  for (const auto& id : care_teams_named(resource)) {
    auto plan = lookup.care_team(id);
    if (plan && fhir::cpis::plan_type_of(*plan) && fhir::cpis::managing_ods(*plan) == sub.owner.ods) return true;
  }
  return false;
}

std::string subject_reference(const json::Value& r) {
  const json::Value* s = json::member(r, "subject");
  return s ? std::string(json::get_string(*s, "reference").value_or("")) : std::string();
}

bool has_extension(const json::Value& r, std::string_view url) {
  const json::Value* exts = json::member(r, "extension");
  if (!exts || !exts->IsArray()) return false;
  for (const auto& x : exts->GetArray())
    if (json::get_string(x, "url").value_or("") == url) return true;
  return false;
}

// plan-authority-on-move: a plan CareTeam version that moved the plan to
// another patient because a merge retired the NHS number (the version
// carries the superseded-nhs-number mark and its subject differs from the
// version before), told only to the local authority managing the plan. A
// later edit of the moved plan keeps the mark but not the move: no event.
bool plan_moved_to_authority(const SubscriptionSpec& sub, const store::ChangeRow& change, const json::Value& resource,
                             Lookup& lookup) {
  if (change.type != "CareTeam" || change.interaction != "update" || change.version < 2) return false;
  if (!fhir::cpis::plan_type_of(resource) || !has_extension(resource, fhir::cpis::kSupersededNhsNumberUrl))
    return false;
  if (sub.owner.ods.empty() || fhir::cpis::managing_ods(resource) != sub.owner.ods) return false;
  auto before = lookup.version(change.type, change.id, change.version - 1);
  return before && subject_reference(*before) != subject_reference(resource);
}

// One function per route named in topics.cc kRoutes. May fill d (for
// example with the people concerned); sets d.reason when it refuses.
bool route_allows(const Topic& topic, const SubscriptionSpec& sub, const store::ChangeRow& change,
                  const json::Value& resource, const std::string& patient_id, Lookup& lookup, Decision& d) {
  if (topic.route == "caseload") return !patient_id.empty() && lookup.in_caseload(patient_id, sub.owner.ods);
  if (topic.route == "plan-authority") {
    if (plan_authority(sub, resource, lookup)) return true;
    d.reason = "plan-authority";
    return false;
  }
  if (topic.route == "plan-authority-on-move") return plan_moved_to_authority(sub, change, resource, lookup);
  d.reason = "route";
  return false;
}

bool has_tag(const json::Value& resource, std::string_view want) {
  size_t bar = want.find('|');
  const json::Value* meta = json::member(resource, "meta");
  const json::Value* tags = meta && meta->IsObject() ? json::member(*meta, "tag") : nullptr;
  if (!tags || !tags->IsArray()) return false;
  for (const auto& t : tags->GetArray()) {
    if (!t.IsObject()) continue;
    auto sys = json::get_string(t, "system");
    auto code = json::get_string(t, "code");
    if (sys && code && *sys == want.substr(0, bar) && *code == want.substr(bar + 1)) return true;
  }
  return false;
}

// A trigger of the topic matches the change's type and interaction, the
// focus carries the trigger's tag when it names one, and one of its codes
// (in code or category) when it lists any (a CP-IS plan among all CareTeams).
bool triggered(const Topic& topic, const store::ChangeRow& change, const json::Value& resource) {
  for (const auto& t : topic.triggers) {
    if (t.resource != change.type || std::find(t.interactions.begin(), t.interactions.end(), change.interaction) ==
                                         t.interactions.end())
      continue;
    if (!t.tag.empty() && !has_tag(resource, t.tag)) continue;
    if (t.codes.empty()) return true;
    for (const auto& c : t.codes)
      if (has_code(resource, c)) return true;
  }
  return false;
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

std::optional<json::Document> StoreLookup::patient(const std::string& id) {
  auto r = store_.read("Patient", id);
  if (!r) return std::nullopt;
  auto d = json::parse(r->body);
  if (!d) return std::nullopt;
  return std::move(*d);
}

std::optional<json::Document> StoreLookup::version(const std::string& type, const std::string& id, int64_t version) {
  auto r = store_.vread(type, id, version);
  if (!r || r->deleted) return std::nullopt;
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

std::optional<json::Document> StoreLookup::care_team(const std::string& id) {
  auto r = store_.read("CareTeam", id);
  if (!r) return std::nullopt;
  auto d = json::parse(r->body);
  if (!d) return std::nullopt;
  return std::move(*d);
}

Decision decide(const Topic& topic, const SubscriptionSpec& sub, const store::ChangeRow& change,
                const json::Value& resource, Lookup& lookup) {
  Decision d;
  if (!topic.fires() || !triggered(topic, change, resource)) {
    d.reason = "not-triggered";
    return d;
  }
  d.patient_ref = patient_ref_of(change.type, change.id, resource);
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
  if (!topic.unrestricted(sub.owner.role) && !route_allows(topic, sub, change, resource, patient_id, lookup, d)) {
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
