// FHIR -> CAMHS XML: the notifications the CAMHS system receives, first of all
// a Tier 4 discharge (Patient + Encounter class IMP). FORMAT.md ("Rendering")
// lists what is read. The document is built with libxml2 and validated against
// the same XSD before it leaves, so the CAMHS system never gets a file its own
// schema would refuse.
#include <libxml/xmlsave.h>

#include "adapters/camhs/camhs_adapter.h"
#include "gateway/common/json.h"
#include "gateway/identity/nhs_number.h"

namespace gw::adapters::camhs {
namespace {

using json::Value;


std::string_view date_part(std::string_view s) { return s.substr(0, std::min<std::size_t>(s.size(), 10)); }

// The value of the first identifier whose system starts with prefix.
std::string_view identifier_value(const Value& r, std::string_view prefix) {
  const Value* ids = json::member(r, "identifier");
  if (!ids || !ids->IsArray()) return {};
  for (const auto& i : ids->GetArray())
    if (json::get_string(i, "system").value_or("").starts_with(prefix)) return json::get_string(i, "value").value_or("");
  return {};
}

bool has_coding(const Value* cc, std::string_view system, std::string_view code) {
  const Value* cs = cc ? json::member(*cc, "coding") : nullptr;
  if (!cs || !cs->IsArray()) return false;
  for (const auto& c : cs->GetArray())
    if (json::get_string(c, "system").value_or("") == system && json::get_string(c, "code").value_or("") == code)
      return true;
  return false;
}

std::string_view code_with_prefix(const Value* cc, std::string_view prefix) {
  const Value* cs = cc ? json::member(*cc, "coding") : nullptr;
  if (!cs || !cs->IsArray()) return {};
  for (const auto& c : cs->GetArray())
    if (json::get_string(c, "system").value_or("").starts_with(prefix)) return json::get_string(c, "code").value_or("");
  return {};
}

void set_attr(xmlNode* n, const char* name, std::string_view v) {
  if (v.empty()) return;
  std::string s(v);
  xmlNewProp(n, reinterpret_cast<const xmlChar*>(name), reinterpret_cast<const xmlChar*>(s.c_str()));
}

xmlNode* child(xmlNode* parent, xmlNs* ns, const char* name) {
  return xmlNewChild(parent, ns, reinterpret_cast<const xmlChar*>(name), nullptr);
}

struct Entry {
  std::string_view full_url;
  const Value* resource;
};

bool refers_to(const Value& r, const Entry& patient) {
  const Value* sub = json::member(r, "subject");
  std::string_view ref = sub ? json::get_string(*sub, "reference").value_or("") : std::string_view();
  if (ref.empty()) return false;
  if (ref == patient.full_url) return true;
  auto id = json::get_string(*patient.resource, "id");
  return id && ref == "Patient/" + std::string(*id);
}

}  // namespace

Result<std::string> fhir_to_xml(const Bundle& in, const Tables& tables, const Schema& schema, IssueSink& issues) {
  auto parsed = json::parse(in.json);
  if (!parsed) return make_error(Errc::invalid_input, "Bundle is not JSON: " + parsed.error().message, "Bundle");
  const Value& b = *parsed;
  if (json::get_string(b, "resourceType").value_or("") != "Bundle")
    return make_error(Errc::invalid_input, "render needs a Bundle", "Bundle.resourceType");
  std::string_view timestamp = json::get_string(b, "timestamp").value_or("");
  if (timestamp.empty()) return make_error(Errc::unprocessable, "Bundle.timestamp is required (it becomes Created)", "Bundle.timestamp");

  std::vector<Entry> patients, spells, indicators;
  if (const Value* es = json::member(b, "entry"); es && es->IsArray()) {
    for (const auto& e : es->GetArray()) {
      const Value* r = json::member(e, "resource");
      if (!r || !r->IsObject()) continue;
      Entry x{json::get_string(e, "fullUrl").value_or(""), r};
      std::string_view type = json::get_string(*r, "resourceType").value_or("");
      if (type == "Patient") patients.push_back(x);
      else if (type == "Encounter") {
        const Value* cls = json::member(*r, "class");
        if (cls && json::get_string(*cls, "code").value_or("") == "IMP") spells.push_back(x);
      } else if (type == "Observation" && has_coding(json::member(*r, "code"), "https://cpis-gateway.nhs.uk/CodeSystem/camhs", "MHS005")) {
        indicators.push_back(x);
      }
    }
  }
  if (spells.empty()) return make_error(Errc::unprocessable, "render needs a hospital spell (Encounter with class IMP)", "Bundle.entry");
  if (patients.empty()) return make_error(Errc::unprocessable, "render needs the spell's Patient", "Bundle.entry");

  std::string_view provider;
  if (const Value* sp = json::member(*spells.front().resource, "serviceProvider"))
    if (const Value* id = json::member(*sp, "identifier")) provider = json::get_string(*id, "value").value_or("");
  if (provider.empty())
    return make_error(Errc::unprocessable, "the spell's serviceProvider ODS code is required (it becomes OrgIDProvider)",
                      "Encounter.serviceProvider.identifier.value");

  // The provider is the one whose LocalPatientID is sent, so that the CAMHS
  // system finds its own patient; without a local id, the spell's provider.
  for (const auto& pe : patients) {
    if (const Value* ids = json::member(*pe.resource, "identifier"); ids && ids->IsArray())
      for (const auto& i : ids->GetArray()) {
        std::string_view sys = json::get_string(i, "system").value_or("");
        if (sys.starts_with("urn:cpis-gateway:local-id:")) {
          provider = sys.substr(std::string_view("urn:cpis-gateway:local-id:").size());
          break;
        }
      }
    break;
  }
  // The reporting period is the indicators' date when they are sent, else the Bundle's date.
  std::string_view period = date_part(timestamp);
  if (!indicators.empty())
    if (auto eff = json::get_string(*indicators.front().resource, "effectiveDateTime")) period = date_part(*eff);

  DocPtr doc(xmlNewDoc(reinterpret_cast<const xmlChar*>("1.0")));
  xmlNode* root = xmlNewNode(nullptr, reinterpret_cast<const xmlChar*>("MHSExtract"));
  xmlNs* ns = xmlNewNs(root, reinterpret_cast<const xmlChar*>(std::string(kNamespace).c_str()), nullptr);
  xmlSetNs(root, ns);
  xmlDocSetRootElement(doc.get(), root);
  set_attr(root, "OrgIDProvider", provider);
  set_attr(root, "ReportingPeriodStart", period);
  set_attr(root, "ReportingPeriodEnd", period);
  set_attr(root, "Created", timestamp);

  std::map<std::string, std::string, std::less<>> gender_code;
  for (const auto& [code, g] : tables.gender) gender_code.emplace(g, code);  // first code per gender wins
  for (const auto& [code, g] : tables.gender)
    if (code == "1" || code == "2" || code == "9" || code == "X") gender_code[g] = code;

  std::size_t written = 0;
  for (std::size_t pi = 0; pi < patients.size(); ++pi) {
    const Entry& pe = patients[pi];
    const Value& p = *pe.resource;
    std::vector<const Value*> mine, inds;
    for (const auto& s : spells)
      if (refers_to(*s.resource, pe) || patients.size() == 1) mine.push_back(s.resource);
    for (const auto& s : indicators)
      if (refers_to(*s.resource, pe) || patients.size() == 1) inds.push_back(s.resource);
    if (mine.empty()) continue;
    xmlNode* xp = child(root, ns, "Patient");
    std::string_view nhs = identifier_value(p, identity::kNhsNumberSystem);
    std::string_view local = identifier_value(p, "urn:cpis-gateway:local-id:");
    if (local.empty()) local = nhs;
    if (local.empty())
      return make_error(Errc::unprocessable, "the Patient needs a local id or an NHS number (it becomes LocalPatientID)",
                        "Patient.identifier");
    set_attr(xp, "LocalPatientID", local);
    set_attr(xp, "NHSNumber", nhs);
    if (const Value* ids = json::member(p, "identifier"); ids && ids->IsArray() && !nhs.empty())
      for (const auto& i : ids->GetArray())
        if (json::get_string(i, "system").value_or("") == identity::kNhsNumberSystem)
          if (const Value* ext = json::member(i, "extension"); ext && ext->IsArray() && !ext->Empty())
            if (const Value* cc = json::member((*ext)[0], "valueCodeableConcept"))
              set_attr(xp, "NHSNumberStatus", code_with_prefix(cc, "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerification"));
    set_attr(xp, "BirthDate", json::get_string(p, "birthDate").value_or(""));
    if (auto g = json::get_string(p, "gender"); g) {
      auto it = gender_code.find(*g);
      if (it != gender_code.end()) set_attr(xp, "Gender", it->second);
    }
    if (const Value* ad = json::member(p, "address"); ad && ad->IsArray() && !ad->Empty())
      set_attr(xp, "Postcode", json::get_string((*ad)[0], "postalCode").value_or(""));
    if (const Value* ext = json::member(p, "extension"); ext && ext->IsArray())
      for (const auto& e : ext->GetArray())
        if (json::get_string(e, "url").value_or("") == "https://cpis-gateway.nhs.uk/StructureDefinition/education-establishment")
          if (const Value* vi = json::member(e, "valueIdentifier")) set_attr(xp, "OrgIDEduEstab", json::get_string(*vi, "value").value_or(""));

    if (!inds.empty()) {
      xmlNode* xi = child(xp, ns, "Indicators");
      if (const Value* comps = json::member(*inds.front(), "component"); comps && comps->IsArray())
        for (const auto& c : comps->GetArray()) {
          std::string_view which = code_with_prefix(json::member(c, "code"), "https://cpis-gateway.nhs.uk/CodeSystem/camhs");
          std::string prefix = "urn:cpis-gateway:camhs:mhs005-" + std::string(which) + ":";
          std::string_view v = code_with_prefix(json::member(c, "valueCodeableConcept"), prefix);
          if (which == "CPP" || which == "LACStatus" || which == "YoungCarer") set_attr(xi, std::string(which).c_str(), v);
        }
    }
    for (const Value* s : mine) {
      xmlNode* xs = child(xp, ns, "HospitalSpell");
      std::string_view id = identifier_value(*s, "urn:cpis-gateway:camhs:hospital-spell:");
      if (id.empty()) id = json::get_string(*s, "id").value_or("");
      if (id.empty())
        return make_error(Errc::unprocessable, "the spell needs an identifier or an id (it becomes HospProvSpellID)",
                          "Encounter.identifier");
      set_attr(xs, "HospProvSpellID", id);
      const Value* per = json::member(*s, "period");
      if (!per || !json::get_string(*per, "start"))
        return make_error(Errc::unprocessable, "the spell needs period.start (it becomes Start)", "Encounter.period.start");
      set_attr(xs, "Start", date_part(json::get_string(*per, "start").value_or("")));
      set_attr(xs, "End", date_part(json::get_string(*per, "end").value_or("")));
      if (has_coding(json::member(*s, "serviceType"), "https://cpis-gateway.nhs.uk/CodeSystem/service", "camhs-tier4"))
        set_attr(xs, "Tier", tables.tier4_values.front());
      else if (const Value* ty = json::member(*s, "type"); ty && ty->IsArray() && !ty->Empty())
        set_attr(xs, "Tier", code_with_prefix(&(*ty)[0], "urn:cpis-gateway:camhs:tier:"));
      if (const Value* loc = json::member(*s, "location"); loc && loc->IsArray() && !loc->Empty())
        if (const Value* l = json::member((*loc)[0], "location")) set_attr(xs, "Ward", json::get_string(*l, "display").value_or(""));
      if (const Value* h = json::member(*s, "hospitalization"))
        if (const Value* d = json::member(*h, "dischargeDisposition")) {
          const Value* cs = json::member(*d, "coding");
          if (cs && cs->IsArray() && !cs->Empty()) set_attr(xs, "DischargeDestination", json::get_string((*cs)[0], "code").value_or(""));
        }
      if (const Value* sp = json::member(*s, "serviceProvider"))
        if (const Value* i = json::member(*sp, "identifier")) set_attr(xs, "ProviderODS", json::get_string(*i, "value").value_or(""));
    }
    ++written;
  }
  if (written == 0) return make_error(Errc::unprocessable, "no spell refers to a Patient of the Bundle", "Encounter.subject");

  bool truncated = false;
  auto findings = validate(schema, doc.get(), tables.max_issues, &truncated);
  if (!findings.empty()) {
    for (const auto& f : findings)
      issues.error("structure", f.element + (f.attribute.empty() ? "" : "." + f.attribute), "rendered XML: XSD: " + f.message);
    return make_error(Errc::unprocessable, "the FHIR content does not fit the CAMHS schema; see the issues", "Bundle");
  }
  xmlChar* mem = nullptr;
  int size = 0;
  xmlDocDumpFormatMemoryEnc(doc.get(), &mem, &size, "UTF-8", 1);
  std::string out(reinterpret_cast<const char*>(mem), static_cast<std::size_t>(size));
  xmlFree(mem);
  return out;
}

}  // namespace gw::adapters::camhs
