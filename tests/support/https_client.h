#pragma once
// A small synchronous HTTPS/1.1 client for tests and benchmarks: mutual TLS
// with the dev PKI, keep-alive, and raw writes for pipelining tests; and one
// plain-HTTP request for the operations listener. Beast
// stays in the .cc so tests that use it compile fast.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gateway/common/result.h"

namespace gw::test {

struct ClientResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  bool keep_alive = true;

  std::optional<std::string> header(std::string_view lower_name) const;
};

class HttpsClient {
 public:
  // cert_file/key_file empty: no client certificate is offered.
  HttpsClient(std::string host, uint16_t port, std::string ca_file, std::string cert_file = "",
              std::string key_file = "");
  ~HttpsClient();
  HttpsClient(HttpsClient&&) noexcept;
  HttpsClient& operator=(HttpsClient&&) noexcept;

  // 127.0.0.1:port with ca.pem and client-<role>.pem/.key from dev_pki_dir().
  static HttpsClient for_role(uint16_t port, const std::string& role);

  // Highest TLS version offered (an OpenSSL constant such as TLS1_1_VERSION);
  // takes effect on the next connect().
  void set_max_tls_version(int version);
  // Bound on every connect, write and read; a stuck server fails the test
  // instead of hanging it.
  void set_timeout(std::chrono::milliseconds t);

  // TCP connect and TLS handshake; the error when the server refuses.
  Result<void> connect();
  bool connected() const;
  void close();

  // One request on the kept-alive connection; reconnects once when the server
  // had closed a reused connection. Content-Length and Host are added.
  Result<ClientResponse> request(std::string_view method, std::string_view target, std::string_view body = "",
                                 const std::vector<std::pair<std::string, std::string>>& headers = {});

  // For pipelining and malformed-request tests: write bytes as they are, then
  // read the responses one by one in the order the server sends them.
  Result<void> send_raw(std::string_view bytes);
  Result<ClientResponse> read_response();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One plain-HTTP/1.1 request to 127.0.0.1 (no TLS, no client certificate):
// what a load-balancer probe or a Prometheus scraper does to the operations
// listener.
Result<ClientResponse> plain_http_request(uint16_t port, std::string_view method, std::string_view target,
                                          std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace gw::test
