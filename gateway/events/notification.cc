#include "gateway/events/notification.h"

#include <chrono>
#include <cstdio>
#include <ctime>

#include "gateway/common/json.h"
#include "gateway/model/resource_text.h"

namespace gw::events {

namespace {

using json::Value;

std::string now_iso() {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm t{};
  gmtime_r(&secs, &t);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday,
                t.tm_hour, t.tm_min, t.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

Value param(std::string_view name, std::string_view kind, Value v, json::Allocator& a) {
  Value p(rapidjson::kObjectType);
  json::set(p, "name", name, a);
  json::set(p, kind, std::move(v), a);
  return p;
}

Value reference(const std::string& ref, json::Allocator& a) {
  Value r(rapidjson::kObjectType);
  json::set(r, "reference", ref, a);
  return r;
}

Value parameters(const Notification& n, json::Allocator& a) {
  Value p(rapidjson::kObjectType);
  json::set(p, "resourceType", "Parameters", a);
  json::set(p, "id", model::new_uuid(), a);
  Value meta(rapidjson::kObjectType);
  Value profiles(rapidjson::kArrayType);
  profiles.PushBack(
      json::str("http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-status-r4", a),
      a);
  json::set(meta, "profile", std::move(profiles), a);
  json::set(p, "meta", std::move(meta), a);
  Value list(rapidjson::kArrayType);
  list.PushBack(param("subscription", "valueReference",
                      reference(n.base + "/Subscription/" + n.subscription_id, a), a),
                a);
  list.PushBack(param("topic", "valueCanonical", json::str(n.topic_url, a), a), a);
  list.PushBack(param("status", "valueCode", json::str(n.status, a), a), a);
  list.PushBack(param("type", "valueCode", json::str(n.type, a), a), a);
  list.PushBack(param("events-since-subscription-start", "valueString",
                      json::str(std::to_string(n.events_since_start), a), a),
                a);
  for (const auto& e : n.events) {
    Value ev(rapidjson::kObjectType);
    json::set(ev, "name", "notification-event", a);
    Value parts(rapidjson::kArrayType);
    parts.PushBack(param("event-number", "valueString", json::str(std::to_string(e.number), a), a), a);
    if (!e.timestamp.empty()) parts.PushBack(param("timestamp", "valueInstant", json::str(e.timestamp, a), a), a);
    if (n.content != "empty") {
      parts.PushBack(param("focus", "valueReference",
                           reference(n.base + "/" + e.focus_type + "/" + e.focus_id, a), a),
                     a);
    }
    json::set(ev, "part", std::move(parts), a);
    list.PushBack(ev, a);
  }
  if (!n.error_text.empty()) {
    Value cc(rapidjson::kObjectType);
    json::set(cc, "text", n.error_text, a);
    list.PushBack(param("error", "valueCodeableConcept", std::move(cc), a), a);
  }
  json::set(p, "parameter", std::move(list), a);
  return p;
}

}  // namespace

std::string status_parameters(const Notification& n) {
  json::Document d;
  Value p = parameters(n, d.GetAllocator());
  return json::to_string(p);
}

std::string notification_bundle(const Notification& n) {
  json::Document d;
  d.SetObject();
  auto& a = d.GetAllocator();
  json::set(d, "resourceType", "Bundle", a);
  json::set(d, "id", model::new_uuid(), a);
  Value meta(rapidjson::kObjectType);
  Value profiles(rapidjson::kArrayType);
  profiles.PushBack(
      json::str("http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-notification-r4",
                a),
      a);
  json::set(meta, "profile", std::move(profiles), a);
  json::set(d, "meta", std::move(meta), a);
  json::set(d, "type", "history", a);
  json::set(d, "timestamp", now_iso(), a);
  Value entries(rapidjson::kArrayType);
  {
    Value e(rapidjson::kObjectType);
    json::set(e, "fullUrl", "urn:uuid:" + model::new_uuid(), a);
    json::set(e, "resource", parameters(n, a), a);
    Value req(rapidjson::kObjectType);
    json::set(req, "method", "GET", a);
    json::set(req, "url", n.base + "/Subscription/" + n.subscription_id + "/$status", a);
    json::set(e, "request", std::move(req), a);
    Value resp(rapidjson::kObjectType);
    json::set(resp, "status", "200", a);
    json::set(e, "response", std::move(resp), a);
    entries.PushBack(e, a);
  }
  if (n.content != "empty") {
    for (const auto& ev : n.events) {
      Value e(rapidjson::kObjectType);
      json::set(e, "fullUrl", n.base + "/" + ev.focus_type + "/" + ev.focus_id, a);
      if (n.content == "full-resource" && !ev.resource_json.empty()) {
        auto r = json::parse(ev.resource_json);
        if (r) {
          Value copy(*r, a);
          json::set(e, "resource", std::move(copy), a);
        }
      }
      Value req(rapidjson::kObjectType);
      Value resp(rapidjson::kObjectType);
      std::string ver = std::to_string(ev.focus_version);
      if (ev.interaction == "delete") {
        json::set(req, "method", "DELETE", a);
        json::set(req, "url", ev.focus_type + "/" + ev.focus_id, a);
        json::set(resp, "status", "204", a);
      } else if (ev.interaction == "create") {
        json::set(req, "method", "POST", a);
        json::set(req, "url", ev.focus_type, a);
        json::set(resp, "status", "201", a);
      } else {
        json::set(req, "method", "PUT", a);
        json::set(req, "url", ev.focus_type + "/" + ev.focus_id, a);
        json::set(resp, "status", "200", a);
      }
      json::set(resp, "etag", "W/\"" + ver + "\"", a);
      json::set(resp, "location", ev.focus_type + "/" + ev.focus_id + "/_history/" + ver, a);
      json::set(e, "request", std::move(req), a);
      json::set(e, "response", std::move(resp), a);
      entries.PushBack(e, a);
    }
  }
  json::set(d, "entry", std::move(entries), a);
  return json::to_string(d);
}

}  // namespace gw::events
