#include "gateway/security/policy.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <string>
#include <vector>

#include "gateway/common/json.h"
#include "gateway/common/text_file.h"
#include "gateway/security/relationships.h"

namespace gw::security {
namespace {

// The roles of DESIGN.md. A role outside this list in access.json is a typo that
// would silently grant nothing (or, worse, be matched by a badly issued
// certificate), so loading refuses it.
constexpr std::array<std::string_view, 15> kRoles = {
    "local-authority", "unscheduled-care", "gp",           "health-visiting",     "midwifery",
    "school-nursing",  "paediatric-liaison", "lac-health", "camhs",               "adult-mental-health",
    "substance-misuse", "sexual-health",    "commissioner", "integration",        "admin"};

constexpr std::array<std::string_view, 7> kInteractions = {"read",   "vread",  "history", "search",
                                                           "create", "update", "delete"};

bool known(std::string_view v, const auto& list) { return std::find(list.begin(), list.end(), v) != list.end(); }

bool is_type_name(std::string_view s) {
  if (s.empty() || s.size() > 64 || s[0] < 'A' || s[0] > 'Z') return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); });
}

struct Grant {
  std::vector<std::string> roles;
  std::vector<std::string> ods;  // "*" = any organisation
  std::vector<std::string> resources;  // "*" = every type
  std::vector<std::string> interactions;
  // "ownOrganisation" / "exceptCodes": what the content must be for the grant to hold.
  WriteCondition condition;
  bool conditional() const { return !condition.own_organisation.empty() || !condition.except_codes.empty(); }
  std::string scope;  // "" = every resource of the types; "recipient" = those naming the caller's ODS there
};

bool contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

struct Policy::Impl {
  std::vector<Grant> grants;
  std::vector<std::pair<std::string, std::vector<std::string>>> operations;  // name -> roles
  std::vector<std::pair<std::string, std::vector<std::string>>> sensitivity;  // label -> roles that may see it
  std::vector<std::string> withhold_existence;  // notifications.withholdExistence
  std::vector<std::string> restricted_alone;    // notifications.restrictedAlone (roles)
  std::vector<std::string> gateway_written;  // types no client may create, update or delete
  UserRules users;
};

