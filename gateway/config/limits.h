#pragma once
#include <chrono>
#include <cstddef>

namespace gw::config {

// Per caller (certificate identity, or allow-listed MLLP address): a token
// bucket refilled at rate_per_second holding up to burst; 0 = no rate limit.
// Over it HTTPS answers 429 with Retry-After and MLLP stops reading from that
// caller until a token is due. max_concurrent: requests (HTTPS) or
// unacknowledged messages (MLLP) of one caller being handled at once, across
// all its connections; 0 = unlimited.
struct CallerLimits {
  double rate_per_second = 0;
  size_t burst = 20;
  size_t max_concurrent = 64;
};

// Bounds applied to every connection; defaults documented in README.md.
struct Limits {
  size_t header_bytes = 8 * 1024;
  size_t body_bytes = 10 * 1024 * 1024;
  size_t max_connections = 1024;
  size_t max_pipelined = 16;  // requests read ahead of their responses per connection
  size_t max_query_params = 100;  // name=value pairs in one query string (400 beyond)
  std::chrono::milliseconds handshake_timeout{10'000};
  std::chrono::milliseconds read_timeout{30'000};   // for a request once started
  std::chrono::milliseconds idle_timeout{60'000};   // keep-alive between requests
  std::chrono::milliseconds handler_timeout{30'000};  // 504 when a handler never answers
  CallerLimits per_principal;  // shared with the MLLP listeners
};

}  // namespace gw::config
