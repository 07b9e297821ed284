#pragma once
// The config file's schema (profiles/schemas/config.schema.json), the one
// reference for its keys: compiled in, and what parse_config checks a file
// against (gateway/config/config.h).
#include <string>
#include <string_view>
#include <vector>

namespace gw::config {

// The schema's text (the build's copy of profiles/schemas/config.schema.json).
std::string_view config_schema_text();
// The keys the code reads, as JSON pointers with "*" for array items
// ("/mllp/allow/*/cidr"): a test checks these against the schema's.
std::vector<std::string> config_keys_read();

}  // namespace gw::config
