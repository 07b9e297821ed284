#include "gateway/delivery/mllp_sender.h"

#include <openssl/ssl.h>

#include <algorithm>
#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <random>
#include <stdexcept>
#include <thread>

#include "gateway/common/log.h"
#include "gateway/hl7/er7.h"
#include "gateway/hl7/mllp.h"
#include "gateway/delivery/tls_client.h"

namespace gw::delivery {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

std::string_view send_status_name(SendStatus s) {
  switch (s) {
    case SendStatus::accepted: return "accepted";
    case SendStatus::rejected: return "rejected";
    case SendStatus::application_error: return "application_error";
    case SendStatus::bad_ack: return "bad_ack";
    case SendStatus::unreachable: return "unreachable";
  }
  return "unreachable";
}

namespace {

// MSA-3 plus every ERR text (v2.5+ ERR-8, or the ELD text in ERR-1 up to v2.4).
std::string ack_text(const hl7::Message& ack) {
  const auto& d = ack.delimiters();
  std::string out = hl7::unescape(ack.segment("MSA").field(3).raw(), d);
  auto add = [&out](std::string t) {
    if (t.empty()) return;
    if (!out.empty()) out += "; ";
    out += t;
  };
  for (const auto& err : ack.segments("ERR")) {
    if (!err.field(8).empty()) {
      add(hl7::unescape(err.field(8).raw(), d));
      continue;
    }
    hl7::Field eld = err.field(1);
    for (size_t r = 0; r < eld.repetition_count(); ++r)
      add(hl7::unescape(eld.repetition(r).component(4).subcomponent(2).raw(), d));
  }
  return out;
}

}  // namespace

struct MllpSender::Impl {
  explicit Impl(MllpEndpoint ep) : endpoint(std::move(ep)), rng(std::random_device{}()) {
    if (endpoint.tls) {
      auto ctx = make_client_context(endpoint.ca_file, endpoint.cert_file, endpoint.key_file);
      if (!ctx) throw std::runtime_error("MLLP endpoint " + where() + ": " + ctx.error().message);
      tls_ctx = std::move(*ctx);
    }
  }

  std::string where() const { return endpoint.host + ":" + std::to_string(endpoint.port); }

  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
  bool connected() const {
    return tls ? beast::get_lowest_layer(*tls).socket().is_open() : (plain && plain->socket().is_open());
  }

  void close() {
    beast::error_code ignored;
    if (tls) beast::get_lowest_layer(*tls).socket().close(ignored);
    if (plain) plain->socket().close(ignored);
    tls.reset();
    plain.reset();
    deframer.reset();
  }

  // Every operation is async under a stream deadline and run to completion
  // here: Beast's timeouts only apply to async operations.
  template <class Start>
  beast::error_code run(std::chrono::milliseconds timeout, Start start) {
    beast::error_code result = asio::error::would_block;
    lowest().expires_after(timeout);
    start([&result](beast::error_code ec, auto&&...) { result = ec; });
    ioc.restart();
    ioc.run();
    return result;
  }

  Result<void> connect() {
    close();
    tcp::resolver resolver(ioc);
    beast::error_code ec;
    auto results = resolver.resolve(endpoint.host, std::to_string(endpoint.port), ec);
    if (ec) return make_error(Errc::unavailable, "resolve " + endpoint.host + ": " + ec.message());
    if (tls_ctx) {
      tls.emplace(ioc, *tls_ctx);
      if (auto r = expect_peer_name(tls->native_handle(), endpoint.host); !r) return r.error();
    } else {
      plain.emplace(ioc);
    }
    ec = run(endpoint.connect_timeout, [&](auto h) { lowest().async_connect(results, h); });
    if (ec) {
      close();
      return make_error(ec == beast::error::timeout ? Errc::timeout : Errc::unavailable, "connect: " + ec.message());
    }
    beast::error_code nd;
    lowest().socket().set_option(tcp::no_delay(true), nd);
    if (tls) {
      ec = run(endpoint.connect_timeout, [&](auto h) { tls->async_handshake(ssl::stream_base::client, h); });
      if (ec) {
        // The reason the receiver's certificate was refused goes with the error.
        std::string text = handshake_failure_text(tls->native_handle(), ec.message());
        close();
        return make_error(ec == beast::error::timeout ? Errc::timeout : Errc::unavailable, text);
      }
    }
    deframer.emplace(endpoint.max_ack_bytes);
    return {};
  }

  // Writes the frame and reads until one complete frame arrives; bytes
  // before it are discarded by the deframer.
  Result<std::string> exchange(const std::string& framed) {
    auto deadline = std::chrono::steady_clock::now() + endpoint.ack_timeout;
    auto left = [&] {
      return std::max(std::chrono::milliseconds(1), std::chrono::duration_cast<std::chrono::milliseconds>(
                                                        deadline - std::chrono::steady_clock::now()));
    };
    beast::error_code ec = run(left(), [&](auto h) {
      if (tls)
        asio::async_write(*tls, asio::buffer(framed), h);
      else
        asio::async_write(*plain, asio::buffer(framed), h);
    });
    if (ec) return make_error(ec == beast::error::timeout ? Errc::timeout : Errc::unavailable, "write: " + ec.message());
    while (true) {
      if (auto f = deframer->pop()) {
        if (!*f) return make_error(Errc::too_large, "ACK: " + f->error().message);
        return std::move(f->value());
      }
      std::size_t n = 0;
      ec = run(left(), [&](auto h) {
        auto done = [h, &n](beast::error_code e, std::size_t got) mutable {
          n = got;
          h(e);
        };
        if (tls)
          tls->async_read_some(asio::buffer(buf), done);
        else
          plain->async_read_some(asio::buffer(buf), done);
      });
      if (n > 0) deframer->feed(std::string_view(buf.data(), n));
      if (ec) {
        if (auto f = deframer->pop(); f && *f) return std::move(f->value());
        return make_error(ec == beast::error::timeout ? Errc::timeout : Errc::unavailable,
                          "waiting for ACK: " + ec.message());
      }
    }
  }

