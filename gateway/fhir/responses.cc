#include "gateway/fhir/responses.h"

#include <cctype>
#include <cstdlib>

#include "gateway/model/bundle.h"
#include "gateway/model/resource_text.h"

namespace gw::fhir {

using net::Request;
using net::Response;

namespace {

bool contains_ci(std::string_view hay, std::string_view needle) {
  if (needle.size() > hay.size()) return false;
  for (size_t i = 0; i + needle.size() <= hay.size(); ++i) {
    bool eq = true;
    for (size_t k = 0; k < needle.size() && eq; ++k)
      eq = std::tolower(static_cast<unsigned char>(hay[i + k])) == std::tolower(static_cast<unsigned char>(needle[k]));
    if (eq) return true;
  }
  return false;
}

// The query's _format value, if any (not decoded beyond what matters: json/xml).
std::string_view format_param(std::string_view query) {
  size_t pos = 0;
  while (pos < query.size()) {
    size_t amp = query.find('&', pos);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view kv = query.substr(pos, amp - pos);
    if (kv.rfind("_format=", 0) == 0) return kv.substr(8);
    pos = amp + 1;
  }
  return {};
}

std::string status_text(int status) {
  switch (status) {
    case 200: return "200 OK";
    case 201: return "201 Created";
    case 204: return "204 No Content";
    default: return std::to_string(status);
  }
}

// A conditional create that matched labelled content the caller may not see:
// nothing was created, and the answer must not name (location, etag) what exists.
constexpr std::string_view kHiddenMatchEntry =
    "{\"response\":{\"status\":\"200 OK\",\"outcome\":{\"resourceType\":\"OperationOutcome\",\"issue\":[{"
    "\"severity\":\"information\",\"code\":\"informational\",\"diagnostics\":\"a matching resource exists; "
    "nothing was created\"}]}}}";

std::string response_entry(const std::string& base, const write::Entry& e, const write::EntryOutcome& o) {
  std::string out = "{";
  if (o.error) {
    int status = http_status_for(o.error->code);
    std::string oo = o.issues.empty() ? operation_outcome(*o.error) : operation_outcome(o.issues);
    out += "\"response\":{\"status\":" + model::quoted(std::to_string(status)) + ",\"outcome\":" + oo + "}}";
    return out;
  }
  if (e.method == write::Method::get) {
    if (o.resource) {
      out += "\"fullUrl\":" + model::quoted(base + "/" + e.type + "/" + e.id) +
             ",\"resource\":" + model::served_text(*o.resource);
      out += ",\"response\":{\"status\":\"200 OK\",\"etag\":" + model::quoted(model::etag(o.resource->version)) + "}}";
    }
    return out;
  }
  if (o.noop && o.hidden) return std::string(kHiddenMatchEntry);
  bool remove = e.method == write::Method::remove;
  int status = remove ? 200 : (o.created ? 201 : 200);
  if (!remove) out += "\"fullUrl\":" + model::quoted(base + "/" + e.type + "/" + o.id) + ",";
  out += "\"response\":{\"status\":" + model::quoted(status_text(status));
  if (!remove) {
    out += ",\"location\":" + model::quoted(e.type + "/" + o.id + "/_history/" + std::to_string(o.version));
  }
  out += ",\"etag\":" + model::quoted(model::etag(o.version)) + ",\"lastModified\":" + model::quoted(o.last_updated) +
         "}}";
  return out;
}

}  // namespace

PreferReturn prefer_return(const Request& req) {
  auto p = req.header("prefer");
  if (!p) return PreferReturn::representation;
  if (contains_ci(*p, "return=minimal")) return PreferReturn::minimal;
  if (contains_ci(*p, "return=operationoutcome")) return PreferReturn::outcome;
  return PreferReturn::representation;
}

bool prefer_strict(const Request& req) {
  auto p = req.header("prefer");
  return p && contains_ci(*p, "handling=strict");
}

namespace {

// Whether an Accept header allows FHIR JSON: a media range naming JSON, or
// application/* or */*, not excluded with q=0.
bool accepts_json(std::string_view accept) {
  if (accept.empty()) return true;
  size_t pos = 0;
  while (pos <= accept.size()) {
    size_t comma = accept.find(',', pos);
    if (comma == std::string_view::npos) comma = accept.size();
    std::string_view range = accept.substr(pos, comma - pos);
    pos = comma + 1;
    size_t semi = range.find(';');
    std::string_view type = range.substr(0, semi);
    while (!type.empty() && type.front() == ' ') type.remove_prefix(1);
    while (!type.empty() && type.back() == ' ') type.remove_suffix(1);
    bool json = contains_ci(type, "json") || type == "*/*" || type == "application/*";
    if (!json) continue;
    std::string_view params = semi == std::string_view::npos ? std::string_view() : range.substr(semi);
    // "q=0" refuses the range (RFC 9110 12.4.2); any other weight accepts.
    size_t q = params.find("q=");
    if (q == std::string_view::npos) q = params.find("Q=");
    if (q != std::string_view::npos && std::strtod(std::string(params.substr(q + 2, 8)).c_str(), nullptr) <= 0.0)
      continue;
    return true;
  }
  return false;
}

}  // namespace

std::optional<Error> check_formats(const Request& req, BodyFormat body) {
  std::string_view f = format_param(req.query);
  if (!f.empty() && !contains_ci(f, "json")) {
    return make_error(Errc::not_acceptable, "_format must be json; this server answers in FHIR JSON only", "_format");
  }
  if (auto accept = req.header("accept"); accept && f.empty() && !accepts_json(*accept)) {
    return make_error(Errc::not_acceptable,
                      "Accept must allow application/fhir+json or application/json; this server answers in FHIR JSON "
                      "only");
  }
  if (body == BodyFormat::resource) {
    auto ct = req.header("content-type");
    if (!ct || !(contains_ci(*ct, "application/fhir+json") || contains_ci(*ct, "application/json"))) {
      return make_error(Errc::unsupported_media, "Content-Type must be application/fhir+json or application/json");
    }
  } else if (body == BodyFormat::json_patch) {
    auto ct = req.header("content-type");
    if (!ct || !contains_ci(*ct, "application/json-patch+json")) {
      return make_error(Errc::unsupported_media,
                        "PATCH takes a JSON Patch: Content-Type must be application/json-patch+json (FHIRPath Patch "
                        "is not supported)");
    }
  }
  return std::nullopt;
}

Response outcome_response(const Error& e, std::string route) {
  Response r;
  r.status = http_status_for(e.code);
  r.body = operation_outcome(e);
  r.route = std::move(route);
  return r;
}

Response person_required_response(std::string_view what, const char* route) {
  Response r = outcome_response(
      make_error(Errc::unauthenticated,
                 std::string(what) +
                     " needs the person using the system: send their user token (Authorization: Bearer) from a "
                     "trusted identity provider",
                 "Authorization"),
      route);
  r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"cpis-gateway\"");
  return r;
}

