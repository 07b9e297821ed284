#include "gateway/write/validation.h"

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "gateway/identity/nhs_number.h"

namespace gw::write {
namespace {

// FHIR primitives: their lexical rules are the mechanism and live here; every
// complex type and every resource's shape is data (profiles/).
constexpr std::array<std::string_view, 20> kPrimitives = {
    "string",  "markdown", "code",        "id",          "uri",     "url",      "canonical",
    "oid",     "uuid",     "boolean",     "integer",     "positiveInt", "unsignedInt", "decimal",
    "date",    "dateTime", "instant",     "time",        "base64Binary", "xhtml"};

bool is_primitive(std::string_view t) {
  return std::find(kPrimitives.begin(), kPrimitives.end(), t) != kPrimitives.end();
}

constexpr std::string_view kBackbone = "BackboneElement";
constexpr int64_t kUnbounded = -1;

struct Scope;

struct Element {
  std::string name;  // as written in the rules: "gender", "deceased[x]"
  std::string base;  // without "[x]"
  bool choice = false;
  int64_t min = 0;
  int64_t max = 1;  // kUnbounded for "*"
  std::vector<std::string> types;
  std::vector<std::string> value_set;
  std::vector<std::string> targets;
  // Backbone children, or a datatype's elements copied because this element
  // narrows one of them. Shared until written (copy on write at load time).
  std::shared_ptr<Scope> children;
  std::string same_as;  // recursive backbones (Consent.provision.provision)
  const Scope* same_as_scope = nullptr;
  bool unsupported = false;
};

struct Scope {
  std::map<std::string, Element, std::less<>> elements;
  bool allow_unknown = false;
  // JSON property name -> element and the concrete type it carries
  // ("deceasedBoolean" -> deceased[x], boolean). Built once everything is loaded.
  std::map<std::string, std::pair<const Element*, std::string>, std::less<>> keys;

  Scope() = default;
  Scope(const Scope& o) : elements(o.elements), allow_unknown(o.allow_unknown) {}  // keys point into o
};

struct SystemRule {
  std::string check;  // "" or "nhs-number"
  int64_t max = kUnbounded;
};

// A cross-element rule of a profile (profiles/README.md, "Profiles").
struct Invariant {
  enum class Check { period_order, slice_required } check = Check::period_order;
  std::string element;  // top-level element it concerns ("period", "telecom")
  std::string url, code;  // slice_required: the extension url and its valueCode that mark the slice
  std::vector<std::string> requires_;  // slice_required: elements the slice's item must carry
  std::string message;  // what the issue says
};

// Stricter rules for resources that carry a given code: the CP-IS plan is a
// CareTeam whose category is one of England-ChildProtectionPlan.
struct Profile {
  std::string name;
  std::string when_element, when_system;  // a CodeableConcept (or array of them) at the root
  std::vector<std::string> when_codes;
  std::shared_ptr<Scope> root;  // the base rules with this profile's element rules applied
  std::vector<Invariant> invariants;
};

struct ResourceRules {
  std::string type;
  std::shared_ptr<Scope> root;
  std::map<std::string, SystemRule, std::less<>> systems;
  std::vector<Profile> profiles;
};

std::string capitalised(std::string_view t) {
  std::string s(t);
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 'a' + 'A');
  return s;
}

Element simple(std::string name, std::string type, int64_t max = 1) {
  Element e;
  e.name = e.base = std::move(name);
  e.types = {std::move(type)};
  e.max = max;
  return e;
}

// Every complex value may carry an id and extensions; backbones may also carry
// modifier extensions. Injected so rules files need not repeat them.
void add_element_commons(Scope& s, bool backbone) {
  s.elements.try_emplace("id", simple("id", "string"));
  s.elements.try_emplace("extension", simple("extension", "Extension", kUnbounded));
  if (backbone) s.elements.try_emplace("modifierExtension", simple("modifierExtension", "Extension", kUnbounded));
}

void add_resource_commons(Scope& s) {
  s.elements.try_emplace("id", simple("id", "id"));
  s.elements.try_emplace("meta", simple("meta", "Meta"));
  s.elements.try_emplace("implicitRules", simple("implicitRules", "uri"));
  s.elements.try_emplace("language", simple("language", "code"));
  s.elements.try_emplace("text", simple("text", "Narrative"));
  s.elements.try_emplace("extension", simple("extension", "Extension", kUnbounded));
  s.elements.try_emplace("modifierExtension", simple("modifierExtension", "Extension", kUnbounded));
  Element contained = simple("contained", "Resource", kUnbounded);
  contained.unsupported = true;
  s.elements.try_emplace("contained", std::move(contained));
}

// ---- loading ---------------------------------------------------------------

class Loader {
 public:
  explicit Loader(std::map<std::string, std::shared_ptr<Scope>, std::less<>>& datatypes) : datatypes_(datatypes) {}

  Error fail(const std::string& file, const std::string& key, const std::string& msg) const {
    return make_error(Errc::invalid_input, file + ": " + key + ": " + msg, key);
  }

  bool known_type(std::string_view t) const {
    return is_primitive(t) || t == kBackbone || datatypes_.count(std::string(t)) > 0;
  }

