// ED attendances (issue 15 parts 2 and 3): an adult who attends after
// self-harm, overdose, substance misuse, a mental-health crisis or domestic
// abuse and has children (adult-attendance-with-children), and every
// attendance of a child (child-ed-attendance). Recommendations 1.6, 1.8-1.10,
// 4.1, 4.2, 4.12. What leaves: the date, the site, the reason category (never
// the diagnosis text or notes), and only the children the receiver cares for.
#include <algorithm>

#include "gateway/area/working_days.h"
#include "gateway/events/flows/flow.h"
#include "gateway/events/flows/flow_kit.h"
#include "gateway/model/cpis_plan.h"

namespace gw::events::flows {

namespace {

constexpr std::string_view kLiaison = "attending-trust-liaison";
constexpr std::string_view kLinkedChild = "linked-child-caseload";
constexpr std::string_view kFrequent = "caseload-if-frequent-attender";

struct Attendance {
  std::string patient_id, date, site_ods;
  const area::EdSite* site = nullptr;
  std::optional<int> age;
};

// The facts every ED flow starts from: an emergency Encounter with a patient,
// a date and an attending site the area's table knows.
std::optional<Attendance> attendance(const store::ChangeRow& change, const json::Value& enc, Lookup& lookup,
                                     const FlowContext& ctx) {
  if (change.type != "Encounter" || change.interaction == "delete") return std::nullopt;
  const json::Value* cls = json::member(enc, "class");
  if (!cls || str(*cls, "code") != "EMER") return std::nullopt;
  std::string status = str(enc, "status");
  if (status == "entered-in-error" || status == "cancelled") return std::nullopt;
  if (sexual_health(enc)) return std::nullopt;
  Attendance a;
  a.patient_id = patient_id_of(enc);
  const json::Value* period = json::member(enc, "period");
  a.date = period ? date_part(str(*period, "start")) : std::string();
  if (a.patient_id.empty() || a.date.empty()) return std::nullopt;
  // The site: PV1-3's facility (Encounter.location), else the trust that sent it.
  if (const json::Value* locs = json::member(enc, "location"); locs && locs->IsArray() && !locs->Empty())
    a.site_ods = ods_of(json::member((*locs)[0], "location"));
  if (a.site_ods.empty() || !ctx.area->ed_site(a.site_ods)) a.site_ods = ods_of(json::member(enc, "serviceProvider"));
  a.site = ctx.area->ed_site(a.site_ods);
  a.age = age_on(birth_date(lookup, a.patient_id), a.date);
  return a;
}

bool liaison_of(const Attendance& a, const std::string& ods) {
  return a.site && std::find(a.site->paediatric_liaison.begin(), a.site->paediatric_liaison.end(), ods) !=
                       a.site->paediatric_liaison.end();
}

std::string site_line(const Attendance& a) {
  std::string s = "Attended the emergency department on " + a.date + " at " + (a.site_ods.empty() ? "an unknown site" : a.site_ods);
  if (a.site && a.site->trust != a.site_ods) s += " (trust " + a.site->trust + ")";
  return s;
}

// ---- adult-attendance-with-children --------------------------------------------

std::vector<const area::ReasonCategory*> reasons(const json::Value& enc, const FlowContext& ctx) {
  std::vector<const area::ReasonCategory*> out;
  for (const auto& r : ctx.area->ed().reasons)
    for (const auto& c : r.codes)
      if (concept_has(json::member(enc, "reasonCode"), c)) {
        out.push_back(&r);
        break;
      }
  return out;
}

// The ED safeguarding questionnaire (OBX SAFEQ-CHILDREN) of this attendance
// says there are children at home. Local codes carry the sender in their
// system, so any local system matches the code.
bool children_at_home(const store::ChangeRow& change, const std::string& patient_id, Lookup& lookup,
                      const FlowContext& ctx) {
  const auto& ed = ctx.area->ed();
  for (const auto& o : lookup.about("Observation", patient_id)) {
    const json::Value* enc = json::member(o, "encounter");
    if (!enc || str(*enc, "reference") != "Encounter/" + change.id) continue;
    const json::Value* code = json::member(o, "code");
    const json::Value* cs = code ? json::member(*code, "coding") : nullptr;
    bool asked = false;
    if (cs && cs->IsArray())
      for (const auto& c : cs->GetArray())
        asked = asked || (str(c, "code") == ed.children_question &&
                          str(c, "system").rfind("urn:cpis-gateway:local-code", 0) == 0);
    if (!asked) continue;
    std::vector<std::string> answers;
    if (const json::Value* v = json::member(o, "valueCodeableConcept"); v && v->IsObject())
      if (const json::Value* vc = json::member(*v, "coding"); vc && vc->IsArray())
        for (const auto& c : vc->GetArray()) answers.push_back(str(c, "code"));
    answers.push_back(str(o, "valueString"));
    if (json::get_bool(o, "valueBoolean") == true) return true;
    for (auto s : answers) {
      std::transform(s.begin(), s.end(), s.begin(), ::toupper);
      if (std::find(ed.children_yes.begin(), ed.children_yes.end(), s) != ed.children_yes.end()) return true;
    }
  }
  return false;
}

class AdultFlow final : public Flow {
 public:
  std::vector<std::string_view> relations() const override { return {kLiaison, kLinkedChild}; }

