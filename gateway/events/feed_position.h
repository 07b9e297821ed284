#pragma once
// A change-feed consumer's position (the fan-out, the GP-record feed, the
// flow timers): read once from its durable cursor, then the next page of
// changes after it; moved on only once the consumer's unit — carrying the
// cursor (Store UnitOfWork::cursor) — has committed.
//
// Among gateway nodes sharing one store (PostgreSQL), one node at a time
// consumes a feed: next() answers nothing unless this node holds the feed's
// claim (Store::claim; a node that dies frees it), and the unit's cursor is
// fenced (UnitOfWork::cursor_from), so a node that lost the claim can never
// commit a second copy of what it produced. A position regained, or moved on
// elsewhere, is read again from the store.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "gateway/common/log.h"
#include "gateway/common/result.h"
#include "gateway/store/store.h"

namespace gw::events {

class FeedPosition {
 public:
  explicit FeedPosition(std::string name) : name_(std::move(name)) {}

  // Up to `page` changes after the position, oldest first (empty: none new,
  // or another node consumes this feed now).
  Result<std::vector<store::ChangeRow>> next(store::Store& s, int page) {
    auto held = s.claim("feed:" + name_);
    if (!held) return held.error();
    if (!*held) {
      seq_ = -1;
      return std::vector<store::ChangeRow>{};
    }
    if (seq_ < 0) {
      auto c = s.cursor(name_);
      if (!c) return c.error();
      seq_ = *c;
      reread_ = true;
    }
    return s.changes_after(seq_, page);
  }
  // True once after the position was (re)read from the store: at start, or
  // when this node took the feed over (what another node's run changed meanwhile
  // may need reloading).
  bool take_reread() { return std::exchange(reread_, false); }
  // Sets the unit's cursor for consuming up to `last`, fenced on the position read.
  void consume_to(store::UnitOfWork& unit, int64_t last) const {
    unit.cursor = std::make_pair(name_, last);
    unit.cursor_from = seq_;
  }
  // After that unit committed.
  void advance(int64_t last) { seq_ = last; }
  // For a page that produced nothing to write: the cursor alone rides with
  // the next group commit (a lazy unit, nobody waits for it) instead of paying
  // a commit and an fsync of its own. Lost in a crash, the same changes are
  // looked at again, to the same nothing. A failure is only logged
  // (`what`): the next unit's fence then fails and the position is read again.
  Result<void> consume_lazily(store::Store& s, int64_t last, const char* what) {
    store::UnitOfWork unit;
    consume_to(unit, last);
    unit.lazy = true;
    auto r = s.commit(std::move(unit), [what](Result<store::CommitOutcome> res) {
      if (!res) log::warn(what, {{"reason", res.error().message}});
    });
    if (!r) return r.error();
    advance(last);
    return {};
  }
  // After that unit failed: true when because the position moved on
  // elsewhere (another node consumed these changes); it is read again next time.
  bool moved_elsewhere(const Error& e) {
    if (e.expression != "cursor") return false;
    seq_ = -1;
    return true;
  }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  int64_t seq_ = -1;  // not read yet
  bool reread_ = false;
};

}  // namespace gw::events