  // Applies one rule object to `e` (new or an override of an inherited element).
  std::optional<Error> apply_rule(const std::string& file, const std::string& key, const json::Value& rule,
                                  Element& e, bool is_new) {
    if (!rule.IsObject()) return fail(file, key, "a rule must be a JSON object");
    for (auto it = rule.MemberBegin(); it != rule.MemberEnd(); ++it) {
      std::string_view k = json::as_view(it->name);
      const json::Value& v = it->value;
      if (k == "comment") continue;
      if (k == "min") {
        if (!v.IsInt64() || v.GetInt64() < 0) return fail(file, key, "min must be a non-negative integer");
        e.min = v.GetInt64();
      } else if (k == "max") {
        if (v.IsString() && json::as_view(v) == "*") e.max = kUnbounded;
        else if (v.IsInt64() && v.GetInt64() >= 1) e.max = v.GetInt64();
        else return fail(file, key, "max must be a positive integer or \"*\"");
      } else if (k == "type") {
        e.types.clear();
        if (v.IsString()) {
          e.types.emplace_back(json::as_view(v));
        } else if (v.IsArray() && !v.Empty()) {
          for (const auto& t : v.GetArray()) {
            if (!t.IsString()) return fail(file, key, "type must be a string or an array of strings");
            e.types.emplace_back(json::as_view(t));
          }
        } else {
          return fail(file, key, "type must be a string or an array of strings");
        }
        for (const auto& t : e.types) {
          if (!known_type(t)) return fail(file, key, "unknown type '" + t + "'");
        }
      } else if (k == "valueSet" || k == "targets") {
        if (!v.IsArray() || v.Empty()) return fail(file, key, std::string(k) + " must be a non-empty array of strings");
        auto& out = k == "valueSet" ? e.value_set : e.targets;
        out.clear();
        for (const auto& c : v.GetArray()) {
          if (!c.IsString() || c.GetStringLength() == 0) {
            return fail(file, key, std::string(k) + " must be a non-empty array of strings");
          }
          out.emplace_back(json::as_view(c));
        }
      } else if (k == "sameAs") {
        if (!v.IsString()) return fail(file, key, "sameAs must be an element path");
        e.same_as = std::string(json::as_view(v));
      } else {
        return fail(file, key, "unknown rule key '" + std::string(k) + "'");
      }
    }
    if (is_new && e.types.empty()) return fail(file, key, "type is required");
    if (e.types.size() > 1 && !e.choice) return fail(file, key, "several types need a choice name ending in [x]");
    if (e.max != kUnbounded && e.min > e.max) return fail(file, key, "min is greater than max");
    bool codes = std::all_of(e.types.begin(), e.types.end(), [](const std::string& t) {
      return t == "code" || t == "string" || t == "uri";
    });
    if (!e.value_set.empty() && !codes) return fail(file, key, "valueSet applies to code, string or uri elements");
    if (!e.targets.empty() && (e.types.size() != 1 || e.types[0] != "Reference")) {
      return fail(file, key, "targets applies to Reference elements");
    }
    if (!e.same_as.empty() && (e.types.size() != 1 || e.types[0] != kBackbone)) {
      return fail(file, key, "sameAs applies to BackboneElement elements");
    }
    if (e.types.size() == 1 && e.types[0] == kBackbone && !e.children && e.same_as.empty()) {
      e.children = std::make_shared<Scope>();
      add_element_commons(*e.children, true);
    }
    return std::nullopt;
  }

  // The scope holding e's children, ready to be written to.
  Result<Scope*> writable_children(const std::string& file, const std::string& key, Element& e) {
    if (e.choice || e.types.size() != 1) return fail(file, key, "a choice element cannot have child rules");
    if (e.children) {
      if (e.children.use_count() > 1) e.children = std::make_shared<Scope>(*e.children);
      return e.children.get();
    }
    const std::string& t = e.types[0];
    auto dt = datatypes_.find(t);
    if (dt == datatypes_.end()) return fail(file, key, "'" + e.name + "' is a " + t + " and has no child elements");
    e.children = std::make_shared<Scope>(*dt->second);
    return e.children.get();
  }

  std::optional<Error> parse_elements(const std::string& file, const json::Value& elements, Scope& root) {
    if (!elements.IsObject()) return fail(file, "elements", "must be a JSON object");
    // Parents before children, whatever order the file lists them in.
    std::vector<std::pair<std::string, const json::Value*>> rules;
    for (auto it = elements.MemberBegin(); it != elements.MemberEnd(); ++it) {
      rules.emplace_back(std::string(json::as_view(it->name)), &it->value);
    }
    std::stable_sort(rules.begin(), rules.end(), [](const auto& a, const auto& b) {
      return std::count(a.first.begin(), a.first.end(), '.') < std::count(b.first.begin(), b.first.end(), '.');
    });
    for (const auto& [path, rule] : rules) {
      std::string key = "elements.\"" + path + "\"";
      Scope* scope = &root;
      size_t start = 0;
      while (true) {
        size_t dot = path.find('.', start);
        std::string seg = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
        if (seg.empty()) return fail(file, key, "empty segment in the element path");
        if (dot == std::string::npos) {
          auto found = scope->elements.find(seg);
          if (found != scope->elements.end()) {
            if (auto err = apply_rule(file, key, *rule, found->second, false)) return err;
          } else {
            Element e;
            e.name = seg;
            e.choice = seg.size() > 3 && seg.ends_with("[x]");
            e.base = e.choice ? seg.substr(0, seg.size() - 3) : seg;
            if (auto err = apply_rule(file, key, *rule, e, true)) return err;
            scope->elements.emplace(seg, std::move(e));
          }
          break;
        }
        auto parent = scope->elements.find(seg);
        if (parent == scope->elements.end()) {
          return fail(file, key, "parent element '" + path.substr(0, dot) + "' is not defined");
        }
        auto child = writable_children(file, key, parent->second);
        if (!child) return child.error();
        scope = *child;
        start = dot + 1;
      }
    }
    return std::nullopt;
  }

