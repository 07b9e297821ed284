#pragma once
// A Subscription resource (R4 + R5 Backport IG) read into what the engine
// needs, and the checks a client's Subscription must pass before it is
// stored: topic known, filters allowed by the topic and inside the
// subscriber's caseload, rest-hook over https only, payload content valid,
// full-resource only for resources the role may read.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "gateway/common/issues.h"
#include "gateway/common/json.h"
#include "gateway/events/topics.h"
#include "gateway/security/policy.h"
#include "gateway/security/principal.h"

namespace gw::events {

inline constexpr const char* kFilterCriteriaUrl =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-filter-criteria";
inline constexpr const char* kPayloadContentUrl =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content";
inline constexpr const char* kHeartbeatUrl =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-heartbeat-period";
inline constexpr const char* kTimeoutUrl =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-timeout";
inline constexpr const char* kMaxCountUrl =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-max-count";
// Who created the subscription (set by the gateway from the client
// certificate, never taken from the client): "ODS|role|system".
inline constexpr const char* kOwnerUrl = "https://cpis-gateway.nhs.uk/StructureDefinition/subscription-owner";

struct Filter {
  std::string resource;   // the type before '?' (may be empty)
  std::string parameter;  // "identifier", "patient", "patient:identifier", "organization", "code"
  std::vector<std::string> values;  // comma = OR; raw "system|value" or "Patient/<id>" or ODS code
};

struct SubscriptionSpec {
  std::string id;
  int64_t version = 0;
  std::string status;    // requested | active | error | off
  std::string topic_url;
  std::vector<Filter> filters;  // AND
  std::string endpoint;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string content = "id-only";  // empty | id-only | full-resource
  std::string payload_mime;         // channel.payload
  int64_t heartbeat_s = 0;
  int64_t timeout_s = 0;
  int64_t max_count = 1;
  std::optional<std::string> end;   // instant
  security::Principal owner;
  bool has_owner = false;
  // What notifications may reveal to the owner (the policy's view of its
  // role), set when the subscription is loaded for the fan-out.
  security::LabelView labels;
};

// Reads a stored Subscription; issues describe what is missing or wrong.
SubscriptionSpec read_subscription(const json::Value& resource, IssueSink& issues);

// The checks for a client's create/update. Sets 403 (forbidden) or 422
// (unprocessable) as the result's error code with the issues.
struct Verdict {
  Errc code = Errc::ok;
  std::vector<Issue> issues;
};
Verdict check_subscription(const SubscriptionSpec& s, const IssueSink& read_issues, const security::Principal& who,
                           const Topics& topics, const security::Policy& policy);

// Rewrites a client's Subscription before it is stored: status requested
// (or off when the client asked for off), the owner extension from the
// certificate, no server-owned error text.
void prepare_for_store(json::Document& doc, const security::Principal& who);

std::string owner_text(const security::Principal& p);

}  // namespace gw::events
