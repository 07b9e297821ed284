#pragma once
// The audit trail in the embedded store: the writer's side (numbering,
// stamping and chaining each row in commit order, checkpoints) and the
// readers' (BALP search, summaries for the data-flow reports, verification).
// What is hashed is store/audit_chain.h's, not this file's.
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "gateway/common/result.h"
#include "gateway/store/audit_chain.h"
#include "gateway/store/sqlite/connection.h"
#include "gateway/store/store.h"

namespace gw::store::sqlite {

// The writer's chain state over its connection. One writer thread, so the
// next seq and the head are kept in memory; a unit rolled back to its
// savepoint puts them back (mark/restore), a failed transaction reloads them.
class AuditTrailWriter {
 public:
  explicit AuditTrailWriter(Connection& c) : c_(c) {}
  Result<void> load();
  // Numbers, stamps (never earlier than the row before) and chains the row.
  Result<void> insert(const AuditRow& a, const std::string& now);
  Result<void> insert_checkpoint(const AuditCheckpoint& cp);
  // Audit retention: deletes the records up to `through` and the checkpoints
  // before it, keeping the checkpoint at `through` (it must exist) as the
  // kept trail's anchor. Errc::conflict when there is no checkpoint there.
  Result<void> prune_through(int64_t through);
  AuditHead head() const { return AuditHead{next_seq_ - 1, head_}; }

  struct Mark {
    int64_t next_seq;
    std::string head, last_ts;
  };
  Mark mark() const { return Mark{next_seq_, head_, last_ts_}; }
  void restore(const Mark& m) {
    next_seq_ = m.next_seq;
    head_ = m.head;
    last_ts_ = m.last_ts;
  }

 private:
  Connection& c_;
  int64_t next_seq_ = 1;
  std::string head_ = audit_chain::genesis();
  std::string last_ts_;
};

// Version 8's step: the rows written before the chain existed are hashed in
// order, each given its chain value (the new column; no old field changes),
// and a "migration" checkpoint states the chain at the last of them.
Result<void> chain_existing_audit(Connection& c);

// ---- reads (any connection) -----------------------------------------------------

Result<AuditPage> search_audit_on(Connection& c, const AuditQuery& q);
Result<AuditRecord> audit_record_on(Connection& c, int64_t seq);
Result<std::vector<AuditGroup>> summarise_audit_on(Connection& c, const AuditSummaryQuery& q);

// Verification of a database file, read-only (the gateway may be running on it).
using TrailReport = audit_chain::TrailReport;
Result<TrailReport> verify_audit_file(const std::string& path,
                                      std::optional<std::pair<int64_t, std::string>> anchor = std::nullopt);

}  // namespace gw::store::sqlite
