#include "gateway/net/https_server.h"

#include <openssl/rand.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <deque>
#include <future>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "gateway/common/issues.h"
#include "gateway/common/log.h"
#include "gateway/net/listener.h"
#include "gateway/net/principal_limiter.h"
#include "gateway/net/tls.h"

namespace gw::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

// A TLS close after the peer is gone cannot complete; bound it so a vanished
// client never holds a session (or shutdown) for long.
constexpr std::chrono::milliseconds kTlsShutdownTimeout{1000};

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::string> percent_decode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) {
      return make_error(Errc::invalid_input, "truncated percent-encoding in the request path");
    }
    int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
    if (hi < 0 || lo < 0) return make_error(Errc::invalid_input, "invalid percent-encoding in the request path");
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

// The Host header ends up in Location and fullUrl values; anything outside a
// plain host[:port] is ignored rather than echoed into responses.
// An X-Request-ID worth keeping: 1..128 characters of letters, digits and
// ". _ : -" (what UUIDs and tracing ids use), nothing a log line would quote.
bool plain_token(std::string_view v) {
  if (v.empty() || v.size() > 128) return false;
  return std::all_of(v.begin(), v.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == ':' || c == '-';
  });
}

// 128 random bits as hex: unique across restarts and nodes, unlike the
// per-process request counter.
std::string mint_request_id() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof b) != 1) std::abort();  // no entropy: nothing safe to do
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(32, '0');
  for (int i = 0; i < 16; ++i) {
    out[2 * i] = kHex[b[i] >> 4];
    out[2 * i + 1] = kHex[b[i] & 15];
  }
  return out;
}

bool plausible_host(std::string_view h) {
  if (h.empty() || h.size() > 255) return false;
  for (char c : h) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
              c == ':' || c == '[' || c == ']';
    if (!ok) return false;
  }
  return true;
}

// Metric labels are rendered verbatim; keep route names to a safe alphabet.
std::string label_safe(std::string_view route) {
  if (route.empty()) return "unmatched";
  std::string out;
  for (char c : route) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              c == '/' || c == '.';
    out.push_back(ok ? c : '_');
  }
  return out;
}

bool has_crlf(std::string_view s) { return s.find_first_of("\r\n") != std::string_view::npos; }

Response error_response(Errc code, std::string message) {
  Response r;
  r.status = http_status_for(code);
  r.body = operation_outcome(make_error(code, std::move(message)));
  return r;
}

// 429 for a caller over its rate or concurrency limit: FHIR's "throttled"
// issue and Retry-After in whole seconds (at least one).
Response throttled_response(const PrincipalLimiter::Admission& a) {
  Response r;
  r.status = 429;
  auto seconds = std::max<int64_t>(1, (a.retry_after.count() + 999) / 1000);
  std::string what = a.reason == "rate" ? "more requests per second than this caller's limit"
                                        : "more requests at once than this caller's limit";
  r.body = operation_outcome(std::vector<Issue>{
      Issue{Severity::error, "throttled", "", what + "; retry after " + std::to_string(seconds) + " s"}});
  r.headers.emplace_back("Retry-After", std::to_string(seconds));
  return r;
}

}  // namespace

// State shared by the listener and every session. Sessions hold it by
// shared_ptr so that a session destroyed late (with the io_context) still
// finds its metrics and registry.
struct Core {
  Core(const HttpsOptions& o, const Router& r, metrics::Registry& reg)
      : opts(o),
        router(r),
        registry(reg),
        tls(o.plain_http ? nullptr : std::make_unique<ServerTls>(o.tls)),
        limiter(o.limits.per_principal, o.plain_http ? "ops" : "https", reg),
        open_gauge(reg.gauge(o.metrics_prefix + "_open_connections", "Open HTTP(S) connections")),
        refused(reg.counter(o.metrics_prefix + "_connections_refused_total",
                            "Connections closed on accept because max_connections was reached")),
        handshake_failures(reg.counter("gw_tls_handshake_failures_total", "TLS handshakes that failed")) {}

  HttpsOptions opts;
  const Router& router;
  metrics::Registry& registry;
  std::unique_ptr<ServerTls> tls;  // none on the plain operations listener
  PrincipalLimiter limiter;
  metrics::Gauge& open_gauge;
  metrics::Counter& refused;
  metrics::Counter& handshake_failures;
  std::shared_ptr<ConnectionTable> connections = std::make_shared<ConnectionTable>(open_gauge);
  std::string listener_authority;  // host:port, the base_url when a request has no Host