namespace {

// Reads a non-empty array of non-empty strings at obj[key]; `check` vets each item.
template <class Check>
Result<std::vector<std::string>> string_list(const json::Value& obj, std::string_view key, const std::string& where,
                                             Check check) {
  const json::Value* v = json::member(obj, key);
  std::string path = where + "." + std::string(key);
  if (!v) return make_error(Errc::invalid_input, path + " is required", path);
  if (!v->IsArray() || v->Empty()) return make_error(Errc::invalid_input, path + " must be a non-empty array of strings", path);
  std::vector<std::string> out;
  for (json::SizeType i = 0; i < v->Size(); ++i) {
    std::string item_path = path + "[" + std::to_string(i) + "]";
    if (!(*v)[i].IsString()) return make_error(Errc::invalid_input, item_path + " must be a string", item_path);
    std::string s(json::as_view((*v)[i]));
    if (auto err = check(s); !err.empty()) return make_error(Errc::invalid_input, item_path + ": " + err, item_path);
    out.push_back(std::move(s));
  }
  return out;
}

std::string check_role(const std::string& s) {
  return known(s, kRoles) ? "" : "unknown role '" + s + "' (the roles are those of DESIGN.md)";
}

Result<Grant> parse_grant(const json::Value& rule, const std::string& where) {
  if (!rule.IsObject()) return make_error(Errc::invalid_input, where + " must be an object", where);
  for (auto it = rule.MemberBegin(); it != rule.MemberEnd(); ++it) {
    std::string_view k = json::as_view(it->name);
    if (k != "roles" && k != "ods" && k != "resources" && k != "interactions" && k != "ownOrganisation" &&
        k != "exceptCodes" && k != "scope" && k != "comment") {
      return make_error(Errc::invalid_input, where + ": unknown key '" + std::string(k) + "'", where);
    }
  }
  Grant g;
  auto roles = string_list(rule, "roles", where, check_role);
  if (!roles) return roles.error();
  g.roles = std::move(*roles);
  if (json::member(rule, "ods")) {
    auto ods = string_list(rule, "ods", where, [](const std::string& s) -> std::string {
      if (s == "*") return "";
      bool ok = !s.empty() && s.size() <= 16 &&
                std::all_of(s.begin(), s.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)); });
      return ok ? "" : "an ODS code is letters and digits, or \"*\"";
    });
    if (!ods) return ods.error();
    g.ods = std::move(*ods);
  } else {
    g.ods = {"*"};
  }
  auto res = string_list(rule, "resources", where, [](const std::string& s) -> std::string {
    return s == "*" || is_type_name(s) ? "" : "not a resource type name";
  });
  if (!res) return res.error();
  g.resources = std::move(*res);
  auto inter = string_list(rule, "interactions", where, [](const std::string& s) -> std::string {
    return known(s, kInteractions) ? "" : "unknown interaction '" + s + "'";
  });
  if (!inter) return inter.error();
  g.interactions = std::move(*inter);
  if (const json::Value* own = json::member(rule, "ownOrganisation")) {
    std::string path = where + ".ownOrganisation";
    // A top-level element name: the check reads resource[element] and nothing deeper.
    bool ok = own->IsString() && own->GetStringLength() > 0 &&
              std::all_of(own->GetString(), own->GetString() + own->GetStringLength(),
                          [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); });
    if (!ok) return make_error(Errc::invalid_input, path + " must be an element name such as managingOrganization", path);
    g.condition.own_organisation = std::string(json::as_view(*own));
  }
  if (json::member(rule, "exceptCodes")) {
    auto codes = string_list(rule, "exceptCodes", where, [](const std::string& s) -> std::string {
      auto bar = s.find('|');
      return bar != std::string::npos && bar > 0 && bar + 1 < s.size() ? "" : "must be system|code";
    });
    if (!codes) return codes.error();
    g.condition.except_codes = std::move(*codes);
  }
  if (g.conditional()) {
    for (const auto& i : g.interactions) {
      if (i != "create" && i != "update")
        return make_error(Errc::invalid_input,
                          where + ": ownOrganisation and exceptCodes apply to create and update only; put '" + i +
                              "' in a rule of its own",
                          where);
    }
  }
  if (const json::Value* sc = json::member(rule, "scope")) {
    // The scopes the FHIR layer enforces (index parameters naming an ODS code).
    if (!sc->IsString() || json::as_view(*sc) != "recipient")
      return make_error(Errc::invalid_input, where + ".scope must be \"recipient\"", where + ".scope");
    g.scope = std::string(json::as_view(*sc));
  }
  return g;
}

}  // namespace

Policy::Policy() : impl_(std::make_unique<Impl>()) {}
Policy::~Policy() = default;
Policy::Policy(Policy&&) noexcept = default;
Policy& Policy::operator=(Policy&&) noexcept = default;

