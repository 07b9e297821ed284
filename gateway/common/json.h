#pragma once
// The one JSON facade: the only header in the project that includes RapidJSON.
// Everything else names gw::json types and helpers, so the library can be
// swapped or wrapped in one place.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/common/result.h"

#pragma GCC diagnostic push
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wclass-memaccess"
#endif
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#pragma GCC diagnostic pop

namespace gw::json {

using Value = rapidjson::Value;
using Document = rapidjson::Document;
using Allocator = rapidjson::Document::AllocatorType;
using Buffer = rapidjson::StringBuffer;
using Writer = rapidjson::Writer<rapidjson::StringBuffer>;
using SizeType = rapidjson::SizeType;

// Parses text into a Document; on failure the error names the byte offset.
Result<Document> parse(std::string_view text);

// Compact serialisation.
std::string to_string(const Value& v);
void write_to(const Value& v, std::string& out);  // appends

// Field helpers: nullptr / nullopt when absent or of another type.
const Value* member(const Value& obj, std::string_view key);
std::optional<std::string_view> get_string(const Value& obj, std::string_view key);
std::optional<int64_t> get_int(const Value& obj, std::string_view key);
std::optional<bool> get_bool(const Value& obj, std::string_view key);
std::string_view as_view(const Value& v);  // v must be a string
// obj[key] as an array of non-empty strings, for files operators edit: absent
// gives none (or, when required, an error); anything else is an
// Errc::invalid_input error naming its place, `where`.key or `where`.key[i].
Result<std::vector<std::string>> string_array(const Value& obj, std::string_view key, const std::string& where,
                                              bool required = false);

// Builders (copy the string into the allocator).
Value str(std::string_view s, Allocator& a);
inline Value object() { return Value(rapidjson::kObjectType); }
inline Value array() { return Value(rapidjson::kArrayType); }
// Sets obj[key] = v, replacing an existing member.
void set(Value& obj, std::string_view key, Value v, Allocator& a);
void set(Value& obj, std::string_view key, std::string_view s, Allocator& a);
void remove(Value& obj, std::string_view key);

}  // namespace gw::json
