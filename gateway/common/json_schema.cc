#include "gateway/common/json_schema.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "gateway/common/json.h"

// document.h, which needs a warning silenced, comes through json.h.
#include <rapidjson/pointer.h>
#include <rapidjson/schema.h>

namespace gw::json {

namespace {

std::string escape_token(std::string_view t) {
  std::string out;
  for (char c : t) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out.push_back(c);
  }
  return out;
}

std::vector<std::string> split_pointer(const std::string& p) {
  std::vector<std::string> out;
  if (p.empty()) return out;
  size_t at = 1;
  while (true) {
    size_t next = p.find('/', at);
    std::string raw = p.substr(at, next == std::string::npos ? std::string::npos : next - at);
    std::string tok;
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '~' && i + 1 < raw.size()) {
        tok.push_back(raw[i + 1] == '1' ? '/' : '~');
        ++i;
      } else {
        tok.push_back(raw[i]);
      }
    }
    out.push_back(tok);
    if (next == std::string::npos) break;
    at = next + 1;
  }
  return out;
}

std::string join_pointer(const std::vector<std::string>& tokens, size_t n) {
  std::string out;
  for (size_t i = 0; i < n && i < tokens.size(); ++i) out += "/" + escape_token(tokens[i]);
  return out;
}

// Where each value (by JSON pointer) starts in the text; for a member, where
// its key starts, which is where an operator looks. RapidJSON's DOM keeps no
// positions (and its SAX reader reports them late, from a copy of the
// stream), so this scans text already known to be valid JSON by itself.
std::map<std::string, size_t> value_offsets(std::string_view text) {
  struct Frame {
    bool array = false;
    size_t index = 0;
    std::string path, key;
  };
  std::map<std::string, size_t> out;
  std::vector<Frame> stack;
  auto value_pointer = [&]() -> std::string {
    if (stack.empty()) return "";
    const Frame& f = stack.back();
    return f.path + "/" + (f.array ? std::to_string(f.index) : escape_token(f.key));
  };
  auto skip_ws = [&](size_t i) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r')) ++i;
    return i;
  };
  for (size_t i = skip_ws(0); i < text.size(); i = skip_ws(i)) {
    char c = text[i];
    if (c == '{' || c == '[') {
      std::string p = value_pointer();
      out.emplace(p, i);
      stack.push_back(Frame{c == '[', 0, p, {}});
      ++i;
    } else if (c == '}' || c == ']') {
      if (!stack.empty()) stack.pop_back();
      ++i;
    } else if (c == ',') {
      if (!stack.empty() && stack.back().array) ++stack.back().index;
      ++i;
    } else if (c == ':') {
      ++i;
    } else if (c == '"') {
      size_t start = i++;
      std::string decoded;
      for (; i < text.size() && text[i] != '"'; ++i) {
        if (text[i] == '\\' && i + 1 < text.size()) ++i;  // the escaped character stands for itself here
        decoded.push_back(text[i]);
      }
      ++i;
      size_t next = skip_ws(i);
      if (!stack.empty() && !stack.back().array && next < text.size() && text[next] == ':') {
        stack.back().key = decoded;
        out.emplace(stack.back().path + "/" + escape_token(decoded), start);
      } else {
        out.emplace(value_pointer(), start);
      }
    } else {
      out.emplace(value_pointer(), i);
      while (i < text.size() && text[i] != ',' && text[i] != '}' && text[i] != ']' && text[i] != ' ' &&
             text[i] != '\n' && text[i] != '\r' && text[i] != '\t')
        ++i;
    }
  }
  return out;
}

void line_column(std::string_view text, size_t offset, size_t& line, size_t& column) {
  line = 1;
  column = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
}

std::string pointer_text(const rapidjson::Pointer& p) {
  rapidjson::StringBuffer sb;
  p.Stringify(sb);
  return std::string(sb.GetString(), sb.GetSize());
}

