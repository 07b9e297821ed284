#pragma once
// The CP-IS plan as the gateway stores it: a CareTeam (CPIS.md section 1).
// One place for the codes and URLs every part that writes, serves, renders or
// routes plans relies on, and for the 12-month scope rule.
#include <optional>
#include <string>
#include <string_view>

#include "gateway/common/json.h"

namespace gw::model::cpis {

inline constexpr std::string_view kSnomed = "http://snomed.info/sct";
inline constexpr std::string_view kOdsSystem = "https://fhir.nhs.uk/Id/ods-organization-code";
inline constexpr std::string_view kPlanIdSystem = "https://cpis-gateway.nhs.uk/Id/cpis-plan";
inline constexpr std::string_view kContactPurposeUrl =
    "https://cpis-gateway.nhs.uk/StructureDefinition/contact-purpose";
inline constexpr std::string_view kLacLegalStatusUrl =
    "https://cpis-gateway.nhs.uk/StructureDefinition/lac-legal-status";
// On a plan CareTeam moved by a merge: valueIdentifier = the retired NHS number.
inline constexpr std::string_view kSupersededNhsNumberUrl =
    "https://cpis-gateway.nhs.uk/StructureDefinition/superseded-nhs-number";
inline constexpr std::string_view kPlanValueSet = "https://fhir.nhs.uk/England/ValueSet/England-ChildProtectionPlan";

struct PlanType {
  std::string_view abbreviation;  // as in the upload file: CPP | LAC | UCPP
  std::string_view snomed;        // England-ChildProtectionPlan code
  std::string_view display;
  bool unborn;                    // held against the pregnant woman
};

// The three plan types, by upload abbreviation or by SNOMED CT code.
const PlanType* plan_type_by_abbreviation(std::string_view abbreviation);
const PlanType* plan_type_by_snomed(std::string_view code);
// The plan type a CareTeam's category carries, or nullptr when it is not a plan.
const PlanType* plan_type_of(const json::Value& care_team);

// In scope: not withdrawn, and active or ended less than 12 months before
// `today` (YYYY-MM-DD, injected so tests can move the clock). An end date in
// the future counts as active.
bool in_scope(const json::Value& care_team, std::string_view today);

// The date 12 months before `today` (YYYY-MM-DD): plans that ended on or
// before it are out of scope. 29 February maps to 28 February.
std::string scope_cutoff(std::string_view today);

// True for YYYY-MM-DD naming a real day (no 30 February).
bool is_calendar_date(std::string_view d);

// Today's date in UTC as YYYY-MM-DD.
std::string utc_today();

// The managing local authority's ODS code, or "".
std::string managing_ods(const json::Value& care_team);

}  // namespace gw::model::cpis
