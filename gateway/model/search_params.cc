#include "gateway/model/search_params.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <optional>

#include "gateway/common/clock.h"

namespace gw::model {

namespace {

// Which parameters each type has, following the FHIR R4 search parameter
// definitions: Consent and EpisodeOfCare have patient but no subject (subject
// arrives on Consent only in R5), Subscription has no identifier at all, and
// AuditEvent has patient (an entity) but no identifier search in R4.
struct TypeParams {
  std::string_view type;
  bool identifier;
  bool patient;
  bool subject;
};

constexpr std::array<TypeParams, 13> kTypes{{
    {"Patient", true, false, false},
    {"RelatedPerson", true, true, false},
    {"Encounter", true, true, true},
    {"Observation", true, true, true},
    {"Flag", true, true, true},
    {"CareTeam", true, true, true},
    {"CarePlan", true, true, true},
    {"Organization", true, false, false},
    {"Consent", true, true, false},
    {"EpisodeOfCare", true, true, false},
    {"Subscription", false, false, false},
    {"AuditEvent", false, true, false},  // patient: the entity that is a Patient
    {"Communication", true, true, true},
}};

const TypeParams* find_type(std::string_view type) {
  for (const auto& t : kTypes)
    if (t.type == type) return &t;
  return nullptr;
}

Error invalid(const std::string& param, std::string message) {
  return make_error(Errc::invalid_input, std::move(message), param);
}

// Splits on `sep` where it is not escaped with '\', keeping the escapes so a
// later split (on '|') still sees them.
std::vector<std::string> split_unescaped(std::string_view s, char sep) {
  std::vector<std::string> out(1);
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      out.back().push_back(s[i]);
      out.back().push_back(s[++i]);
    } else if (s[i] == sep) {
      out.emplace_back();
    } else {
      out.back().push_back(s[i]);
    }
  }
  return out;
}

// FHIR search escaping: "\," "\|" "\$" "\\" stand for the character itself.
// A backslash before anything else is kept, as it is then just data.
std::string unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() &&
        (s[i + 1] == ',' || s[i + 1] == '|' || s[i + 1] == '$' || s[i + 1] == '\\')) {
      out.push_back(s[++i]);
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// FHIR id: [A-Za-z0-9\-\.]{1,64}.
bool is_fhir_id(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
  });
}

// Values are never quoted in messages: an identifier value may be an NHS number.
Result<std::vector<TokenValue>> parse_tokens(const std::string& param, std::string_view value) {
  std::vector<TokenValue> out;
  for (const auto& piece : split_unescaped(value, ',')) {
    auto parts = split_unescaped(piece, '|');
    TokenValue t;
    if (parts.size() == 1) {
      t.value = unescape(parts[0]);
    } else if (parts.size() == 2) {
      t.has_system = true;
      t.system = unescape(parts[0]);
      t.value = unescape(parts[1]);
    } else {
      return invalid(param, param + ": a token has at most one '|' (system|value); escape a literal '|' as '\\|'");
    }
    if (t.value.empty()) {
      return invalid(param, param + ": a value is required (system|value, |value or value)");
    }
    out.push_back(std::move(t));
  }
  return out;
}

// "Patient/123", "123", or an absolute URL ending in "/Patient/123"; always "Patient/<id>".
Result<std::vector<std::string>> parse_patient_refs(const std::string& param, std::string_view value) {
  std::vector<std::string> out;
  for (const auto& piece : split_unescaped(value, ',')) {
    std::string ref = unescape(piece);
    std::string_view r = ref;
    if (r.empty()) return invalid(param, param + ": a reference is required (Patient/<id>)");
    std::string_view id;
    if (r.find('/') == std::string_view::npos) {
      id = r;
    } else {
      if (r.starts_with("http://") || r.starts_with("https://")) {
        // The base is not checked: this layer does not know which base URL the
        // client used, and paging links echo what the client sent.
        size_t last = r.rfind('/');
        size_t prev = last == 0 ? std::string_view::npos : r.rfind('/', last - 1);
        if (prev == std::string_view::npos || prev < r.find("//") + 2) {
          return invalid(param, param + ": an absolute reference must end in /Patient/<id>");
        }
        r = r.substr(prev + 1);
      }
      size_t slash = r.find('/');
      if (r.substr(0, slash) != "Patient" || r.find('/', slash + 1) != std::string_view::npos) {
        return invalid(param, param + " must reference a Patient (Patient/<id>)");
      }
      id = r.substr(slash + 1);
    }
    if (!is_fhir_id(id)) return invalid(param, param + ": the Patient id is not a valid FHIR id");
    out.push_back("Patient/" + std::string(id));
  }
  return out;
}

