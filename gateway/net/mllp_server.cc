#include "gateway/net/mllp_server.h"

#include <openssl/ssl.h>

#include <array>
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
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <type_traits>

#include "gateway/common/log.h"
#include "gateway/hl7/mllp.h"
#include "gateway/net/listener.h"
#include "gateway/net/principal_limiter.h"

namespace gw::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

// A TLS close after the peer is gone cannot complete; bound it so a vanished
// client never holds a session (or shutdown) for long.
constexpr std::chrono::milliseconds kTlsShutdownTimeout{1000};
constexpr size_t kReadChunk = 16 * 1024;

struct Cidr {
  std::array<unsigned char, 16> bytes{};
  bool v6 = false;
  unsigned prefix = 0;
  security::Principal principal;
};

// Dual-stack listeners see IPv4 peers as ::ffff:a.b.c.d; match those against
// the IPv4 entries an operator naturally writes.
asio::ip::address normalise(const asio::ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped())
    return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  return a;
}

Cidr parse_cidr(const MllpAllowEntry& e) {
  Cidr c;
  std::string addr_text = e.cidr;
  std::optional<unsigned> prefix;
  if (auto slash = e.cidr.find('/'); slash != std::string::npos) {
    addr_text = e.cidr.substr(0, slash);
    std::string p = e.cidr.substr(slash + 1);
    if (p.empty() || p.size() > 3 || p.find_first_not_of("0123456789") != std::string::npos)
      throw std::runtime_error("invalid MLLP allow-list prefix in '" + e.cidr + "'");
    prefix = static_cast<unsigned>(std::stoul(p));
  }
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(addr_text, ec);
  if (ec) throw std::runtime_error("invalid MLLP allow-list address in '" + e.cidr + "': " + ec.message());
  addr = normalise(addr);
  c.v6 = addr.is_v6();
  unsigned max_prefix = c.v6 ? 128 : 32;
  c.prefix = prefix.value_or(max_prefix);
  if (c.prefix > max_prefix) throw std::runtime_error("MLLP allow-list prefix too long in '" + e.cidr + "'");
  if (c.v6) {
    auto b = addr.to_v6().to_bytes();
    std::copy(b.begin(), b.end(), c.bytes.begin());
  } else {
    auto b = addr.to_v4().to_bytes();
    std::copy(b.begin(), b.end(), c.bytes.begin());
  }
  if (e.ods.empty()) throw std::runtime_error("MLLP allow-list entry '" + e.cidr + "' has no ODS code");
  c.principal = security::Principal{e.ods, "integration", e.system};
  return c;
}

bool matches(const Cidr& c, const asio::ip::address& peer) {
  auto a = normalise(peer);
  if (a.is_v6() != c.v6) return false;
  std::array<unsigned char, 16> b{};
  if (a.is_v6()) {
    auto x = a.to_v6().to_bytes();
    std::copy(x.begin(), x.end(), b.begin());
  } else {
    auto x = a.to_v4().to_bytes();
    std::copy(x.begin(), x.end(), b.begin());
  }
  unsigned full = c.prefix / 8, rest = c.prefix % 8;
  for (unsigned i = 0; i < full; ++i)
    if (b[i] != c.bytes[i]) return false;
  if (rest == 0) return true;
  auto mask = static_cast<unsigned char>(0xFF << (8 - rest));
  return (b[full] & mask) == (c.bytes[full] & mask);
}

}  // namespace