  std::atomic<uint64_t> next_conn{1};
  std::atomic<uint64_t> next_req{1};

  // Handlers answer from their own threads, possibly after the server is gone;
  // posting to a destroyed io_context would be undefined, so every post from
  // outside goes through this gate, closed before the io_context dies.
  std::mutex post_mu;
  bool posts_open = true;
};

// One session type for both listeners, as in Beast's server-flex example:
// kTls = true is the mutual-TLS FHIR/admin listener; kTls = false the plain
// operations listener, which has no handshake and no client identity.
template <bool kTls>
class Session : public Connection, public std::enable_shared_from_this<Session<kTls>> {
  using Stream = std::conditional_t<kTls, beast::ssl_stream<beast::tcp_stream>, beast::tcp_stream>;

  static Stream make_stream(tcp::socket&& socket, ssl::context* ctx) {
    if constexpr (kTls)
      return Stream(std::move(socket), *ctx);
    else
      return Stream(std::move(socket));
  }

 public:
  Session(tcp::socket&& socket, std::shared_ptr<Core> core, std::string remote)
      : ssl_ctx_(kTls ? core->tls->current() : nullptr),
        stream_(make_stream(std::move(socket), ssl_ctx_.get())),
        core_(std::move(core)),
        conn_id_(core_->next_conn.fetch_add(1)),
        remote_(std::move(remote)),
        read_timer_(stream_.get_executor()) {
    core_->connections->opened();
  }

  ~Session() override {
    for (auto& s : slots_)
      if (s.admitted) core_->limiter.release(principal_);
    core_->connections->closed(conn_id_);
    if (handshake_done_)
      log::info("conn_close", {{"conn", conn_id_}, {"remote", remote_}, {"requests", requests_}});
  }

  uint64_t id() const { return conn_id_; }

