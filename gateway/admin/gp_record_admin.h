#pragma once
// What became of the CP-IS plan messages for GP practices, for operators
// (admin role only):
//   GET /admin/gp-hl7          per practice: pending, delivered, dead, oldest pending
//   GET /admin/gp-hl7/{ODS}    that practice's messages not delivered (pending
//                              and dead, oldest first, at most 500) with the
//                              attempts and the last error (the reason a
//                              dead letter was given up, ACK text included)
// ("none" is the queue of plans whose patient has no registered practice).
// Replay: POST /admin/subscriptions/gp-hl7:{ODS}/replay-dead-letters or
// `cpis-gateway replay --dead-letters --subscription gp-hl7:{ODS}`.
#include "gateway/net/http.h"
#include "gateway/security/policy.h"
#include "gateway/store/store.h"

namespace gw::admin {

class GpRecordAdmin final : public net::Handler {
 public:
  GpRecordAdmin(store::Store& store, const security::Policy& policy) : store_(store), policy_(policy) {}
  void handle(net::Request req, net::Respond respond) override;

 private:
  void summary(net::Respond respond);
  void messages(const std::string& practice, net::Respond respond);
  store::Store& store_;
  const security::Policy& policy_;
};

}  // namespace gw::admin