Response issues_response(int status, const std::vector<Issue>& issues, std::string route) {
  Response r;
  r.status = status;
  r.body = operation_outcome(issues);
  r.route = std::move(route);
  return r;
}

Response resource_response(const store::StoredResource& r, int status, const std::string& location_base,
                           PreferReturn pr, std::string route) {
  Response resp;
  resp.status = status;
  resp.route = std::move(route);
  resp.headers.emplace_back("ETag", model::etag(r.version));
  resp.headers.emplace_back("Last-Modified", model::http_date(r.last_updated));
  if (!location_base.empty()) {
    resp.headers.emplace_back("Location", location_base + "/" + r.type + "/" + r.id + "/_history/" +
                                              std::to_string(r.version));
  }
  if (pr == PreferReturn::minimal) {
    resp.body.clear();
  } else if (pr == PreferReturn::outcome) {
    resp.body = operation_outcome(std::vector<Issue>{});
  } else {
    resp.body = model::served_text(r);
  }
  return resp;
}

Response write_response(const Request& req, const write::Request& wreq, const write::Outcome& out,
                        const std::string& base, const char* route) {
  if (out.failure) {
    if (!out.issues.empty()) return issues_response(http_status_for(out.failure->code), out.issues, route);
    Error e = *out.failure;
    if (e.code == Errc::conflict && e.expression.rfind("Patient/", 0) == 0) {
      e.message = "a Patient with this NHS number already exists (" + e.expression +
                  "); use a conditional create (If-None-Exist) or update that Patient";
      e.expression = "Patient.identifier";
    }
    return outcome_response(e, route);
  }
  const write::Entry& e = wreq.entries.at(0);
  const write::EntryOutcome& o = out.entries.at(0);
  if (e.method == write::Method::remove) {
    Response resp;
    resp.status = 200;
    resp.route = route;
    resp.headers.emplace_back("ETag", model::etag(o.version));
    resp.body = operation_outcome(std::vector<Issue>{
        Issue{Severity::information, "informational", "",
              e.type + " deleted (version " + std::to_string(o.version) + ")"}});
    return resp;
  }
  if (o.noop) {
    // Conditional create matched: 200 with the existing resource, or — when
    // it is labelled content this caller may not see — only that nothing was
    // created, showing nothing of what exists.
    if (o.hidden || !o.resource) {
      Response resp;
      resp.status = 200;
      resp.route = route;
      resp.body = operation_outcome(std::vector<Issue>{
          Issue{Severity::information, "informational", "", "a matching resource exists; nothing was created"}});
      return resp;
    }
    return resource_response(*o.resource, 200, "", PreferReturn::representation, route);
  }
  store::StoredResource sr;
  sr.type = e.type;
  sr.id = o.id;
  sr.version = o.version;
  sr.last_updated = o.last_updated;
  sr.body = o.body;
  return resource_response(sr, o.created ? 201 : 200, base, prefer_return(req), route);
}

std::string bundle_response(const std::string& base, const write::Request& wreq, const write::Outcome& out,
                            bool batch) {
  std::string b = std::string("{\"resourceType\":\"Bundle\",\"type\":\"") +
                  (batch ? "batch-response" : "transaction-response") + "\"";
  if (!batch || !wreq.entries.empty()) {
    b += ",\"entry\":[";
    for (size_t i = 0; i < wreq.entries.size(); ++i) {
      if (i) b.push_back(',');
      b += response_entry(base, wreq.entries[i], out.entries.at(i));
    }
    b += "]";
  }
  return b + "}";
}

}  // namespace gw::fhir
