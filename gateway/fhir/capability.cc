#include "gateway/fhir/capability.h"

#include <algorithm>
#include <ctime>
#include <vector>

#include "gateway/common/json.h"
#include "gateway/model/search_params.h"

namespace gw::fhir {

namespace {
struct ParamDoc {
  const char* name;
  const char* type;
  const char* doc;
};

ParamDoc describe(const std::string& p) {
  if (p == "_id") return {"_id", "token", "Logical id of the resource"};
  if (p == "_lastUpdated") return {"_lastUpdated", "date", "When the resource version last changed (ge, gt, le, lt, eq, sa, eb)"};
  if (p == "identifier") return {"identifier", "token", "Business identifier, system|value; NHS numbers are normalised"};
  if (p == "patient") return {"patient", "reference", "The patient the resource is about (Patient/id)"};
  if (p == "subject") return {"subject", "reference", "The subject of the resource (Patient/id)"};
  if (p == "patient:identifier") return {"patient:identifier", "token", "Chained: the patient's identifier, e.g. the NHS number"};
  if (p == "subject:identifier") return {"subject:identifier", "token", "Chained: the subject's identifier"};
  return {nullptr, "token", ""};
}

// The operations of a type: the built-in ones and those features added.
void write_operations(json::Writer& w, const std::string& type, const std::vector<OperationDoc>& extra) {
  std::vector<OperationDoc> ops;
  if (type == "Patient") {
    ops.push_back({type, "safeguarding-cohort", "https://cpis-gateway.nhs.uk/OperationDefinition/safeguarding-cohort",
                   "POST a Parameters resource with one nhsNumber (valueString or valueIdentifier) per person on your "
                   "caseload; the answer says, for each person your organisation cares for, whether they are on a CP-IS "
                   "plan in scope and which of their linked children are (plan type, local authority, emergency-duty "
                   "number). Roles camhs, adult-mental-health, substance-misuse."});
    ops.push_back({type, "everything", "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                   "GET only; _count and _offset page the Patient and every resource whose patient/subject it is; "
                   "content the caller may not see (sensitivity labels, types its role may not search) is neither "
                   "returned nor counted."});
  }
  for (const auto& o : extra)
    if (o.type == type) ops.push_back(o);
  if (ops.empty()) return;
  w.Key("operation");
  w.StartArray();
  for (const auto& o : ops) {
    w.StartObject();
    w.Key("name");
    w.String(o.name.c_str(), static_cast<json::SizeType>(o.name.size()));
    w.Key("definition");
    w.String(o.definition.c_str(), static_cast<json::SizeType>(o.definition.size()));
    w.Key("documentation");
    w.String(o.documentation.c_str(), static_cast<json::SizeType>(o.documentation.size()));
    w.EndObject();
  }
  w.EndArray();
}

bool has(const std::vector<std::string>& v, const char* x) { return std::find(v.begin(), v.end(), x) != v.end(); }

// searchInclude: this type's own patient/subject references; searchRevInclude
// (Patient only): every type's references to a Patient (search_params.cc).
void write_includes(json::Writer& w, const std::string& type, const std::vector<std::string>& types) {
  auto strings = [&](const char* key, const std::vector<std::string>& values) {
    if (values.empty()) return;
    w.Key(key);
    w.StartArray();
    for (const auto& v : values) w.String(v.c_str(), static_cast<json::SizeType>(v.size()));
    w.EndArray();
  };
  auto refs_of = [](const std::string& t) {
    std::vector<std::string> out;
    auto params = model::supported_search_params(t);
    for (const char* p : {"patient", "subject"})
      if (has(params, p)) out.push_back(t + ":" + p);
    return out;
  };
  strings("searchInclude", refs_of(type));
  if (type != "Patient") return;
  std::vector<std::string> rev;
  for (const auto& t : types)
    for (auto& r : refs_of(t)) rev.push_back(std::move(r));
  strings("searchRevInclude", rev);
}
}  // namespace

std::string capability_statement_json(const write::Validator& validator, const security::Policy& policy,
                                      const std::vector<OperationDoc>& extra) {
  json::Buffer buf;
  json::Writer w(buf);
  auto s = [&](const std::string& v) { w.String(v.c_str(), static_cast<json::SizeType>(v.size())); };
  char date[32];
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(date, sizeof date, "%Y-%m-%d", &tm);

  w.StartObject();
  w.Key("resourceType"); s("CapabilityStatement");
  w.Key("status"); s("active");
  w.Key("date"); s(date);
  w.Key("publisher"); s("cpis-gateway");
  w.Key("kind"); s("instance");
  w.Key("software");
  w.StartObject();
  w.Key("name"); s("cpis-gateway");
  w.Key("version"); s(GW_VERSION);
  w.EndObject();
  w.Key("implementation");
  w.StartObject();
  w.Key("description"); s("cpis-gateway FHIR R4 API (JSON only, mutual TLS)");
  w.EndObject();
  w.Key("fhirVersion"); s("4.0.1");
  w.Key("format");
  w.StartArray(); s("application/fhir+json"); s("json"); w.EndArray();
  w.Key("rest");
  w.StartArray();
  w.StartObject();
  w.Key("mode"); s("server");
  w.Key("security");
  w.StartObject();
  w.Key("description");
  s("Mutual TLS: a client certificate issued by the configured CA is required; the organisation (O=), role (OU=) "
    "and system (CN=) of its subject decide access, per the policy data in profiles/policy.");
  w.EndObject();
  w.Key("resource");
  w.StartArray();
  for (const auto& type : validator.resource_types()) {
    w.StartObject();
    w.Key("type"); s(type);
    w.Key("interaction");
    w.StartArray();
    bool read_only = policy.gateway_written(type);
    for (const char* code : {"read", "vread", "update", "delete", "history-instance", "create", "search-type"}) {
      std::string_view c = code;
      if (read_only && (c == "update" || c == "delete" || c == "create")) continue;
      w.StartObject();
      w.Key("code"); s(code);
      w.EndObject();
    }
    w.EndArray();
    w.Key("versioning"); s("versioned-update");
    w.Key("readHistory"); w.Bool(true);
    w.Key("updateCreate"); w.Bool(!read_only);
    w.Key("conditionalCreate"); w.Bool(!read_only);
    w.Key("conditionalUpdate"); w.Bool(!read_only);
    w.Key("conditionalDelete"); s("not-supported");
    auto params = model::supported_search_params(type);
    write_includes(w, type, validator.resource_types());
    if (!params.empty()) {
      w.Key("searchParam");
      w.StartArray();
      for (const auto& p : params) {
        ParamDoc d = describe(p);
        if (d.name == nullptr) continue;
        w.StartObject();
        w.Key("name"); s(d.name);
        w.Key("type"); s(d.type);
        w.Key("documentation"); s(d.doc);
        w.EndObject();
      }
      w.EndArray();
    }
    write_operations(w, type, extra);
    w.EndObject();
  }
  w.EndArray();
  w.Key("interaction");
  w.StartArray();
  for (const char* code : {"transaction", "batch"}) {
    w.StartObject();
    w.Key("code"); s(code);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace gw::fhir
