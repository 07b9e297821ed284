#pragma once
// The audit trail's hash chain, defined apart from any engine so that every
// Store implementation (SQLite today, PostgreSQL next) chains and verifies the
// same bytes. docs/AUDIT.md is the specification; this is its code.
//
//   chain(0)   = 32 zero bytes
//   chain(n)   = SHA-256( "cpis-gateway audit chain v1\n" || chain(n-1) || canonical(record n) )
//   canonical  = every field of the record, in the order of kFieldOrder, each
//                as a 4-byte big-endian length and its UTF-8 bytes; integers as
//                decimal text ("-1", "0", "200").
//
// The writer computes chain(n) as it inserts record n, in commit order, and
// stores it with the record; checkpoints state chain(n) at a record, signed
// (audit/checkpoints.h) so that a trail rewritten from some record on cannot
// be made to agree with them without the signing key.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/store/store.h"

namespace gw::store::audit_chain {

inline constexpr size_t kHashBytes = 32;
inline constexpr std::string_view kDomain = "cpis-gateway audit chain v1\n";
// The field order of canonical(), for the documentation and other engines.
inline constexpr std::string_view kFieldOrder =
    "seq ts actor_ods actor_role actor_system person action entity outcome http_status request_id detail "
    "patient_ref channel purpose src_ods src_system topic latency_ms items";
// What a "migration" checkpoint is signed by: nothing; it states the chain
// over the rows written before the chain existed.
inline constexpr std::string_view kMigrationSigner = "migration";

std::string genesis();
std::string canonical(const AuditRecord& r);
std::string next(std::string_view prev, const AuditRecord& r);
// The text a checkpoint's signature covers.
std::string checkpoint_message(const AuditCheckpoint& c);
std::string hex(std::string_view bytes);

// One problem found in the trail, at the first record it concerns.
struct Finding {
  int64_t seq = 0;
  std::string what;
};

// What verifying a trail found, whichever engine holds it.
struct TrailReport {
  int64_t records = 0, first_seq = 0, last_seq = 0;
  std::string head;  // hex
  std::vector<Finding> findings;
  std::vector<AuditCheckpoint> checkpoints;  // every stored checkpoint, by seq
  int64_t checkpoints_matched = 0;
};

// Walks a trail in seq order (feed every record, then finish) and says where
// it stops being the trail that was written. Engine-independent: an engine
// reads its rows and checkpoints and feeds them here.
class Verifier {
 public:
  // checkpoints: every stored checkpoint, by seq. anchor: an externally kept
  // (seq, chain) to hold the trail to. max_findings: stop collecting after
  // this many (the first is the one that matters).
  explicit Verifier(std::map<int64_t, AuditCheckpoint> checkpoints,
                    std::optional<std::pair<int64_t, std::string>> anchor = std::nullopt, size_t max_findings = 20);
  void feed(const AuditRecord& r);
  // After the last record: a checkpoint or anchor beyond it means records
  // were deleted from the end.
  void finish();

  const std::vector<Finding>& findings() const { return findings_; }
  int64_t records() const { return records_; }
  int64_t first_seq() const { return first_; }
  int64_t last_seq() const { return last_; }
  const std::string& head() const { return prev_; }
  // Checkpoints that matched the recomputed chain (their signatures are the caller's to check).
  int64_t checkpoints_matched() const { return matched_; }

 private:
  void find(int64_t seq, std::string what);
  void check_checkpoint(int64_t seq);

  std::map<int64_t, AuditCheckpoint> checkpoints_;
  std::optional<std::pair<int64_t, std::string>> anchor_;
  size_t max_findings_;
  std::vector<Finding> findings_;
  std::string prev_;
  int64_t expect_ = 0;  // the next seq; 0 before the first record
  int64_t first_ = 0, last_ = 0, records_ = 0, matched_ = 0;
  int64_t legacy_until_ = 0;  // rows up to this seq predate the chain (a migration checkpoint says so)
  bool started_ = false;
};

}  // namespace gw::store::audit_chain
