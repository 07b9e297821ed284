#include "gateway/write/merge_policy.h"

#include <map>
#include <set>
#include <vector>

#include "gateway/common/text_file.h"

namespace gw::write {

namespace {

enum class How { replace, by_system, by_url, labels };

struct ElementRule {
  How how = How::replace;
  std::string owner;  // "" = whoever sends it
};

struct TypeRules {
  std::set<std::string, std::less<>> feeds;
  std::vector<std::string> choices;  // choice elements' base names: deceased for deceased[x]
  // feed -> the extension url it always writes on this type: its presence on
  // the stored version says that feed has written it.
  std::map<std::string, std::string, std::less<>> marks;
  std::map<std::string, ElementRule, std::less<>> elements;
};

Result<How> how_of(std::string_view s, const std::string& path) {
  if (s == "replace") return How::replace;
  if (s == "by-system") return How::by_system;
  if (s == "by-url") return How::by_url;
  if (s == "labels") return How::labels;
  return make_error(Errc::invalid_input, path + ": merge must be replace, by-system, by-url or labels", path);
}

Result<void> only_keys(const json::Value& obj, const std::string& path, std::initializer_list<std::string_view> keys) {
  if (!obj.IsObject()) return make_error(Errc::invalid_input, path + " must be an object", path);
  for (const auto& m : obj.GetObject()) {
    std::string_view k = json::as_view(m.name);
    bool known = false;
    for (auto key : keys) known = known || key == k;
    if (!known) return make_error(Errc::invalid_input, path + ": unknown key '" + std::string(k) + "'", path);
  }
  return {};
}

Result<TypeRules> parse_type(const json::Value& v, const std::string& path) {
  if (auto ok = only_keys(v, path, {"comment", "feeds", "elements", "choices", "marks"}); !ok) return ok.error();
  TypeRules t;
  if (const json::Value* choices = json::member(v, "choices")) {
    if (!choices->IsArray()) return make_error(Errc::invalid_input, path + ".choices must be an array", path + ".choices");
    for (const auto& c : choices->GetArray())
      if (c.IsString()) t.choices.emplace_back(json::as_view(c));
  }
  const json::Value* feeds = json::member(v, "feeds");
  if (!feeds || !feeds->IsArray() || feeds->Empty())
    return make_error(Errc::invalid_input, path + ".feeds must be a non-empty array of adapter names", path + ".feeds");
  for (const auto& f : feeds->GetArray()) {
    if (!f.IsString()) return make_error(Errc::invalid_input, path + ".feeds: names are strings", path + ".feeds");
    t.feeds.emplace(json::as_view(f));
  }
  if (const json::Value* marks = json::member(v, "marks")) {
    if (!marks->IsObject()) return make_error(Errc::invalid_input, path + ".marks must be an object", path + ".marks");
    for (const auto& m : marks->GetObject()) {
      std::string feed(json::as_view(m.name));
      if (!t.feeds.contains(feed) || !m.value.IsString())
        return make_error(Errc::invalid_input, path + ".marks: a feed of 'feeds' -> an extension url", path + ".marks");
      t.marks.emplace(std::move(feed), std::string(json::as_view(m.value)));
    }
  }
  const json::Value* elements = json::member(v, "elements");
  if (!elements || !elements->IsObject())
    return make_error(Errc::invalid_input, path + ".elements must be an object", path + ".elements");
  for (const auto& m : elements->GetObject()) {
    std::string name(json::as_view(m.name));
    std::string epath = path + ".elements." + name;
    if (auto ok = only_keys(m.value, epath, {"merge", "owner"}); !ok) return ok.error();
    ElementRule r;
    if (auto how = json::get_string(m.value, "merge")) {
      auto h = how_of(*how, epath);
      if (!h) return h.error();
      r.how = *h;
    }
    if (auto owner = json::get_string(m.value, "owner")) {
      if (!t.feeds.contains(*owner))
        return make_error(Errc::invalid_input, epath + ".owner must be one of the feeds", epath + ".owner");
      r.owner = std::string(*owner);
    }
    t.elements.emplace(std::move(name), std::move(r));
  }
  return t;
}

// incoming[key] := incoming's items, then current's items whose `key_of` is
// not among them (a feed's entry wins for its own system/url).
void union_by(json::Value& into, const json::Value& current, std::string_view key, json::Allocator& a) {
  if (!into.IsArray() || !current.IsArray()) return;
  std::set<std::string> have;
  for (const auto& e : into.GetArray()) have.insert(std::string(json::get_string(e, key).value_or("")));
  for (const auto& e : current.GetArray()) {
    std::string k(json::get_string(e, key).value_or(""));
    if (k.empty() || have.contains(k)) continue;
    into.PushBack(json::Value(e, a), a);
  }
}

// meta: the incoming meta, with every security label of the current one kept.
void keep_labels(json::Value& into, const json::Value& current, json::Allocator& a) {
  const json::Value* cur = json::member(current, "security");
  if (!cur || !cur->IsArray() || !into.IsObject()) return;
  json::Value* sec = const_cast<json::Value*>(json::member(into, "security"));
  if (!sec) {
    json::set(into, "security", json::Value(*cur, a), a);
    return;
  }
  std::set<std::string> have;
  for (const auto& s : sec->GetArray())
    have.insert(std::string(json::get_string(s, "system").value_or("")) + "|" +
                std::string(json::get_string(s, "code").value_or("")));
  for (const auto& s : cur->GetArray()) {
    std::string k = std::string(json::get_string(s, "system").value_or("")) + "|" +
                    std::string(json::get_string(s, "code").value_or(""));
    if (!have.contains(k)) sec->PushBack(json::Value(s, a), a);
  }
}

// The other forms of a choice element the incoming resource already has
// (deceasedDateTime sent, deceasedBoolean stored): keeping both is invalid.
bool other_choice_sent(const TypeRules& t, std::string_view name, const json::Value& incoming) {
  for (const auto& base : t.choices) {
    if (name.rfind(base, 0) != 0) continue;
    for (const auto& m : incoming.GetObject()) {
      std::string_view k = json::as_view(m.name);
      if (k != name && k.rfind(base, 0) == 0) return true;
    }
  }
  return false;
}

// Whether `owner` has written the stored version: its mark extension is
// there (a feed without a mark is assumed to have written it).
bool written_by(const TypeRules& t, std::string_view owner, const json::Value& current) {
  auto m = t.marks.find(owner);
  if (m == t.marks.end()) return true;
  const json::Value* exts = json::member(current, "extension");
  if (!exts || !exts->IsArray()) return false;
  for (const auto& e : exts->GetArray())
    if (json::get_string(e, "url").value_or("") == m->second) return true;
  return false;
}

}  // namespace

struct MergePolicy::Impl {
  std::map<std::string, TypeRules, std::less<>> types;
};

MergePolicy::MergePolicy() : impl_(std::make_unique<Impl>()) {}
MergePolicy::~MergePolicy() = default;
MergePolicy::MergePolicy(MergePolicy&&) noexcept = default;
MergePolicy& MergePolicy::operator=(MergePolicy&&) noexcept = default;

Result<MergePolicy> MergePolicy::load(const std::string& profiles_dir) {
  return load_text_file(profiles_dir + "/merge/feeds.json", parse);
}

Result<MergePolicy> MergePolicy::parse(std::string_view text) {
  auto doc = json::parse(text);
  if (!doc) return doc.error();
  if (auto ok = only_keys(*doc, "(root)", {"comment", "types"}); !ok) return ok.error();
  const json::Value* types = json::member(*doc, "types");
  if (!types || !types->IsObject()) return make_error(Errc::invalid_input, "types must be an object", "types");
  MergePolicy p;
  for (const auto& m : types->GetObject()) {
    std::string name(json::as_view(m.name));
    auto t = parse_type(m.value, "types." + name);
    if (!t) return t.error();
    p.impl_->types.emplace(std::move(name), std::move(*t));
  }
  return p;
}

bool MergePolicy::merges(std::string_view type, std::string_view feed) const {
  auto it = impl_->types.find(type);
  return it != impl_->types.end() && it->second.feeds.contains(feed);
}

void MergePolicy::merge(std::string_view type, std::string_view feed, const json::Value& current,
                        json::Document& incoming) const {
  auto it = impl_->types.find(type);
  if (it == impl_->types.end() || !current.IsObject() || !incoming.IsObject()) return;
  auto& a = incoming.GetAllocator();
  for (const auto& m : current.GetObject()) {
    std::string_view name = json::as_view(m.name);
    if (name == "resourceType" || name == "id") continue;
    json::Value* sent = const_cast<json::Value*>(json::member(incoming, name));
    if (!sent) {  // not carried by this feed: kept
      if (other_choice_sent(it->second, name, incoming)) continue;
      json::set(incoming, name, json::Value(m.value, a), a);
      continue;
    }
    ElementRule rule;
    if (auto r = it->second.elements.find(name); r != it->second.elements.end()) rule = r->second;
    switch (rule.how) {
      case How::by_system: union_by(*sent, m.value, "system", a); break;
      case How::by_url: union_by(*sent, m.value, "url", a); break;
      case How::labels: keep_labels(*sent, m.value, a); break;
      case How::replace:
        // The owner's value stays; what another feed wrote, the next feed may change.
        if (!rule.owner.empty() && rule.owner != feed && written_by(it->second, rule.owner, current))
          *sent = json::Value(m.value, a);
        break;
    }
  }
}

}  // namespace gw::write
