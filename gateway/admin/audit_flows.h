#pragma once
// GET /audit/flows?from=&to=[&format=csv] (issue 16, item 4): who shared
// what with whom over a period, counted from the audit trail
// (store::Store::summarise_audit). Commissioners and admins (operation
// audit-trail) only. One row per flow: source organisation and system ->
// destination organisation -> channel -> topic (or resource type) ->
// purpose, with its events, failures, retries, dead letters, and for
// delivered notifications the commit-to-delivery latency (median, p99).
// docs/AUDIT.md says how each figure is counted.
//
// from/to: YYYY-MM-DD (midnight UTC) or an ISO 8601 instant; [from, to),
// at most 366 days. Malformed, reversed or too long: 400 naming the parameter.
#include <string>
#include <string_view>
#include <vector>

#include "gateway/common/result.h"
#include "gateway/net/http.h"
#include "gateway/security/policy.h"
#include "gateway/store/store.h"
#include "gateway/write/write_service.h"

namespace gw::admin {

struct Flow {
  std::string from_org, from_system, to_org, channel, topic, purpose;
  int64_t events = 0, failures = 0, retries = 0, dead = 0, delivered = 0;
  int64_t latency_median_ms = -1, latency_p99_ms = -1;  // -1: no delivered notification
};

// The flows of the summarised groups, largest first. Pure: for tests.
std::vector<Flow> flows_of(const std::vector<store::AuditGroup>& groups);

// The safeguarding figures the inspection asked for (docs/AUDIT.md).
struct SiteQueries {
  std::string site;              // ODS code of the unscheduled-care site
  int64_t queries = 0;           // CP-IS queries made for unscheduled care (purpose ETREAT)
  int64_t found_plan = 0;        // of which found at least one plan in scope
};
struct TopicDeliveries {
  std::string topic;             // subscription topic name
  int64_t delivered = 0, retries = 0, dead = 0;
  int64_t latency_median_ms = -1, latency_p99_ms = -1;
};
struct Safeguarding {
  std::vector<SiteQueries> cpis_queries;       // by site, most queries first
  std::vector<TopicDeliveries> disclosures;    // one per topic of kSafeguardingTopics, in that order
};
inline constexpr std::string_view kSafeguardingTopics[] = {"cpis-access", "relapse-indicator", "tier4-discharge",
                                                           "safeguarding-concern", "pregnancy-notification"};
Safeguarding safeguarding_of(const std::vector<store::AuditGroup>& groups);

// Break-glass accesses (issue 17 part 3) per person and organisation over
// [from, to), most first: repeated break-glass by one person stands out.
struct BreakGlassCount {
  std::string organisation, person, name, issuer;  // person: the token's sub
  int64_t accesses = 0;
};
// Reads the trail's break-glass rows (store::Store::search_audit); call on a reader.
Result<std::vector<BreakGlassCount>> break_glass_of(store::Store& store, const std::string& from, const std::string& to);

// One CSV field (RFC 4180), always quoted; a leading = + - @ is defused so a
// spreadsheet does not run it as a formula. Every CSV report uses it.
std::string csv_field(std::string_view v);

// [from, to) as ISO instants from the query; errors name the parameter.
// by_day (when not null) takes by=day: the report adds a series of the
// events per day (the dashboard's chart); without it `by` is not a parameter.
// table (when not null) takes table=flows|break-glass: which table the CSV
// form holds (kFlowsTable by default); without it `table` is not a parameter.
inline constexpr std::string_view kFlowsTable = "flows";
inline constexpr std::string_view kBreakGlassTable = "break-glass";
Result<std::pair<std::string, std::string>> flow_period(std::string_view query, bool& csv, bool* by_day = nullptr,
                                                        std::string* table = nullptr);

// The CSV form of break_glass_of: organisation,person,name,issuer,accesses.
std::string break_glass_csv(const std::vector<BreakGlassCount>& counts);

class AuditFlows final : public net::Handler {
 public:
  AuditFlows(store::Store& store, write::WriteService& writes, const security::Policy& policy)
      : store_(store), writes_(writes), policy_(policy) {}
  void handle(net::Request req, net::Respond respond) override;

 private:
  store::Store& store_;
  write::WriteService& writes_;
  const security::Policy& policy_;
};

}  // namespace gw::admin