// State shared by the listener and every session. Sessions hold it by
// shared_ptr so that a session destroyed late (with the io_context) still
// finds its metrics.
struct MllpCore {
  MllpCore(const MllpOptions& o, MllpHandler& h, metrics::Registry& reg)
      : opts(o),
        handler(h),
        limiter(o.per_principal, o.tls ? "mllp-tls" : "mllp", reg),
        open_gauge(reg.gauge("gw_mllp_open_connections", "Open MLLP connections")),
        refused_not_allowed(reg.counter("gw_mllp_connections_refused_total", "MLLP connections refused",
                                        "reason=\"not_allowed\"")),
        refused_role(reg.counter("gw_mllp_connections_refused_total", "MLLP connections refused", "reason=\"role\"")),
        refused_max(reg.counter("gw_mllp_connections_refused_total", "MLLP connections refused",
                                "reason=\"max_connections\"")),
        handshake_failures(reg.counter("gw_mllp_connections_refused_total", "MLLP connections refused",
                                       "reason=\"handshake\"")),
        acked(reg.counter("gw_mllp_messages_total", "MLLP messages by outcome", "result=\"acked\"")),
        rejected_oversized(reg.counter("gw_mllp_messages_total", "MLLP messages by outcome", "result=\"oversized\"")),
        handler_timeouts(reg.counter("gw_mllp_messages_total", "MLLP messages by outcome",
                                     "result=\"handler_timeout\"")),
        abandoned(reg.counter("gw_mllp_messages_total", "MLLP messages by outcome", "result=\"abandoned\"")),
        ack_seconds(reg.histogram("gw_mllp_ack_seconds", "MLLP frame received to ACK written",
                                  metrics::latency_buckets())),
        oversized(reg.counter("gw_mllp_frames_oversized_total", "MLLP frames over max_frame_bytes")),
        garbage(reg.counter("gw_mllp_garbage_bytes_total", "Bytes received outside any MLLP frame")) {
    if (o.tls) {
      tls = std::make_unique<ServerTls>(o.tls_files);
    } else {
      std::vector<MllpAllowEntry> entries = o.allow;
      if (entries.empty()) entries = {{"127.0.0.0/8", "LOCAL", "loopback"}, {"::1/128", "LOCAL", "loopback"}};
      for (const auto& e : entries) allow.push_back(parse_cidr(e));
    }
  }

  const security::Principal* allowed(const asio::ip::address& a) const {
    for (const auto& c : allow)
      if (matches(c, a)) return &c.principal;
    return nullptr;
  }

  MllpOptions opts;
  MllpHandler& handler;
  PrincipalLimiter limiter;
  std::unique_ptr<ServerTls> tls;  // tls only
  std::vector<Cidr> allow;
  metrics::Gauge& open_gauge;
  metrics::Counter& refused_not_allowed;
  metrics::Counter& refused_role;
  metrics::Counter& refused_max;
  metrics::Counter& handshake_failures;
  metrics::Counter& acked;
  metrics::Counter& rejected_oversized;
  metrics::Counter& handler_timeouts;
  metrics::Counter& abandoned;
  metrics::Histogram& ack_seconds;
  metrics::Counter& oversized;
  metrics::Counter& garbage;
  std::shared_ptr<ConnectionTable> connections = std::make_shared<ConnectionTable>(open_gauge);

  std::atomic<uint64_t> next_conn{1};
  std::atomic<uint64_t> next_msg{1};

  // Handlers reply from their own threads, possibly after the server is gone;
  // posting to a destroyed io_context would be undefined, so every post from
  // outside goes through this gate, closed before the io_context dies.
  std::mutex post_mu;
  bool posts_open = true;
};

// Stream is beast::tcp_stream (plain) or beast::ssl_stream<beast::tcp_stream>.
template <class Stream>
class MllpSession : public Connection, public std::enable_shared_from_this<MllpSession<Stream>> {
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

 public:
  MllpSession(Stream&& stream, std::shared_ptr<MllpCore> core, std::string remote, security::Principal principal)
      : stream_(std::move(stream)),
        core_(std::move(core)),
        conn_id_(core_->next_conn.fetch_add(1)),
        remote_(std::move(remote)),
        principal_(std::move(principal)),
        deframer_(core_->opts.max_frame_bytes),
        idle_timer_(stream_.get_executor()),
        write_timer_(stream_.get_executor()),
        throttle_timer_(stream_.get_executor()),
        last_progress_(Clock::now()) {
    core_->connections->opened();
  }

