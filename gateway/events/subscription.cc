#include "gateway/events/subscription.h"

#include <algorithm>
#include <cctype>

#include "gateway/model/search_params.h"

namespace gw::events {

namespace {

const json::Value* find_ext(const json::Value* holder, std::string_view url) {
  if (!holder || !holder->IsObject()) return nullptr;
  const json::Value* ext = json::member(*holder, "extension");
  if (!ext || !ext->IsArray()) return nullptr;
  for (const auto& e : ext->GetArray()) {
    auto u = json::get_string(e, "url");
    if (u && *u == url) return &e;
  }
  return nullptr;
}

std::optional<int64_t> ext_int(const json::Value* holder, std::string_view url) {
  const json::Value* e = find_ext(holder, url);
  if (!e) return std::nullopt;
  for (const char* k : {"valueUnsignedInt", "valuePositiveInt", "valueInteger"})
    if (auto v = json::get_int(*e, k)) return v;
  return std::nullopt;
}

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

// "Patient?identifier=a|b&organization=X" -> filters (one per parameter).
void parse_filter(std::string_view text, std::vector<Filter>& out, IssueSink& issues, const std::string& where) {
  std::string resource;
  std::string_view q = text;
  if (auto pos = text.find('?'); pos != std::string_view::npos) {
    resource = std::string(text.substr(0, pos));
    q = text.substr(pos + 1);
  }
  if (q.empty()) {
    issues.error("invalid", where, "a filter criterion needs parameter=value");
    return;
  }
  while (!q.empty()) {
    auto amp = q.find('&');
    std::string_view part = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    auto eq = part.find('=');
    if (eq == std::string_view::npos || eq == 0 || eq + 1 == part.size()) {
      issues.error("invalid", where, "a filter criterion needs parameter=value");
      continue;
    }
    Filter f;
    f.resource = resource;
    auto name = model::percent_decode(part.substr(0, eq), true);
    if (!name) {
      issues.error("invalid", where, "bad percent-encoding in a filter parameter");
      continue;
    }
    f.parameter = *name;
    std::string_view vals = part.substr(eq + 1);
    while (true) {
      auto comma = vals.find(',');
      auto v = model::percent_decode(vals.substr(0, comma), true);
      if (!v || v->empty()) {
        issues.error("invalid", where, "bad or empty filter value");
        break;
      }
      f.values.push_back(*v);
      if (comma == std::string_view::npos) break;
      vals = vals.substr(comma + 1);
    }
    out.push_back(std::move(f));
  }
}

bool known_content(std::string_view c) { return c == "empty" || c == "id-only" || c == "full-resource"; }

}  // namespace

std::string owner_text(const security::Principal& p) { return p.ods + "|" + p.role + "|" + p.system; }

SubscriptionSpec read_subscription(const json::Value& r, IssueSink& issues) {
  SubscriptionSpec s;
  s.id = std::string(json::get_string(r, "id").value_or(""));
  s.status = std::string(json::get_string(r, "status").value_or(""));
  s.topic_url = std::string(json::get_string(r, "criteria").value_or(""));
  if (s.topic_url.empty()) issues.error("required", "Subscription.criteria", "criteria (the topic canonical) is required");
  if (const json::Value* ce = json::member(r, "_criteria"); ce && ce->IsObject()) {
    if (const json::Value* ext = json::member(*ce, "extension"); ext && ext->IsArray()) {
      int i = 0;
      for (const auto& e : ext->GetArray()) {
        auto u = json::get_string(e, "url");
        if (u && *u == kFilterCriteriaUrl) {
          auto v = json::get_string(e, "valueString");
          std::string where = "Subscription._criteria.extension[" + std::to_string(i) + "]";
          if (!v) issues.error("required", where, "backport-filter-criteria needs valueString");
          else parse_filter(*v, s.filters, issues, where);
        }
        ++i;
      }
    }
  }
  const json::Value* ch = json::member(r, "channel");
  if (!ch || !ch->IsObject()) {
    issues.error("required", "Subscription.channel", "channel is required");
    return s;
  }
  std::string type(json::get_string(*ch, "type").value_or(""));
  if (type != "rest-hook") {
    issues.error("not-supported", "Subscription.channel.type", "only the rest-hook channel is supported");
  }
  s.endpoint = std::string(json::get_string(*ch, "endpoint").value_or(""));
  s.payload_mime = std::string(json::get_string(*ch, "payload").value_or(""));
  if (const json::Value* e = find_ext(json::member(*ch, "_payload"), kPayloadContentUrl)) {
    s.content = std::string(json::get_string(*e, "valueCode").value_or(""));
  } else {
    s.content.clear();
  }
  if (auto v = ext_int(ch, kHeartbeatUrl)) s.heartbeat_s = *v;
  if (auto v = ext_int(ch, kTimeoutUrl)) s.timeout_s = *v;
  if (auto v = ext_int(ch, kMaxCountUrl)) s.max_count = *v;
  if (const json::Value* hs = json::member(*ch, "header"); hs && hs->IsArray()) {
    int i = 0;
    for (const auto& h : hs->GetArray()) {
      std::string where = "Subscription.channel.header[" + std::to_string(i++) + "]";
      if (!h.IsString()) continue;
      std::string_view t(h.GetString(), h.GetStringLength());
      auto colon = t.find(':');
      std::string name = colon == std::string_view::npos ? std::string() : trim(t.substr(0, colon));
      bool ok = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
      });
      std::string value = ok ? trim(t.substr(colon + 1)) : std::string();
      if (value.find_first_of("\r\n") != std::string::npos) ok = false;
      if (!ok) {
        issues.error("invalid", where, "a header must read 'Name: value'");
        continue;
      }
      s.headers.emplace_back(name, value);
    }
  }
  if (auto e = json::get_string(r, "end")) s.end = std::string(*e);
  if (const json::Value* o = find_ext(&r, kOwnerUrl)) {
    std::string v(json::get_string(*o, "valueString").value_or(""));
    auto a = v.find('|');
    auto b = a == std::string::npos ? a : v.find('|', a + 1);
    if (b != std::string::npos) {
      s.owner = security::Principal{v.substr(0, a), v.substr(a + 1, b - a - 1), v.substr(b + 1)};
      s.has_owner = true;
    }
  }
  return s;
}

