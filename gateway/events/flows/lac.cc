// lac-health-assessment-due (issue 15 part 4; recommendation 4.8), the part
// a change fires: a LAC plan starting or changing tells the LAC health team
// serving the plan's local authority when the initial assessment is due.
// The due-soon and overdue reminders are durable timers (lac_assessments.h,
// flow_timers.h) fired through the same relationship.
#include "gateway/events/flows/flow.h"
#include "gateway/events/flows/flow_kit.h"
#include "gateway/events/lac_assessments.h"
#include "gateway/model/cpis_plan.h"

namespace gw::events::flows {

namespace {

constexpr std::string_view kLacTeam = "lac-health-team";

class LacFlow final : public Flow {
 public:
  std::vector<std::string_view> relations() const override { return {kLacTeam}; }

  bool qualifies(const store::ChangeRow& change, const json::Value& plan, Lookup& lookup,
                 const FlowContext& ctx) const override {
    if (change.type != "CareTeam" || change.interaction == "delete") return false;
    auto s = lac_schedule(change.id, plan, lookup, ctx);
    return s && s->active;
  }

  bool receives(std::string_view relation, const std::string& ods, const store::ChangeRow& change,
                const json::Value& plan, Lookup&, const FlowContext& ctx, Decision& d) const override {
    if (relation != kLacTeam || change.type != "CareTeam") return false;
    auto team = ctx.area->lac_health_for_authority(model::cpis::managing_ods(plan));
    if (!team || *team != ods) return false;
    std::string child = patient_id_of(plan);
    if (!child.empty()) d.concerned = {child};
    return !child.empty();
  }

  std::optional<FlowDisclosure> disclose(const store::ChangeRow& change, const json::Value& plan, const Decision&,
                                         Lookup& lookup, const FlowContext& ctx) const override {
    if (!qualifies(change, plan, lookup, ctx)) return std::nullopt;
    auto s = lac_schedule(change.id, plan, lookup, ctx);
    FlowDisclosure out;
    out.subject_id = s->patient_id;
    out.subject_literal = true;
    out.lines = lac_lines(*s);
    return out;
  }
};

}  // namespace

const Flow* lac_flow() {
  static const LacFlow f;
  return &f;
}

}  // namespace gw::events::flows
