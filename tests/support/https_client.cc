#include "tests/support/https_client.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>

#include "tests/support/pki.h"

namespace gw::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {
Error net_error(std::string_view what, beast::error_code ec) {
  return make_error(Errc::unavailable, std::string(what) + ": " + ec.message());
}

ClientResponse to_client_response(http::response<http::string_body>&& msg) {
  ClientResponse out;
  out.status = static_cast<int>(msg.result_int());
  for (const auto& f : msg) {
    std::string name(f.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.headers.emplace_back(std::move(name), std::string(f.value()));
  }
  out.body = std::move(msg.body());
  out.keep_alive = msg.keep_alive();
  return out;
}
}  // namespace

std::optional<std::string> ClientResponse::header(std::string_view lower_name) const {
  for (const auto& [k, v] : headers)
    if (k == lower_name) return v;
  return std::nullopt;
}

struct HttpsClient::Impl {
  std::string host;
  uint16_t port = 0;
  std::string ca, cert, key;
  int max_version = 0;
  std::chrono::milliseconds timeout{10'000};
  asio::io_context ioc;
  std::unique_ptr<ssl::context> ctx;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> stream;
  beast::flat_buffer buffer;
  bool used = false;

  // Every operation is async with a stream deadline, run to completion here:
  // Beast's timeouts only apply to async operations.
  template <class Start>
  beast::error_code run(Start start) {
    beast::error_code result = asio::error::would_block;
    beast::get_lowest_layer(*stream).expires_after(timeout);
    start([&result](beast::error_code ec, auto&&...) { result = ec; });
    ioc.restart();
    ioc.run();
    return result;
  }

  void close() {
    if (stream) {
      beast::error_code ignored;
      beast::get_lowest_layer(*stream).socket().close(ignored);
      stream.reset();
    }
    buffer.clear();
    used = false;
  }

  bool connected() const { return stream && beast::get_lowest_layer(*stream).socket().is_open(); }

  Result<void> connect() {
    close();
    ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
    if (max_version != 0) SSL_CTX_set_max_proto_version(ctx->native_handle(), max_version);
    beast::error_code ec;
    ctx->load_verify_file(ca, ec);
    if (ec) return net_error("load CA " + ca, ec);
    ctx->set_verify_mode(ssl::verify_peer);
    if (!cert.empty()) {
      ctx->use_certificate_chain_file(cert, ec);
      if (ec) return net_error("load certificate " + cert, ec);
      ctx->use_private_key_file(key, ssl::context::pem, ec);
      if (ec) return net_error("load key " + key, ec);
    }
    stream = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(ioc, *ctx);
    auto addr = asio::ip::make_address(host, ec);
    if (ec) return net_error("address " + host, ec);
    // The server certificate names 127.0.0.1 as an IP SAN; check it as such.
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(stream->native_handle()), host.c_str());

    ec = run([&](auto h) { beast::get_lowest_layer(*stream).async_connect(tcp::endpoint{addr, port}, h); });
    if (ec) {
      close();
      return net_error("connect", ec);
    }
    beast::error_code nd;
    beast::get_lowest_layer(*stream).socket().set_option(tcp::no_delay(true), nd);
    ec = run([&](auto h) { stream->async_handshake(ssl::stream_base::client, h); });
    if (ec) {
      close();
      return net_error("handshake", ec);
    }
    // In TLS 1.3 the server judges the client certificate after the client
    // has finished its handshake, so a refusal arrives as an alert a moment
    // later; wait briefly for it so connect() reports it.
    if (SSL_version(stream->native_handle()) == TLS1_3_VERSION) {
      asio::steady_timer timer(ioc);
      timer.expires_after(std::chrono::milliseconds(150));
      beast::error_code probe = asio::error::would_block;
      beast::get_lowest_layer(*stream).expires_never();
      timer.async_wait([this](beast::error_code tec) {
        if (!tec) beast::get_lowest_layer(*stream).socket().cancel();
      });
      stream->async_read_some(buffer.prepare(16 * 1024), [&](beast::error_code rec, std::size_t n) {
        buffer.commit(n);
        probe = rec;
        timer.cancel();
      });
      ioc.restart();
      ioc.run();
      if (probe && probe != asio::error::operation_aborted) {
        close();
        return net_error("handshake", probe);
      }
    }
    return {};
  }

