#include "gateway/cpis/cpis_plans_held.h"

namespace gw::cpis {

std::vector<HeldPlan> plans_in_scope(store::Store& store, const std::string& patient_id, std::string_view today,
                                     const std::vector<std::string>& hidden) {
  store::SearchQuery q;
  q.type = "CareTeam";
  q.params.push_back(store::ParamConstraint{"patient", {{"", "Patient/" + patient_id}}});
  q.exclude_security = hidden;
  q.count = 200;
  q.want_total = false;
  std::vector<HeldPlan> out;
  auto page = store.search(q);
  if (!page) return out;
  for (const auto& r : page->items) {
    auto d = json::parse(r.body);
    if (!d) continue;
    const model::cpis::PlanType* type = model::cpis::plan_type_of(*d);
    if (!type || !model::cpis::in_scope(*d, today)) continue;
    out.push_back(HeldPlan{type, std::move(*d)});
  }
  return out;
}

}  // namespace gw::cpis
