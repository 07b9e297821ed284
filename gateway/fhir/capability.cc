#include "gateway/fhir/capability.h"

#include <algorithm>
#include <ctime>
#include <vector>

#include "gateway/common/json.h"
#include "gateway/model/search_params.h"

namespace gw::fhir {

namespace {

using ParamDoc = SearchParamDoc;

// The built-in parameters (model/search_params.h) with their types.
ParamDoc built_in(const std::string& p) {
  if (p == "_id") return {p, "token", "Logical id of the resource"};
  if (p == "_lastUpdated") return {p, "date", "When the resource version last changed (eq ne lt gt le ge sa eb)"};
  if (p == "identifier") return {p, "token", "Business identifier, system|value; NHS numbers are normalised"};
  if (p == "patient")
    return {p, "reference", "The patient the resource is about: Patient/id, or patient:identifier=system|value "
                            "(e.g. the NHS number)"};
  if (p == "subject")
    return {p, "reference", "The subject of the resource: Patient/id, or subject:identifier=system|value"};
  return {p, "token", ""};
}

bool has(const std::vector<std::string>& v, const char* x) { return std::find(v.begin(), v.end(), x) != v.end(); }

class StatementWriter {
 public:
  StatementWriter() : w_(buf_) {}
  json::Writer& w() { return w_; }
  void s(const std::string& v) { w_.String(v.c_str(), static_cast<json::SizeType>(v.size())); }
  void key_string(const char* k, const std::string& v) {
    w_.Key(k);
    s(v);
  }
  void strings(const char* key, const std::vector<std::string>& values) {
    if (values.empty()) return;
    w_.Key(key);
    w_.StartArray();
    for (const auto& v : values) s(v);
    w_.EndArray();
  }
  void codes(const char* key, const std::vector<std::string>& values) {
    w_.Key(key);
    w_.StartArray();
    for (const auto& v : values) {
      w_.StartObject();
      key_string("code", v);
      w_.EndObject();
    }
    w_.EndArray();
  }
  std::string text() const { return std::string(buf_.GetString(), buf_.GetSize()); }