std::string short_value(const Value& v) {
  std::string s = to_string(v);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

std::string list_of(const Value& arr) {
  std::string out;
  for (const auto& e : arr.GetArray()) {
    if (!out.empty()) out += ", ";
    out += e.IsString() ? std::string(as_view(e)) : to_string(e);
  }
  return out;
}

// A message a person can act on, from the keyword RapidJSON reports, the
// schema that failed and the value it failed on.
std::string describe(std::string_view keyword, const Value* schema, const Value* value,
                     const std::vector<std::string>& tokens) {
  const Value* rule = schema ? member(*schema, keyword) : nullptr;
  std::string last = tokens.empty() ? "" : tokens.back();
  if (keyword == "additionalProperties") return "unknown key '" + last + "'";
  if (keyword == "enum" && rule && rule->IsArray() && value)
    return short_value(*value) + " is not one of: " + list_of(*rule);
  if (keyword == "required" && rule && rule->IsArray()) {
    std::string missing;
    for (const auto& r : rule->GetArray()) {
      if (r.IsString() && (!value || !value->IsObject() || !member(*value, as_view(r)))) {
        missing += (missing.empty() ? "'" : ", '") + std::string(as_view(r)) + "'";
      }
    }
    return "missing required key " + missing;
  }
  if (keyword == "type" && rule) {
    auto a = [](std::string_view t) -> std::string {
      if (t == "integer") return "an integer";
      if (t == "object") return "an object";
      if (t == "array") return "an array";
      if (t == "boolean") return "true or false";
      return "a " + std::string(t);
    };
    std::string want;
    if (rule->IsString()) {
      want = a(as_view(*rule));
    } else if (rule->IsArray()) {
      for (const auto& t : rule->GetArray()) want += (want.empty() ? "" : " or ") + (t.IsString() ? a(as_view(t)) : "");
    }
    return "must be " + want + ", not " + (value ? short_value(*value) : std::string("this"));
  }
  if ((keyword == "minimum" || keyword == "maximum") && schema && value) {
    // Draft 4: exclusiveMinimum/Maximum are booleans beside the bound.
    const Value* lo = member(*schema, "minimum");
    const Value* hi = member(*schema, "maximum");
    const Value* lo_x = member(*schema, "exclusiveMinimum");
    const Value* hi_x = member(*schema, "exclusiveMaximum");
    bool lo_out = lo_x && lo_x->IsBool() && lo_x->GetBool();
    bool hi_out = hi_x && hi_x->IsBool() && hi_x->GetBool();
    std::string range;
    if (lo && hi && !lo_out && !hi_out) {
      range = "between " + to_string(*lo) + " and " + to_string(*hi);
    } else if (lo && hi) {
      range = "in " + std::string(lo_out ? "(" : "[") + to_string(*lo) + ", " + to_string(*hi) + (hi_out ? ")" : "]");
    } else if (lo) {
      range = std::string(lo_out ? "more than " : "at least ") + to_string(*lo);
    } else if (hi) {
      range = std::string(hi_out ? "less than " : "at most ") + to_string(*hi);
    }
    return "must be " + range + ", not " + short_value(*value);
  }
  if (keyword == "pattern" && rule && rule->IsString() && value)
    return short_value(*value) + " does not match the pattern " + std::string(as_view(*rule));
  if (keyword == "minItems" || keyword == "minLength") return "must not be empty";
  if (keyword == "uniqueItems") return "lists the same item twice";
  if (keyword == "oneOf" || keyword == "anyOf") return "does not have any of the allowed shapes";
  return "fails the schema's '" + std::string(keyword) + "' rule";
}

}  // namespace

struct Schema::Impl {
  Document source;  // kept: messages quote its enums and required lists
  std::unique_ptr<rapidjson::SchemaDocument> compiled;
};

