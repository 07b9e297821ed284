#include "gateway/delivery/https_poster.h"

#include <openssl/ssl.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <optional>

#include "gateway/delivery/tls_client.h"

namespace gw::delivery {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

Result<Url> parse_https_url(std::string_view url) {
  constexpr std::string_view scheme = "https://";
  if (url.rfind(scheme, 0) != 0) return make_error(Errc::invalid_input, "endpoint must be an https:// URL");
  std::string_view rest = url.substr(scheme.size());
  Url u;
  auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  u.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (authority.empty()) return make_error(Errc::invalid_input, "endpoint has no host");
  if (authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) return make_error(Errc::invalid_input, "bad IPv6 literal in endpoint");
    u.host = std::string(authority.substr(1, close - 1));
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return make_error(Errc::invalid_input, "bad endpoint authority");
      u.port = std::string(authority.substr(close + 2));
    }
  } else {
    auto colon = authority.rfind(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) u.port = std::string(authority.substr(colon + 1));
  }
  if (u.host.empty() || u.port.empty() ||
      !std::all_of(u.port.begin(), u.port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return make_error(Errc::invalid_input, "bad endpoint host or port");
  }
  return u;
}

struct HttpsPoster::Impl {
  explicit Impl(ssl::context& c) : ctx(c) {}
  ssl::context& ctx;
  asio::io_context ioc;
  std::optional<beast::ssl_stream<beast::tcp_stream>> stream;
  std::string connected_to;  // host:port of the open connection
  beast::flat_buffer buffer;

  beast::tcp_stream& lowest() { return beast::get_lowest_layer(*stream); }

  // Beast's timeouts only apply to async operations: run each to completion here.
  template <class Start>
  beast::error_code run(std::chrono::steady_clock::time_point deadline, Start start) {
    beast::error_code result = asio::error::would_block;
    lowest().expires_at(deadline);
    start([&result](beast::error_code ec, auto&&...) { result = ec; });
    ioc.restart();
    ioc.run();
    return result;
  }

  void close() {
    if (stream) {
      beast::error_code ignored;
      lowest().socket().close(ignored);
    }
    stream.reset();
    connected_to.clear();
    buffer.clear();
  }

  Result<void> connect(const Url& u, std::chrono::steady_clock::time_point deadline) {
    close();
    tcp::resolver resolver(ioc);
    beast::error_code ec;
    auto results = resolver.resolve(u.host, u.port, ec);
    if (ec) return make_error(Errc::unavailable, "resolve: " + ec.message());
    stream.emplace(ioc, ctx);
    if (auto r = expect_peer_name(stream->native_handle(), u.host); !r) return r.error();
    ec = run(deadline, [&](auto h) { lowest().async_connect(results, h); });
    if (ec) {
      close();
      return make_error(ec == beast::error::timeout ? Errc::timeout : Errc::unavailable, "connect: " + ec.message());
    }
    beast::error_code nd;
    lowest().socket().set_option(tcp::no_delay(true), nd);
    ec = run(deadline, [&](auto h) { stream->async_handshake(ssl::stream_base::client, h); });
    if (ec) {
      // The subscription's error says why the endpoint was refused
      // ("certificate has expired", "hostname mismatch"), not just that it was.
      std::string text = handshake_failure_text(stream->native_handle(), ec.message());
      close();
      return make_error(ec == beast::error::timeout ? Errc::timeout : Errc::unavailable, text);
    }
    connected_to = u.host + ":" + u.port;
    return {};
  }

  Result<PostOutcome> exchange(const Url& u, const std::string& body,
                               const std::vector<std::pair<std::string, std::string>>& headers,
                               std::chrono::steady_clock::time_point deadline) {
    http::request<http::string_body> req{http::verb::post, u.target, 11};
    req.set(http::field::host, u.port == "443" ? u.host : u.host + ":" + u.port);
    req.set(http::field::content_type, "application/fhir+json");
    req.set(http::field::user_agent, "cpis-gateway");
    for (const auto& [k, v] : headers) req.set(k, v);
    req.keep_alive(true);
    req.body() = body;
    req.prepare_payload();
    beast::error_code ec = run(deadline, [&](auto h) { http::async_write(*stream, req, h); });
    if (ec) {
      close();
      return make_error(ec == beast::error::timeout ? Errc::timeout : Errc::unavailable, "write: " + ec.message());
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024);
    ec = run(deadline, [&](auto h) { http::async_read_header(*stream, buffer, parser, h); });
    if (ec) {
      close();
      return make_error(ec == beast::error::timeout ? Errc::timeout : Errc::unavailable, "read: " + ec.message());
    }
    bool body_complete = true;
    if (!parser.is_done()) {
      ec = run(deadline, [&](auto h) { http::async_read(*stream, buffer, parser, h); });
      // The receiver has answered once its status line and headers are in;
      // the body is only kept for error texts. Receivers in the wild end an
      // HTTP/1.0 answer without Content-Length by closing the connection,
      // often without a TLS close_notify (Python's http.server does), which
      // OpenSSL reports as a truncated stream: that still is the answer.
      body_complete = !ec;
    }
    auto& res = parser.get();
    PostOutcome out;
    out.status = static_cast<int>(res.result_int());
    out.body_head = res.body().substr(0, 200);
    if (!body_complete || !res.keep_alive()) close();
    return out;
  }
};

HttpsPoster::HttpsPoster(ssl::context& ctx) : impl_(std::make_unique<Impl>(ctx)) {}
HttpsPoster::~HttpsPoster() { impl_->close(); }
void HttpsPoster::close() { impl_->close(); }

Result<PostOutcome> HttpsPoster::post(const Url& url, const std::string& body,
                                      const std::vector<std::pair<std::string, std::string>>& headers,
                                      std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  bool reused = impl_->stream.has_value() && impl_->connected_to == url.host + ":" + url.port;
  if (!reused) {
    if (auto r = impl_->connect(url, deadline); !r) return r.error();
  }
  auto r = impl_->exchange(url, body, headers, deadline);
  if (!r && reused && r.error().code != Errc::timeout) {
    // The endpoint may have closed an idle kept-alive connection: one fresh try.
    if (auto c = impl_->connect(url, deadline); !c) return c.error();
    return impl_->exchange(url, body, headers, deadline);
  }
  return r;
}

}  // namespace gw::delivery
