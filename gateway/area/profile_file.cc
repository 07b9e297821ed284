#include "gateway/area/profile_file.h"

#include "gateway/common/text_file.h"

namespace gw::area {

Result<json::Document> read_profile(const std::string& path) {
  auto text = read_text_file(path);
  if (!text) return text.error();
  auto doc = json::parse(*text);
  if (!doc) return make_error(Errc::invalid_input, path + ": " + doc.error().message);
  if (!doc->IsObject()) return make_error(Errc::invalid_input, path + ": the root must be an object");
  return std::move(*doc);
}

Error bad_key(const std::string& source, const std::string& key, const std::string& what) {
  return make_error(Errc::invalid_input, source + ": " + key + " " + what, key);
}

Result<void> only_keys(const json::Value& obj, std::initializer_list<std::string_view> known, const std::string& source,
                       const std::string& where) {
  if (!obj.IsObject()) return bad_key(source, where.empty() ? "(root)" : where, "must be an object");
  for (const auto& m : obj.GetObject()) {
    std::string_view k(m.name.GetString(), m.name.GetStringLength());
    if (k == "comment") continue;
    bool ok = false;
    for (auto want : known) ok = ok || k == want;
    if (!ok) return bad_key(source, where.empty() ? std::string(k) : where + "." + std::string(k), "is not a known key");
  }
  return {};
}

Result<std::string> required_string(const json::Value& obj, std::string_view key, const std::string& source,
                                    const std::string& where) {
  auto s = json::get_string(obj, key);
  std::string path = where.empty() ? std::string(key) : where + "." + std::string(key);
  if (!s || s->empty()) return bad_key(source, path, "is required (a non-empty string)");
  return std::string(*s);
}

}  // namespace gw::area