  std::chrono::milliseconds backoff(int failed_attempts) {
    auto d = endpoint.initial_backoff;
    for (int i = 1; i < failed_attempts && d < endpoint.max_backoff; ++i) d *= 2;
    d = std::min(d, endpoint.max_backoff);
    // Jitter in [d/2, d]: receivers that restart are not hit by every
    // worker at the same instant.
    std::uniform_int_distribution<int64_t> dist(d.count() / 2, d.count());
    return std::chrono::milliseconds(dist(rng));
  }

  MllpEndpoint endpoint;
  asio::io_context ioc;
  std::unique_ptr<ssl::context> tls_ctx;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
  std::optional<beast::tcp_stream> plain;
  std::optional<hl7::Deframer> deframer;
  std::array<char, 16 * 1024> buf{};
  std::mt19937_64 rng;
};

MllpSender::MllpSender(MllpEndpoint endpoint) : impl_(std::make_unique<Impl>(std::move(endpoint))) {}
MllpSender::~MllpSender() = default;
MllpSender::MllpSender(MllpSender&&) noexcept = default;
MllpSender& MllpSender::operator=(MllpSender&&) noexcept = default;

bool MllpSender::connected() const { return impl_->connected(); }
void MllpSender::close() { impl_->close(); }

Result<SendOutcome> MllpSender::send(std::string_view er7) {
  Impl& im = *impl_;
  auto parsed = hl7::Message::parse(er7);
  if (!parsed) return parsed.error();
  if (parsed->msh().name() != "MSH") return make_error(Errc::invalid_input, "the message does not start with MSH");
  std::string control_id(parsed->control_id());
  if (control_id.empty()) return make_error(Errc::invalid_input, "the message has no MSH-10 control id");
  const std::string framed = hl7::frame(er7);

  SendOutcome out;
  int max_attempts = std::max(1, im.endpoint.max_attempts);
  bool free_retry = true;
  while (out.attempts < max_attempts) {
    if (out.attempts > 0) std::this_thread::sleep_for(im.backoff(out.attempts));
    ++out.attempts;
    bool reused = im.connected();
    if (!reused) {
      if (auto c = im.connect(); !c) {
        out.last_error = c.error().message;
        log::warn("mllp_send_failed",
                  {{"endpoint", im.where()}, {"attempt", out.attempts}, {"error", out.last_error}});
        continue;
      }
    }
    auto ack = im.exchange(framed);
    if (!ack) {
      im.close();
      out.last_error = ack.error().message;
      // A kept connection the receiver has since closed fails on first
      // use; that says nothing about the receiver, so try a fresh one at once.
      if (reused && free_retry) {
        free_retry = false;
        --out.attempts;
        continue;
      }
      log::warn("mllp_send_failed", {{"endpoint", im.where()}, {"attempt", out.attempts}, {"error", out.last_error}});
      continue;
    }
    auto msg = hl7::Message::parse(std::string_view(*ack));
    if (!msg || msg->segment("MSA").empty()) {
      im.close();
      out.status = SendStatus::bad_ack;
      out.last_error = msg ? "the ACK has no MSA segment" : "the ACK cannot be parsed: " + msg.error().message;
      return out;
    }
    hl7::Segment msa = msg->segment("MSA");
    out.ack_code = std::string(msa.field(1).raw());
    out.text = ack_text(*msg);
    if (msa.field(2).raw() != control_id) {
      // Possibly an answer meant for another message: this connection can
      // no longer be trusted to pair ACKs with messages.
      im.close();
      out.status = SendStatus::bad_ack;
      out.last_error = "ACK MSA-2 does not match the message's MSH-10";
      return out;
    }
    if (out.ack_code == "AA" || out.ack_code == "CA") {
      out.status = SendStatus::accepted;
      out.last_error.clear();
    } else if (out.ack_code == "AR" || out.ack_code == "CR") {
      out.status = SendStatus::rejected;
      out.permanent = true;
      out.last_error = "rejected (" + out.ack_code + ")";
    } else if (out.ack_code == "AE" || out.ack_code == "CE") {
      out.status = SendStatus::application_error;
      out.last_error = "application error (" + out.ack_code + ")";
    } else {
      im.close();
      out.status = SendStatus::bad_ack;
      out.last_error = "ACK MSA-1 is not an acknowledgement code";
    }
    return out;
  }
  out.status = SendStatus::unreachable;
  log::warn("mllp_send_gave_up", {{"endpoint", im.where()}, {"attempts", out.attempts}, {"error", out.last_error}});
  return out;
}

}  // namespace gw::delivery