  std::optional<Error> resolve_same_as(const std::string& file, Scope& root, Scope& s, std::set<Scope*>& seen) {
    if (!seen.insert(&s).second) return std::nullopt;
    for (auto& [name, e] : s.elements) {
      if (!e.same_as.empty()) {
        const Scope* target = &root;
        const Element* te = nullptr;
        size_t start = 0;
        while (target) {
          size_t dot = e.same_as.find('.', start);
          auto it = target->elements.find(e.same_as.substr(start, dot == std::string::npos ? dot : dot - start));
          if (it == target->elements.end()) {
            te = nullptr;
            break;
          }
          te = &it->second;
          if (dot == std::string::npos) break;
          target = te->children.get();
          start = dot + 1;
        }
        if (!te || !te->children) {
          return fail(file, "sameAs \"" + e.same_as + "\"", "must name a BackboneElement defined in this file");
        }
        e.same_as_scope = te->children.get();
      }
      if (e.children) {
        if (auto err = resolve_same_as(file, root, *e.children, seen)) return err;
      }
    }
    return std::nullopt;
  }

  // A profile starts as a copy of the base rules (children shared until a
  // profile rule writes to them), so it can only add to what the base says.
  Result<Profile> parse_profile(const std::string& file, const std::string& key, const json::Value& def,
                                Scope& base);

 private:
  std::map<std::string, std::shared_ptr<Scope>, std::less<>>& datatypes_;
};

void finalise(Scope& s, std::set<const Scope*>& done) {
  if (!done.insert(&s).second) return;
  s.keys.clear();
  for (auto& [name, e] : s.elements) {
    if (e.choice) {
      for (const auto& t : e.types) s.keys[e.base + capitalised(t)] = {&e, t};
    } else {
      s.keys[e.name] = {&e, e.types.empty() ? std::string() : e.types[0]};
    }
    if (e.children) finalise(*e.children, done);
  }
}

Result<json::Document> read_json(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return make_error(Errc::invalid_input, p.string() + ": cannot be read");
  std::stringstream ss;
  ss << in.rdbuf();
  auto doc = json::parse(ss.str());
  if (!doc) return make_error(Errc::invalid_input, p.string() + ": " + doc.error().message);
  if (!doc->IsObject()) return make_error(Errc::invalid_input, p.string() + ": must be a JSON object");
  return doc;
}

std::optional<Error> only_keys(const std::string& file, const json::Value& obj,
                               std::initializer_list<std::string_view> allowed, const std::string& where) {
  for (auto it = obj.MemberBegin(); it != obj.MemberEnd(); ++it) {
    std::string_view k = json::as_view(it->name);
    if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
      std::string key = where.empty() ? std::string(k) : where + "." + std::string(k);
      return make_error(Errc::invalid_input, file + ": " + key + ": unknown key", key);
    }
  }
  return std::nullopt;
}

// Reads a non-empty array of non-empty strings.
std::optional<Error> string_array(const std::string& file, const std::string& key, const json::Value* v,
                                  std::vector<std::string>& out) {
  if (!v || !v->IsArray() || v->Empty())
    return make_error(Errc::invalid_input, file + ": " + key + ": must be a non-empty array of strings", key);
  for (const auto& s : v->GetArray()) {
    if (!s.IsString() || s.GetStringLength() == 0)
      return make_error(Errc::invalid_input, file + ": " + key + ": must be a non-empty array of strings", key);
    out.emplace_back(json::as_view(s));
  }
  return std::nullopt;
}

std::optional<Error> required_string(const std::string& file, const std::string& key, const json::Value& obj,
                                     std::string_view name, std::string& out) {
  auto v = json::get_string(obj, name);
  if (!v || v->empty())
    return make_error(Errc::invalid_input, file + ": " + key + "." + std::string(name) + ": is required (a string)",
                      key);
  out = std::string(*v);
  return std::nullopt;
}

Result<Invariant> parse_invariant(const std::string& file, const std::string& key, const json::Value& def) {
  if (!def.IsObject()) return make_error(Errc::invalid_input, file + ": " + key + ": must be a JSON object", key);
  if (auto err = only_keys(file, def, {"comment", "check", "element", "url", "code", "requires", "message"}, key))
    return *err;
  Invariant inv;
  std::string check;
  if (auto err = required_string(file, key, def, "check", check)) return *err;
  if (auto err = required_string(file, key, def, "element", inv.element)) return *err;
  if (auto err = required_string(file, key, def, "message", inv.message)) return *err;
  if (check == "period-order") {
    inv.check = Invariant::Check::period_order;
  } else if (check == "slice-required") {
    inv.check = Invariant::Check::slice_required;
    if (auto err = required_string(file, key, def, "url", inv.url)) return *err;
    if (auto err = required_string(file, key, def, "code", inv.code)) return *err;
    if (json::member(def, "requires")) {
      if (auto err = string_array(file, key + ".requires", json::member(def, "requires"), inv.requires_)) return *err;
    }
  } else {
    return make_error(Errc::invalid_input,
                      file + ": " + key + ".check: must be \"period-order\" or \"slice-required\"", key);
  }
  return inv;
}