  ~MllpSession() override {
    // Messages handed over but never acknowledged on the wire: the sender
    // will resend them, and the count shows how often that happens.
    for (const auto& s : slots_) {
      if (!s.timed_out) core_->abandoned.inc();
      if (s.admitted) core_->limiter.release(principal_);
    }
    core_->connections->closed(conn_id_);
    if (opened_)
      log::info("mllp_conn_close",
                {{"conn", conn_id_}, {"remote", remote_}, {"messages", messages_}, {"garbage_bytes", garbage_}});
  }

  void run() {
    core_->connections->add(conn_id_, this->weak_from_this());
    asio::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
      if constexpr (kTls)
        self->do_handshake();
      else
        self->on_open();
    });
  }

  // Shutdown, phase one: read nothing more, write what is owed, then close.
  void begin_drain() override {
    asio::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
      self->draining_ = true;
      self->read_closed_ = true;
      if (!self->opened_) return self->force_close();
      if (self->slots_.empty() && !self->writing_) return self->do_close();
      if (self->reading_) self->lowest().socket().cancel();
    });
  }

  // Shutdown, phase two (grace over): drop everything.
  void force_close_async() override {
    asio::dispatch(stream_.get_executor(), [self = this->shared_from_this()] { self->force_close(); });
  }

  // The TLS context this connection was accepted with, kept alive across a
  // reload for as long as the connection lasts.
  void keep_context(std::shared_ptr<ssl::context> ctx) { ssl_ctx_ = std::move(ctx); }

 private:
  struct Slot {
    uint64_t msg_id = 0;
    Clock::time_point received;
    std::optional<std::string> ack;  // framed
    std::unique_ptr<asio::steady_timer> handler_timer;
    bool oversized = false;
    bool timed_out = false;
    bool admitted = false;  // holds one of the caller's in-progress slots until the handler replies
  };

  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

  void do_handshake() {
    lowest().expires_after(core_->opts.handshake_timeout);
    if constexpr (kTls)
      stream_.async_handshake(ssl::stream_base::server,
                              beast::bind_front_handler(&MllpSession::on_handshake, this->shared_from_this()));
  }

  void on_handshake(beast::error_code ec) {
    lowest().expires_never();
    if (ec) {
      core_->handshake_failures.inc();
      log::warn("mllp_tls_handshake_failed", {{"conn", conn_id_}, {"remote", remote_}, {"reason", ec.message()}});
      return force_close();
    }
    if constexpr (kTls) {
      // verify_fail_if_no_peer_cert guarantees a verified certificate here.
      principal_ = principal_from_peer(stream_.native_handle());
    }
    if (!core_->opts.admits || !core_->opts.admits(principal_)) {
      core_->refused_role.inc();
      log::warn("mllp_connection_refused", {{"conn", conn_id_},
                                            {"remote", remote_},
                                            {"reason", "role"},
                                            {"ods", principal_.ods},
                                            {"role", principal_.role},
                                            {"system", principal_.system}});
      opened_ = true;  // a TLS close is owed to a peer that completed the handshake
      read_closed_ = true;
      return do_close();
    }
    on_open();
  }

  void on_open() {
    opened_ = true;
    log::info("mllp_conn_open", {{"conn", conn_id_},
                                 {"remote", remote_},
                                 {"tls", kTls ? "yes" : "no"},
                                 {"ods", principal_.ods},
                                 {"role", principal_.role},
                                 {"system", principal_.system}});
    if (draining_) return do_close();
    do_read();
  }

  void do_read() {
    if (reading_ || read_closed_ || closing_ || throttled_) return;
    // Backpressure: a sender that pipelines beyond the limit waits in TCP.
    if (slots_.size() >= core_->opts.max_in_flight) return;
    reading_ = true;
    arm_idle_timer();
    stream_.async_read_some(asio::buffer(read_buf_),
                            beast::bind_front_handler(&MllpSession::on_read, this->shared_from_this()));
  }

  // The read deadlines only run while nothing is owed to the sender: a slow
  // handler is bounded by handler_timeout instead. Inside a frame the frame
  // must end within frame_timeout of its start; between frames, idle_timeout
  // runs from the last frame boundary, so neither a frame trickled byte by
  // byte nor a stream of bytes outside any frame holds the connection.
  void arm_idle_timer() {
    ++idle_gen_;
    idle_timer_.cancel();
    if (!reading_ || !slots_.empty() || closing_) return;
    bool in_frame = deframer_.in_frame();
    idle_timer_.expires_at(in_frame ? frame_started_ + core_->opts.frame_timeout
                                    : last_progress_ + core_->opts.idle_timeout);
    idle_timer_.async_wait([self = this->shared_from_this(), gen = idle_gen_, in_frame](beast::error_code ec) {
      if (ec || gen != self->idle_gen_) return;
      log::info("mllp_conn_timeout", {{"conn", self->conn_id_}, {"phase", in_frame ? "frame" : "idle"}});
      self->read_closed_ = true;
      self->do_close();
    });
  }

  void on_read(beast::error_code ec, std::size_t n) {
    reading_ = false;
    ++idle_gen_;
    idle_timer_.cancel();
    if (n > 0) consume(std::string_view(read_buf_.data(), n));
    if (ec) return on_read_error(ec);
    deliver_ready();
    do_write();
    do_read();
  }

  void on_read_error(beast::error_code ec) {
    read_closed_ = true;
    if (ec == asio::error::operation_aborted) {
      // Cancelled by do_close() or a drain, so the close can run without a read in flight.
      if (closing_ && !shut_started_) return do_shutdown();
      if (slots_.empty() && !writing_) return do_close();
      return;
    }
    bool peer_done = ec == asio::error::eof || ec == ssl::error::stream_truncated ||
                     ec == asio::error::connection_reset;
    if (!peer_done) return fail(ec, "read");
    peer_gone_ = ec != asio::error::eof;
    if (deframer_.in_frame()) {
      // Nothing to acknowledge: the sender never finished the message.
      log::warn("mllp_partial_frame_dropped", {{"conn", conn_id_}, {"remote", remote_}});
    }
    // The peer stopped sending; complete frames already read are still
    // answered in case it only half-closed.
    deliver_ready();
    if (slots_.empty() && !writing_ && !owes_frames()) return do_close();
    do_write();
  }

  void consume(std::string_view bytes) {
    uint64_t before = deframer_.discarded_bytes();
    uint64_t ended_before = deframer_.frames_ended();
    bool was_in_frame = deframer_.in_frame();
    deframer_.feed(bytes);
    bool ended = deframer_.frames_ended() != ended_before;
    if (deframer_.in_frame() && (ended || !was_in_frame)) frame_started_ = Clock::now();
    if (ended || (deframer_.in_frame() && !was_in_frame)) last_progress_ = Clock::now();
    uint64_t dropped = deframer_.discarded_bytes() - before;
    if (dropped > 0) {
      core_->garbage.inc(dropped);
      garbage_ += dropped;
      // Once per connection: a sender that is out of step would otherwise
      // write a log line for every read; the total is in mllp_conn_close.
      if (garbage_ == dropped) log::warn("mllp_garbage_discarded", {{"conn", conn_id_}, {"bytes", dropped}});
    }
  }

  // Hands complete frames to the handler while the in-flight limit allows;
  // the rest wait in the deframer until ACKs go out.
  void deliver_ready() {
    while (!closing_ && !draining_ && !throttled_ && slots_.size() < core_->opts.max_in_flight) {
      if (!deframer_.has_ready()) return;
      // The caller's rate and concurrency are checked before a frame is taken:
      // over the limit the frame stays buffered and reading stops, so the
      // sender waits in TCP; nothing read is refused or left unanswered.
      auto admission = core_->limiter.admit(principal_);
      if (!admission.admitted) return throttle(admission);
      auto next = deframer_.pop();
      slots_.emplace_back();
      Slot& slot = slots_.back();
      slot.admitted = true;
      slot.msg_id = core_->next_msg.fetch_add(1);
      slot.received = Clock::now();
      ++messages_;
      MllpMessage msg;
      msg.principal = principal_;
      msg.conn_id = conn_id_;
      msg.msg_id = slot.msg_id;
      msg.remote = remote_;
      if (!*next) {
        slot.oversized = true;
        core_->oversized.inc();
        log::warn("mllp_frame_oversized", {{"conn", conn_id_},
                                           {"msg", slot.msg_id},
                                           {"max_frame_bytes", static_cast<uint64_t>(core_->opts.max_frame_bytes)}});
        slot.ack = hl7::frame(core_->handler.reject_oversized(msg, core_->opts.max_frame_bytes));
        release(slot);
        continue;
      }
      msg.raw = std::move(next->value());
      uint64_t msg_id = slot.msg_id;
      slot.handler_timer = std::make_unique<asio::steady_timer>(stream_.get_executor());
      slot.handler_timer->expires_after(core_->opts.handler_timeout);
      slot.handler_timer->async_wait(
          beast::bind_front_handler(&MllpSession::on_handler_timeout, this->shared_from_this(), msg_id));
      // The handler may reply from any thread, even after this session is
      // gone; a weak reference lets a late reply fall on the floor.
      MllpReply reply = [weak = this->weak_from_this(), core = core_, exec = stream_.get_executor(),
                         msg_id](std::string ack) {
        std::lock_guard lock(core->post_mu);
        if (!core->posts_open) return;
        auto self = weak.lock();
        if (!self) return;
        asio::post(exec, [self = std::move(self), msg_id, ack = std::move(ack)]() mutable {
          self->on_reply(msg_id, std::move(ack));
        });
      };
      core_->handler.handle(std::move(msg), std::move(reply));
    }
  }

  void release(Slot& s) {
    if (!s.admitted) return;
    s.admitted = false;
    core_->limiter.release(principal_);
  }

  // Over the caller's limit: read nothing more and hand over nothing until
  // it may go on; a concurrency wait is polled briefly (no event says when
  // another connection's message is answered).
  void throttle(const PrincipalLimiter::Admission& a) {
    if (!throttled_) {
      log::info("mllp_throttled", {{"conn", conn_id_},
                                   {"principal", PrincipalLimiter::key(principal_)},
                                   {"reason", a.reason}});
    }
    throttled_ = true;
    auto wait = a.reason == "rate" ? a.retry_after : std::chrono::milliseconds(50);
    throttle_timer_.expires_after(std::max(wait, std::chrono::milliseconds(1)));
    throttle_timer_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
      if (ec) return;
      self->throttled_ = false;
      self->deliver_ready();
      if (self->slots_.empty() && !self->writing_ && self->read_closed_ && !self->owes_frames())
        return self->do_close();
      self->do_write();
      self->do_read();
    });
  }

  // Complete frames read but not yet handed over (held back by a throttle):
  // the connection stays open for them even after the sender stopped sending.
  bool owes_frames() const { return !draining_ && !closing_ && deframer_.has_ready(); }

  void on_reply(uint64_t msg_id, std::string ack) {
    Slot* s = find_slot(msg_id);
    if (s == nullptr || s->ack || s->timed_out) return;  // late, or the connection already failed
    release(*s);
    if (s->handler_timer) s->handler_timer->cancel();
    s->ack = hl7::frame(ack);
    do_write();
  }

  void on_handler_timeout(uint64_t msg_id, beast::error_code ec) {
    if (ec) return;  // cancelled: the handler replied
    Slot* s = find_slot(msg_id);
    if (s == nullptr || s->ack) return;
    s->timed_out = true;
    release(*s);
    core_->handler_timeouts.inc();
    // An ACK must mean the message was committed, so none is made up; the
    // sender sees the connection drop and resends.
    log::error("mllp_handler_timeout", {{"conn", conn_id_},
                                        {"msg", msg_id},
                                        {"timeout_ms", static_cast<int64_t>(core_->opts.handler_timeout.count())}});
    force_close();
  }

  Slot* find_slot(uint64_t msg_id) {
    for (auto& s : slots_)
      if (s.msg_id == msg_id) return &s;
    return nullptr;
  }

  // Every ready ACK at the head of the queue goes out in one write: with
  // pipelining senders that is one syscall for many answers.
  void do_write() {
    if (writing_ || closing_ || slots_.empty() || !slots_.front().ack) return;
    writing_ = true;
    out_.clear();
    in_write_ = 0;
    for (auto& s : slots_) {
      if (!s.ack) break;
      out_ += *s.ack;
      ++in_write_;
    }
    // A sender that stops reading must not hold the connection forever.
    write_timer_.expires_after(core_->opts.handler_timeout);
    write_timer_.async_wait([self = this->shared_from_this()](beast::error_code ec) {
      if (ec || !self->writing_) return;
      log::warn("mllp_conn_timeout", {{"conn", self->conn_id_}, {"phase", "write"}});
      self->force_close();
    });
    asio::async_write(stream_, asio::buffer(out_),
                      beast::bind_front_handler(&MllpSession::on_write, this->shared_from_this()));
  }

  void on_write(beast::error_code ec, std::size_t) {
    writing_ = false;
    write_timer_.cancel();
    if (ec) return fail(ec, "write");
    auto now = Clock::now();
    for (size_t i = 0; i < in_write_ && !slots_.empty(); ++i) {
      const Slot& s = slots_.front();
      core_->ack_seconds.observe(std::chrono::duration<double>(now - s.received).count());
      (s.oversized ? core_->rejected_oversized : core_->acked).inc();
      slots_.pop_front();
    }
    in_write_ = 0;
    deliver_ready();
    if (slots_.empty() && read_closed_ && !owes_frames()) return do_close();
    do_write();
    if (reading_)
      arm_idle_timer();
    else
      do_read();
  }

  // Graceful close: no read may be in flight during the TLS close, so a
  // pending read is cancelled first and on_read_error continues.
  void do_close() {
    if (closing_) return;
    closing_ = true;
    ++idle_gen_;
    idle_timer_.cancel();
    if (reading_) {
      lowest().socket().cancel();
      return;
    }
    do_shutdown();
  }

  void do_shutdown() {
    shut_started_ = true;
    if constexpr (kTls) {
      if (!peer_gone_) {
        lowest().expires_after(kTlsShutdownTimeout);
        stream_.async_shutdown([self = this->shared_from_this()](beast::error_code) { self->close_socket(); });
        return;
      }
    }
    close_socket();
  }

  void close_socket() {
    beast::error_code ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    lowest().close();
  }

  void force_close() {
    closing_ = true;
    ++idle_gen_;
    idle_timer_.cancel();
    write_timer_.cancel();
    throttle_timer_.cancel();
    for (auto& s : slots_)
      if (s.handler_timer) s.handler_timer->cancel();
    lowest().close();
  }

  void fail(beast::error_code ec, const char* what) {
    // stream_truncated is a peer closing without a TLS close_notify: common
    // with real senders and not worth more than debug.
    if (ec == ssl::error::stream_truncated || ec == asio::error::operation_aborted)
      log::debug("mllp_conn_error", {{"conn", conn_id_}, {"op", what}, {"error", ec.message()}});
    else
      log::info("mllp_conn_error", {{"conn", conn_id_}, {"op", what}, {"error", ec.message()}});
    force_close();
  }

  std::shared_ptr<ssl::context> ssl_ctx_;  // tls only; declared first so it outlives stream_
  Stream stream_;
  std::shared_ptr<MllpCore> core_;
  uint64_t conn_id_;
  std::string remote_;
  security::Principal principal_;
  hl7::Deframer deframer_;
  std::array<char, kReadChunk> read_buf_{};
  std::deque<Slot> slots_;
  std::string out_;
  size_t in_write_ = 0;
  asio::steady_timer idle_timer_;
  asio::steady_timer write_timer_;
  asio::steady_timer throttle_timer_;
  Clock::time_point last_progress_;  // the last frame boundary (or the connection's start)
  Clock::time_point frame_started_;  // of the frame being read
  uint64_t idle_gen_ = 0;
  uint64_t messages_ = 0;
  uint64_t garbage_ = 0;
  bool opened_ = false;
  bool reading_ = false;
  bool writing_ = false;
  bool read_closed_ = false;  // no more messages will be read on this connection
  bool draining_ = false;
  bool closing_ = false;
  bool shut_started_ = false;
  bool peer_gone_ = false;
  bool throttled_ = false;  // over the caller's limit: neither reading nor handing over frames
};

