#include "gateway/admin/web_console.h"

#include <openssl/evp.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>

#include "gateway/admin/disclosure_backlog.h"
#include "gateway/audit/audit_rows.h"
#include "gateway/common/clock.h"
#include "gateway/common/issues.h"
#include "gateway/common/json.h"
#include "gateway/common/log.h"
#include "gateway/events/gp_record_feed.h"
#include "gateway/events/rest_hook_delivery.h"
#include "gateway/hl7/er7.h"
#include "gateway/model/search_params.h"

namespace gw::admin {

namespace {

constexpr const char* kRoute = "web_console";
constexpr int kMaxPage = 200;
constexpr size_t kMaxFileBytes = 2 * 1024 * 1024;

// script-src 'self' and no 'unsafe-inline' anywhere: the pages' code is in
// /web/*.js, their styles in /web/*.css; data is fetched from this origin only.
constexpr const char* kCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

net::Response answer(int status, std::string body, std::string content_type) {
  net::Response r;
  r.status = status;
  r.content_type = std::move(content_type);
  r.body = std::move(body);
  r.route = kRoute;
  add_page_headers(r);
  return r;
}

net::Response refused(const Error& e) {
  return answer(http_status_for(e.code), operation_outcome(e), "application/fhir+json; charset=utf-8");
}

net::Response json_answer(json::Buffer& buf) {
  return answer(200, std::string(buf.GetString(), buf.GetSize()), "application/json; charset=utf-8");
}

void put(json::Writer& w, const char* k, std::string_view v) {
  w.Key(k);
  w.String(v.data(), static_cast<json::SizeType>(v.size()));
}

std::string base64(std::string_view s) {
  std::string out(4 * ((s.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string content_type_of(const std::string& name) {
  auto ends = [&](std::string_view ext) {
    return name.size() >= ext.size() && name.compare(name.size() - ext.size(), ext.size(), ext) == 0;
  };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  if (ends(".txt")) return "text/plain; charset=utf-8";
  return {};
}

// Query parameters as (name, decoded value); errors name the parameter.
Result<std::vector<std::pair<std::string, std::string>>> params_of(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view pair = query.substr(pos, amp - pos);
    pos = amp + 1;
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    std::string name(pair.substr(0, eq));
    auto value = model::percent_decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1), true);
    if (!value) return make_error(Errc::invalid_input, name + ": " + value.error().message, name);
    out.emplace_back(std::move(name), std::move(*value));
  }
  return out;
}

// YYYY-MM-DD (midnight UTC) or an instant, as the store's ISO text.
std::optional<std::string> instant_text(const std::string& v) {
  auto ms = clock::parse_iso_ms(v.size() == 10 ? v + "T00:00:00Z" : v);
  if (!ms) return std::nullopt;
  return clock::iso_ms(*ms);
}

bool token_ok(std::string_view v) {
  if (v.size() > 64) return false;
  for (char c : v)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '^' || c == '.' || c == ':' ||
          c == ' '))
      return false;
  return true;
}

std::optional<int64_t> positive(std::string_view s) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v <= 0) return std::nullopt;
  return v;
}

void write_row(json::Writer& w, const store::InboundRow& m) {
  w.Key("id");
  w.Int64(m.id);
  put(w, "received", m.received);
  put(w, "adapter", m.adapter);
  put(w, "channel", m.channel);
  put(w, "sender_ods", m.sender_ods);
  put(w, "sender_system", m.sender_system);
  put(w, "kind", m.kind);
  put(w, "control_id", m.control_id);
  put(w, "status", m.status);
  put(w, "reason", m.reason);
  if (m.replay_of) {
    w.Key("replay_of");
    w.Int64(m.replay_of);
  }
}

}  // namespace

void add_page_headers(net::Response& r) {
  r.headers.emplace_back("Content-Security-Policy", kCsp);
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("X-Frame-Options", "DENY");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  r.headers.emplace_back("Cache-Control", "no-store");
}

WebConsole::WebConsole(std::string web_dir, store::Store& store, write::WriteService& writes,
                       const security::Visibility& visibility, ingest::IngestApi& ingest, events::Subscriptions* subs)
    : web_dir_(std::move(web_dir)),
      store_(store),
      writes_(writes),
      visibility_(visibility),
      policy_(visibility.policy()),
      ingest_(ingest),
      subs_(subs) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(web_dir_, ec)) return;
  for (const auto& e : fs::directory_iterator(web_dir_, ec)) {
    if (!e.is_regular_file()) continue;
    std::string name = e.path().filename().string();
    std::string type = content_type_of(name);
    if (type.empty() || e.file_size() > kMaxFileBytes) continue;
    std::ifstream in(e.path(), std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    files_[name] = File{s.str(), type};
  }
}

