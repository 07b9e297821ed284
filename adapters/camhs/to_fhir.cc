// CAMHS XML extract -> FHIR R4 transaction Bundle. FORMAT.md beside this file
// documents every element read and what it becomes.
//
// Order of work: size and DTD checks, well-formedness and root (any failure
// rejects the document), XSD validation (findings inside one Patient reject
// that record only; any other finding rejects the document), then one pass
// over the records. Each record is mapped into its own array of entries and
// only appended to the Bundle when it produced no error, so a rejected record
// leaves nothing behind.
#include <cstdio>
#include <random>
#include <set>

#include "adapters/camhs/camhs_adapter.h"
#include "gateway/common/json.h"
#include "gateway/identity/nhs_number.h"

namespace gw::adapters::camhs {
namespace {

using json::Value;
using identity::kNhsNumberSystem;

constexpr std::string_view kActCode = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
constexpr std::string_view kConf = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
constexpr std::string_view kOds = "https://fhir.nhs.uk/Id/ods-organization-code";
constexpr std::string_view kFamilyLink = "https://cpis-gateway.nhs.uk/Id/family-link";
constexpr std::string_view kRel0063 = "http://terminology.hl7.org/CodeSystem/v2-0063";
constexpr std::string_view kService = "https://cpis-gateway.nhs.uk/CodeSystem/service";
constexpr std::string_view kPlanStatus = "https://cpis-gateway.nhs.uk/CodeSystem/plan-status";
constexpr std::string_view kCarePlanCategory = "https://cpis-gateway.nhs.uk/CodeSystem/care-plan-category";
constexpr std::string_view kObsCategory = "https://cpis-gateway.nhs.uk/CodeSystem/observation-category";
constexpr std::string_view kCamhsCode = "https://cpis-gateway.nhs.uk/CodeSystem/camhs";
constexpr std::string_view kSct = "http://snomed.info/sct";
constexpr std::string_view kVsExtension =
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus";
constexpr std::string_view kVsSystem = "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland";
constexpr std::string_view kSchoolExt = "https://cpis-gateway.nhs.uk/StructureDefinition/education-establishment";
constexpr std::string_view kSchoolId = "https://cpis-gateway.nhs.uk/Id/school-urn";
constexpr std::string_view kReviewDue = "https://cpis-gateway.nhs.uk/StructureDefinition/review-due";
constexpr std::string_view kSourceUpdated = "https://cpis-gateway.nhs.uk/StructureDefinition/source-last-updated";
constexpr std::string_view kRefSource = "https://cpis-gateway.nhs.uk/StructureDefinition/referral-source";
constexpr std::string_view kRefPriority = "https://cpis-gateway.nhs.uk/StructureDefinition/referral-priority";

// Fresh version-4 UUIDs as "urn:uuid:..." (same scheme as the systmone adapter):
// unique within one Bundle; the server assigns the real ids.
std::string fresh_urn() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t a = rng(), b = rng();
  a = (a & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;
  b = (b & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
  char text[46];
  std::snprintf(text, sizeof text, "urn:uuid:%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                static_cast<unsigned>((a >> 16) & 0xffff), static_cast<unsigned>(a & 0xffff),
                static_cast<unsigned>(b >> 48), static_cast<unsigned long long>(b & 0xffffffffffffULL));
  return std::string(text, 45);
}

std::string local_system(std::string_view kind, std::string_view ods) {
  std::string s = "urn:cpis-gateway:camhs:";
  s += kind;
  s += ':';
  s += ods;
  return s;
}

class Mapper {
 public:
  // Each record is built in its own small pool and serialised as soon as it
  // is accepted, so memory is the output text plus one record, not a DOM of
  // the whole extract.
  Mapper(const Tables& t, IssueSink& issues) : t_(t), issues_(issues) {}

  // Returns the Bundle JSON; *accepted / *rejected count records.
  std::string run(const xmlNode* root, const std::set<const xmlNode*>& rejected, std::size_t* accepted,
                  std::size_t* rejected_count);

 private:
  // --- JSON building -------------------------------------------------------
  Value s(std::string_view v) { return json::str(v, *pool_); }
  static Value obj() { return Value(rapidjson::kObjectType); }
  static Value arr() { return Value(rapidjson::kArrayType); }
  void put(Value& o, const char* k, Value v) { o.AddMember(rapidjson::StringRef(k), v, *pool_); }
  void put(Value& o, const char* k, std::string_view v) { put(o, k, s(v)); }
  void push(Value& a, Value v) { a.PushBack(v, *pool_); }
  Value coding(std::string_view system, std::string_view code, std::string_view display = {}) {
    Value c = obj();
    put(c, "system", system);
    put(c, "code", code);
    if (!display.empty()) put(c, "display", display);
    return c;
  }
  Value codeable(Value coding_value, std::string_view text = {}) {
    Value c = obj();
    Value cs = arr();
    push(cs, std::move(coding_value));
    put(c, "coding", std::move(cs));
    if (!text.empty()) put(c, "text", text);
    return c;
  }
  Value identifier(std::string_view system, std::string_view value) {
    Value i = obj();
    put(i, "system", system);
    put(i, "value", value);
    return i;
  }
  Value ref(std::string_view urn) {
    Value r = obj();
    put(r, "reference", urn);
    return r;
  }
  Value ref_id(std::string_view type, std::string_view system, std::string_view value, std::string_view display = {}) {
    Value r = obj();
    put(r, "type", type);
    put(r, "identifier", identifier(system, value));
    if (!display.empty()) put(r, "display", display);
    return r;
  }
  Value org(std::string_view ods) { return ref_id("Organization", kOds, ods); }
  Value one(Value v) {
    Value a = arr();
    push(a, std::move(v));
    return a;
  }
  Value meta(std::string_view kind, const std::set<std::string>& labels);
  void add_entry(Value& entries, const std::string& urn, Value resource, std::string_view type,
                 std::string_view system, std::string_view value);

  // --- records -------------------------------------------------------------
  bool map_patient(const xmlNode* p);
  std::string where(std::string_view rest) const {
    std::string w = "Patient[LocalPatientID=" + std::string(key_) + "]";
    if (!rest.empty()) {
      w += '.';
      w += rest;
    }
    return w;
  }
  std::string at(std::string_view element, std::size_t n, std::string_view attribute = {}) const {
    std::string w = std::string(element) + "[" + std::to_string(n) + "]";
    if (!attribute.empty()) {
      w += '.';
      w += attribute;
    }
    return where(w);
  }
  void error(const char* code, std::string expr, std::string message) {
    issues_.error(code, std::move(expr), std::move(message));
    ++errors_;
  }
  void warning(const char* code, std::string expr, std::string message) {
    issues_.warning(code, std::move(expr), std::move(message));
  }
  Value subject() { return ref(patient_urn_); }
  std::string_view gender_of(std::string_view code) const {
    auto it = t_.gender.find(code);
    return it == t_.gender.end() ? std::string_view() : std::string_view(it->second);
  }

  const Tables& t_;
  IssueSink& issues_;
  json::Allocator* pool_ = nullptr;
  std::string out_;
  bool first_entry_ = true;
  std::string ods_, period_end_;
  std::string_view key_;
  int errors_ = 0;
  std::string patient_urn_;
};

Value Mapper::meta(std::string_view kind, const std::set<std::string>& labels) {
  const LabelRule& r = t_.label(kind);
  Value sec = arr();
  if (r.service) {
    for (const auto& l : labels)
      push(sec, coding(kActCode, l,
                       l == "SUD" ? "substance use disorder information sensitivity"
                                  : "psychiatry disorder information sensitivity"));
  }
  if (r.restricted) push(sec, coding(kConf, "R", "restricted"));
  Value m = obj();
  if (!sec.Empty()) put(m, "security", std::move(sec));
  return m;
}

void Mapper::add_entry(Value& entries, const std::string& urn, Value resource, std::string_view type,
                       std::string_view system, std::string_view value) {
  Value e = obj();
  put(e, "fullUrl", urn);
  put(e, "resource", std::move(resource));
  Value req = obj();
  put(req, "method", "PUT");
  std::string url(type);
  url += "?identifier=";
  url += system;
  url += '|';
  url += value;
  put(req, "url", url);
  put(e, "request", std::move(req));
  push(entries, std::move(e));
}

bool Mapper::map_patient(const xmlNode* p) {
  json::Allocator pool(1u << 16);
  pool_ = &pool;
  errors_ = 0;
  key_ = attr(p, "LocalPatientID");
  Value entries = arr();
  patient_urn_ = fresh_urn();

  // --- children by table ----------------------------------------------------
  std::vector<const xmlNode*> coords, referrals, contacts, spells, plans, signatures, observed, dependants;
  const xmlNode* indicators = nullptr;
  for (const xmlNode* c = p->children; c; c = c->next) {
    if (c->type != XML_ELEMENT_NODE) continue;
    std::string_view n = local_name(c);
    if (n == "Indicators") indicators = c;
    else if (n == "CareCoordinator") coords.push_back(c);
    else if (n == "Referral") referrals.push_back(c);
    else if (n == "CareContact") contacts.push_back(c);
    else if (n == "HospitalSpell") spells.push_back(c);
    else if (n == "CarePlan") plans.push_back(c);
    else if (n == "RelapseSignature") signatures.push_back(c);
    else if (n == "IndicatorObserved") observed.push_back(c);
    else if (n == "Dependant") dependants.push_back(c);
  }

  // --- the record's services and labels --------------------------------------
  std::set<std::string> labels;
  std::map<std::string, std::pair<const TeamType*, std::string>, std::less<>> referral_index;  // id -> (team, urn)
  for (std::size_t i = 0; i < referrals.size(); ++i) {
    std::string_view code = attr(referrals[i], "TeamType");
    const TeamType* tt = t_.team_type(code);
    if (!tt) {
      error("code-invalid", at("Referral", i, "TeamType"),
            "team type is not known (profiles/adapters/camhs.json teamTypes): the service and its PSY/SUD label "
            "cannot be decided, so the record is not loaded");
      continue;
    }
    labels.insert(tt->label);
    std::string_view id = attr(referrals[i], "ServiceRequestID");
    if (!referral_index.emplace(std::string(id), std::make_pair(tt, fresh_urn())).second)
      error("value", at("Referral", i, "ServiceRequestID"), "ServiceRequestID appears twice in the record");
  }
  if (labels.empty()) labels.insert(t_.default_label);
  const std::set<std::string>& record_labels = labels;

  // --- Patient -------------------------------------------------------------
  std::string nhs;
  std::string_view nhs_raw = attr(p, "NHSNumber");
  if (!nhs_raw.empty()) {
    auto nn = identity::normalise_nhs_number(nhs_raw);
    if (!nn) {
      warning("value", where("NHSNumber"),
              "NHS number is not valid (" + nn.error().message + "); the record is kept on LocalPatientID as unmatched");
    } else {
      nhs = *nn;
    }
  } else {
    warning("not-found", where("NHSNumber"), "no NHS number: the record is kept on LocalPatientID as unmatched");
  }
  const std::string local_sys = "urn:cpis-gateway:local-id:" + ods_;
  std::string_view parent_gender = gender_of(attr(p, "Gender"));
  {
    Value r = obj();
    put(r, "resourceType", "Patient");
    Value m = meta("patient", record_labels);
    if (nhs.empty()) {
      put(m, "tag", one(coding("urn:cpis-gateway:match", "unmatched")));
    }
    if (m.MemberCount() > 0) put(r, "meta", std::move(m));
    std::string_view school = attr(p, "OrgIDEduEstab");
    if (!school.empty()) {
      Value ext = obj();
      put(ext, "url", kSchoolExt);
      put(ext, "valueIdentifier", identifier(kSchoolId, school));
      put(r, "extension", one(std::move(ext)));
    }
    Value ids = arr();
    if (!nhs.empty()) {
      Value id = obj();
      std::string_view status = attr(p, "NHSNumberStatus");
      if (!status.empty()) {
        auto it = t_.verification_status.find(status);
        Value ext = obj();
        put(ext, "url", kVsExtension);
        put(ext, "valueCodeableConcept", codeable(coding(kVsSystem, status, it->second)));
        put(id, "extension", one(std::move(ext)));
      }
      put(id, "system", kNhsNumberSystem);
      put(id, "value", nhs);
      push(ids, std::move(id));
    }
    push(ids, identifier(local_sys, key_));
    put(r, "identifier", std::move(ids));
    std::string_view g = attr(p, "Gender");
    if (!g.empty()) {
      if (parent_gender.empty()) warning("code-invalid", where("Gender"), "gender code is not known; left out");
      else put(r, "gender", parent_gender);
    }
    if (!attr(p, "BirthDate").empty()) put(r, "birthDate", attr(p, "BirthDate"));
    if (!attr(p, "Postcode").empty()) {
      Value ad = obj();
      put(ad, "postalCode", attr(p, "Postcode"));
      put(r, "address", one(std::move(ad)));
    }
    if (nhs.empty()) add_entry(entries, patient_urn_, std::move(r), "Patient", local_sys, key_);
    else add_entry(entries, patient_urn_, std::move(r), "Patient", kNhsNumberSystem, nhs);
  }

  // --- Care coordinator -> one CareTeam per record -----------------------------
  const std::string prof_sys = local_system("care-professional", ods_);
  std::map<std::string, const xmlNode*, std::less<>> professionals;
  std::string care_team_urn;
  if (!coords.empty()) {
    care_team_urn = fresh_urn();
    Value r = obj();
    put(r, "resourceType", "CareTeam");
    Value m = meta("careCoordinator", record_labels);
    if (m.MemberCount() > 0) put(r, "meta", std::move(m));
    put(r, "identifier", one(identifier(local_system("care-coordination", ods_), key_)));
    bool any_open = false;
    Value parts = arr();
    Value telecoms = arr();
    for (const xmlNode* c : coords) {
      std::string_view id = attr(c, "CareProfLocalID");
      professionals.emplace(std::string(id), c);
      Value part = obj();
      put(part, "role", one(codeable(coding(kCamhsCode, "care-coordinator", "Care coordinator / lead professional"))));
      put(part, "member", ref_id("Practitioner", prof_sys, id, attr(c, "Name")));
      put(part, "onBehalfOf", org(ods_));
      Value per = obj();
      put(per, "start", attr(c, "Start"));
      if (!attr(c, "End").empty()) put(per, "end", attr(c, "End"));
      else any_open = true;
      put(part, "period", std::move(per));
      push(parts, std::move(part));
      if (!attr(c, "Phone").empty() && attr(c, "End").empty()) {
        Value tel = obj();
        put(tel, "system", "phone");
        put(tel, "value", attr(c, "Phone"));
        put(tel, "use", "work");
        push(telecoms, std::move(tel));
      }
    }
    put(r, "status", any_open ? "active" : "inactive");
    put(r, "category", one(codeable(coding(kCamhsCode, "care-coordination", "Mental health care coordination"))));
    std::string_view team = attr(coords.back(), "Team");
    if (!team.empty()) put(r, "name", team);
    put(r, "subject", subject());
    put(r, "participant", std::move(parts));
    put(r, "managingOrganization", one(org(ods_)));
    if (!telecoms.Empty()) put(r, "telecom", std::move(telecoms));
    add_entry(entries, care_team_urn, std::move(r), "CareTeam", local_system("care-coordination", ods_), key_);
  }
  auto professional = [&](std::string_view id) -> Value {
    auto it = professionals.find(id);
    return ref_id("Practitioner", prof_sys, id, it == professionals.end() ? std::string_view() : attr(it->second, "Name"));
  };

  // --- MHS005 indicators -> one Observation per record ------------------------
  if (indicators) {
    Value r = obj();
    put(r, "resourceType", "Observation");
    Value m = meta("patientIndicators", record_labels);
    if (m.MemberCount() > 0) put(r, "meta", std::move(m));
    put(r, "identifier", one(identifier(local_system("patient-indicators", ods_), key_)));
    put(r, "status", "final");
    put(r, "category", one(codeable(coding(kObsCategory, "safeguarding-indicators", "Safeguarding indicators"))));
    put(r, "code", codeable(coding(kCamhsCode, "MHS005", "Patient indicators (MHSDS MHS005)")));
    put(r, "subject", subject());
    put(r, "effectiveDateTime", period_end_);
    put(r, "performer", one(org(ods_)));
    Value comps = arr();
    struct Ind {
      const char* attribute;
      const char* code;
      const char* display;
      const std::map<std::string, IndicatorCode, std::less<>>* table;
    };
    const Ind inds[] = {{"CPP", "CPP", "Child protection plan indicator", &t_.cpp},
                        {"LACStatus", "LACStatus", "Looked after child status", &t_.lac_status},
                        {"YoungCarer", "YoungCarer", "Young carer", &t_.young_carer}};
    for (const Ind& ind : inds) {
      std::string_view v = attr(indicators, ind.attribute);
      if (v.empty()) continue;
      auto it = ind.table->find(v);
      if (it == ind.table->end()) {
        warning("code-invalid", where(std::string("Indicators.") + ind.attribute),
                "indicator code is not known; kept as sent");
      }
      Value comp = obj();
      put(comp, "code", codeable(coding(kCamhsCode, ind.code, ind.display)));
      Value val = obj();
      Value cs = arr();
      push(cs, coding(local_system(std::string("mhs005-") + ind.code, ods_), v,
                      it == ind.table->end() ? std::string_view() : std::string_view(it->second.display)));
      if (it != ind.table->end()) push(cs, coding(kPlanStatus, it->second.plan_status));
      put(val, "coding", std::move(cs));
      put(comp, "valueCodeableConcept", std::move(val));
      push(comps, std::move(comp));
    }
    if (!comps.Empty()) put(r, "component", std::move(comps));
    add_entry(entries, fresh_urn(), std::move(r), "Observation", local_system("patient-indicators", ods_), key_);
  }

  // --- Referrals -> EpisodeOfCare ----------------------------------------------
  const std::string ref_sys = local_system("referral", ods_);
  for (std::size_t i = 0; i < referrals.size(); ++i) {
    const xmlNode* x = referrals[i];
    std::string_view id = attr(x, "ServiceRequestID");
    auto it = referral_index.find(id);
    if (it == referral_index.end()) continue;  // unknown team type, already an error
    const TeamType& tt = *it->second.first;
    Value r = obj();
    put(r, "resourceType", "EpisodeOfCare");
    put(r, "meta", meta("referral", {tt.label}));
    std::string_view source = attr(x, "Source"), priority = attr(x, "Priority");
    Value exts = arr();
    if (!source.empty()) {
      auto s_it = t_.referral_source.find(source);
      if (s_it == t_.referral_source.end()) warning("code-invalid", at("Referral", i, "Source"), "referral source is not known; kept as sent");
      Value e = obj();
      put(e, "url", kRefSource);
      put(e, "valueCoding", coding(local_system("referral-source", ods_), source,
                                   s_it == t_.referral_source.end() ? std::string_view() : std::string_view(s_it->second)));
      push(exts, std::move(e));
    }
    if (!priority.empty()) {
      auto p_it = t_.priority.find(priority);
      if (p_it == t_.priority.end()) warning("code-invalid", at("Referral", i, "Priority"), "priority is not known; kept as sent");
      Value e = obj();
      put(e, "url", kRefPriority);
      put(e, "valueCoding", coding(local_system("priority", ods_), priority,
                                   p_it == t_.priority.end() ? std::string_view() : std::string_view(p_it->second)));
      push(exts, std::move(e));
    }
    if (!exts.Empty()) put(r, "extension", std::move(exts));
    put(r, "identifier", one(identifier(ref_sys, id)));
    std::string_view discharged = attr(x, "Discharged");
    put(r, "status", discharged.empty() ? "active" : "finished");
    Value types = arr();
    push(types, codeable(coding(kService, tt.service, tt.display)));
    push(types, codeable(coding(local_system("team-type", ods_), attr(x, "TeamType"))));
    put(r, "type", std::move(types));
    put(r, "patient", subject());
    put(r, "managingOrganization", org(ods_));
    Value per = obj();
    put(per, "start", attr(x, "Received"));
    if (!discharged.empty()) put(per, "end", discharged);
    put(r, "period", std::move(per));
    if (!care_team_urn.empty()) put(r, "team", one(ref(care_team_urn)));
    add_entry(entries, it->second.second, std::move(r), "EpisodeOfCare", ref_sys, id);
  }

  // --- Care contacts -> Encounter (AMB) -------------------------------------------
  std::map<std::string, int, std::less<>> contact_seq;
  for (std::size_t i = 0; i < contacts.size(); ++i) {
    const xmlNode* x = contacts[i];
    std::string_view rid = attr(x, "ServiceRequestID");
    auto rit = referral_index.find(rid);
    std::string_view attended = attr(x, "Attended");
    auto a_it = t_.attend_status.find(attended);
    if (a_it == t_.attend_status.end()) {
      warning("code-invalid", at("CareContact", i, "Attended"), "attendance code is not known; status left unknown");
    }
    std::string cid(attr(x, "CareContactID"));
    if (cid.empty()) {
      // No CareContactID: referral/date/n-th on that date, stable while the extract is re-sent as is.
      std::string base = std::string(rid) + "-" + std::string(attr(x, "Date"));
      cid = base + "-" + std::to_string(++contact_seq[base]);
    }
    const std::set<std::string> lab = rit != referral_index.end() ? std::set<std::string>{rit->second.first->label} : record_labels;
    Value r = obj();
    put(r, "resourceType", "Encounter");
    put(r, "meta", meta("careContact", lab));
    const std::string sys = local_system("care-contact", ods_);
    put(r, "identifier", one(identifier(sys, cid)));
    put(r, "status", a_it == t_.attend_status.end() ? std::string_view("unknown") : std::string_view(a_it->second.status));
    put(r, "class", coding(kActCode, "AMB", "ambulatory"));
    put(r, "type", one(codeable(coding(local_system("attend-status", ods_), attended,
                                      a_it == t_.attend_status.end() ? std::string_view() : std::string_view(a_it->second.display)))));
    if (rit != referral_index.end())
      put(r, "serviceType", codeable(coding(kService, rit->second.first->service, rit->second.first->display)));
    put(r, "subject", subject());
    if (rit != referral_index.end()) {
      Value er = ref_id("EpisodeOfCare", ref_sys, rid);
      put(er, "reference", rit->second.second);
      put(r, "episodeOfCare", one(std::move(er)));
    } else {
      put(r, "episodeOfCare", one(ref_id("EpisodeOfCare", ref_sys, rid)));
    }
    Value per = obj();
    put(per, "start", attr(x, "Date"));
    put(r, "period", std::move(per));
    put(r, "serviceProvider", org(ods_));
    add_entry(entries, fresh_urn(), std::move(r), "Encounter", sys, cid);
  }

  // --- Hospital spells -> Encounter (IMP); Tier 4 marked by serviceType ------------------
  for (std::size_t i = 0; i < spells.size(); ++i) {
    const xmlNode* x = spells[i];
    std::string_view id = attr(x, "HospProvSpellID");
    std::string_view tier = attr(x, "Tier");
    const bool tier4 = t_.is_tier4(tier);
    Value r = obj();
    put(r, "resourceType", "Encounter");
    put(r, "meta", meta("hospitalSpell", record_labels));
    const std::string sys = local_system("hospital-spell", ods_);
    put(r, "identifier", one(identifier(sys, id)));
    std::string_view end = attr(x, "End");
    put(r, "status", end.empty() ? "in-progress" : "finished");
    put(r, "class", coding(kActCode, "IMP", "inpatient encounter"));
    if (!tier.empty()) put(r, "type", one(codeable(coding(local_system("tier", ods_), tier))));
    if (tier4) put(r, "serviceType", codeable(coding(kService, "camhs-tier4", "CAMHS Tier 4 inpatient service")));
    put(r, "subject", subject());
    Value per = obj();
    put(per, "start", attr(x, "Start"));
    if (!end.empty()) put(per, "end", end);
    put(r, "period", std::move(per));
    std::string_view dest = attr(x, "DischargeDestination");
    if (!dest.empty()) {
      auto d_it = t_.discharge_destination.find(dest);
      if (d_it == t_.discharge_destination.end())
        warning("code-invalid", at("HospitalSpell", i, "DischargeDestination"), "discharge destination is not known; kept as sent");
      Value h = obj();
      put(h, "dischargeDisposition",
          codeable(coding(local_system("discharge-destination", ods_), dest,
                         d_it == t_.discharge_destination.end() ? std::string_view() : std::string_view(d_it->second))));
      put(r, "hospitalization", std::move(h));
    }
    if (!attr(x, "Ward").empty()) {
      Value l = obj();
      Value lr = obj();
      put(lr, "display", attr(x, "Ward"));
      put(l, "location", std::move(lr));
      put(r, "location", one(std::move(l)));
    }
    put(r, "serviceProvider", org(attr(x, "ProviderODS").empty() ? std::string_view(ods_) : attr(x, "ProviderODS")));
    add_entry(entries, fresh_urn(), std::move(r), "Encounter", sys, id);
  }

  // --- MHS008 care plans -> CarePlan --------------------------------------------------
  for (std::size_t i = 0; i < plans.size(); ++i) {
    const xmlNode* x = plans[i];
    std::string_view id = attr(x, "CarePlanID"), type = attr(x, "Type");
    auto t_it = t_.care_plan_type.find(type);
    if (t_it == t_.care_plan_type.end()) warning("code-invalid", at("CarePlan", i, "Type"), "care plan type is not known; kept as sent");
    Value r = obj();
    put(r, "resourceType", "CarePlan");
    put(r, "meta", meta("carePlan", record_labels));
    if (!attr(x, "Updated").empty()) {
      Value e = obj();
      put(e, "url", kSourceUpdated);
      put(e, "valueDate", attr(x, "Updated"));
      put(r, "extension", one(std::move(e)));
    }
    const std::string sys = local_system("care-plan", ods_);
    put(r, "identifier", one(identifier(sys, id)));
    put(r, "status", "active");
    put(r, "intent", "plan");
    put(r, "category", one(codeable(coding(local_system("care-plan-type", ods_), type,
                                          t_it == t_.care_plan_type.end() ? std::string_view() : std::string_view(t_it->second)))));
    put(r, "subject", subject());
    put(r, "created", attr(x, "Created"));
    if (!care_team_urn.empty()) put(r, "careTeam", one(ref(care_team_urn)));
    add_entry(entries, fresh_urn(), std::move(r), "CarePlan", sys, id);
  }

  // --- Relapse signatures -> CarePlan (relapse-prevention) ----------------------------------
  const std::string sig_sys = local_system("relapse-signature", ods_);
  std::map<std::string, std::pair<std::string, const xmlNode*>, std::less<>> sig_index;  // CarePlanID -> (urn, node)
  for (std::size_t i = 0; i < signatures.size(); ++i) {
    const xmlNode* x = signatures[i];
    std::string_view id = attr(x, "CarePlanID");
    std::string urn = fresh_urn();
    if (!sig_index.emplace(std::string(id), std::make_pair(urn, x)).second) {
      error("value", at("RelapseSignature", i, "CarePlanID"), "relapse signature CarePlanID appears twice in the record");
      continue;
    }
    Value r = obj();
    put(r, "resourceType", "CarePlan");
    put(r, "meta", meta("relapseSignature", record_labels));
    if (!attr(x, "ReviewDue").empty()) {
      Value e = obj();
      put(e, "url", kReviewDue);
      put(e, "valueDate", attr(x, "ReviewDue"));
      put(r, "extension", one(std::move(e)));
    }
    put(r, "identifier", one(identifier(sig_sys, id)));
    put(r, "status", "active");
    put(r, "intent", "plan");
    Value cats = arr();
    push(cats, codeable(coding(kCarePlanCategory, "relapse-prevention", "Relapse prevention plan (relapse signature)")));
    if (record_labels.count("SUD")) push(cats, codeable(coding(kSct, "720177001", "Drug relapse prevention program")));
    put(r, "category", std::move(cats));
    put(r, "title", "Relapse signature");
    put(r, "subject", subject());
    put(r, "created", attr(x, "Recorded"));
    if (!attr(x, "CareProfLocalID").empty()) put(r, "author", professional(attr(x, "CareProfLocalID")));
    if (!care_team_urn.empty()) put(r, "careTeam", one(ref(care_team_urn)));
    Value acts = arr();
    std::set<std::string, std::less<>> seqs;
    std::size_t ind_n = 0;
    for (const xmlNode* c = x->children; c; c = c->next) {
      if (is_element(c, "Indicator")) {
        std::string_view seq = attr(c, "Seq");
        if (!seqs.insert(std::string(seq)).second)
          error("value", at("RelapseSignature", i, "Indicator[" + std::to_string(ind_n) + "].Seq"), "indicator Seq appears twice");
        ++ind_n;
        Value act = obj();
        put(act, "id", "indicator-" + std::string(seq));
        Value det = obj();
        Value code = obj();
        Value cs = arr();
        push(cs, coding(kCamhsCode, "relapse-indicator", "Relapse indicator (early warning sign)"));
        if (!attr(c, "Snomed").empty()) push(cs, coding(kSct, attr(c, "Snomed")));
        put(code, "coding", std::move(cs));
        put(code, "text", attr(c, "Text"));
        put(det, "code", std::move(code));
        put(det, "status", "in-progress");
        put(det, "description", attr(c, "Text"));
        put(act, "detail", std::move(det));
        push(acts, std::move(act));
      } else if (is_element(c, "Action")) {
        Value act = obj();
        put(act, "id", "action");
        Value det = obj();
        put(det, "kind", "CommunicationRequest");
        put(det, "code", codeable(coding(kCamhsCode, "relapse-action", "Agreed action when an indicator is seen")));
        put(det, "status", "not-started");
        put(det, "description", text_of(c));
        put(act, "detail", std::move(det));
        push(acts, std::move(act));
      }
    }
    put(r, "activity", std::move(acts));
    add_entry(entries, urn, std::move(r), "CarePlan", sig_sys, id);
  }

  // --- Indicators observed -> Observation -----------------------------------------------
  for (std::size_t i = 0; i < observed.size(); ++i) {
    const xmlNode* x = observed[i];
    std::string_view seq = attr(x, "Seq");
    std::string plan(attr(x, "CarePlanID"));
    if (plan.empty()) {
      if (sig_index.size() == 1) plan = sig_index.begin()->first;
      else {
        error("required", at("IndicatorObserved", i, "CarePlanID"),
              sig_index.empty() ? "CarePlanID is required when the record has no RelapseSignature"
                                : "CarePlanID is required when the record has several relapse signatures");
        continue;
      }
    }
    auto s_it = sig_index.find(plan);
    std::string text;
    std::string snomed;
    if (s_it != sig_index.end()) {
      bool found = false;
      for (const xmlNode* c = s_it->second.second->children; c; c = c->next)
        if (is_element(c, "Indicator") && attr(c, "Seq") == seq) {
          text = std::string(attr(c, "Text"));
          snomed = std::string(attr(c, "Snomed"));
          found = true;
        }
      if (!found) {
        error("value", at("IndicatorObserved", i, "Seq"), "no Indicator with this Seq in the relapse signature");
        continue;
      }
    }
    const std::string sys = local_system("indicator-observed", ods_);
    const std::string id = plan + "-" + std::string(seq) + "-" + std::string(attr(x, "Date"));
    Value r = obj();
    put(r, "resourceType", "Observation");
    put(r, "meta", meta("indicatorObserved", record_labels));
    put(r, "identifier", one(identifier(sys, id)));
    Value based = ref_id("CarePlan", sig_sys, plan);
    if (s_it != sig_index.end()) put(based, "reference", s_it->second.first);
    put(r, "basedOn", one(std::move(based)));
    put(r, "status", "final");
    put(r, "category", one(codeable(coding(kObsCategory, "relapse-indicator", "Relapse indicator observed"))));
    Value code = obj();
    Value cs = arr();
    push(cs, coding(kCamhsCode, "relapse-indicator-observed", "Relapse indicator observed"));
    if (!snomed.empty()) push(cs, coding(kSct, snomed));
    put(code, "coding", std::move(cs));
    if (!text.empty()) put(code, "text", text);
    put(r, "code", std::move(code));
    put(r, "subject", subject());
    put(r, "effectiveDateTime", attr(x, "Date"));
    Value perf = arr();
    if (!attr(x, "ObservedBy").empty()) push(perf, professional(attr(x, "ObservedBy")));
    push(perf, org(ods_));
    put(r, "performer", std::move(perf));
    Value comp = obj();
    put(comp, "code", codeable(coding(kCamhsCode, "indicator-seq", "Relapse signature indicator number")));
    put(comp, "valueInteger", Value(std::atoi(std::string(seq).c_str())));
    put(r, "component", one(std::move(comp)));
    for (const xmlNode* c = x->children; c; c = c->next)
      if (is_element(c, "Note")) {
        Value note = obj();
        put(note, "text", text_of(c));
        put(r, "note", one(std::move(note)));
      }
    add_entry(entries, fresh_urn(), std::move(r), "Observation", sys, id);
  }

  // --- Dependants -> family links (same shape and keys as the systmone adapter) ----------------
  for (std::size_t i = 0; i < dependants.size(); ++i) {
    const xmlNode* x = dependants[i];
    std::string_view raw = attr(x, "NHSNumber");
    if (raw.empty()) {
      warning("not-found", at("Dependant", i, "NHSNumber"), "dependant has no NHS number: no family link made");
      continue;
    }
    auto nn = identity::normalise_nhs_number(raw);
    if (!nn) {
      warning("value", at("Dependant", i, "NHSNumber"),
              "dependant's NHS number is not valid (" + nn.error().message + "): no family link made");
      continue;
    }
    std::string_view rel = attr(x, "Relationship");
    auto r_it = t_.relationships.find(rel);
    if (r_it == t_.relationships.end()) {
      warning("code-invalid", at("Dependant", i, "Relationship"), "relationship is not a known child relationship: no family link made");
      continue;
    }
    if (nhs.empty()) {
      warning("not-found", at("Dependant", i), "family link needs the patient's NHS number: not linked");
      continue;
    }
    const std::string& child = *nn;
    if (child == nhs) {
      warning("value", at("Dependant", i, "NHSNumber"), "dependant's NHS number is the patient's own: no family link made");
      continue;
    }
    const Coded& sees = rel == "FCH" ? t_.foster_child_sees
                                     : t_.parent_by_gender.find(parent_gender.empty() ? std::string_view("unknown") : parent_gender)->second;
    // The child may not be known yet: create it if absent, never overwrite it.
    std::string child_urn = fresh_urn();
    {
      Value c = obj();
      put(c, "resourceType", "Patient");
      Value cid = obj();
      put(cid, "system", kNhsNumberSystem);
      put(cid, "value", child);
      put(c, "identifier", one(std::move(cid)));
      if (!attr(x, "LocalName").empty()) {
        Value n = obj();
        put(n, "text", attr(x, "LocalName"));
        put(c, "name", one(std::move(n)));
      }
      if (!attr(x, "BirthDate").empty()) put(c, "birthDate", attr(x, "BirthDate"));
      Value e = obj();
      put(e, "fullUrl", child_urn);
      put(e, "resource", std::move(c));
      Value req = obj();
      put(req, "method", "POST");
      put(req, "url", "Patient");
      put(req, "ifNoneExist", "identifier=" + std::string(kNhsNumberSystem) + "|" + child);
      put(e, "request", std::move(req));
      push(entries, std::move(e));
    }
    const std::string link = child + "-" + nhs;
    Value r = obj();
    put(r, "resourceType", "RelatedPerson");
    Value ids = arr();
    push(ids, identifier(kFamilyLink, link));
    push(ids, identifier(kNhsNumberSystem, nhs));
    put(r, "identifier", std::move(ids));
    put(r, "active", Value(true));
    put(r, "patient", ref(child_urn));
    put(r, "relationship", one(codeable(coding(kRel0063, sees.code, sees.display))));
    if (!parent_gender.empty()) put(r, "gender", parent_gender);
    add_entry(entries, fresh_urn(), std::move(r), "RelatedPerson", kFamilyLink, link);
  }

  if (errors_ > 0) return false;
  for (const auto& e : entries.GetArray()) {
    if (!first_entry_) out_ += ',';
    first_entry_ = false;
    json::write_to(e, out_);
  }
  return true;
}

std::string Mapper::run(const xmlNode* root, const std::set<const xmlNode*>& rejected, std::size_t* accepted,
                        std::size_t* rejected_count) {
  ods_ = std::string(attr(root, "OrgIDProvider"));
  period_end_ = std::string(attr(root, "ReportingPeriodEnd"));
  json::Allocator pool(1u << 12);
  pool_ = &pool;
  // Members are written in the order they are known: meta (partial) last.
  out_ = "{\"resourceType\":\"Bundle\",\"identifier\":";
  json::write_to(identifier(local_system("extract", ods_), attr(root, "Created")), out_);
  out_ += ",\"type\":\"transaction\",\"timestamp\":";
  json::write_to(s(attr(root, "Created")), out_);
  out_ += ",\"entry\":[";
  const std::size_t empty_size = out_.size();
  for (const xmlNode* p = root->children; p; p = p->next) {
    if (!is_element(p, "Patient")) continue;
    key_ = attr(p, "LocalPatientID");
    if (rejected.count(p)) {
      ++*rejected_count;
      issues_.error("processing", where(""), "record rejected: it is not valid against the schema");
      continue;
    }
    if (map_patient(p)) {
      ++*accepted;
      issues_.add(Severity::information, "informational", where(""), "record accepted");
    } else {
      ++*rejected_count;
      issues_.error("processing", where(""), "record rejected: see the issues for this record");
    }
  }
  pool_ = &pool;
  if (out_.size() == empty_size) out_.resize(empty_size - std::string_view(",\"entry\":[").size());  // no empty arrays in FHIR JSON
  else out_ += ']';
  if (*rejected_count > 0) {
    Value m = obj();
    put(m, "tag", one(coding("urn:cpis-gateway:extract-result", "partial", "Some records were rejected")));
    out_ += ",\"meta\":";
    json::write_to(m, out_);
  }
  out_ += '}';
  return std::move(out_);
}

}  // namespace

Result<Bundle> xml_to_fhir(std::string_view raw, const Tables& tables, const Schema& schema, IssueSink& issues) {
  auto doc = read_document(raw, tables.max_document_bytes);
  if (!doc) {
    issues.add(Severity::fatal, doc.error().code == Errc::too_large ? "too-costly" : "structure",
               doc.error().expression, doc.error().message);
    return doc.error();
  }
  bool truncated = false;
  auto findings = validate(schema, doc->get(), tables.max_issues, &truncated);
  // Records are told apart safely when every finding lies inside a Patient
  // that has its own LocalPatientID (the XSD makes them unique); a finding at
  // document level, or in a record without a usable key, rejects the document.
  std::set<const xmlNode*> rejected;
  bool document_level = truncated;
  for (const auto& f : findings) {
    std::string expr;
    if (f.record && !attr(f.record, "LocalPatientID").empty()) {
      rejected.insert(f.record);
      expr = "Patient[LocalPatientID=" + std::string(attr(f.record, "LocalPatientID")) + "]";
      if (f.element != "Patient") expr += "." + f.element;
      if (!f.attribute.empty()) expr += "." + f.attribute;
    } else {
      document_level = true;
      expr = f.element.empty() ? "MHSExtract" : f.element;
      if (!f.attribute.empty()) expr += "." + f.attribute;
    }
    issues.error("structure", expr,
                 "line " + std::to_string(f.line) + ", element '" + f.element + "': XSD: " + f.message);
  }
  if (document_level) {
    return make_error(Errc::unprocessable,
                      truncated ? "document is not valid against camhs.xsd (too many findings; first " +
                                      std::to_string(findings.size()) + " reported)"
                                : "document is not valid against camhs.xsd at document level; see the issues",
                      findings.empty() ? "MHSExtract" : findings.front().element);
  }
  Mapper m(tables, issues);
  std::size_t accepted = 0, rejected_count = 0;
  std::string json = m.run(xmlDocGetRootElement(doc->get()), rejected, &accepted, &rejected_count);
  if (accepted == 0 && rejected_count > 0)
    return make_error(Errc::unprocessable, "every record of the document was rejected; see the issues", "Patient");
  return Bundle{std::move(json)};
}

}  // namespace gw::adapters::camhs