  Result<void> send_raw(std::string_view bytes) {
    if (!connected()) {
      auto c = connect();
      if (!c) return c.error();
    }
    auto ec = run([&](auto h) { asio::async_write(*stream, asio::buffer(bytes.data(), bytes.size()), h); });
    if (ec) {
      close();
      return net_error("write", ec);
    }
    used = true;
    return {};
  }

  // `head`: the answer to a HEAD, whose Content-Length describes a body that is not sent.
  Result<ClientResponse> read_response(bool head = false) {
    if (!connected()) return make_error(Errc::unavailable, "read: not connected");
    http::response_parser<http::string_body> parser;
    parser.skip(head);
    parser.body_limit(256u * 1024 * 1024);
    parser.header_limit(1024 * 1024);
    auto ec = run([&](auto h) { http::async_read(*stream, buffer, parser, h); });
    if (ec) {
      close();
      return net_error("read", ec);
    }
    ClientResponse out = to_client_response(parser.release());
    if (!out.keep_alive) close();
    return out;
  }

  Result<ClientResponse> once(std::string_view method, std::string_view target, std::string_view body,
                              const std::vector<std::pair<std::string, std::string>>& headers) {
    http::request<http::string_body> req;
    req.method_string(method);
    req.target(target);
    req.version(11);
    req.set(http::field::host, host + ":" + std::to_string(port));
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = std::string(body);
    req.prepare_payload();
    if (!connected()) {
      auto c = connect();
      if (!c) return c.error();
    }
    auto ec = run([&](auto h) { http::async_write(*stream, req, h); });
    if (ec) {
      close();
      return net_error("write", ec);
    }
    used = true;
    return read_response(method == "HEAD");
  }
};

HttpsClient::HttpsClient(std::string host, uint16_t port, std::string ca_file, std::string cert_file,
                         std::string key_file)
    : impl_(std::make_unique<Impl>()) {
  impl_->host = std::move(host);
  impl_->port = port;
  impl_->ca = std::move(ca_file);
  impl_->cert = std::move(cert_file);
  impl_->key = std::move(key_file);
}

HttpsClient::~HttpsClient() = default;
HttpsClient::HttpsClient(HttpsClient&&) noexcept = default;
HttpsClient& HttpsClient::operator=(HttpsClient&&) noexcept = default;

HttpsClient HttpsClient::for_role(uint16_t port, const std::string& role) {
  const std::string& pki = dev_pki_dir();
  return HttpsClient("127.0.0.1", port, pki + "/ca.pem", pki + "/client-" + role + ".pem",
                     pki + "/client-" + role + ".key");
}

void HttpsClient::set_max_tls_version(int version) { impl_->max_version = version; }
void HttpsClient::set_timeout(std::chrono::milliseconds t) { impl_->timeout = t; }
Result<void> HttpsClient::connect() { return impl_->connect(); }
bool HttpsClient::connected() const { return impl_->connected(); }
void HttpsClient::close() { impl_->close(); }

Result<ClientResponse> HttpsClient::request(std::string_view method, std::string_view target, std::string_view body,
                                            const std::vector<std::pair<std::string, std::string>>& headers) {
  bool reused = impl_->connected() && impl_->used;
  auto r = impl_->once(method, target, body, headers);
  // A kept-alive connection may have been closed by the server (idle timeout)
  // between requests; that is not the caller's error, so try a fresh one once.
  if (!r && reused) r = impl_->once(method, target, body, headers);
  return r;
}

Result<void> HttpsClient::send_raw(std::string_view bytes) { return impl_->send_raw(bytes); }
Result<ClientResponse> HttpsClient::read_response() { return impl_->read_response(); }

Result<ClientResponse> plain_http_request(uint16_t port, std::string_view method, std::string_view target,
                                          std::chrono::milliseconds timeout) {
  asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  beast::error_code ec;
  stream.expires_after(timeout);
  stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  if (ec) return net_error("connect", ec);
  http::request<http::string_body> req{http::string_to_verb(method), std::string(target), 11};
  req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
  req.keep_alive(false);
  req.prepare_payload();
  http::write(stream, req, ec);
  if (ec) return net_error("write", ec);
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(stream, buf, res, ec);
  if (ec) return net_error("read", ec);
  return to_client_response(std::move(res));
}

}  // namespace gw::test
