#pragma once
// JSON Patch (RFC 6902) over the JSON facade: add, remove, replace, move,
// copy and test, with JSON Pointers (RFC 6901) resolved by RapidJSON's own
// Pointer. All or nothing: the target is changed only when every operation
// applies. Errors name the operation ("/2/path") and why.
#include "gateway/common/json.h"
#include "gateway/common/result.h"

namespace gw::json {

// `patch` must be an array of operation objects. On error `target` is unchanged.
Result<void> apply_patch(Document& target, const Value& patch);

}  // namespace gw::json
