#pragma once
// /healthz (the process answers), /readyz (the store accepts work and the
// gateway is not draining) and /metrics (Prometheus text, policy operation "metrics").
#include <atomic>
#include <functional>

#include "gateway/common/metrics.h"
#include "gateway/net/http.h"
#include "gateway/security/policy.h"

namespace gw::ops {

class OpsApi final : public net::Handler {
 public:
  // ready() is asked on every /readyz; it must be cheap and thread-safe.
  OpsApi(metrics::Registry& metrics, const security::Policy& policy, std::function<bool()> ready);
  void handle(net::Request req, net::Respond respond) override;

 private:
  metrics::Registry& metrics_;
  const security::Policy& policy_;
  std::function<bool()> ready_;
};

}  // namespace gw::ops