Result<Profile> Loader::parse_profile(const std::string& file, const std::string& key, const json::Value& def,
                                      Scope& base) {
  if (!def.IsObject()) return fail(file, key, "must be a JSON object");
  if (auto err = only_keys(file, def, {"comment", "name", "when", "elements", "invariants"}, key)) return *err;
  Profile p;
  if (auto err = required_string(file, key, def, "name", p.name)) return *err;
  const json::Value* when = json::member(def, "when");
  std::string wkey = key + ".when";
  if (!when || !when->IsObject()) return fail(file, wkey, "is required (a JSON object)");
  if (auto err = only_keys(file, *when, {"comment", "element", "system", "codes"}, wkey)) return *err;
  if (auto err = required_string(file, wkey, *when, "element", p.when_element)) return *err;
  if (auto err = required_string(file, wkey, *when, "system", p.when_system)) return *err;
  if (auto err = string_array(file, wkey + ".codes", json::member(*when, "codes"), p.when_codes)) return *err;
  auto base_element = base.elements.find(p.when_element);
  if (base_element == base.elements.end() || base_element->second.types != std::vector<std::string>{"CodeableConcept"})
    return fail(file, wkey + ".element", "must name a CodeableConcept element of the resource");
  p.root = std::make_shared<Scope>(base);
  if (const json::Value* els = json::member(def, "elements")) {
    if (auto err = parse_elements(file + " (" + key + ")", *els, *p.root)) return *err;
    std::set<Scope*> seen;
    if (auto err = resolve_same_as(file, *p.root, *p.root, seen)) return *err;
  }
  if (const json::Value* invs = json::member(def, "invariants")) {
    if (!invs->IsArray()) return fail(file, key + ".invariants", "must be an array");
    for (json::SizeType i = 0; i < invs->Size(); ++i) {
      std::string ikey = key + ".invariants[" + std::to_string(i) + "]";
      auto inv = parse_invariant(file, ikey, (*invs)[i]);
      if (!inv) return inv.error();
      if (!p.root->elements.count(inv->element)) return fail(file, ikey + ".element", "is not an element of the resource");
      p.invariants.push_back(std::move(*inv));
    }
  }
  return p;
}

// ---- lexical checks for primitives -------------------------------------------

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

int to_int(std::string_view s) {
  int v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}

bool valid_date(std::string_view s) {
  if (s.size() != 4 && s.size() != 7 && s.size() != 10) return false;
  if (!all_digits(s.substr(0, 4)) || to_int(s.substr(0, 4)) == 0) return false;
  if (s.size() == 4) return true;
  if (s[4] != '-' || !all_digits(s.substr(5, 2))) return false;
  int month = to_int(s.substr(5, 2));
  if (month < 1 || month > 12) return false;
  if (s.size() == 7) return true;
  if (s[7] != '-' || !all_digits(s.substr(8, 2))) return false;
  int year = to_int(s.substr(0, 4));
  int day = to_int(s.substr(8, 2));
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  int max_day = kDays[month - 1] + (month == 2 && leap ? 1 : 0);
  return day >= 1 && day <= max_day;
}

bool valid_time(std::string_view s) {
  if (s.size() < 8 || s[2] != ':' || s[5] != ':') return false;
  if (!all_digits(s.substr(0, 2)) || !all_digits(s.substr(3, 2)) || !all_digits(s.substr(6, 2))) return false;
  if (to_int(s.substr(0, 2)) > 23 || to_int(s.substr(3, 2)) > 59 || to_int(s.substr(6, 2)) > 60) return false;
  if (s.size() == 8) return true;
  return s[8] == '.' && all_digits(s.substr(9));
}

bool valid_zone(std::string_view s) {
  if (s == "Z") return true;
  if (s.size() != 6 || (s[0] != '+' && s[0] != '-') || s[3] != ':') return false;
  if (!all_digits(s.substr(1, 2)) || !all_digits(s.substr(4, 2))) return false;
  int h = to_int(s.substr(1, 2)), m = to_int(s.substr(4, 2));
  return (h <= 13 && m <= 59) || (h == 14 && m == 0);
}

// dateTime: a partial date, or a full date with a time and a zone.
bool valid_date_time(std::string_view s, bool instant) {
  size_t t = s.find('T');
  if (t == std::string_view::npos) return !instant && valid_date(s);
  if (t != 10 || !valid_date(s.substr(0, 10))) return false;
  std::string_view rest = s.substr(11);
  size_t z = rest.find_first_of("Z+-");
  if (z == std::string_view::npos) return false;  // a time needs a zone in FHIR
  return valid_time(rest.substr(0, z)) && valid_zone(rest.substr(z));
}

bool valid_id(std::string_view s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
  });
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

bool valid_code(std::string_view s) {
  if (s.empty() || is_space(s.front()) || is_space(s.back())) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\t' || s[i] == '\r' || s[i] == '\n') return false;
    if (s[i] == ' ' && s[i + 1] == ' ') return false;
  }
  return true;
}

bool valid_uuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    char c = s[i];
    if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return false;
  }
  return true;
}

bool is_type_name(std::string_view s) {
  return !s.empty() && s[0] >= 'A' && s[0] <= 'Z' &&
         std::all_of(s.begin(), s.end(), [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); });
}

// The description of a JSON kind used in messages; never the value itself,
// which may be a patient identifier.
std::string expected_kind(std::string_view type) {
  if (type == "boolean") return "a JSON boolean";
  if (type == "integer" || type == "positiveInt" || type == "unsignedInt") return "a JSON integer";
  if (type == "decimal") return "a JSON number";
  return "a JSON string";
}

