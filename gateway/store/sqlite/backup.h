#pragma once
// `cpis-gateway backup`: a consistent copy of a live embedded store, taken
// with SQLite's online backup API while the gateway goes on writing. Only the
// database path and the sqlite3 C API: it does not open the Store, so it can
// run beside a serving gateway (another process) without touching its writer.
#include <cstdint>
#include <string>

#include "gateway/common/result.h"

namespace gw::store::sqlite {

struct BackupReport {
  int64_t pages = 0;
  int64_t bytes = 0;
};

// Copies the database at db_path into a new file `to` as one snapshot: every
// transaction committed before the copy's read transaction began is in it,
// none that committed after. The copy is written beside `to` first, checked
// with PRAGMA integrity_check, switched to a rollback journal (one
// self-contained file, nothing to forget beside it), fsync'd and only then
// renamed to `to`; `to` must not exist yet. Errors name the file and SQLite's
// reason.
Result<BackupReport> backup_database(const std::string& db_path, const std::string& to);

}  // namespace gw::store::sqlite
