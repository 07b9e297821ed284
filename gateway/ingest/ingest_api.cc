#include "gateway/ingest/ingest_api.h"

#include <openssl/evp.h>

#include <charconv>
#include <mutex>

#include "gateway/audit/audit_rows.h"
#include "gateway/common/issues.h"
#include "gateway/common/json.h"
#include "gateway/common/log.h"
#include "gateway/hl7/er7.h"

namespace gw::ingest {

namespace {

net::Response json_response(int status, std::string body, const char* route) {
  net::Response r;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body);
  r.route = route;
  return r;
}

net::Response error_response(const Error& e, const char* route) {
  net::Response r;
  r.status = http_status_for(e.code);
  r.body = operation_outcome(e);
  r.route = route;
  return r;
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

// One inbound row as JSON; raw only when asked (it holds patient data).
void write_row(json::Writer& w, const store::InboundRow& m, bool with_raw) {
  w.StartObject();
  w.Key("id");
  w.Int64(m.id);
  put(w, "received", m.received);
  put(w, "adapter", m.adapter);
  put(w, "channel", m.channel);
  put(w, "sender_ods", m.sender_ods);
  put(w, "sender_system", m.sender_system);
  put(w, "control_id", m.control_id);
  put(w, "status", m.status);
  put(w, "reason", m.reason);
  w.Key("issues");
  w.RawValue(m.issues_json.data(), m.issues_json.size(), rapidjson::kArrayType);
  w.Key("raw_bytes");
  w.Uint64(m.raw.size());
  if (m.replay_of) {
    w.Key("replay_of");
    w.Int64(m.replay_of);
  }
  if (with_raw) {
    // Raw bytes may be in 8859/1: text only when it is valid UTF-8, base64 always.
    if (hl7::is_valid_utf8(m.raw)) put(w, "raw", m.raw);
    put(w, "raw_base64", base64(m.raw));
  }
  w.EndObject();
}

void write_result(json::Writer& w, size_t index, const IngestResult& r) {
  w.StartObject();
  w.Key("index");
  w.Uint64(index);
  put(w, "control_id", r.control_id);
  put(w, "outcome", outcome_name(r.outcome));
  // MSA-1 of the ACK the message got, so file senders read the same answer MLLP senders do.
  std::string_view code;
  if (auto p = r.ack.find("MSA"); p != std::string::npos && p + 6 <= r.ack.size()) code = std::string_view(r.ack).substr(p + 4, 2);
  put(w, "ack_code", code);
  if (r.inbound_id) {
    w.Key("inbound_id");
    w.Int64(r.inbound_id);
  }
  w.Key("issues");
  write_issues(w, r.issues);
  w.EndObject();
}

std::string query_value(std::string_view query, std::string_view key) {
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view kv = query.substr(pos, amp - pos);
    if (kv.size() > key.size() && kv.substr(0, key.size()) == key && kv[key.size()] == '=')
      return std::string(kv.substr(key.size() + 1));
    pos = amp + 1;
  }
  return {};
}

}  // namespace

IngestApi::IngestApi(std::map<std::string, Hl7Ingest*> ingesters, std::map<std::string, FileIngest*> files,
                     store::Store& store, const security::Policy& policy)
    : ingesters_(std::move(ingesters)), files_(std::move(files)), store_(store), policy_(policy) {}

void IngestApi::add_answering(const std::string& adapter, net::Handler* pipeline) { answering_[adapter] = pipeline; }

void IngestApi::handle(net::Request req, net::Respond respond) {
  std::string_view path = req.path;
  if (path.rfind("/ingest/", 0) == 0) {
    std::string adapter(path.substr(8));
    auto it = ingesters_.find(adapter);
    auto fit = files_.find(adapter);
    auto ait = answering_.find(adapter);
    if (it == ingesters_.end() && fit == files_.end() && ait == answering_.end()) {
      return respond(error_response(make_error(Errc::not_found, "no ingest adapter '" + adapter.substr(0, 40) + "'"),
                                    "ingest"));
    }
    if (!policy_.allows_operation(req.principal, "ingest:" + adapter)) {
      return respond(error_response(make_error(Errc::forbidden, "role '" + req.principal.role +
                                                                    "' may not send " + adapter + " files"),
                                    "ingest"));
    }
    if (req.method != "POST") {
      return respond(error_response(make_error(Errc::method_not_allowed, "ingest accepts POST"), "ingest"));
    }
    if (ait != answering_.end()) return ait->second->handle(std::move(req), std::move(respond));
    if (fit != files_.end()) return ingest_whole_file(std::move(req), std::move(respond), *fit->second, adapter);
    return ingest_file(std::move(req), std::move(respond), *it->second, adapter);
  }
  if (path == "/admin/quarantine" || path.rfind("/admin/quarantine/", 0) == 0) {
    if (!policy_.allows_operation(req.principal, "admin")) {
      return respond(error_response(
          make_error(Errc::forbidden, "role '" + req.principal.role + "' may not use the admin endpoints"), "admin"));
    }
    if (path == "/admin/quarantine") {
      if (req.method != "GET") {
        return respond(error_response(make_error(Errc::method_not_allowed, "the quarantine list accepts GET"), "admin"));
      }
      return list(std::move(req), std::move(respond));
    }
    std::string_view rest = path.substr(18);
    bool replay_req = false;
    if (auto slash = rest.find('/'); slash != std::string_view::npos) {
      replay_req = rest.substr(slash) == "/replay";
      if (!replay_req) return respond(error_response(make_error(Errc::not_found, "no such endpoint"), "admin"));
      rest = rest.substr(0, slash);
    }
    int64_t id = 0;
    auto [p, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), id);
    if (ec != std::errc() || p != rest.data() + rest.size() || id <= 0) {
      return respond(error_response(make_error(Errc::invalid_input, "message id must be a positive integer"), "admin"));
    }
    if (replay_req) {
      if (req.method != "POST") {
        return respond(error_response(make_error(Errc::method_not_allowed, "replay accepts POST"), "admin"));
      }
      return replay(std::move(req), std::move(respond), id);
    }
    if (req.method != "GET") {
      return respond(error_response(make_error(Errc::method_not_allowed, "a quarantined message accepts GET"), "admin"));
    }
    return show(std::move(req), std::move(respond), id);
  }
  respond(error_response(make_error(Errc::not_found, "no such endpoint"), "ingest"));
}

