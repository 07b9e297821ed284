#include "gateway/safeguarding/chronology.h"

#include <algorithm>
#include <filesystem>

#include "gateway/area/profile_file.h"
#include "gateway/common/json.h"
#include "gateway/events/flows/flow_kit.h"
#include "gateway/identity/nhs_number.h"
#include "gateway/model/cpis_plan.h"
#include "gateway/model/resource_text.h"

namespace gw::safeguarding {

namespace {

using events::flows::str;
namespace fk = events::flows;

constexpr std::string_view kCategorySystem = "https://cpis-gateway.nhs.uk/CodeSystem/chronology-category";
constexpr std::string_view kSourceUrl = "https://cpis-gateway.nhs.uk/StructureDefinition/chronology-source";
constexpr std::string_view kTier4 = "https://cpis-gateway.nhs.uk/CodeSystem/service|camhs-tier4";
constexpr std::string_view kRelapsePlan = "https://cpis-gateway.nhs.uk/CodeSystem/care-plan-category|relapse-prevention";
constexpr std::string_view kRelapseObserved =
    "https://cpis-gateway.nhs.uk/CodeSystem/observation-category|relapse-indicator";
constexpr std::string_view kTopicSystem = "https://cpis-gateway.nhs.uk/CodeSystem/notification-topic";

// Every current resource of `type` matching one constraint, paged.
std::vector<store::StoredResource> all_of(store::Store& s, const std::string& type, const std::string& param,
                                          const std::string& system, const std::string& value) {
  std::vector<store::StoredResource> out;
  for (int64_t offset = 0;; offset += 1000) {
    store::SearchQuery q;
    q.type = type;
    q.params.push_back(store::ParamConstraint{param, {{system, value}}});
    q.count = 1000;
    q.offset = offset;
    q.want_total = false;
    auto page = s.search(q);
    if (!page) return out;
    for (auto& r : page->items) out.push_back(std::move(r));
    if (page->items.size() < 1000) return out;
  }
}

std::string nhs_of(const json::Value& patient) {
  if (const json::Value* ids = json::member(patient, "identifier"); ids && ids->IsArray())
    for (const auto& i : ids->GetArray())
      if (str(i, "system") == identity::kNhsNumberSystem) return str(i, "value");
  return {};
}

struct Candidate {
  ChronologyEntry entry;
  const store::StoredResource* resource;  // what must be readable for a reference
  std::vector<std::string> labels{};      // its meta.security codes
};

class Builder {
 public:
  Builder(store::Store& s, const security::Visibility& v, const security::Principal& who, const ChronologyRules& r,
          const area::Area& area)
      : store_(s), vis_(v), who_(who), rules_(r), area_(area) {}

