#include "gateway/model/search_decl.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace gw::model {

namespace {

// ---- dates -----------------------------------------------------------------

// Howard Hinnant's civil-calendar algorithms (proleptic Gregorian).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void civil_from_days(int64_t z, int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y = static_cast<int64_t>(yoe) + era * 400 + (m <= 2);
}

unsigned days_in_month(int y, unsigned m) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

constexpr int64_t kDayMs = 86'400'000;

std::optional<std::string> format_instant_impl(int64_t ms) {
  int64_t days = ms >= 0 ? ms / kDayMs : -((-ms + kDayMs - 1) / kDayMs);
  int64_t rem = ms - days * kDayMs;
  int64_t y;
  unsigned m, d;
  civil_from_days(days, y, m, d);
  if (y < 0 || y > 9999) return std::nullopt;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(y), m, d,
                static_cast<int>(rem / 3'600'000), static_cast<int>(rem / 60'000 % 60),
                static_cast<int>(rem / 1000 % 60), static_cast<int>(rem % 1000));
  return std::string(buf);
}

bool read_digits(std::string_view s, size_t& pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    char c = s[pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  pos += n;
  return true;
}

bool read_char(std::string_view s, size_t& pos, char c) {
  if (pos >= s.size() || s[pos] != c) return false;
  ++pos;
  return true;
}

struct Range {
  int64_t lower;  // inclusive, ms since the epoch, UTC
  int64_t upper;  // exclusive: the start of the next unit at the value's precision
};

// A date or dateTime at its precision, as the half-open interval it stands for.
// Dates without a time are UTC days (the server's time zone); times need a zone.
std::optional<Range> parse_date_range(std::string_view s) {
  size_t pos = 0;
  int y = 0, mo = 1, d = 1;
  if (!read_digits(s, pos, 4, y)) return std::nullopt;
  if (pos == s.size()) {
    int64_t l = days_from_civil(y, 1, 1) * kDayMs;
    return Range{l, days_from_civil(y + 1, 1, 1) * kDayMs};
  }
  if (!read_char(s, pos, '-') || !read_digits(s, pos, 2, mo) || mo < 1 || mo > 12) return std::nullopt;
  if (pos == s.size()) {
    int64_t l = days_from_civil(y, mo, 1) * kDayMs;
    int64_t u = mo == 12 ? days_from_civil(y + 1, 1, 1) : days_from_civil(y, mo + 1, 1);
    return Range{l, u * kDayMs};
  }
  if (!read_char(s, pos, '-') || !read_digits(s, pos, 2, d) || d < 1 ||
      d > static_cast<int>(days_in_month(y, static_cast<unsigned>(mo)))) {
    return std::nullopt;
  }
  const int64_t day_ms = days_from_civil(y, mo, d) * kDayMs;
  if (pos == s.size()) return Range{day_ms, day_ms + kDayMs};

  int hh = 0, mi = 0, ss = 0;
  if (!read_char(s, pos, 'T') || !read_digits(s, pos, 2, hh) || hh > 23 || !read_char(s, pos, ':') ||
      !read_digits(s, pos, 2, mi) || mi > 59) {
    return std::nullopt;
  }
  int64_t width = 60'000;
  int64_t frac_ms = 0;
  if (read_char(s, pos, ':')) {
    if (!read_digits(s, pos, 2, ss) || ss > 59) return std::nullopt;
    width = 1000;
    if (read_char(s, pos, '.')) {
      size_t n = 0;
      int64_t scale = 100;
      while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
        if (n < 3) frac_ms += (s[pos] - '0') * scale;
        scale /= 10;
        ++n;
        ++pos;
      }
      if (n == 0 || n > 9) return std::nullopt;
      // Finer than a millisecond cannot be told apart in the store's instants.
      width = n >= 3 ? 1 : (n == 1 ? 100 : 10);
    }
  }
  int64_t offset_ms = 0;
  if (!read_char(s, pos, 'Z')) {
    if (pos >= s.size()) return std::nullopt;
    char sign = s[pos++];
    // A '+' left unencoded in a query arrives as a space; it can only mean '+' here.
    if (sign != '+' && sign != '-' && sign != ' ') return std::nullopt;
    int oh = 0, om = 0;
    if (!read_digits(s, pos, 2, oh) || oh > 14 || !read_char(s, pos, ':') || !read_digits(s, pos, 2, om) ||
        om > 59) {
      return std::nullopt;
    }
    offset_ms = (oh * 60 + om) * 60'000LL * (sign == '-' ? -1 : 1);
  }
  if (pos != s.size()) return std::nullopt;
  int64_t l = day_ms + hh * 3'600'000LL + mi * 60'000LL + ss * 1000LL + frac_ms - offset_ms;
  return Range{l, l + width};
}


}  // namespace

