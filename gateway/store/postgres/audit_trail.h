#pragma once
// The audit trail on PostgreSQL, as the embedded store keeps it
// (store/sqlite/audit_trail.h, docs/AUDIT.md): every row numbered, stamped
// and hash-chained in commit order, checkpoints beside it, BALP search,
// summaries for the data-flow reports, verification. The chain is
// store/audit_chain.h's, so a trail copied between engines verifies the same.
//
// Several nodes: a writing transaction holds the writer lock (kWriterLock),
// so one transaction at a time appends; the writer reads the trail's head
// after taking it (another node may have appended since), numbers its rows
// after that head and chains them on it.
#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gateway/common/result.h"
#include "gateway/store/audit_chain.h"
#include "gateway/store/store.h"

namespace gw::store::pg {

class Conn;

class AuditTrailWriter {
 public:
  explicit AuditTrailWriter(Conn& c) : c_(c) {}
  // The head as committed: once per transaction, under the writer lock.
  Result<void> load();
  Result<void> insert(const AuditRow& a, const std::string& now);
  Result<void> insert_checkpoint(const AuditCheckpoint& cp);
  // Audit retention (docs/AUDIT.md): the records up to a checkpoint and the
  // checkpoints before it go; the one at the cut stays as the anchor the
  // verifier starts the kept trail from. Refused when no checkpoint is there.
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
  Conn& c_;
  int64_t next_seq_ = 1;
  std::string head_ = audit_chain::genesis();
  std::string last_ts_;
};

// Step 3's data: the rows written before the chain existed are chained in
// order and a "migration" checkpoint states the chain at the last of them.
Result<void> chain_existing_audit(Conn& c);

Result<AuditPage> search_audit_on(Conn& c, const AuditQuery& q);
Result<AuditRecord> audit_record_on(Conn& c, int64_t seq);
Result<std::vector<AuditGroup>> summarise_audit_on(Conn& c, const AuditSummaryQuery& q);

// Verification of the trail in the schema `conninfo` names, in one snapshot.
using TrailReport = audit_chain::TrailReport;
Result<TrailReport> verify_audit(const std::string& conninfo,
                                 std::optional<std::pair<int64_t, std::string>> anchor = std::nullopt);

}  // namespace gw::store::pg
