#include "gateway/ops/ops.h"

#include "gateway/common/issues.h"

namespace gw::ops {

OpsApi::OpsApi(metrics::Registry& metrics, const security::Policy& policy, Readiness& readiness, Access access)
    : metrics_(metrics), policy_(policy), readiness_(readiness), access_(access) {}

void OpsApi::handle(net::Request req, net::Respond respond) {
  net::Response r;
  if (req.method != "GET") {
    r.status = 405;
    r.route = "ops";
    r.body = operation_outcome(make_error(Errc::method_not_allowed, "operations endpoints accept GET"));
    respond(std::move(r));
    return;
  }
  if (req.path == "/healthz") {
    r.route = "healthz";
    r.content_type = "application/json";
    r.body = "{\"status\":\"ok\"}";
  } else if (req.path == "/readyz") {
    // Answered from the store's threads when a probe runs; never blocks this one.
    readiness_.check([respond = std::move(respond)](ReadinessReport rep) {
      net::Response rr;
      rr.route = "readyz";
      rr.content_type = "application/json";
      rr.status = rep.ready ? 200 : 503;
      rr.body = std::move(rep.body);
      respond(std::move(rr));
    });
    return;
  } else if (req.path == "/metrics") {
    r.route = "metrics";
    if (access_ == Access::policy && !policy_.allows_operation(req.principal, "metrics")) {
      r.status = 403;
      r.body = operation_outcome(make_error(Errc::forbidden, "role '" + req.principal.role + "' may not read metrics"));
    } else {
      r.content_type = "text/plain; version=0.0.4";
      r.body = metrics_.render();
    }
  } else {
    r.status = 404;
    r.route = "ops";
    r.body = operation_outcome(make_error(Errc::not_found, "no such endpoint"));
  }
  respond(std::move(r));
}

}  // namespace gw::ops
