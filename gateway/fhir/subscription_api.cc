#include "gateway/fhir/subscription_api.h"

#include <charconv>

#include "gateway/audit/audit_rows.h"
#include "gateway/common/issues.h"
#include "gateway/common/json.h"
#include "gateway/common/log.h"
#include "gateway/events/notification.h"
#include "gateway/events/patient_refs.h"
#include "gateway/events/subscription.h"
#include "gateway/model/resource_text.h"
#include "gateway/model/search_params.h"
#include "gateway/fhir/responses.h"
#include "gateway/write/bundle_entries.h"

namespace gw::fhir {

namespace {

using net::Request;
using net::Respond;
using net::Response;

Response outcome(Errc code, const std::string& msg, const std::string& expr, std::string route) {
  Response r;
  r.status = http_status_for(code);
  r.body = operation_outcome(make_error(code, msg, expr));
  r.route = std::move(route);
  return r;
}

std::vector<std::string> segments(std::string_view p) {
  std::vector<std::string> out;
  while (!p.empty()) {
    if (p.front() == '/') {
      p.remove_prefix(1);
      continue;
    }
    auto s = p.find('/');
    out.emplace_back(p.substr(0, s));
    if (s == std::string_view::npos) break;
    p.remove_prefix(s);
  }
  return out;
}

std::optional<std::string> query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view part = query.substr(0, amp);
    auto eq = part.find('=');
    if (part.substr(0, eq) == name) {
      auto v = model::percent_decode(eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1), true);
      if (v) return *v;
      return std::nullopt;
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

std::optional<int64_t> to_int(const std::string& s) {
  int64_t n = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return n;
}

// Operators (policy operation "admin") see and manage every subscription.
bool sees_all(const security::Policy& policy, const security::Principal& who) {
  return policy.allows_operation(who, "admin");
}

bool owns(const security::Policy& policy, const events::SubscriptionSpec& s, const security::Principal& who) {
  return sees_all(policy, who) || (s.owner.ods == who.ods && s.owner.role == who.role);
}

// A searchset Bundle around already-serialised resources.
std::string searchset(const std::vector<std::string>& resources) {
  std::string out = "{\"resourceType\":\"Bundle\",\"type\":\"searchset\",\"total\":" +
                    std::to_string(resources.size()) + ",\"entry\":[";
  for (size_t i = 0; i < resources.size(); ++i) {
    if (i) out += ",";
    out += "{\"resource\":" + resources[i] + ",\"search\":{\"mode\":\"match\"}}";
  }
  return out + "]}";
}

// The searchset without entries owned by someone else; total and paging
// links then describe the unfiltered search, so they are dropped.
std::string only_owned(const security::Policy& policy, const std::string& bundle, const security::Principal& who) {
  auto d = json::parse(bundle);
  if (!d || !d->IsObject() || !d->HasMember("entry") || !(*d)["entry"].IsArray()) return bundle;
  auto& entries = (*d)["entry"];
  for (auto it = entries.Begin(); it != entries.End();) {
    const json::Value* r = json::member(*it, "resource");
    IssueSink ignored;
    bool mine = false;
    if (r && r->IsObject()) {
      events::SubscriptionSpec s = events::read_subscription(*r, ignored);
      mine = s.has_owner && owns(policy, s, who);
    }
    if (mine) ++it;
    else it = entries.Erase(it);
  }
  json::remove(*d, "total");
  json::remove(*d, "link");
  return json::to_string(*d);
}

}  // namespace

SubscriptionApi::SubscriptionApi(RestApi& rest, write::WriteService& writes, events::Subscriptions& subs,
                                 std::string public_base_url)
    : rest_(rest), writes_(writes), subs_(subs), policy_(writes.policy()), public_base_url_(std::move(public_base_url)) {
}

void SubscriptionApi::add_routes(net::Router& router) {
  router.add("/fhir/Subscription", this);
  router.add("/fhir/Basic", this);
  router.add("/admin/subscriptions", this);
  // What these routes serve, in the CapabilityStatement (backport IG:
  // capabilitystatement-subscriptiontopic-canonical, $status and $events).
  for (const auto& topic : subs_.topics().all()) {
    rest_.declare(CapabilityExtension{
        "Subscription",
        "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/capabilitystatement-subscriptiontopic-canonical",
        topic.url});
  }
  for (const char* op : {"status", "events"}) {
    rest_.declare(OperationDecl{
        "Subscription", op,
        std::string("http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-") + op,
        std::string("GET /fhir/Subscription/{id}/$") + op + " (the owner or admin)"});
  }
  rest_.declare(ResourceDecl{"Basic", {"read", "search-type"},
                             "The subscription topics as Basic resources (code SubscriptionTopic), as the R5 "
                             "Subscriptions Backport IG describes for R4: GET /fhir/Basic, /fhir/Basic/{topic name}"});
}

std::string SubscriptionApi::base(const Request& req) const {
  return (public_base_url_.empty() ? req.base_url : public_base_url_) + "/fhir";
}

void SubscriptionApi::handle(Request req, Respond respond) {
  auto seg = segments(req.path);
  if (!seg.empty() && seg[0] == "admin") return admin(std::move(req), std::move(respond));
  if (seg.size() >= 2 && seg[1] == "Basic") {
    return topics(std::move(req), std::move(respond), seg.size() >= 3 ? seg[2] : std::string());
  }
  // seg: fhir Subscription [id|$status] [$status|$events]
  if (seg.size() == 3 && seg[2] == "$status") return status(std::move(req), std::move(respond), "");
  if (seg.size() == 4 && seg[3] == "$status") return status(std::move(req), std::move(respond), seg[2]);
  if (seg.size() == 4 && seg[3] == "$events") return events(std::move(req), std::move(respond), seg[2]);
  if (seg.size() >= 3 && seg[2].front() != '$' && !sees_all(policy_, req.principal) &&
      policy_.allows(req.principal, "Subscription", "read")) {
    return owner_gate(std::move(req), std::move(respond), seg[2], seg.size() == 3 && req.method == "PUT");
  }
  bool write_call = (req.method == "POST" && seg.size() == 2) || (req.method == "PUT" && seg.size() == 3);
  if (write_call) return write(std::move(req), std::move(respond));
  if (req.method == "DELETE" && seg.size() == 3) return remove(std::move(req), std::move(respond), seg[2]);
  if (req.method == "GET" && seg.size() == 2 && !sees_all(policy_, req.principal)) {
    // A search answers only the caller's own subscriptions: others' carry
    // their endpoints and headers (often credentials).
    security::Principal who = req.principal;
    return rest_.handle(std::move(req), [this, who, respond = std::move(respond)](Response r) mutable {
      if (r.status == 200) r.body = only_owned(policy_, r.body, who);
      respond(std::move(r));
    });
  }
  rest_.handle(std::move(req), std::move(respond));
}

// A subscription is its owner's (the organisation and role that created it):
// another organisation may not read, change or delete it — a PUT from
// elsewhere would otherwise take over someone else's notifications.
void SubscriptionApi::owner_gate(Request req, Respond respond, const std::string& id, bool then_write) {
  auto shared_req = std::make_shared<Request>(std::move(req));
  auto shared = std::make_shared<Respond>(std::move(respond));
  auto r = subs_.store().run_read([this, shared_req, shared, id, then_write]() {
    auto cur = subs_.store().read("Subscription", id);
    if (cur) {
      auto d = json::parse(cur->body);
      IssueSink ignored;
      events::SubscriptionSpec s = d ? events::read_subscription(*d, ignored) : events::SubscriptionSpec{};
      if (s.has_owner && !owns(policy_, s, shared_req->principal)) {
        (*shared)(outcome(Errc::forbidden, "this Subscription belongs to another organisation or role", "",
                          "fhir_subscription"));
        return;
      }
    }
    if (then_write) write(std::move(*shared_req), std::move(*shared));
    else if (shared_req->method == "DELETE") remove(std::move(*shared_req), std::move(*shared), id);
    else rest_.handle(std::move(*shared_req), std::move(*shared));
  });
  if (!r) (*shared)(outcome(r.error().code, r.error().message, "", "fhir_subscription"));
}

void SubscriptionApi::write(Request req, Respond respond) {
  const char* route = req.method == "POST" ? "fhir_create" : "fhir_update";
  if (!policy_.allows(req.principal, "Subscription", req.method == "POST" ? "create" : "update")) {
    return rest_.handle(std::move(req), std::move(respond));  // its 403
  }
  auto doc = json::parse(req.body);
  if (!doc || !doc->IsObject() || json::get_string(*doc, "resourceType").value_or("") != "Subscription") {
    return rest_.handle(std::move(req), std::move(respond));  // its 400 with the parse position
  }
  if (auto e = check_formats(req, BodyFormat::resource)) return respond(outcome_response(*e, route));
  IssueSink read_issues;
  events::SubscriptionSpec spec = events::read_subscription(*doc, read_issues);
  events::Verdict v = events::check_subscription(spec, read_issues, req.principal, subs_.topics(), policy_);
  if (v.code != Errc::ok) {
    Response r;
    r.status = http_status_for(v.code);
    r.body = operation_outcome(v.issues);
    r.route = route;
    log::info("subscription_refused", {{"req", req.req_id}, {"status", r.status}, {"role", req.principal.role}});
    respond(std::move(r));
    return;
  }
  events::prepare_for_store(*doc, req.principal);
  write::Entry e;
  e.type = "Subscription";
  if (req.method == "POST") {
    e.method = write::Method::post;
  } else {
    e.method = write::Method::put;
    auto seg = segments(req.path);
    e.id = seg.size() == 3 ? seg[2] : std::string();
    auto body_id = json::get_string(*doc, "id");
    if (!body_id || *body_id != e.id) {
      return respond(outcome(Errc::invalid_input, "the resource id does not match the id in the URL", "id", route));
    }
    if (auto im = req.header("if-match")) {
      auto ver = write::parse_etag_version(*im);
      if (!ver) return respond(outcome(Errc::invalid_input, "If-Match must be an ETag such as W/\"3\"", "", route));
      e.if_match = *ver;
    }
  }
  e.resource = std::make_shared<json::Document>(std::move(*doc));
  write::Request w;
  w.who = req.principal;
  w.request_id = req.audit_id();
  write::Request shape;
  write::Entry only_shape;
  only_shape.method = e.method;
  only_shape.type = e.type;
  only_shape.id = e.id;
  shape.entries.push_back(std::move(only_shape));
  w.entries.push_back(std::move(e));
  auto shared_req = std::make_shared<Request>(std::move(req));
  writes_.submit(std::move(w), [this, shared_req, shape = std::move(shape), route,
                                respond = std::move(respond)](write::Outcome out) {
    respond(write_response(*shared_req, shape, out, base(*shared_req), route));
  });
}

void SubscriptionApi::remove(Request req, Respond respond, const std::string& id) {
  const char* route = "fhir_delete";
  if (!policy_.allows(req.principal, "Subscription", "delete")) {
    return rest_.handle(std::move(req), std::move(respond));  // its 403
  }
  write::Entry e;
  e.method = write::Method::remove;
  e.type = "Subscription";
  e.id = id;
  if (auto im = req.header("if-match")) {
    auto ver = write::parse_etag_version(*im);
    if (!ver) return respond(outcome(Errc::invalid_input, "If-Match must be an ETag such as W/\"3\"", "", route));
    e.if_match = *ver;
  }
  write::Request w;
  w.who = req.principal;
  w.request_id = req.audit_id();
  write::Request shape;
  write::Entry only_shape;
  only_shape.method = e.method;
  only_shape.type = e.type;
  only_shape.id = e.id;
  shape.entries.push_back(std::move(only_shape));
  w.entries.push_back(std::move(e));
  auto shared_req = std::make_shared<Request>(std::move(req));
  writes_.submit(std::move(w), [this, shared_req, shape = std::move(shape), route,
                                respond = std::move(respond)](write::Outcome out) {
    respond(write_response(*shared_req, shape, out, base(*shared_req), route));
  });
}

void SubscriptionApi::status(Request req, Respond respond, const std::string& id) {
  if (req.method != "GET" && req.method != "POST") {
    return respond(outcome(Errc::method_not_allowed, "$status accepts GET", "", "fhir_subscription_status"));
  }
  if (!policy_.allows(req.principal, "Subscription", "read")) {
    return respond(outcome(Errc::forbidden, "role '" + req.principal.role + "' may not read Subscription", "",
                           "fhir_subscription_status"));
  }
  std::vector<events::SubscriptionSet::Ptr> targets;
  if (!id.empty()) {
    auto s = subs_.set().get(id);
    if (!s || !owns(policy_, *s, req.principal)) {
      return respond(outcome(Errc::not_found, "no such Subscription of yours", "", "fhir_subscription_status"));
    }
    targets.push_back(s);
  } else {
    for (const auto& s : subs_.set().all())
      if (owns(policy_, *s, req.principal)) targets.push_back(s);
  }
  auto shared = std::make_shared<Respond>(std::move(respond));
  std::string b = base(req);
  auto r = subs_.store().run_read([this, shared, targets = std::move(targets), b]() {
    std::vector<std::string> params;
    for (const auto& s : targets) {
      auto c = subs_.store().event_counts(s->id);
      events::Notification n;
      n.base = b;
      n.subscription_id = s->id;
      n.topic_url = s->topic_url;
      n.status = s->status;
      n.type = "query-status";
      n.events_since_start = c ? c->events : 0;
      n.content = s->content;
      if (auto cur = subs_.store().read("Subscription", s->id)) {
        if (auto d = json::parse(cur->body)) {
          n.status = std::string(json::get_string(*d, "status").value_or(s->status));
          n.error_text = std::string(json::get_string(*d, "error").value_or(""));
        }
      }
      params.push_back(events::status_parameters(n));
    }
    Response resp;
    resp.body = searchset(params);
    resp.route = "fhir_subscription_status";
    (*shared)(std::move(resp));
  });
  if (!r) (*shared)(outcome(r.error().code, r.error().message, "", "fhir_subscription_status"));
}

void SubscriptionApi::events(Request req, Respond respond, const std::string& id) {
  const char* route = "fhir_subscription_events";
  if (req.method != "GET" && req.method != "POST") {
    return respond(outcome(Errc::method_not_allowed, "$events accepts GET", "", route));
  }
  if (!policy_.allows(req.principal, "Subscription", "read")) {
    return respond(outcome(Errc::forbidden, "role '" + req.principal.role + "' may not read Subscription", "", route));
  }
  auto s = subs_.set().get(id);
  if (!s || !owns(policy_, *s, req.principal)) return respond(outcome(Errc::not_found, "no such Subscription of yours", "", route));
  int64_t since = 1, until = 0;
  if (auto v = query_param(req.query, "eventsSinceNumber")) {
    auto n = to_int(*v);
    if (!n || *n < 1) return respond(outcome(Errc::invalid_input, "eventsSinceNumber must be a positive integer",
                                             "eventsSinceNumber", route));
    since = *n;
  }
  if (auto v = query_param(req.query, "eventsUntilNumber")) {
    auto n = to_int(*v);
    if (!n || *n < since) {
      return respond(outcome(Errc::invalid_input, "eventsUntilNumber must be an integer >= eventsSinceNumber",
                             "eventsUntilNumber", route));
    }
    until = *n;
  }
  std::string content = s->content;
  if (auto v = query_param(req.query, "content")) {
    auto rank = [](const std::string& c) { return c == "empty" ? 0 : c == "id-only" ? 1 : c == "full-resource" ? 2 : -1; };
    if (rank(*v) < 0) return respond(outcome(Errc::invalid_input, "content must be empty, id-only or full-resource", "content", route));
    if (rank(*v) > rank(s->content)) {
      return respond(outcome(Errc::forbidden, "content may not exceed the subscription's payload content", "content", route));
    }
    content = *v;
  }
  constexpr int kMaxEvents = 100;
  auto shared = std::make_shared<Respond>(std::move(respond));
  std::string b = base(req);
  auto r = subs_.store().run_read([this, shared, s, since, until, content, b, route]() {
    auto evs = subs_.store().events(s->id, since, until, "", kMaxEvents);
    auto c = subs_.store().event_counts(s->id);
    if (!evs || !c) {
      (*shared)(outcome(Errc::store_failure, "the event store could not be read", "", route));
      return;
    }
    events::Notification n;
    n.base = b;
    n.subscription_id = s->id;
    n.topic_url = s->topic_url;
    n.status = s->status;
    n.type = "query-event";
    n.events_since_start = c->events;
    n.content = content;
    events::StoreLookup lookup(subs_.store());  // the NHS numbers of the resources' subjects
    for (const auto& e : *evs) {
      events::NotificationEvent ne;
      ne.number = e.number;
      ne.timestamp = e.created;
      ne.focus_type = e.focus_type;
      ne.focus_id = e.focus_id;
      ne.focus_version = e.focus_version;
      ne.interaction = e.interaction;
      // Never more than the fan-out decided for this event (sensitivity).
      if (content == "full-resource" && e.content == "full-resource") {
        if (auto r = subs_.store().vread(e.focus_type, e.focus_id, e.focus_version))
          ne.resource_json = events::identify_subjects_text(model::served_text(*r), lookup);
      }
      n.events.push_back(std::move(ne));
    }
    Response resp;
    resp.body = events::notification_bundle(n);
    resp.route = route;
    (*shared)(std::move(resp));
  });
  if (!r) (*shared)(outcome(r.error().code, r.error().message, "", route));
}

void SubscriptionApi::topics(Request req, Respond respond, const std::string& name) {
  const char* route = "fhir_topics";
  if (req.method != "GET") return respond(outcome(Errc::method_not_allowed, "topics are read-only (GET)", "", route));
  Response r;
  r.route = route;
  if (name.empty()) {
    std::vector<std::string> all;
    for (const auto& t : subs_.topics().all()) all.push_back(events::Topics::as_basic(t));
    r.body = searchset(all);
  } else {
    const events::Topic* t = subs_.topics().by_name(name);
    if (!t) return respond(outcome(Errc::not_found, "no such topic", "", route));
    r.body = events::Topics::as_basic(*t);
  }
  respond(std::move(r));
}

// POST /admin/subscriptions/{id}/replay-dead-letters, or
// POST /admin/subscriptions/replay-dead-letters for every subscription.
void SubscriptionApi::admin(Request req, Respond respond) {
  const char* route = "admin_subscriptions";
  if (!policy_.allows_operation(req.principal, "admin")) {
    return respond(outcome(Errc::forbidden, "admin operations need the admin role", "", route));
  }
  auto seg = segments(req.path);  // admin subscriptions [id] replay-dead-letters
  std::string id;
  if (seg.size() == 4 && seg[3] == "replay-dead-letters") id = seg[2];
  else if (!(seg.size() == 3 && seg[2] == "replay-dead-letters"))
    return respond(outcome(Errc::not_found, "no such admin endpoint", "", route));
  if (req.method != "POST") return respond(outcome(Errc::method_not_allowed, "use POST", "", route));
  auto shared = std::make_shared<Respond>(std::move(respond));
  // The replay and its audit row commit as one unit (docs/AUDIT.md).
  store::AuditRow row = audit::row(req.principal, "replay", "dead-letters/" + (id.empty() ? "*" : id), 200,
                                   req.audit_id(), {}, "admin");
  auto r = subs_.store().run_read([this, shared, id, route, row = std::move(row)]() mutable {
    auto n = events::RestHookDelivery::replay_dead_letters(subs_.store(), id, std::move(row));
    if (!n) {
      (*shared)(outcome(n.error().code, n.error().message, "", route));
      return;
    }
    subs_.delivery().kick(id);
    Response resp;
    resp.content_type = "application/json";
    resp.body = "{\"replayed\":" + std::to_string(*n) + "}";
    resp.route = route;
    (*shared)(std::move(resp));
  });
  if (!r) (*shared)(outcome(r.error().code, r.error().message, "", route));
}

}  // namespace gw::fhir
