#pragma once
#include <chrono>
#include <cstddef>

namespace gw::config {

// Bounds applied to every connection; defaults documented in README.md.
struct Limits {
  size_t header_bytes = 8 * 1024;
  size_t body_bytes = 10 * 1024 * 1024;
  size_t max_connections = 1024;
  size_t max_pipelined = 16;  // requests read ahead of their responses per connection
  std::chrono::milliseconds handshake_timeout{10'000};
  std::chrono::milliseconds read_timeout{30'000};   // for a request once started
  std::chrono::milliseconds idle_timeout{60'000};   // keep-alive between requests
  std::chrono::milliseconds handler_timeout{30'000};  // 504 when a handler never answers
};

}  // namespace gw::config