  void classify(const store::StoredResource& r, const json::Value& d, bool about_parent) {
    auto add = [&](std::string date, std::string category, std::string text, std::string source) {
      if (date.empty()) return;
      candidates_.push_back(Candidate{{std::move(date), std::move(category), std::move(text), std::move(source), ""},
                                      &r, model::security_labels(d)});
    };
    std::string status = str(d, "status");
    if (status == "entered-in-error") return;
    const json::Value* period = json::member(d, "period");
    std::string start = period ? str(*period, "start") : std::string(), end = period ? str(*period, "end") : std::string();
    if (about_parent) {
      if (r.type == "CarePlan" && fk::coded(d, kRelapsePlan))
        add(str(d, "created").empty() ? r.last_updated : str(d, "created"), "parent-relapse-plan",
            "A parent's relapse-prevention plan", "");
      else if (r.type == "Observation" && fk::coded(d, kRelapseObserved))
        add(str(d, "effectiveDateTime"), "parent-relapse-indicator", "A relapse indicator observed for a parent", "");
      return;
    }
    if (r.type == "CareTeam") {
      if (const auto* type = model::cpis::plan_type_of(d)) {
        std::string la = model::cpis::managing_ods(d);
        add(start, "cpis-plan-start", std::string(type->display) + " started", la);
        add(end, "cpis-plan-end", std::string(type->display) + " ended", la);
      }
      return;
    }
    if ((r.type == "Encounter" || r.type == "Observation") &&
        (fk::coded_any(d, area_.lac().completion_codes.at("IHA")) || fk::coded_any(d, area_.lac().completion_codes.at("RHA")))) {
      bool initial = fk::coded_any(d, area_.lac().completion_codes.at("IHA"));
      add(r.type == "Encounter" ? start : str(d, "effectiveDateTime"), "lac-health-assessment",
          initial ? "Initial health assessment (looked-after child)" : "Review health assessment (looked-after child)",
          fk::ods_of(json::member(d, "serviceProvider")));
      return;
    }
    if (r.type == "Encounter") {
      if (fk::concept_has(json::member(d, "serviceType"), kTier4)) {
        add(end.empty() ? start : end, "tier4-spell",
            end.empty() ? "Tier 4 CAMHS inpatient admission" : "Discharged from Tier 4 CAMHS inpatient care",
            fk::ods_of(json::member(d, "serviceProvider")));
        return;
      }
      const json::Value* cls = json::member(d, "class");
      if (cls && str(*cls, "code") == "EMER") {
        std::string site;
        if (const json::Value* l = json::member(d, "location"); l && l->IsArray() && !l->Empty())
          site = fk::ods_of(json::member((*l)[0], "location"));
        if (site.empty()) site = fk::ods_of(json::member(d, "serviceProvider"));
        add(start, "ed-attendance", "Emergency department attendance" + (site.empty() ? "" : " at " + site), site);
      }
      return;
    }
    if (r.type == "Flag") {
      add(start.empty() ? r.last_updated : start, "safeguarding-concern", "Safeguarding concern recorded",
          fk::ods_of(json::member(d, "author")));
      return;
    }
    if (r.type == "Communication") {
      std::string topic;
      if (const json::Value* cats = json::member(d, "category"); cats && cats->IsArray())
        for (const auto& c : cats->GetArray())
          if (const json::Value* cs = json::member(c, "coding"); cs && cs->IsArray())
            for (const auto& x : cs->GetArray())
              if (str(x, "system") == kTopicSystem) topic = str(x, "code");
      add(str(d, "sent"), "disclosure", "Notification received by your organisation: " + topic, "");
      return;
    }
  }

  void booking(const store::StoredResource& r, const json::Value& d, const std::string& child_birth) {
    if (!fk::concept_has(json::member(d, "type"), fk::kMaternity) || str(d, "status") == "entered-in-error") return;
    const json::Value* period = json::member(d, "period");
    std::string start = period ? fk::date_part(str(*period, "start")) : std::string();
    auto b = area::parse_date(child_birth);
    auto s = area::parse_date(start);
    // While the child was unborn: booked before the birth, at most ten months before it.
    if (!b || !s || *s > *b || area::add_months(*s, 10) < *b) return;
    candidates_.push_back(Candidate{{start, "pregnancy-booking", "The mother's pregnancy booking (before birth)",
                                     fk::ods_of(json::member(d, "managingOrganization")), ""},
                                    &r});
  }

  void merge(const store::StoredResource& old, const json::Value& d) {
    candidates_.push_back(Candidate{{old.last_updated, "nhs-number-merge",
                                     "NHS number " + nhs_of(d) + " merged into this record", "", ""},
                                    &old});
  }

