#pragma once
// The rows of the PostgreSQL store (schema.cc, step 1: the embedded store's
// layout 6) and how one resource version lands in them. The same reads serve
// the reader pool and the writer's transaction (TxView).
//
// Differences from the embedded store, each for several nodes:
//  - rid and vid come from sequences, not from counters in one writer's
//    memory; vid is taken only inside the writer lock, so the change feed
//    (ver by vid) is in commit order across nodes (postgres_store.cc);
//  - labels are a text[] on res instead of a bit registry, so no node has to
//    agree with another on which bit a new label gets;
//  - the writer locks the res row it is about to change (FOR UPDATE), so a
//    transaction that reached it without the writer lock (none should) could
//    still not write the same version twice.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "gateway/common/result.h"
#include "gateway/store/postgres/pg.h"
#include "gateway/store/store.h"

namespace gw::store::pg {

Result<StoredResource> read_on(Conn& c, const std::string& type, const std::string& id);
Result<StoredResource> vread_on(Conn& c, const std::string& type, const std::string& id, int64_t version);
Result<std::vector<StoredResource>> history_on(Conn& c, const std::string& type, const std::string& id);
// `in_transaction`: the caller holds one, so page and total share a snapshot.
Result<SearchPage> search_on(Conn& c, const SearchQuery& q, bool in_transaction);
Result<std::vector<std::string>> match_on(Conn& c, const std::string& type, const std::vector<Match>& ms, int limit);
Result<std::optional<std::string>> unique_key_on(Conn& c, const std::string& key);
Result<std::vector<ChangeRow>> changes_after_on(Conn& c, int64_t after, int limit);

// Applies write ops on the writer's connection, inside its transaction and
// its writer lock.
class RowWriter {
 public:
  explicit RowWriter(Conn& c) : c_(c) {}
  // The latest version time written by any node, so versions' times never
  // run backwards along the feed (called once the writer lock is held).
  Result<void> load_clock();
  Result<OpOutcome> apply(const WriteOp& op, int64_t now_ms);

 private:
  struct Current {
    int64_t rid = 0, vid = 0, version = 0, ts = 0;
    bool deleted = false;
    std::string keys;
    std::optional<std::string> ukey;
  };
  Result<std::optional<Current>> current(const std::string& type, const std::string& id);
  Result<OpOutcome> create(const WriteOp& op, const std::string& id, int64_t now);
  Result<OpOutcome> write_version(const WriteOp& op, const Current& cur, int64_t now, bool deleted, int op_code);
  Result<void> check_unique_key(const WriteOp& op, int64_t rid);
  Result<void> replace_index(const std::string& type, int64_t rid, const std::string& old_keys,
                             const std::string& new_keys);
  Result<void> replace_unique_key(int64_t rid, const std::optional<std::string>& old_key,
                                  const std::optional<std::string>& new_key);

  Conn& c_;
  int64_t last_ts_ = 0;
};

inline constexpr int kOpCreate = 1, kOpUpdate = 2, kOpDelete = 3;

}  // namespace gw::store::pg