// Returns why v is not a valid `type`, or "" when it is.
std::string primitive_problem(std::string_view type, const json::Value& v) {
  if (type == "boolean") return v.IsBool() ? "" : "must be " + expected_kind(type);
  if (type == "integer" || type == "positiveInt" || type == "unsignedInt") {
    if (!v.IsInt()) return "must be " + expected_kind(type) + " (32-bit)";
    if (type == "positiveInt" && v.GetInt() < 1) return "must be 1 or more";
    if (type == "unsignedInt" && v.GetInt() < 0) return "must be 0 or more";
    return "";
  }
  if (type == "decimal") return v.IsNumber() ? "" : "must be " + expected_kind(type);
  if (!v.IsString()) return "must be " + expected_kind(type) + " (FHIR " + std::string(type) + ")";
  std::string_view s = json::as_view(v);
  if (s.empty()) return "must not be an empty string (FHIR JSON: omit the element instead)";
  if (type == "code") return valid_code(s) ? "" : "is not a valid code (no leading, trailing or repeated whitespace)";
  if (type == "id") return valid_id(s) ? "" : "is not a valid id (1-64 of A-Z, a-z, 0-9, '-', '.')";
  if (type == "uri" || type == "url" || type == "canonical" || type == "oid" || type == "uuid") {
    if (std::any_of(s.begin(), s.end(), is_space)) return "must not contain whitespace";
    if (type == "uuid" && !(s.starts_with("urn:uuid:") && valid_uuid(s.substr(9)))) return "must be urn:uuid:<uuid>";
    if (type == "oid" && !s.starts_with("urn:oid:")) return "must be urn:oid:<oid>";
    return "";
  }
  if (type == "date") return valid_date(s) ? "" : "is not a valid date (YYYY, YYYY-MM or YYYY-MM-DD, a real day)";
  if (type == "dateTime") {
    return valid_date_time(s, false) ? "" : "is not a valid dateTime (a date, or YYYY-MM-DDThh:mm:ss with a zone)";
  }
  if (type == "instant") return valid_date_time(s, true) ? "" : "is not a valid instant (YYYY-MM-DDThh:mm:ss with a zone)";
  if (type == "time") return valid_time(s) ? "" : "is not a valid time (hh:mm:ss)";
  if (type == "base64Binary") {
    bool ok = std::all_of(s.begin(), s.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/' || c == '=' || is_space(c);
    });
    return ok ? "" : "is not valid base64";
  }
  if (type == "xhtml") {
    size_t b = s.find_first_not_of(" \t\r\n");
    return b != std::string_view::npos && s.substr(b).starts_with("<div") ? "" : "must be an XHTML <div> element";
  }
  return "";  // string, markdown
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

// ---- validation -------------------------------------------------------------

class Run {
 public:
  Run(const std::map<std::string, std::shared_ptr<Scope>, std::less<>>& datatypes, const ResourceRules& rules,
      IssueSink& sink)
      : datatypes_(datatypes), rules_(rules), sink_(sink) {}

  void object(const json::Value& obj, const Scope& scope, const std::string& path, bool root) {
    std::map<const Element*, std::string> seen;
    for (auto it = obj.MemberBegin(); it != obj.MemberEnd(); ++it) {
      std::string_view key = json::as_view(it->name);
      const json::Value& v = it->value;
      std::string at = path + "." + std::string(key);
      if (root && key == "resourceType") continue;
      if (key.size() > 1 && key[0] == '_') {
        auto base = scope.keys.find(key.substr(1));
        if (base != scope.keys.end() && is_primitive(base->second.second)) {
          primitive_extension(*base->second.first, v, at);
          continue;
        }
      }
      auto found = scope.keys.find(key);
      if (found == scope.keys.end()) {
        if (scope.allow_unknown) {
          no_empties(v, at);
        } else {
          sink_.error("structure", at, "unknown element '" + std::string(key) + "'");
        }
        continue;
      }
      const Element& e = *found->second.first;
      if (e.unsupported) {
        sink_.error("not-supported", at, "contained resources are not supported: send each resource on its own");
        continue;
      }
      if (auto prev = seen.find(&e); prev != seen.end()) {
        sink_.error("structure", at, "only one of " + e.name + " may be present (also found " + prev->second + ")");
        continue;
      }
      seen.emplace(&e, std::string(key));
      element(e, found->second.second, v, at, obj, key);
    }
    for (const auto& [name, e] : scope.elements) {
      if (e.min >= 1 && !seen.count(&e)) sink_.error("required", path + "." + name, name + " is required");
    }
  }

  void root_identifier_counts(const json::Value& resource, const std::string& path) {
    const json::Value* ids = json::member(resource, "identifier");
    if (!ids || !ids->IsArray()) return;
    for (const auto& [system, rule] : rules_.systems) {
      if (rule.max == kUnbounded) continue;
      int64_t n = 0;
      for (const auto& id : ids->GetArray()) {
        if (id.IsObject() && json::get_string(id, "system") == std::optional<std::string_view>(system)) ++n;
      }
      if (n > rule.max) {
        sink_.error("structure", path + ".identifier",
                    "at most " + std::to_string(rule.max) + " identifier(s) with system " + system + " are allowed");
      }
    }
  }

  void invariant(const json::Value& resource, const Invariant& inv, const std::string& path) {
    const json::Value* v = json::member(resource, inv.element);
    std::string at = path + "." + inv.element;
    switch (inv.check) {
      case Invariant::Check::period_order: {
        if (!v || !v->IsObject()) return;
        auto start = json::get_string(*v, "start");
        auto end = json::get_string(*v, "end");
        // Dates only: a day's end written in another zone must not read as before its start.
        if (start && end && valid_date(start->substr(0, 10)) && valid_date(end->substr(0, 10)) &&
            end->substr(0, 10) < start->substr(0, 10)) {
          sink_.error("invariant", at + ".end", inv.message);
        }
        return;
      }
      case Invariant::Check::slice_required: {
        if (v && v->IsArray()) {
          for (const auto& item : v->GetArray())
            if (in_slice(item, inv) && carries_all(item, inv.requires_)) return;
        }
        sink_.error("required", at, inv.message);
        return;
      }
    }
  }

 private:
  static bool in_slice(const json::Value& item, const Invariant& inv) {
    const json::Value* exts = item.IsObject() ? json::member(item, "extension") : nullptr;
    if (!exts || !exts->IsArray()) return false;
    for (const auto& x : exts->GetArray()) {
      if (x.IsObject() && json::get_string(x, "url") == std::optional<std::string_view>(inv.url) &&
          json::get_string(x, "valueCode") == std::optional<std::string_view>(inv.code))
        return true;
    }
    return false;
  }

  static bool carries_all(const json::Value& item, const std::vector<std::string>& names) {
    return std::all_of(names.begin(), names.end(), [&](const std::string& n) { return json::member(item, n) != nullptr; });
  }

