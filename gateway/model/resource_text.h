#pragma once
// How a resource is kept as text. Stored bodies are written by us in a fixed
// shape — {"resourceType":T,"id":I,"meta":{...},...} with meta.versionId and
// meta.lastUpdated removed — so that serving a version only needs the two
// store-assigned values spliced in, not a parse and re-serialise per read.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/common/json.h"
#include "gateway/model/search_decl.h"
#include "gateway/store/store.h"

namespace gw::model {

// FHIR id: [A-Za-z0-9\-\.]{1,64}
bool is_valid_id(std::string_view id);
// A new id: a UUID v7 (time-ordered, random tail) as lower-case text.
std::string new_uuid();

// Serialises `resource` into the stored shape.
std::string storage_text(const json::Value& resource, std::string_view type, json::Allocator& alloc);

// The resource as served: stored text with meta.versionId/lastUpdated spliced in.
std::string served_text(const store::StoredResource& r);

// Search-index rows for a resource: identifier tokens, patient/subject references
// (for AuditEvent, the entity that is a Patient), meta.tag as "_tag" and
// meta.security codes as "_security".
std::vector<store::IndexEntry> index_entries(std::string_view type, const json::Value& resource);
// The same plus the parameters declared in profiles/search/ (what a write stores).
std::vector<store::IndexEntry> index_entries(std::string_view type, const json::Value& resource,
                                             const SearchParamTable& declared);

// The codes of meta.security (confidentiality and sensitivity labels).
std::vector<std::string> security_labels(const json::Value& resource);
// ETag and Last-Modified (RFC 7231 IMF-fixdate) for a version.
std::string etag(int64_t version);
std::string http_date(std::string_view iso_instant);
// An IMF-fixdate (If-Modified-Since) as seconds since the epoch; nullopt otherwise.
std::optional<int64_t> parse_http_date(std::string_view s);

}  // namespace gw::model
