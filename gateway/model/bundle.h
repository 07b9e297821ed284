#pragma once
// Bundle texts the REST API answers with. Built by string concatenation of
// already-serialised resources: no DOM for the (large) response.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/store/store.h"

namespace gw::model {

// searchset with total, self/next links and one entry per resource, then
// the `included` resources (search.mode include, not counted in total).
// `query` is the request's raw query; paging parameters in it are replaced.
// A page.total below 0 is not known (_total=none): the Bundle has none.
// `leading_entries` (serialised Bundle entries of resources that are not
// stored, such as the Flags derived from CP-IS plans) come first and count in
// the total; paging links follow the stored page only. `more`: whether a next
// page exists, when the caller filtered the page after the store answered
// (then total is -1 and a short page may still have a next one).
std::string searchset_bundle(const std::string& base, const std::string& type, std::string_view query,
                             const store::SearchPage& page, int count, int64_t offset,
                             const std::vector<std::string>& ignored_params,
                             const std::vector<store::StoredResource>& included = {},
                             const std::vector<std::string>& leading_entries = {},
                             std::optional<bool> more = std::nullopt);

// A stored resource cut down to the top-level `elements` (plus resourceType,
// id and meta), tagged SUBSETTED as _elements requires; in the stored shape.
std::string subset_elements(const store::StoredResource& r, const std::vector<std::string>& elements);

// history of one resource, newest first.
std::string history_bundle(const std::string& base, const std::vector<store::StoredResource>& versions);

// JSON string literal (with quotes) for s.
std::string quoted(std::string_view s);

}  // namespace gw::model
