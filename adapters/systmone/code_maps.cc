#include "adapters/systmone/code_maps.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "gateway/common/json.h"

namespace gw::adapters::systmone {
namespace {

Error fail(const std::string& file, const std::string& key, const std::string& why) {
  return make_error(Errc::invalid_input, file + ": " + key + ": " + why, key);
}

Result<json::Document> read_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(Errc::not_found, path + ": cannot be read");
  std::stringstream ss;
  ss << in.rdbuf();
  auto doc = json::parse(ss.str());
  if (!doc) return make_error(Errc::invalid_input, path + ": " + doc.error().message);
  if (!doc->IsObject()) return fail(path, "(root)", "must be an object");
  return std::move(*doc);
}

std::string upper(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return out;
}

bool only_keys(const json::Value& obj, std::initializer_list<std::string_view> allowed, std::string& bad) {
  for (auto it = obj.MemberBegin(); it != obj.MemberEnd(); ++it) {
    std::string_view k = json::as_view(it->name);
    if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
      bad = std::string(k);
      return false;
    }
  }
  return true;
}

Result<std::map<std::string, std::string, std::less<>>> string_map(const std::string& file, const json::Value& root,
                                                                   const char* key) {
  const json::Value* v = json::member(root, key);
  if (v == nullptr || !v->IsObject() || v->MemberCount() == 0) return fail(file, key, "must be a non-empty object");
  std::map<std::string, std::string, std::less<>> out;
  for (auto it = v->MemberBegin(); it != v->MemberEnd(); ++it) {
    if (!it->value.IsString() || it->value.GetStringLength() == 0)
      return fail(file, std::string(key) + "." + std::string(json::as_view(it->name)), "must be a non-empty string");
    out.emplace(std::string(json::as_view(it->name)), std::string(json::as_view(it->value)));
  }
  return out;
}

Result<Concept> concept_at(const std::string& file, const std::string& key, const json::Value* v) {
  if (v == nullptr || !v->IsObject()) return fail(file, key, "must be an object {code, display}");
  std::string bad;
  if (!only_keys(*v, {"code", "display"}, bad)) return fail(file, key + "." + bad, "unknown key");
  auto code = json::get_string(*v, "code");
  auto display = json::get_string(*v, "display");
  if (!code || code->empty() || !std::all_of(code->begin(), code->end(), [](char c) { return c >= '0' && c <= '9'; }))
    return fail(file, key + ".code", "must be a SNOMED CT concept id (digits)");
  if (!display || display->empty()) return fail(file, key + ".display", "must be a non-empty string");
  return Concept{std::string(*code), std::string(*display)};
}

Result<CodeSource> load_source(const std::string& file) {
  auto doc = read_json(file);
  if (!doc) return doc.error();
  const json::Value& r = *doc;
  std::string bad;
  if (!only_keys(r, {"comment", "codeSystem", "names", "system", "identity", "perSender", "map", "unmapped"}, bad))
    return fail(file, bad, "unknown key");
  CodeSource s;
  auto id = json::get_string(r, "codeSystem");
  auto system = json::get_string(r, "system");
  if (!id || id->empty()) return fail(file, "codeSystem", "required string");
  if (!system || system->empty()) return fail(file, "system", "required string");
  s.id = *id;
  s.system = *system;
  s.identity = json::get_bool(r, "identity").value_or(false);
  s.per_sender = json::get_bool(r, "perSender").value_or(false);
  const json::Value* map = json::member(r, "map");
  if (map == nullptr || !map->IsObject()) return fail(file, "map", "required object");
  for (auto it = map->MemberBegin(); it != map->MemberEnd(); ++it) {
    std::string code(json::as_view(it->name));
    auto c = concept_at(file, "map." + code, &it->value);
    if (!c) return c.error();
    if (s.identity && c->code != code) return fail(file, "map." + code, "an identity map must map a code to itself");
    s.map.emplace(code, std::move(*c));
  }
  const json::Value* un = json::member(r, "unmapped");
  if (un == nullptr || !un->IsArray()) return fail(file, "unmapped", "required array (empty when every code maps)");
  for (json::SizeType i = 0; i < un->Size(); ++i) {
    std::string at = "unmapped[" + std::to_string(i) + "]";
    const json::Value& e = (*un)[i];
    auto code = json::get_string(e, "code");
    auto reason = json::get_string(e, "reason");
    if (!code || code->empty()) return fail(file, at + ".code", "required string");
    if (!reason || reason->empty()) return fail(file, at + ".reason", "every unmapped code needs its reason");
    if (s.map.count(*code)) return fail(file, at + ".code", "is also in map");
    s.unmapped.emplace(std::string(*code), std::string(*reason));
  }
  return s;
}

}  // namespace

CodeMaps::CodeMaps(CodeMaps&& o) noexcept
    : sources_(std::move(o.sources_)),
      names_(std::move(o.names_)),
      verification_(std::move(o.verification_)),
      roles_(std::move(o.roles_)),
      relationships_(std::move(o.relationships_)),
      by_gender_(std::move(o.by_gender_)),
      plans_(std::move(o.plans_)),
      edd_(std::move(o.edd_)),
      gestation_(std::move(o.gestation_)) {
  relink();
}

void CodeMaps::relink() {
  local_ = nullptr;
  snomed_ = nullptr;
  for (const auto& s : sources_) {
    if (s.per_sender) local_ = &s;
    if (s.identity) snomed_ = &s;
  }
}

