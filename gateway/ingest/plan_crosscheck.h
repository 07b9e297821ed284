#pragma once
// The CP-IS cross-check of an extract (CPIS.md; adapters/camhs/FORMAT.md,
// MHS005): what the sending system states about a person's child protection
// plan and looked-after status, compared with the CP-IS plans the gateway
// holds. Every disagreement is a warning issue on the record — named by its
// local id, never by NHS number — so that the trust can correct its record or
// ask the local authority; the record itself is still accepted.
#include <string>
#include <string_view>
#include <vector>

#include "gateway/common/issues.h"
#include "gateway/common/json.h"
#include "gateway/store/store.h"

namespace gw::ingest {

// One indicator as the extract states it: an Observation component whose
// value carries a https://cpis-gateway.nhs.uk/CodeSystem/plan-status coding.
struct StatedIndicator {
  std::string local_id;   // the record's local patient id (for the issue's expression)
  std::string nhs;        // the subject's NHS number ("" when unmatched: not compared)
  std::string indicator;  // the component code as the feed names it, e.g. "CPP", "LACStatus"
  std::string status;     // on-plan | not-on-plan | looked-after | not-looked-after | unknown
};

// The indicators stated in a transaction Bundle an adapter produced (no reads).
std::vector<StatedIndicator> stated_plan_indicators(const json::Value& bundle);

// Compares them with the plans in the store, `today` (YYYY-MM-DD) deciding
// scope. Call on a store reader thread. A plan is current when it is in scope
// and has not ended by `today`:
//   on-plan / looked-after      and no current plan of that type   -> mismatch
//   not-on-plan / not-looked-after and a current plan of that type -> mismatch
//   unknown                     and a current plan of that type    -> mismatch
// (a plan that ended within the 12 months is in scope but not current: "no"
// is then the right answer). CPP is compared with CPP plans, LAC with LAC
// plans; UCPP plans concern an unborn child and are not compared.
std::vector<Issue> plan_mismatches(store::Store& store, const std::vector<StatedIndicator>& stated,
                                   std::string_view today);

}  // namespace gw::ingest