void WebConsole::add_routes(net::Router& router) {
  router.add("/dashboard", this);
  router.add("/console", this);
  router.add("/web", this);
}

void WebConsole::handle(net::Request req, net::Respond respond) {
  const std::string& path = req.path;
  const bool dash = policy_.allows_operation(req.principal, kDashboardOperation);
  const bool cons = policy_.allows_operation(req.principal, kConsoleOperation);
  auto forbid = [&](const char* what) {
    respond(refused(make_error(Errc::forbidden, "role '" + req.principal.role + "' may not use " + what)));
  };
  auto is_under = [&](std::string_view base) {
    return path == base || (path.size() > base.size() && path.compare(0, base.size(), base) == 0 &&
                            path[base.size()] == '/');
  };
  if (is_under("/web")) {
    if (!dash && !cons) return forbid("the web console");
    if (req.method != "GET") return respond(refused(make_error(Errc::method_not_allowed, "use GET")));
    std::string name = path.size() > 5 ? path.substr(5) : "";
    if (name.empty() || name.find('/') != std::string::npos || name == "dashboard.html" || name == "console.html")
      return respond(refused(make_error(Errc::not_found, "no such file")));
    return page(req, name, std::move(respond));
  }
  if (is_under("/dashboard")) {
    if (!dash) return forbid("the dashboard");
    if (req.method != "GET") return respond(refused(make_error(Errc::method_not_allowed, "use GET")));
    if (path == "/dashboard" || path == "/dashboard/") return page(req, "dashboard.html", std::move(respond));
    if (path == "/dashboard/api/status") return status(std::move(respond), &req.principal);
    return respond(refused(make_error(Errc::not_found, "no such page")));
  }
  if (!is_under("/console")) return respond(refused(make_error(Errc::not_found, "no such page")));
  if (!cons) return forbid("the message console");
  if (path == "/console" || path == "/console/") {
    if (req.method != "GET") return respond(refused(make_error(Errc::method_not_allowed, "use GET")));
    return page(req, "console.html", std::move(respond));
  }
  if (path == "/console/api/status" || path == "/console/api/messages") {
    if (req.method != "GET") return respond(refused(make_error(Errc::method_not_allowed, "use GET")));
    // What is waiting to be acknowledged is the dashboard's (its roles);
    // the console's status shows it only to a caller who may see the dashboard.
    if (path == "/console/api/status") return status(std::move(respond), dash ? &req.principal : nullptr);
    return messages(std::move(req), std::move(respond));
  }
  const std::string msgs = "/console/api/messages/";
  if (path.compare(0, msgs.size(), msgs) == 0) {
    std::string_view rest = std::string_view(path).substr(msgs.size());
    bool replay = false;
    if (auto slash = rest.find('/'); slash != std::string_view::npos) {
      if (rest.substr(slash) != "/replay") return respond(refused(make_error(Errc::not_found, "no such endpoint")));
      replay = true;
      rest = rest.substr(0, slash);
    }
    auto id = positive(rest);
    if (!id) return respond(refused(make_error(Errc::invalid_input, "message id must be a positive integer", "id")));
    if (replay) {
      if (req.method != "POST") return respond(refused(make_error(Errc::method_not_allowed, "replay accepts POST")));
      return ingest_.replay_as(req.principal, *id, [respond = std::move(respond)](net::Response r) {
        add_page_headers(r);
        respond(std::move(r));
      });
    }
    if (req.method != "GET") return respond(refused(make_error(Errc::method_not_allowed, "use GET")));
    return message(std::move(req), *id, std::move(respond));
  }
  const std::string dead = "/console/api/dead-letters/";
  if (path.compare(0, dead.size(), dead) == 0 && path.size() > dead.size() + 7 &&
      path.compare(path.size() - 7, 7, "/replay") == 0) {
    std::string queue = path.substr(dead.size(), path.size() - dead.size() - 7);
    if (queue.empty() || queue.find('/') != std::string::npos || !token_ok(queue))
      return respond(refused(make_error(Errc::invalid_input, "queue: a subscription id or gp-hl7:{ODS}", "queue")));
    if (req.method != "POST") return respond(refused(make_error(Errc::method_not_allowed, "replay accepts POST")));
    return replay_dead(std::move(req), queue, std::move(respond));
  }
  respond(refused(make_error(Errc::not_found, "no such endpoint")));
}

