#pragma once
// The PostgreSQL schema as an ordered list of migrations, like the embedded
// store's (store/sqlite/schema.h): `schema_version` records the steps
// applied, opening applies the missing ones in one transaction, steps are
// append-only. Step 1 is the embedded store's layout 6 (rows.h) in
// PostgreSQL's types; there is no older PostgreSQL layout to upgrade. Step 2
// is layout 7 (durable timers). Step 3 is layout 8 (the audit trail in
// BALP's shape, hash-chained, with checkpoints; the writer of each version;
// what the console shows of a kept message).
//
// Nodes starting together: the migration runs under a session advisory lock
// (the schema's migration key), so each step is applied once.
#include <cstdint>
#include <string>
#include <vector>

#include "gateway/common/result.h"

namespace gw::store::pg {

class Conn;

struct Migration {
  int version;
  const char* sql;
  // Run after `sql` in the same transaction, for data a statement cannot
  // compute (step 3 chains the audit rows already there); nullptr for most.
  Result<void> (*step)(Conn&) = nullptr;
};

const std::vector<Migration>& migrations();

// What opening the store does, or would do (as store/sqlite/schema.h).
struct MigrationRun {
  int64_t from = 0;        // MAX(schema_version) before; 0 for an empty schema
  int known = 0;           // the last step this binary has
  std::vector<int> steps;  // applied, or (dry run) applied and rolled back
};

// Applies the missing steps in one transaction under the migration lock; a
// dry run applies them and rolls back (PostgreSQL's DDL is transactional).
// A schema at a step this binary does not know (a downgrade) is refused.
Result<MigrationRun> run_migrations(Conn& c, const std::string& now_iso, bool dry_run);

// Applies the missing steps; returns how many (0 when up to date).
Result<int> migrate(Conn& c, const std::string& now_iso);

// The advisory-lock keys, per schema (current_schema()), so that gateways
// on different schemas of one database (the test suite) never wait for each
// other. Two-integer form: (kLockSpace + n, hashtext(schema [|| ':' || name])).
inline constexpr int kLockSpace = 0x47570000;  // "GW"
inline constexpr int kWriterLock = kLockSpace + 1;     // one writing transaction at a time (commit order)
inline constexpr int kClaimLock = kLockSpace + 2;      // Store::claim
inline constexpr int kMigrationLock = kLockSpace + 3;  // migrate()

}  // namespace gw::store::pg
