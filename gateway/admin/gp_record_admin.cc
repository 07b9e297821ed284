#include "gateway/admin/gp_record_admin.h"

#include <algorithm>
#include <memory>
#include <set>

#include "gateway/common/issues.h"
#include "gateway/common/json.h"
#include "gateway/events/gp_record_feed.h"

namespace gw::admin {

namespace {

constexpr const char* kRoute = "admin_gp_hl7";

net::Response answer(int status, std::string body, std::string content_type) {
  net::Response r;
  r.status = status;
  r.content_type = std::move(content_type);
  r.body = std::move(body);
  r.route = kRoute;
  return r;
}

net::Response refused(const Error& e) {
  return answer(http_status_for(e.code), operation_outcome(e), "application/fhir+json; charset=utf-8");
}

void put(json::Writer& w, const char* k, std::string_view v) {
  w.Key(k);
  w.String(v.data(), static_cast<json::SizeType>(v.size()));
}

}  // namespace

void GpRecordAdmin::handle(net::Request req, net::Respond respond) {
  if (!policy_.allows_operation(req.principal, "admin"))
    return respond(
        refused(make_error(Errc::forbidden, "role '" + req.principal.role + "' may not use the admin endpoints")));
  if (req.method != "GET") return respond(refused(make_error(Errc::method_not_allowed, "use GET")));
  const std::string base = "/admin/gp-hl7";
  if (req.path == base) return summary(std::move(respond));
  std::string practice = req.path.substr(base.size() + 1);
  if (practice.empty() || practice.find('/') != std::string::npos)
    return respond(refused(make_error(Errc::not_found, "no such admin endpoint")));
  messages(practice, std::move(respond));
}

void GpRecordAdmin::summary(net::Respond respond) {
  auto shared = std::make_shared<net::Respond>(std::move(respond));
  auto r = store_.run_read([this, shared] {
    std::set<std::string> queues;
    for (const char* status : {"pending", "dead", "delivered"}) {
      auto q = store_.subscriptions_with_events(status);
      if (!q) return (*shared)(refused(q.error()));
      for (auto& name : *q)
        if (name.rfind(events::kGpQueuePrefix, 0) == 0) queues.insert(std::move(name));
    }
    json::Buffer buf;
    json::Writer w(buf);
    w.StartObject();
    w.Key("practices");
    w.StartArray();
    for (const auto& queue : queues) {
      auto c = store_.event_counts(queue);
      if (!c) return (*shared)(refused(c.error()));
      w.StartObject();
      put(w, "practice", std::string_view(queue).substr(events::kGpQueuePrefix.size()));
      put(w, "queue", queue);
      w.Key("pending");
      w.Int64(c->pending);
      w.Key("delivered");
      w.Int64(c->delivered);
      w.Key("dead");
      w.Int64(c->dead);
      put(w, "oldest_pending", c->oldest_pending);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    (*shared)(answer(200, std::string(buf.GetString(), buf.GetSize()), "application/json"));
  });
  if (!r) (*shared)(refused(r.error()));
}

void GpRecordAdmin::messages(const std::string& practice, net::Respond respond) {
  auto shared = std::make_shared<net::Respond>(std::move(respond));
  auto r = store_.run_read([this, shared, practice] {
    const std::string queue = events::gp_queue(practice);
    std::vector<store::EventRow> rows;
    for (const char* status : {"pending", "dead"}) {
      auto evs = store_.events(queue, 1, 0, status, 500);
      if (!evs) return (*shared)(refused(evs.error()));
      rows.insert(rows.end(), evs->begin(), evs->end());
    }
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.number < b.number; });
    if (rows.size() > 500) rows.resize(500);
    json::Buffer buf;
    json::Writer w(buf);
    w.StartObject();
    put(w, "practice", practice);
    put(w, "queue", queue);
    w.Key("messages");
    w.StartArray();
    for (const auto& m : rows) {
      w.StartObject();
      w.Key("number");
      w.Int64(m.number);
      put(w, "status", m.status);
      put(w, "plan", m.focus_type + "/" + m.focus_id + "/_history/" + std::to_string(m.focus_version));
      put(w, "interaction", m.interaction);
      put(w, "patient", m.patient_ref);
      put(w, "queued", m.created);
      w.Key("attempts");
      w.Int64(m.attempts);
      put(w, "last_error", m.last_error);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    (*shared)(answer(200, std::string(buf.GetString(), buf.GetSize()), "application/json"));
  });
  if (!r) (*shared)(refused(r.error()));
}

}  // namespace gw::admin
