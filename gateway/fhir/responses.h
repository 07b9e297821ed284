#pragma once
// How the FHIR REST API (and the Subscription endpoints beside it) answer:
// OperationOutcomes, a resource with its ETag and Location, the
// transaction-response and batch-response Bundles built from the write
// service's outcome, and the JSON-only content negotiation.
#include <optional>
#include <string>
#include <vector>

#include "gateway/common/issues.h"
#include "gateway/net/http.h"
#include "gateway/store/store.h"
#include "gateway/write/request.h"

namespace gw::fhir {

enum class PreferReturn { representation, minimal, outcome };
PreferReturn prefer_return(const net::Request& req);
bool prefer_strict(const net::Request& req);

// JSON only: an Accept (or _format) that allows no JSON is 406, a body that
// is not FHIR JSON (or, for PATCH, JSON Patch) 415, each with an OperationOutcome.
enum class BodyFormat { none, resource, json_patch };
std::optional<Error> check_formats(const net::Request& req, BodyFormat body);

net::Response outcome_response(const Error& e, std::string route);
// 401 with a Bearer challenge: `what` needs the person using the system
// (profiles/policy/users.json personRequired) and the request named none.
net::Response person_required_response(std::string_view what, const char* route);
net::Response issues_response(int status, const std::vector<Issue>& issues, std::string route);

// 200/201 with ETag, Last-Modified, Location (when location_base is given,
// ".../fhir") and the body Prefer asks for.
net::Response resource_response(const store::StoredResource& r, int status, const std::string& location_base,
                                PreferReturn pr, std::string route);

// The answer to one REST write (create, update, delete) from the write
// service's outcome: the resource written, a deletion outcome, the existing
// resource a conditional create matched, or the failure.
net::Response write_response(const net::Request& req, const write::Request& wreq, const write::Outcome& out,
                             const std::string& base, const char* route);

// transaction-response / batch-response Bundle ("base": ".../fhir").
std::string bundle_response(const std::string& base, const write::Request& wreq, const write::Outcome& out,
                            bool batch);

}  // namespace gw::fhir
