#include "gateway/model/bundle.h"

#include <algorithm>

#include "gateway/common/json.h"
#include "gateway/model/resource_text.h"

namespace gw::model {

std::string quoted(std::string_view s) {
  json::Buffer buf;
  json::Writer w(buf);
  w.String(s.data(), static_cast<json::SizeType>(s.size()));
  return std::string(buf.GetString(), buf.GetSize());
}

namespace {
// The query without _count/_offset, so paging links can set their own.
std::string query_without_paging(std::string_view query) {
  std::string out;
  size_t pos = 0;
  while (pos < query.size()) {
    size_t amp = query.find('&', pos);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view kv = query.substr(pos, amp - pos);
    if (!kv.empty() && kv.rfind("_count=", 0) != 0 && kv.rfind("_offset=", 0) != 0) {
      if (!out.empty()) out.push_back('&');
      out.append(kv);
    }
    pos = amp + 1;
  }
  return out;
}

std::string page_url(const std::string& base, const std::string& type, const std::string& q, int count,
                     int64_t offset) {
  std::string url = base + "/" + type + "?" + q;
  if (!q.empty()) url += "&";
  url += "_count=" + std::to_string(count) + "&_offset=" + std::to_string(offset);
  return url;
}
}  // namespace

std::string searchset_bundle(const std::string& base, const std::string& type, std::string_view query,
                             const store::SearchPage& page, int count, int64_t offset,
                             const std::vector<std::string>& ignored_params,
                             const std::vector<store::StoredResource>& included,
                             const std::vector<std::string>& leading_entries, std::optional<bool> more_known) {
  std::string q = query_without_paging(query);
  std::string out;
  size_t est = 256;
  for (const auto& r : page.items) est += r.body.size() + 160;
  for (const auto& r : included) est += r.body.size() + 160;
  out.reserve(est);
  out += "{\"resourceType\":\"Bundle\",\"id\":\"" + new_uuid() + "\",\"type\":\"searchset\"";
  if (page.total >= 0) out += ",\"total\":" + std::to_string(page.total + static_cast<int64_t>(leading_entries.size()));
  out += ",\"link\":[{\"relation\":\"self\",\"url\":" + quoted(page_url(base, type, q, count, offset)) + "}";
  // Without a total, a full page may have a next one.
  bool more = page.total >= 0 ? offset + static_cast<int64_t>(page.items.size()) < page.total
              : more_known      ? *more_known
                                : static_cast<int64_t>(page.items.size()) >= count;
  if (more && count > 0) {
    out += ",{\"relation\":\"next\",\"url\":" + quoted(page_url(base, type, q, count, offset + count)) + "}";
  }
  if (offset > 0) {
    int64_t prev = offset > count ? offset - count : 0;
    out += ",{\"relation\":\"previous\",\"url\":" + quoted(page_url(base, type, q, count, prev)) + "}";
  }
  out += "]";
  // FHIR JSON forbids empty arrays: an empty result has no "entry" at all.
  bool any_entry = !page.items.empty() || !included.empty() || !ignored_params.empty() || !leading_entries.empty();
  if (any_entry) out += ",\"entry\":[";
  bool first = true;
  for (const auto& e : leading_entries) {
    if (!first) out.push_back(',');
    first = false;
    out += e;
  }
  auto entry = [&](const store::StoredResource& r, const char* mode) {
    if (!first) out.push_back(',');
    first = false;
    out += "{\"fullUrl\":" + quoted(base + "/" + r.type + "/" + r.id) + ",\"resource\":";
    out += served_text(r);
    out += ",\"search\":{\"mode\":\"";
    out += mode;
    out += "\"}}";
  };
  for (const auto& r : page.items) entry(r, "match");
  for (const auto& r : included) entry(r, "include");
  if (!ignored_params.empty()) {
    // Lenient handling: say which parameters were not applied (FHIR search "outcome" entry).
    if (!first) out.push_back(',');
    std::string msg = "Parameters not supported and ignored:";
    for (const auto& p : ignored_params) msg += " " + p;
    out += "{\"resource\":{\"resourceType\":\"OperationOutcome\",\"issue\":[{\"severity\":\"warning\",\"code\":"
           "\"not-supported\",\"diagnostics\":" +
           quoted(msg) + "}]},\"search\":{\"mode\":\"outcome\"}}";
  }
  if (any_entry) out += "]";
  out += "}";
  return out;
}

std::string subset_elements(const store::StoredResource& r, const std::vector<std::string>& elements) {
  auto doc = json::parse(r.body);
  if (!doc || !doc->IsObject()) return r.body;
  std::vector<std::string> drop;
  for (auto it = doc->MemberBegin(); it != doc->MemberEnd(); ++it) {
    std::string k(json::as_view(it->name));
    if (k == "resourceType" || k == "id" || k == "meta") continue;
    if (std::find(elements.begin(), elements.end(), k) == elements.end()) drop.push_back(std::move(k));
  }
  for (const auto& k : drop) json::remove(*doc, k);
  auto& a = doc->GetAllocator();
  json::Value* meta = const_cast<json::Value*>(json::member(*doc, "meta"));
  if (!meta || !meta->IsObject()) {
    json::set(*doc, "meta", json::object(), a);
    meta = const_cast<json::Value*>(json::member(*doc, "meta"));
  }
  json::Value tag = json::object();
  json::set(tag, "system", "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", a);
  json::set(tag, "code", "SUBSETTED", a);
  json::Value* tags = const_cast<json::Value*>(json::member(*meta, "tag"));
  if (!tags || !tags->IsArray()) {
    json::set(*meta, "tag", json::array(), a);
    tags = const_cast<json::Value*>(json::member(*meta, "tag"));
  }
  tags->PushBack(tag, a);
  return storage_text(*doc, r.type, a);
}

std::string history_bundle(const std::string& base, const std::vector<store::StoredResource>& versions) {
  std::string out = "{\"resourceType\":\"Bundle\",\"id\":\"" + new_uuid() + "\",\"type\":\"history\",\"total\":" +
                    std::to_string(versions.size()) + ",\"entry\":[";
  bool first = true;
  for (const auto& r : versions) {
    if (!first) out.push_back(',');
    first = false;
    std::string url = r.type + "/" + r.id;
    out += "{\"fullUrl\":" + quoted(base + "/" + url);
    if (!r.deleted) out += ",\"resource\":" + served_text(r);
    const char* method = r.deleted ? "DELETE" : (r.version == 1 ? "POST" : "PUT");
    out += ",\"request\":{\"method\":\"" + std::string(method) + "\",\"url\":" +
           quoted(r.version == 1 && !r.deleted ? r.type : url) + "}";
    out += ",\"response\":{\"status\":\"" + std::string(r.deleted ? "204" : (r.version == 1 ? "201" : "200")) +
           "\",\"etag\":" + quoted(etag(r.version)) + ",\"lastModified\":" + quoted(r.last_updated) + "}}";
  }
  out += "]}";
  return out;
}

}  // namespace gw::model