std::optional<std::string> format_instant(int64_t ms) { return format_instant_impl(ms); }

std::optional<MsRange> date_range_ms(std::string_view value) {
  auto r = parse_date_range(value);
  if (!r) return std::nullopt;
  return MsRange{r->lower, r->upper};
}

std::optional<InstantRange> date_range(std::string_view value) {
  auto r = parse_date_range(value);
  if (!r) return std::nullopt;
  auto lo = format_instant(r->lower), hi = format_instant(r->upper);
  if (!lo || !hi) return std::nullopt;
  return InstantRange{*lo, *hi};
}

const char* param_type_name(ParamType t) {
  switch (t) {
    case ParamType::string: return "string";
    case ParamType::token: return "token";
    case ParamType::date: return "date";
    case ParamType::reference: return "reference";
  }
  return "token";
}

// ---- folding -----------------------------------------------------------------

namespace {

// Latin-1 Supplement and Latin Extended-A (U+00C0..U+017F) to their base
// letters: what UK names and addresses carry (Zoë, Siân, Łukasz, Ødegaard).
// A letter outside the table is kept as written, lower-cased when ASCII.
constexpr std::string_view kFold00C0 =
    "aaaaaaaceeeeiiii"   // C0-CF
    "dnooooo*ouuuuyts"   // D0-DF (D7 multiplication sign kept, DF sharp s -> s)
    "aaaaaaaceeeeiiii"   // E0-EF
    "dnooooo/ouuuuyty";  // F0-FF
constexpr std::string_view kFold0100 =
    "aaaaaaccccccccdd"   // 100-10F
    "ddeeeeeeeeeegggg"   // 110-11F
    "gggghhhhiiiiiiii"   // 120-12F
    "iiiijjkkklllllll"   // 130-13F
    "lllnnnnnnnnnoooo"   // 140-14F
    "oooorrrrrrssssss"   // 150-15F
    "ssttttttuuuuuuuu"   // 160-16F
    "uuuuwwyyyzzzzzzs";  // 170-17F

}  // namespace

std::string fold_text(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool space = false;
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      space = !out.empty();
      ++i;
      continue;
    }
    if (space) {
      out.push_back(' ');
      space = false;
    }
    if (c < 0x80) {
      out.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c));
      ++i;
      continue;
    }
    // Two-byte UTF-8 sequences cover U+0080..U+07FF.
    if ((c & 0xE0) == 0xC0 && i + 1 < s.size()) {
      unsigned cp = ((c & 0x1Fu) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3Fu);
      char base = 0;
      if (cp >= 0xC0 && cp <= 0xFF) base = kFold00C0[cp - 0xC0];
      else if (cp >= 0x100 && cp <= 0x17F) base = kFold0100[cp - 0x100];
      if (base != 0 && base != '*' && base != '/') {
        out.push_back(base);
        if (cp == 0xDF) out.push_back('s');  // ß -> ss
        i += 2;
        continue;
      }
    }
    out.push_back(static_cast<char>(c));
    ++i;
  }
  return out;
}

// ---- the table -----------------------------------------------------------------

Result<SearchParamTable> SearchParamTable::load(const std::string& profiles_dir) {
  std::string file = profiles_dir + "/search/params.json";
  std::ifstream in(file, std::ios::binary);
  if (!in) return make_error(Errc::invalid_input, "cannot read " + file);
  std::stringstream ss;
  ss << in.rdbuf();
  return parse(ss.str(), file);
}

