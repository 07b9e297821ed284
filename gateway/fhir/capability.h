#pragma once
#include <string>
#include <vector>

#include "gateway/write/validation.h"
#include "gateway/security/policy.h"

namespace gw::fhir {

// The CapabilityStatement: exactly the resource types the validator has rules
// for, the interactions the REST API implements, and the search parameters
// search_params.h accepts for each type. Types the policy marks gateway-written
// (AuditEvent) offer reads and search only.
// An operation a feature adds to a resource type (RestApi::add_operation).
struct OperationDoc {
  std::string type;           // "Patient"
  std::string name;           // "chronology" (without '$')
  std::string definition;     // canonical of its OperationDefinition
  std::string documentation;
};
std::string capability_statement_json(const write::Validator& validator, const security::Policy& policy,
                                      const std::vector<OperationDoc>& extra = {});

}  // namespace gw::fhir