  void element(const Element& e, const std::string& type, const json::Value& v, const std::string& at,
               const json::Value& parent, std::string_view key) {
    if (v.IsNull()) {
      sink_.error("value", at, "null is not allowed (FHIR JSON: omit the element instead)");
      return;
    }
    if (e.max == 1) {
      if (v.IsArray()) {
        sink_.error("structure", at, e.name + " occurs at most once, so it must not be an array");
        return;
      }
      value(e, type, v, at);
      return;
    }
    if (!v.IsArray()) {
      sink_.error("structure", at, e.name + " repeats, so it must be an array");
      return;
    }
    if (v.Empty()) {
      sink_.error("value", at, "empty arrays are not allowed (FHIR JSON: omit the element instead)");
      return;
    }
    if (e.max != kUnbounded && static_cast<int64_t>(v.Size()) > e.max) {
      sink_.error("structure", at, e.name + " may occur at most " + std::to_string(e.max) + " times");
    }
    if (static_cast<int64_t>(v.Size()) < e.min) {
      sink_.error("required", at, e.name + " must occur at least " + std::to_string(e.min) + " times");
    }
    const json::Value* ext = json::member(parent, "_" + std::string(key));
    for (json::SizeType i = 0; i < v.Size(); ++i) {
      std::string item_at = at + "[" + std::to_string(i) + "]";
      if (v[i].IsNull()) {
        // A null keeps the place of a repeat that has only extensions (_given[i]).
        bool placeholder = is_primitive(type) && ext && ext->IsArray() && i < ext->Size() && (*ext)[i].IsObject();
        if (!placeholder) sink_.error("value", item_at, "null is not allowed (FHIR JSON: omit the element instead)");
        continue;
      }
      value(e, type, v[i], item_at);
    }
  }

  void value(const Element& e, const std::string& type, const json::Value& v, const std::string& at) {
    if (is_primitive(type)) {
      if (std::string why = primitive_problem(type, v); !why.empty()) {
        sink_.error("value", at, e.name + " " + why);
        return;
      }
      if (!e.value_set.empty() && v.IsString() &&
          std::find(e.value_set.begin(), e.value_set.end(), json::as_view(v)) == e.value_set.end()) {
        sink_.error("code-invalid", at, e.name + " must be one of: " + join(e.value_set));
      }
      return;
    }
    if (!v.IsObject()) {
      sink_.error("structure", at, e.name + " must be a JSON object (" + type + ")");
      return;
    }
    if (v.ObjectEmpty()) {
      sink_.error("value", at, "empty objects are not allowed (FHIR JSON: omit the element instead)");
      return;
    }
    const Scope* scope = e.children ? e.children.get() : e.same_as_scope;
    if (!scope) {
      auto dt = datatypes_.find(type);
      if (dt == datatypes_.end()) return;  // load() refuses unknown types, so this is unreachable
      scope = dt->second.get();
    }
    object(v, *scope, at, false);
    if (type == "Reference") reference(e, v, at);
    if (type == "Identifier") identifier(v, at);
  }

  void primitive_extension(const Element& e, const json::Value& v, const std::string& at) {
    const Scope& element_scope = *datatypes_.at("Element");
    auto one = [&](const json::Value& item, const std::string& item_at) {
      if (!item.IsObject()) {
        sink_.error("structure", item_at, "must be a JSON object carrying id or extension");
      } else if (item.ObjectEmpty()) {
        sink_.error("value", item_at, "empty objects are not allowed (FHIR JSON: omit the element instead)");
      } else {
        object(item, element_scope, item_at, false);
      }
    };
    if (e.max == 1) {
      one(v, at);
      return;
    }
    if (!v.IsArray() || v.Empty()) {
      sink_.error("structure", at, "must be a non-empty array matching " + e.name);
      return;
    }
    for (json::SizeType i = 0; i < v.Size(); ++i) {
      if (!v[i].IsNull()) one(v[i], at + "[" + std::to_string(i) + "]");
    }
  }

