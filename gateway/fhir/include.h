#pragma once
// _include / _revinclude of a search page. Included resources pass the same
// sensitivity filter as the matches (the caller's hidden labels, in SQL), so
// a resource the caller may not see is neither returned nor hinted at; and
// only types the caller may search are followed (deny by default).
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/common/result.h"
#include "gateway/model/search_params.h"
#include "gateway/store/store.h"

namespace gw::fhir {

struct IncludeContext {
  std::vector<std::string> hidden_labels;          // policy.hidden_labels(caller)
  std::function<bool(std::string_view)> may_search;  // policy.allows(caller, type, "search")
  int limit = 1000;                                // at most this many included resources
};

// The resources that the page's matches refer to (_include) and that refer to
// the matched Patients (_revinclude), each once and none that is already a
// match, in a stable order.
Result<std::vector<store::StoredResource>> included_resources(store::Store& store, const model::SearchRequest& sr,
                                                              const store::SearchPage& page,
                                                              const IncludeContext& ctx);

}  // namespace gw::fhir