Result<Policy> Policy::parse(std::string_view json_text) {
  auto doc = json::parse(json_text);
  if (!doc) return doc.error();
  if (!doc->IsObject()) return make_error(Errc::invalid_input, "the policy must be a JSON object");
  Policy p;
  for (auto it = doc->MemberBegin(); it != doc->MemberEnd(); ++it) {
    std::string_view k = json::as_view(it->name);
    if (k != "rules" && k != "operations" && k != "sensitivity" && k != "notifications" && k != "gatewayWritten" &&
        k != "comment") {
      return make_error(Errc::invalid_input, "unknown key '" + std::string(k) + "'", std::string(k));
    }
  }
  const json::Value* rules = json::member(*doc, "rules");
  if (!rules || !rules->IsArray()) return make_error(Errc::invalid_input, "rules must be an array", "rules");
  for (json::SizeType i = 0; i < rules->Size(); ++i) {
    auto g = parse_grant((*rules)[i], "rules[" + std::to_string(i) + "]");
    if (!g) return g.error();
    p.impl_->grants.push_back(std::move(*g));
  }
  if (const json::Value* ops = json::member(*doc, "operations")) {
    if (!ops->IsObject()) return make_error(Errc::invalid_input, "operations must be an object", "operations");
    for (auto it = ops->MemberBegin(); it != ops->MemberEnd(); ++it) {
      std::string name(json::as_view(it->name));
      auto roles = string_list(*ops, name, "operations", check_role);
      if (!roles) return roles.error();
      p.impl_->operations.emplace_back(name, std::move(*roles));
    }
  }
  if (json::member(*doc, "gatewayWritten")) {
    auto types = string_list(*doc, "gatewayWritten", "policy", [](const std::string& s) -> std::string {
      return is_type_name(s) ? "" : "not a resource type name";
    });
    if (!types) return types.error();
    p.impl_->gateway_written = std::move(*types);
  }
  if (const json::Value* sens = json::member(*doc, "sensitivity")) {
    if (!sens->IsObject()) return make_error(Errc::invalid_input, "sensitivity must be an object", "sensitivity");
    for (auto it = sens->MemberBegin(); it != sens->MemberEnd(); ++it) {
      std::string label(json::as_view(it->name));
      if (label == "comment") continue;
      auto roles = string_list(*sens, label, "sensitivity", check_role);
      if (!roles) return roles.error();
      p.impl_->sensitivity.emplace_back(label, std::move(*roles));
    }
  }
  if (const json::Value* n = json::member(*doc, "notifications")) {
    if (!n->IsObject()) return make_error(Errc::invalid_input, "notifications must be an object", "notifications");
    if (json::member(*n, "withholdExistence")) {
      auto labels = string_list(*n, "withholdExistence", "notifications", [](const std::string&) { return std::string(); });
      if (!labels) return labels.error();
      p.impl_->withhold_existence = std::move(*labels);
    }
    if (json::member(*n, "restrictedAlone")) {
      auto roles = string_list(*n, "restrictedAlone", "notifications", check_role);
      if (!roles) return roles.error();
      p.impl_->restricted_alone = std::move(*roles);
    }
  }
  return p;
}

Result<Policy> Policy::load(const std::string& profiles_dir) {
  std::string path = profiles_dir + "/policy/access.json";
  auto p = load_text_file(path, parse);
  if (!p) return p.error();
  auto users = UserRules::load(profiles_dir);
  if (!users) return users.error();
  if (auto r = p->set_users(std::move(*users)); !r) {
    Error e = r.error();
    e.message = profiles_dir + "/policy/users.json: " + e.message;
    return e;
  }
  return p;
}

const UserRules& Policy::users() const { return impl_->users; }

Result<void> Policy::set_users(UserRules rules) {
  for (const auto& j : rules.job_roles)
    for (const auto& r : j.roles)
      if (auto err = check_role(r); !err.empty())
        return make_error(Errc::invalid_input, "jobRoles." + j.code + ".roles: " + err, "jobRoles." + j.code);
  for (size_t i = 0; i < rules.user_facing.size(); ++i)
    for (const auto& r : rules.user_facing[i].roles)
      if (auto err = r == "*" ? std::string() : check_role(r); !err.empty())
        return make_error(Errc::invalid_input, "userFacingSystems[" + std::to_string(i) + "].roles: " + err,
                          "userFacingSystems");
  impl_->users = std::move(rules);
  return {};
}

