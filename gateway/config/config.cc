#include "gateway/config/config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <tuple>

#include "gateway/common/json.h"
#include "gateway/common/json_schema.h"
#include "gateway/config/config_schema.h"

namespace gw::config {

// profiles/schemas/config.schema.json, compiled in (gateway/config/config_schema.cc.in).
extern const std::string_view kConfigSchemaText;

namespace {

bool valid_host_name(std::string_view h) {
  for (char ch : h) {
    bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
              ch == '.' || ch == '_';
    if (!ok) return false;
  }
  return !h.empty();
}

}  // namespace

Result<void> parse_rate_limit(std::string_view s, config::Limits& l) {
  // RPS[:BURST]; RPS may be fractional ("0.5" = one request every two seconds).
  std::string text(s);
  auto colon = text.find(':');
  std::string rps = text.substr(0, colon);
  char* end = nullptr;
  double r = std::strtod(rps.c_str(), &end);
  if (rps.empty() || end != rps.c_str() + rps.size() || !(r >= 0) || r > 1e6)
    return make_error(Errc::invalid_input, "'" + text + "' must be RPS[:BURST], RPS a number from 0 (off) to 1000000");
  size_t burst = l.per_principal.burst;
  if (colon != std::string::npos) {
    std::string b = text.substr(colon + 1);
    unsigned long n = 0;
    auto [e, ec] = std::from_chars(b.data(), b.data() + b.size(), n);
    if (b.empty() || ec != std::errc() || e != b.data() + b.size() || n < 1 || n > 1'000'000)
      return make_error(Errc::invalid_input, "'" + text + "': BURST must be a whole number from 1 to 1000000");
    burst = n;
  }
  l.per_principal.rate_per_second = r;
  l.per_principal.burst = burst;
  return {};
}

Result<Listen> parse_listen(std::string_view s) {
  const std::string quoted = "'" + std::string(s) + "'";
  std::string_view host;
  std::string_view port;
  bool v6 = false;
  if (!s.empty() && s.front() == '[') {
    size_t close = s.find(']');
    if (close == std::string_view::npos) {
      return make_error(Errc::invalid_input, "listen address " + quoted + " has '[' without a closing ']'");
    }
    host = s.substr(1, close - 1);
    std::string_view rest = s.substr(close + 1);
    if (rest.empty() || rest.front() != ':') {
      return make_error(Errc::invalid_input, "listen address " + quoted + " needs ':PORT' after the ']'");
    }
    port = rest.substr(1);
    v6 = true;
  } else {
    size_t colon = s.rfind(':');
    if (colon == std::string_view::npos) {
      return make_error(Errc::invalid_input, "listen address " + quoted + " must be HOST:PORT, [IPv6]:PORT or :PORT");
    }
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return make_error(Errc::invalid_input,
                        "host '" + std::string(host) + "' looks like an IPv6 address; write it in brackets, [addr]:PORT");
    }
  }

  Listen out;
  if (v6) {
    in6_addr addr{};
    // inet_pton does not know zone ids (fe80::1%eth0), which a server listen address does not need.
    if (inet_pton(AF_INET6, std::string(host).c_str(), &addr) != 1) {
      return make_error(Errc::invalid_input, "host '" + std::string(host) + "' is not an IPv6 address");
    }
    out.host = std::string(host);
  } else if (host.empty()) {
    out.host = "127.0.0.1";  // loopback unless asked otherwise: clinical data is never exposed by default
  } else if (!valid_host_name(host)) {
    return make_error(Errc::invalid_input, "host '" + std::string(host) + "' is not a host name or IPv4 address");
  } else {
    out.host = std::string(host);
  }

  if (port.empty()) return make_error(Errc::invalid_input, "listen address " + quoted + " has no port");
  unsigned long n = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
  if (ec == std::errc::result_out_of_range || (ec == std::errc() && end == port.data() + port.size() && n > 65535)) {
    return make_error(Errc::invalid_input, "port '" + std::string(port) + "' is out of range 0-65535");
  }
  if (ec != std::errc() || end != port.data() + port.size()) {
    return make_error(Errc::invalid_input, "port '" + std::string(port) + "' is not a number");
  }
  // Port 0 is allowed: the kernel picks one, which is what tests need.
  out.port = static_cast<uint16_t>(n);
  return out;
}

