#include "gateway/store/sqlite/rows.h"

#include <algorithm>
#include <iterator>
#include <optional>
#include <tuple>

#include <sqlite3.h>

#include "gateway/common/clock.h"

namespace gw::store::sqlite {

namespace {

// SQL text with its text parameters in bind order; values are never spliced.
struct Query {
  std::string sql;
  std::vector<std::string> binds;

  void add(std::string_view fragment) { sql += fragment; }
  void add(std::string_view fragment, std::string value) {
    sql += fragment;
    binds.push_back(std::move(value));
  }
};

// " AND i.param = ?", or IN over every name a search on `param` reads
// (index_keys.h: a `patient` search reads the `subject` rows too).
void add_param(Query& q, const std::string& param) {
  auto names = stored_params(param);
  if (names.size() == 1) return q.add(" AND i.param = ?", std::move(names[0]));
  q.add(" AND i.param IN (?", std::move(names[0]));
  for (size_t k = 1; k < names.size(); ++k) q.add(", ?", std::move(names[k]));
  q.add(")");
}

Result<Statement> prepare_query(Connection& c, const Query& q) {
  auto st = c.cached_text(q.sql);
  if (!st) return st.error();
  int i = 1;
  for (const auto& b : q.binds) st->bind(i++, b);
  return st;
}

const char* interaction_of(int64_t op) {
  return op == kOpCreate ? "create" : op == kOpDelete ? "delete" : "update";
}

// Restricts r (res) to rows having an index row for `param` matching one of
// the (system, value) pairs; system "" matches any system. idx is keyed by
// value first, so each alternative is one seek.
void restrict_exact(Query& q, const std::string& type, const std::string& param,
                    const std::vector<std::pair<std::string, std::string>>& any_of, bool negate = false) {
  if (any_of.empty()) {
    q.add(negate ? "" : " AND 0");  // an OR over nothing matches nothing
    return;
  }
  q.add(negate ? " AND r.rid NOT IN (SELECT i.rid FROM idx i WHERE " : " AND r.rid IN (SELECT i.rid FROM idx i WHERE ");
  bool first = true;
  for (const auto& [system, value] : any_of) {
    if (!first) q.add(" OR ");
    first = false;
    q.add("(i.value = ?", value);
    q.add(" AND i.type = ?", type);
    add_param(q, param);
    if (system == kNoSystem) q.add(" AND i.system = ''");
    else if (!system.empty()) q.add(" AND i.system = ?", system);
    q.add(")");
  }
  q.add(")");
}

// One date value against rows whose value is the low and system the high
// instant of what they cover (text that sorts as time). Each condition bounds
// i.value where the prefix allows it, so the seek starts at the right place.
void date_condition(Query& q, const DateRange& d) {
  const std::string& p = d.prefix;
  if (p == "eq" || p.empty()) {           // the row lies within the search range
    q.add("(i.value >= ?", d.low);
    q.add(" AND i.value < ?", d.high);
    q.add(" AND i.system <= ?)", d.high);
  } else if (p == "ne") {                 // it does not
    q.add("(i.value < ?", d.low);
    q.add(" OR i.system > ?)", d.high);
  } else if (p == "gt") {                 // some of it after the search range
    q.add("(i.system > ?)", d.high);
  } else if (p == "lt") {                 // some of it before
    q.add("(i.value < ?)", d.low);
  } else if (p == "ge") {                 // gt or eq
    q.add("(i.value >= ?", d.low);
    q.add(" OR i.system > ?)", d.high);
  } else if (p == "le") {                 // lt or eq
    q.add("(i.value < ?", d.low);
    q.add(" OR i.system <= ?)", d.high);
  } else if (p == "sa") {                 // starts after the search range ends
    q.add("(i.value >= ?)", d.high);
  } else if (p == "eb") {                 // ends before it starts
    q.add("(i.system <= ?)", d.low);
  } else {                                // ap: overlaps the (widened) range
    q.add("(i.value < ?", d.high);
    q.add(" AND i.system > ?)", d.low);
  }
}

void restrict_by_param(Query& q, const std::string& type, const ParamConstraint& c) {
  switch (c.kind) {
    case MatchKind::exact: return restrict_exact(q, type, c.param, c.any_of);
    case MatchKind::not_any: return restrict_exact(q, type, c.param, c.any_of, true);
    case MatchKind::missing:
    case MatchKind::present:
      // The resource's own key list answers without probing the index.
      q.add(c.kind == MatchKind::missing ? " AND NOT gw_keys_has(r.keys, ?)" : " AND gw_keys_has(r.keys, ?)", c.param);
      return;
    case MatchKind::prefix:
    case MatchKind::contains:
    case MatchKind::range: break;
  }
  bool empty = c.kind == MatchKind::range ? c.ranges.empty() : c.any_of.empty();
  if (empty) {
    q.add(" AND 0");
    return;
  }
  q.add(" AND r.rid IN (SELECT i.rid FROM idx i WHERE i.type = ?", type);
  add_param(q, c.param);
  q.add(" AND (");
  bool first = true;
  if (c.kind == MatchKind::range) {
    for (const auto& d : c.ranges) {
      if (!first) q.add(" OR ");
      first = false;
      date_condition(q, d);
    }
  } else {
    for (const auto& alt : c.any_of) {
      if (!first) q.add(" OR ");
      first = false;
      const auto& [system, v] = alt;
      if (c.kind == MatchKind::prefix) {
        // Every text starting with v sorts in [v, v + 0xFF): 0xFF never
        // occurs in UTF-8, so the range is exact and one seek.
        q.add("(i.value >= ?", v);
        q.add(" AND i.value < ?", v + '\xff');
      } else {
        q.add("(instr(substr(i.value, 1, instr(i.value || char(31), char(31)) - 1), ?) > 0", v);
      }
      if (!system.empty()) q.add(" AND i.system = ?", system);
      q.add(")");
    }
  }
  q.add("))");
}

// ORDER BY for _sort: each key, then creation order.
std::string order_by(Query& q, const SearchQuery& sq, bool selective) {
  std::string out = " ORDER BY ";
  for (const auto& k : sq.sort) {
    const char* dir = k.descending ? " DESC" : "";
    if (k.param == "_id") {
      out += std::string("r.id") + dir + ", ";
    } else if (k.param == "_lastUpdated") {
      out += std::string("r.ts") + dir + ", ";
    } else {
      // Rows without a value last in both directions.
      std::string fn = k.descending ? "gw_keys_max" : "gw_keys_min";
      out += fn + "(r.keys, ?) IS NULL, " + fn + "(r.keys, ?)" + dir + ", ";
      q.binds.push_back(k.param);
      q.binds.push_back(k.param);
    }
  }
  out += selective ? "+r.rid" : "r.rid";
  if (sq.newest_first) out += " DESC";
  return out;
}

constexpr const char* kColumns = "r.type, r.id, r.version, r.ts, r.deleted, v.body";

StoredResource row_to_resource(const Statement& st) {
  StoredResource r;
  r.type = st.text(0);
  r.id = st.text(1);
  r.version = st.int64(2);
  r.last_updated = clock::iso_ms(st.int64(3));
  r.deleted = st.int64(4) != 0;
  r.body = st.text(5);
  return r;
}

// The chain of versions from the current one back: (vid, version, ts, op, prev, body).
struct Link {
  int64_t vid, version, ts, op, prev;
};

Result<std::optional<int64_t>> current_vid(Connection& c, const std::string& type, const std::string& id) {
  auto st = c.cached("SELECT vid FROM res WHERE type = ?1 AND id = ?2");
  if (!st) return st.error();
  st->bind(1, type).bind(2, id);
  auto row = st->step();
  if (!row) return row.error();
  if (!*row) return std::optional<int64_t>();
  return std::optional<int64_t>(st->int64(0));
}

Result<std::optional<Link>> link_at(Connection& c, int64_t vid) {
  auto st = c.cached("SELECT version, ts, op, prev FROM ver WHERE vid = ?1");
  if (!st) return st.error();
  st->bind(1, vid);
  auto row = st->step();
  if (!row) return row.error();
  if (!*row) return std::optional<Link>();
  return std::optional<Link>(Link{vid, st->int64(0), st->int64(1), st->int64(2), st->int64(3)});
}

Result<std::string> body_at(Connection& c, int64_t vid) {
  auto st = c.cached("SELECT body FROM ver WHERE vid = ?1");
  if (!st) return st.error();
  st->bind(1, vid);
  auto row = st->step();
  if (!row) return row.error();
  if (!*row) return make_error(Errc::internal, "a version the chain names is missing");
  return st->text(0);
}

// A chain longer than this is corrupt data, not a history.
constexpr int kMaxChain = 1'000'000;

}  // namespace

// ---- reads --------------------------------------------------------------------

Result<StoredResource> read_on(Connection& c, const std::string& type, const std::string& id) {
  auto st = c.cached(
      "SELECT r.type, r.id, r.version, r.ts, r.deleted, v.body FROM res r JOIN ver v ON v.vid = r.vid "
      "WHERE r.type = ?1 AND r.id = ?2");
  if (!st) return st.error();
  st->bind(1, type).bind(2, id);
  auto row = st->step();
  if (!row) return row.error();
  if (!*row) return make_error(Errc::not_found, type + " not found");
  StoredResource r = row_to_resource(*st);
  if (r.deleted) return make_error(Errc::gone, type + " was deleted");
  return r;
}

Result<std::vector<StoredResource>> history_on(Connection& c, const std::string& type, const std::string& id) {
  auto cur = current_vid(c, type, id);
  if (!cur) return cur.error();
  if (!*cur) return make_error(Errc::not_found, type + " not found");
  std::vector<StoredResource> out;
  for (int64_t vid = **cur, n = 0; vid != 0 && n < kMaxChain; ++n) {
    auto l = link_at(c, vid);
    if (!l) return l.error();
    if (!*l) break;
    auto body = body_at(c, vid);
    if (!body) return body.error();
    out.push_back(StoredResource{type, id, (*l)->version, clock::iso_ms((*l)->ts), (*l)->op == kOpDelete,
                                 std::move(*body)});
    vid = (*l)->prev;
  }
  if (out.empty()) return make_error(Errc::not_found, type + " not found");
  return out;
}

Result<StoredResource> vread_on(Connection& c, const std::string& type, const std::string& id, int64_t version) {
  auto cur = current_vid(c, type, id);
  if (!cur) return cur.error();
  if (*cur) {
    for (int64_t vid = **cur, n = 0; vid != 0 && n < kMaxChain; ++n) {
      auto l = link_at(c, vid);
      if (!l) return l.error();
      if (!*l || (*l)->version < version) break;
      if ((*l)->version == version) {
        if ((*l)->op == kOpDelete) return make_error(Errc::gone, type + " version is a deletion");
        auto body = body_at(c, vid);
        if (!body) return body.error();
        return StoredResource{type, id, version, clock::iso_ms((*l)->ts), false, std::move(*body)};
      }
      vid = (*l)->prev;
    }
  }
  return make_error(Errc::not_found, type + " version not found");
}

Result<int64_t> label_mask(Connection& c, const std::vector<std::string>& codes) {
  int64_t mask = 0;
  for (const auto& code : codes) {
    auto st = c.cached("SELECT bit FROM labels WHERE code = ?1");
    if (!st) return st.error();
    st->bind(1, code);
    auto row = st->step();
    if (!row) return row.error();
    if (*row) mask |= int64_t{1} << st->int64(0);
  }
  return mask;
}

namespace {

Result<Query> search_where(Connection& c, const SearchQuery& q, bool& selective) {
  Query w;
  w.add(" FROM res r JOIN ver v ON v.vid = r.vid WHERE r.type = ?", q.type);
  w.add(" AND r.deleted = 0");
  selective = !q.ids.empty() || !q.params.empty();
  if (!q.ids.empty()) {
    w.add(" AND r.id IN (");
    for (size_t i = 0; i < q.ids.size(); ++i) w.add(i ? ", ?" : "?", q.ids[i]);
    w.add(")");
  }
  for (const auto& p : q.params) restrict_by_param(w, q.type, p);
  if (!q.exclude_security.empty()) {
    auto mask = label_mask(c, q.exclude_security);
    if (!mask) return mask.error();
    // The caller's hidden labels as bits: one AND per candidate, no index
    // rows to probe.
    if (*mask) w.add(" AND (r.labels & " + std::to_string(*mask) + ") = 0");
  }
  auto bound = [&](const std::optional<std::string>& b, const char* op) -> Result<void> {
    if (!b) return {};
    auto ms = clock::parse_iso_ms(*b);
    if (!ms) return make_error(Errc::invalid_input, "not an instant: " + *b, "_lastUpdated");
    w.sql += std::string(" AND r.ts ") + op + " " + std::to_string(*ms);
    return {};
  };
  if (auto r = bound(q.updated_ge, ">="); !r) return r.error();
  if (auto r = bound(q.updated_gt, ">"); !r) return r.error();
  if (auto r = bound(q.updated_le, "<="); !r) return r.error();
  if (auto r = bound(q.updated_lt, "<"); !r) return r.error();
  if (!selective && (q.updated_ge || q.updated_gt)) {
    // "What changed since": driven by the versions' time index, so polling a
    // large store costs what changed, not the whole type.
    auto lo = clock::parse_iso_ms(q.updated_ge ? *q.updated_ge : *q.updated_gt);
    w.sql += " AND r.vid IN (SELECT vid FROM ver WHERE ts >= " + std::to_string(*lo) + ")";
    selective = true;
  }
  return w;
}

}  // namespace

Result<SearchPage> search_on(Connection& c, const SearchQuery& q, bool in_transaction) {
  if (q.type.empty()) return make_error(Errc::invalid_input, "search without a resource type");
  if (q.count < 0 || q.offset < 0) return make_error(Errc::invalid_input, "negative _count or offset");
  auto body = [&]() -> Result<SearchPage> {
    bool selective = false;
    auto where = search_where(c, q, selective);
    if (!where) return where.error();
    SearchPage page;
    // Creation order (rid): stable under updates, so a page never shifts
    // because a resource on it changed. "+": with an index constraint the few
    // matching rows are found by key and sorted, not by walking the type.
    Query sel;
    sel.binds = where->binds;
    std::string order = order_by(sel, q, selective);
    sel.sql = std::string("SELECT ") + kColumns + where->sql + order + " LIMIT ? OFFSET ?";
    auto st = prepare_query(c, sel);
    if (!st) return st.error();
    int n = static_cast<int>(sel.binds.size());
    st->bind(n + 1, static_cast<int64_t>(q.count)).bind(n + 2, q.offset);
    for (;;) {
      auto row = st->step();
      if (!row) return row.error();
      if (!*row) break;
      page.items.push_back(row_to_resource(*st));
    }
    if (q.want_total) {
      Query cnt;
      cnt.sql = "SELECT count(*)" + where->sql;
      cnt.binds = where->binds;
      auto ct = prepare_query(c, cnt);
      if (!ct) return ct.error();
      auto row = ct->step();
      if (!row) return row.error();
      page.total = ct->int64(0);
    }
    return page;
  };
  if (in_transaction) return body();
  // One read transaction so the page and the total see the same snapshot.
  auto begin = c.cached("BEGIN");
  if (!begin) return begin.error();
  if (auto r = begin->run(); !r) return r.error();
  auto page = body();
  auto commit = c.cached("COMMIT");
  if (auto r = commit ? commit->run() : Result<void>(commit.error()); !r) {
    (void)c.exec("ROLLBACK");
    if (page) return r.error();
  }
  return page;
}

Result<std::vector<std::string>> match_on(Connection& c, const std::string& type, const std::vector<Match>& ms,
                                          int limit) {
  std::vector<std::string> out;
  if (ms.size() == 1 && stored_params(ms[0].param).size() == 1) {
    // The common case (a conditional entry on one identifier): one fixed statement.
    auto st = c.cached(
        "SELECT r.id FROM idx i JOIN res r ON r.rid = i.rid WHERE i.value = ?1 AND i.type = ?2 AND i.param = ?3 "
        "AND (?4 = '' OR i.system = ?4) AND r.deleted = 0 ORDER BY r.rid LIMIT ?5");
    if (!st) return st.error();
    st->bind(1, ms[0].value).bind(2, type).bind(3, ms[0].param).bind(4, ms[0].system).bind(5, int64_t{limit});
    for (;;) {
      auto row = st->step();
      if (!row) return row.error();
      if (!*row) break;
      out.push_back(st->text(0));
    }
    return out;
  }
  Query q;
  q.add("SELECT r.id FROM res r WHERE r.type = ?", type);
  q.add(" AND r.deleted = 0");
  for (const auto& m : ms) restrict_exact(q, type, m.param, {{m.system, m.value}});
  q.add(" ORDER BY +r.rid LIMIT ?");
  auto st = prepare_query(c, q);
  if (!st) return st.error();
  st->bind(static_cast<int>(q.binds.size()) + 1, static_cast<int64_t>(limit));
  for (;;) {
    auto row = st->step();
    if (!row) return row.error();
    if (!*row) break;
    out.push_back(st->text(0));
  }
  return out;
}

Result<std::optional<std::string>> unique_key_on(Connection& c, const std::string& key) {
  auto st = c.cached("SELECT r.id FROM pkey k JOIN res r ON r.rid = k.rid WHERE k.key = ?1");
  if (!st) return st.error();
  st->bind(1, key);
  auto row = st->step();
  if (!row) return row.error();
  if (!*row) return std::optional<std::string>();
  return std::optional<std::string>(st->text(0));
}

Result<std::vector<ChangeRow>> changes_after_on(Connection& c, int64_t after, int limit) {
  auto st = c.cached(
      "SELECT v.vid, r.type, r.id, v.version, v.op, v.ts, v.src FROM ver v JOIN res r ON r.rid = v.rid "
      "WHERE v.vid > ?1 ORDER BY v.vid LIMIT ?2");
  if (!st) return st.error();
  st->bind(1, after).bind(2, static_cast<int64_t>(limit));
  std::vector<ChangeRow> out;
  for (;;) {
    auto row = st->step();
    if (!row) return row.error();
    if (!*row) break;
    out.push_back(ChangeRow{st->int64(0), st->text(1), st->text(2), st->int64(3), interaction_of(st->int64(4)),
                            clock::iso_ms(st->int64(5)), st->text(6)});
  }
  return out;
}

// ---- SQL functions over res.keys ------------------------------------------------------

namespace {

// gw_keys_has(keys, param) and gw_keys_min/max(keys, param): what :missing
// and _sort need, answered from the resource's own key list instead of a
// probe of the value-first index per candidate.
void keys_fn(sqlite3_context* ctx, int, sqlite3_value** argv, int mode) {
  const void* blob = sqlite3_value_blob(argv[0]);
  int n = sqlite3_value_bytes(argv[0]);
  const unsigned char* p = sqlite3_value_text(argv[1]);
  if (p == nullptr) return sqlite3_result_null(ctx);
  std::string_view param(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_value_bytes(argv[1])));
  std::string_view in(blob ? static_cast<const char*>(blob) : "", blob ? static_cast<size_t>(n) : 0);
  std::optional<std::string> best;
  for (const IndexEntry& e : decode_keys(in)) {
    if (!answers(e.param, param)) continue;
    if (mode == 0) return sqlite3_result_int(ctx, 1);
    if (!best || (mode < 0 ? e.value < *best : e.value > *best)) best = e.value;
  }
  if (mode == 0) return sqlite3_result_int(ctx, 0);
  if (!best) return sqlite3_result_null(ctx);
  sqlite3_result_text(ctx, best->data(), static_cast<int>(best->size()), SQLITE_TRANSIENT);
}

}  // namespace

