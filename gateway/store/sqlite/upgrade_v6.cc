// Schema version 6: the rows of the version-5 tables (resources,
// resource_history, search_index, patient_key, changes) moved into the
// layout of rows.h, inside the migration's transaction, then dropped.
//
// The change feed keeps its numbers: a version that had a change row gets
// that seq as its vid, so the fan-out's and the GP feed's cursors and the
// events' change_seq still mean what they meant. A version older than the
// change feed (none, in a store written by the release before this one) gets
// a negative vid: the feed, which reads vids above a cursor of 0 or more,
// never offers it again. A current row without history (the first schema
// kept none) becomes that resource's only version.
#include <algorithm>
#include <map>
#include <tuple>

#include "gateway/common/clock.h"
#include "gateway/store/sqlite/rows.h"
#include "gateway/store/sqlite/schema.h"

namespace gw::store::sqlite {

namespace {

struct OldVersion {
  int64_t version = 0;
  int64_t ts = 0;
  bool deleted = false;
  std::string body;
};

struct OldResource {
  std::string type, id;
  std::vector<OldVersion> versions;  // ascending
  int64_t current_version = 0;
  bool current_deleted = false;
  int64_t current_ts = 0;
  std::vector<IndexEntry> index;
  std::optional<std::string> ukey;
};

Result<int64_t> ms_of(const std::string& iso) {
  auto ms = clock::parse_iso_ms(iso);
  if (!ms) return make_error(Errc::store_failure, "a stored time is not an instant: " + iso.substr(0, 40));
  return *ms;
}

template <class F>
Result<void> each_row(Connection& c, const char* sql, F f) {
  auto st = c.prepare(sql);
  if (!st) return st.error();
  for (;;) {
    auto row = st->step();
    if (!row) return row.error();
    if (!*row) return {};
    if (auto r = f(*st); !r) return r;
  }
}

}  // namespace

Result<void> upgrade_to_v6(Connection& c) {
  using Key = std::pair<std::string, std::string>;
  std::map<Key, OldResource> all;
  auto r = each_row(c, "SELECT type, id, version, last_updated, deleted, body FROM resource_history",
                    [&](Statement& st) -> Result<void> {
                      OldResource& res = all[{st.text(0), st.text(1)}];
                      res.type = st.text(0);
                      res.id = st.text(1);
                      auto ts = ms_of(st.text(3));
                      if (!ts) return ts.error();
                      res.versions.push_back(OldVersion{st.int64(2), *ts, st.int64(4) != 0, st.text(5)});
                      return {};
                    });
  if (!r) return r;
  r = each_row(c, "SELECT type, id, version, last_updated, deleted, body FROM resources",
               [&](Statement& st) -> Result<void> {
    auto ts = ms_of(st.text(3));
    if (!ts) return ts.error();
    auto it = all.find({st.text(0), st.text(1)});
    if (it == all.end()) {
      // Written before history was kept: the current version is all there is.
      it = all.emplace(Key{st.text(0), st.text(1)}, OldResource{}).first;
      it->second.type = st.text(0);
      it->second.id = st.text(1);
      it->second.versions.push_back(OldVersion{st.int64(2), *ts, st.int64(4) != 0, st.text(5)});
    }
    it->second.current_version = st.int64(2);
    it->second.current_ts = *ts;
    it->second.current_deleted = st.int64(4) != 0;
    return {};
  });
  if (!r) return r;
  r = each_row(c, "SELECT type, id, param, system, value FROM search_index", [&](Statement& st) -> Result<void> {
    auto it = all.find({st.text(0), st.text(1)});
    if (it != all.end()) it->second.index.push_back(IndexEntry{st.text(2), st.text(3), st.text(4)});
    return {};
  });
  if (!r) return r;
  r = each_row(c, "SELECT key, id FROM patient_key", [&](Statement& st) -> Result<void> {
    auto it = all.find({"Patient", st.text(1)});
    if (it != all.end()) it->second.ukey = st.text(0);
    return {};
  });
  if (!r) return r;
  std::map<std::tuple<std::string, std::string, int64_t>, int64_t> seq_of;
  r = each_row(c, "SELECT type, id, version, seq FROM changes", [&](Statement& st) -> Result<void> {
    seq_of[{st.text(0), st.text(1), st.int64(2)}] = st.int64(3);
    return {};
  });
  if (!r) return r;

  // Creation order: the time of each resource's first version.
  std::vector<OldResource*> order;
  for (auto& [k, res] : all) {
    std::sort(res.versions.begin(), res.versions.end(),
              [](const OldVersion& a, const OldVersion& b) { return a.version < b.version; });
    order.push_back(&res);
  }
  std::stable_sort(order.begin(), order.end(), [](const OldResource* a, const OldResource* b) {
    return a->versions.front().ts < b->versions.front().ts;
  });

  std::map<std::string, int> bits;
  int64_t rid = 0, older = 0;
  for (OldResource* res : order) {
    ++rid;
    int64_t prev = 0, current_vid = 0;
    bool was_deleted = true;
    for (const auto& v : res->versions) {
      auto s = seq_of.find({res->type, res->id, v.version});
      int64_t vid = s != seq_of.end() ? s->second : --older;
      int op = v.deleted ? kOpDelete : was_deleted ? kOpCreate : kOpUpdate;
      auto st = c.cached("INSERT INTO ver(vid, rid, version, ts, op, prev, body) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)");
      if (!st) return st.error();
      st->bind(1, vid).bind(2, rid).bind(3, v.version).bind(4, v.ts).bind(5, int64_t{op}).bind(6, prev);
      st->bind(7, std::string_view(v.body.data(), v.body.size()));
      if (auto w = st->run(); !w) return w.error();
      if (v.version == res->current_version) current_vid = vid;
      prev = vid;
      was_deleted = v.deleted;
    }
    if (current_vid == 0) return make_error(Errc::store_failure, "a current version is missing from the history");
    int64_t labels = 0;
    for (const auto& e : res->index) {
      if (e.param != "_security") continue;
      auto it = bits.find(e.value);
      if (it == bits.end()) {
        if (bits.size() > 62) return make_error(Errc::store_failure, "more than 63 distinct security label codes");
        it = bits.emplace(e.value, static_cast<int>(bits.size())).first;
      }
      labels |= int64_t{1} << it->second;
    }
    auto keys = index_keys(res->index);
    auto st = c.cached(
        "INSERT INTO res(rid, type, id, vid, version, ts, deleted, labels, keys, ukey) "
        "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
    if (!st) return st.error();
    st->bind(1, rid).bind(2, res->type).bind(3, res->id).bind(4, current_vid).bind(5, res->current_version);
    st->bind(6, res->current_ts).bind(7, int64_t{res->current_deleted}).bind(8, labels);
    st->bind_blob(9, encode_keys(keys));
    if (res->ukey) st->bind(10, *res->ukey);
    else st->bind_null(10);
    if (auto w = st->run(); !w) return w.error();
    for (const auto& e : keys) {
      auto ix = c.cached("INSERT OR IGNORE INTO idx(value, type, param, system, rid) VALUES(?1, ?2, ?3, ?4, ?5)");
      if (!ix) return ix.error();
      ix->bind(1, e.value).bind(2, res->type).bind(3, e.param).bind(4, e.system).bind(5, rid);
      if (auto w = ix->run(); !w) return w.error();
    }
    if (res->ukey) {
      auto pk = c.cached("INSERT INTO pkey(key, rid) VALUES(?1, ?2)");
      if (!pk) return pk.error();
      pk->bind(1, *res->ukey).bind(2, rid);
      if (auto w = pk->run(); !w) return w.error();
    }
  }
  for (const auto& [code, bit] : bits) {
    auto st = c.cached("INSERT INTO labels(bit, code) VALUES(?1, ?2)");
    if (!st) return st.error();
    st->bind(1, int64_t{bit}).bind(2, code);
    if (auto w = st->run(); !w) return w.error();
  }
  return c.exec(
      "DROP TABLE resources; DROP TABLE resource_history; DROP TABLE search_index; DROP TABLE patient_key; "
      "DROP TABLE changes");
}

}  // namespace gw::store::sqlite
