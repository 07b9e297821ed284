#include "gateway/model/resource_text.h"

#include "gateway/common/clock.h"

#include <algorithm>

#include <openssl/rand.h>

#include <cstdio>
#include <ctime>

namespace gw::model {

bool is_valid_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

std::string new_uuid() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof b) != 1) {
    // Running out of entropy is not recoverable for a server minting identifiers.
    std::abort();
  }
  // UUID version 7 (RFC 9562): 48 bits of Unix milliseconds first, 74 random
  // bits after. Ids minted one after another sort one after another, so the
  // store's id index grows at its end instead of dirtying a random page per
  // new resource; they stay as unguessable as a version 4.
  uint64_t ms = static_cast<uint64_t>(clock::now_ms());
  for (int i = 0; i < 6; ++i) b[i] = static_cast<unsigned char>(ms >> (40 - 8 * i));
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x70);
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
  char out[37];
  std::snprintf(out, sizeof out, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
  return out;
}

namespace {
std::string prefix_for(std::string_view type) {
  std::string p;
  p.reserve(32 + type.size());
  p.append("{\"resourceType\":\"").append(type).append("\",\"meta\":{");
  return p;
}
}  // namespace

std::string storage_text(const json::Value& resource, std::string_view type, json::Allocator& alloc) {
  json::Value meta(rapidjson::kObjectType);
  if (const json::Value* m = json::member(resource, "meta"); m && m->IsObject()) {
    meta.CopyFrom(*m, alloc);
    json::remove(meta, "versionId");
    json::remove(meta, "lastUpdated");
  }
  std::string out = prefix_for(type);
  // meta's members, then the rest of the resource, in their original order.
  std::string meta_text = json::to_string(meta);  // "{...}"
  out.append(meta_text, 1, meta_text.size() - 1);    // members and the closing brace
  for (auto it = resource.MemberBegin(); it != resource.MemberEnd(); ++it) {
    std::string_view k(it->name.GetString(), it->name.GetStringLength());
    if (k == "resourceType" || k == "id" || k == "meta") continue;
    out.push_back(',');
    json::Value key(it->name, alloc);
    out.append(json::to_string(key));
    out.push_back(':');
    json::write_to(it->value, out);
  }
  out.push_back('}');
  return out;
}

std::string served_text(const store::StoredResource& r) {
  std::string prefix = prefix_for(r.type);
  std::string out;
  out.reserve(r.body.size() + 100);
  if (r.body.compare(0, prefix.size(), prefix) != 0) {
    // Every body is written by storage_text; anything else is a corrupt store.
    std::fprintf(stderr, "stored body of %s has an unexpected shape\n", r.type.c_str());
    std::abort();
  }
  out.append("{\"resourceType\":\"").append(r.type).append("\",\"id\":\"").append(r.id).append("\",\"meta\":{");
  out.append("\"versionId\":\"").append(std::to_string(r.version)).append("\",\"lastUpdated\":\"");
  out.append(r.last_updated).append("\"");
  if (r.body.size() > prefix.size() && r.body[prefix.size()] != '}') out.push_back(',');
  out.append(r.body, prefix.size(), std::string::npos);
  return out;
}

namespace {
void add_reference(std::vector<store::IndexEntry>& out, const char* param, const json::Value* ref) {
  if (ref == nullptr || !ref->IsObject()) return;
  auto r = json::get_string(*ref, "reference");
  if (!r) return;
  std::string_view v = *r;
  // Keep only the relative Type/id tail of absolute URLs.
  if (auto pos = v.rfind("Patient/"); pos != std::string_view::npos) v = v.substr(pos);
  if (v.rfind("Patient/", 0) != 0) return;
  out.push_back(store::IndexEntry{param, "", std::string(v)});
}
}  // namespace

