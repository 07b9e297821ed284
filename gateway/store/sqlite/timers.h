#pragma once
// The durable timers of store.h (TimerRow, TimerSet) on SQLite: applied by
// the writer inside a unit's transaction, read on a reader connection.
// Kept apart from sqlite_store.cc so the timer rows stay one small seam.
#include <string>
#include <vector>

#include "gateway/common/result.h"
#include "gateway/store/sqlite/connection.h"
#include "gateway/store/store.h"

namespace gw::store::sqlite {

// Inside the unit's transaction: replaces schedules, then marks fired keys
// (Errc::conflict naming the key when one is not pending).
Result<void> apply_timers(Connection& c, const UnitOfWork& u, const std::string& now);

Result<std::vector<TimerRow>> due_timers_on(Connection& c, const std::string& now, int limit);
Result<std::vector<TimerRow>> timers_of_on(Connection& c, const std::string& kind, const std::string& subject);

}  // namespace gw::store::sqlite
