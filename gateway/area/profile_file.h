#pragma once
// Reading one profile file of the local area's data (profiles/area/,
// profiles/calendar/): the JSON document, and the check that an object holds
// only keys the loader knows, so that a typo stops start-up naming the file
// and the key instead of quietly routing nothing.
#include <initializer_list>
#include <string>
#include <string_view>

#include "gateway/common/json.h"
#include "gateway/common/result.h"

namespace gw::area {

// The parsed file; errors name the path.
Result<json::Document> read_profile(const std::string& path);

// An error naming the file and the key ("profiles/area/x.json: practices.B1 must be ...").
Error bad_key(const std::string& source, const std::string& key, const std::string& what);

// Every member of `obj` is one of `known` ("comment" is always allowed).
Result<void> only_keys(const json::Value& obj, std::initializer_list<std::string_view> known, const std::string& source,
                       const std::string& where);

// A non-empty string member, or an error naming it.
Result<std::string> required_string(const json::Value& obj, std::string_view key, const std::string& source,
                                    const std::string& where);

}  // namespace gw::area