 private:
  json::Buffer buf_;
  json::Writer w_;
};

// searchInclude: this type's own patient/subject references; searchRevInclude
// (Patient only): every type's references to a Patient (search_params.cc).
std::vector<std::string> refs_of(const std::string& t) {
  std::vector<std::string> out;
  auto params = model::supported_search_params(t);
  for (const char* p : {"patient", "subject"})
    if (has(params, p)) out.push_back(t + ":" + p);
  return out;
}

void write_operations(StatementWriter& sw, const std::string& type, const Capabilities& declared) {
  bool any = false;
  for (const auto& op : declared.operations) {
    if (op.type != type) continue;
    if (!any) {
      sw.w().Key("operation");
      sw.w().StartArray();
      any = true;
    }
    sw.w().StartObject();
    sw.key_string("name", op.name);
    sw.key_string("definition", op.definition);
    if (!op.documentation.empty()) sw.key_string("documentation", op.documentation);
    sw.w().EndObject();
  }
  if (any) sw.w().EndArray();
}

void write_extensions(StatementWriter& sw, const std::string& type, const Capabilities& declared) {
  bool any = false;
  for (const auto& e : declared.extensions) {
    if (e.type != type) continue;
    if (!any) {
      sw.w().Key("extension");
      sw.w().StartArray();
      any = true;
    }
    sw.w().StartObject();
    sw.key_string("url", e.url);
    sw.key_string("valueCanonical", e.value_canonical);
    sw.w().EndObject();
  }
  if (any) sw.w().EndArray();
}

void write_search_params(StatementWriter& sw, const std::string& type, const write::Validator& validator,
                         const Capabilities& declared) {
  std::vector<ParamDoc> params;
  auto own = std::find_if(declared.searches.begin(), declared.searches.end(),
                          [&](const SearchDecl& s) { return s.type == type; });
  if (own != declared.searches.end()) {
    params = own->params;
  } else {
    // A name with a modifier or chain (patient:identifier) is not a parameter
    // of its own: the documentation of the parameter says it.
    for (const auto& p : model::supported_search_params(type))
      if (p.find(':') == std::string::npos) params.push_back(built_in(p));
    for (const auto* d : validator.search_params().of(type))
      params.push_back({d->name, model::param_type_name(d->type), d->doc});
  }
  if (params.empty()) return;
  auto& w = sw.w();
  w.Key("searchParam");
  w.StartArray();
  for (const auto& p : params) {
    w.StartObject();
    sw.key_string("name", p.name);
    sw.key_string("type", p.type);
    if (!p.documentation.empty()) sw.key_string("documentation", p.documentation);
    w.EndObject();
  }
  w.EndArray();
}

}  // namespace

std::string capability_statement_json(const write::Validator& validator, const security::Policy& policy,
                                      const Capabilities& declared) {
  StatementWriter sw;
  auto& w = sw.w();
  char date[32];
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(date, sizeof date, "%Y-%m-%d", &tm);

  w.StartObject();
  sw.key_string("resourceType", "CapabilityStatement");
  sw.key_string("status", "active");
  sw.key_string("date", date);
  sw.key_string("publisher", "cpis-gateway");
  sw.key_string("kind", "instance");
  w.Key("software");
  w.StartObject();
  sw.key_string("name", "cpis-gateway");
  sw.key_string("version", GW_VERSION);
  w.EndObject();
  w.Key("implementation");
  w.StartObject();
  sw.key_string("description", "cpis-gateway FHIR R4 API (JSON only, mutual TLS)");
  w.EndObject();
  sw.key_string("fhirVersion", "4.0.1");
  sw.strings("format", {"application/fhir+json", "json"});
  sw.strings("patchFormat", {"application/json-patch+json"});
  w.Key("rest");
  w.StartArray();
  w.StartObject();
  sw.key_string("mode", "server");
  w.Key("security");
  w.StartObject();
  sw.key_string("description",
                "Mutual TLS: a client certificate issued by the configured CA is required; the organisation (O=), "
                "role (OU=) and system (CN=) of its subject decide access, per the policy data in profiles/policy.");
  w.EndObject();

  // Every type, sorted, whether the REST API or a feature serves it.
  std::vector<std::string> types = validator.resource_types();
  for (const auto& r : declared.resources)
    if (!has(types, r.type.c_str())) types.push_back(r.type);
  std::sort(types.begin(), types.end());

  w.Key("resource");
  w.StartArray();
  for (const auto& type : types) {
    w.StartObject();
    sw.key_string("type", type);
    write_extensions(sw, type, declared);
    auto feature = std::find_if(declared.resources.begin(), declared.resources.end(),
                                [&](const ResourceDecl& r) { return r.type == type; });
    if (feature != declared.resources.end() && !validator.supports(type)) {
      if (!feature->documentation.empty()) sw.key_string("documentation", feature->documentation);
      sw.codes("interaction", feature->interactions);
      write_operations(sw, type, declared);
      w.EndObject();
      continue;
    }
    bool read_only = policy.gateway_written(type);
    std::vector<std::string> interactions;
    for (const char* code : {"read", "vread", "update", "patch", "delete", "history-instance", "create", "search-type"}) {
      std::string_view c = code;
      if (read_only && (c == "update" || c == "patch" || c == "delete" || c == "create")) continue;
      interactions.emplace_back(code);
    }
    sw.codes("interaction", interactions);
    sw.key_string("versioning", "versioned-update");
    w.Key("readHistory");
    w.Bool(true);
    w.Key("updateCreate");
    w.Bool(!read_only);
    w.Key("conditionalCreate");
    w.Bool(!read_only);
    sw.key_string("conditionalRead", "full-support");
    w.Key("conditionalUpdate");
    w.Bool(!read_only);
    sw.key_string("conditionalDelete", "not-supported");
    sw.strings("searchInclude", refs_of(type));
    if (type == "Patient") {
      std::vector<std::string> rev;
      for (const auto& t2 : validator.resource_types())
        for (auto& r : refs_of(t2)) rev.push_back(std::move(r));
      sw.strings("searchRevInclude", rev);
    }
    write_search_params(sw, type, validator, declared);
    write_operations(sw, type, declared);
    w.EndObject();
  }
  w.EndArray();
  // Parameters every search takes (FHIR: rest.searchParam).
  w.Key("searchParam");
  w.StartArray();
  for (const auto& p : model::result_params()) {
    w.StartObject();
    sw.key_string("name", p);
    sw.key_string("type", p == "_count" ? "number" : "string");
    w.EndObject();
  }
  w.EndArray();
  sw.codes("interaction", {"transaction", "batch"});
  w.EndObject();
  w.EndArray();
  w.EndObject();
  return sw.text();
}

}  // namespace gw::fhir