Result<void> register_functions(Connection& c) {
  struct Fn {
    const char* name;
    void (*fn)(sqlite3_context*, int, sqlite3_value**);
  };
  static constexpr Fn kFns[] = {
      {"gw_keys_has", [](sqlite3_context* x, int n, sqlite3_value** v) { keys_fn(x, n, v, 0); }},
      {"gw_keys_min", [](sqlite3_context* x, int n, sqlite3_value** v) { keys_fn(x, n, v, -1); }},
      {"gw_keys_max", [](sqlite3_context* x, int n, sqlite3_value** v) { keys_fn(x, n, v, 1); }},
  };
  for (const auto& f : kFns) {
    int rc = sqlite3_create_function_v2(c.raw(), f.name, 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS,
                                        nullptr, f.fn, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return make_error(Errc::store_failure, std::string("cannot register ") + f.name);
  }
  return {};
}

// ---- writes ------------------------------------------------------------------------

Result<void> RowWriter::load() {
  auto max_of = [&](const char* sql) -> Result<int64_t> {
    auto st = c_.cached(sql);
    if (!st) return st.error();
    auto row = st->step();
    if (!row) return row.error();
    return st->int64(0);
  };
  auto rid = max_of("SELECT COALESCE(MAX(rid), 0) FROM res");
  if (!rid) return rid.error();
  auto vid = max_of("SELECT COALESCE(MAX(vid), 0) FROM ver");
  if (!vid) return vid.error();
  auto ts = max_of("SELECT COALESCE(MAX(ts), 0) FROM ver");
  if (!ts) return ts.error();
  next_rid_ = *rid + 1;
  next_vid_ = std::max<int64_t>(*vid + 1, 1);
  last_ts_ = *ts;
  bits_.clear();
  auto st = c_.cached("SELECT bit, code FROM labels");
  if (!st) return st.error();
  for (;;) {
    auto row = st->step();
    if (!row) return row.error();
    if (!*row) break;
    bits_[st->text(1)] = static_cast<int>(st->int64(0));
  }
  return {};
}

Result<int64_t> RowWriter::label_bits(const std::vector<IndexEntry>& index) {
  int64_t mask = 0;
  for (const auto& e : index) {
    if (e.param != "_security") continue;
    auto it = bits_.find(e.value);
    if (it == bits_.end()) {
      int bit = static_cast<int>(bits_.size());
      // 63 codes fit a signed 64-bit set; a vocabulary that outgrows it is
      // refused loudly rather than left unfiltered.
      if (bit > 62) return make_error(Errc::internal, "more than 63 distinct security label codes");
      auto st = c_.cached("INSERT INTO labels(bit, code) VALUES(?1, ?2)");
      if (!st) return st.error();
      st->bind(1, int64_t{bit}).bind(2, e.value);
      if (auto r = st->run(); !r) return r.error();
      it = bits_.emplace(e.value, bit).first;
    }
    mask |= int64_t{1} << it->second;
  }
  return mask;
}

Result<std::optional<RowWriter::Current>> RowWriter::current(const std::string& type, const std::string& id) {
  auto st = c_.cached("SELECT rid, vid, version, ts, deleted, keys, ukey FROM res WHERE type = ?1 AND id = ?2");
  if (!st) return st.error();
  st->bind(1, type).bind(2, id);
  auto row = st->step();
  if (!row) return row.error();
  if (!*row) return std::optional<Current>();
  Current c;
  c.rid = st->int64(0);
  c.vid = st->int64(1);
  c.version = st->int64(2);
  c.ts = st->int64(3);
  c.deleted = st->int64(4) != 0;
  c.keys = st->blob(5);
  if (!st->is_null(6)) c.ukey = st->text(6);
  return std::optional<Current>(std::move(c));
}

Result<void> RowWriter::check_unique_key(const WriteOp& op, int64_t rid) {
  if (!op.unique_key) return {};
  if (op.type != "Patient") return make_error(Errc::invalid_input, "unique_key is kept for Patient only");
  auto st = c_.cached("SELECT k.rid, r.id FROM pkey k JOIN res r ON r.rid = k.rid WHERE k.key = ?1");
  if (!st) return st.error();
  st->bind(1, *op.unique_key);
  auto row = st->step();
  if (!row) return row.error();
  if (*row && st->int64(0) != rid) {
    return make_error(Errc::conflict, "a live Patient already holds this unique key", "Patient/" + st->text(1));
  }
  return {};
}

Result<void> RowWriter::replace_index(const std::string& type, int64_t rid, std::string_view old_keys,
                                      const std::string& new_keys) {
  if (old_keys == new_keys) return {};  // an update that changes no key writes no index row
  auto before = decode_keys(old_keys);
  auto after = decode_keys(new_keys);
  std::vector<IndexEntry> gone = keys_minus(before, after), added = keys_minus(after, before);
  for (const auto& e : gone) {
    auto st = c_.cached("DELETE FROM idx WHERE value = ?1 AND type = ?2 AND param = ?3 AND system = ?4 AND rid = ?5");
    if (!st) return st.error();
    st->bind(1, e.value).bind(2, type).bind(3, e.param).bind(4, e.system).bind(5, rid);
    if (auto r = st->run(); !r) return r.error();
  }
  for (const auto& e : added) {
    auto st = c_.cached("INSERT OR IGNORE INTO idx(value, type, param, system, rid) VALUES(?1, ?2, ?3, ?4, ?5)");
    if (!st) return st.error();
    st->bind(1, e.value).bind(2, type).bind(3, e.param).bind(4, e.system).bind(5, rid);
    if (auto r = st->run(); !r) return r.error();
  }
  return {};
}

Result<void> RowWriter::replace_unique_key(int64_t rid, const std::optional<std::string>& old_key,
                                           const std::optional<std::string>& new_key) {
  if (old_key == new_key) return {};
  if (old_key) {
    auto del = c_.cached("DELETE FROM pkey WHERE key = ?1 AND rid = ?2");
    if (!del) return del.error();
    del->bind(1, *old_key).bind(2, rid);
    if (auto r = del->run(); !r) return r.error();
  }
  if (new_key) {
    // The PRIMARY KEY is the guarantee; check_unique_key only made the
    // collision a helpful error before getting here.
    auto ins = c_.cached("INSERT INTO pkey(key, rid) VALUES(?1, ?2)");
    if (!ins) return ins.error();
    ins->bind(1, *new_key).bind(2, rid);
    if (auto r = ins->run(); !r) return r.error();
  }
  return {};
}

Result<OpOutcome> RowWriter::create(const WriteOp& op, const std::string& id, int64_t now) {
  Current fresh;
  fresh.rid = next_rid_++;
  if (auto r = check_unique_key(op, fresh.rid); !r) return r.error();
  auto st = c_.cached(
      "INSERT INTO res(rid, type, id, vid, version, ts, deleted, labels, keys, ukey) "
      "VALUES(?1, ?2, ?3, 0, 0, ?4, 0, 0, x'', NULL)");
  if (!st) return st.error();
  st->bind(1, fresh.rid).bind(2, op.type).bind(3, id).bind(4, now);
  if (auto r = st->run(); !r) return r.error();
  WriteOp created = op;
  created.id = id;
  auto out = write_version(created, fresh, now, false, kOpCreate);
  if (out) out->created = true;
  return out;
}

Result<OpOutcome> RowWriter::write_version(const WriteOp& op, const Current& cur, int64_t now, bool deleted,
                                           int op_code) {
  int64_t vid = next_vid_++;
  int64_t version = cur.version + 1;
  {
    auto st = c_.cached(
        "INSERT INTO ver(vid, rid, version, ts, op, prev, body, src) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
    if (!st) return st.error();
    st->bind(1, vid).bind(2, cur.rid).bind(3, version).bind(4, now).bind(5, int64_t{op_code}).bind(6, cur.vid);
    st->bind(7, deleted ? std::string_view("") : std::string_view(op.body)).bind(8, op.source);
    if (auto r = st->run(); !r) return r.error();
  }
  std::string keys = deleted ? std::string() : encode_keys(index_keys(op.index));
  int64_t labels = 0;
  if (!deleted) {
    auto l = label_bits(op.index);
    if (!l) return l.error();
    labels = *l;
  }
  std::optional<std::string> ukey = deleted ? std::nullopt : op.unique_key;
  {
    auto st = c_.cached(
        "UPDATE res SET vid = ?2, version = ?3, ts = ?4, deleted = ?5, labels = ?6, keys = ?7, ukey = ?8 "
        "WHERE rid = ?1");
    if (!st) return st.error();
    st->bind(1, cur.rid).bind(2, vid).bind(3, version).bind(4, now).bind(5, int64_t{deleted}).bind(6, labels);
    st->bind_blob(7, keys);
    if (ukey) st->bind(8, *ukey);
    else st->bind_null(8);
    if (auto r = st->run(); !r) return r.error();
  }
  if (auto r = replace_index(op.type, cur.rid, cur.keys, keys); !r) return r.error();
  if (auto r = replace_unique_key(cur.rid, cur.ukey, ukey); !r) return r.error();
  return OpOutcome{op.id, version, clock::iso_ms(now), false, false, vid};
}

Result<OpOutcome> RowWriter::apply(const WriteOp& op, int64_t now_ms) {
  if (op.type.empty()) return make_error(Errc::invalid_input, "write without a resource type");
  int64_t now = std::max(now_ms, last_ts_);
  last_ts_ = now;
  std::string id = op.id;
  if (op.kind == OpKind::create && !op.if_none_exist.empty()) {
    auto ids = match_on(c_, op.type, op.if_none_exist, 1);
    if (!ids) return ids.error();
    if (!ids->empty()) {
      if (op.id_resolved && ids->front() != op.id) {
        return make_error(Errc::version_conflict, "a matching resource appeared since the references were resolved");
      }
      auto cur = current(op.type, ids->front());
      if (!cur) return cur.error();
      if (!*cur) return make_error(Errc::internal, "matched resource vanished inside the transaction");
      return OpOutcome{ids->front(), (*cur)->version, clock::iso_ms((*cur)->ts), false, true};
    }
  }
  if (op.kind == OpKind::update && !op.match.empty()) {
    auto ids = match_on(c_, op.type, op.match, 2);
    if (!ids) return ids.error();
    if (ids->size() > 1) return make_error(Errc::version_conflict, "conditional update matched more than one resource");
    if (ids->size() == 1) id = ids->front();
    if (op.id_resolved && id != op.id) {
      return make_error(Errc::version_conflict, "the matching resource changed since the references were resolved");
    }
  }
  if (id.empty()) return make_error(Errc::invalid_input, op.kind == OpKind::update ? "update without an id"
                                                                                  : "write without an id", "id");
  auto cur = current(op.type, id);
  if (!cur) return cur.error();
  WriteOp resolved = op;
  resolved.id = id;
  switch (op.kind) {
    case OpKind::create:
      if (*cur) return make_error(Errc::conflict, "a resource with this id already exists", "id");
      return create(resolved, id, now);
    case OpKind::update: {
      if (!*cur) {
        if (!op.upsert) return make_error(Errc::not_found, op.type + " not found");
        if (op.if_match) return make_error(Errc::version_conflict, "If-Match given but the resource does not exist");
        return create(resolved, id, now);
      }
      const Current& k = **cur;
      if (k.deleted && !op.upsert) return make_error(Errc::gone, op.type + " was deleted");
      if (op.if_match && *op.if_match != k.version) {
        return make_error(Errc::version_conflict, "If-Match does not match the current version");
      }
      if (auto r = check_unique_key(resolved, k.rid); !r) return r.error();
      auto out = write_version(resolved, k, now, false, k.deleted ? kOpCreate : kOpUpdate);
      if (out) out->created = k.deleted;  // an update of a deleted resource brings it back
      return out;
    }
    case OpKind::remove: {
      if (!*cur) return make_error(Errc::not_found, op.type + " not found");
      const Current& k = **cur;
      // FHIR delete is idempotent: deleting what is already deleted succeeds.
      if (k.deleted) return OpOutcome{id, k.version, clock::iso_ms(k.ts), false, false};
      if (op.if_match && *op.if_match != k.version) {
        return make_error(Errc::version_conflict, "If-Match does not match the current version");
      }
      return write_version(resolved, k, now, true, kOpDelete);
    }
  }
  return make_error(Errc::internal, "unknown write kind");
}

}  // namespace gw::store::sqlite