void WebConsole::page(const net::Request& req, const std::string& name, net::Respond respond) {
  (void)req;
  auto it = files_.find(name);
  if (it == files_.end()) {
    if (files_.empty())
      return respond(refused(make_error(Errc::not_found, "the web console's files are not installed (looked in '" +
                                                             web_dir_ + "')")));
    return respond(refused(make_error(Errc::not_found, "no such file")));
  }
  respond(answer(200, it->second.body, it->second.content_type));
}

void WebConsole::status(net::Respond respond, const security::Principal* backlog_for) {
  auto shared = std::make_shared<net::Respond>(std::move(respond));
  std::optional<std::vector<std::string>> hidden;
  if (backlog_for) hidden = policy_.hidden_labels(*backlog_for);
  auto r = store_.run_read([this, shared, hidden = std::move(hidden)] {
    json::Buffer buf;
    json::Writer w(buf);
    w.StartObject();
    w.Key("quarantine");
    auto counts = store_.inbound_counts();
    if (counts) {
      w.StartObject();
      for (const auto& [status, n] : *counts) {
        w.Key(status.c_str(), static_cast<json::SizeType>(status.size()));
        w.Int64(n);
      }
      w.EndObject();
    } else {
      w.Null();
      put(w, "quarantine_unavailable", counts.error().message);
    }
    std::set<std::string> queues;
    for (const char* st : {"pending", "dead", "delivered"}) {
      auto q = store_.subscriptions_with_events(st);
      if (!q) return (*shared)(refused(q.error()));
      for (auto& name : *q) queues.insert(std::move(name));
    }
    int64_t dead_total = 0, pending_total = 0;
    std::string oldest;
    std::string oldest_queue;
    auto write_queue = [&](const std::string& queue, const store::EventCounts& c) {
      w.Key("pending");
      w.Int64(c.pending);
      w.Key("delivered");
      w.Int64(c.delivered);
      w.Key("dead");
      w.Int64(c.dead);
      put(w, "oldest_pending", c.oldest_pending);
      dead_total += c.dead;
      pending_total += c.pending;
      if (!c.oldest_pending.empty() && (oldest.empty() || c.oldest_pending < oldest)) {
        oldest = c.oldest_pending;
        oldest_queue = queue;
      }
    };
    w.Key("subscriptions");
    w.StartArray();
    for (const auto& q : queues) {
      if (q.rfind(events::kGpQueuePrefix, 0) == 0) continue;
      auto c = store_.event_counts(q);
      if (!c) return (*shared)(refused(c.error()));
      w.StartObject();
      put(w, "id", q);
      std::string sub_status, topic, endpoint;
      if (auto res = store_.read("Subscription", q); res && !res->deleted) {
        if (auto d = json::parse(res->body); d && d->IsObject()) {
          if (d->HasMember("status") && (*d)["status"].IsString()) sub_status = (*d)["status"].GetString();
          if (d->HasMember("criteria") && (*d)["criteria"].IsString()) topic = (*d)["criteria"].GetString();
          if (d->HasMember("channel") && (*d)["channel"].IsObject() && (*d)["channel"].HasMember("endpoint") &&
              (*d)["channel"]["endpoint"].IsString())
            endpoint = (*d)["channel"]["endpoint"].GetString();
        }
      }
      put(w, "status", sub_status);
      put(w, "criteria", topic);
      put(w, "endpoint", endpoint);
      write_queue(q, *c);
      // Failing: something given up, or the subscription itself in error.
      w.Key("failing");
      w.Bool(c->dead > 0 || sub_status == "error");
      w.EndObject();
    }
    w.EndArray();
    w.Key("practices");
    w.StartArray();
    for (const auto& q : queues) {
      if (q.rfind(events::kGpQueuePrefix, 0) != 0) continue;
      auto c = store_.event_counts(q);
      if (!c) return (*shared)(refused(c.error()));
      w.StartObject();
      put(w, "practice", std::string_view(q).substr(events::kGpQueuePrefix.size()));
      put(w, "queue", q);
      write_queue(q, *c);
      w.Key("failing");
      w.Bool(c->dead > 0);
      w.EndObject();
    }
    w.EndArray();
    w.Key("dead_letters");
    w.Int64(dead_total);
    w.Key("undelivered");
    w.Int64(pending_total);
    put(w, "oldest_undelivered", oldest);
    put(w, "oldest_undelivered_queue", oldest_queue);
    if (hidden) {
      // Disclosures not yet acknowledged, and escalated, per receiving
      // organisation and topic (docs/FLOWS.md "Acknowledgement and escalation").
      auto b = disclosure_backlog(store_, *hidden);
      if (!b) return (*shared)(refused(b.error()));
      w.Key("acknowledgement");
      w.StartObject();
      for (auto [k, v] : {std::pair<const char*, int64_t>{"unacknowledged", b->unacknowledged},
                          {"escalated", b->escalated}, {"escalated_to_nurse", b->escalated_to_nurse}}) {
        w.Key(k);
        w.Int64(v);
      }
      w.Key("truncated");
      w.Bool(b->truncated);
      w.Key("by_organisation_and_topic");
      w.StartArray();
      for (const auto& row : b->rows) {
        w.StartObject();
        put(w, "organisation", row.organisation);
        put(w, "topic", row.topic);
        for (auto [k, v] : {std::pair<const char*, int64_t>{"unacknowledged", row.unacknowledged},
                            {"escalated", row.escalated}, {"escalated_to_nurse", row.escalated_to_nurse}}) {
          w.Key(k);
          w.Int64(v);
        }
        w.EndObject();
      }
      w.EndArray();
      w.EndObject();
    }
    put(w, "now", clock::iso_ms(clock::now_ms()));
    w.EndObject();
    (*shared)(json_answer(buf));
  });
  if (!r) (*shared)(refused(r.error()));
}

