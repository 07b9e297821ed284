#pragma once
// Per-caller admission for the listeners: a token bucket (rate and burst)
// and a cap on the work one caller has in progress at once, shared by all of
// that caller's connections. A caller is a certificate identity (ODS code,
// role, system) or, for plain MLLP, the allow-list entry its address matched;
// never anything from a message, so no patient identifier reaches a label.
//
// HTTPS answers a refused request with 429 and Retry-After; MLLP never
// refuses a message (an ACK must mean committed) but stops reading from the
// caller until it may go on, which pushes back through TCP.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "gateway/common/metrics.h"
#include "gateway/config/limits.h"
#include "gateway/security/principal.h"

namespace gw::net {

class PrincipalLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  struct Admission {
    bool admitted = false;
    // Why not ("rate" or "concurrency") and when to try again.
    std::string reason;
    std::chrono::milliseconds retry_after{0};
  };

  // `listener` ("https", "mllp") prefixes the metric labels.
  PrincipalLimiter(const config::CallerLimits& limits, std::string listener, metrics::Registry& metrics);

  // Takes a token and an in-progress slot for one request or message. Each
  // admitted call must be matched by one release(). Thread-safe.
  Admission admit(const security::Principal& who, Clock::time_point now = Clock::now());
  void release(const security::Principal& who);

  bool enabled() const { return rate_ > 0 || max_concurrent_ > 0; }

  // "ODS/role/system" with anything outside a safe alphabet replaced: the
  // metric label (and log key) for a caller.
  static std::string key(const security::Principal& who);

 private:
  struct Bucket {
    double tokens = 0;
    Clock::time_point refilled;
    size_t in_progress = 0;
    metrics::Counter* admitted = nullptr;
    metrics::Counter* rate_limited = nullptr;
    metrics::Counter* concurrency_limited = nullptr;
    metrics::Gauge* in_progress_gauge = nullptr;
  };
  Bucket& bucket(const std::string& key, Clock::time_point now);

  double rate_;
  double burst_;
  size_t max_concurrent_;
  std::string listener_;
  metrics::Registry& metrics_;
  std::mutex mu_;
  // Bounded by the callers the PKI and the allow-list can name.
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace gw::net