Verdict check_subscription(const SubscriptionSpec& s, const IssueSink& read_issues, const security::Principal& who,
                           const Topics& topics, const security::Policy& policy) {
  Verdict v;
  auto fail = [&v](Errc code, std::string what, std::string expr, std::string msg) {
    // Authorisation (403) outranks shape (422): a caller not allowed at all
    // should not learn more about the shape.
    if (v.code != Errc::forbidden) v.code = code;
    v.issues.push_back(Issue{Severity::error, std::move(what), std::move(expr), std::move(msg)});
  };
  for (const auto& i : read_issues.issues())
    if (i.severity == Severity::error || i.severity == Severity::fatal) {
      if (v.code == Errc::ok) v.code = Errc::unprocessable;
      v.issues.push_back(i);
    }
  if (s.status != "requested" && s.status != "off" && s.status != "active" && s.status != "error") {
    fail(Errc::unprocessable, "code-invalid", "Subscription.status", "status must be requested or off");
  }
  const Topic* t = topics.by_url(s.topic_url);
  if (!s.topic_url.empty() && !t) {
    fail(Errc::unprocessable, "not-found", "Subscription.criteria",
         "criteria must be the canonical URL of a topic this server advertises (see /fhir/metadata)");
  }
  if (s.endpoint.rfind("https://", 0) != 0 || s.endpoint.size() <= 8) {
    fail(Errc::unprocessable, "security", "Subscription.channel.endpoint",
         "the endpoint must be an https:// URL; plain HTTP is refused");
  }
  if (s.payload_mime != "application/fhir+json") {
    fail(Errc::unprocessable, "not-supported", "Subscription.channel.payload",
         "channel.payload must be application/fhir+json");
  }
  if (!known_content(s.content)) {
    fail(Errc::unprocessable, "code-invalid", "Subscription.channel.payload.extension",
         "backport-payload-content must be empty, id-only or full-resource");
  }
  if (s.heartbeat_s < 0 || s.timeout_s < 0 || s.max_count < 1) {
    fail(Errc::unprocessable, "value", "Subscription.channel.extension",
         "heartbeat period and timeout must be >= 0, max count >= 1");
  }
  for (const auto& [name, value] : s.headers) {
    std::string lower;
    for (char c : name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower == "content-type" || lower == "content-length" || lower == "host" || lower == "transfer-encoding" ||
        lower == "connection") {
      fail(Errc::unprocessable, "invalid", "Subscription.channel.header", "header '" + name + "' is set by the server");
    }
  }
  if (!t) return v;
  if (!t->allows_role(who.role)) {
    fail(Errc::forbidden, "forbidden", "Subscription.criteria",
         "role '" + who.role + "' may not subscribe to topic " + t->name);
    return v;
  }
  for (const auto& f : s.filters) {
    if (!t->allows_filter(f.parameter)) {
      fail(Errc::unprocessable, "not-supported", "Subscription._criteria",
           "topic " + t->name + " does not allow the filter '" + f.parameter + "'");
      continue;
    }
    if (!f.resource.empty() && std::find(t->trigger_types().begin(), t->trigger_types().end(), f.resource) ==
                                   t->trigger_types().end()) {
      fail(Errc::unprocessable, "not-supported", "Subscription._criteria",
           "topic " + t->name + " is not about " + f.resource + " resources");
    }
    if (f.parameter == "organization" && !t->unrestricted(who.role)) {
      for (const auto& o : f.values)
        if (o != who.ods) {
          fail(Errc::forbidden, "forbidden", "Subscription._criteria",
               "a subscriber may only filter on its own organisation's caseload (organization=" + who.ods + ")");
          break;
        }
    }
  }
  if (s.content == "full-resource") {
    for (const auto& type : t->trigger_types())
      if (!policy.allows(who, type, "read")) {
        fail(Errc::forbidden, "forbidden", "Subscription.channel.payload.extension",
             "role '" + who.role + "' may not read " + type + " resources, so it may not receive full-resource");
      }
  }
  return v;
}

void prepare_for_store(json::Document& doc, const security::Principal& who) {
  auto& a = doc.GetAllocator();
  std::string status(json::get_string(doc, "status").value_or(""));
  json::set(doc, "status", status == "off" ? "off" : "requested", a);
  json::remove(doc, "error");
  json::Value* ext = doc.HasMember("extension") ? &doc["extension"] : nullptr;
  if (!ext || !ext->IsArray()) {
    json::set(doc, "extension", json::Value(rapidjson::kArrayType), a);
    ext = &doc["extension"];
  }
  for (auto it = ext->Begin(); it != ext->End();) {
    auto u = json::get_string(*it, "url");
    if (u && *u == kOwnerUrl) it = ext->Erase(it);
    else ++it;
  }
  json::Value e(rapidjson::kObjectType);
  json::set(e, "url", kOwnerUrl, a);
  json::set(e, "valueString", owner_text(who), a);
  ext->PushBack(e, a);
}

}  // namespace gw::events
