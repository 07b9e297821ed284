#pragma once
// Seeding CP-IS plans and family links through the FHIR API, the way a local
// authority or an integration engine would (CPIS.md section 1), for tests
// that need plans in the store.
#include <string>

#include "tests/support/https_client.h"

namespace gw::test {

struct PlanSeed {
  std::string abbreviation = "CPP";  // CPP | LAC | UCPP
  std::string start = "2026-01-05";
  std::string end;                    // "" = active
  std::string la_ods = "L0001";
  std::string la_name = "Rotherham Metropolitan Borough Council";
  std::string emergency = "01709 336080";
  std::string office_hours = "01709 336081";
  std::string status;                 // "" = from end: active, or inactive once ended
};

// A valid NHS number from nine digits (the Modulus 11 check digit appended);
// the nine digits must have a check digit other than 10.
std::string nhs_number_from(const std::string& first_nine);

// POSTs a resource and returns the id the server gave it ("" and a gtest
// failure when it was refused).
std::string create_resource(HttpsClient& c, const std::string& type, const std::string& body);

// A Patient with this NHS number; `extra` is spliced in as more members
// (e.g. R"("managingOrganization":{...})").
std::string create_patient(HttpsClient& c, const std::string& nhs, const std::string& extra = "");

// A CP-IS plan CareTeam held against Patient/<patient_id>.
std::string create_plan(HttpsClient& c, const std::string& patient_id, const std::string& nhs, const PlanSeed& p);

// A family link as the systmone and camhs adapters write it: RelatedPerson
// with identifier family-link "<child>-<parent>" and the parent's NHS number,
// patient = the child. `security_label`: a v3-ActCode label to put on it, or "".
std::string create_family_link(HttpsClient& c, const std::string& child_id, const std::string& child_nhs,
                               const std::string& parent_nhs, const std::string& security_label = "");

}  // namespace gw::test