  void no_empties(const json::Value& v, const std::string& at) {
    if (v.IsNull() || (v.IsString() && v.GetStringLength() == 0) || (v.IsArray() && v.Empty()) ||
        (v.IsObject() && v.ObjectEmpty())) {
      sink_.error("value", at, "empty values and null are not allowed (FHIR JSON: omit the element instead)");
      return;
    }
    if (v.IsArray()) {
      for (json::SizeType i = 0; i < v.Size(); ++i) no_empties(v[i], at + "[" + std::to_string(i) + "]");
    } else if (v.IsObject()) {
      for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
        no_empties(it->value, at + "." + std::string(json::as_view(it->name)));
      }
    }
  }

  // The referenced type: "Patient" from "Patient/1", ".../fhir/Patient/1/_history/2".
  static std::optional<std::string_view> target_type(std::string_view ref) {
    std::vector<std::string_view> seg;
    size_t start = 0;
    while (true) {
      size_t slash = ref.find('/', start);
      seg.push_back(ref.substr(start, slash == std::string_view::npos ? slash : slash - start));
      if (slash == std::string_view::npos) break;
      start = slash + 1;
    }
    size_t n = seg.size();
    if (n >= 4 && seg[n - 2] == "_history" && is_type_name(seg[n - 4]) && valid_id(seg[n - 3]) && valid_id(seg[n - 1])) {
      return seg[n - 4];
    }
    if (n >= 2 && is_type_name(seg[n - 2]) && valid_id(seg[n - 1])) return seg[n - 2];
    return std::nullopt;
  }

  void reference(const Element& e, const json::Value& v, const std::string& at) {
    const json::Value* r = json::member(v, "reference");
    if (!json::member(v, "reference") && !json::member(v, "identifier") && !json::member(v, "display")) {
      sink_.error("value", at, e.name + " needs a reference, an identifier or a display");
    }
    std::optional<std::string_view> type;
    if (r && r->IsString() && r->GetStringLength() > 0) {
      std::string_view ref = json::as_view(*r);
      std::string ref_at = at + ".reference";
      if (ref.starts_with("#")) {
        sink_.error("not-supported", ref_at, "local references need contained resources, which are not supported");
        return;
      }
      if (ref.starts_with("urn:uuid:")) {
        if (!valid_uuid(ref.substr(9))) sink_.error("value", ref_at, "urn:uuid reference is not a valid UUID");
        return;
      }
      if (ref.starts_with("urn:oid:")) return;
      bool absolute = ref.starts_with("http://") || ref.starts_with("https://");
      type = target_type(ref);
      if (!absolute) {
        size_t slashes = std::count(ref.begin(), ref.end(), '/');
        if (!type || (slashes != 1 && slashes != 3)) {
          sink_.error("value", ref_at, "reference must be Type/id, Type/id/_history/vid, an absolute URL or urn:uuid");
          return;
        }
      } else if (std::any_of(ref.begin(), ref.end(), is_space)) {
        sink_.error("value", ref_at, "reference must not contain whitespace");
        return;
      }
    }
    if (e.targets.empty()) return;
    if (auto t = json::get_string(v, "type")) {
      std::string_view tn = t->substr(t->rfind('/') == std::string_view::npos ? 0 : t->rfind('/') + 1);
      if (std::find(e.targets.begin(), e.targets.end(), tn) == e.targets.end()) {
        sink_.error("value", at + ".type", e.name + " must refer to one of: " + join(e.targets));
      }
    }
    if (type && std::find(e.targets.begin(), e.targets.end(), *type) == e.targets.end()) {
      sink_.error("value", at + ".reference", e.name + " must refer to one of: " + join(e.targets));
    }
  }

  void identifier(const json::Value& v, const std::string& at) {
    auto system = json::get_string(v, "system");
    if (!system) return;
    auto rule = rules_.systems.find(*system);
    if (rule == rules_.systems.end() || rule->second.check != "nhs-number") return;
    const json::Value* value = json::member(v, "value");
    if (!value) {
      sink_.error("required", at + ".value", "an NHS number identifier needs a value");
      return;
    }
    if (!value->IsString() || value->GetStringLength() == 0) return;  // already reported as a string problem
    auto n = identity::normalise_nhs_number(json::as_view(*value));
    if (!n) sink_.error("value", at + ".value", "invalid NHS number: " + n.error().message);
  }

  const std::map<std::string, std::shared_ptr<Scope>, std::less<>>& datatypes_;
  const ResourceRules& rules_;
  IssueSink& sink_;
};

// The first profile whose `when` code the resource carries: its rules replace the base rules.
const Profile* matching_profile(const ResourceRules& rules, const json::Value& resource) {
  for (const auto& p : rules.profiles) {
    const json::Value* v = json::member(resource, p.when_element);
    if (!v) continue;
    auto carries = [&](const json::Value& cc) {
      const json::Value* coding = cc.IsObject() ? json::member(cc, "coding") : nullptr;
      if (!coding || !coding->IsArray()) return false;
      for (const auto& c : coding->GetArray()) {
        if (!c.IsObject() || json::get_string(c, "system") != std::optional<std::string_view>(p.when_system)) continue;
        auto code = json::get_string(c, "code");
        if (code && std::find(p.when_codes.begin(), p.when_codes.end(), *code) != p.when_codes.end()) return true;
      }
      return false;
    };
    if (v->IsArray()) {
      for (const auto& cc : v->GetArray())
        if (carries(cc)) return &p;
    } else if (carries(*v)) {
      return &p;
    }
  }
  return nullptr;
}

}  // namespace

struct Validator::Impl {
  std::map<std::string, std::shared_ptr<Scope>, std::less<>> datatypes;
  std::map<std::string, ResourceRules, std::less<>> resources;
  std::vector<std::string> types;
  model::SearchParamTable search;
};

Validator::Validator() : impl_(std::make_unique<Impl>()) {}
Validator::~Validator() = default;
Validator::Validator(Validator&&) noexcept = default;
Validator& Validator::operator=(Validator&&) noexcept = default;