std::vector<store::IndexEntry> index_entries(std::string_view type, const json::Value& resource) {
  std::vector<store::IndexEntry> out;
  if (const json::Value* ids = json::member(resource, "identifier")) {
    auto add = [&](const json::Value& ident) {
      if (!ident.IsObject()) return;
      auto value = json::get_string(ident, "value");
      if (!value) return;
      auto system = json::get_string(ident, "system");
      out.push_back(store::IndexEntry{"identifier", std::string(system.value_or("")), std::string(*value)});
    };
    if (ids->IsArray()) {
      for (const auto& ident : ids->GetArray()) add(ident);
    } else {
      add(*ids);  // Identifier is 0..1 on some types (e.g. Consent in R4 is 0..*; Flag is 0..*)
    }
  }
  const json::Value* subject = json::member(resource, "subject");
  const json::Value* patient = json::member(resource, "patient");
  if (subject) {
    add_reference(out, "subject", subject);
    add_reference(out, "patient", subject);
  }
  if (patient) add_reference(out, "patient", patient);
  // A reference naming the patient by NHS number only (the CASH/GUM concern
  // Flag): indexed so the child's chronology finds it without a scan.
  for (const json::Value* ref : {subject, patient}) {
    const json::Value* id = ref && ref->IsObject() ? json::member(*ref, "identifier") : nullptr;
    if (!id || !id->IsObject() || json::get_string(*id, "system") != "https://fhir.nhs.uk/Id/nhs-number") continue;
    if (auto v = json::get_string(*id, "value"))
      out.push_back(store::IndexEntry{"subject-nhs", "https://fhir.nhs.uk/Id/nhs-number", std::string(*v)});
  }
  if (type == "AuditEvent") {
    // BALP: the Patient is the entity whose what points at it (audit-entity-type 1).
    if (const json::Value* entities = json::member(resource, "entity"); entities && entities->IsArray())
      for (const auto& e : entities->GetArray())
        if (e.IsObject()) add_reference(out, "patient", json::member(e, "what"));
  }
  // Tags (system|code) say what kind of record this is, e.g. which AuditEvents
  // are unscheduled CP-IS accesses.
  const json::Value* meta = resource.IsObject() ? json::member(resource, "meta") : nullptr;
  const json::Value* tags = meta && meta->IsObject() ? json::member(*meta, "tag") : nullptr;
  if (tags && tags->IsArray()) {
    for (const auto& t : tags->GetArray()) {
      if (!t.IsObject()) continue;
      auto code = json::get_string(t, "code");
      if (code) out.push_back(store::IndexEntry{"_tag", std::string(json::get_string(t, "system").value_or("")),
                                                std::string(*code)});
    }
  }
  // Sensitivity labels are indexed so that searches can leave labelled
  // resources out in SQL, keeping totals and paging honest.
  for (const auto& label : security_labels(resource)) out.push_back(store::IndexEntry{"_security", "", label});
  // A disclosure is readable by the organisations it was sent to only
  // (policy "scope": "recipient"): indexed so that searches filter in SQL.
  if (type == "Communication") {
    if (const json::Value* rs = json::member(resource, "recipient"); rs && rs->IsArray())
      for (const auto& r : rs->GetArray())
        if (const json::Value* id = r.IsObject() ? json::member(r, "identifier") : nullptr; id && id->IsObject())
          if (auto v = json::get_string(*id, "value"))
            out.push_back(store::IndexEntry{"recipient", std::string(json::get_string(*id, "system").value_or("")),
                                            std::string(*v)});
  }
  return out;
}

std::vector<store::IndexEntry> index_entries(std::string_view type, const json::Value& resource,
                                             const SearchParamTable& declared) {
  auto out = index_entries(type, resource);
  declared.extract(type, resource, out);
  return out;
}

std::vector<std::string> security_labels(const json::Value& resource) {
  std::vector<std::string> out;
  const json::Value* meta = resource.IsObject() ? json::member(resource, "meta") : nullptr;
  const json::Value* sec = meta && meta->IsObject() ? json::member(*meta, "security") : nullptr;
  if (!sec || !sec->IsArray()) return out;
  for (const auto& c : sec->GetArray()) {
    if (!c.IsObject()) continue;
    if (auto code = json::get_string(c, "code")) out.emplace_back(*code);
  }
  return out;
}

std::string etag(int64_t version) { return "W/\"" + std::to_string(version) + "\""; }

std::string http_date(std::string_view iso) {
  // iso: YYYY-MM-DDTHH:MM:SS(.mmm)Z
  std::tm tm{};
  if (iso.size() < 19) return {};
  tm.tm_year = std::atoi(std::string(iso.substr(0, 4)).c_str()) - 1900;
  tm.tm_mon = std::atoi(std::string(iso.substr(5, 2)).c_str()) - 1;
  tm.tm_mday = std::atoi(std::string(iso.substr(8, 2)).c_str());
  tm.tm_hour = std::atoi(std::string(iso.substr(11, 2)).c_str());
  tm.tm_min = std::atoi(std::string(iso.substr(14, 2)).c_str());
  tm.tm_sec = std::atoi(std::string(iso.substr(17, 2)).c_str());
  std::time_t t = timegm(&tm);
  std::tm out{};
  gmtime_r(&t, &out);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &out);
  return buf;
}

std::optional<int64_t> parse_http_date(std::string_view s) {
  std::tm tm{};
  std::string text(s.substr(0, 64));
  const char* end = strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  return static_cast<int64_t>(timegm(&tm));
}

}  // namespace gw::model
