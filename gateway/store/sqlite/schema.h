#pragma once
// The SQLite schema as an ordered list of migrations. A database records the
// steps applied in `schema_version`; opening applies only the missing ones, in
// one transaction, so a half-migrated file cannot exist. Steps are append-only:
// never edit a step that has shipped, add a new one.
#include <cstdint>
#include <vector>

#include "gateway/common/result.h"

namespace gw::store::sqlite {

class Connection;

struct Migration {
  int version;      // 1, 2, 3... in order
  const char* sql;  // may hold several statements
  // Run after `sql` in the same transaction, for data a statement cannot
  // move (version 6 re-lays rows out); nullptr for most steps.
  Result<void> (*step)(Connection&) = nullptr;
};

// Version 6: the rows of rows.h from the version-5 tables (upgrade_v6.cc).
Result<void> upgrade_to_v6(Connection& c);

const std::vector<Migration>& migrations();

// What opening the store does, or would do: the version it is at and the
// steps it lacks.
struct MigrationRun {
  int64_t from = 0;        // MAX(schema_version) before; 0 for a new file
  int known = 0;           // the last step this binary has
  std::vector<int> steps;  // applied, or (dry run) applied and rolled back
};

// Applies the missing migrations inside one IMMEDIATE transaction; a dry run
// applies them the same way and rolls back, so it proves they apply to this
// data without changing it. A store at a step this binary does not know (a
// downgrade) is refused, naming both versions: its newer tables may hold
// what an older gateway would silently ignore.
Result<MigrationRun> run_migrations(Connection& c, const char* now_iso, bool dry_run);

// run_migrations(c, now, false), answering the number of steps applied.
Result<int> migrate(Connection& c, const char* now_iso);

}  // namespace gw::store::sqlite