  bool qualifies(const store::ChangeRow& change, const json::Value& enc, Lookup& lookup,
                 const FlowContext& ctx) const override {
    auto a = attendance(change, enc, lookup, ctx);
    if (!a || !a->age || *a->age < ctx.area->ed().adult_age || reasons(enc, ctx).empty()) return false;
    return !lookup.linked_children(a->patient_id).empty() || children_at_home(change, a->patient_id, lookup, ctx);
  }

  bool receives(std::string_view relation, const std::string& ods, const store::ChangeRow& change,
                const json::Value& enc, Lookup& lookup, const FlowContext& ctx, Decision& d) const override {
    auto a = attendance(change, enc, lookup, ctx);
    if (!a) return false;
    auto children = lookup.linked_children(a->patient_id);
    if (relation == kLiaison) {
      if (!liaison_of(*a, ods)) return false;
      d.concerned = children;  // liaison follows up every child, known or not
      return true;
    }
    if (relation == kLinkedChild) {
      for (const auto& c : children)
        if (lookup.in_caseload(c, ods)) d.concerned.push_back(c);
      return !d.concerned.empty();
    }
    return false;
  }

  std::optional<FlowDisclosure> disclose(const store::ChangeRow& change, const json::Value& enc, const Decision& d,
                                         Lookup& lookup, const FlowContext& ctx) const override {
    if (!qualifies(change, enc, lookup, ctx)) return std::nullopt;
    auto a = attendance(change, enc, lookup, ctx);
    FlowDisclosure out;
    out.subject_id = a->patient_id;  // the adult, by NHS number only
    out.lines.push_back("An adult attended the emergency department on " + a->date + " at " + a->site_ods +
                        (a->site && a->site->trust != a->site_ods ? " (trust " + a->site->trust + ")" : ""));
    std::string why;
    for (const auto* r : reasons(enc, ctx)) why += (why.empty() ? "" : ", ") + r->display;
    out.lines.push_back("Reason for attendance (category): " + why);
    bool at_home = children_at_home(change, a->patient_id, lookup, ctx);
    bool liaison = d.relation.empty() || d.relation == kLiaison;
    if (liaison) {
      if (lookup.linked_children(a->patient_id).empty())
        out.lines.push_back("Children at home (ED safeguarding questionnaire): children not identified - please follow up");
      else
        out.lines.push_back("Children linked to this adult by family links: " + std::to_string(d.concerned.size()) +
                            (at_home ? " (the ED questionnaire also says children are at home)" : ""));
    } else {
      out.lines.push_back("The children concerned that your service cares for are listed in 'about'");
    }
    return out;
  }
};

// ---- child-ed-attendance --------------------------------------------------------

struct History {
  int previous = 0;                // in the window before this attendance
  std::vector<std::string> dates;  // newest first
  bool frequent = false;
};

History history(const store::ChangeRow& change, const Attendance& a, Lookup& lookup, const FlowContext& ctx) {
  const auto& ed = ctx.area->ed();
  History h;
  auto day = area::parse_date(a.date);
  std::string since = day ? area::format_date(area::add_months(*day, -ed.frequent_months)) : a.date;
  for (const auto& e : lookup.about("Encounter", a.patient_id)) {
    if (str(e, "id") == change.id) continue;
    const json::Value* cls = json::member(e, "class");
    if (!cls || str(*cls, "code") != "EMER" || sexual_health(e)) continue;
    std::string st = str(e, "status");
    if (st == "entered-in-error" || st == "cancelled") continue;
    const json::Value* period = json::member(e, "period");
    std::string when = period ? date_part(str(*period, "start")) : std::string();
    if (when.empty() || when > a.date || when <= since) continue;
    h.dates.push_back(when);
  }
  std::sort(h.dates.rbegin(), h.dates.rend());
  h.previous = static_cast<int>(h.dates.size());
  h.frequent = h.previous + 1 >= ed.frequent_attendances;
  if (h.dates.size() > static_cast<size_t>(ed.dates_shown)) h.dates.resize(ed.dates_shown);
  return h;
}

std::string plan_in_scope(const std::string& patient_id, Lookup& lookup, const FlowContext& ctx) {
  for (const auto& t : lookup.about("CareTeam", patient_id))
    if (const auto* type = model::cpis::plan_type_of(t); type && model::cpis::in_scope(t, ctx.today()))
      return std::string(type->display);
  return {};
}

class ChildFlow final : public Flow {
 public:
  std::vector<std::string_view> relations() const override { return {kLiaison, kFrequent}; }