bool Policy::allows(const Principal& who, std::string_view resource_type, std::string_view interaction) const {
  if (who.role.empty()) return false;
  // Records the gateway keeps of what happened (AuditEvent) are written by
  // the gateway alone, whatever a grant says ("*" for admin included).
  bool write = interaction == "create" || interaction == "update" || interaction == "delete";
  if (write && contains(impl_->gateway_written, resource_type)) return false;
  for (const auto& g : impl_->grants) {
    if (!contains(g.roles, who.role)) continue;
    if (!contains(g.ods, "*") && !contains(g.ods, who.ods)) continue;
    if (!contains(g.resources, "*") && !contains(g.resources, resource_type)) continue;
    if (contains(g.interactions, interaction)) return true;
  }
  return false;
}

std::vector<WriteCondition> Policy::write_conditions(const Principal& who, std::string_view resource_type,
                                                     std::string_view interaction) const {
  std::vector<WriteCondition> out;
  if (who.role.empty()) return out;
  for (const auto& g : impl_->grants) {
    if (!contains(g.roles, who.role)) continue;
    if (!contains(g.ods, "*") && !contains(g.ods, who.ods)) continue;
    if (!contains(g.resources, "*") && !contains(g.resources, resource_type)) continue;
    if (!contains(g.interactions, interaction)) continue;
    if (!g.conditional()) return {};  // an unconditional grant wins
    out.push_back(g.condition);
  }
  return out;
}

bool WriteCondition::met_by(const json::Value& resource, const Principal& who) const {
  if (!own_organisation.empty() && !names_only(resource, own_organisation, who.ods)) return false;
  return std::none_of(except_codes.begin(), except_codes.end(),
                      [&](const std::string& c) { return carries_code(resource, c); });
}

std::string WriteCondition::describe() const {
  std::string out;
  if (!own_organisation.empty()) out = "whose " + own_organisation + " is its own organisation (ODS code identifier)";
  if (!except_codes.empty()) out += std::string(out.empty() ? "" : " and ") + "that is not coded as one of those reserved to other roles (such as a CP-IS plan)";
  return out;
}

bool names_only(const json::Value& resource, std::string_view element, std::string_view ods) {
  const json::Value* v = json::member(resource, element);
  if (!v || ods.empty()) return false;
  auto is_ods = [&](const json::Value& ref) { return is_ods_reference(ref, ods); };
  if (!v->IsArray()) return is_ods(*v);
  if (v->Empty()) return false;
  return std::all_of(v->Begin(), v->End(), is_ods);
}

std::optional<std::string> Policy::row_scope(const Principal& who, std::string_view resource_type,
                                             std::string_view interaction) const {
  std::optional<std::string> scope;
  for (const auto& g : impl_->grants) {
    if (!contains(g.roles, who.role)) continue;
    if (!contains(g.ods, "*") && !contains(g.ods, who.ods)) continue;
    if (!contains(g.resources, "*") && !contains(g.resources, resource_type)) continue;
    if (!contains(g.interactions, interaction)) continue;
    if (g.scope.empty()) return std::nullopt;  // an unscoped grant sees everything
    scope = g.scope;
  }
  return scope;
}

std::vector<std::string> Policy::hidden_labels(const Principal& who) const {
  std::vector<std::string> out;
  for (const auto& [label, roles] : impl_->sensitivity)
    if (!contains(roles, who.role)) out.push_back(label);
  return out;
}

LabelView Policy::label_view(const Principal& who) const {
  LabelView v;
  v.hidden = hidden_labels(who);
  for (const auto& label : v.hidden)
    if (contains(impl_->withhold_existence, label)) v.unspoken.push_back(label);
  v.restricted_alone_unspoken = !contains(impl_->restricted_alone, who.role);
  for (const auto& [label, roles] : impl_->sensitivity) v.sensitivity_labels.push_back(label);
  return v;
}

bool Policy::gateway_written(std::string_view resource_type) const {
  return contains(impl_->gateway_written, resource_type);
}

bool Policy::allows_operation(const Principal& who, std::string_view operation) const {
  if (who.role.empty()) return false;
  for (const auto& [name, roles] : impl_->operations) {
    if (name == operation && contains(roles, who.role)) return true;
  }
  return false;
}

}  // namespace gw::security
