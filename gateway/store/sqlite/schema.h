#pragma once
// The SQLite schema as an ordered list of migrations. A database records the
// steps applied in `schema_version`; opening applies only the missing ones, in
// one transaction, so a half-migrated file cannot exist. Steps are append-only:
// never edit a step that has shipped, add a new one.
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

// Applies the missing migrations inside one IMMEDIATE transaction. Returns the
// number of steps applied (0 when the file was up to date).
Result<int> migrate(Connection& c, const char* now_iso);

}  // namespace gw::store::sqlite