  bool qualifies(const store::ChangeRow& change, const json::Value& enc, Lookup& lookup,
                 const FlowContext& ctx) const override {
    auto a = attendance(change, enc, lookup, ctx);
    return a && a->age && *a->age < ctx.area->ed().adult_age;
  }

  bool receives(std::string_view relation, const std::string& ods, const store::ChangeRow& change,
                const json::Value& enc, Lookup& lookup, const FlowContext& ctx, Decision& d) const override {
    auto a = attendance(change, enc, lookup, ctx);
    if (!a) return false;
    bool ok = (relation == kLiaison && liaison_of(*a, ods)) ||
              (relation == kFrequent && history(change, *a, lookup, ctx).frequent && lookup.in_caseload(a->patient_id, ods));
    if (ok) d.concerned = {a->patient_id};
    return ok;
  }

  std::optional<FlowDisclosure> disclose(const store::ChangeRow& change, const json::Value& enc, const Decision&,
                                         Lookup& lookup, const FlowContext& ctx) const override {
    if (!qualifies(change, enc, lookup, ctx)) return std::nullopt;
    auto a = attendance(change, enc, lookup, ctx);
    auto h = history(change, *a, lookup, ctx);
    const auto& ed = ctx.area->ed();
    FlowDisclosure out;
    out.subject_id = a->patient_id;
    out.subject_literal = true;
    out.lines.push_back(site_line(*a));
    out.lines.push_back("Previous ED attendances in the " + std::to_string(ed.frequent_months) +
                        " months before (any site the gateway knows): " + std::to_string(h.previous));
    if (!h.dates.empty()) {
      std::string ds;
      for (const auto& x : h.dates) ds += (ds.empty() ? "" : ", ") + x;
      out.lines.push_back("Most recent previous attendances: " + ds);
    }
    std::string plan = plan_in_scope(a->patient_id, lookup, ctx);
    out.lines.push_back("CP-IS plan in scope: " + (plan.empty() ? std::string("no") : "yes (" + plan + ")"));
    out.lines.push_back(std::string("Frequent attender: ") + (h.frequent ? "yes" : "no") + " (threshold " +
                        std::to_string(ed.frequent_attendances) + " attendances in " +
                        std::to_string(ed.frequent_months) + " months)");
    return out;
  }
};

}  // namespace

const Flow* ed_adult_flow() {
  static const AdultFlow f;
  return &f;
}
const Flow* ed_child_flow() {
  static const ChildFlow f;
  return &f;
}

}  // namespace gw::events::flows