Result<Validator> Validator::load(const std::string& profiles_dir) {
  namespace fs = std::filesystem;
  Validator v;
  Impl& impl = *v.impl_;
  Loader loader(impl.datatypes);
  auto search = model::SearchParamTable::load(profiles_dir);
  if (!search) return search.error();
  impl.search = std::move(*search);

  // Datatypes first: resources name them. All names are registered before any
  // is parsed so the file's order does not matter for plain references.
  fs::path dt_path = fs::path(profiles_dir) / "datatypes.json";
  std::string dt_file = dt_path.string();
  auto dt_doc = read_json(dt_path);
  if (!dt_doc) return dt_doc.error();
  if (auto err = only_keys(dt_file, *dt_doc, {"comment", "types"}, "")) return *err;
  const json::Value* types = json::member(*dt_doc, "types");
  if (!types || !types->IsObject()) return loader.fail(dt_file, "types", "must be a JSON object");
  auto element_scope = std::make_shared<Scope>();
  add_element_commons(*element_scope, false);
  impl.datatypes["Element"] = element_scope;
  for (auto it = types->MemberBegin(); it != types->MemberEnd(); ++it) {
    std::string name(json::as_view(it->name));
    if (is_primitive(name) || name == kBackbone || name == "Element" || !is_type_name(name)) {
      return loader.fail(dt_file, "types." + name, "is not a definable complex type name");
    }
    auto s = std::make_shared<Scope>();
    add_element_commons(*s, false);
    impl.datatypes[name] = s;
  }
  for (auto it = types->MemberBegin(); it != types->MemberEnd(); ++it) {
    std::string name(json::as_view(it->name));
    std::string where = "types." + name;
    const json::Value& def = it->value;
    if (!def.IsObject()) return loader.fail(dt_file, where, "must be a JSON object");
    if (auto err = only_keys(dt_file, def, {"comment", "elements", "allowUnknownElements"}, where)) return *err;
    Scope& s = *impl.datatypes[name];
    if (auto a = json::member(def, "allowUnknownElements")) {
      if (!a->IsBool()) return loader.fail(dt_file, where + ".allowUnknownElements", "must be a boolean");
      s.allow_unknown = a->GetBool();
    }
    const json::Value* els = json::member(def, "elements");
    if (!els) return loader.fail(dt_file, where + ".elements", "is required");
    if (auto err = loader.parse_elements(dt_file + " (" + where + ")", *els, s)) return *err;
  }

  fs::path rules_dir = fs::path(profiles_dir) / "rules";
  std::error_code ec;
  std::vector<fs::path> files;
  for (fs::directory_iterator it(rules_dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() == ".json") files.push_back(it->path());
  }
  if (ec) return make_error(Errc::invalid_input, rules_dir.string() + ": cannot be listed: " + ec.message());
  if (files.empty()) return make_error(Errc::invalid_input, rules_dir.string() + ": no rules files (*.json)");
  std::sort(files.begin(), files.end());

  for (const auto& path : files) {
    std::string file = path.string();
    auto doc = read_json(path);
    if (!doc) return doc.error();
    if (auto err = only_keys(file, *doc,
                             {"comment", "resourceType", "elements", "identifierSystems", "allowUnknownElements",
                              "profiles"},
                             "")) {
      return *err;
    }
    ResourceRules rr;
    auto rt = json::get_string(*doc, "resourceType");
    if (!rt || *rt != path.stem().string()) {
      return loader.fail(file, "resourceType", "must be present and equal the file name (" + path.stem().string() + ")");
    }
    rr.type = std::string(*rt);
    rr.root = std::make_shared<Scope>();
    add_resource_commons(*rr.root);
    if (auto a = json::member(*doc, "allowUnknownElements")) {
      if (!a->IsBool()) return loader.fail(file, "allowUnknownElements", "must be a boolean");
      rr.root->allow_unknown = a->GetBool();
    }
    const json::Value* els = json::member(*doc, "elements");
    if (!els) return loader.fail(file, "elements", "is required");
    if (auto err = loader.parse_elements(file, *els, *rr.root)) return *err;
    if (const json::Value* sys = json::member(*doc, "identifierSystems")) {
      if (!sys->IsObject()) return loader.fail(file, "identifierSystems", "must be a JSON object");
      for (auto it = sys->MemberBegin(); it != sys->MemberEnd(); ++it) {
        std::string system(json::as_view(it->name));
        std::string where = "identifierSystems.\"" + system + "\"";
        if (!it->value.IsObject()) return loader.fail(file, where, "must be a JSON object");
        if (auto err = only_keys(file, it->value, {"comment", "check", "max"}, where)) return *err;
        SystemRule sr;
        if (auto c = json::member(it->value, "check")) {
          if (!c->IsString() || json::as_view(*c) != "nhs-number") {
            return loader.fail(file, where + ".check", "the only check is \"nhs-number\"");
          }
          sr.check = "nhs-number";
        }
        if (auto m = json::member(it->value, "max")) {
          if (!m->IsInt64() || m->GetInt64() < 1) return loader.fail(file, where + ".max", "must be a positive integer");
          sr.max = m->GetInt64();
        }
        rr.systems.emplace(system, sr);
      }
    }
    std::set<Scope*> seen;
    if (auto err = loader.resolve_same_as(file, *rr.root, *rr.root, seen)) return *err;
    if (const json::Value* profiles = json::member(*doc, "profiles")) {
      if (!profiles->IsArray()) return loader.fail(file, "profiles", "must be an array");
      for (json::SizeType i = 0; i < profiles->Size(); ++i) {
        auto p = loader.parse_profile(file, "profiles[" + std::to_string(i) + "]", (*profiles)[i], *rr.root);
        if (!p) return p.error();
        rr.profiles.push_back(std::move(*p));
      }
    }
    impl.types.push_back(rr.type);
    impl.resources.emplace(rr.type, std::move(rr));
  }

  std::set<const Scope*> done;
  for (auto& [name, s] : impl.datatypes) finalise(*s, done);
  for (auto& [name, r] : impl.resources) {
    finalise(*r.root, done);
    for (auto& p : r.profiles) finalise(*p.root, done);
  }
  std::sort(impl.types.begin(), impl.types.end());
  return v;
}

void Validator::validate(const json::Value& resource, IssueSink& sink) const {
  if (!resource.IsObject()) {
    sink.error("structure", "", "a resource must be a JSON object");
    return;
  }
  const json::Value* rt = json::member(resource, "resourceType");
  if (!rt) {
    sink.error("required", "resourceType", "resourceType is required");
    return;
  }
  if (!rt->IsString()) {
    sink.error("structure", "resourceType", "resourceType must be a string");
    return;
  }
  auto found = impl_->resources.find(json::as_view(*rt));
  if (found == impl_->resources.end()) {
    sink.error("not-supported", "resourceType", "this resource type is not supported by this server");
    return;
  }
  const ResourceRules& rules = found->second;
  const Profile* profile = matching_profile(rules, resource);
  Run run(impl_->datatypes, rules, sink);
  run.object(resource, profile ? *profile->root : *rules.root, rules.type, true);
  run.root_identifier_counts(resource, rules.type);
  if (profile)
    for (const auto& inv : profile->invariants) run.invariant(resource, inv, rules.type);
}

bool Validator::supports(std::string_view type) const { return impl_->resources.count(std::string(type)) > 0; }

const std::vector<std::string>& Validator::resource_types() const { return impl_->types; }

const model::SearchParamTable& Validator::search_params() const { return impl_->search; }

}  // namespace gw::write