Result<SearchParamTable> SearchParamTable::parse(std::string_view text, const std::string& file) {
  auto doc = json::parse(text);
  if (!doc) return make_error(Errc::invalid_input, file + ": " + doc.error().message);
  const json::Value* params = doc->IsObject() ? json::member(*doc, "params") : nullptr;
  if (!params || !params->IsObject()) return make_error(Errc::invalid_input, file + ": 'params' must be an object");
  SearchParamTable t;
  // The built-in parameters are not data: a declaration may not shadow them.
  static constexpr std::string_view kBuiltIn[] = {"_id", "_lastUpdated", "identifier", "patient", "subject"};
  for (auto it = params->MemberBegin(); it != params->MemberEnd(); ++it) {
    TypeParams tp;
    tp.type = std::string(json::as_view(it->name));
    if (!it->value.IsArray()) return make_error(Errc::invalid_input, file + ": params." + tp.type + " must be an array");
    for (const auto& d : it->value.GetArray()) {
      ParamDecl p;
      auto name = json::get_string(d, "name");
      auto type = json::get_string(d, "type");
      std::string where = file + ": params." + tp.type + "." + std::string(name.value_or("?"));
      if (!name || !type) return make_error(Errc::invalid_input, where + ": name and type are required");
      p.name = std::string(*name);
      if (std::find(std::begin(kBuiltIn), std::end(kBuiltIn), p.name) != std::end(kBuiltIn))
        return make_error(Errc::invalid_input, where + ": '" + p.name + "' is built in and cannot be declared");
      for (const auto& q : tp.params)
        if (q.name == p.name) return make_error(Errc::invalid_input, where + ": declared twice");
      if (*type == "string") p.type = ParamType::string;
      else if (*type == "token") p.type = ParamType::token;
      else if (*type == "date") p.type = ParamType::date;
      else if (*type == "reference") p.type = ParamType::reference;
      else return make_error(Errc::invalid_input, where + ": unknown type '" + std::string(*type) + "'");
      if (const json::Value* paths = json::member(d, "path"); paths && paths->IsArray())
        for (const auto& v : paths->GetArray())
          if (v.IsString()) p.paths.emplace_back(json::as_view(v));
      if (p.paths.empty()) return make_error(Errc::invalid_input, where + ": path must list at least one path");
      if (const json::Value* ts = json::member(d, "targets"); ts && ts->IsArray())
        for (const auto& v : ts->GetArray())
          if (v.IsString()) p.targets.emplace_back(json::as_view(v));
      p.text = json::get_bool(d, "text").value_or(false);
      if (auto cs = json::get_string(d, "system")) {
        if (p.type != ParamType::token) return make_error(Errc::invalid_input, where + ": 'system' is for a token parameter");
        p.code_system = std::string(*cs);
      }
      if (auto w = json::get_string(d, "within")) {
        p.within = std::string(*w);
        const std::string& path = p.paths.front();
        p.within_key = path.substr(path.rfind('.') + 1);
        if (p.type != ParamType::string || p.paths.size() != 1)
          return make_error(Errc::invalid_input, where + ": 'within' is for a string parameter with one path");
      }
      p.doc = std::string(json::get_string(d, "doc").value_or(""));
      tp.params.push_back(std::move(p));
    }
    for (const auto& p : tp.params) {
      if (p.within.empty()) continue;
      auto host = std::find_if(tp.params.begin(), tp.params.end(), [&](const ParamDecl& q) { return q.name == p.within; });
      if (host == tp.params.end() || host->type != ParamType::string || !host->within.empty())
        return make_error(Errc::invalid_input, file + ": params." + tp.type + "." + p.name + ": within '" + p.within +
                                                   "' must name a string parameter of the same type");
    }
    t.types_.push_back(std::move(tp));
  }
  return t;
}

const ParamDecl* SearchParamTable::find(std::string_view type, std::string_view name) const {
  for (const auto& tp : types_)
    if (tp.type == type)
      for (const auto& p : tp.params)
        if (p.name == name) return &p;
  return nullptr;
}

std::vector<const ParamDecl*> SearchParamTable::of(std::string_view type) const {
  std::vector<const ParamDecl*> out;
  for (const auto& tp : types_)
    if (tp.type == type)
      for (const auto& p : tp.params) out.push_back(&p);
  return out;
}

// ---- extraction ------------------------------------------------------------------

namespace {

// Every value a dotted path reaches; arrays on the way are walked through.
void walk(const json::Value& v, std::string_view path, std::vector<const json::Value*>& out) {
  if (v.IsArray()) {
    for (const auto& e : v.GetArray()) walk(e, path, out);
    return;
  }
  if (path.empty()) {
    out.push_back(&v);
    return;
  }
  if (!v.IsObject()) return;
  size_t dot = path.find('.');
  const json::Value* next = json::member(v, path.substr(0, dot));
  if (next) walk(*next, dot == std::string_view::npos ? std::string_view() : path.substr(dot + 1), out);
}

void add_string(std::vector<store::IndexEntry>& out, const std::string& param, std::string_view s,
                std::string_view part = {}) {
  if (s.empty()) return;
  std::string v = fold_text(s);
  v.push_back(kFoldSeparator);
  v.append(s);
  out.push_back(store::IndexEntry{param, std::string(part), std::move(v)});
}

// A string, or the strings of a HumanName/Address (one level: family,
// given[], line[], postalCode...).
void strings_of(const json::Value& v, const std::string& param, std::vector<store::IndexEntry>& out) {
  if (v.IsString()) return add_string(out, param, json::as_view(v));
  if (!v.IsObject()) return;
  for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
    std::string_view k = json::as_view(it->name);
    if (k == "use" || k == "type" || k == "id") continue;
    if (it->value.IsString()) add_string(out, param, json::as_view(it->value), k);
    else if (it->value.IsArray())
      for (const auto& e : it->value.GetArray())
        if (e.IsString()) add_string(out, param, json::as_view(e), k);
  }
}