struct MllpServer::Impl {
  Impl(const MllpOptions& opts, MllpHandler& handler, metrics::Registry& metrics)
      : core(std::make_shared<MllpCore>(opts, handler, metrics)),
        listener(ListenerOptions{"mllp", opts.tls ? "mtls" : "plain-allow-list", opts.host, opts.port,
                                 opts.max_connections, opts.threads},
                 core->connections, core->refused_max,
                 [c = core](tcp::socket socket, const tcp::endpoint& peer, std::string remote) {
                   accept(c, std::move(socket), peer, std::move(remote));
                 }) {}

  static void accept(const std::shared_ptr<MllpCore>& core, tcp::socket socket, const tcp::endpoint& peer,
                     std::string remote) {
    security::Principal principal;
    if (!core->opts.tls) {
      const security::Principal* p = core->allowed(peer.address());
      if (p == nullptr) {
        core->refused_not_allowed.inc();
        log::warn("mllp_connection_refused", {{"remote", remote}, {"reason", "not_allowed"}});
        beast::error_code ignored;
        socket.close(ignored);
        return;
      }
      principal = *p;
    }
    if (core->opts.tls) {
      using S = beast::ssl_stream<beast::tcp_stream>;
      auto ctx = core->tls->current();
      auto session = std::make_shared<MllpSession<S>>(S(beast::tcp_stream(std::move(socket)), *ctx), core,
                                                       std::move(remote), std::move(principal));
      session->keep_context(std::move(ctx));
      session->run();
    } else {
      std::make_shared<MllpSession<beast::tcp_stream>>(beast::tcp_stream(std::move(socket)), core, std::move(remote),
                                                       std::move(principal))
          ->run();
    }
  }

  // Declared before the listener (and its io_context): sessions destroyed
  // with the io_context still use it.
  std::shared_ptr<MllpCore> core;
  Listener listener;
};

MllpServer::MllpServer(const MllpOptions& opts, MllpHandler& handler, metrics::Registry& metrics)
    : impl_(std::make_unique<Impl>(opts, handler, metrics)) {}

MllpServer::~MllpServer() {
  shutdown(std::chrono::milliseconds(0));
  std::lock_guard lock(impl_->core->post_mu);
  impl_->core->posts_open = false;
}

uint16_t MllpServer::start() { return impl_->listener.start(); }

void MllpServer::shutdown(std::chrono::milliseconds grace) { impl_->listener.shutdown(grace, kTlsShutdownTimeout); }

Result<void> MllpServer::reload_tls() {
  if (!impl_->core->tls) return make_error(Errc::invalid_input, "plain MLLP has no TLS files to reload");
  return impl_->core->tls->reload();
}

uint16_t MllpServer::port() const { return impl_->listener.port(); }

size_t MllpServer::open_connections() const { return impl_->core->connections->open(); }

}  // namespace gw::net
