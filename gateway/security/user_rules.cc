#include "gateway/security/user_rules.h"

#include <algorithm>

#include "gateway/common/json.h"
#include "gateway/common/text_file.h"

namespace gw::security {

namespace {

bool has(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end() || std::find(v.begin(), v.end(), "*") != v.end();
}

Error bad(const std::string& path, const std::string& what) {
  return make_error(Errc::invalid_input, path + " " + what, path);
}

Result<void> only_keys(const json::Value& obj, const std::string& where, std::initializer_list<std::string_view> keys) {
  if (!obj.IsObject()) return bad(where, "must be an object");
  for (auto it = obj.MemberBegin(); it != obj.MemberEnd(); ++it) {
    std::string_view k = json::as_view(it->name);
    if (k != "comment" && std::find(keys.begin(), keys.end(), k) == keys.end())
      return bad(where + "." + std::string(k), "is not a known key");
  }
  return {};
}

}  // namespace

Result<UserRules> UserRules::parse(std::string_view json_text) {
  auto doc = json::parse(json_text);
  if (!doc) return doc.error();
  if (auto r = only_keys(*doc, "users", {"jobRoles", "personRequired", "userFacingSystems", "breakGlass"}); !r)
    return r.error();
  UserRules u;
  if (const json::Value* jr = json::member(*doc, "jobRoles")) {
    if (!jr->IsObject()) return bad("jobRoles", "must be an object");
    for (auto it = jr->MemberBegin(); it != jr->MemberEnd(); ++it) {
      std::string code(json::as_view(it->name));
      if (code == "comment") continue;
      std::string where = "jobRoles." + code;
      if (auto r = only_keys(it->value, where, {"display", "roles"}); !r) return r.error();
      JobRole j;
      j.code = code;
      j.display = std::string(json::get_string(it->value, "display").value_or(""));
      auto roles = json::string_array(it->value, "roles", where, true);
      if (!roles) return roles.error();
      j.roles = std::move(*roles);
      u.job_roles.push_back(std::move(j));
    }
  }
  if (const json::Value* req = json::member(*doc, "personRequired")) {
    if (!req->IsArray()) return bad("personRequired", "must be an array");
    for (json::SizeType i = 0; i < req->Size(); ++i) {
      std::string where = "personRequired[" + std::to_string(i) + "]";
      const json::Value& r = (*req)[i];
      if (auto k = only_keys(r, where, {"operation", "resources", "interactions", "userFacingOnly"}); !k)
        return k.error();
      Requirement q;
      q.operation = std::string(json::get_string(r, "operation").value_or(""));
      auto res = json::string_array(r, "resources", where, false);
      if (!res) return res.error();
      q.resources = std::move(*res);
      auto inter = json::string_array(r, "interactions", where, false);
      if (!inter) return inter.error();
      q.interactions = std::move(*inter);
      if (q.operation.empty() == q.resources.empty())
        return bad(where, "names either an operation or resources (with interactions)");
      if (!q.resources.empty() && q.interactions.empty()) return bad(where + ".interactions", "is required with resources");
      if (const json::Value* uf = json::member(r, "userFacingOnly")) {
        if (!uf->IsBool()) return bad(where + ".userFacingOnly", "must be true or false");
        q.user_facing_only = uf->GetBool();
      }
      u.required.push_back(std::move(q));
    }
  }
  if (const json::Value* uf = json::member(*doc, "userFacingSystems")) {
    if (!uf->IsArray()) return bad("userFacingSystems", "must be an array");
    for (json::SizeType i = 0; i < uf->Size(); ++i) {
      std::string where = "userFacingSystems[" + std::to_string(i) + "]";
      if (auto k = only_keys((*uf)[i], where, {"roles", "systems"}); !k) return k.error();
      Systems s;
      auto roles = json::string_array((*uf)[i], "roles", where, true);
      if (!roles) return roles.error();
      auto systems = json::string_array((*uf)[i], "systems", where, true);
      if (!systems) return systems.error();
      s.roles = std::move(*roles);
      s.systems = std::move(*systems);
      u.user_facing.push_back(std::move(s));
    }
  }
  if (const json::Value* bg = json::member(*doc, "breakGlass")) {
    if (auto k = only_keys(*bg, "breakGlass", {"minReasonLength", "maxReasonLength"}); !k) return k.error();
    for (const char* key : {"minReasonLength", "maxReasonLength"}) {
      const json::Value* n = json::member(*bg, key);
      if (!n) continue;
      if (!n->IsInt64() || n->GetInt64() < 1 || n->GetInt64() > 10000)
        return bad(std::string("breakGlass.") + key, "must be an integer between 1 and 10000");
      (std::string_view(key) == "minReasonLength" ? u.min_reason : u.max_reason) = static_cast<size_t>(n->GetInt64());
    }
    if (u.min_reason > u.max_reason) return bad("breakGlass.minReasonLength", "must not exceed maxReasonLength");
  }
  return u;
}

Result<UserRules> UserRules::load(const std::string& profiles_dir) {
  return load_text_file(profiles_dir + "/policy/users.json", parse);
}

const UserRules::JobRole* UserRules::job_role(std::string_view code) const {
  for (const auto& j : job_roles)
    if (j.code == code) return &j;
  return nullptr;
}

bool UserRules::user_facing_system(const Principal& who) const {
  return std::any_of(user_facing.begin(), user_facing.end(),
                     [&](const Systems& s) { return has(s.roles, who.role) && has(s.systems, who.system); });
}

bool UserRules::person_required_for(const Principal& who, std::string_view operation) const {
  for (const auto& q : required)
    if (q.operation == operation && (!q.user_facing_only || user_facing_system(who))) return true;
  return false;
}

bool UserRules::person_required_for(const Principal& who, std::string_view resource_type,
                                    std::string_view interaction) const {
  for (const auto& q : required) {
    if (q.operation.empty() && has(q.resources, resource_type) && has(q.interactions, interaction) &&
        (!q.user_facing_only || user_facing_system(who)))
      return true;
  }
  return false;
}

}  // namespace gw::security