void IngestApi::ingest_file(net::Request req, net::Respond respond, Hl7Ingest& ingest, const std::string& adapter) {
  struct Run {
    std::mutex mu;
    std::string file;
    std::vector<std::string_view> messages;
    std::vector<IngestResult> results;
    net::Request req;
    net::Respond respond;
    std::string adapter;
    Hl7Ingest* ingest = nullptr;
  };
  auto run = std::make_shared<Run>();
  run->file = std::move(req.body);
  run->req = std::move(req);
  run->respond = std::move(respond);
  run->adapter = adapter;
  run->ingest = &ingest;
  auto split = hl7::split_batch(run->file);
  if (!split || split->empty()) {
    // Not even a batch we can take apart: keep the whole file for inspection.
    Error e = split ? make_error(Errc::invalid_input, "the file holds no HL7 message", "MSH") : split.error();
    store::UnitOfWork u;
    store::InboundRow m;
    m.adapter = adapter;
    m.channel = "http";
    m.sender_ods = run->req.principal.ods;
    m.sender_system = run->req.principal.system;
    m.status = "quarantined";
    m.reason = e.message.substr(0, 500);
    m.issues_json = "[]";
    m.raw = run->file;
    u.inbound.push_back(std::move(m));
    auto r = store_.commit(std::move(u), [run, e](Result<store::CommitOutcome> res) mutable {
      if (res && !res->inbound_ids.empty()) e.message += " (kept as inbound message " + std::to_string(res->inbound_ids[0]) + ")";
      run->respond(error_response(e, "ingest"));
    });
    if (!r) run->respond(error_response(r.error(), "ingest"));
    return;
  }
  run->messages = std::move(*split);
  run->results.resize(run->messages.size());
  // One message at a time, in file order: later messages may update what
  // earlier ones created.
  auto step = std::make_shared<std::function<void(size_t)>>();
  *step = [run, step](size_t i) {
    if (i == run->messages.size()) {
      json::Buffer buf;
      json::Writer w(buf);
      size_t accepted = 0, failed = 0;
      for (const auto& r : run->results) {
        if (r.outcome == Outcome::accepted || r.outcome == Outcome::duplicate) ++accepted;
        else ++failed;
      }
      w.StartObject();
      put(w, "adapter", run->adapter);
      w.Key("messages");
      w.Uint64(run->messages.size());
      w.Key("accepted");
      w.Uint64(accepted);
      w.Key("failed");
      w.Uint64(failed);
      w.Key("results");
      w.StartArray();
      for (size_t k = 0; k < run->results.size(); ++k) write_result(w, k, run->results[k]);
      w.EndArray();
      w.EndObject();
      // 200 when anything was taken (the body lists what was not); 422 when nothing was.
      run->respond(json_response(accepted == 0 ? 422 : 200, std::string(buf.GetString(), buf.GetSize()), "ingest"));
      *step = nullptr;  // break the cycle
      return;
    }
    Source src;
    src.channel = "http";
    src.principal = run->req.principal;
    src.conn_id = run->req.conn_id;
    src.msg_id = run->req.req_id;
    run->ingest->handle(std::string(run->messages[i]), src, [run, step, i](IngestResult r) {
      run->results[i] = std::move(r);
      (*step)(i + 1);
    });
  };
  (*step)(0);
}

