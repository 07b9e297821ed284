#pragma once
// FHIR out to a legacy system over MLLP: renders a Bundle with an adapter
// (the SystmOne dialect for GP records) and sends it to the endpoint
// configured for the receiving organisation, checking the ACK and retrying
// transport failures (delivery::MllpSender). Blocking: call from a delivery worker,
// never a network thread. One connection per endpoint, kept open.
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "adapters/adapter.h"
#include "gateway/delivery/mllp_sender.h"

namespace gw::events {

class Hl7Outbound {
 public:
  // endpoints: receiving organisation ODS code -> where its system listens.
  Hl7Outbound(const adapters::Adapter& renderer, std::map<std::string, delivery::MllpEndpoint> endpoints);
  ~Hl7Outbound();

  bool has_endpoint(const std::string& ods) const;

  // Errc::not_found when no endpoint is configured for ods; Errc::unprocessable
  // when the Bundle cannot be rendered (issues say why); otherwise the send's
  // outcome, accepted or not (a rejection is not an Error: the caller decides
  // whether to dead-letter). control_id, when given, replaces the rendered
  // MSH-10: a queue that may resend after a crash gives the same message the
  // same id, so the receiver acknowledges the copy without filing it twice.
  Result<delivery::SendOutcome> send(const std::string& ods, const adapters::Bundle& bundle, IssueSink& issues,
                           const std::string& control_id = {});

 private:
  struct Link {
    std::mutex mu;  // delivery::MllpSender is not thread-safe; one message at a time per endpoint
    std::unique_ptr<delivery::MllpSender> sender;
    delivery::MllpEndpoint endpoint;
  };
  const adapters::Adapter& renderer_;
  std::map<std::string, std::unique_ptr<Link>> links_;
};

}  // namespace gw::events
