#pragma once
// A real rest-hook endpoint for tests: an HTTPS server (Beast, async, its own
// threads) with the dev PKI and mutual TLS — the caller must present a
// certificate from the dev CA — that records every POST with its headers and
// body and answers 200. It can be told to fail the next N requests, to be
// down (connections closed at once), to hang (never answer), or to be slow.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gateway/security/principal.h"

namespace gw::test {

struct ReceivedPost {
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  security::Principal peer;  // from the client certificate
  std::chrono::steady_clock::time_point at;

  std::string header(const std::string& lower_name) const;
};

class HookReceiver {
 public:
  // cert_name: the dev PKI certificate it presents ("server", or
  // "server-expired" / "server-wrong-host" for refusal tests).
  explicit HookReceiver(const std::string& cert_name = "server");
  ~HookReceiver();
  uint16_t port() const;
  std::string url(const std::string& path = "/hook") const;

  enum class Mode { ok, down, hang };
  void set_mode(Mode m);
  // The next n requests answer `status` (and are recorded as failures, not posts).
  void fail_next(int n, int status = 503);
  void set_delay(std::chrono::milliseconds d);
  // Per-path mode (for many subscriptions on one receiver); overrides set_mode.
  void set_path_mode(const std::string& path, Mode m);

  // Benchmarks: hand each POST to fn (on a receiver thread) instead of keeping it.
  void set_on_post(std::function<void(ReceivedPost&&)> fn);

  std::vector<ReceivedPost> posts() const;
  size_t failures() const;  // requests answered with an error status
  // Waits until pred(posts()) holds; false on timeout.
  bool wait_for(const std::function<bool(const std::vector<ReceivedPost>&)>& pred,
                std::chrono::milliseconds timeout) const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace gw::test
