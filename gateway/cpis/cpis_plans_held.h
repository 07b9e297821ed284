#pragma once
// The CP-IS plans the store holds against one Patient that are in scope on a
// given day (cpis_plan.h), for the parts that read plans next to other data:
// the safeguarding cohort and the extract cross-check. Call on a store reader.
#include <string>
#include <string_view>
#include <vector>

#include "gateway/common/json.h"
#include "gateway/model/cpis_plan.h"
#include "gateway/store/store.h"

namespace gw::cpis {

struct HeldPlan {
  const model::cpis::PlanType* type = nullptr;
  json::Document care_team;
};

// Plan CareTeams about Patient/<patient_id> in scope on `today`, leaving out
// those carrying any of the caller's `hidden` labels.
std::vector<HeldPlan> plans_in_scope(store::Store& store, const std::string& patient_id, std::string_view today,
                                     const std::vector<std::string>& hidden = {});

}  // namespace gw::cpis