  void run() {
    core_->connections->add(conn_id_, this->weak_from_this());
    asio::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
      if constexpr (kTls)
        self->do_handshake();
      else
        self->on_connected();
    });
  }

  // Shutdown, phase one: finish what was asked, then close.
  void begin_drain() override {
    asio::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
      self->draining_ = true;
      if (!self->handshake_done_) return self->force_close();
      if (self->slots_.empty() && !self->writing_) self->do_close();
    });
  }

  // Shutdown, phase two (grace over): drop everything.
  void force_close_async() override {
    asio::dispatch(stream_.get_executor(), [self = this->shared_from_this()] { self->force_close(); });
  }

 private:
  struct Slot {
    uint64_t req_id = 0;
    std::string request_id;  // X-Request-ID: the client's, or one minted here
    bool head = false;       // HEAD: answered as GET without the body
    std::string method;
    std::string logged_target;  // target without its query: the query may hold NHS numbers
    Clock::time_point start;
    std::optional<http::response<http::string_body>> res;
    std::string route;
    int status = 0;
    bool close_after = false;
    bool admitted = false;  // holds one of the caller's in-progress slots until answered
    std::unique_ptr<asio::steady_timer> handler_timer;
  };

  void do_handshake() {
    beast::get_lowest_layer(stream_).expires_after(core_->opts.limits.handshake_timeout);
    stream_.async_handshake(ssl::stream_base::server,
                            beast::bind_front_handler(&Session::on_handshake, this->shared_from_this()));
  }

  void on_handshake(beast::error_code ec) {
    if (ec) {
      core_->handshake_failures.inc();
      log::warn("tls_handshake_failed", {{"conn", conn_id_}, {"remote", remote_}, {"reason", ec.message()}});
      beast::error_code ignored;
      beast::get_lowest_layer(stream_).socket().close(ignored);
      return;
    }
    // verify_fail_if_no_peer_cert guarantees a verified certificate here.
    principal_ = principal_from_peer(stream_.native_handle());
    on_connected();
  }

  // The connection is ready for requests (after the handshake, with TLS).
  void on_connected() {
    handshake_done_ = true;
    log::info("conn_open", {{"conn", conn_id_},
                            {"remote", remote_},
                            {"ods", principal_.ods},
                            {"role", principal_.role},
                            {"system", principal_.system}});
    if (draining_) return do_close();
    do_read();
  }

  void do_read() {
    if (reading_ || read_closed_ || closing_) return;
    // Backpressure: stop reading ahead until a response has gone out.
    if (slots_.size() >= core_->opts.limits.max_pipelined) return;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(
        std::min<size_t>(core_->opts.limits.header_bytes, std::numeric_limits<std::uint32_t>::max())));
    parser_->body_limit(core_->opts.limits.body_bytes);
    // Read deadlines are kept by read_timer_, not the stream: a stream timeout
    // closes the socket, which would also kill responses still being produced
    // for earlier pipelined requests.
    beast::get_lowest_layer(stream_).expires_never();
    reading_ = true;
    in_body_ = false;
    arm_read_timer();
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Session::on_read_header, this->shared_from_this()));
  }

  void on_read_header(beast::error_code ec, std::size_t) {
    if (ec) return on_read_error(ec);
    in_body_ = true;
    arm_read_timer();
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&Session::on_read, this->shared_from_this()));
  }

  // Idle and read deadlines only run while nothing is owed to the client.
  void arm_read_timer() {
    ++read_timer_gen_;
    read_timer_.cancel();
    if (!reading_ || !slots_.empty() || closing_) return;
    auto d = in_body_ || buffer_.size() > 0 ? core_->opts.limits.read_timeout : core_->opts.limits.idle_timeout;
    read_timer_.expires_after(d);
    read_timer_.async_wait([self = this->shared_from_this(), gen = read_timer_gen_, body = in_body_](beast::error_code ec) {
      if (ec || gen != self->read_timer_gen_) return;
      log::info("conn_timeout", {{"conn", self->conn_id_}, {"phase", body ? "read" : "idle"}});
      self->do_close();
    });
  }

  void on_read_error(beast::error_code ec) {
    reading_ = false;
    ++read_timer_gen_;
    read_timer_.cancel();
    if (ec == asio::error::operation_aborted) {
      // Cancelled by do_close() so the TLS close can run without a read in flight.
      if (closing_ && !shut_started_) do_shutdown();
      return;
    }
    if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == ssl::error::stream_truncated ||
        ec == asio::error::connection_reset) {
      // The peer is done sending; it may still want the answers it is owed.
      read_closed_ = true;
      peer_gone_ = ec != asio::error::eof && ec != http::error::end_of_stream;
      if (slots_.empty()) do_close();
      return;
    }
    if (ec == http::error::body_limit) {
      return reject(Errc::too_large, 413, "request body exceeds the limit of " +
                                              std::to_string(core_->opts.limits.body_bytes) + " bytes");
    }
    if (ec == http::error::header_limit) {
      return reject(Errc::invalid_input, 431, "request header exceeds the limit of " +
                                                  std::to_string(core_->opts.limits.header_bytes) + " bytes");
    }
    if (ec.category() == http::make_error_code(http::error::bad_method).category()) {
      return reject(Errc::invalid_input, 400, "malformed HTTP request: " + ec.message());
    }
    fail(ec, "read");
  }

  // An error the server answers itself, after which the stream cannot be
  // trusted to be at a request boundary: answer in order, then close.
  void reject(Errc code, int status, std::string message) {
    read_closed_ = true;
    Slot& s = new_slot();
    if (parser_ && parser_->is_header_done()) {
      s.method = std::string(parser_->get().method_string());
      s.logged_target = std::string(parser_->get().target().substr(0, parser_->get().target().find('?')));
    }
    s.close_after = true;
    Response r = error_response(code, std::move(message));
    r.status = status;
    set_response(s, std::move(r));
    do_write();
  }

  Slot& new_slot() {
    slots_.emplace_back();
    Slot& s = slots_.back();
    s.req_id = core_->next_req.fetch_add(1);
    s.request_id = mint_request_id();
    s.start = Clock::now();
    ++requests_;
    return s;
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec) return on_read_error(ec);
    reading_ = false;
    ++read_timer_gen_;
    read_timer_.cancel();

    auto msg = parser_->release();
    Slot& slot = new_slot();
    slot.method = std::string(msg.method_string());
    std::string_view target = msg.target();
    size_t q = target.find('?');
    slot.logged_target = std::string(target.substr(0, q));
    slot.close_after = !msg.keep_alive() || draining_;
    if (slot.close_after) read_closed_ = true;
    uint64_t req_id = slot.req_id;

    // The client's X-Request-ID ties our log lines and audit rows to its own;
    // only a plain token is taken, so it cannot forge a log field.
    for (const auto& f : msg)
      if (beast::iequals(f.name_string(), "x-request-id") && plain_token(f.value())) slot.request_id = f.value();

    Request req;
    req.method = slot.method;
    if (slot.method == "HEAD") {
      slot.head = true;
      req.method = "GET";
    }
    req.request_id = slot.request_id;
    req.target = std::string(target);
    if (q != std::string_view::npos) req.query = std::string(target.substr(q + 1));
    req.principal = principal_;
    req.conn_id = conn_id_;
    req.req_id = req_id;
    req.remote = remote_;
    for (const auto& f : msg) {
      std::string name(f.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      req.headers.emplace_back(std::move(name), std::string(f.value()));
    }
    auto host = req.header("host");
    req.base_url = (kTls ? "https://" : "http://") + (host && plausible_host(*host) ? std::string(*host) : core_->listener_authority);
    req.body = std::move(msg.body());

    auto path = percent_decode(target.substr(0, q));
    Handler* handler = nullptr;
    size_t params = req.query.empty() ? 0 : 1 + static_cast<size_t>(std::count(req.query.begin(), req.query.end(), '&'));
    if (params > core_->opts.limits.max_query_params) {
      // Every handler walks its parameters (and a search ANDs each one into
      // its query): bound that work here, once, for every route.
      set_response(slot, error_response(Errc::invalid_input,
                                        "the query has " + std::to_string(params) + " parameters, more than the limit of " +
                                            std::to_string(core_->opts.limits.max_query_params)));
    } else if (target.empty() || target.front() != '/') {
      set_response(slot, error_response(Errc::invalid_input, "the request target must be an absolute path"));
    } else if (!path) {
      set_response(slot, error_response(path.error().code, path.error().message));
    } else {
      req.path = std::move(*path);
      handler = core_->router.find(req.path);
      if (handler == nullptr) set_response(slot, error_response(Errc::not_found, "no route for this path"));
    }
    if (handler != nullptr && kTls) {
      if (auto refusal = authenticate_user(req)) {
        set_response(slot, std::move(*refusal));
        handler = nullptr;
      }
    }
    if (handler != nullptr) {
      auto admission = core_->limiter.admit(principal_);
      if (admission.admitted) {
        slot.admitted = true;
      } else {
        log::info("request_throttled", {{"conn", conn_id_},
                                        {"req", req_id},
                                        {"request_id", slot.request_id},
                                        {"principal", PrincipalLimiter::key(principal_)},
                                        {"reason", admission.reason}});
        set_response(slot, throttled_response(admission));
        handler = nullptr;
      }
    }

    if (handler != nullptr) {
      slot.handler_timer = std::make_unique<asio::steady_timer>(stream_.get_executor());
      slot.handler_timer->expires_after(core_->opts.limits.handler_timeout);
      slot.handler_timer->async_wait(
          beast::bind_front_handler(&Session::on_handler_timeout, this->shared_from_this(), req_id));
      // The handler may answer from any thread, even after this session is
      // gone; a weak reference lets a late answer fall on the floor.
      Respond respond = [weak = this->weak_from_this(), core = core_, exec = stream_.get_executor(),
                         req_id](Response r) {
        std::lock_guard lock(core->post_mu);
        if (!core->posts_open) return;
        auto self = weak.lock();
        if (!self) return;
        asio::post(exec, [self = std::move(self), req_id, r = std::move(r)]() mutable {
          self->on_response(req_id, std::move(r));
        });
      };
      try {
        log::RequestScope scope(slot.request_id);
        handler->handle(std::move(req), std::move(respond));
      } catch (const std::exception& e) {
        // Handlers must not throw; if one does, the client still gets an answer.
        log::error("handler_threw",
                   {{"conn", conn_id_}, {"req", req_id}, {"request_id", slot.request_id}, {"what", e.what()}});
        on_response(req_id, error_response(Errc::internal, "internal error"));
      }
    }
    do_write();
    do_read();
  }

  // The person behind the request (security/user_tokens.h): a verified
  // Bearer token names them; anything else in Authorization is refused, so a
  // token is never silently ignored.
  std::optional<Response> authenticate_user(Request& req) {
    auto auth = req.header("authorization");
    if (!auth) return std::nullopt;
    Error e;
    if (auto token = security::bearer_token(*auth); !token) {
      e = make_error(Errc::unauthenticated, "Authorization must be 'Bearer <user token>'", "Authorization");
    } else if (!core_->opts.users) {
      e = make_error(Errc::unauthenticated,
                     "this gateway trusts no identity provider (users.issuers), so it cannot accept a user token",
                     "Authorization");
    } else if (auto person = core_->opts.users->verify(*token, principal_); person) {
      req.principal.person = std::move(*person);
      return std::nullopt;
    } else {
      e = person.error();
    }
    log::info("user_token_refused", {{"conn", conn_id_}, {"req", req.req_id}, {"request_id", req.request_id},
                                     {"status", http_status_for(e.code)}, {"reason", e.message}});
    Response r = error_response(e.code, e.message);
    r.route = "user_token";
    if (e.code == Errc::unauthenticated) r.headers.emplace_back("WWW-Authenticate", security::UserTokens::challenge(e));
    return r;
  }

  void on_handler_timeout(uint64_t req_id, beast::error_code ec) {
    if (ec) return;  // cancelled: the handler answered
    Slot* s = find_slot(req_id);
    if (s == nullptr || s->res) return;
    log::warn("handler_timeout", {{"conn", conn_id_}, {"req", req_id}, {"request_id", s->request_id}});
    set_response(*s, error_response(Errc::timeout, "the request was not answered in time"));
    do_write();
  }

  void on_response(uint64_t req_id, Response r) {
    Slot* s = find_slot(req_id);
    if (s == nullptr || s->res) return;  // late (after 504) or after the connection failed
    if (s->handler_timer) s->handler_timer->cancel();
    set_response(*s, std::move(r));
    do_write();
  }

  Slot* find_slot(uint64_t req_id) {
    for (auto& s : slots_)
      if (s.req_id == req_id) return &s;
    return nullptr;
  }

  void set_response(Slot& s, Response r) {
    if (s.admitted) {
      s.admitted = false;
      core_->limiter.release(principal_);
    }
    http::response<http::string_body> res{static_cast<http::status>(r.status), 11};
    res.set(http::field::server, "cpis-gateway");
    bool bodiless = r.status == 204 || r.status == 304;
    if (!(bodiless && r.body.empty()) && !r.content_type.empty() && !has_crlf(r.content_type))
      res.set(http::field::content_type, r.content_type);
    for (const auto& [k, v] : r.headers) {
      // A CR/LF in a handler-supplied header would split the response.
      if (k.empty() || has_crlf(k) || has_crlf(v)) continue;
      res.insert(k, v);
    }
    res.set("X-Request-ID", s.request_id);
    if (!bodiless) res.content_length(r.body.size());
    // HEAD: the GET's headers, Content-Length included, and no body.
    if (!s.head) res.body() = std::move(r.body);
    res.keep_alive(!s.close_after);
    s.status = r.status;
    s.route = label_safe(r.route);
    s.res = std::move(res);
  }

  void do_write() {
    if (writing_ || slots_.empty() || !slots_.front().res) return;
    writing_ = true;
    beast::get_lowest_layer(stream_).expires_after(core_->opts.limits.read_timeout);
    http::async_write(stream_, *slots_.front().res,
                      beast::bind_front_handler(&Session::on_write, this->shared_from_this()));
  }

  void on_write(beast::error_code ec, std::size_t) {
    writing_ = false;
    Slot& s = slots_.front();
    record(s, ec);
    if (ec) return fail(ec, "write");
    bool close = s.close_after;
    slots_.pop_front();
    if (close) {
      read_closed_ = true;
      return do_close();
    }
    if (slots_.empty() && (read_closed_ || draining_)) return do_close();
    if (!slots_.empty()) do_write();
    if (reading_)
      arm_read_timer();
    else
      do_read();
  }

  void record(const Slot& s, beast::error_code ec) {
    double seconds = std::chrono::duration<double>(Clock::now() - s.start).count();
    auto key = s.route + "\n" + std::to_string(s.status);
    auto it = counters_.find(key);
    if (it == counters_.end()) {
      auto& c = core_->registry.counter(core_->opts.metrics_prefix + "_requests_total", "HTTP requests answered",
                                        "route=\"" + s.route + "\",status=\"" + std::to_string(s.status) + "\"");
      it = counters_.emplace(key, &c).first;
    }
    it->second->inc();
    auto hit = histograms_.find(s.route);
    if (hit == histograms_.end()) {
      auto& h = core_->registry.histogram(core_->opts.metrics_prefix + "_request_seconds", "HTTP request latency",
                                          metrics::latency_buckets(), "route=\"" + s.route + "\"");
      hit = histograms_.emplace(s.route, &h).first;
    }
    hit->second->observe(seconds);
    log::info("request", {{"conn", conn_id_},
                          {"req", s.req_id},
                          {"request_id", s.request_id},
                          {"method", s.method},
                          {"target", s.logged_target},
                          {"status", s.status},
                          {"route", s.route},
                          {"ms", seconds * 1000.0},
                          {"write", ec ? ec.message() : std::string("ok")}});
  }

  // Graceful close: no read may be in flight during the TLS close, so a
  // pending read-ahead is cancelled first and on_read_error continues.
  void do_close() {
    if (closing_) return;
    closing_ = true;
    ++read_timer_gen_;
    read_timer_.cancel();
    if (reading_) {
      beast::get_lowest_layer(stream_).socket().cancel();
      return;
    }
    do_shutdown();
  }

  void do_shutdown() {
    shut_started_ = true;
    if (peer_gone_ || !kTls) return close_socket();
    if constexpr (kTls) {
      beast::get_lowest_layer(stream_).expires_after(kTlsShutdownTimeout);
      stream_.async_shutdown([self = this->shared_from_this()](beast::error_code) { self->close_socket(); });
    }
  }

  void close_socket() {
    beast::error_code ignored;
    beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(stream_).close();
  }

  void force_close() {
    closing_ = true;
    ++read_timer_gen_;
    read_timer_.cancel();
    for (auto& s : slots_)
      if (s.handler_timer) s.handler_timer->cancel();
    beast::get_lowest_layer(stream_).close();
  }

  void fail(beast::error_code ec, const char* what) {
    // ssl::error::stream_truncated means the peer closed without a TLS
    // close_notify; common with real clients and not worth more than debug.
    if (ec == ssl::error::stream_truncated || ec == asio::error::operation_aborted)
      log::debug("conn_error", {{"conn", conn_id_}, {"op", what}, {"error", ec.message()}});
    else
      log::info("conn_error", {{"conn", conn_id_}, {"op", what}, {"error", ec.message()}});
    force_close();
  }

  // The context this connection was accepted with, kept alive across a
  // reload for as long as the connection lasts (none on the plain listener).
  std::shared_ptr<ssl::context> ssl_ctx_;
  Stream stream_;
  std::shared_ptr<Core> core_;
  uint64_t conn_id_;
  std::string remote_;
  security::Principal principal_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::deque<Slot> slots_;
  asio::steady_timer read_timer_;
  uint64_t read_timer_gen_ = 0;
  uint64_t requests_ = 0;
  bool handshake_done_ = false;
  bool reading_ = false;
  bool in_body_ = false;
  bool writing_ = false;
  bool read_closed_ = false;  // no more requests will be read on this connection
  bool draining_ = false;
  bool closing_ = false;
  bool shut_started_ = false;
  bool peer_gone_ = false;
  // Strand-confined caches: the Registry takes a lock per lookup.
  std::unordered_map<std::string, metrics::Counter*> counters_;
  std::unordered_map<std::string, metrics::Histogram*> histograms_;
};

