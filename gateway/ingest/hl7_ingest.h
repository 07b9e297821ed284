#pragma once
// One HL7 v2 message in, one ACK out — and the ACK means what it says:
//   AA  the FHIR the message maps to is committed durably (or was already:
//       the same MSH-10 from the same sender is acknowledged again, stored once);
//   AE  the message was understood but is invalid; the raw message is in the
//       quarantine (committed before the ACK) with every problem, ERR names the field;
//   AR  the message could not be processed at all (not HL7, unsupported type
//       or version), or the gateway could not store anything right now (the
//       sender keeps it and resends); quarantined when the store allows.
// Used by the MLLP listener, POST /ingest/{adapter} and `cpis-gateway replay`.
#include <functional>
#include <memory>
#include <string>

#include "adapters/adapter.h"
#include "gateway/common/metrics.h"
#include "gateway/security/principal.h"
#include "gateway/store/store.h"
#include "gateway/write/write_service.h"

namespace gw::ingest {

struct Source {
  std::string channel;  // "mllp", "mllp-tls", "http", "replay"
  security::Principal principal;
  uint64_t conn_id = 0, msg_id = 0;
  int64_t replay_of = 0;  // the quarantined inbound row this replays
};

enum class Outcome { accepted, duplicate, invalid, rejected, unavailable };
const char* outcome_name(Outcome o);

struct IngestResult {
  Outcome outcome = Outcome::rejected;
  std::string ack;         // the ER7 ACK to send back
  std::string control_id;  // MSH-10 (may be empty when unparseable)
  int64_t inbound_id = 0;  // the kept raw message (accepted or quarantined), 0 when none
  std::vector<Issue> issues;
};

class Hl7Ingest {
 public:
  Hl7Ingest(const adapters::Adapter& adapter, write::WriteService& writes, metrics::Registry& metrics);
  ~Hl7Ingest();

  // done is called exactly once, from a store thread, after whatever the ACK
  // claims has been committed.
  void handle(std::string raw, Source src, std::function<void(IngestResult)> done);

  // Re-runs a quarantined message through the current mapping; on success
  // the quarantined row is marked "replayed" in the same transaction.
  void replay(int64_t inbound_id, security::Principal who, std::function<void(Result<IngestResult>)> done);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace gw::ingest