Result<std::vector<DateBound>> parse_last_updated(const std::string& param, std::string_view value) {
  if (value.find(',') != std::string_view::npos) {
    return invalid(param, param + ": several values (commas) are not supported; repeat the parameter to AND");
  }
  std::string prefix = "eq";
  std::string_view date = value;
  if (value.size() >= 2 && value[0] >= 'a' && value[0] <= 'z' && value[1] >= 'a' && value[1] <= 'z') {
    prefix = std::string(value.substr(0, 2));
    date = value.substr(2);
    if (prefix == "ne" || prefix == "ap") {
      return invalid(param, param + ": the prefix '" + prefix + "' is not supported (use eq, ge, gt, le, lt, sa or eb)");
    }
    if (prefix != "eq" && prefix != "ge" && prefix != "gt" && prefix != "le" && prefix != "lt" && prefix != "sa" &&
        prefix != "eb") {
      return invalid(param, param + ": unknown prefix '" + prefix + "'");
    }
  }
  auto range = date_range_ms(date);
  if (!range) {
    return invalid(param, param + ": '" + std::string(date) +
                              "' is not a valid date (YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss[.sss]] with Z or "
                              "+hh:mm)");
  }
  auto lower = format_instant(range->low);
  auto upper = format_instant(range->high);
  auto out_of_range = [&] { return invalid(param, param + ": '" + std::string(date) + "' is out of range"); };

  // Everything becomes half-open bounds, ge and lt, at millisecond resolution:
  // "gt 2026" means after all of 2026, so at or after its end.
  std::vector<DateBound> out;
  if (prefix == "eq") {
    if (!lower || !upper) return out_of_range();
    out.push_back({"ge", *lower});
    out.push_back({"lt", *upper});
  } else if (prefix == "ge") {
    if (!lower) return out_of_range();
    out.push_back({"ge", *lower});
  } else if (prefix == "gt" || prefix == "sa") {
    if (!upper) return out_of_range();
    out.push_back({"ge", *upper});
  } else if (prefix == "le") {
    if (!upper) return out_of_range();
    out.push_back({"lt", *upper});
  } else {  // lt, eb
    if (!lower) return out_of_range();
    out.push_back({"lt", *lower});
  }
  return out;
}


constexpr const char* kDateHelp =
    "YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss[.sss]] with Z or +hh:mm";

// One date value with its prefix as the search range; ap widens the range by
// a tenth of its distance from now (at least a day), as the specification
// suggests for "approximately".
Result<DateTerm> parse_date_term(const std::string& param, std::string_view value) {
  DateTerm t{"eq", "", ""};
  std::string_view date = value;
  if (value.size() >= 2 && value[0] >= 'a' && value[0] <= 'z' && value[1] >= 'a' && value[1] <= 'z') {
    t.prefix = std::string(value.substr(0, 2));
    date = value.substr(2);
    static constexpr std::string_view kPrefixes[] = {"eq", "ne", "lt", "gt", "le", "ge", "sa", "eb", "ap"};
    if (std::find(std::begin(kPrefixes), std::end(kPrefixes), t.prefix) == std::end(kPrefixes))
      return invalid(param, param + ": unknown prefix '" + t.prefix + "' (eq ne lt gt le ge sa eb ap)");
  }
  auto r = date_range_ms(date);
  if (!r) return invalid(param, param + ": '" + std::string(date) + "' is not a valid date (" + kDateHelp + ")");
  int64_t lo = r->low, hi = r->high;
  if (t.prefix == "ap") {
    int64_t now = clock::now_ms();
    int64_t dist = std::max(now > lo ? now - lo : lo - now, now > hi ? now - hi : hi - now);
    int64_t widen = std::max<int64_t>(dist / 10, 86'400'000);
    lo -= widen;
    hi += widen;
  }
  auto l = format_instant(lo), h = format_instant(hi);
  if (!l || !h) return invalid(param, param + ": '" + std::string(date) + "' is out of range");
  t.low = *l;
  t.high = *h;
  return t;
}