namespace {

// "includeDefinitions": ["common.schema.json"] (a keyword validators ignore)
// copies the definitions of those files, beside the schema, into its own, so
// shared ones (the roles, the labels) are written once and every "$ref"
// stays local, where a failing rule can be found again for its message.
Result<void> include_definitions(Document& schema, const std::string& dir, const std::string& name) {
  const Value* includes = member(schema, "includeDefinitions");
  if (!includes) return {};
  if (!includes->IsArray()) return make_error(Errc::invalid_input, name + ": includeDefinitions must be an array");
  if (!member(schema, "definitions")) set(schema, "definitions", Value(rapidjson::kObjectType), schema.GetAllocator());
  Value& defs = schema["definitions"];
  for (const auto& inc : includes->GetArray()) {
    if (!inc.IsString() || as_view(inc).find('/') != std::string_view::npos)
      return make_error(Errc::invalid_input, name + ": includeDefinitions names files beside the schema");
    std::string file = dir + "/" + std::string(as_view(inc));
    std::ifstream in(file, std::ios::binary);
    if (!in) return make_error(Errc::invalid_input, name + ": cannot read included " + file);
    std::stringstream ss;
    ss << in.rdbuf();
    auto other = json::parse(ss.str());
    if (!other) return make_error(Errc::invalid_input, file + ": " + other.error().message);
    const Value* theirs = member(*other, "definitions");
    if (!theirs || !theirs->IsObject()) return make_error(Errc::invalid_input, file + ": has no definitions");
    for (const auto& m : theirs->GetObject())
      set(defs, as_view(m.name), Value(m.value, schema.GetAllocator()), schema.GetAllocator());
  }
  return {};
}

}  // namespace

Schema::Schema() : impl_(std::make_unique<Impl>()) {}
Schema::Schema(Schema&&) noexcept = default;
Schema& Schema::operator=(Schema&&) noexcept = default;
Schema::~Schema() = default;

Result<Schema> Schema::parse(std::string_view schema_text, const std::string& name) {
  Schema s;
  auto doc = json::parse(schema_text);
  if (!doc) return make_error(Errc::invalid_input, name + ": " + doc.error().message);
  s.impl_->source = std::move(*doc);
  auto slash = name.rfind('/');
  if (auto r = include_definitions(s.impl_->source, slash == std::string::npos ? "." : name.substr(0, slash), name); !r)
    return r.error();
  s.impl_->compiled = std::make_unique<rapidjson::SchemaDocument>(s.impl_->source);
  return s;
}

