#include "gateway/security/relationships.h"

#include <algorithm>

#include "gateway/common/text_file.h"

namespace gw::security {

namespace {

Error bad(const std::string& path, const std::string& what) {
  return make_error(Errc::invalid_input, path + " " + what, path);
}

bool has(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end() || std::find(v.begin(), v.end(), "*") != v.end();
}

}  // namespace

Result<Relationships> Relationships::parse(std::string_view json_text) {
  auto doc = json::parse(json_text);
  if (!doc) return doc.error();
  if (!doc->IsObject()) return bad("relationships", "must be an object");
  for (auto it = doc->MemberBegin(); it != doc->MemberEnd(); ++it) {
    std::string_view k = json::as_view(it->name);
    if (k != "comment" && k != "relationshipRequired") return bad(std::string(k), "is not a known key");
  }
  Relationships out;
  const json::Value* rel = json::member(*doc, "relationshipRequired");
  if (!rel) return bad("relationshipRequired", "is required");
  if (!rel->IsArray()) return bad("relationshipRequired", "must be an array");
  for (json::SizeType i = 0; i < rel->Size(); ++i) {
    std::string where = "relationshipRequired[" + std::to_string(i) + "]";
    const json::Value& r = (*rel)[i];
    if (!r.IsObject()) return bad(where, "must be an object");
    for (auto it = r.MemberBegin(); it != r.MemberEnd(); ++it) {
      std::string_view k = json::as_view(it->name);
      if (k != "comment" && k != "operation" && k != "resources" && k != "interactions" && k != "codes" &&
          k != "relatedBy")
        return bad(where + "." + std::string(k), "is not a known key");
    }
    RelationshipRule q;
    if (const json::Value* op = json::member(r, "operation")) {
      if (!op->IsString() || op->GetStringLength() == 0) return bad(where + ".operation", "must be a non-empty string");
      q.operation = std::string(json::as_view(*op));
    }
    for (auto [key, dest] : {std::pair<const char*, std::vector<std::string>*>{"resources", &q.resources},
                             {"interactions", &q.interactions}, {"codes", &q.codes}, {"relatedBy", &q.related_by}}) {
      auto v = json::string_array(r, key, where);
      if (!v) return v.error();
      *dest = std::move(*v);
    }
    if (q.operation.empty() == q.resources.empty())
      return bad(where, "names either an operation or resources (with interactions)");
    if (!q.resources.empty() && q.interactions.empty()) return bad(where + ".interactions", "is required with resources");
    for (const auto& in : q.interactions)
      if (in != "read" && in != "vread" && in != "history" && in != "search")
        return bad(where + ".interactions", "holds '" + in + "': only read, vread, history and search are gated");
    for (const auto& c : q.codes)
      if (c.find('|') == std::string::npos || c.front() == '|' || c.back() == '|')
        return bad(where + ".codes", "holds '" + c + "': each is system|code");
    out.rules_.push_back(std::move(q));
  }
  return out;
}

Result<Relationships> Relationships::load(const std::string& profiles_dir) {
  return load_text_file(profiles_dir + "/policy/relationships.json", parse);
}

bool Relationships::required_for(std::string_view operation) const {
  return std::any_of(rules_.begin(), rules_.end(), [&](const RelationshipRule& r) { return r.operation == operation; });
}

const RelationshipRule* Relationships::rule(std::string_view resource_type, std::string_view interaction) const {
  for (const auto& r : rules_)
    if (r.operation.empty() && has(r.resources, resource_type) && has(r.interactions, interaction)) return &r;
  return nullptr;
}

bool Relationships::gates(const RelationshipRule& rule, const json::Value& resource) {
  if (rule.codes.empty()) return true;
  return std::any_of(rule.codes.begin(), rule.codes.end(), [&](const std::string& c) { return carries_code(resource, c); });
}

bool carries_code(const json::Value& resource, std::string_view system_code) {
  auto bar = system_code.find('|');
  std::string_view system = system_code.substr(0, bar), code = system_code.substr(bar + 1);
  auto in_concept = [&](const json::Value& cc) {
    const json::Value* coding = cc.IsObject() ? json::member(cc, "coding") : nullptr;
    if (!coding || !coding->IsArray()) return false;
    return std::any_of(coding->Begin(), coding->End(), [&](const json::Value& c) {
      return c.IsObject() && json::get_string(c, "system") == std::optional<std::string_view>(system) &&
             json::get_string(c, "code") == std::optional<std::string_view>(code);
    });
  };
  for (const char* k : {"code", "category"}) {
    const json::Value* v = json::member(resource, k);
    if (!v) continue;
    if (v->IsArray() ? std::any_of(v->Begin(), v->End(), in_concept) : in_concept(*v)) return true;
  }
  return false;
}

bool is_ods_reference(const json::Value& ref, std::string_view ods) {
  const json::Value* id = ref.IsObject() ? json::member(ref, "identifier") : nullptr;
  return id && id->IsObject() &&
         json::get_string(*id, "system") == std::optional<std::string_view>("https://fhir.nhs.uk/Id/ods-organization-code") &&
         json::get_string(*id, "value") == std::optional<std::string_view>(ods);
}

bool names_any(const json::Value& resource, std::string_view element, std::string_view ods) {
  const json::Value* v = json::member(resource, element);
  if (!v || ods.empty()) return false;
  auto is_ods = [&](const json::Value& ref) { return is_ods_reference(ref, ods); };
  if (!v->IsArray()) return is_ods(*v);
  return std::any_of(v->Begin(), v->End(), is_ods);
}

}  // namespace gw::security
