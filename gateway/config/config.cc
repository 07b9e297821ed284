#include "gateway/config/config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <charconv>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <set>
#include <sstream>

#include "gateway/common/json.h"
#include "gateway/common/json_schema.h"

namespace gw::config {

namespace {

using json::Value;

Error bad(const std::string& path, const std::string& what) {
  return make_error(Errc::invalid_input, path + " " + what, path);
}

std::string child(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

Result<std::string> want_string(const Value& v, const std::string& path, bool allow_empty) {
  if (!v.IsString()) return bad(path, "must be a string");
  std::string s(v.GetString(), v.GetStringLength());
  if (s.empty() && !allow_empty) return bad(path, "must not be empty");
  return s;
}

Result<int64_t> want_int(const Value& v, const std::string& path, int64_t lo, int64_t hi) {
  const std::string range = "between " + std::to_string(lo) + " and " + std::to_string(hi);
  if (!v.IsNumber()) return bad(path, "must be an integer " + range);
  // Larger than int64: certainly out of any range we accept.
  if (v.IsUint64() && !v.IsInt64()) return bad(path, "must be " + range);
  if (!v.IsInt64()) return bad(path, "must be an integer " + range + ", not a fraction");
  int64_t n = v.GetInt64();
  if (n < lo || n > hi) return bad(path, "must be " + range + ", not " + std::to_string(n));
  return n;
}

// Where parse_config collects every problem of a file (so the operator
// fixes them in one pass); null outside it, and each_member stops at the first.
thread_local std::vector<Error>* t_problems = nullptr;

// Walks one JSON object; on_key returns false for a key it does not know.
// Duplicate keys are refused because RapidJSON would silently keep one of them.
// A wrong member is collected and the walk goes on to the next.
template <class F>
Result<void> each_member(const Value& obj, const std::string& path, F&& on_key) {
  if (!obj.IsObject()) return bad(path, "must be an object");
  std::set<std::string_view> seen;
  for (const auto& m : obj.GetObject()) {
    std::string_view key(m.name.GetString(), m.name.GetStringLength());
    std::string p = child(path, key);
    std::optional<Error> problem;
    if (!seen.insert(key).second) {
      problem = bad(p, "appears more than once");
    } else {
      Result<bool> known = on_key(key, m.value, p);
      if (!known) problem = known.error();
      else if (!*known) problem = make_error(Errc::invalid_input, p + " is not a known setting", p);
    }
    if (!problem) continue;
    if (!t_problems) return *problem;
    t_problems->push_back(std::move(*problem));
  }
  return {};
}

// "mllp.allow[0].cidr" -> "/mllp/allow/0/cidr"
std::string pointer_of(std::string_view path) {
  std::string out;
  if (!path.empty()) out.push_back('/');
  for (char c : path) {
    if (c == '.' || c == '[') out.push_back('/');
    else if (c != ']') out.push_back(c);
  }
  return out;
}

constexpr int64_t kMaxMs = 3'600'000;  // an hour: anything longer is a typo, not a timeout

Result<bool> set_int(const Value& v, const std::string& p, int64_t lo, int64_t hi, auto& out) {
  auto n = want_int(v, p, lo, hi);
  if (!n) return n.error();
  out = static_cast<std::remove_reference_t<decltype(out)>>(*n);
  return true;
}

Result<bool> set_ms(const Value& v, const std::string& p, int64_t lo, std::chrono::milliseconds& out) {
  auto n = want_int(v, p, lo, kMaxMs);
  if (!n) return n.error();
  out = std::chrono::milliseconds(*n);
  return true;
}

Result<bool> set_string(const Value& v, const std::string& p, bool allow_empty, std::string& out) {
  auto s = want_string(v, p, allow_empty);
  if (!s) return s.error();
  out = std::move(*s);
  return true;
}

Result<void> parse_https(const Value& obj, const std::string& path, Config& c) {
  return each_member(obj, path, [&](std::string_view k, const Value& v, const std::string& p) -> Result<bool> {
    if (k == "listen") {
      auto s = want_string(v, p, false);
      if (!s) return s.error();
      auto l = parse_listen(*s);
      if (!l) return make_error(Errc::invalid_input, p + ": " + l.error().message, p);
      c.https = *l;
      return true;
    }
    if (k == "threads") return set_int(v, p, 1, 256, c.network_threads);
    return false;
  });
}

Result<void> parse_tls(const Value& obj, const std::string& path, Config& c) {
  return each_member(obj, path, [&](std::string_view k, const Value& v, const std::string& p) -> Result<bool> {
    if (k == "cert") return set_string(v, p, false, c.tls_cert);
    if (k == "key") return set_string(v, p, false, c.tls_key);
    if (k == "client_ca") return set_string(v, p, false, c.client_ca);
    if (k == "crl_files") {
      if (!v.IsArray()) return bad(p, "must be an array of file names");
      c.tls_crls.clear();
      for (json::SizeType i = 0; i < v.Size(); ++i) {
        std::string f;
        auto r = set_string(v[i], p + "[" + std::to_string(i) + "]", false, f);
        if (!r) return r.error();
        c.tls_crls.push_back(std::move(f));
      }
      return true;
    }
    return false;
  });
}

Result<void> parse_limits(const Value& obj, const std::string& path, config::Limits& l) {
  return each_member(obj, path, [&](std::string_view k, const Value& v, const std::string& p) -> Result<bool> {
    // Below 1 KiB not even a request line with the usual headers fits.
    if (k == "header_bytes") return set_int(v, p, 1024, 1024 * 1024, l.header_bytes);
    if (k == "body_bytes") return set_int(v, p, 1, int64_t{1} << 30, l.body_bytes);
    if (k == "max_connections") return set_int(v, p, 1, 1'000'000, l.max_connections);
    if (k == "max_pipelined") return set_int(v, p, 1, 1024, l.max_pipelined);
    if (k == "max_query_params") return set_int(v, p, 1, 10'000, l.max_query_params);
    if (k == "handshake_timeout_ms") return set_ms(v, p, 1, l.handshake_timeout);
    if (k == "read_timeout_ms") return set_ms(v, p, 1, l.read_timeout);
    if (k == "idle_timeout_ms") return set_ms(v, p, 1, l.idle_timeout);
    if (k == "handler_timeout_ms") return set_ms(v, p, 1, l.handler_timeout);
    if (k == "rate_per_principal") {
      if (!v.IsNumber() || v.GetDouble() < 0 || v.GetDouble() > 1e6) return bad(p, "must be a number from 0 (off) to 1000000");
      l.per_principal.rate_per_second = v.GetDouble();
      return true;
    }
    if (k == "burst") return set_int(v, p, 1, 1'000'000, l.per_principal.burst);
    if (k == "max_concurrent_per_principal") return set_int(v, p, 0, 1'000'000, l.per_principal.max_concurrent);
    return false;
  });
}

Result<Listen> want_listen(const Value& v, const std::string& p) {
  auto s = want_string(v, p, false);
  if (!s) return s.error();
  auto l = parse_listen(*s);
  if (!l) return make_error(Errc::invalid_input, p + ": " + l.error().message, p);
  return *l;
}

Result<void> parse_mllp(const Value& obj, const std::string& path, MllpConfig& m) {
  return each_member(obj, path, [&](std::string_view k, const Value& v, const std::string& p) -> Result<bool> {
    if (k == "listen" || k == "tls_listen") {
      auto l = want_listen(v, p);
      if (!l) return l.error();
      (k == "listen" ? m.plain : m.tls) = *l;
      return true;
    }
    if (k == "allow") {
      if (!v.IsArray()) return bad(p, "must be an array of {cidr, ods, system}");
      m.allow.clear();
      for (json::SizeType i = 0; i < v.Size(); ++i) {
        std::string ip = p + "[" + std::to_string(i) + "]";
        MllpAllow a;
        auto r = each_member(v[i], ip, [&](std::string_view ak, const Value& av, const std::string& ap) -> Result<bool> {
          if (ak == "cidr") return set_string(av, ap, false, a.cidr);
          if (ak == "ods") return set_string(av, ap, false, a.ods);
          if (ak == "system") return set_string(av, ap, false, a.system);
          return false;
        });
        if (!r) return r.error();
        if (a.cidr.empty() || a.ods.empty()) return bad(ip, "needs cidr and ods");
        if (a.system.empty()) a.system = a.ods;
        m.allow.push_back(std::move(a));
      }
      return true;
    }
    if (k == "max_frame_bytes") return set_int(v, p, 1024, int64_t{64} << 20, m.max_frame_bytes);
    if (k == "max_in_flight") return set_int(v, p, 1, 1024, m.max_in_flight);
    if (k == "max_connections") return set_int(v, p, 1, 100'000, m.max_connections);
    if (k == "idle_timeout_ms") return set_ms(v, p, 1, m.idle_timeout);
    if (k == "handler_timeout_ms") return set_ms(v, p, 1, m.handler_timeout);
    if (k == "frame_timeout_ms") return set_ms(v, p, 1, m.frame_timeout);
    return false;
  });
}

Result<void> parse_ops(const Value& obj, const std::string& path, Config& c) {
  return each_member(obj, path, [&](std::string_view k, const Value& v, const std::string& p) -> Result<bool> {
    if (k == "listen") {
      auto l = want_listen(v, p);
      if (!l) return l.error();
      c.ops_listen = *l;
      return true;
    }
    return false;
  });
}

}  // namespace

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

namespace {

Result<void> parse_store(const Value& obj, const std::string& path, Config& c) {
  return each_member(obj, path, [&](std::string_view k, const Value& v, const std::string& p) -> Result<bool> {
    if (k == "reader_threads") return set_int(v, p, 1, 256, c.store_reader_threads);
    if (k == "writer_queue") return set_int(v, p, 1, 10'000'000, c.store_writer_queue);
    if (k == "max_batch") return set_int(v, p, 1, 100'000, c.store_max_batch);
    if (k == "writer_cache_mib") return set_int(v, p, 16, 65'536, c.store_writer_cache_mib);
    if (k == "engine") {
      auto s = want_string(v, p, false);
      if (!s) return s.error();
      if (auto r = set_store_engine(*s, c); !r) return bad(p, r.error().message);
      return true;
    }
    if (k == "conninfo") return set_string(v, p, false, c.store_conninfo);
    return false;
  });
}

Result<void> parse_subscriptions(const Value& obj, const std::string& path, SubscriptionsConfig& s) {
  return each_member(obj, path, [&](std::string_view k, const Value& v, const std::string& p) -> Result<bool> {
    if (k == "enabled") {
      if (!v.IsBool()) return bad(p, "must be true or false");
      s.enabled = v.GetBool();
      return true;
    }
    if (k == "delivery_workers") return set_int(v, p, 1, 1024, s.delivery_workers);
    if (k == "first_retry_ms") return set_ms(v, p, 1, s.first_retry);
    if (k == "max_backoff_ms") return set_ms(v, p, 1, s.max_backoff);
    if (k == "retry_for_seconds") {
      auto n = want_int(v, p, 1, int64_t{365} * 24 * 3600);
      if (!n) return n.error();
      s.retry_for = std::chrono::seconds(*n);
      return true;
    }
    if (k == "post_timeout_ms") return set_ms(v, p, 1, s.post_timeout);
    if (k == "jitter") {
      if (!v.IsNumber() || v.GetDouble() < 0 || v.GetDouble() >= 1) return bad(p, "must be a number in [0, 1)");
      s.jitter = v.GetDouble();
      return true;
    }
    if (k == "max_events_per_notification") return set_int(v, p, 1, 10'000, s.max_events_per_notification);
    if (k == "poll_ms") return set_ms(v, p, 10, s.poll);
    if (k == "endpoint_ca") return set_string(v, p, false, s.endpoint_ca);
    return false;
  });
}

Result<GpPractice> parse_practice(const Value& v, const std::string& path) {
  GpPractice g;
  bool has_address = false;
  auto r = each_member(v, path, [&](std::string_view k, const Value& pv, const std::string& p) -> Result<bool> {
    if (k == "ods") return set_string(pv, p, false, g.ods);
    if (k == "address") {
      auto l = want_listen(pv, p);
      if (!l) return l.error();
      if (l->port == 0) return bad(p, "needs a port other than 0");
      g.address = *l;
      has_address = true;
      return true;
    }
    if (k == "tls") {
      if (!pv.IsBool()) return bad(p, "must be true or false");
      g.tls = pv.GetBool();
      return true;
    }
    return false;
  });
  if (!r) return r.error();
  if (g.ods.empty() || !has_address) return bad(path, "needs ods and address");
  return g;
}

Result<void> parse_gp_hl7(const Value& obj, const std::string& path, GpHl7Config& g) {
  return each_member(obj, path, [&](std::string_view k, const Value& v, const std::string& p) -> Result<bool> {
    if (k == "enabled") {
      if (!v.IsBool()) return bad(p, "must be true or false");
      g.enabled = v.GetBool();
      return true;
    }
    if (k == "practices") {
      if (!v.IsArray()) return bad(p, "must be an array of {ods, address, tls}");
      g.practices.clear();
      std::set<std::string> seen;
      for (json::SizeType i = 0; i < v.Size(); ++i) {
        std::string ip = p + "[" + std::to_string(i) + "]";
        auto one = parse_practice(v[i], ip);
        if (!one) return one.error();
        if (!seen.insert(one->ods).second) return bad(ip + ".ods", "names a practice listed before");
        g.practices.push_back(std::move(*one));
      }
      return true;
    }
    if (k == "first_retry_ms") return set_ms(v, p, 1, g.first_retry);
    if (k == "max_backoff_ms") return set_ms(v, p, 1, g.max_backoff);
    if (k == "retry_for_seconds") {
      auto n = want_int(v, p, 1, int64_t{365} * 24 * 3600);
      if (!n) return n.error();
      g.retry_for = std::chrono::seconds(*n);
      return true;
    }
    if (k == "poll_ms") return set_ms(v, p, 10, g.poll);
    if (k == "workers") return set_int(v, p, 1, 256, g.workers);
    if (k == "connect_timeout_ms") return set_ms(v, p, 1, g.connect_timeout);
    if (k == "ack_timeout_ms") return set_ms(v, p, 1, g.ack_timeout);
    if (k == "endpoint_ca") return set_string(v, p, false, g.endpoint_ca);
    return false;
  });
}

Result<void> parse_users(const Value& obj, const std::string& path, UsersConfig& u) {
  return each_member(obj, path, [&](std::string_view k, const Value& v, const std::string& p) -> Result<bool> {
    if (k == "issuers") {
      if (!v.IsArray()) return bad(p, "must be an array of {issuer, audience, jwks_file}");
      u.issuers.clear();
      std::set<std::string> seen;
      for (json::SizeType i = 0; i < v.Size(); ++i) {
        std::string ip = p + "[" + std::to_string(i) + "]";
        TrustedIssuer t;
        auto r = each_member(v[i], ip, [&](std::string_view ik, const Value& iv, const std::string& iq) -> Result<bool> {
          if (ik == "issuer") return set_string(iv, iq, false, t.issuer);
          if (ik == "audience") return set_string(iv, iq, false, t.audience);
          if (ik == "jwks_file") return set_string(iv, iq, false, t.jwks_file);
          return false;
        });
        if (!r) return r.error();
        if (t.issuer.empty()) return bad(ip + ".issuer", "is required");
        if (t.audience.empty()) return bad(ip + ".audience", "is required");
        if (t.jwks_file.empty()) return bad(ip + ".jwks_file", "is required");
        if (!seen.insert(t.issuer).second) return bad(ip + ".issuer", "names an issuer listed before");
        u.issuers.push_back(std::move(t));
      }
      return true;
    }
    if (k == "leeway_seconds") return set_int(v, p, 0, 300, u.leeway_seconds);
    return false;
  });
}

Result<bool> sub(Result<void> r) {
  if (!r) return r.error();
  return true;
}

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

namespace {

// Every problem of the text, each as "NAME:LINE:COLUMN: path message" with
// its expression the key's path; on success the Config.
Result<Config> parse_config_named(std::string_view json_text, const std::string& name, std::vector<Error>& problems);

std::string at(std::string_view text, const std::string& name, const std::string& path) {
  auto [line, column] = json::position_of(text, pointer_of(path));
  if (line == 0) return name + ": ";
  return name + ":" + std::to_string(line) + ":" + std::to_string(column) + ": ";
}

}  // namespace

Result<Config> parse_config(std::string_view json_text) {
  std::vector<Error> problems;
  auto c = parse_config_named(json_text, "config", problems);
  if (c || problems.size() <= 1) return c;
  // Every problem, one a line; the first one's path as the expression.
  Error e = problems.front();
  for (size_t i = 1; i < problems.size(); ++i) e.message += "\n" + problems[i].message;
  return e;
}

namespace {

Result<Config> parse_config_named(std::string_view json_text, const std::string& name, std::vector<Error>& problems) {
  json::Document parsed;
  parsed.Parse(json_text.data(), json_text.size());
  if (parsed.HasParseError()) {
    auto [line, column] = json::line_column_of(json_text, parsed.GetErrorOffset());
    Error e = make_error(Errc::invalid_input, name + ":" + std::to_string(line) + ":" + std::to_string(column) +
                                                  ": not valid JSON: " + rapidjson::GetParseError_En(parsed.GetParseError()));
    problems.push_back(e);
    return e;
  }
  auto doc = &parsed;
  if (!doc->IsObject()) {
    problems.push_back(make_error(Errc::invalid_input, "config must be a JSON object"));
    return problems.back();
  }
  Config c;
  std::vector<Error> found;
  t_problems = &found;
  auto r = each_member(*doc, "", [&](std::string_view k, const Value& v, const std::string& p) -> Result<bool> {
    if (k == "data_dir") return set_string(v, p, false, c.data_dir);
    if (k == "profiles_dir") {
      c.profiles_dir_given = true;
      return set_string(v, p, false, c.profiles_dir);
    }
    if (k == "https") return sub(parse_https(v, p, c));
    if (k == "tls") return sub(parse_tls(v, p, c));
    if (k == "limits") return sub(parse_limits(v, p, c.limits));
    if (k == "store") return sub(parse_store(v, p, c));
    if (k == "mllp") return sub(parse_mllp(v, p, c.mllp));
    if (k == "ops") return sub(parse_ops(v, p, c));
    if (k == "subscriptions") return sub(parse_subscriptions(v, p, c.subscriptions));
    if (k == "audit")
      return sub(each_member(v, p, [&](std::string_view ak, const Value& av, const std::string& ap) -> Result<bool> {
        if (ak == "retention_days") return set_int(av, ap, 0, 100 * 366, c.audit_retention_days);
        return false;
      }));
    if (k == "gp_hl7") return sub(parse_gp_hl7(v, p, c.gp_hl7));
    if (k == "users") return sub(parse_users(v, p, c.users));
    if (k == "shutdown_grace_ms") return set_ms(v, p, 0, c.shutdown_grace);
    if (k == "log_level") {
      auto s = want_string(v, p, false);
      if (!s) return s.error();
      if (*s != "debug" && *s != "info" && *s != "warn" && *s != "error") {
        return bad(p, "must be one of debug, info, warn, error, not '" + *s + "'");
      }
      c.log_level = *s;
      return true;
    }
    if (k == "public_base_url") {
      auto s = want_string(v, p, true);
      if (!s) return s.error();
      if (!s->empty() && s->rfind("https://", 0) != 0 && s->rfind("http://", 0) != 0) {
        return bad(p, "must be an absolute http:// or https:// URL");
      }
      // Links are built as base + "/Patient/...", so a trailing '/' would double up.
      while (!s->empty() && s->back() == '/') s->pop_back();
      c.public_base_url = *s;
      return true;
    }
    return false;
  });
  t_problems = nullptr;
  if (!r) found.insert(found.begin(), r.error());
  if (found.empty()) return c;
  for (auto& e : found) {
    // parse_config alone keeps the bare messages; a named file gets positions.
    if (name != "config") e.message = at(json_text, name, e.expression) + e.message;
    problems.push_back(e);
  }
  return problems.front();
}

}  // namespace

Result<Config> load_config_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return make_error(Errc::invalid_input, "cannot read config file " + path + ": " + std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return make_error(Errc::invalid_input, "cannot read config file " + path);
  std::vector<Error> problems;
  auto c = parse_config_named(text.str(), path, problems);
  if (!c) {
    // "N problems in FILE" and each as FILE:LINE:COLUMN: message, like the profile checks.
    Error e = problems.empty() ? c.error() : problems.front();
    size_t n = std::max<size_t>(problems.size(), 1);
    e.message = "config file " + path + ": " + std::to_string(n) + " problem" + (n == 1 ? "" : "s");
    if (problems.empty()) e.message += "\n  " + c.error().message;
    for (const auto& p : problems) e.message += "\n  " + p.message;
    return e;
  }
  return c;
}

}  // namespace gw::config