struct HttpsServer::Impl {
  Impl(const HttpsOptions& opts, const Router& router, metrics::Registry& metrics)
      : core(std::make_shared<Core>(opts, router, metrics)),
        listener(ListenerOptions{opts.plain_http ? "ops" : "https", opts.plain_http ? "plain-http" : "mtls", opts.host,
                                 opts.port, opts.limits.max_connections, opts.threads},
                 core->connections, core->refused,
                 [c = core](tcp::socket socket, const tcp::endpoint&, std::string remote) {
                   if (c->opts.plain_http)
                     std::make_shared<Session<false>>(std::move(socket), c, std::move(remote))->run();
                   else
                     std::make_shared<Session<true>>(std::move(socket), c, std::move(remote))->run();
                 }) {
    core->listener_authority = listener.authority();
  }

  // Declared before the listener (and its io_context): sessions destroyed
  // with the io_context still use it.
  std::shared_ptr<Core> core;
  Listener listener;
};

HttpsServer::HttpsServer(const HttpsOptions& opts, const Router& router, metrics::Registry& metrics)
    : impl_(std::make_unique<Impl>(opts, router, metrics)) {}

HttpsServer::~HttpsServer() {
  shutdown(std::chrono::milliseconds(0));
  {
    std::lock_guard lock(impl_->core->post_mu);
    impl_->core->posts_open = false;
  }
}

uint16_t HttpsServer::start() { return impl_->listener.start(); }

void HttpsServer::shutdown(std::chrono::milliseconds grace) { impl_->listener.shutdown(grace, kTlsShutdownTimeout); }

Result<void> HttpsServer::reload_tls() {
  if (!impl_->core->tls) return {};  // the plain operations listener has no certificates
  return impl_->core->tls->reload();
}

uint16_t HttpsServer::port() const { return impl_->listener.port(); }

size_t HttpsServer::open_connections() const { return impl_->core->connections->open(); }

}  // namespace gw::net
