#pragma once
// How a resource is kept as text. Stored bodies are written by us in a fixed
// shape — {"resourceType":T,"id":I,"meta":{...},...} with meta.versionId and
// meta.lastUpdated removed — so that serving a version only needs the two
// store-assigned values spliced in, not a parse and re-serialise per read.
#include <string>
#include <string_view>
#include <vector>

#include "gateway/common/json.h"
#include "gateway/store/store.h"

namespace gw::model {

// FHIR id: [A-Za-z0-9\-\.]{1,64}
bool is_valid_id(std::string_view id);
// A random UUID v4 as lower-case text.
std::string new_uuid();

// Serialises `resource` into the stored shape.
std::string storage_text(const json::Value& resource, std::string_view type, json::Allocator& alloc);

// The resource as served: stored text with meta.versionId/lastUpdated spliced in.
std::string served_text(const store::StoredResource& r);

// Search-index rows for a resource: identifier tokens, patient/subject references
// (for AuditEvent, the entity that is a Patient), meta.tag as "_tag" and
// meta.security codes as "_security".
std::vector<store::IndexEntry> index_entries(std::string_view type, const json::Value& resource);

// The codes of meta.security (confidentiality and sensitivity labels).
std::vector<std::string> security_labels(const json::Value& resource);
// True when the stored resource text carries one of the `hidden` labels (see
// security::Policy::hidden_labels); an unreadable body counts as hidden.
bool hidden_by_labels(std::string_view body, const std::vector<std::string>& hidden);
// Every hidden label the stored version carries is also on the incoming
// resource: a feed that cannot read what it replaces may still resend it,
// but never strip the labels that keep it from others.
bool keeps_hidden_labels(std::string_view stored_body, const json::Value& incoming,
                         const std::vector<std::string>& hidden);

// ETag and Last-Modified (RFC 7231 IMF-fixdate) for a version.
std::string etag(int64_t version);
std::string http_date(std::string_view iso_instant);

}  // namespace gw::model