void WebConsole::messages(net::Request req, net::Respond respond) {
  auto params = params_of(req.query);
  if (!params) return respond(refused(params.error()));
  store::InboundFilter f;
  f.limit = 50;
  for (const auto& param : *params) {
    // Named, not a structured binding: a lambda may not capture one before C++20's
    // P1091 (clang 14, the fuzz build, refuses it).
    const std::string& name = param.first;
    const std::string& value = param.second;
    if (value.empty()) continue;
    auto bad = [&](const std::string& why) { return respond(refused(make_error(Errc::invalid_input, name + ": " + why, name))); };
    if (name == "status") {
      if (value == "all") continue;
      if (value != "quarantined" && value != "accepted" && value != "replayed" && value != "superseded")
        return bad("quarantined, accepted, replayed, superseded or all");
      f.status = value;
    } else if (name == "adapter" || name == "channel" || name == "kind" || name == "sender") {
      if (!token_ok(value)) return bad("letters, digits and - _ ^ . : only, at most 64");
      (name == "adapter" ? f.adapter : name == "channel" ? f.channel : name == "kind" ? f.kind : f.sender) = value;
    } else if (name == "from" || name == "to") {
      auto t = instant_text(value);
      if (!t) return bad("a date (YYYY-MM-DD) or an instant (YYYY-MM-DDThh:mm:ssZ)");
      (name == "from" ? f.received_from : f.received_to) = *t;
    } else if (name == "before") {
      auto v = positive(value);
      if (!v) return bad("a message id");
      f.before_id = *v;
    } else if (name == "_count") {
      auto v = positive(value);
      if (!v || *v > kMaxPage) return bad("1 to " + std::to_string(kMaxPage));
      f.limit = static_cast<int>(*v);
    } else {
      return respond(refused(make_error(Errc::invalid_input,
                                        "'" + name +
                                            "' is not a parameter of the message browser (status, adapter, channel, "
                                            "kind, sender, from, to, before, _count)",
                                        name)));
    }
  }
  if (!f.received_from.empty() && !f.received_to.empty() && f.received_to <= f.received_from)
    return respond(refused(make_error(Errc::invalid_input, "to: must be after from", "to")));
  auto shared = std::make_shared<net::Respond>(std::move(respond));
  auto r = store_.run_read([this, shared, f] {
    store::InboundFilter ask = f;
    ask.limit = f.limit + 1;  // one more: is there a next page?
    auto rows = store_.find_inbound(ask);
    if (!rows) return (*shared)(refused(rows.error()));
    bool more = rows->size() > static_cast<size_t>(f.limit);
    if (more) rows->resize(static_cast<size_t>(f.limit));
    json::Buffer buf;
    json::Writer w(buf);
    w.StartObject();
    w.Key("count");
    w.Uint64(rows->size());
    w.Key("messages");
    w.StartArray();
    for (const auto& m : *rows) {
      w.StartObject();
      write_row(w, m);
      w.EndObject();
    }
    w.EndArray();
    if (more) {
      w.Key("next_before");
      w.Int64(rows->back().id);
    }
    w.EndObject();
    (*shared)(json_answer(buf));
  });
  if (!r) (*shared)(refused(r.error()));
}