  ChronologyResult finish(const std::string& patient_id, const std::string& base, const std::string& now) {
    ChronologyResult out;
    std::vector<ChronologyEntry> entries;
    for (auto& c : candidates_) {
      if (readable(*c.resource)) {
        c.entry.reference = c.resource->type + "/" + c.resource->id;
        entries.push_back(std::move(c.entry));
        continue;
      }
      bool never = std::any_of(c.labels.begin(), c.labels.end(), [&](const std::string& l) {
        return std::find(rules_.never_summarised.begin(), rules_.never_summarised.end(), l) !=
               rules_.never_summarised.end();
      });
      auto s = rules_.summaries.find(c.entry.category);
      if (!never && s != rules_.summaries.end() &&
          std::find(s->second.roles.begin(), s->second.roles.end(), who_.role) != s->second.roles.end()) {
        c.entry.text = s->second.text;
        c.entry.source.clear();
        entries.push_back(std::move(c.entry));
        ++out.summarised;
      } else {
        ++out.withheld;
      }
    }
    std::stable_sort(entries.begin(), entries.end(),
                     [](const ChronologyEntry& a, const ChronologyEntry& b) { return a.date > b.date; });
    out.entries = entries.size();
    json::Document doc;
    doc.SetObject();
    auto& a = doc.GetAllocator();
    json::set(doc, "resourceType", "Bundle", a);
    json::set(doc, "type", "collection", a);
    json::set(doc, "timestamp", now, a);
    json::Value list(rapidjson::kObjectType);
    json::set(list, "resourceType", "List", a);
    json::set(list, "status", "current", a);
    json::set(list, "mode", "snapshot", a);
    json::set(list, "title", "Chronology of significant events", a);
    auto concept_of = [&](std::string_view system, std::string_view code, std::string_view display) {
      json::Value c(rapidjson::kObjectType);
      json::set(c, "system", system, a);
      json::set(c, "code", code, a);
      if (!display.empty()) json::set(c, "display", display, a);
      json::Value cs(rapidjson::kArrayType);
      cs.PushBack(c, a);
      json::Value cc(rapidjson::kObjectType);
      json::set(cc, "coding", std::move(cs), a);
      return cc;
    };
    json::set(list, "code", concept_of("https://cpis-gateway.nhs.uk/CodeSystem/list-code", "chronology", "Chronology"), a);
    json::Value subj(rapidjson::kObjectType);
    json::set(subj, "reference", "Patient/" + patient_id, a);
    json::set(list, "subject", std::move(subj), a);
    json::set(list, "date", now, a);
    json::set(list, "orderedBy",
              concept_of("http://terminology.hl7.org/CodeSystem/list-order", "event-date", "Sorted by Event Date"), a);
    json::Value items(rapidjson::kArrayType);
    for (const auto& e : entries) {
      json::Value it(rapidjson::kObjectType);
      if (!e.source.empty()) {
        json::Value ext(rapidjson::kObjectType);
        json::set(ext, "url", kSourceUrl, a);
        json::Value ref(rapidjson::kObjectType);
        json::set(ref, "type", "Organization", a);
        json::Value id(rapidjson::kObjectType);
        json::set(id, "system", model::cpis::kOdsSystem, a);
        json::set(id, "value", e.source, a);
        json::set(ref, "identifier", std::move(id), a);
        json::set(ext, "valueReference", std::move(ref), a);
        json::Value exts(rapidjson::kArrayType);
        exts.PushBack(ext, a);
        json::set(it, "extension", std::move(exts), a);
      }
      json::set(it, "flag", concept_of(kCategorySystem, e.category, ""), a);
      json::set(it, "date", e.date, a);
      json::Value item(rapidjson::kObjectType);
      if (!e.reference.empty()) json::set(item, "reference", e.reference, a);
      json::set(item, "display", e.text, a);
      json::set(it, "item", std::move(item), a);
      items.PushBack(it, a);
    }
    if (!items.Empty()) json::set(list, "entry", std::move(items), a);
    else {
      json::set(list, "emptyReason",
                concept_of("http://terminology.hl7.org/CodeSystem/list-empty-reason", "nilknown", "Nil Known"), a);
    }
    json::Value entry(rapidjson::kObjectType);
    json::set(entry, "fullUrl", base + "/List/chronology-" + patient_id, a);
    json::set(entry, "resource", std::move(list), a);
    json::Value es(rapidjson::kArrayType);
    es.PushBack(entry, a);
    json::set(doc, "entry", std::move(es), a);
    out.bundle = json::to_string(doc);
    return out;
  }

