#include "tests/support/plan_seed.h"

#include <gtest/gtest.h>

#include "gateway/common/json.h"
#include "gateway/model/cpis_plan.h"
#include "gateway/identity/nhs_number.h"

namespace gw::test {

std::string nhs_number_from(const std::string& first_nine) {
  int check = identity::nhs_check_digit(first_nine);
  EXPECT_LT(check, 10) << "no valid NHS number starts with these nine digits";
  return first_nine + std::to_string(check);
}

std::string create_resource(HttpsClient& c, const std::string& type, const std::string& body) {
  auto r = c.request("POST", "/fhir/" + type, body, {{"Content-Type", "application/fhir+json"}});
  EXPECT_TRUE(r.has_value());
  if (!r) return {};
  EXPECT_EQ(r->status, 201) << r->body;
  auto d = json::parse(r->body);
  if (!d || !d->IsObject()) return {};
  return std::string(json::get_string(*d, "id").value_or(""));
}

std::string create_patient(HttpsClient& c, const std::string& nhs, const std::string& extra) {
  std::string body = R"({"resourceType":"Patient","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":")" +
                     nhs + "\"}]";
  if (!extra.empty()) body += "," + extra;
  body += "}";
  return create_resource(c, "Patient", body);
}

std::string create_plan(HttpsClient& c, const std::string& patient_id, const std::string& nhs, const PlanSeed& p) {
  const model::cpis::PlanType* type = model::cpis::plan_type_by_abbreviation(p.abbreviation);
  EXPECT_NE(type, nullptr) << p.abbreviation;
  if (!type) return {};
  std::string status = !p.status.empty() ? p.status : p.end.empty() ? "active" : "inactive";
  std::string purpose = std::string(model::cpis::kContactPurposeUrl);
  std::string body = R"({"resourceType":"CareTeam","identifier":[{"system":")" +
                     std::string(model::cpis::kPlanIdSystem) + R"(","value":")" + p.la_ods + "|" + nhs + "|" +
                     p.abbreviation + R"("}],"status":")" + status + R"(","category":[{"coding":[{"system":"http://snomed.info/sct","code":")" +
                     std::string(type->snomed) + R"(","display":")" + std::string(type->display) +
                     R"("}]}],"subject":{"reference":"Patient/)" + patient_id +
                     R"(","identifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":")" + nhs +
                     R"("}},"period":{"start":")" + p.start + "\"" + (p.end.empty() ? "" : ",\"end\":\"" + p.end + "\"") +
                     R"(},"managingOrganization":[{"identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":")" +
                     p.la_ods + R"("},"display":")" + p.la_name + R"("}],"telecom":[{"system":"phone","value":")" +
                     p.emergency + R"(","use":"work","rank":1,"extension":[{"url":")" + purpose +
                     R"(","valueCode":"emergency-duty"}]},{"system":"phone","value":")" + p.office_hours +
                     R"(","use":"work","rank":2,"extension":[{"url":")" + purpose + R"(","valueCode":"office-hours"}]}]})";
  return create_resource(c, "CareTeam", body);
}

std::string create_family_link(HttpsClient& c, const std::string& child_id, const std::string& child_nhs,
                               const std::string& parent_nhs, const std::string& security_label) {
  std::string body = R"({"resourceType":"RelatedPerson",)";
  if (!security_label.empty()) {
    body += R"("meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":")" +
            security_label + "\"}]},";
  }
  body += R"("identifier":[{"system":"https://cpis-gateway.nhs.uk/Id/family-link","value":")" + child_nhs + "-" +
          parent_nhs + R"("},{"system":"https://fhir.nhs.uk/Id/nhs-number","value":")" + parent_nhs +
          R"("}],"active":true,"patient":{"reference":"Patient/)" + child_id +
          R"("},"relationship":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0063","code":"MTH","display":"Mother"}]}]})";
  return create_resource(c, "RelatedPerson", body);
}

}  // namespace gw::test
