#pragma once
// Small helpers the flows of the relations route share (relations.h): coded
// elements, labels, dates, ODS codes. Pure functions over the FHIR JSON.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/common/json.h"
#include "gateway/events/matcher.h"

namespace gw::events::flows {

inline constexpr std::string_view kServiceSystem = "https://cpis-gateway.nhs.uk/CodeSystem/service";
inline constexpr std::string_view kMaternity = "https://cpis-gateway.nhs.uk/CodeSystem/service|maternity";
inline constexpr std::string_view kBookingSystem = "https://cpis-gateway.nhs.uk/CodeSystem/maternity-booking";
inline constexpr std::string_view kEddCode = "http://snomed.info/sct|161714006";
inline constexpr std::string_view kGestationCode = "http://snomed.info/sct|57036006";
inline constexpr std::string_view kRiskAssessmentCode =
    "https://cpis-gateway.nhs.uk/CodeSystem/maternity-booking|risk-assessment";
inline constexpr std::string_view kSocialConcernsCode =
    "https://cpis-gateway.nhs.uk/CodeSystem/maternity-booking|social-concerns";
inline constexpr std::string_view kCareTeamRoleSystem = "https://cpis-gateway.nhs.uk/CodeSystem/care-team-role";

// A CodeableConcept (or an array of them) holds system|code.
bool concept_has(const json::Value* concepts, std::string_view system_bar_code);
// Any of code, category, type, serviceType, reasonCode holds one of `codes`.
bool coded_any(const json::Value& r, const std::vector<std::string>& codes);
bool coded(const json::Value& r, std::string_view code);
// Sexual-health labels (STD/HIV/SEX, or R without PSY/SUD): never used by a flow.
bool sexual_health(const json::Value& r);
// PSY or SUD label.
bool mental_health_labelled(const json::Value& r);
std::string str(const json::Value& v, std::string_view key);
// "Patient/<id>" of subject/patient, as the id; "" when none.
std::string patient_id_of(const json::Value& r);
// The ODS code a Reference names by identifier (or Organization/<ods>), "".
std::string ods_of(const json::Value* ref);
// First 10 characters when they are a date.
std::string date_part(std::string_view dt);
// The patient's birth date and NHS number ("" when unknown).
std::string birth_date(Lookup& lookup, const std::string& patient_id);
std::string nhs_number(Lookup& lookup, const std::string& patient_id);
// Whole years on `day` (YYYY-MM-DD), or nullopt when a date is unusable.
std::optional<int> age_on(const std::string& birth, const std::string& day);
// The ODS codes of the care-team members with this role (ZCT role: HV, SN...)
// on active CareTeams about the patient.
std::vector<std::string> team_members(Lookup& lookup, const std::string& patient_id, std::string_view role);
// The practice ODS codes in Patient.generalPractitioner.
std::vector<std::string> practices(Lookup& lookup, const std::string& patient_id);

}  // namespace gw::events::flows
