// pregnancy-notification (issue 15 part 1; recommendations 4.3-4.5): a
// booking (EpisodeOfCare of service maternity, with the EDD and the booking
// observations) goes to the family's health-visiting team — the team already
// caring for her children, else the team attached to her GP practice, else
// the single point of access — and the rule that chose it travels with it.
// Incomplete bookings still go, marked so with what is missing; the booking
// service is told what to send, with what the shared record already holds
// that its risk assessment must consider (booking_summary.h).
#include <algorithm>

#include "gateway/events/booking_summary.h"
#include "gateway/events/flows/flow.h"
#include "gateway/events/flows/flow_kit.h"

namespace gw::events::flows {

namespace {

constexpr std::string_view kFamilyHv = "family-health-visiting-team";
constexpr std::string_view kBookingService = "booking-service";
constexpr std::string_view kPractice = "registered-practice";

struct HvChoice {
  std::vector<std::string> teams;
  std::string rule;
};

HvChoice choose_hv(const std::string& woman, Lookup& lookup, const FlowContext& ctx) {
  HvChoice c;
  for (const auto& child : lookup.linked_children(woman))
    for (const auto& t : team_members(lookup, child, "HV"))
      if (std::find(c.teams.begin(), c.teams.end(), t) == c.teams.end()) c.teams.push_back(t);
  if (!c.teams.empty()) {
    c.rule = "the health-visiting team already caring for her children";
    return c;
  }
  for (const auto& p : practices(lookup, woman))
    if (auto t = ctx.area->health_visiting_for_practice(p)) {
      c.teams.push_back(t->ods);
      c.rule = "the health-visiting team attached to her GP practice " + p;
      return c;
    }
  c.teams.push_back(ctx.area->health_visiting_single_point_of_access().ods);
  c.rule = "the health-visiting single point of access (no team caring for her children, practice not in the table)";
  return c;
}

class PregnancyFlow final : public Flow {
 public:
  std::vector<std::string_view> relations() const override { return {kFamilyHv, kBookingService, kPractice}; }

  bool qualifies(const store::ChangeRow& change, const json::Value& focus, Lookup& lookup,
                 const FlowContext&) const override {
    return change.interaction != "delete" && booking_of(change.type, change.id, focus, lookup).has_value();
  }

  bool receives(std::string_view relation, const std::string& ods, const store::ChangeRow& change,
                const json::Value& focus, Lookup& lookup, const FlowContext& ctx, Decision& d) const override {
    auto b = booking_of(change.type, change.id, focus, lookup);
    if (!b) return false;
    bool ok = false;
    if (relation == kFamilyHv) {
      auto c = choose_hv(b->woman, lookup, ctx);
      ok = std::find(c.teams.begin(), c.teams.end(), ods) != c.teams.end();
    } else if (relation == kBookingService) {
      ok = b->service == ods;  // only about its own bookings
    } else if (relation == kPractice) {
      auto ps = practices(lookup, b->woman);
      ok = std::find(ps.begin(), ps.end(), ods) != ps.end();
    }
    if (ok) d.concerned = {b->woman};
    return ok;
  }

  std::optional<FlowDisclosure> disclose(const store::ChangeRow& change, const json::Value& focus, const Decision& d,
                                         Lookup& lookup, const FlowContext& ctx) const override {
    auto b = booking_of(change.type, change.id, focus, lookup);
    if (!b || change.interaction == "delete") return std::nullopt;
    auto missing = booking_missing(*b, lookup, ctx);
    FlowDisclosure out;
    out.subject_id = b->woman;
    out.subject_literal = true;
    out.about_ref = "EpisodeOfCare/" + b->episode_id;
    out.completeness = missing.empty() ? "complete" : "incomplete";
    out.lines = booking_lines(*b);
    if (d.relation.empty() || d.relation == kFamilyHv) {
      auto c = choose_hv(b->woman, lookup, ctx);
      out.lines.push_back("Health-visiting team chosen by: " + c.rule);
    }
    if (missing.empty()) {
      out.lines.push_back("Notification complete");
    } else {
      std::string m;
      for (const auto& x : missing) m += (m.empty() ? "" : "; ") + x;
      out.lines.push_back("Notification INCOMPLETE - missing: " + m);
    }
    if (d.relation == kBookingService) {
      if (!missing.empty()) out.lines.push_back("Please send what is missing (the health visitor has been told it is incomplete)");
      for (auto& l : booking_summary_lines(b->woman, lookup, ctx)) out.lines.push_back(std::move(l));
    }
    return out;
  }
};

}  // namespace

const Flow* pregnancy_flow() {
  static const PregnancyFlow f;
  return &f;
}

}  // namespace gw::events::flows
