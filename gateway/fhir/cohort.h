#pragma once
// POST /fhir/Patient/$safeguarding-cohort (CPIS.md section 3, "think family"):
// a mental-health or substance-misuse service asks, for the people on its
// caseload, which are themselves on a CP-IS plan and which have children on
// one. In: a Parameters resource with one `nhsNumber` (valueString or
// valueIdentifier) per person. Out: a Parameters resource with one `patient`
// per number, in the order asked (docs/safeguarding-cohort.md). A person the
// caller's organisation does not care for — or whom the gateway does not
// know — gets the same answer, "not-in-caseload", so the question reveals
// nothing about them. Policy operation "safeguarding-cohort". Its
// OperationDefinition (profiles/operations/safeguarding-cohort.json) is served
// at GET /fhir/OperationDefinition/safeguarding-cohort to every client.
#include <functional>
#include <string>

#include "gateway/fhir/rest.h"
#include "gateway/net/http.h"
#include "gateway/security/policy.h"
#include "gateway/store/store.h"

namespace gw::fhir {

class SafeguardingCohortApi final : public net::Handler {
 public:
  static constexpr std::string_view kPath = "/fhir/Patient/$safeguarding-cohort";
  static constexpr std::string_view kDefinitionPath = "/fhir/OperationDefinition/safeguarding-cohort";
  // Most NHS numbers one request may carry: a caseload, not the population.
  static constexpr size_t kMaxNumbers = 1000;

  // Reads the OperationDefinition from profiles_dir (std::runtime_error when
  // it is missing or not one: start-up only). today: the date the 12-month
  // plan scope is measured from (injected for tests).
  SafeguardingCohortApi(store::Store& store, const security::Policy& policy, const std::string& profiles_dir,
                        std::function<std::string()> today = {});
  // Adds its routes and declares the operation (and its definition) in the
  // REST API's CapabilityStatement.
  void add_routes(net::Router& router, RestApi& rest);
  void handle(net::Request req, net::Respond respond) override;

 private:
  store::Store& store_;
  const security::Policy& policy_;
  std::function<std::string()> today_;
  std::string definition_;
};

}  // namespace gw::fhir