void add_coding(const json::Value& c, const ParamDecl& p, std::vector<store::IndexEntry>& out) {
  auto code = json::get_string(c, "code");
  if (code) out.push_back(store::IndexEntry{p.name, std::string(json::get_string(c, "system").value_or("")),
                                            std::string(*code)});
  if (p.text)
    if (auto d = json::get_string(c, "display")) add_string(out, p.name + ":text", *d);
}

void tokens_of(const json::Value& v, const ParamDecl& p, std::vector<store::IndexEntry>& out) {
  if (v.IsString()) {  // a code: its system is the declared one (implicit in R4), if any
    out.push_back(store::IndexEntry{p.name, p.code_system, std::string(json::as_view(v))});
  } else if (v.IsBool()) {
    out.push_back(store::IndexEntry{p.name, "", v.GetBool() ? "true" : "false"});
  } else if (v.IsObject()) {
    if (const json::Value* codings = json::member(v, "coding"); codings && codings->IsArray()) {  // CodeableConcept
      for (const auto& c : codings->GetArray())
        if (c.IsObject()) add_coding(c, p, out);
      if (p.text)
        if (auto t = json::get_string(v, "text")) add_string(out, p.name + ":text", *t);
    } else if (json::member(v, "code")) {  // Coding
      add_coding(v, p, out);
    } else if (auto value = json::get_string(v, "value")) {  // Identifier
      out.push_back(store::IndexEntry{p.name, std::string(json::get_string(v, "system").value_or("")),
                                      std::string(*value)});
    }
  }
}

void dates_of(const json::Value& v, const std::string& param, std::vector<store::IndexEntry>& out) {
  if (v.IsString()) {
    if (auto r = date_range(json::as_view(v))) out.push_back(store::IndexEntry{param, r->high, r->low});
    return;
  }
  if (!v.IsObject()) return;
  // A Period: an open end reaches the edge of time.
  auto start = json::get_string(v, "start");
  auto end = json::get_string(v, "end");
  std::optional<InstantRange> s = start ? date_range(*start) : std::nullopt;
  std::optional<InstantRange> e = end ? date_range(*end) : std::nullopt;
  if (!s && !e) return;
  out.push_back(store::IndexEntry{param, e ? e->high : std::string(kMaxInstant),
                                  s ? s->low : std::string(kMinInstant)});
}

void references_of(const json::Value& v, const std::string& param, std::vector<store::IndexEntry>& out) {
  if (!v.IsObject()) return;
  if (auto ref = json::get_string(v, "reference")) {
    std::string_view r = *ref;
    // "https://host/fhir/Organization/X" -> "Organization/X": the base is not ours to judge.
    if (r.starts_with("http://") || r.starts_with("https://")) {
      size_t last = r.rfind('/');
      size_t prev = last == std::string_view::npos || last == 0 ? std::string_view::npos : r.rfind('/', last - 1);
      if (prev != std::string_view::npos) r = r.substr(prev + 1);
    }
    if (r.find('/') != std::string_view::npos && !r.starts_with("urn:"))
      out.push_back(store::IndexEntry{param, "", std::string(r)});
  }
  if (const json::Value* id = json::member(v, "identifier"); id && id->IsObject())
    if (auto value = json::get_string(*id, "value"))
      out.push_back(store::IndexEntry{param, std::string(json::get_string(*id, "system").value_or("")),
                                      std::string(*value)});
}

}  // namespace

void SearchParamTable::extract(std::string_view type, const json::Value& resource,
                               std::vector<store::IndexEntry>& out) const {
  for (const auto& tp : types_) {
    if (tp.type != type) continue;
    std::vector<const json::Value*> values;
    for (const auto& p : tp.params) {
      if (!p.within.empty()) continue;  // reads another parameter's rows
      values.clear();
      for (const auto& path : p.paths) walk(resource, path, values);
      for (const json::Value* v : values) {
        switch (p.type) {
          case ParamType::string: strings_of(*v, p.name, out); break;
          case ParamType::token: tokens_of(*v, p, out); break;
          case ParamType::date: dates_of(*v, p.name, out); break;
          case ParamType::reference: references_of(*v, p.name, out); break;
        }
      }
    }
  }
}

}  // namespace gw::model