void IngestApi::ingest_whole_file(net::Request req, net::Respond respond, FileIngest& ingest,
                                  const std::string& adapter) {
  Source src;
  src.channel = "http";
  src.principal = req.principal;
  src.conn_id = req.conn_id;
  src.msg_id = req.req_id;
  auto shared = std::make_shared<net::Respond>(std::move(respond));
  ingest.handle(std::move(req.body), src, [shared, adapter](FileResult r) {
    json::Buffer buf;
    json::Writer w(buf);
    w.StartObject();
    put(w, "adapter", adapter);
    put(w, "outcome", file_result_name(r.kind));
    put(w, "message", r.message);
    w.Key("resources");
    w.Uint64(r.resources);
    if (r.inbound_id) {
      w.Key("inbound_id");
      w.Int64(r.inbound_id);
    }
    size_t refused = 0;
    for (const auto& i : r.issues)
      if (i.severity == Severity::error || i.severity == Severity::fatal) ++refused;
    w.Key("problems");
    w.Uint64(refused);
    w.Key("planMismatches");
    w.Uint64(r.plan_mismatches);
    w.Key("issues");
    write_issues(w, r.issues);
    w.EndObject();
    int status = r.kind == FileResult::Kind::refused ? 422 : r.kind == FileResult::Kind::unavailable ? 503 : 200;
    (*shared)(json_response(status, std::string(buf.GetString(), buf.GetSize()), "ingest"));
  });
}

void IngestApi::list(net::Request req, net::Respond respond) {
  std::string status = query_value(req.query, "status");
  if (status.empty()) status = "quarantined";
  if (status == "all") status.clear();
  int count = 50;
  int64_t offset = 0;
  if (auto c = query_value(req.query, "_count"); !c.empty()) std::from_chars(c.data(), c.data() + c.size(), count);
  if (auto o = query_value(req.query, "_offset"); !o.empty()) std::from_chars(o.data(), o.data() + o.size(), offset);
  count = std::clamp(count, 1, 500);
  offset = std::max<int64_t>(offset, 0);
  auto shared = std::make_shared<net::Respond>(std::move(respond));
  auto r = store_.run_read([this, shared, status, count, offset] {
    auto rows = store_.list_inbound(status, count, offset);
    if (!rows) return (*shared)(error_response(rows.error(), "admin"));
    json::Buffer buf;
    json::Writer w(buf);
    w.StartObject();
    put(w, "status", status.empty() ? "all" : status);
    w.Key("count");
    w.Uint64(rows->size());
    w.Key("messages");
    w.StartArray();
    for (const auto& m : *rows) write_row(w, m, false);
    w.EndArray();
    w.EndObject();
    (*shared)(json_response(200, std::string(buf.GetString(), buf.GetSize()), "admin"));
  });
  if (!r) (*shared)(error_response(r.error(), "admin"));
}

void IngestApi::show(net::Request req, net::Respond respond, int64_t id) {
  auto shared = std::make_shared<net::Respond>(std::move(respond));
  auto r = store_.run_read([this, shared, id] {
    auto row = store_.get_inbound(id);
    if (!row) return (*shared)(error_response(row.error(), "admin"));
    json::Buffer buf;
    json::Writer w(buf);
    write_row(w, *row, true);
    (*shared)(json_response(200, std::string(buf.GetString(), buf.GetSize()), "admin"));
  });
  if (!r) (*shared)(error_response(r.error(), "admin"));
}

void IngestApi::replay(net::Request req, net::Respond respond, int64_t id) {
  replay_as(req.principal, id, std::move(respond));
}

void IngestApi::replay_as(const security::Principal& principal, int64_t id, net::Respond respond) {
  auto shared = std::make_shared<net::Respond>(std::move(respond));
  auto who = principal;
  // Which adapter owns the row is only known after reading it.
  auto r = store_.run_read([this, shared, id, who] {
    auto row = store_.get_inbound(id);
    if (!row) return (*shared)(error_response(row.error(), "admin"));
    auto it = ingesters_.find(row->adapter);
    if (it == ingesters_.end()) {
      return (*shared)(error_response(make_error(Errc::not_found, "no adapter '" + row->adapter + "' to replay with"),
                                      "admin"));
    }
    it->second->replay(id, who, [this, shared, who, id](Result<IngestResult> res) {
      if (!res) return (*shared)(error_response(res.error(), "admin"));
      json::Buffer buf;
      json::Writer w(buf);
      write_result(w, 0, *res);
      bool ok = res->outcome == Outcome::accepted || res->outcome == Outcome::duplicate;
      int status = ok ? 200 : 422;
      // The message was replayed as its sender (its rows say so, channel
      // "replay"); who asked for it is an audit event of its own, committed
      // before the answer says what became of it.
      store::UnitOfWork u;
      store::AuditRow a = audit::row(who, "replay", "inbound/" + std::to_string(id), status, {}, {},
                                     std::string("replay ") + outcome_name(res->outcome));
      a.channel = std::string(audit::kChannelRest);
      u.audit.push_back(std::move(a));
      auto body = std::make_shared<std::string>(buf.GetString(), buf.GetSize());
      auto c = store_.commit(std::move(u), [shared, body, status](Result<store::CommitOutcome> done) {
        if (!done) log::error("replay_audit_failed", {{"reason", done.error().message}});
        (*shared)(json_response(status, std::move(*body), "admin"));
      });
      if (!c) {
        log::error("replay_audit_failed", {{"reason", c.error().message}});
        (*shared)(json_response(status, std::move(*body), "admin"));
      }
    });
  });
  if (!r) (*shared)(error_response(r.error(), "admin"));
}

}  // namespace gw::ingest
