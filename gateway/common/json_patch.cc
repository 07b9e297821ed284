#include "gateway/common/json_patch.h"

#include <string>

#include <rapidjson/pointer.h>

namespace gw::json {

namespace {

Error bad(size_t i, const char* member, const std::string& why) {
  return make_error(Errc::invalid_input, "JSON Patch operation " + std::to_string(i) + ": " + why,
                    "/" + std::to_string(i) + "/" + member);
}

// The parent of `p` and the last reference token, or false when `p` is the root.
bool split_last(const rapidjson::Pointer& p, rapidjson::Pointer& parent, std::string& last) {
  size_t n = p.GetTokenCount();
  if (n == 0) return false;
  parent = rapidjson::Pointer(p.GetTokens(), n - 1);
  const auto& t = p.GetTokens()[n - 1];
  last.assign(t.name, t.length);
  return true;
}

// Inserts `v` at `p` (RFC 6902 "add"): an object member is set, an array
// element inserted before the index ("-" appends).
Result<void> add_at(Document& doc, const rapidjson::Pointer& p, Value v, size_t i, const char* member) {
  auto& a = doc.GetAllocator();
  rapidjson::Pointer parent;
  std::string last;
  if (!split_last(p, parent, last)) {
    doc.CopyFrom(v, a);
    return {};
  }
  Value* container = parent.Get(doc);
  if (!container) return bad(i, member, "the parent of the path does not exist");
  if (container->IsObject()) {
    if (auto it = container->FindMember(last.c_str()); it != container->MemberEnd()) it->value = v;
    else container->AddMember(Value(last.c_str(), static_cast<SizeType>(last.size()), a), v, a);
    return {};
  }
  if (!container->IsArray()) return bad(i, member, "the parent of the path is neither an object nor an array");
  if (last == "-") {
    container->PushBack(v, a);
    return {};
  }
  char* end = nullptr;
  unsigned long idx = std::strtoul(last.c_str(), &end, 10);
  if (last.empty() || *end != '\0' || (last.size() > 1 && last[0] == '0') || idx > container->Size())
    return bad(i, member, "array index '" + last + "' is out of range");
  container->PushBack(Value(), a);
  for (SizeType k = container->Size() - 1; k > idx; --k) (*container)[k] = (*container)[k - 1];
  (*container)[static_cast<SizeType>(idx)] = v;
  return {};
}

Result<void> remove_at(Document& doc, const rapidjson::Pointer& p, size_t i, const char* member) {
  if (p.GetTokenCount() == 0) return bad(i, member, "the whole document cannot be removed");
  if (!p.Get(doc)) return bad(i, member, "nothing at the path to remove");
  p.Erase(doc);
  return {};
}

}  // namespace

Result<void> apply_patch(Document& target, const Value& patch) {
  if (!patch.IsArray()) return make_error(Errc::invalid_input, "a JSON Patch document must be an array of operations");
  Document work;
  work.CopyFrom(target, work.GetAllocator());
  auto& a = work.GetAllocator();
  size_t i = 0;
  for (const auto& op : patch.GetArray()) {
    if (!op.IsObject()) return bad(i, "op", "an operation must be an object");
    auto name = get_string(op, "op");
    auto path = get_string(op, "path");
    if (!name) return bad(i, "op", "'op' is required");
    if (!path) return bad(i, "path", "'path' is required");
    rapidjson::Pointer p(path->data(), path->size());
    if (!p.IsValid()) return bad(i, "path", "'" + std::string(*path) + "' is not a JSON Pointer");
    const Value* value = member(op, "value");
    bool needs_value = *name == "add" || *name == "replace" || *name == "test";
    if (needs_value && !value) return bad(i, "value", "'value' is required for " + std::string(*name));
    if (*name == "add") {
      Value v(*value, a);
      if (auto r = add_at(work, p, std::move(v), i, "path"); !r) return r.error();
    } else if (*name == "remove") {
      if (auto r = remove_at(work, p, i, "path"); !r) return r.error();
    } else if (*name == "replace") {
      Value* at = p.Get(work);
      if (!at) return bad(i, "path", "nothing at the path to replace");
      at->CopyFrom(*value, a);
    } else if (*name == "test") {
      const Value* at = p.Get(work);
      if (!at || *at != *value) return bad(i, "value", "test failed: the value at the path differs");
    } else if (*name == "move" || *name == "copy") {
      auto from = get_string(op, "from");
      if (!from) return bad(i, "from", "'from' is required for " + std::string(*name));
      rapidjson::Pointer f(from->data(), from->size());
      if (!f.IsValid()) return bad(i, "from", "'" + std::string(*from) + "' is not a JSON Pointer");
      const Value* src = f.Get(work);
      if (!src) return bad(i, "from", "nothing at 'from'");
      if (*name == "move" && path->starts_with(*from) && path->size() > from->size() && (*path)[from->size()] == '/')
        return bad(i, "path", "a value cannot be moved into itself");
      Value v(*src, a);
      if (*name == "move")
        if (auto r = remove_at(work, f, i, "from"); !r) return r.error();
      if (auto r = add_at(work, p, std::move(v), i, "path"); !r) return r.error();
    } else {
      return bad(i, "op", "unknown op '" + std::string(*name) + "' (add, remove, replace, move, copy, test)");
    }
    ++i;
  }
  target.Swap(work);
  return {};
}

}  // namespace gw::json