bool is_type_name(std::string_view s) {
  return !s.empty() && s[0] >= 'A' && s[0] <= 'Z' &&
         std::all_of(s.begin(), s.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)); });
}

// A declared parameter's value with its modifier, by the parameter's type.
Result<ParamTerm> parse_term(const ParamDecl& d, const std::string& name, const std::string& modifier,
                             const std::string& value) {
  ParamTerm t;
  t.decl = &d;
  t.modifier = modifier;
  if (modifier == "missing") {
    if (value != "true" && value != "false") return invalid(name, name + " must be true or false");
    t.missing = value == "true";
    return t;
  }
  auto bad_modifier = [&] {
    return invalid(name, "modifier not supported: " + name + " (a " + param_type_name(d.type) + " parameter takes " +
                             (d.type == ParamType::string      ? ":exact, :contains or :missing"
                              : d.type == ParamType::token     ? ":not, :text or :missing"
                              : d.type == ParamType::reference ? ":identifier, :<Type> or :missing"
                                                               : ":missing") +
                             ")");
  };
  switch (d.type) {
    case ParamType::string:
      if (!modifier.empty() && modifier != "exact" && modifier != "contains") return bad_modifier();
      for (const auto& piece : split_unescaped(value, ',')) {
        std::string v = unescape(piece);
        if (v.empty()) return invalid(name, name + ": a value is required");
        t.strings.push_back(modifier == "exact" ? v : fold_text(v));
      }
      return t;
    case ParamType::token: {
      if (modifier == "text") {
        if (!d.text) return invalid(name, name + ": :text is not indexed for this parameter");
        for (const auto& piece : split_unescaped(value, ',')) t.strings.push_back(fold_text(unescape(piece)));
        return t;
      }
      if (!modifier.empty() && modifier != "not") return bad_modifier();
      auto tokens = parse_tokens(name, value);
      if (!tokens) return tokens.error();
      t.tokens = std::move(*tokens);
      return t;
    }
    case ParamType::date:
      if (!modifier.empty()) return bad_modifier();
      for (const auto& piece : split_unescaped(value, ',')) {
        auto dt = parse_date_term(name, unescape(piece));
        if (!dt) return dt.error();
        t.dates.push_back(std::move(*dt));
      }
      return t;
    case ParamType::reference: {
      if (modifier == "identifier") {
        auto tokens = parse_tokens(name, value);
        if (!tokens) return tokens.error();
        t.tokens = std::move(*tokens);
        return t;
      }
      if (!modifier.empty() && (!is_type_name(modifier) ||
                                std::find(d.targets.begin(), d.targets.end(), modifier) == d.targets.end())) {
        return bad_modifier();
      }
      for (const auto& piece : split_unescaped(value, ',')) {
        std::string ref = unescape(piece);
        std::string_view r = ref;
        if (r.starts_with("http://") || r.starts_with("https://")) {
          size_t last = r.rfind('/');
          size_t prev = last == 0 ? std::string_view::npos : r.rfind('/', last - 1);
          if (prev == std::string_view::npos) return invalid(name, name + ": an absolute reference must end in /<Type>/<id>");
          r = r.substr(prev + 1);
        }
        size_t slash = r.find('/');
        if (slash == std::string_view::npos) {
          if (!is_fhir_id(r)) return invalid(name, name + ": '" + std::string(r.substr(0, 64)) + "' is not a valid id");
          // An id alone: any of the types the parameter may point to.
          for (const auto& target : d.targets)
            if (modifier.empty() || modifier == target) t.strings.push_back(target + "/" + std::string(r));
          continue;
        }
        std::string_view rt = r.substr(0, slash), id = r.substr(slash + 1);
        if (!is_type_name(rt) || !is_fhir_id(id) ||
            std::find(d.targets.begin(), d.targets.end(), rt) == d.targets.end() ||
            (!modifier.empty() && rt != modifier)) {
          std::string targets;
          for (const auto& x : d.targets) targets += (targets.empty() ? "" : ", ") + x;
          return invalid(name, name + ": a reference to one of " + targets + " is required (<Type>/<id> or <id>)");
        }
        t.strings.emplace_back(r);
      }
      if (t.strings.empty()) return invalid(name, name + ": a value is required");
      return t;
    }
  }
  return bad_modifier();
}

