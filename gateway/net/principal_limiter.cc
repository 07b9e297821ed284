#include "gateway/net/principal_limiter.h"

#include <algorithm>
#include <cmath>

namespace gw::net {

PrincipalLimiter::PrincipalLimiter(const config::CallerLimits& limits, std::string listener, metrics::Registry& metrics)
    : rate_(limits.rate_per_second),
      burst_(static_cast<double>(std::max<size_t>(limits.burst, 1))),
      max_concurrent_(limits.max_concurrent),
      listener_(std::move(listener)),
      metrics_(metrics) {}

std::string PrincipalLimiter::key(const security::Principal& who) {
  std::string out = who.ods + "/" + who.role + "/" + who.system;
  for (char& c : out) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
              c == '/' || c == '.' || c == ' ';
    if (!ok) c = '_';
  }
  return out;
}

PrincipalLimiter::Bucket& PrincipalLimiter::bucket(const std::string& k, Clock::time_point now) {
  auto [it, fresh] = buckets_.try_emplace(k);
  Bucket& b = it->second;
  if (fresh) {
    b.tokens = burst_;
    b.refilled = now;
    std::string labels = "listener=\"" + listener_ + "\",principal=\"" + k + "\"";
    const char* help = "Requests or messages per caller by admission outcome";
    b.admitted = &metrics_.counter("gw_principal_requests_total", help, labels + ",outcome=\"admitted\"");
    b.rate_limited = &metrics_.counter("gw_principal_requests_total", help, labels + ",outcome=\"rate_limited\"");
    b.concurrency_limited =
        &metrics_.counter("gw_principal_requests_total", help, labels + ",outcome=\"concurrency_limited\"");
    b.in_progress_gauge =
        &metrics_.gauge("gw_principal_in_progress", "Requests or messages of a caller being handled", labels);
  }
  return b;
}

PrincipalLimiter::Admission PrincipalLimiter::admit(const security::Principal& who, Clock::time_point now) {
  std::string k = key(who);
  std::lock_guard lock(mu_);
  Bucket& b = bucket(k, now);
  Admission a;
  if (max_concurrent_ > 0 && b.in_progress >= max_concurrent_) {
    b.concurrency_limited->inc();
    a.reason = "concurrency";
    // Nothing says when one finishes; a second is a polite guess for a client.
    a.retry_after = std::chrono::seconds(1);
    return a;
  }
  if (rate_ > 0) {
    double elapsed = std::chrono::duration<double>(now - b.refilled).count();
    b.tokens = std::min(burst_, b.tokens + std::max(0.0, elapsed) * rate_);
    b.refilled = now;
    if (b.tokens < 1.0) {
      b.rate_limited->inc();
      a.reason = "rate";
      double wait_s = (1.0 - b.tokens) / rate_;
      a.retry_after = std::chrono::milliseconds(static_cast<int64_t>(std::ceil(wait_s * 1000.0)));
      return a;
    }
    b.tokens -= 1.0;
  }
  ++b.in_progress;
  b.in_progress_gauge->set(static_cast<int64_t>(b.in_progress));
  b.admitted->inc();
  a.admitted = true;
  return a;
}

void PrincipalLimiter::release(const security::Principal& who) {
  std::string k = key(who);
  std::lock_guard lock(mu_);
  auto it = buckets_.find(k);
  if (it == buckets_.end() || it->second.in_progress == 0) return;
  --it->second.in_progress;
  it->second.in_progress_gauge->set(static_cast<int64_t>(it->second.in_progress));
}

}  // namespace gw::net
