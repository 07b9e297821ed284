#pragma once
// A change-feed consumer's position (the fan-out, the GP-record feed, the
// flow timers): read once from its durable cursor, then the next page of
// changes after it; moved on only once the consumer's unit — carrying the
// cursor (Store UnitOfWork::cursor) — has committed.
#include <cstdint>
#include <string>
#include <vector>

#include "gateway/common/result.h"
#include "gateway/store/store.h"

namespace gw::events {

class FeedPosition {
 public:
  explicit FeedPosition(std::string name) : name_(std::move(name)) {}

  // Up to `page` changes after the position, oldest first (empty: none new).
  Result<std::vector<store::ChangeRow>> next(store::Store& s, int page) {
    if (seq_ < 0) {
      auto c = s.cursor(name_);
      if (!c) return c.error();
      seq_ = *c;
    }
    return s.changes_after(seq_, page);
  }
  // The cursor row for the unit that consumes up to `last`.
  std::pair<std::string, int64_t> cursor_to(int64_t last) const { return {name_, last}; }
  // After that unit committed.
  void advance(int64_t last) { seq_ = last; }

 private:
  std::string name_;
  int64_t seq_ = -1;  // not read yet
};

}  // namespace gw::events