Result<int64_t> parse_non_negative(const std::string& param, std::string_view v, int64_t max) {
  int64_t n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec == std::errc::result_out_of_range && !v.empty() && v[0] != '-') return max;
  if (ec != std::errc() || end != v.data() + v.size() || v.empty() || v[0] == '+') {
    return invalid(param, param + " must be a whole number");
  }
  if (n < 0) return invalid(param, param + " must not be negative");
  return std::min(n, max);
}

bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}

}  // namespace

Result<std::string> percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size() || !is_hex(s[i + 1]) || !is_hex(s[i + 2])) {
        return make_error(Errc::invalid_input, "invalid percent-encoding: '%' must be followed by two hex digits");
      }
      out.push_back(static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2])));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::vector<std::string> supported_search_params(std::string_view type) {
  const TypeParams* t = find_type(type);
  if (t == nullptr) return {};
  std::vector<std::string> out{"_id", "_lastUpdated"};
  if (t->identifier) out.emplace_back("identifier");
  if (t->patient) {
    out.emplace_back("patient");
    out.emplace_back("patient:identifier");
  }
  if (t->subject) {
    out.emplace_back("subject");
    out.emplace_back("subject:identifier");
  }
  return out;
}

// "<Type>:<param>[:Patient]". _include names the searched type as the source;
// _revinclude needs a search of Patients (the only reference target indexed).
static Result<IncludeParam> parse_include(std::string_view type, const std::string& name, const std::string& value,
                                   bool reverse) {
  IncludeParam inc;
  size_t c1 = value.find(':');
  size_t c2 = c1 == std::string::npos ? std::string::npos : value.find(':', c1 + 1);
  inc.source_type = value.substr(0, c1);
  inc.param = c1 == std::string::npos ? std::string() : value.substr(c1 + 1, c2 - c1 - 1);
  std::string target = c2 == std::string::npos ? std::string("Patient") : value.substr(c2 + 1);
  const TypeParams* src = find_type(inc.source_type);
  bool indexed = src && ((inc.param == "patient" && src->patient) || (inc.param == "subject" && src->subject));
  if (!indexed || target != "Patient") {
    return invalid(name, name + ": supported values are <Type>:patient or <Type>:subject (references to Patient)");
  }
  if (!reverse && inc.source_type != type) return invalid(name, "_include must name the searched type " + std::string(type));
  if (reverse && type != "Patient") return invalid(name, "_revinclude is supported on Patient searches only");
  return inc;
}

