#include "gateway/write/bundle_entries.h"

#include <charconv>

#include "gateway/identity/nhs_number.h"
#include "gateway/model/resource_text.h"
#include "gateway/model/search_params.h"

namespace gw::write {

namespace {

std::vector<std::string_view> split_path(std::string_view p) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < p.size()) {
    while (i < p.size() && p[i] == '/') ++i;
    size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    if (j > i) out.push_back(p.substr(i, j - i));
    i = j;
  }
  return out;
}

std::string normalise_token_value(const model::TokenValue& t) {
  if (t.system == identity::kNhsNumberSystem) {
    if (auto n = identity::normalise_nhs_number(t.value)) return *n;
  }
  return t.value;
}

Entry read_entry(const json::Value& entry, size_t i) {
  Entry p;
  p.path = entry_path(i);
  const std::string& path = p.path;
  auto fail = [&](Errc c, std::string msg, std::string expr) {
    p.error = make_error(c, std::move(msg), std::move(expr));
    return p;
  };
  if (!entry.IsObject()) return fail(Errc::invalid_input, "entry must be an object", path);
  if (auto fu = json::get_string(entry, "fullUrl")) p.full_url = std::string(*fu);
  const json::Value* request = json::member(entry, "request");
  if (!request || !request->IsObject()) return fail(Errc::invalid_input, "entry.request is required", path + ".request");
  auto method = json::get_string(*request, "method");
  auto url = json::get_string(*request, "url");
  if (!method || !url) return fail(Errc::invalid_input, "request.method and request.url are required", path + ".request");
  std::string_view u = *url;
  if (auto pos = u.find("/fhir/"); pos != std::string_view::npos) u = u.substr(pos + 6);  // absolute URLs
  while (!u.empty() && u.front() == '/') u.remove_prefix(1);
  std::string_view query;
  if (auto q = u.find('?'); q != std::string_view::npos) {
    query = u.substr(q + 1);
    u = u.substr(0, q);
  }
  auto seg = split_path(u);
  if (seg.empty()) return fail(Errc::invalid_input, "request.url must name a resource type", path + ".request.url");
  p.type = std::string(seg[0]);
  if (seg.size() > 2) return fail(Errc::invalid_input, "request.url form not supported here", path + ".request.url");
  if (seg.size() == 2) {
    p.id = std::string(seg[1]);
    if (!model::is_valid_id(p.id)) return fail(Errc::invalid_input, "invalid id in request.url", path + ".request.url");
  }
  if (*method == "GET") p.method = Method::get;
  else if (*method == "POST") p.method = Method::post;
  else if (*method == "PUT") p.method = Method::put;
  else if (*method == "DELETE") p.method = Method::remove;
  else return fail(Errc::method_not_allowed, "request.method must be GET, POST, PUT or DELETE", path + ".request.method");
  if (p.method == Method::get) {
    if (p.id.empty() || !query.empty()) {
      return fail(Errc::invalid_input, "only reads (GET Type/id) are supported inside a Bundle", path + ".request.url");
    }
    return p;
  }
  if (p.method == Method::remove) {
    if (p.id.empty()) return fail(Errc::invalid_input, "DELETE needs Type/id", path + ".request.url");
    return p;
  }
  const json::Value* res = json::member(entry, "resource");
  if (!res || !res->IsObject()) return fail(Errc::invalid_input, "entry.resource is required", path + ".resource");
  auto rt = json::get_string(*res, "resourceType");
  if (!rt || *rt != p.type) {
    return fail(Errc::invalid_input, "resource.resourceType must match request.url", path + ".resource.resourceType");
  }
  p.resource = std::make_shared<json::Document>();
  p.resource->CopyFrom(*res, p.resource->GetAllocator());
  if (p.method == Method::post) {
    if (auto ine = json::get_string(*request, "ifNoneExist")) {
      std::string_view q = *ine;
      if (auto pos = q.find('?'); pos != std::string_view::npos) q = q.substr(pos + 1);
      auto c = parse_criteria(p.type, q, "ifNoneExist");
      if (!c) return fail(c.error().code, c.error().message, path + ".request.ifNoneExist");
      p.if_none_exist = std::move(*c);
    }
    return p;
  }
  if (p.id.empty()) {
    auto c = parse_criteria(p.type, query, "conditional update");
    if (!c) return fail(c.error().code, c.error().message, path + ".request.url");
    p.match = std::move(*c);
  }
  if (auto im = json::get_string(*request, "ifMatch")) {
    auto v = parse_etag_version(*im);
    if (!v) return fail(Errc::invalid_input, "ifMatch must be an ETag", path + ".request.ifMatch");
    p.if_match = *v;
  }
  return p;
}

}  // namespace

std::string entry_path(size_t i) { return "Bundle.entry[" + std::to_string(i) + "]"; }

std::vector<Entry> entries_from_bundle(const json::Value* entries) {
  std::vector<Entry> out;
  if (!entries) return out;
  out.reserve(entries->Size());
  size_t i = 0;
  for (const auto& e : entries->GetArray()) out.push_back(read_entry(e, i++));
  return out;
}

Result<std::vector<store::Match>> parse_criteria(const std::string& type, std::string_view query, const char* what) {
  auto sr = model::parse_search(type, query, true);
  if (!sr) return sr.error();
  std::vector<store::Match> out;
  for (const auto& occ : sr->identifier) {
    if (occ.size() != 1) {
      return make_error(Errc::invalid_input, std::string(what) + ": one identifier value per parameter", "identifier");
    }
    out.push_back(store::Match{"identifier", occ[0].has_system ? occ[0].system : std::string(),
                               normalise_token_value(occ[0])});
  }
  if (out.empty() || !sr->ids.empty() || !sr->patient_refs.empty() || !sr->patient_identifier.empty() ||
      !sr->subject_refs.empty() || !sr->subject_identifier.empty() || !sr->last_updated.empty()) {
    return make_error(Errc::invalid_input, std::string(what) + " supports identifier=[system|]value criteria only");
  }
  return out;
}

std::optional<int64_t> parse_etag_version(std::string_view v) {
  if (v.rfind("W/", 0) == 0) v.remove_prefix(2);
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  int64_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || p != v.data() + v.size() || n < 1) return std::nullopt;
  return n;
}

}  // namespace gw::write