Result<void> set_store_engine(std::string_view engine, Config& c) {
  if (engine != "sqlite" && engine != "postgresql")
    return make_error(Errc::invalid_input, "must be sqlite or postgresql, not '" + std::string(engine) + "'");
  c.store_engine = std::string(engine);
  return {};
}

Result<void> check_store(const Config& c) {
  if (c.store_engine == "postgresql" && c.store_conninfo.empty())
    return make_error(Errc::invalid_input, "store.engine postgresql needs store.conninfo (or --store-conninfo)");
  return {};
}

std::string_view config_schema_text() { return kConfigSchemaText; }

namespace {

using json::Value;

const json::Schema& config_schema() {
  // Compiled once; the text is part of the binary, so a failure is a build defect.
  static const json::Schema schema = [] {
    auto s = json::Schema::parse(kConfigSchemaText, "config.schema.json");
    if (!s) throw std::logic_error("the compiled-in config schema does not parse: " + s.error().message);
    return std::move(*s);
  }();
  return schema;
}

// "/mllp/allow/0/cidr" -> "mllp.allow[0].cidr", the name an operator knows a setting by.
std::string setting_name(std::string_view pointer) {
  std::string out;
  size_t at = 0;
  while (at < pointer.size()) {
    size_t next = pointer.find('/', at + 1);
    std::string_view tok = pointer.substr(at + 1, next == std::string_view::npos ? std::string_view::npos : next - at - 1);
    bool index = !tok.empty() && std::all_of(tok.begin(), tok.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
    if (index) out += "[" + std::string(tok) + "]";
    else out += (out.empty() ? "" : ".") + std::string(tok);
    if (next == std::string_view::npos) break;
    at = next;
  }
  return out;
}

// A problem the schema cannot see (an address that does not parse, an ODS
// code listed twice), found while the checked file is read into Config.
struct Semantic {
  std::string pointer;
  std::string message;  // after the setting's name: " names a practice listed before"
};

// A place in the file: the value there (null when absent), its JSON pointer,
// and the same pointer with "*" for array indexes, under which the read is
// recorded (config_keys_read) to be compared with the schema's keys.
struct Node {
  const Value* v = nullptr;
  std::string ptr;
  std::string pattern;
};

class Reader {
 public:
  explicit Reader(std::set<std::string>* asked) : asked_(asked) {}

  Node child(const Node& n, const char* key) {
    Node out{nullptr, n.ptr + "/" + key, n.pattern + "/" + key};
    if (asked_) asked_->insert(out.pattern);
    if (n.v && n.v->IsObject()) out.v = json::member(*n.v, key);
    return out;
  }
  // Calls fn(item) for each item of an array. With none it still calls fn
  // once on an absent item, so that the keys an item is read by are recorded.
  template <class F>
  void items(const Node& n, F&& fn) {
    if (n.v && n.v->IsArray() && !n.v->Empty()) {
      for (json::SizeType i = 0; i < n.v->Size(); ++i)
        fn(Node{&(*n.v)[i], n.ptr + "/" + std::to_string(i), n.pattern + "/*"});
    } else {
      fn(Node{nullptr, n.ptr + "/*", n.pattern + "/*"});
    }
  }

  // The schema has checked types and ranges; these only guard against a
  // file with problems (still read, for the semantic checks' sake).
  void str(const Node& n, std::string& out) {
    if (n.v && n.v->IsString()) out = std::string(json::as_view(*n.v));
  }
  template <class T>
  void integer(const Node& n, T& out) {
    if (n.v && n.v->IsInt64()) out = static_cast<T>(n.v->GetInt64());
  }
  template <class D>
  void duration(const Node& n, D& out) {
    if (n.v && n.v->IsInt64()) out = D(n.v->GetInt64());
  }
  void number(const Node& n, double& out) {
    if (n.v && n.v->IsNumber()) out = n.v->GetDouble();
  }
  void boolean(const Node& n, bool& out) {
    if (n.v && n.v->IsBool()) out = n.v->GetBool();
  }
  bool listen(const Node& n, Listen& out) {
    if (!n.v || !n.v->IsString()) return false;
    auto l = parse_listen(json::as_view(*n.v));
    if (!l) {
      problems.push_back({n.ptr, ": " + l.error().message});
      return false;
    }
    out = *l;
    return true;
  }
  void listen(const Node& n, std::optional<Listen>& out) {
    Listen l;
    if (listen(n, l)) out = l;
  }
  bool present(const Node& n) const { return n.v != nullptr; }

  std::vector<Semantic> problems;

 private:
  std::set<std::string>* asked_;
};

// Reads a file the schema has checked into Config: every key the gateway
// knows is asked for here by name, so `asked` (when given) ends up holding
// exactly the keys the code reads.
Config read_config(const Value& root, Reader& r) {
  Config c;
  Node top{&root, "", ""};
  r.str(r.child(top, "data_dir"), c.data_dir);
  if (Node p = r.child(top, "profiles_dir"); r.present(p)) {
    r.str(p, c.profiles_dir);
    c.profiles_dir_given = true;
  }

  Node https = r.child(top, "https");
  r.listen(r.child(https, "listen"), c.https);
  r.integer(r.child(https, "threads"), c.network_threads);

  Node tls = r.child(top, "tls");
  r.str(r.child(tls, "cert"), c.tls_cert);
  r.str(r.child(tls, "key"), c.tls_key);
  r.str(r.child(tls, "client_ca"), c.client_ca);
  Node crls = r.child(tls, "crl_files");
  if (r.present(crls)) c.tls_crls.clear();
  r.items(crls, [&](const Node& f) {
    if (f.v && f.v->IsString()) c.tls_crls.emplace_back(json::as_view(*f.v));
  });

  Node limits = r.child(top, "limits");
  Limits& l = c.limits;
  r.integer(r.child(limits, "header_bytes"), l.header_bytes);
  r.integer(r.child(limits, "body_bytes"), l.body_bytes);
  r.integer(r.child(limits, "max_connections"), l.max_connections);
  r.integer(r.child(limits, "max_pipelined"), l.max_pipelined);
  r.integer(r.child(limits, "max_query_params"), l.max_query_params);
  r.duration(r.child(limits, "handshake_timeout_ms"), l.handshake_timeout);
  r.duration(r.child(limits, "read_timeout_ms"), l.read_timeout);
  r.duration(r.child(limits, "idle_timeout_ms"), l.idle_timeout);
  r.duration(r.child(limits, "handler_timeout_ms"), l.handler_timeout);
  r.number(r.child(limits, "rate_per_principal"), l.per_principal.rate_per_second);
  r.integer(r.child(limits, "burst"), l.per_principal.burst);
  r.integer(r.child(limits, "max_concurrent_per_principal"), l.per_principal.max_concurrent);

  Node store = r.child(top, "store");
  r.str(r.child(store, "engine"), c.store_engine);
  r.str(r.child(store, "conninfo"), c.store_conninfo);
  r.integer(r.child(store, "reader_threads"), c.store_reader_threads);
  r.integer(r.child(store, "writer_queue"), c.store_writer_queue);
  r.integer(r.child(store, "max_batch"), c.store_max_batch);
  r.integer(r.child(store, "writer_cache_mib"), c.store_writer_cache_mib);

  r.listen(r.child(r.child(top, "ops"), "listen"), c.ops_listen);

  Node mllp = r.child(top, "mllp");
  MllpConfig& m = c.mllp;
  r.listen(r.child(mllp, "listen"), m.plain);
  r.listen(r.child(mllp, "tls_listen"), m.tls);
  Node allow = r.child(mllp, "allow");
  if (r.present(allow)) m.allow.clear();  // replaces the loopback default
  r.items(allow, [&](const Node& item) {
    MllpAllow a;
    r.str(r.child(item, "cidr"), a.cidr);
    r.str(r.child(item, "ods"), a.ods);
    r.str(r.child(item, "system"), a.system);
    if (a.system.empty()) a.system = a.ods;
    if (item.v) m.allow.push_back(std::move(a));
  });
  r.integer(r.child(mllp, "max_frame_bytes"), m.max_frame_bytes);
  r.integer(r.child(mllp, "max_in_flight"), m.max_in_flight);
  r.integer(r.child(mllp, "max_connections"), m.max_connections);
  r.duration(r.child(mllp, "idle_timeout_ms"), m.idle_timeout);
  r.duration(r.child(mllp, "handler_timeout_ms"), m.handler_timeout);
  r.duration(r.child(mllp, "frame_timeout_ms"), m.frame_timeout);

  Node subs = r.child(top, "subscriptions");
  SubscriptionsConfig& s = c.subscriptions;
  r.boolean(r.child(subs, "enabled"), s.enabled);
  r.integer(r.child(subs, "delivery_workers"), s.delivery_workers);
  r.duration(r.child(subs, "first_retry_ms"), s.first_retry);
  r.duration(r.child(subs, "max_backoff_ms"), s.max_backoff);
  r.duration(r.child(subs, "retry_for_seconds"), s.retry_for);
  r.duration(r.child(subs, "post_timeout_ms"), s.post_timeout);
  r.number(r.child(subs, "jitter"), s.jitter);
  r.integer(r.child(subs, "max_events_per_notification"), s.max_events_per_notification);
  r.duration(r.child(subs, "poll_ms"), s.poll);
  r.str(r.child(subs, "endpoint_ca"), s.endpoint_ca);

  r.integer(r.child(r.child(top, "audit"), "retention_days"), c.audit_retention_days);

  Node gp = r.child(top, "gp_hl7");
  GpHl7Config& g = c.gp_hl7;
  r.boolean(r.child(gp, "enabled"), g.enabled);
  {
    Node practices = r.child(gp, "practices");
    std::set<std::string> seen;
    r.items(practices, [&](const Node& item) {
      GpPractice p;
      Node ods = r.child(item, "ods");
      r.str(ods, p.ods);
      Node address = r.child(item, "address");
      if (r.listen(address, p.address) && p.address.port == 0)
        r.problems.push_back({address.ptr, " needs a port other than 0"});
      r.boolean(r.child(item, "tls"), p.tls);
      if (!item.v) return;
      if (!p.ods.empty() && !seen.insert(p.ods).second) r.problems.push_back({ods.ptr, " names a practice listed before"});
      g.practices.push_back(std::move(p));
    });
  }
  r.duration(r.child(gp, "first_retry_ms"), g.first_retry);
  r.duration(r.child(gp, "max_backoff_ms"), g.max_backoff);
  r.duration(r.child(gp, "retry_for_seconds"), g.retry_for);
  r.duration(r.child(gp, "poll_ms"), g.poll);
  r.integer(r.child(gp, "workers"), g.workers);
  r.duration(r.child(gp, "connect_timeout_ms"), g.connect_timeout);
  r.duration(r.child(gp, "ack_timeout_ms"), g.ack_timeout);
  r.str(r.child(gp, "endpoint_ca"), g.endpoint_ca);

  Node users = r.child(top, "users");
  {
    Node issuers = r.child(users, "issuers");
    std::set<std::string> seen;
    r.items(issuers, [&](const Node& item) {
      TrustedIssuer t;
      Node iss = r.child(item, "issuer");
      r.str(iss, t.issuer);
      r.str(r.child(item, "audience"), t.audience);
      r.str(r.child(item, "jwks_file"), t.jwks_file);
      if (!item.v) return;
      if (!t.issuer.empty() && !seen.insert(t.issuer).second)
        r.problems.push_back({iss.ptr, " names an issuer listed before"});
      c.users.issuers.push_back(std::move(t));
    });
  }
  r.integer(r.child(users, "leeway_seconds"), c.users.leeway_seconds);

  r.duration(r.child(top, "shutdown_grace_ms"), c.shutdown_grace);
  r.str(r.child(top, "log_level"), c.log_level);
  r.str(r.child(top, "public_base_url"), c.public_base_url);
  // Links are built as base + "/Patient/...", so a trailing '/' would double up.
  while (!c.public_base_url.empty() && c.public_base_url.back() == '/') c.public_base_url.pop_back();
  return c;
}

// RapidJSON keeps both members of a key given twice and finds the first:
// refused, since the operator meant one of them.
void duplicate_keys(const Value& v, const std::string& ptr, std::vector<Semantic>& out) {
  if (v.IsObject()) {
    std::set<std::string_view> seen;
    for (const auto& m : v.GetObject()) {
      std::string_view key = json::as_view(m.name);
      std::string p = ptr + "/" + std::string(key);
      if (!seen.insert(key).second) out.push_back({p, " appears more than once"});
      duplicate_keys(m.value, p, out);
    }
  } else if (v.IsArray()) {
    for (json::SizeType i = 0; i < v.Size(); ++i) duplicate_keys(v[i], ptr + "/" + std::to_string(i), out);
  }
}

struct Problem {
  size_t line = 0, column = 0;
  std::string pointer, setting, message;
};

// Every problem of `text` (schema first, then what it cannot express), in
// the file's order; on success the Config.
Result<Config> check_and_read(std::string_view text, const std::string& name) {
  std::vector<Problem> found;
  for (auto& sp : config_schema().problems(text)) {
    Problem p{sp.line, sp.column, sp.pointer, setting_name(sp.pointer), {}};
    if (sp.keyword.empty()) {
      p.message = sp.message;  // not JSON: nothing more to check
    } else if (sp.keyword == "additionalProperties") {
      p.message = p.setting + " is not a known setting";
    } else {
      std::string who = p.setting.empty() ? "the config" : p.setting;
      p.message = sp.message.rfind("must ", 0) == 0 ? who + " " + sp.message : who + ": " + sp.message;
    }
    found.push_back(std::move(p));
  }
  std::optional<Config> config;
  json::Document doc;
  doc.Parse(text.data(), text.size());
  if (!doc.HasParseError() && doc.IsObject()) {
    Reader r(nullptr);
    config = read_config(doc, r);
    duplicate_keys(doc, "", r.problems);
    for (auto& s : r.problems) {
      auto [line, column] = json::position_of(text, s.pointer);
      std::string setting = setting_name(s.pointer);
      found.push_back({line, column, s.pointer, setting, setting + s.message});
    }
  }
  if (found.empty() && config) return std::move(*config);
  std::stable_sort(found.begin(), found.end(), [](const Problem& a, const Problem& b) {
    return std::tie(a.line, a.column) < std::tie(b.line, b.column);
  });
  // "FILE: N problems", then each as FILE:LINE:COLUMN: message (at POINTER),
  // like the profile checks; the first one's setting as the expression.
  std::string msg = "config file " + name + ": " + std::to_string(found.size()) + " problem" + (found.size() == 1 ? "" : "s");
  for (const auto& p : found) {
    msg += "\n  " + name + ":" + std::to_string(p.line) + ":" + std::to_string(p.column) + ": " + p.message;
    if (!p.pointer.empty()) msg += " (at " + p.pointer + ")";
  }
  return make_error(Errc::invalid_input, msg, found.front().setting);
}

}  // namespace

std::vector<std::string> config_keys_read() {
  std::set<std::string> asked;
  Reader r(&asked);
  json::Document empty;
  empty.SetObject();
  (void)read_config(empty, r);
  return {asked.begin(), asked.end()};
}

Result<Config> parse_config(std::string_view json_text) { return check_and_read(json_text, "config"); }

Result<Config> load_config_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return make_error(Errc::invalid_input, "cannot read config file " + path + ": " + std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return make_error(Errc::invalid_input, "cannot read config file " + path);
  return check_and_read(text.str(), path);
}

}  // namespace gw::config