Result<Schema> Schema::load(const std::string& schema_file) {
  std::ifstream in(schema_file, std::ios::binary);
  if (!in) return make_error(Errc::invalid_input, "cannot read schema " + schema_file + ": " + std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  return parse(ss.str(), schema_file);
}

std::vector<SchemaProblem> Schema::problems(std::string_view text, size_t max_problems) const {
  std::vector<SchemaProblem> out;
  Document work;
  work.Parse<rapidjson::kParseIterativeFlag>(text.data(), text.size());
  if (work.HasParseError()) {
    SchemaProblem p;
    line_column(text, work.GetErrorOffset(), p.line, p.column);
    p.message = std::string("not valid JSON: ") + rapidjson::GetParseError_En(work.GetParseError());
    out.push_back(std::move(p));
    return out;
  }
  const std::map<std::string, size_t> offsets = value_offsets(text);

  // RapidJSON 1.1 stops at the first problem. To report every one, the value
  // found wrong is taken out of a working copy and the copy checked again;
  // indices of array items taken out are mapped back to the original text.
  std::map<std::string, std::set<size_t>> removed;  // original array pointer -> original indices taken out
  auto original_pointer = [&](const std::vector<std::string>& tokens) {
    std::vector<std::string> orig;
    const Value* node = &work;
    for (const auto& t : tokens) {
      if (node && node->IsArray()) {
        size_t wanted = std::strtoul(t.c_str(), nullptr, 10), seen = 0, i = 0;
        const auto& gone = removed[join_pointer(orig, orig.size())];
        for (;; ++i) {
          if (gone.count(i)) continue;
          if (seen++ == wanted) break;
        }
        orig.push_back(std::to_string(i));
        node = wanted < node->Size() ? &(*node)[static_cast<SizeType>(wanted)] : nullptr;
      } else {
        orig.push_back(t);
        node = node && node->IsObject() ? member(*node, t) : nullptr;
      }
    }
    return orig;
  };

  while (out.size() < max_problems) {
    rapidjson::SchemaValidator validator(*impl_->compiled);
    if (work.Accept(validator)) break;
    std::string working = pointer_text(validator.GetInvalidDocumentPointer());
    std::vector<std::string> tokens = split_pointer(working);
    std::vector<std::string> orig = original_pointer(tokens);
    const Value* value = rapidjson::Pointer(working.c_str()).Get(work);
    const Value* schema = validator.GetInvalidSchemaPointer().Get(impl_->source);
    SchemaProblem p;
    p.pointer = join_pointer(orig, orig.size());
    std::string_view keyword = validator.GetInvalidSchemaKeyword();
    // Taking a wrong value out can leave its container short ("must not be
    // empty", "missing required key"): that is the same problem again, not
    // one more for the operator to fix.
    bool follow_on = (keyword == "minItems" || keyword == "required" || keyword == "minProperties") &&
                     std::any_of(out.begin(), out.end(), [&](const SchemaProblem& earlier) {
                       return earlier.pointer.rfind(p.pointer + "/", 0) == 0;
                     });
    if (!follow_on) {
      p.message = describe(keyword, schema, value, orig);
      p.keyword = std::string(keyword);
      auto pos = offsets.find(p.pointer);
      line_column(text, pos == offsets.end() ? 0 : pos->second, p.line, p.column);
      out.push_back(std::move(p));
    }
    if (tokens.empty()) break;  // the document itself is wrong: nothing smaller to take out
    Value* parent = rapidjson::Pointer(join_pointer(tokens, tokens.size() - 1).c_str()).Get(work);
    if (parent == nullptr) break;
    if (parent->IsObject()) {
      if (!parent->RemoveMember(tokens.back().c_str())) break;
    } else if (parent->IsArray()) {
      size_t i = std::strtoul(tokens.back().c_str(), nullptr, 10);
      if (i >= parent->Size()) break;
      parent->Erase(parent->Begin() + i);
      removed[join_pointer(orig, orig.size() - 1)].insert(std::strtoul(orig.back().c_str(), nullptr, 10));
    } else {
      break;
    }
  }
  return out;
}

std::pair<size_t, size_t> position_of(std::string_view text, const std::string& pointer) {
  auto offsets = value_offsets(text);
  auto it = offsets.find(pointer);
  if (it == offsets.end()) return {0, 0};
  return line_column_of(text, it->second);
}

std::pair<size_t, size_t> line_column_of(std::string_view text, size_t offset) {
  std::pair<size_t, size_t> out;
  line_column(text, offset, out.first, out.second);
  return out;
}

Result<void> validate_text(std::string_view text, const std::string& name, const Schema& schema) {
  auto problems = schema.problems(text);
  if (problems.empty()) return {};
  std::string msg = std::to_string(problems.size()) + " problem" + (problems.size() == 1 ? "" : "s") + " in " + name;
  for (const auto& p : problems) {
    msg += "\n  " + name + ":" + std::to_string(p.line) + ":" + std::to_string(p.column) + ": " + p.message;
    if (!p.pointer.empty()) msg += " (at " + p.pointer + ")";
  }
  return make_error(Errc::invalid_input, msg);
}

Result<void> validate_file(const std::string& file, const Schema& schema) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return make_error(Errc::invalid_input, "cannot read " + file + ": " + std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  return validate_text(ss.str(), file, schema);
}

}  // namespace gw::json
