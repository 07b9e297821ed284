#pragma once
// Reading what a writer sends into write::Entry values: the entries of a
// transaction or batch Bundle (REST, adapters), the conditional criteria of
// If-None-Exist / conditional update URLs, and ETags. Only the shape is
// checked here; policy and profile checks are the write service's.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/common/json.h"
#include "gateway/common/result.h"
#include "gateway/write/request.h"

namespace gw::write {

// The entries of a Bundle's "entry" array (nullptr: none). Each entry's own
// problem is kept in it (Entry::error), with its path.
std::vector<Entry> entries_from_bundle(const json::Value* entries);

// Conditional create / update criteria: identifier=[system|]value only, one
// value per parameter, so the writer can check them atomically. `what` names
// the criteria in errors ("If-None-Exist", "conditional update").
Result<std::vector<store::Match>> parse_criteria(const std::string& type, std::string_view query, const char* what);

// W/"3" or "3" -> 3; nullopt when it is not such an ETag.
std::optional<int64_t> parse_etag_version(std::string_view v);

// "Bundle.entry[i]".
std::string entry_path(size_t i);

}  // namespace gw::write
