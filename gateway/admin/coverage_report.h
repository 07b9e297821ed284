#pragma once
// GET /reports/coverage[?format=csv][&gap=<kind>][&_count=n][&_offset=n]
// (issue 17 part 2, docs/COVERAGE.md): who is meant to be looking after each
// child the gateway knows to be at risk, and where nobody is known
// (events/coverage.h finds the gaps). Policy operation coverage-report
// (commissioners and admins); everyone else 403. JSON by default, CSV with
// format=csv or Accept: text/csv. Lines name people by reference only
// ("Patient/<id>"), never by NHS number or clinical content; what the
// caller's role may not see of labelled records is counted without a line.
// Each access is audited (action report), with how many lines it listed.
//
// _count: lines per answer, 1..10000 (default 1000); _offset: lines skipped.
// A bad value, an unknown gap kind or an unknown parameter: 400 naming it.
#include <memory>
#include <string>
#include <string_view>

#include "gateway/common/result.h"
#include "gateway/events/coverage.h"
#include "gateway/net/http.h"
#include "gateway/security/policy.h"
#include "gateway/store/store.h"
#include "gateway/write/write_service.h"

namespace gw::admin {

inline constexpr std::string_view kCoverageOperation = "coverage-report";
inline constexpr int64_t kCoverageMaxCount = 10000;

struct CoverageParams {
  bool csv = false;
  std::string gap;
  int64_t count = 1000, offset = 0;
};
// From the query string (and Accept); errors name the parameter.
Result<CoverageParams> coverage_params(std::string_view query, std::string_view accept);

class CoverageReportApi final : public net::Handler {
 public:
  // flows->coverage null: answers 503 (the rules were not loaded).
  CoverageReportApi(store::Store& store, write::WriteService& writes, const security::Policy& policy,
                    std::shared_ptr<const events::FlowContext> flows)
      : store_(store), writes_(writes), policy_(policy), flows_(std::move(flows)) {}
  void handle(net::Request req, net::Respond respond) override;

 private:
  store::Store& store_;
  write::WriteService& writes_;
  const security::Policy& policy_;
  std::shared_ptr<const events::FlowContext> flows_;
};

}  // namespace gw::admin
