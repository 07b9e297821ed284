#include "gateway/events/booking_summary.h"

#include <algorithm>

#include "gateway/events/disclosure.h"
#include "gateway/events/flows/flow_kit.h"
#include "gateway/model/cpis_plan.h"

namespace gw::events {

namespace {

using flows::str;

constexpr std::string_view kRelapsePlan = "https://cpis-gateway.nhs.uk/CodeSystem/care-plan-category|relapse-prevention";
constexpr std::string_view kDisclosableTo = "https://cpis-gateway.nhs.uk/StructureDefinition/disclosable-to";

bool usable(const json::Value& r) {
  std::string st = str(r, "status");
  return st != "entered-in-error" && st != "cancelled" && !flows::sexual_health(r);
}

constexpr std::string_view kBookingIdSystem = "https://cpis-gateway.nhs.uk/Id/pregnancy-booking";

// The value of the resource's pregnancy-booking identifier ("" when none).
std::string booking_key(const json::Value& r) {
  if (const json::Value* ids = json::member(r, "identifier"); ids && ids->IsArray())
    for (const auto& i : ids->GetArray())
      if (str(i, "system") == kBookingIdSystem) return str(i, "value");
  return {};
}

// The booking's own observation of this code: the one the same message wrote
// (its identifier shares the booking's key, SystmOne ZPN), else the newest.
std::optional<json::Document> pick(std::vector<json::Document>& obs, std::string_view code, const std::string& prefix) {
  json::Document* best = nullptr;
  bool best_own = false;
  std::string best_when;
  for (auto& o : obs) {
    if (!usable(o) || !flows::coded(o, code)) continue;
    bool own = !prefix.empty() && booking_key(o).rfind(prefix, 0) == 0;
    std::string when = str(o, "effectiveDateTime");
    if (!best || (own && !best_own) || (own == best_own && when > best_when)) {
      best = &o;
      best_own = own;
      best_when = when;
    }
  }
  if (!best) return std::nullopt;
  json::Document out;
  out.CopyFrom(*best, out.GetAllocator());
  return out;
}

}  // namespace

std::optional<Booking> booking_for_episode(const json::Value& ep, const std::string& id, Lookup& lookup) {
  if (!flows::concept_has(json::member(ep, "type"), flows::kMaternity) || !usable(ep)) return std::nullopt;
  Booking b;
  b.episode_id = id;
  b.woman = flows::patient_id_of(ep);
  if (b.woman.empty()) return std::nullopt;
  b.service = flows::ods_of(json::member(ep, "managingOrganization"));
  if (const json::Value* p = json::member(ep, "period")) b.booking_date = flows::date_part(str(*p, "start"));
  std::string prefix = booking_key(ep);
  if (prefix.size() > 8 && prefix.compare(prefix.size() - 8, 8, "-episode") == 0) prefix.resize(prefix.size() - 7);
  else prefix.clear();
  auto obs = lookup.about("Observation", b.woman);
  if (auto edd = pick(obs, flows::kEddCode, prefix)) b.edd = flows::date_part(str(*edd, "valueDateTime"));
  if (auto g = pick(obs, flows::kGestationCode, prefix))
    if (const json::Value* q = json::member(*g, "valueQuantity"); q && json::member(*q, "value"))
      b.gestation_weeks = std::to_string(json::get_int(*q, "value").value_or(0));
  if (auto r = pick(obs, flows::kRiskAssessmentCode, prefix))
    if (auto v = json::get_bool(*r, "valueBoolean")) b.risk_assessment = *v ? "yes" : "no";
  if (auto s = pick(obs, flows::kSocialConcernsCode, prefix)) b.social_concerns = str(*s, "valueString");
  b.has_gp = !flows::practices(lookup, b.woman).empty();
  if (auto p = lookup.patient(b.woman))
    if (const json::Value* as = json::member(*p, "address"); as && as->IsArray())
      for (const auto& a : as->GetArray()) b.has_postcode = b.has_postcode || !str(a, "postalCode").empty();
  return b;
}

std::optional<Booking> booking_of(const std::string& type, const std::string& id, const json::Value& focus,
                                  Lookup& lookup) {
  if (type == "EpisodeOfCare") return booking_for_episode(focus, id, lookup);
  if (type != "Observation" || !usable(focus)) return std::nullopt;
  if (!flows::coded(focus, flows::kEddCode) && !flows::coded(focus, flows::kRiskAssessmentCode) &&
      !flows::coded(focus, flows::kSocialConcernsCode))
    return std::nullopt;
  std::string woman = flows::patient_id_of(focus);
  std::optional<Booking> best;
  for (const auto& ep : lookup.about("EpisodeOfCare", woman)) {
    if (str(ep, "status") != "active") continue;
    auto b = booking_for_episode(ep, str(ep, "id"), lookup);
    if (b && (!best || b->booking_date > best->booking_date)) best = std::move(b);
  }
  return best;
}

std::vector<std::string> booking_missing(const Booking& b, Lookup&, const FlowContext& ctx) {
  std::vector<std::string> out;
  for (const auto& rule : ctx.area->pregnancy().completeness) {
    bool ok = true;
    if (rule.check == "registered-gp") ok = b.has_gp;
    else if (rule.check == "address-postcode") ok = b.has_postcode;
    else if (rule.check == "edd") ok = !b.edd.empty();
    else if (rule.check == "booking-date") ok = !b.booking_date.empty();
    else if (rule.check == "risk-assessment") ok = b.risk_assessment == "yes";
    else if (rule.check == "social-concerns") ok = !b.social_concerns.empty();
    if (!ok) out.push_back(rule.label);
  }
  return out;
}

std::vector<std::string> booking_lines(const Booking& b) {
  std::vector<std::string> out;
  out.push_back("Pregnancy booked on " + (b.booking_date.empty() ? std::string("(no booking date)") : b.booking_date) +
                " by " + (b.service.empty() ? std::string("(unknown service)") : b.service));
  out.push_back("Estimated date of delivery: " + (b.edd.empty() ? std::string("not given") : b.edd) +
                (b.gestation_weeks.empty() ? "" : "; gestation at booking " + b.gestation_weeks + " weeks"));
  out.push_back("Booking risk assessment done: " + (b.risk_assessment.empty() ? std::string("not answered") : b.risk_assessment));
  out.push_back("Social concerns: " + (b.social_concerns.empty() ? std::string("not answered") : b.social_concerns));
  return out;
}

std::vector<std::string> booking_summary_lines(const std::string& woman, Lookup& lookup, const FlowContext& ctx) {
  std::vector<std::string> out;
  const std::string today = ctx.today();
  auto plans_of = [&](const std::string& pid, const std::string& who) {
    for (const auto& t : lookup.about("CareTeam", pid))
      if (const auto* type = model::cpis::plan_type_of(t); type && model::cpis::in_scope(t, today)) {
        const json::Value* period = json::member(t, "period");
        out.push_back("CP-IS: " + who + " - " + std::string(type->display) + " since " +
                      (period ? str(*period, "start") : std::string("?")) + " (local authority " +
                      model::cpis::managing_ods(t) + ")");
      }
  };
  plans_of(woman, "the woman");
  for (const auto& child : lookup.linked_children(woman)) {
    std::string who = "her child " + flows::nhs_number(lookup, child);
    plans_of(child, who);
    for (const auto& f : lookup.about("Flag", child)) {
      // Concerns derived from restricted records travel only to the audiences
      // their service named (disclosable-to): not to midwifery here.
      if (str(f, "status") != "active" || flows::sexual_health(f) || flows::mental_health_labelled(f)) continue;
      bool restricted = false;
      if (const json::Value* ext = json::member(f, "extension"); ext && ext->IsArray())
        for (const auto& e : ext->GetArray()) restricted = restricted || str(e, "url") == kDisclosableTo;
      if (restricted) continue;
      const json::Value* code = json::member(f, "code");
      const json::Value* period = json::member(f, "period");
      out.push_back("Safeguarding concern about " + who + " since " + (period ? str(*period, "start") : std::string("?")) +
                    ": " + (code ? str(*code, "text") : std::string()));
    }
  }
  for (const auto& plan : lookup.about("CarePlan", woman)) {
    if (str(plan, "status") != "active" || !flows::coded(plan, kRelapsePlan)) continue;
    if (auto lines = shareable_lines("CarePlan", plan, lookup))
      for (auto& l : *lines) out.push_back("Her relapse-prevention plan: " + l);
  }
  if (out.empty())
    out.push_back("The shared record holds no CP-IS plan, safeguarding concern or relapse-prevention plan for her or her children");
  else
    out.insert(out.begin(), "What the shared record holds for the booking risk assessment:");
  return out;
}

}  // namespace gw::events