void WebConsole::message(net::Request req, int64_t id, net::Respond respond) {
  auto shared = std::make_shared<net::Respond>(std::move(respond));
  auto r = store_.run_read([this, shared, id, req = std::move(req)] {
    auto m = store_.get_inbound(id);
    if (!m) return (*shared)(refused(m.error()));
    // The FHIR versions the message became, each checked against what the
    // viewer's role may see (sensitivity labels, scope).
    struct Became {
      store::StoredResource res;
      bool hidden = false;
    };
    std::vector<Became> became;
    std::string patient_ref;
    bool any_hidden = false;
    size_t pos = 0;
    const std::string& written = m->written;
    while (pos < written.size() && became.size() < 200) {
      size_t comma = written.find(',', pos);
      if (comma == std::string::npos) comma = written.size();
      auto seq = positive(std::string_view(written).substr(pos, comma - pos));
      pos = comma + 1;
      if (!seq) continue;
      auto ch = store_.changes_after(*seq - 1, 1);
      if (!ch || ch->empty() || ch->front().seq != *seq) continue;
      const auto& c = ch->front();
      auto v = store_.vread(c.type, c.id, c.version);
      if (!v) continue;
      Became b{std::move(*v), false};
      b.hidden = visibility_.hidden_from(req.principal, b.res, "read");
      any_hidden = any_hidden || b.hidden;
      if (!b.hidden && patient_ref.empty() && b.res.type == "Patient") patient_ref = "Patient/" + b.res.id;
      became.push_back(std::move(b));
    }
    // Reading a kept message is an access to patient data: audited, in
    // the same group commit as other reads (refused loudly when the queue is full).
    store::AuditRow a = audit::row(req.principal, "admin", "inbound/" + std::to_string(id), 200, req.audit_id(),
                                   patient_ref, "console: message viewed");
    if (auto ok = writes_.record({std::move(a)}); !ok) return (*shared)(refused(ok.error()));
    json::Buffer buf;
    json::Writer w(buf);
    w.StartObject();
    write_row(w, *m);
    w.Key("issues");
    if (auto d = json::parse(m->issues_json); d && d->IsArray()) w.RawValue(m->issues_json.data(), m->issues_json.size(), rapidjson::kArrayType);
    else w.StartArray(), w.EndArray();
    put(w, "answer", m->answer);
    w.Key("raw_bytes");
    w.Uint64(m->raw.size());
    // What the message became may carry a label the viewer's role may not
    // see: then its raw input (which holds the same content) is withheld too.
    if (any_hidden) {
      put(w, "raw_withheld", "the message became content whose sensitivity label this role may not see");
    } else {
      if (hl7::is_valid_utf8(m->raw)) put(w, "raw", m->raw);
      else put(w, "raw_base64", base64(m->raw));
    }
    w.Key("became");
    w.StartArray();
    for (const auto& b : became) {
      w.StartObject();
      put(w, "type", b.res.type);
      put(w, "id", b.res.id);
      w.Key("version");
      w.Int64(b.res.version);
      if (b.hidden) {
        put(w, "withheld", "sensitivity label or scope: not shown to this role");
      } else if (!b.res.deleted) {
        if (auto d = json::parse(b.res.body); d && d->IsObject()) {
          w.Key("resource");
          w.RawValue(b.res.body.data(), b.res.body.size(), rapidjson::kObjectType);
        }
      }
      w.EndObject();
    }
    w.EndArray();
    if (written.empty() && m->status != "quarantined")
      put(w, "became_note", "this store does not record which versions a kept message became");
    w.EndObject();
    (*shared)(json_answer(buf));
  });
  if (!r) (*shared)(refused(r.error()));
}

void WebConsole::replay_dead(net::Request req, const std::string& queue, net::Respond respond) {
  auto shared = std::make_shared<net::Respond>(std::move(respond));
  auto r = store_.run_read([this, shared, queue, req = std::move(req)] {
    // The audit row rides in the replay's own unit: no replay without its record.
    auto n = events::RestHookDelivery::replay_dead_letters(
        store_, queue, audit::row(req.principal, "replay", "dead-letters/" + queue, 200, req.audit_id(), {}, "console"));
    if (!n) {
      // Nothing changed: the refusal is recorded like a read's.
      store::AuditRow a = audit::row(req.principal, "replay", "dead-letters/" + queue,
                                     http_status_for(n.error().code), req.audit_id(), {}, "console: refused");
      if (auto ok = writes_.record({std::move(a)}); !ok) log::error("replay_audit_failed", {{"reason", ok.error().message}});
      return (*shared)(refused(n.error()));
    }
    if (subs_ && queue.rfind(events::kGpQueuePrefix, 0) != 0) subs_->delivery().kick(queue);
    (*shared)(answer(200, "{\"replayed\":" + std::to_string(*n) + "}", "application/json; charset=utf-8"));
  });
  if (!r) (*shared)(refused(r.error()));
}

}  // namespace gw::admin
