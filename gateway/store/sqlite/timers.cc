#include "gateway/store/sqlite/timers.h"

namespace gw::store::sqlite {

namespace {

constexpr const char* kColumns = "key, kind, subject, due, payload, status, scheduled, settled";

Result<std::vector<TimerRow>> rows(Statement& st) {
  std::vector<TimerRow> out;
  for (;;) {
    auto row = st.step();
    if (!row) return row.error();
    if (!*row) return out;
    TimerRow t{st.text(0), st.text(1), st.text(2), st.text(3), st.text(4)};
    t.status = st.text(5);
    t.scheduled = st.text(6);
    t.settled = st.text(7);
    out.push_back(std::move(t));
  }
}

}  // namespace

Result<void> apply_timers(Connection& c, const UnitOfWork& u, const std::string& now) {
  for (const auto& set : u.timer_sets) {
    // Cancel every pending timer of the subject, then (re)instate the listed
    // ones: what is pending afterwards is exactly the set.
    auto cancel = c.cached(
        "UPDATE timers SET status = 'cancelled', settled = ?3 WHERE kind = ?1 AND subject = ?2 AND status = 'pending'");
    if (!cancel) return cancel.error();
    cancel->bind(1, set.kind).bind(2, set.subject).bind(3, now);
    if (auto r = cancel->run(); !r) return r.error();
    for (const auto& t : set.timers) {
      auto up = c.cached(
          "INSERT INTO timers(key, kind, subject, due, payload, status, scheduled) VALUES(?1, ?2, ?3, ?4, ?5, "
          "'pending', ?6) ON CONFLICT(key) DO UPDATE SET due = excluded.due, payload = excluded.payload, "
          "subject = excluded.subject, status = 'pending', settled = '' WHERE status != 'fired'");
      if (!up) return up.error();
      up->bind(1, t.key).bind(2, set.kind).bind(3, set.subject).bind(4, t.due).bind(5, t.payload).bind(6, now);
      if (auto r = up->run(); !r) return r.error();
    }
  }
  for (const auto& key : u.timers_fired) {
    auto st = c.cached("UPDATE timers SET status = 'fired', settled = ?2 WHERE key = ?1 AND status = 'pending'");
    if (!st) return st.error();
    st->bind(1, key).bind(2, now);
    if (auto r = st->run(); !r) return r.error();
    if (c.changes() != 1) return make_error(Errc::conflict, "timer is not pending (fired or cancelled already)", key);
  }
  return {};
}

Result<std::vector<TimerRow>> due_timers_on(Connection& c, const std::string& now, int limit) {
  static const std::string sql = std::string("SELECT ") + kColumns +
                                 " FROM timers WHERE status = 'pending' AND due <= ?1 ORDER BY due, key LIMIT ?2";
  auto st = c.cached(sql.c_str());
  if (!st) return st.error();
  st->bind(1, now).bind(2, static_cast<int64_t>(limit));
  return rows(*st);
}

Result<std::vector<TimerRow>> timers_of_on(Connection& c, const std::string& kind, const std::string& subject) {
  static const std::string sql =
      std::string("SELECT ") + kColumns + " FROM timers WHERE kind = ?1 AND subject = ?2 ORDER BY due, key";
  auto st = c.cached(sql.c_str());
  if (!st) return st.error();
  st->bind(1, kind).bind(2, subject);
  return rows(*st);
}

}  // namespace gw::store::sqlite
