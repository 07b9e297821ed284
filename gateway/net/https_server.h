#pragma once
// HTTPS/1.1 listener: Boost.Beast, async, one strand per connection, mutual
// TLS (1.2 and 1.3 only, client certificate required and verified against the
// configured CA), keep-alive with bounded pipelining, limits from Limits.
// The same sessions serve the plain-HTTP operations listener (plain_http).
#include <cstdint>
#include <memory>
#include <string>

#include "gateway/common/metrics.h"
#include "gateway/common/result.h"
#include "gateway/net/http.h"
#include "gateway/config/limits.h"
#include "gateway/net/tls.h"
#include "gateway/security/user_tokens.h"

namespace gw::net {

struct HttpsOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8443;  // 0 = ephemeral (tests)
  int threads = 2;       // network threads
  TlsFiles tls;
  config::Limits limits;
  // The operations listener (/healthz, /readyz, /metrics for probes and
  // scrapers): plain HTTP, no handshake, no client identity, so every request
  // reaches the router with an empty principal. Give it a router holding only
  // routes that need none; clinical routes stay on the mutual-TLS listener.
  bool plain_http = false;
  // Names of this listener's metrics (<prefix>_requests_total, ...), so the
  // operations listener's probes are not counted as FHIR traffic.
  std::string metrics_prefix = "gw_http";
  // Verifies a request's user token (Authorization: Bearer) and puts the
  // person on its principal; a token that does not verify is answered 401 or
  // 403 here, before any route sees it. Null: every token is refused (401),
  // since none can be verified. The plain-HTTP listener ignores the header.
  std::shared_ptr<const security::UserTokens> users;
};

class HttpsServer {
 public:
  // Throws std::runtime_error when the certificate files cannot be loaded or
  // the address cannot be bound (start-up configuration errors).
  HttpsServer(const HttpsOptions& opts, const Router& router, metrics::Registry& metrics);
  ~HttpsServer();
  HttpsServer(const HttpsServer&) = delete;
  HttpsServer& operator=(const HttpsServer&) = delete;

  // Starts the network threads; returns the bound port.
  uint16_t start();
  // Stops accepting, lets in-flight requests finish (up to the grace period),
  // then closes every connection and joins the threads.
  void shutdown(std::chrono::milliseconds grace);

  // Reads the certificate, key, client CA and CRLs again for connections
  // accepted from now on; open connections keep theirs. On error the
  // current files stay in use and the error names the bad one.
  Result<void> reload_tls();

  uint16_t port() const;
  size_t open_connections() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gw::net
