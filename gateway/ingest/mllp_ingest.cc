#include "gateway/ingest/mllp_ingest.h"

#include "gateway/common/log.h"
#include "gateway/hl7/ack.h"

namespace gw::ingest {

MllpIngestHandler::MllpIngestHandler(Hl7Ingest& ingest, std::string channel, size_t max_frame_bytes)
    : ingest_(ingest), channel_(std::move(channel)), max_frame_bytes_(max_frame_bytes) {}

void MllpIngestHandler::handle(net::MllpMessage msg, net::MllpReply reply) {
  Source src;
  src.channel = channel_;
  src.principal = std::move(msg.principal);
  src.conn_id = msg.conn_id;
  src.msg_id = msg.msg_id;
  ingest_.handle(std::move(msg.raw), std::move(src), [reply = std::move(reply)](IngestResult r) {
    reply(std::move(r.ack));
  });
}

std::string MllpIngestHandler::reject_oversized(const net::MllpMessage& partial_info, size_t frame_bytes) {
  // The frame was never buffered (that is the point of the limit), so there is
  // nothing to quarantine; the sender still has it and is told why.
  log::warn("mllp_frame_too_large", {{"conn", partial_info.conn_id},
                                     {"limit_bytes", static_cast<uint64_t>(max_frame_bytes_)},
                                     {"sender_ods", partial_info.principal.ods}});
  std::string text = "message larger than the " + std::to_string(max_frame_bytes_) + "-byte limit";
  hl7::AckError e{"MSH", 1, 0, hl7::ErrorCode::application_internal, text};
  (void)frame_bytes;
  return hl7::build_reject(text, {}, std::span<const hl7::AckError>(&e, 1));
}

}  // namespace gw::ingest