const CodeSource* CodeMaps::source(std::string_view name) const {
  char buf[32];
  if (name.size() >= sizeof buf) return nullptr;
  for (std::size_t i = 0; i < name.size(); ++i) buf[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(name[i])));
  auto it = names_.find(std::string_view(buf, name.size()));
  return it == names_.end() ? nullptr : &sources_[it->second];
}

std::string_view CodeMaps::parent_by_gender(std::string_view gender) const {
  auto it = by_gender_.find(gender);
  if (it == by_gender_.end()) it = by_gender_.find("unknown");
  return it->second;
}

Result<CodeMaps> CodeMaps::load(const std::string& profiles_dir) {
  namespace fs = std::filesystem;
  CodeMaps m;
  const std::string dir = profiles_dir + "/codemaps";
  std::error_code ec;
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".json") files.push_back(e.path().string());
  if (ec) return make_error(Errc::not_found, dir + ": " + ec.message());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    auto s = load_source(f);
    if (!s) return s.error();
    // The names are read again below: keep the document's order for messages.
    auto doc = read_json(f);
    const json::Value* names = json::member(*doc, "names");
    if (names == nullptr || !names->IsArray() || names->Empty()) return fail(f, "names", "required non-empty array");
    for (json::SizeType i = 0; i < names->Size(); ++i) {
      if (!(*names)[i].IsString()) return fail(f, "names[" + std::to_string(i) + "]", "must be a string");
      std::string n = upper(json::as_view((*names)[i]));
      if (!m.names_.emplace(n, m.sources_.size()).second)
        return fail(f, "names[" + std::to_string(i) + "]", "'" + n + "' is already claimed by another code map");
    }
    m.sources_.push_back(std::move(*s));
  }
  m.relink();
  if (m.snomed_ == nullptr) return fail(dir, "identity", "one code map must be the SNOMED CT identity map");
  if (m.local_ == nullptr) return fail(dir, "perSender", "one code map must be the per-sender local map");

  const std::string tf = profiles_dir + "/adapters/systmone.json";
  auto doc = read_json(tf);
  if (!doc) return doc.error();
  const json::Value& r = *doc;
  std::string bad;
  if (!only_keys(r, {"comment", "verificationStatus", "careTeamRoles", "relationships", "parentByGender", "cpisPlans",
                     "pregnancy"},
                 bad))
    return fail(tf, bad, "unknown key");
  auto vs = string_map(tf, r, "verificationStatus");
  if (!vs) return vs.error();
  m.verification_ = std::move(*vs);
  auto roles = string_map(tf, r, "careTeamRoles");
  if (!roles) return roles.error();
  m.roles_ = std::move(*roles);
  auto plans = string_map(tf, r, "cpisPlans");
  if (!plans) return plans.error();
  m.plans_ = std::move(*plans);
  auto bg = string_map(tf, r, "parentByGender");
  if (!bg) return bg.error();
  m.by_gender_ = std::move(*bg);
  if (!m.by_gender_.count("unknown")) return fail(tf, "parentByGender.unknown", "required");

  const json::Value* rel = json::member(r, "relationships");
  if (rel == nullptr || !rel->IsObject()) return fail(tf, "relationships", "required object");
  for (auto it = rel->MemberBegin(); it != rel->MemberEnd(); ++it) {
    std::string code(json::as_view(it->name));
    if (code == "comment") continue;
    std::string at = "relationships." + code;
    if (!it->value.IsObject()) return fail(tf, at, "must be an object");
    if (!only_keys(it->value, {"kind", "display", "childSees"}, bad)) return fail(tf, at + "." + bad, "unknown key");
    Relationship x;
    auto kind = json::get_string(it->value, "kind");
    if (kind == "parent") x.kind = Relationship::Kind::parent;
    else if (kind == "child") x.kind = Relationship::Kind::child;
    else if (kind == "none") x.kind = Relationship::Kind::none;
    else return fail(tf, at + ".kind", "must be parent, child or none");
    x.display = json::get_string(it->value, "display").value_or("");
    if (x.display.empty()) return fail(tf, at + ".display", "required string");
    x.child_sees = json::get_string(it->value, "childSees").value_or("");
    m.relationships_.emplace(code, std::move(x));
  }
  for (const auto& [code, x] : m.relationships_) {
    if (!x.child_sees.empty()) {
      auto t = m.relationships_.find(x.child_sees);
      if (t == m.relationships_.end() || t->second.kind != Relationship::Kind::parent)
        return fail(tf, "relationships." + code + ".childSees", "must name a parent relationship");
    }
  }
  for (const auto& [g, code] : m.by_gender_)
    if (!m.relationships_.count(code)) return fail(tf, "parentByGender." + g, "must name a relationship");

  const json::Value* preg = json::member(r, "pregnancy");
  if (preg == nullptr || !preg->IsObject()) return fail(tf, "pregnancy", "required object");
  if (!only_keys(*preg, {"edd", "gestation"}, bad)) return fail(tf, "pregnancy." + bad, "unknown key");
  auto edd = concept_at(tf, "pregnancy.edd", json::member(*preg, "edd"));
  if (!edd) return edd.error();
  auto ges = concept_at(tf, "pregnancy.gestation", json::member(*preg, "gestation"));
  if (!ges) return ges.error();
  m.edd_ = std::move(*edd);
  m.gestation_ = std::move(*ges);
  return m;
}

}  // namespace gw::adapters::systmone
