#include "gateway/events/disclosure.h"

#include <algorithm>
#include <cstdio>

#include "gateway/audit/audit_rows.h"
#include "gateway/events/flows/flow_kit.h"
#include "gateway/model/cpis_plan.h"
#include "gateway/model/resource_text.h"
#include "gateway/identity/nhs_number.h"

namespace gw::events {

namespace {

using json::Value;

constexpr std::string_view kRelapsePlan = "https://cpis-gateway.nhs.uk/CodeSystem/care-plan-category|relapse-prevention";
constexpr std::string_view kRelapseObserved =
    "https://cpis-gateway.nhs.uk/CodeSystem/observation-category|relapse-indicator";
constexpr std::string_view kTier4 = "https://cpis-gateway.nhs.uk/CodeSystem/service|camhs-tier4";
constexpr std::string_view kIndicatorCode = "https://cpis-gateway.nhs.uk/CodeSystem/camhs|relapse-indicator";
constexpr std::string_view kReviewDue = "https://cpis-gateway.nhs.uk/StructureDefinition/review-due";

bool coded(const json::Value* concepts, std::string_view want) { return flows::concept_has(concepts, want); }

std::string str_at(const json::Value& v, std::string_view key) {
  return std::string(json::get_string(v, key).value_or(""));
}

const json::Value* first(const json::Value* v) {
  if (!v) return nullptr;
  if (v->IsArray()) return v->Empty() ? nullptr : &(*v)[0];
  return v;
}

// "CareTeam/abc" (or an absolute URL ending so) -> "abc"; "" otherwise.
std::string local_id(const json::Value* ref, std::string_view type) {
  if (!ref || !ref->IsObject()) return {};
  std::string r = str_at(*ref, "reference");
  std::string prefix = std::string(type) + "/";
  auto pos = r.rfind(prefix);
  if (pos == std::string::npos || (pos > 0 && r[pos - 1] != '/')) return {};
  return r.substr(pos + prefix.size());
}

// The care team's name and open phone numbers: the service to contact.
std::string team_contact(const json::Value* team_ref, Lookup& lookup) {
  std::string id = local_id(team_ref, "CareTeam");
  if (id.empty()) return {};
  auto team = lookup.resource("CareTeam", id);
  if (!team) return {};
  std::string out = str_at(*team, "name");
  if (const json::Value* tel = json::member(*team, "telecom"); tel && tel->IsArray())
    for (const auto& t : tel->GetArray())
      if (auto v = json::get_string(t, "value")) out += (out.empty() ? "" : ", ") + std::string(*v);
  return out;
}

std::string contact_line(std::string who, const std::string& team) {
  if (!team.empty()) who += (who.empty() ? "" : ", ") + team;
  return who.empty() ? std::string() : "Contact: " + who;
}

// The professional who recorded or observed it: a Practitioner reference.
const json::Value* practitioner(const json::Value* refs) {
  if (!refs) return nullptr;
  if (!refs->IsArray()) return refs;
  for (const auto& r : refs->GetArray())
    if (json::get_string(r, "type") == "Practitioner") return &r;
  return nullptr;
}

std::vector<std::string> relapse_plan_lines(const json::Value& plan, Lookup& lookup) {
  std::vector<std::string> out;
  out.push_back("Relapse signature recorded on " + str_at(plan, "created"));
  if (const json::Value* ext = json::member(plan, "extension"); ext && ext->IsArray())
    for (const auto& e : ext->GetArray())
      if (json::get_string(e, "url") == kReviewDue) out.push_back("Review due on " + str_at(e, "valueDate"));
  if (const json::Value* acts = json::member(plan, "activity"); acts && acts->IsArray()) {
    for (const auto& a : acts->GetArray()) {
      const json::Value* det = json::member(a, "detail");
      if (!det) continue;
      std::string text = str_at(*det, "description");
      if (coded(json::member(*det, "code"), kIndicatorCode)) out.push_back("Indicator: " + text);
      else if (json::get_string(*det, "kind") == "CommunicationRequest") out.push_back("Agreed action: " + text);
    }
  }
  const json::Value* author = json::member(plan, "author");
  std::string line = contact_line(author ? str_at(*author, "display") : std::string(),
                                  team_contact(first(json::member(plan, "careTeam")), lookup));
  if (!line.empty()) out.push_back(line);
  return out;
}

std::vector<std::string> observed_lines(const json::Value& obs, Lookup& lookup) {
  std::vector<std::string> out;
  const json::Value* code = json::member(obs, "code");
  out.push_back("Indicator observed on " + str_at(obs, "effectiveDateTime") + ": " +
                (code ? str_at(*code, "text") : std::string()));
  // Who to contact: the signature's care team (the observation's note stays behind).
  std::string team;
  std::string plan_id = local_id(first(json::member(obs, "basedOn")), "CarePlan");
  if (!plan_id.empty())
    if (auto plan = lookup.resource("CarePlan", plan_id))
      team = team_contact(first(json::member(*plan, "careTeam")), lookup);
  const json::Value* who = practitioner(json::member(obs, "performer"));
  std::string line = contact_line(who ? str_at(*who, "display") : std::string(), team);
  if (!line.empty()) out.push_back(line);
  return out;
}

std::vector<std::string> tier4_lines(const json::Value& enc) {
  std::vector<std::string> out;
  const json::Value* period = json::member(enc, "period");
  out.push_back("Discharged from Tier 4 CAMHS inpatient care on " + (period ? str_at(*period, "end") : std::string()));
  if (const json::Value* sp = json::member(enc, "serviceProvider"))
    if (const json::Value* id = json::member(*sp, "identifier"))
      out.push_back("Tier 4 provider (ODS): " + str_at(*id, "value"));
  return out;
}

constexpr std::string_view kExt = "https://cpis-gateway.nhs.uk/StructureDefinition/";

// The displays (else codes) of a CodeableConcept's codings, "; "-joined.
std::string displays(const json::Value* cc) {
  std::string out;
  const json::Value* codings = cc && cc->IsObject() ? json::member(*cc, "coding") : nullptr;
  if (codings && codings->IsArray())
    for (const auto& c : codings->GetArray()) {
      std::string d = str_at(c, "display");
      if (d.empty()) d = str_at(c, "code");
      if (!d.empty()) out += (out.empty() ? "" : "; ") + d;
    }
  if (out.empty() && cc && cc->IsObject()) out = str_at(*cc, "text");
  return out;
}

// A safeguarding concern Flag (CPIS.md section 4): the concern only, as the
// recording service marked it disclosable (the CASH/GUM adapter leaves the
// clinical detail in the labelled records and never copies it into the Flag:
// adapters/cashgum/FORMAT.md). What it is, when, who recorded it, whether and
// to whom it was referred, and who to contact. Never the focus's other
// elements, and nothing of a Flag the service did not mark disclosable.
std::vector<std::string> concern_lines(const json::Value& flag) {
  std::vector<std::string> out;
  const json::Value* period = json::member(flag, "period");
  std::string line = "Safeguarding concern recorded";
  if (period && period->IsObject() && !str_at(*period, "start").empty()) line += " on " + str_at(*period, "start");
  if (std::string by = flows::ods_of(json::member(flag, "author")); !by.empty()) line += " by " + by;
  out.push_back(line);
  if (std::string what = displays(json::member(flag, "code")); !what.empty()) out.push_back("Concern: " + what);
  std::string referred, referral_date, contact;
  bool to_authority = false;  // the service lists the local authority: it referred the concern
  std::vector<std::string> indicators;
  if (const json::Value* exts = json::member(flag, "extension"); exts && exts->IsArray())
    for (const auto& e : exts->GetArray()) {
      std::string url = str_at(e, "url");
      if (url.rfind(kExt, 0) != 0) continue;
      std::string_view name = std::string_view(url).substr(kExt.size());
      const json::Value* coding = json::member(e, "valueCoding");
      std::string coded_as = coding && coding->IsObject()
                                 ? (str_at(*coding, "display").empty() ? str_at(*coding, "code") : str_at(*coding, "display"))
                                 : std::string();
      if (name == "disclosable-to" && str_at(e, "valueCode") == "local-authority") to_authority = true;
      else if (name == "cse-indicator" && !coded_as.empty()) indicators.push_back(coded_as);
      else if (name == "safeguarding-referred-to") referred = coded_as;
      else if (name == "safeguarding-referral-date") referral_date = str_at(e, "valueDate");
      else if (name == "concern-contact") contact = str_at(e, "valueString");
    }
  for (const auto& i : indicators) out.push_back("Indicator: " + i);
  // Also when a service says so only by listing the local authority (a FHIR
  // client without the CASH/GUM referral extensions): the line changes, so
  // the update that refers it discloses again and reaches the authority.
  if (referred.empty() && to_authority) referred = "the local authority (children's social care)";
  if (!referred.empty())
    out.push_back("Referred to: " + referred + (referral_date.empty() ? std::string() : " on " + referral_date));
  if (std::string st = str_at(flag, "status"); !st.empty() && st != "active") out.push_back("Concern status: " + st);
  if (std::string l = contact_line(contact, {}); !l.empty()) out.push_back(l);
  return out;
}

bool marked_disclosable(const json::Value& flag) {
  const json::Value* exts = json::member(flag, "extension");
  if (!exts || !exts->IsArray()) return false;
  for (const auto& e : exts->GetArray())
    if (str_at(e, "url") == std::string(kExt) + "disclosable-to") return true;
  return false;
}

// A Reference reduced to what identifies and names (no clinical context).
Value safe_reference(const json::Value& ref, json::Allocator& a) {
  Value out(rapidjson::kObjectType);
  for (const char* k : {"type", "display"})
    if (auto s = json::get_string(ref, k)) json::set(out, k, *s, a);
  if (const json::Value* id = json::member(ref, "identifier"); id && id->IsObject()) {
    Value i(rapidjson::kObjectType);
    for (const char* k : {"system", "value"})
      if (auto s = json::get_string(*id, k)) json::set(i, k, *s, a);
    json::set(out, "identifier", std::move(i), a);
  }
  return out;
}

Value nhs_identifier(const std::string& nhs, json::Allocator& a) {
  Value i(rapidjson::kObjectType);
  json::set(i, "system", identity::kNhsNumberSystem, a);
  json::set(i, "value", nhs, a);
  return i;
}

std::string nhs_number_of(const std::string& patient_id, Lookup& lookup) {
  auto p = lookup.patient(patient_id);
  if (!p) return {};
  if (const json::Value* ids = json::member(*p, "identifier"); ids && ids->IsArray())
    for (const auto& i : ids->GetArray())
      if (json::get_string(i, "system") == identity::kNhsNumberSystem) return str_at(i, "value");
  return {};
}

// A person concerned: Patient/<id> and the NHS number the receiver matches on.
Value person(const std::string& patient_id, Lookup& lookup, bool literal, json::Allocator& a) {
  Value r(rapidjson::kObjectType);
  if (literal) json::set(r, "reference", "Patient/" + patient_id, a);
  if (std::string nhs = nhs_number_of(patient_id, lookup); !nhs.empty())
    json::set(r, "identifier", nhs_identifier(nhs, a), a);
  return r;
}

Value coding_concept(std::string_view system, std::string_view code, json::Allocator& a) {
  Value c(rapidjson::kObjectType);
  json::set(c, "system", system, a);
  json::set(c, "code", code, a);
  Value cs(rapidjson::kArrayType);
  cs.PushBack(c, a);
  Value cc(rapidjson::kObjectType);
  json::set(cc, "coding", std::move(cs), a);
  Value arr(rapidjson::kArrayType);
  arr.PushBack(cc, a);
  return arr;
}

// A disclosure's Communication with its id (the rest is the caller's).
Disclosure started(std::string id) {
  Disclosure out;
  out.id = std::move(id);
  out.purpose = "safeguarding-children";
  out.resource.SetObject();
  json::set(out.resource, "resourceType", "Communication", out.resource.GetAllocator());
  json::set(out.resource, "id", out.id, out.resource.GetAllocator());
  return out;
}

// The receiving organisation, by ODS code.
Value recipient(const std::string& ods, json::Allocator& a) {
  Value rcpt(rapidjson::kObjectType);
  json::set(rcpt, "type", "Organization", a);
  Value id(rapidjson::kObjectType);
  json::set(id, "system", model::cpis::kOdsSystem, a);
  json::set(id, "value", ods, a);
  json::set(rcpt, "identifier", std::move(id), a);
  Value rcpts(rapidjson::kArrayType);
  rcpts.PushBack(rcpt, a);
  return rcpts;
}

// Communication.payload: one contentString per shareable line.
Value payload_of(const std::vector<std::string>& lines, json::Allocator& a) {
  Value payload(rapidjson::kArrayType);
  for (const auto& l : lines) {
    Value p(rapidjson::kObjectType);
    json::set(p, "contentString", l, a);
    payload.PushBack(p, a);
  }
  return payload;
}

// The sender: the professional for relapse content, the Tier 4 provider for a discharge.
const json::Value* sender_of(const std::string& type, const json::Value& focus) {
  if (type == "CarePlan") return json::member(focus, "author");
  if (type == "Observation") return practitioner(json::member(focus, "performer"));
  if (type == "Encounter") return json::member(focus, "serviceProvider");
  if (type == "Flag") return json::member(focus, "author");  // the recording service
  return nullptr;
}

}  // namespace

std::optional<std::vector<std::string>> shareable_lines(const std::string& type, const json::Value& focus,
                                                        Lookup& lookup) {
  if (type == "CarePlan" && coded(json::member(focus, "category"), kRelapsePlan))
    return relapse_plan_lines(focus, lookup);
  if (type == "Observation" && coded(json::member(focus, "category"), kRelapseObserved))
    return observed_lines(focus, lookup);
  if (type == "Encounter" && coded(json::member(focus, "serviceType"), kTier4)) return tier4_lines(focus);
  if (type == "Flag" && marked_disclosable(focus)) return concern_lines(focus);
  return std::nullopt;
}

namespace {

constexpr std::string_view kContentIdSystem = "https://cpis-gateway.nhs.uk/Id/disclosure-content";
constexpr std::string_view kCompletenessSystem = "https://cpis-gateway.nhs.uk/CodeSystem/notification-completeness";

// FNV-1a: a stable fingerprint of what was disclosed (not a secret).
std::string fingerprint(const std::string& focus_ref, const std::vector<std::string>& lines) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](std::string_view s) {
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
  };
  mix(focus_ref);
  for (const auto& l : lines) mix(l);
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace

void add_to_unit(const Topic& topic, const SubscriptionSpec& sub, const Disclosure& disclosure,
                 const std::string& source, int64_t change_seq, const std::string& patient_ref,
                 const std::string& content, store::UnitOfWork& unit, const model::SearchParamTable* search_params) {
  json::Document copy;
  copy.CopyFrom(disclosure.resource, copy.GetAllocator());
  store::WriteOp op;
  op.kind = store::OpKind::create;
  op.type = "Communication";
  op.id = disclosure.id;
  op.body = model::storage_text(copy, "Communication", copy.GetAllocator());
  // Indexed as any write of a Communication is (the declared parameters too).
  op.index = search_params ? model::index_entries("Communication", copy, *search_params)
                           : model::index_entries("Communication", copy);
  unit.ops.push_back(std::move(op));
  store::NewEvent e;
  e.subscription = sub.id;
  e.change_seq = change_seq;
  e.focus_type = "Communication";
  e.focus_id = disclosure.id;
  e.focus_version = 1;
  e.interaction = "create";
  e.patient_ref = patient_ref;
  e.content = content;
  unit.events.push_back(std::move(e));
  // Who received what about whom, and why (CPIS.md section 4): one row per
  // person concerned so that a patient's disclosure history finds it.
  // A disclosure about nobody the gateway knows (an unmatched concern) is
  // still accounted for, once, without a patient.
  std::vector<std::string> people = disclosure.about;
  if (people.empty()) people.emplace_back();
  for (const auto& person : people) {
    store::AuditRow a = audit::row(sub.owner, "disclose", "Communication/" + disclosure.id, 0, "",
                                   person.empty() ? std::string() : "Patient/" + person,
                                   topic.name + " disclosed to subscription " + sub.id + " for purpose " +
                                       disclosure.purpose + " (derived from " + source +
                                       "; the focus itself is not sent)" +
                                       (topic.legal_basis.empty() ? "" : "; legal basis=" + topic.legal_basis));
    a.topic = topic.name;
    if (!disclosure.purpose.empty()) a.purpose = disclosure.purpose;
    a.channel = std::string(audit::kChannelRestHook);
    if (!disclosure.writer.empty()) audit::set_source(a, disclosure.writer);  // whose record left (audit/flows)
    unit.audit.push_back(std::move(a));
  }
}

std::optional<Disclosure> flow_communication(const Topic& topic, const SubscriptionSpec& sub, const std::string& id,
                                             const std::string& sent, const std::string& focus_ref,
                                             const FlowDisclosure& content, const std::vector<std::string>& concerned,
                                             Lookup& lookup) {
  const std::string mark =
      sub.id + "-" + fingerprint(content.about_ref.empty() ? focus_ref : content.about_ref, content.lines);
  if (!lookup.ids_by_identifier("Communication", std::string(kContentIdSystem), mark).empty() ||
      !lookup.claim_once(mark))
    return std::nullopt;
  Disclosure out = started(id);
  auto& doc = out.resource;
  auto& a = doc.GetAllocator();
  Value idents(rapidjson::kArrayType);
  for (auto [system, value] : {std::pair{kDisclosureIdSystem, std::string_view(out.id)},
                               std::pair{kContentIdSystem, std::string_view(mark)}}) {
    Value ident(rapidjson::kObjectType);
    json::set(ident, "system", system, a);
    json::set(ident, "value", value, a);
    idents.PushBack(ident, a);
  }
  json::set(doc, "identifier", std::move(idents), a);
  json::set(doc, "status", "in-progress", a);  // until its recipient acknowledges it (escalation.h)
  json::set(doc, "category", coding_concept(kDisclosureTopicSystem, topic.name, a), a);
  if (!content.completeness.empty()) {
    Value cc = coding_concept(kCompletenessSystem, content.completeness, a);
    json::set(doc, "topic", Value(cc[0], a), a);
  }
  if (!content.subject_id.empty()) {  // an escalation of an unmatched concern names no one
    json::set(doc, "subject", person(content.subject_id, lookup, content.subject_literal, a), a);
    out.about.push_back(content.subject_id);
  }
  Value about(rapidjson::kArrayType);
  for (const auto& p : concerned) {
    if (p == content.subject_id) continue;
    about.PushBack(person(p, lookup, true, a), a);
    out.about.push_back(p);
  }
  if (!about.Empty()) json::set(doc, "about", std::move(about), a);
  json::set(doc, "sent", sent, a);
  json::set(doc, "recipient", recipient(sub.owner.ods, a), a);
  json::set(doc, "reasonCode", coding_concept(kDisclosurePurposeSystem, out.purpose, a), a);
  json::set(doc, "payload", payload_of(content.lines, a), a);
  return out;
}

std::optional<Disclosure> derive_disclosure(const Topic& topic, const SubscriptionSpec& sub,
                                            const store::ChangeRow& change, const json::Value& focus,
                                            const Decision& decision, Lookup& lookup) {
  if (topic.route == "relations") {
    auto content = flow_disclosure(topic, change, focus, decision, lookup);
    if (!content) return std::nullopt;
    auto out = flow_communication(topic, sub, "disclosure-" + sub.id + "-" + std::to_string(change.seq), change.ts,
                                  change.type + "/" + change.id, *content, decision.concerned, lookup);
    if (out) out->writer = change.source;
    return out;
  }
  std::optional<std::vector<std::string>> lines;
  Decision link_decision;
  const Decision* dp = &decision;
  if (change.type == "RelatedPerson" && topic.route == "linked-children") {
    // A new family link: the parent's plan, told about the new child only.
    auto nl = new_family_link_disclosure(focus, change.ts, lookup);
    if (!nl) return std::nullopt;
    lines = std::move(nl->lines);
    link_decision = decision;
    link_decision.patient_ref = "Patient/" + nl->parent;
    link_decision.concerned = {nl->child};
    dp = &link_decision;
  } else {
    lines = shareable_lines(change.type, focus, lookup);
  }
  if (!lines) return std::nullopt;
  const Decision& decision_ = *dp;
  if (decision_.pregnancy) lines->push_back("The parent is in your care and pregnant: the unborn child is concerned");
  std::string subject_id = decision_.patient_ref.rfind("Patient/", 0) == 0 ? decision_.patient_ref.substr(8) : "";
  // A concern about a child no feed has matched to an NHS number (a CASH/GUM
  // row without one) still reaches the authority it was referred to
  // (relations.h referred_authority_is), naming the child as the recording
  // service did; every other disclosure is about a known person.
  const bool concern = topic.route == "disclosure-audience";
  const json::Value* unmatched_subject = nullptr;
  if (subject_id.empty()) {
    unmatched_subject = concern ? json::member(focus, "subject") : nullptr;
    if (!unmatched_subject || !unmatched_subject->IsObject()) return std::nullopt;
  }

  // One per subscription and change: a retried fan-out writes the same id.
  Disclosure out = started("disclosure-" + sub.id + "-" + std::to_string(change.seq));
  if (!topic.purpose.empty()) out.purpose = topic.purpose;
  out.writer = change.source;
  auto& doc = out.resource;
  auto& a = doc.GetAllocator();
  Value ident(rapidjson::kObjectType);
  json::set(ident, "system", kDisclosureIdSystem, a);
  json::set(ident, "value", out.id, a);
  Value idents(rapidjson::kArrayType);
  idents.PushBack(ident, a);
  json::set(doc, "identifier", std::move(idents), a);
  json::set(doc, "status", "in-progress", a);  // until its recipient acknowledges it (escalation.h)
  json::set(doc, "category", coding_concept(kDisclosureTopicSystem, topic.name, a), a);
  // The relapse focus is about the parent: the receiver is told whose
  // indicators to look out for by NHS number only, not given a pointer into
  // the parent's record. A discharge is about the young person it cares for.
  // A concern names the child as the Flag did, by NHS number: the authority
  // told of a referral need not have the child's record.
  const bool about_parent = topic.route == "linked-children";
  if (unmatched_subject) {
    json::set(doc, "subject", safe_reference(*unmatched_subject, a), a);
  } else {
    json::set(doc, "subject", person(subject_id, lookup, !about_parent && !concern, a), a);
    out.about.push_back(subject_id);
  }
  if (about_parent) {
    Value about(rapidjson::kArrayType);
    for (const auto& child : decision_.concerned) {
      about.PushBack(person(child, lookup, true, a), a);
      out.about.push_back(child);
    }
    if (!about.Empty()) json::set(doc, "about", std::move(about), a);
  }
  json::set(doc, "sent", change.ts, a);
  json::set(doc, "recipient", recipient(sub.owner.ods, a), a);
  if (const json::Value* s = sender_of(change.type, focus); s && s->IsObject())
    json::set(doc, "sender", safe_reference(*s, a), a);
  json::set(doc, "reasonCode", coding_concept(kDisclosurePurposeSystem, out.purpose, a), a);
  json::set(doc, "payload", payload_of(*lines, a), a);
  return out;
}

}  // namespace gw::events
