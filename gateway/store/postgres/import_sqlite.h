#pragma once
// `cpis-gateway migrate --from-data-dir DIR --to-postgresql CONNINFO`: an
// embedded store copied into PostgreSQL, for an install that outgrew one
// node. Every table of layouts 6 and 7 is copied as it is — resources with their
// whole history (ver keeps its vids, so the change-feed cursors stay
// valid), the search index, the NHS-number keys, audit rows with their
// sequence numbers in order, outbox, inbound messages byte for byte,
// idempotency keys, cursors and subscription events — then verified.
//
// Restartable: each chunk of rows commits in one PostgreSQL transaction
// together with how far that table has got (migrate_progress), so a run that
// was interrupted (kill, power, network) goes on from the last chunk that
// committed, and never copies a row twice. A target that holds a gateway's
// data but no record of this migration is refused.
//
// The embedded gateway must be stopped: rows written after a table was
// copied would not be copied (the verification would then report the counts
// that differ).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "gateway/common/result.h"

namespace gw::store::pg {

struct TableReport {
  std::string table;
  int64_t source_rows = 0;
  int64_t target_rows = 0;
  int64_t copied_now = 0;  // by this run (the rest by an interrupted one)
};

struct ImportReport {
  std::vector<TableReport> tables;
  // SHA-256 over every audit row, in seq order, computed on each side: the
  // trail arrived whole, in order, unchanged. (The hash chain of issue 16,
  // once it exists, is copied as columns of these rows and so covered too.)
  std::string audit_digest_source, audit_digest_target;
  // The hash chain recomputed on the target (store/audit_chain.h): records
  // walked and the first problem, empty when it verifies.
  int64_t audit_chain_records = 0;
  std::string audit_chain_finding;
  bool verified = false;  // every count, the audit digest and the chain agree
};

struct ImportOptions {
  std::string sqlite_path;  // DIR/gateway.db
  std::string conninfo;
  int64_t chunk_rows = 5000;
  // Tests: called after each committed chunk with the table and the rows it
  // held; returning false stops the run there, as an interruption would.
  std::function<bool(const std::string&, int64_t)> after_chunk{};
};

Result<ImportReport> import_sqlite(const ImportOptions& o);

}  // namespace gw::store::pg
