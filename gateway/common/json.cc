#include "gateway/common/json.h"

namespace gw::json {

Result<Document> parse(std::string_view text) {
  Document d;
  // The default flags reject anything but whitespace after the root value.
  d.Parse(text.data(), text.size());
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

}  // namespace gw::json
