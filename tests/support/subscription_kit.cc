#include "tests/support/subscription_kit.h"

#include "gateway/common/json.h"

namespace gw::test {

events::SubscriptionsOptions fast_subscriptions(int workers, std::chrono::milliseconds poll) {
  events::SubscriptionsOptions o;
  o.delivery.workers = workers;
  o.delivery.first_retry = std::chrono::milliseconds(100);
  o.delivery.max_backoff = std::chrono::milliseconds(400);
  o.delivery.post_timeout = std::chrono::milliseconds(2000);
  o.delivery.poll = poll;
  o.fanout.poll = poll;
  return o;
}

std::string subscription_json(const SubscriptionArgs& a) {
  std::string s = R"({"resourceType":"Subscription","status":")" + a.status +
                  R"(","reason":"test","criteria":"https://cpis-gateway.nhs.uk/SubscriptionTopic/)" + a.topic + "\"";
  if (!a.filters.empty()) {
    s += R"(,"_criteria":{"extension":[)";
    for (size_t i = 0; i < a.filters.size(); ++i) {
      if (i) s += ",";
      s += R"({"url":"http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-filter-criteria","valueString":")" +
           a.filters[i] + "\"}";
    }
    s += "]}";
  }
  s += R"(,"channel":{)";
  std::string ext;
  auto add = [&ext](const std::string& name, const std::string& kind, int64_t v) {
    if (!ext.empty()) ext += ",";
    ext += R"({"url":"http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/)" + name + R"(",")" + kind +
           "\":" + std::to_string(v) + "}";
  };
  if (a.heartbeat_s) add("backport-heartbeat-period", "valueUnsignedInt", a.heartbeat_s);
  if (a.max_count) add("backport-max-count", "valuePositiveInt", a.max_count);
  if (!ext.empty()) s += "\"extension\":[" + ext + "],";
  s += R"("type":")" + a.channel_type + R"(","endpoint":")" + a.endpoint + R"(","payload":")" + a.payload + "\"";
  if (!a.content.empty()) {
    s += R"(,"_payload":{"extension":[{"url":"http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content","valueCode":")" +
         a.content + "\"}]}";
  }
  if (!a.headers.empty()) {
    s += ",\"header\":[";
    for (size_t i = 0; i < a.headers.size(); ++i) s += (i ? ",\"" : "\"") + a.headers[i] + "\"";
    s += "]";
  }
  return s + "}}";
}

Seen read_notification(const std::string& body) {
  Seen s;
  auto d = json::parse(body);
  if (!d || !d->IsObject()) {
    s.why = "not JSON";
    return s;
  }
  if (json::get_string(*d, "resourceType").value_or("") != "Bundle") return s.why = "not a Bundle", s;
  if (json::get_string(*d, "type").value_or("") != "history") return s.why = "Bundle.type is not history", s;
  const json::Value* entries = json::member(*d, "entry");
  if (!entries || !entries->IsArray() || entries->Empty()) return s.why = "no entries", s;
  s.entries = entries->Size();
  const json::Value& e0 = (*entries)[0];
  const json::Value* p = json::member(e0, "resource");
  if (!p || json::get_string(*p, "resourceType").value_or("") != "Parameters") {
    return s.why = "entry[0] is not a Parameters", s;
  }
  const json::Value* req = json::member(e0, "request");
  if (!req || json::get_string(*req, "method").value_or("") != "GET" ||
      !json::get_string(*req, "url").value_or("").ends_with("/$status")) {
    return s.why = "entry[0].request is not GET .../$status", s;
  }
  const json::Value* params = json::member(*p, "parameter");
  if (!params || !params->IsArray()) return s.why = "no parameters", s;
  for (const auto& prm : params->GetArray()) {
    std::string name(json::get_string(prm, "name").value_or(""));
    if (name == "type") s.type = std::string(json::get_string(prm, "valueCode").value_or(""));
    if (name == "status") s.status = std::string(json::get_string(prm, "valueCode").value_or(""));
    if (name == "subscription") {
      if (const json::Value* r = json::member(prm, "valueReference"))
        s.subscription = std::string(json::get_string(*r, "reference").value_or(""));
    }
    if (name == "events-since-subscription-start") {
      auto v = json::get_string(prm, "valueString");
      if (!v) return s.why = "events-since-subscription-start is not a valueString", s;
      s.events_since_start = std::stoll(std::string(*v));
    }
    if (name == "notification-event") {
      const json::Value* parts = json::member(prm, "part");
      if (!parts || !parts->IsArray()) return s.why = "notification-event without parts", s;
      for (const auto& part : parts->GetArray()) {
        std::string pn(json::get_string(part, "name").value_or(""));
        if (pn == "event-number") {
          auto v = json::get_string(part, "valueString");
          if (!v) return s.why = "event-number is not a valueString", s;
          s.numbers.push_back(std::stoll(std::string(*v)));
        }
        if (pn == "focus") {
          if (const json::Value* r = json::member(part, "valueReference"))
            s.focus.push_back(std::string(json::get_string(*r, "reference").value_or("")));
        }
      }
    }
  }
  if (s.type.empty() || s.status.empty() || s.subscription.empty()) return s.why = "type/status/subscription missing", s;
  s.ok = true;
  return s;
}

std::vector<int64_t> event_numbers(const std::vector<ReceivedPost>& posts, const std::string& path) {
  std::vector<int64_t> out;
  for (const auto& p : posts) {
    if (!path.empty() && p.target != path) continue;
    Seen s = read_notification(p.body);
    if (s.type == "event-notification") out.insert(out.end(), s.numbers.begin(), s.numbers.end());
  }
  return out;
}

size_t count_type(const std::vector<ReceivedPost>& posts, const std::string& type, const std::string& path) {
  size_t n = 0;
  for (const auto& p : posts) {
    if (!path.empty() && p.target != path) continue;
    if (read_notification(p.body).type == type) ++n;
  }
  return n;
}

}  // namespace gw::test
