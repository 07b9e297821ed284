#include "gateway/common/json.h"

namespace gw::json {

namespace {

// Deepest nesting of arrays and objects parse() accepts. FHIR resources need
// a few dozen levels at most.
constexpr size_t kMaxDepth = 128;

// The offset of the first bracket nested deeper than kMaxDepth, or npos.
// Checked before RapidJSON builds anything: its DOM, its destructor and
// every walk over it recurse once per level, so a body of a few megabytes
// of '[' would otherwise exhaust a network thread's stack.
size_t too_deep_at(std::string_view text) {
  size_t depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '[' || c == '{') {
      if (++depth > kMaxDepth) return i;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return std::string_view::npos;
}

}  // namespace

Result<Document> parse(std::string_view text) {
  if (size_t at = too_deep_at(text); at != std::string_view::npos) {
    return make_error(Errc::invalid_input, "JSON nested deeper than " + std::to_string(kMaxDepth) +
                                               " levels at offset " + std::to_string(at));
  }
  Document d;
  // The default flags reject anything but whitespace after the root value;
  // iterative parsing keeps the parser itself off the call stack.
  d.Parse<rapidjson::kParseIterativeFlag>(text.data(), text.size());
  if (d.HasParseError()) {
    return make_error(Errc::invalid_input,
                      std::string("JSON parse error at offset ") + std::to_string(d.GetErrorOffset()) +
                          ": " + rapidjson::GetParseError_En(d.GetParseError()));
  }
  return d;
}

std::string to_string(const Value& v) {
  Buffer buf;
  Writer w(buf);
  v.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

void write_to(const Value& v, std::string& out) {
  Buffer buf;
  Writer w(buf);
  v.Accept(w);
  out.append(buf.GetString(), buf.GetSize());
}

const Value* member(const Value& obj, std::string_view key) {
  if (!obj.IsObject()) return nullptr;
  auto it = obj.FindMember(Value(rapidjson::StringRef(key.data(), static_cast<SizeType>(key.size()))));
  if (it == obj.MemberEnd()) return nullptr;
  return &it->value;
}

std::optional<std::string_view> get_string(const Value& obj, std::string_view key) {
  const Value* v = member(obj, key);
  if (v == nullptr || !v->IsString()) return std::nullopt;
  return std::string_view(v->GetString(), v->GetStringLength());
}

std::optional<int64_t> get_int(const Value& obj, std::string_view key) {
  const Value* v = member(obj, key);
  if (v == nullptr || !v->IsInt64()) return std::nullopt;
  return v->GetInt64();
}

std::optional<bool> get_bool(const Value& obj, std::string_view key) {
  const Value* v = member(obj, key);
  if (v == nullptr || !v->IsBool()) return std::nullopt;
  return v->GetBool();
}

std::string_view as_view(const Value& v) { return {v.GetString(), v.GetStringLength()}; }

Value str(std::string_view s, Allocator& a) {
  return Value(s.data(), static_cast<SizeType>(s.size()), a);
}

void set(Value& obj, std::string_view key, Value v, Allocator& a) {
  auto it = obj.FindMember(Value(rapidjson::StringRef(key.data(), static_cast<SizeType>(key.size()))));
  if (it != obj.MemberEnd()) {
    it->value = std::move(v);
    return;
  }
  obj.AddMember(str(key, a), std::move(v), a);
}

void set(Value& obj, std::string_view key, std::string_view s, Allocator& a) { set(obj, key, str(s, a), a); }

void remove(Value& obj, std::string_view key) {
  if (!obj.IsObject()) return;
  obj.RemoveMember(Value(rapidjson::StringRef(key.data(), static_cast<SizeType>(key.size()))));
}

Result<std::vector<std::string>> string_array(const Value& obj, std::string_view key, const std::string& where,
                                              bool required) {
  std::vector<std::string> out;
  std::string path = where + "." + std::string(key);
  auto bad = [&path](const std::string& at, const char* what) {
    return make_error(Errc::invalid_input, at + " " + what, at);
  };
  const Value* v = member(obj, key);
  if (!v) {
    if (required) return bad(path, "is required");
    return out;
  }
  if (!v->IsArray()) return bad(path, "must be an array of strings");
  for (SizeType i = 0; i < v->Size(); ++i) {
    if (!(*v)[i].IsString() || (*v)[i].GetStringLength() == 0)
      return bad(path + "[" + std::to_string(i) + "]", "must be a non-empty string");
    out.emplace_back(as_view((*v)[i]));
  }
  return out;
}

}  // namespace gw::json
