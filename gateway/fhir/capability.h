#pragma once
#include <string>

#include "gateway/fhir/validation.h"

namespace gw::fhir {

// The CapabilityStatement: exactly the resource types the validator has rules
// for, the interactions the REST API implements, and the search parameters
// search_params.h accepts for each type.
std::string capability_statement_json(const Validator& validator);

}  // namespace gw::fhir
