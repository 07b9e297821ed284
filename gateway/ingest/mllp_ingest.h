#pragma once
// The MLLP listener's handler: each framed message goes through the HL7
// ingest pipeline and the listener writes back the ACK it produces, which is
// sent only once what it claims is committed.
#include <string>

#include "gateway/ingest/hl7_ingest.h"
#include "gateway/net/mllp_server.h"

namespace gw::ingest {

class MllpIngestHandler final : public net::MllpHandler {
 public:
  // channel: "mllp" (plain, allow-listed) or "mllp-tls"; recorded with each message.
  MllpIngestHandler(Hl7Ingest& ingest, std::string channel, size_t max_frame_bytes);
  void handle(net::MllpMessage msg, net::MllpReply reply) override;
  std::string reject_oversized(const net::MllpMessage& partial_info, size_t frame_bytes) override;

 private:
  Hl7Ingest& ingest_;
  std::string channel_;
  size_t max_frame_bytes_;
};

}  // namespace gw::ingest
