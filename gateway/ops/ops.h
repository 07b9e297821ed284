#pragma once
// /healthz (the process answers), /readyz (not draining and the store
// commits and reads back; the delivery backlog reported with it, see
// readiness.h) and /metrics (Prometheus text). Served on the mutual-TLS
// listener, where /metrics needs policy operation "metrics", and on the
// plain-HTTP operations listener (--ops-listen), where there is no client
// identity and the listener's address is the access control.
#include "gateway/common/metrics.h"
#include "gateway/net/http.h"
#include "gateway/ops/readiness.h"
#include "gateway/security/policy.h"

namespace gw::ops {

class OpsApi final : public net::Handler {
 public:
  enum class Access {
    policy,    // mutual-TLS listener: /metrics only for principals the policy allows
    listener,  // operations listener: anyone who can reach its address
  };
  OpsApi(metrics::Registry& metrics, const security::Policy& policy, Readiness& readiness,
         Access access = Access::policy);
  void handle(net::Request req, net::Respond respond) override;

 private:
  metrics::Registry& metrics_;
  const security::Policy& policy_;
  Readiness& readiness_;
  Access access_;
};

}  // namespace gw::ops