namespace {

const std::vector<std::string> kResultParams{"_sort", "_count", "_summary", "_elements", "_total"};

// _sort=a,-b: _id, _lastUpdated or a declared parameter.
Result<std::vector<SortKey>> parse_sort(const SearchParamTable* table, std::string_view type, const std::string& value) {
  std::vector<SortKey> out;
  for (const auto& piece : split_unescaped(value, ',')) {
    SortKey k;
    std::string_view p = piece;
    if (p.starts_with('-')) {
      k.descending = true;
      p.remove_prefix(1);
    }
    bool ok = p == "_id" || p == "_lastUpdated" || (table && table->find(type, p));
    if (!ok) {
      std::string names = "_id, _lastUpdated";
      if (table)
        for (const auto* d : table->of(type)) names += ", " + d->name;
      return invalid("_sort", "_sort: cannot sort " + std::string(type) + " by '" + std::string(p.substr(0, 64)) +
                                  "' (one of: " + names + ")");
    }
    k.param = std::string(p);
    out.push_back(std::move(k));
  }
  return out;
}

Result<SearchRequest> parse_impl(const SearchParamTable* table, std::string_view type, std::string_view query,
                                 bool strict) {
  const TypeParams* t = find_type(type);
  if (t == nullptr) {
    return make_error(Errc::not_found, "resource type '" + std::string(type) + "' is not supported");
  }
  if (query.starts_with('?')) query.remove_prefix(1);

  SearchRequest sr;
  bool seen_id = false, seen_count = false, seen_offset = false;
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view pair = query.substr(pos, amp - pos);
    pos = amp + 1;
    if (pair.empty()) continue;

    size_t eq = pair.find('=');
    auto name_r = percent_decode(pair.substr(0, eq), true);
    if (!name_r) return invalid("", "search parameter name: " + name_r.error().message);
    const std::string name = std::move(*name_r);
    std::string raw_value = eq == std::string_view::npos ? std::string() : std::string(pair.substr(eq + 1));
    auto value_r = percent_decode(raw_value, true);
    if (!value_r) return invalid(name, name + ": " + value_r.error().message);
    const std::string value = std::move(*value_r);

    size_t colon = name.find(':');
    const std::string base = name.substr(0, colon);
    const std::string modifier = colon == std::string::npos ? std::string() : name.substr(colon + 1);
    // What the self link echoes: only what was applied.
    auto applied = [&] {
      if (!sr.applied_query.empty()) sr.applied_query.push_back('&');
      sr.applied_query.append(pair);
    };
    if (const ParamDecl* d = table ? table->find(type, base) : nullptr) {
      auto term = parse_term(*d, name, modifier, value);
      if (!term) return term.error();
      sr.terms.push_back(std::move(*term));
      applied();
      continue;
    }
    if (base == "_sort" || base == "_summary" || base == "_elements" || base == "_total") {
      if (!modifier.empty()) return invalid(name, "modifier not supported: " + name);
      if (base == "_sort") {
        if (!sr.sort.empty()) return invalid(name, "_sort may be given only once");
        auto keys = parse_sort(table, type, value);
        if (!keys) return keys.error();
        sr.sort = std::move(*keys);
      } else if (base == "_summary") {
        if (value == "count") {
          sr.summary_count = true;
        } else if (value != "false") {
          if (strict) return invalid(name, "_summary: only count (and false) are supported");
          sr.ignored.push_back(name + "=" + value.substr(0, 16));
          continue;
        }
      } else if (base == "_total") {
        if (value != "none" && value != "estimate" && value != "accurate")
          return invalid(name, "_total must be none, estimate or accurate");
        sr.total = value;
      } else {
        for (const auto& piece : split_unescaped(value, ',')) {
          std::string e = unescape(piece);
          bool ok = !e.empty() && e[0] >= 'a' && e[0] <= 'z' &&
                    std::all_of(e.begin(), e.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)); });
          if (!ok)
            return invalid(name, "_elements: '" + e.substr(0, 64) + "' is not an element name");
          sr.elements.push_back(std::move(e));
        }
      }
      applied();
      continue;
    }

    bool known = base == "_id" || base == "_lastUpdated" || base == "_count" || base == "_offset" ||
                 (base == "identifier" && t->identifier) || (base == "patient" && t->patient) ||
                 (base == "subject" && t->subject);
    if (base == "_format" || base == "_pretty") {
      // Content negotiation and pretty-printing are the REST layer's business.
      if (!modifier.empty()) return invalid(name, "modifier not supported: " + name);
      applied();
      continue;
    }
    if (base == "_include" || base == "_revinclude") {
      if (!modifier.empty()) return invalid(name, "modifier not supported: " + name);
      auto inc = parse_include(type, name, value, base == "_revinclude");
      if (!inc) return inc.error();
      (base == "_include" ? sr.includes : sr.revincludes).push_back(std::move(*inc));
      applied();
      continue;
    }
    if (!known) {
      if (strict) {
        return invalid(name, "unknown search parameter '" + name + "' for " + std::string(type));
      }
      if (std::find(sr.ignored.begin(), sr.ignored.end(), name) == sr.ignored.end()) sr.ignored.push_back(name);
      continue;
    }
    applied();
    const bool chained = modifier == "identifier" && (base == "patient" || base == "subject");
    if (colon != std::string::npos && !chained) {
      return invalid(name, "modifier not supported: " + name);
    }
    if (value.empty()) return invalid(name, name + ": a value is required");

    if (base == "_id") {
      // Repeating _id would AND two id lists; their intersection could be empty,
      // which an id list cannot express, so one _id with commas is required.
      if (seen_id) return invalid(name, "_id may be given only once; separate several ids with commas");
      seen_id = true;
      for (const auto& piece : split_unescaped(value, ',')) {
        std::string id = unescape(piece);
        if (!is_fhir_id(id)) return invalid(name, "_id: not a valid FHIR id");
        sr.ids.push_back(std::move(id));
      }
    } else if (base == "_count") {
      if (seen_count) return invalid(name, "_count may be given only once");
      seen_count = true;
      // The ceiling is the REST layer's; here a huge value just saturates.
      auto n = parse_non_negative(name, value, INT_MAX);
      if (!n) return n.error();
      sr.count = static_cast<int>(*n);
    } else if (base == "_offset") {
      if (seen_offset) return invalid(name, "_offset may be given only once");
      seen_offset = true;
      auto n = parse_non_negative(name, value, INT64_MAX);
      if (!n) return n.error();
      sr.offset = *n;
    } else if (base == "_lastUpdated") {
      auto b = parse_last_updated(name, value);
      if (!b) return b.error();
      sr.last_updated.insert(sr.last_updated.end(), b->begin(), b->end());
    } else if (base == "identifier" || chained) {
      auto tokens = parse_tokens(name, value);
      if (!tokens) return tokens.error();
      auto& dest = base == "identifier" ? sr.identifier
                   : base == "patient"  ? sr.patient_identifier
                                        : sr.subject_identifier;
      dest.push_back(std::move(*tokens));
    } else {
      auto refs = parse_patient_refs(name, value);
      if (!refs) return refs.error();
      (base == "patient" ? sr.patient_refs : sr.subject_refs).push_back(std::move(*refs));
    }
  }
  return sr;
}

}  // namespace

Result<SearchRequest> parse_search(std::string_view type, std::string_view query, bool strict) {
  return parse_impl(nullptr, type, query, strict);
}

Result<SearchRequest> parse_search(const SearchParamTable& table, std::string_view type, std::string_view query,
                                   bool strict) {
  return parse_impl(&table, type, query, strict);
}

const std::vector<std::string>& result_params() { return kResultParams; }

std::string token_query_value(std::string_view system, std::string_view value) {
  auto escaped = [](std::string_view s) {
    std::string out;
    for (char c : s) {
      if (c == '\\' || c == '|' || c == ',' || c == '$') out += '\\';
      out += c;
    }
    return out;
  };
  std::string raw = escaped(system) + "|" + escaped(value);
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : raw) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == ':' || c == '/') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace gw::model
