#pragma once
// The rows of the embedded store (schema version 6) and how one resource
// version lands in them. The layout is chosen so that a message touches a
// handful of pages, whatever the store's size:
//
//   ver   every version, written once, appended in commit order (its rowid,
//         the vid, is the change feed's seq); history follows `prev`.
//   res   one small row per logical resource (rid, assigned in creation
//         order): the current vid, version, time, labels as a bit set, and
//         the index keys of the current version, so that an update rewrites
//         only the index rows that changed — usually none.
//   idx   the search index, keyed by value first: the identifiers derived
//         from one NHS number sit on one page, references to a new Patient
//         (time-ordered ids) at the index's end.
//   pkey  one live Patient per NHS number (the constraint, not a check).
//   labels  the security-label codes and their bits.
//
// Ids the server assigns are time-ordered (model::new_uuid), so res_by_id
// grows at its end too. Nothing here knows FHIR beyond the rows it is given.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "gateway/common/result.h"
#include "gateway/store/index_keys.h"
#include "gateway/store/sqlite/connection.h"
#include "gateway/store/store.h"

namespace gw::store::sqlite {

// ---- reads (any connection) -----------------------------------------------------

Result<StoredResource> read_on(Connection& c, const std::string& type, const std::string& id);
Result<StoredResource> vread_on(Connection& c, const std::string& type, const std::string& id, int64_t version);
Result<std::vector<StoredResource>> history_on(Connection& c, const std::string& type, const std::string& id);
// A page (and total) of a search; `in_transaction`: the caller holds one, so
// the page and the total already share a snapshot.
Result<SearchPage> search_on(Connection& c, const SearchQuery& q, bool in_transaction);
Result<std::vector<std::string>> match_on(Connection& c, const std::string& type, const std::vector<Match>& ms,
                                          int limit);
Result<std::optional<std::string>> unique_key_on(Connection& c, const std::string& key);
Result<std::vector<ChangeRow>> changes_after_on(Connection& c, int64_t after, int limit);

// The SQL functions the searches use (gw_keys_has, gw_keys_min, gw_keys_max);
// on every connection that searches.
Result<void> register_functions(Connection& c);

// The index keys of a version, as kept in res.keys: gateway/store/index_keys.h.
using store::index_keys;
using store::encode_keys;
using store::decode_keys;

// ---- writes (the writer connection only) -----------------------------------------

// The writer's state over its connection: the label bits and the next rid
// and vid (one writer, so they are handed out in memory; a rolled-back unit
// leaves a gap, which nothing minds).
class RowWriter {
 public:
  explicit RowWriter(Connection& c) : c_(c) {}
  // Reads the counters and the label registry (after migrations).
  Result<void> load();
  // Applies one op as of `now_ms` (never earlier than the last version
  // written, so the feed's order and the versions' times agree).
  Result<OpOutcome> apply(const WriteOp& op, int64_t now_ms);
  // Before a failed transaction is rolled back as a whole: the counters and
  // labels it handed out are read again.
  Result<void> reload() { return load(); }

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
  Result<void> replace_index(const std::string& type, int64_t rid, std::string_view old_keys, const std::string& new_keys);
  Result<void> replace_unique_key(int64_t rid, const std::optional<std::string>& old_key,
                                  const std::optional<std::string>& new_key);
  Result<int64_t> label_bits(const std::vector<IndexEntry>& index);

  Connection& c_;
  int64_t next_rid_ = 1, next_vid_ = 1, last_ts_ = 0;
  std::map<std::string, int> bits_;
};

// Bits of the given label codes that the store has seen (a code never
// written hides nothing yet). Reads the registry on every call: a code
// added by the writer since must never be missed.
Result<int64_t> label_mask(Connection& c, const std::vector<std::string>& codes);

// The version operations recorded in ver.op.
inline constexpr int kOpCreate = 1, kOpUpdate = 2, kOpDelete = 3;

}  // namespace gw::store::sqlite
