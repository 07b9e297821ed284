#pragma once
// The CapabilityStatement, generated from the tables that serve the requests:
// the resource types the validator has rules for (the REST API's types), the
// search parameters parse_search accepts for each (built in, and declared in
// profiles/search/), and the operations and extra resources each feature
// declares where it adds its routes. Nothing is listed that no route serves.
#include <string>
#include <vector>

#include "gateway/security/policy.h"
#include "gateway/write/validation.h"

namespace gw::fhir {

struct OperationDecl {
  std::string type;           // the resource type it is on
  std::string name;           // without '$'
  std::string definition;     // canonical of its OperationDefinition
  std::string documentation;
};

// A resource served by a feature rather than the REST API's generic handlers
// (Basic: the subscription topics).
struct ResourceDecl {
  std::string type;
  std::vector<std::string> interactions;  // read, search-type...
  std::string documentation;
};

// A type whose searches a feature answers itself (CP-IS's AuditEvent): the
// statement lists these parameters for it instead of the generic ones.
struct SearchParamDoc {
  std::string name, type, documentation;
};
struct SearchDecl {
  std::string type;
  std::vector<SearchParamDoc> params;
};

struct CapabilityExtension {
  std::string type;  // resource it goes on
  std::string url;
  std::string value_canonical;
};

struct Capabilities {
  std::vector<OperationDecl> operations;
  std::vector<ResourceDecl> resources;
  std::vector<CapabilityExtension> extensions;
  std::vector<SearchDecl> searches;
};

std::string capability_statement_json(const write::Validator& validator, const security::Policy& policy,
                                      const Capabilities& declared);

// What RestApi::add_operation takes (a feature's operation with its handler).
using OperationDoc = OperationDecl;

}  // namespace gw::fhir
