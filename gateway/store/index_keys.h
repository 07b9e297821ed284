#pragma once
// The index keys of one resource version, as both stores keep them on the
// current row: sorted, without duplicates and without the security labels
// (each store keeps those its own way), encoded as one blob, so that an
// update rewrites only the index rows that changed — usually none.
#include <string>
#include <string_view>
#include <vector>

#include "gateway/store/store.h"

namespace gw::store {

std::vector<IndexEntry> index_keys(const std::vector<IndexEntry>& index);
std::string encode_keys(const std::vector<IndexEntry>& keys);
std::vector<IndexEntry> decode_keys(std::string_view blob);
// The entries of `after` that `before` lacks (both sorted as index_keys makes them).
std::vector<IndexEntry> keys_minus(const std::vector<IndexEntry>& after, const std::vector<IndexEntry>& before);

}  // namespace gw::store