 private:
  bool readable(const store::StoredResource& r) {
    return vis_.policy().allows(who_, r.type, "read") && !vis_.hidden_from(who_, r, "read");
  }
  store::Store& store_;
  const security::Visibility& vis_;
  const security::Principal& who_;
  const ChronologyRules& rules_;
  const area::Area& area_;
  std::vector<Candidate> candidates_;
};

}  // namespace

Result<ChronologyRules> ChronologyRules::load(const std::string& profiles_dir) {
  std::string path = (std::filesystem::path(profiles_dir) / "operations" / "chronology.json").string();
  auto doc = area::read_profile(path);
  if (!doc) return doc.error();
  if (auto r = area::only_keys(*doc, {"summaries", "neverSummarised"}, path, ""); !r) return r.error();
  const json::Value* s = json::member(*doc, "summaries");
  if (!s || !s->IsObject()) return area::bad_key(path, "summaries", "is required (category -> {text, roles})");
  ChronologyRules out;
  const json::Value* never = json::member(*doc, "neverSummarised");
  if (!never || !never->IsArray()) return area::bad_key(path, "neverSummarised", "is required (an array of labels)");
  for (const auto& l : never->GetArray())
    if (l.IsString()) out.never_summarised.emplace_back(json::as_view(l));
  for (const auto& m : s->GetObject()) {
    std::string cat(m.name.GetString(), m.name.GetStringLength());
    if (cat == "comment") continue;
    std::string where = "summaries." + cat;
    if (auto r = area::only_keys(m.value, {"text", "roles"}, path, where); !r) return r.error();
    auto text = area::required_string(m.value, "text", path, where);
    if (!text) return text.error();
    Summary sm{*text, {}};
    const json::Value* roles = json::member(m.value, "roles");
    if (!roles || !roles->IsArray()) return area::bad_key(path, where + ".roles", "must be an array of roles");
    for (const auto& r : roles->GetArray())
      if (r.IsString()) sm.roles.emplace_back(json::as_view(r));
    out.summaries[cat] = std::move(sm);
  }
  return out;
}

Result<ChronologyResult> chronology(store::Store& store, const security::Visibility& visibility,
                                    const security::Principal& who, const std::string& patient_id,
                                    const ChronologyRules& rules, const area::Area& area, const std::string& base) {
  auto child = store.read("Patient", patient_id);
  if (!child || visibility.hidden_from(who, *child, "read"))
    return make_error(Errc::not_found, "no Patient/" + patient_id + " this caller may see", "Patient.id");
  auto child_doc = json::parse(child->body);
  if (!child_doc) return make_error(Errc::internal, "stored Patient is not JSON");
  Builder b(store, visibility, who, rules, area);
  std::vector<store::StoredResource> kept;  // owns what candidates point at
  kept.reserve(4096);
  std::vector<std::pair<size_t, bool>> order;  // index in kept, about a parent
  auto take = [&](std::vector<store::StoredResource> rs, bool parent) {
    for (auto& r : rs) {
      kept.push_back(std::move(r));
      order.emplace_back(kept.size() - 1, parent);
    }
  };
  const std::string ref = "Patient/" + patient_id;
  for (const char* type : {"CareTeam", "Encounter", "Flag", "Observation", "Communication"})
    take(all_of(store, type, "patient", "", ref), false);
  const std::string nhs = nhs_of(*child_doc);
  if (!nhs.empty()) take(all_of(store, "Flag", "subject-nhs", std::string(identity::kNhsNumberSystem), nhs), false);
  // Parents through the family links (RelatedPerson: patient = the child, identifier = the parent's NHS number).
  std::vector<std::string> parents;
  for (const auto& link : all_of(store, "RelatedPerson", "patient", "", ref)) {
    auto d = json::parse(link.body);
    if (!d || json::get_bool(*d, "active") == false) continue;
    if (const json::Value* ids = json::member(*d, "identifier"); ids && ids->IsArray())
      for (const auto& i : ids->GetArray())
        if (str(i, "system") == identity::kNhsNumberSystem)
          if (auto p = store.find_by_unique_key(str(i, "value")); p && *p && **p != patient_id &&
                                                                   std::find(parents.begin(), parents.end(), **p) == parents.end())
            parents.push_back(**p);
  }
  const size_t own = kept.size();
  for (const auto& p : parents) {
    take(all_of(store, "CarePlan", "patient", "", "Patient/" + p), true);
    take(all_of(store, "Observation", "patient", "", "Patient/" + p), true);
  }
  const size_t with_parents = kept.size();
  for (const auto& p : parents) take(all_of(store, "EpisodeOfCare", "patient", "", "Patient/" + p), true);
  std::vector<size_t> merged;
  if (const json::Value* links = json::member(*child_doc, "link"); links && links->IsArray())
    for (const auto& l : links->GetArray()) {
      if (str(l, "type") != "replaces") continue;
      const json::Value* other = json::member(l, "other");
      std::string o = other ? str(*other, "reference") : std::string();
      if (o.rfind("Patient/", 0) != 0) continue;
      if (auto r = store.read("Patient", o.substr(8))) {
        kept.push_back(std::move(*r));
        merged.push_back(kept.size() - 1);
      }
    }
  (void)own;
  std::string birth = fk::date_part(str(*child_doc, "birthDate"));
  for (size_t i = 0; i < kept.size(); ++i) {
    auto d = json::parse(kept[i].body);
    if (!d) continue;
    if (std::find(merged.begin(), merged.end(), i) != merged.end()) b.merge(kept[i], *d);
    else if (i >= with_parents) b.booking(kept[i], *d, birth);
    else b.classify(kept[i], *d, order[i].second);
  }
  char now[32];
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return b.finish(patient_id, base, now);
}

}  // namespace gw::safeguarding
