#pragma once
// `cpis-gateway audit verify`: walks the trail of a data directory's store
// from its first record, recomputes the chain, holds it to every checkpoint
// (and to an anchor kept elsewhere) and checks each checkpoint's signature.
// Read-only: safe while the gateway runs on the same store.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

namespace gw::audit {

struct VerifyOptions {
  std::string db_path;   // the embedded store's file, or
  std::string conninfo;  // the PostgreSQL schema the gateways share (when set, db_path is not read)
  std::string ca_file;  // the CA the checkpoints' signer must chain to; "" = signatures checked, signer not
  std::optional<std::pair<int64_t, std::string>> anchor;  // (seq, chain hex) kept outside the store
};

struct VerifyResult {
  int exit_code = 0;  // 0 intact, 1 not intact (the first bad record named), 2 could not be checked
  std::string report;  // for people; never a patient identifier
};

VerifyResult verify_trail(const VerifyOptions& o);

// "SEQ:HEX" -> (seq, the 32 chain bytes); nullopt when malformed.
std::optional<std::pair<int64_t, std::string>> parse_anchor(const std::string& text);

}  // namespace gw::audit
