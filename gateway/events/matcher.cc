#include "gateway/events/matcher.h"

#include "gateway/security/visibility.h"

#include <algorithm>

#include "gateway/events/relations.h"
#include "gateway/model/cpis_plan.h"
#include "gateway/model/resource_text.h"
#include "gateway/identity/nhs_number.h"

namespace gw::events {

namespace {

// SNOMED CT "Estimated date of delivery": what the SystmOne ZPN booking
// writes (adapters/systmone FORMAT.md); the only pregnancy signal the feeds carry.
constexpr std::string_view kEddCode = "http://snomed.info/sct|161714006";
// An open referral to this service is the organisation's CAMHS caseload (camhs FORMAT.md).
constexpr std::string_view kCamhsService = "https://cpis-gateway.nhs.uk/CodeSystem/service|camhs";

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

// A CodeableConcept, or an array of them, with a coding equal to system|code
// (or code alone).
bool concepts_have(const json::Value& m, const std::string& want) {
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
  if (m.IsArray()) {
    for (const auto& cc : m.GetArray())
      if (cc.IsObject() && check_cc(cc)) return true;
    return false;
  }
  return m.IsObject() && check_cc(m);
}

// Any coding in code/category/serviceType equal to system|code (or code alone).
bool has_code(const json::Value& v, const std::string& want) {
  for (const char* k : {"code", "category", "serviceType"})
    if (const json::Value* m = json::member(v, k); m && concepts_have(*m, want)) return true;
  return false;
}

// Sensitivity labels in meta.security.
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
    if (plan && model::cpis::plan_type_of(*plan) && model::cpis::managing_ods(*plan) == sub.owner.ods) return true;
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
  if (!model::cpis::plan_type_of(resource) || !has_extension(resource, model::cpis::kSupersededNhsNumberUrl))
    return false;
  if (sub.owner.ods.empty() || model::cpis::managing_ods(resource) != sub.owner.ods) return false;
  auto before = lookup.version(change.type, change.id, change.version - 1);
  return before && subject_reference(*before) != subject_reference(resource);
}

// A dotted path ("period.end") present in the resource (first element of arrays).
bool has_path(const json::Value& v, std::string_view path) {
  const json::Value* cur = &v;
  while (!path.empty()) {
    size_t dot = path.find('.');
    std::string_view key = path.substr(0, dot);
    if (cur->IsArray()) {
      if (cur->Empty()) return false;
      cur = &(*cur)[0];
    }
    cur = cur->IsObject() ? json::member(*cur, key) : nullptr;
    if (!cur || cur->IsNull()) return false;
    path = dot == std::string_view::npos ? std::string_view() : path.substr(dot + 1);
  }
  return true;
}

// The topic's conditions on the focus (topics.h: statuses, requires),
// so that e.g. tier4-discharge fires for a finished Tier 4 spell and not for
// every Encounter.
bool focus_qualifies(const Topic& topic, const json::Value& resource) {
  if (!topic.statuses.empty()) {
    auto st = json::get_string(resource, "status");
    if (!st || std::find(topic.statuses.begin(), topic.statuses.end(), *st) == topic.statuses.end()) return false;
  }
  for (const auto& p : topic.requires_paths)
    if (!has_path(resource, p)) return false;
  return true;
}

// CPIS.md §3: parent -> each linked child -> the services caring for that
// child; midwifery also while it cares for the parent and she is pregnant.
// Only the children in this subscriber's care are concerned (a health
// visitor of one child is not told about a sibling it does not care for).
// The relationship (topic "receivers", data) a subscriber of this role
// has to have with the person: "" when the topic names none for the role.
const std::string& relationship_for(const Topic& topic, const SubscriptionSpec& sub) {
  static const std::string none;
  auto it = topic.receivers.find(sub.owner.role);
  return it == topic.receivers.end() ? none : it->second;
}

// Whether the subscriber's organisation has that relationship with the person.
bool related(const std::string& relationship, const std::string& patient_id, const std::string& ods, Lookup& lookup) {
  if (relationship == "caseload") return lookup.in_caseload(patient_id, ods);
  if (relationship == "camhs-care") return lookup.holds_camhs_care(patient_id, ods);
  if (relationship == "pregnant-parent") return lookup.in_caseload(patient_id, ods) && lookup.pregnant(patient_id);
  return false;  // topics.cc accepts only the relationships above
}

bool linked_children_allow(const Topic& topic, const SubscriptionSpec& sub, const std::string& parent_id,
                           Lookup& lookup, Decision& d) {
  if (parent_id.empty()) return false;
  for (const auto& child : lookup.linked_children(parent_id))
    if (lookup.in_caseload(child, sub.owner.ods)) d.concerned.push_back(child);
  // A role the topic relates to the parent herself (midwifery while it
  // cares for her and she is pregnant: the unborn child).
  if (relationship_for(topic, sub) == "pregnant-parent" && related("pregnant-parent", parent_id, sub.owner.ods, lookup))
    d.pregnancy = true;
  return !d.concerned.empty() || d.pregnancy;
}

// The person themselves, through the relationship the topic names for the
// subscriber's role (tier4-discharge: CAMHS holding the care, the GP's caseload).
bool relationship_allows(const Topic& topic, const SubscriptionSpec& sub, const std::string& patient_id,
                         Lookup& lookup, Decision& d) {
  if (patient_id.empty()) return false;
  bool ok = related(relationship_for(topic, sub), patient_id, sub.owner.ods, lookup);
  if (ok) d.concerned.push_back(patient_id);
  return ok;
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
  return (!patient_id.empty() && lookup.in_caseload(patient_id, sub.owner.ods)) ||
         referred_authority_is(resource, sub.owner.ods);
}

// acting-organisation: an agent of the AuditEvent is the subscriber's organisation.
bool acting_organisation(const SubscriptionSpec& sub, const json::Value& resource) {
  const json::Value* agents = json::member(resource, "agent");
  if (sub.owner.ods.empty() || !agents || !agents->IsArray()) return false;
  for (const auto& a : agents->GetArray()) {
    const json::Value* who = a.IsObject() ? json::member(a, "who") : nullptr;
    const json::Value* id = who && who->IsObject() ? json::member(*who, "identifier") : nullptr;
    if (id && id->IsObject() && json::get_string(*id, "system").value_or("") == model::cpis::kOdsSystem &&
        json::get_string(*id, "value").value_or("") == sub.owner.ods)
      return true;
  }
  return false;
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
  if (topic.route == "linked-children") {
    // A family link recorded after the parent's relapse-prevention plan: the
    // new child's services hear of the plan (relations.h).
    if (change.type == "RelatedPerson") return new_family_link_allows(sub, change, resource, lookup, d);
    return linked_children_allow(topic, sub, patient_id, lookup, d);
  }
  if (topic.route == "relationship") return relationship_allows(topic, sub, patient_id, lookup, d);
  if (topic.route == "disclosure-audience")
    return disclosure_audience_allows(topic, sub, patient_id, resource, lookup, d);
  if (topic.route == "acting-organisation") return change.type == "AuditEvent" && acting_organisation(sub, resource);
  if (topic.route == "relations") return relations_allow(topic, sub, change, resource, patient_id, lookup, d);
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

// On a linked-children topic the organisations caring for the children are
// the ones concerned, so an `organization` filter is met by them too.
bool cares_for_a_linked_child(const Topic& topic, const std::string& parent_id, const std::string& ods, Lookup& lookup) {
  if (topic.route != "linked-children") return false;
  for (const auto& child : lookup.linked_children(parent_id))
    if (lookup.in_caseload(child, ods)) return true;
  return false;
}

// Unrestricted roles (admin) skip the route; a disclosure still names the
// people the route is about.
void concern_everyone(const Topic& topic, const std::string& patient_id, Lookup& lookup, Decision& d) {
  if (patient_id.empty()) return;
  if (topic.route == "linked-children") d.concerned = lookup.linked_children(patient_id);
  else d.concerned.push_back(patient_id);
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
  for (const auto& e : model::index_entries(type, resource))
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

std::optional<json::Document> StoreLookup::version(const std::string& type, const std::string& id, int64_t version) {
  auto r = store_.vread(type, id, version);
  if (!r || r->deleted) return std::nullopt;
  auto d = json::parse(r->body);
  if (!d) return std::nullopt;
  return std::move(*d);
}

std::vector<store::StoredResource> StoreLookup::about_patient(const char* type, const std::string& patient_id) {
  store::SearchQuery q;
  q.type = type;
  q.params.push_back(store::ParamConstraint{"patient", {{"", "Patient/" + patient_id}}});
  q.count = 200;
  q.want_total = false;
  auto page = store_.search(q);
  if (!page) return {};
  return std::move(page->items);
}

std::vector<std::string> StoreLookup::ids_by_identifier(const std::string& type, const std::string& system,
                                                        const std::string& value) {
  store::SearchQuery q;
  q.type = type;
  q.params.push_back(store::ParamConstraint{"identifier", {{system, value}}});
  q.count = 10;
  q.want_total = false;
  std::vector<std::string> out;
  if (auto page = store_.search(q))
    for (const auto& r : page->items) out.push_back(r.id);
  return out;
}

std::vector<json::Document> StoreLookup::about(const std::string& type, const std::string& patient_id) {
  std::vector<json::Document> out;
  // As served (id and meta.lastUpdated included): the flows order by them.
  for (auto& r : about_patient(type.c_str(), patient_id))
    if (auto d = json::parse(model::served_text(r))) out.push_back(std::move(*d));
  return out;
}

std::optional<json::Document> StoreLookup::resource(const std::string& type, const std::string& id) {
  auto r = store_.read(type, id);
  if (!r) return std::nullopt;
  auto d = json::parse(r->body);
  if (!d) return std::nullopt;
  return std::move(*d);
}

std::vector<std::string> StoreLookup::linked_children(const std::string& parent_id) {
  auto it = children_.find(parent_id);
  if (it == children_.end()) it = children_.emplace(parent_id, read_linked_children(parent_id)).first;
  return it->second;
}

std::vector<std::string> StoreLookup::read_linked_children(const std::string& parent_id) {
  std::vector<std::string> out;
  auto parent = patient(parent_id);
  if (!parent) return out;
  store::SearchQuery q;
  q.type = "RelatedPerson";
  store::ParamConstraint nhs{"identifier", {}};
  for (const auto& e : model::index_entries("Patient", *parent))
    if (e.param == "identifier" && e.system == identity::kNhsNumberSystem) nhs.any_of.emplace_back(e.system, e.value);
  if (nhs.any_of.empty()) return out;  // family links are keyed on NHS numbers
  q.params.push_back(std::move(nhs));
  q.count = 200;
  q.want_total = false;
  auto page = store_.search(q);
  if (!page) return out;
  for (const auto& r : page->items) {
    auto d = json::parse(r.body);
    if (!d || json::get_bool(*d, "active") == false) continue;
    for (const auto& e : model::index_entries("RelatedPerson", *d)) {
      if (e.param != "patient") continue;
      std::string child = e.value.substr(8);
      if (child != parent_id && std::find(out.begin(), out.end(), child) == out.end()) out.push_back(child);
    }
  }
  return out;
}

bool StoreLookup::pregnant(const std::string& patient_id) {
  const std::string today = model::cpis::utc_today();
  for (const auto& r : about_patient("Observation", patient_id)) {
    auto d = json::parse(r.body);
    if (!d || !has_code(*d, std::string(kEddCode))) continue;
    auto status = json::get_string(*d, "status").value_or("");
    if (status == "entered-in-error" || status == "cancelled") continue;
    auto edd = json::get_string(*d, "valueDateTime");
    if (edd && edd->substr(0, 10) >= today) return true;
  }
  return false;
}

bool StoreLookup::holds_camhs_care(const std::string& patient_id, const std::string& ods) {
  for (const auto& r : about_patient("EpisodeOfCare", patient_id)) {
    auto d = json::parse(r.body);
    if (!d || json::get_string(*d, "status").value_or("") != "active") continue;
    const json::Value* type = json::member(*d, "type");
    const json::Value* org = json::member(*d, "managingOrganization");
    if (type && concepts_have(*type, std::string(kCamhsService)) && org && names_organisation(*org, ods)) return true;
  }
  for (const auto& r : about_patient("CareTeam", patient_id)) {
    auto d = json::parse(r.body);
    if (!d || json::get_string(*d, "status").value_or("") != "active") continue;
    if (const json::Value* p = json::member(*d, "participant"); p && names_organisation(*p, ods)) return true;
  }
  return false;
}

bool StoreLookup::in_caseload(const std::string& patient_id, const std::string& ods) {
  if (auto p = patient(patient_id)) {
    for (const char* k : {"generalPractitioner", "managingOrganization"})
      if (const json::Value* m = json::member(*p, k); m && names_organisation(*m, ods)) return true;
  }
  for (const char* type : {"CareTeam", "EpisodeOfCare"}) {
    for (const auto& r : about_patient(type, patient_id)) {
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
  if (!focus_qualifies(topic, resource)) {
    d.reason = "focus-condition";
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
  auto index = model::index_entries(change.type, resource);
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
        any = p && token_matches(model::index_entries("Patient", *p), "identifier", v);
      } else if (f.parameter == "organization") {
        any = !patient_id.empty() &&
              (lookup.in_caseload(patient_id, v) || cares_for_a_linked_child(topic, patient_id, v, lookup));
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
  if (topic.unrestricted(sub.owner.role)) {
    if (topic.disclosure()) concern_everyone(topic, patient_id, lookup, d);
  } else if (!route_allows(topic, sub, change, resource, patient_id, lookup, d)) {
    if (d.reason.empty()) d.reason = "caseload";
    return d;
  }
  d.content = sub.content;
  const auto labels = model::security_labels(resource);
  const bool hidden = security::content_hidden(sub.labels, labels);
  if (security::existence_withheld(sub.labels, labels)) {
    // Not even that something changed: the existence of a sexual-health
    // record is itself sensitive (DESIGN.md, Sensitive data).
    d.reason = "sensitivity";
    return d;
  }
  // A disclosure carries only what may leave (it has no labels), so the
  // subscriber gets it at the content level it asked for.
  d.disclose = topic.payload == "disclosure" ||
               (topic.payload == "disclosure-when-hidden" && hidden);
  if (d.disclose && change.interaction == "delete") {
    d.reason = "disclosure-of-delete";  // nothing to disclose about a removed record
    return d;
  }
  if (!d.disclose && d.content == "full-resource" && hidden) d.content = "id-only";
  if (change.interaction == "delete" && d.content == "full-resource") d.content = "id-only";
  d.notify = true;
  return d;
}

}  // namespace gw::events
