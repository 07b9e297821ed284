#include "gateway/store/postgres/rows.h"

#include <algorithm>

#include "gateway/common/clock.h"
#include "gateway/store/index_keys.h"

namespace gw::store::pg {

namespace {

// SQL text with its parameters numbered as they are added ($1, $2...);
// values are never spliced into the text. New kinds of search constraint
// (token modifiers, dates, strings) add their own fragment here, beside
// restrict_by_param.
struct Query {
  std::string sql;
  Params params;

  std::string next(std::string_view v) {
    params.add(v);
    return "$" + std::to_string(params.size());
  }
  std::string next(int64_t v) {
    params.add(v);
    return "$" + std::to_string(params.size());
  }
};

// "i.param = $n", or IN over every name a search on `param` reads
// (index_keys.h: a `patient` search reads the `subject` rows too).
std::string param_is(Query& q, const std::string& param) {
  auto names = stored_params(param);
  if (names.size() == 1) return "i.param = " + q.next(names[0]);
  std::string out = "i.param IN (";
  for (size_t k = 0; k < names.size(); ++k) out += (k ? ", " : "") + q.next(names[k]);
  return out + ")";
}

const char* interaction_of(int64_t op) {
  return op == kOpCreate ? "create" : op == kOpDelete ? "delete" : "update";
}

// r (res) restricted to rows with an index row for `param` matching one of
// the (system, value) pairs; system "" matches any system. Negated: rows
// with none (resources without the element included).
void restrict_by_param(Query& q, const std::string& type, const std::string& param,
                       const std::vector<std::pair<std::string, std::string>>& any_of, bool negate = false) {
  if (any_of.empty()) {
    if (!negate) q.sql += " AND FALSE";  // an OR over nothing matches nothing
    return;
  }
  q.sql += negate ? " AND r.rid NOT IN (SELECT i.rid FROM idx i WHERE " : " AND r.rid IN (SELECT i.rid FROM idx i WHERE ";
  bool first = true;
  for (const auto& [system, value] : any_of) {
    if (!first) q.sql += " OR ";
    first = false;
    q.sql += "(i.value = " + q.next(value) + " AND i.type = " + q.next(type) + " AND " + param_is(q, param);
    if (system == kNoSystem) q.sql += " AND i.system = ''";  // "|code": a code without a system
    else if (!system.empty()) q.sql += " AND i.system = " + q.next(system);
    q.sql += ")";
  }
  q.sql += ")";
}

// Index values compare as the embedded store compares them: by code point
// (binary UTF-8), whatever the database's collation, so that a date range, a
// prefix and a _sort order are the same on both engines.
constexpr const char* kBinary = " COLLATE \"C\"";

// One date value against rows whose value is the low and system the high
// instant of what they cover (store/sqlite/rows.cc's date_condition).
std::string date_condition(Query& q, const DateRange& d) {
  const std::string v = std::string("i.value") + kBinary, h = std::string("i.system") + kBinary;
  const std::string& p = d.prefix;
  if (p == "eq" || p.empty()) return "(" + v + " >= " + q.next(d.low) + " AND " + v + " < " + q.next(d.high) + " AND " + h + " <= " + q.next(d.high) + ")";
  if (p == "ne") return "(" + v + " < " + q.next(d.low) + " OR " + h + " > " + q.next(d.high) + ")";
  if (p == "gt") return "(" + h + " > " + q.next(d.high) + ")";
  if (p == "lt") return "(" + v + " < " + q.next(d.low) + ")";
  if (p == "ge") return "(" + v + " >= " + q.next(d.low) + " OR " + h + " > " + q.next(d.high) + ")";
  if (p == "le") return "(" + v + " < " + q.next(d.low) + " OR " + h + " <= " + q.next(d.high) + ")";
  if (p == "sa") return "(" + v + " >= " + q.next(d.high) + ")";
  if (p == "eb") return "(" + h + " <= " + q.next(d.low) + ")";
  return "(" + v + " < " + q.next(d.high) + " AND " + h + " > " + q.next(d.low) + ")";  // ap
}

// Every kind of constraint (store.h's MatchKind), as the embedded store answers it.
void restrict_by(Query& q, const std::string& type, const ParamConstraint& c) {
  switch (c.kind) {
    case MatchKind::exact: return restrict_by_param(q, type, c.param, c.any_of);
    case MatchKind::not_any: return restrict_by_param(q, type, c.param, c.any_of, true);
    case MatchKind::missing:
    case MatchKind::present:
      q.sql += std::string(c.kind == MatchKind::missing ? " AND NOT" : " AND") +
               " EXISTS (SELECT 1 FROM idx i WHERE i.rid = r.rid AND " + param_is(q, c.param) + ")";
      return;
    case MatchKind::prefix:
    case MatchKind::contains:
    case MatchKind::range: break;
  }
  bool empty = c.kind == MatchKind::range ? c.ranges.empty() : c.any_of.empty();
  if (empty) {
    q.sql += " AND FALSE";
    return;
  }
  q.sql += " AND r.rid IN (SELECT i.rid FROM idx i WHERE i.type = " + q.next(type) + " AND " + param_is(q, c.param) +
           " AND (";
  bool first = true;
  if (c.kind == MatchKind::range) {
    for (const auto& d : c.ranges) {
      if (!first) q.sql += " OR ";
      first = false;
      q.sql += date_condition(q, d);
    }
  } else {
    for (const auto& [system, v] : c.any_of) {
      if (!first) q.sql += " OR ";
      first = false;
      if (c.kind == MatchKind::prefix) {
        q.sql += "(starts_with(i.value, " + q.next(v) + ")";
      } else {
        // The part of the value before the unit separator (what is searched;
        // model/search_decl.h's string rows).
        q.sql += "(strpos(split_part(i.value, chr(31), 1), " + q.next(v) + ") > 0";
      }
      if (!system.empty()) q.sql += " AND i.system = " + q.next(system);
      q.sql += ")";
    }
  }
  q.sql += "))";
}

// ORDER BY for _sort: each key (resources without a value last in both
// directions), then creation order.
std::string order_by(Query& q, const SearchQuery& sq) {
  std::string out = " ORDER BY ";
  for (const auto& k : sq.sort) {
    const char* dir = k.descending ? " DESC" : "";
    if (k.param == "_id") {
      out += std::string("r.id") + kBinary + dir + ", ";
    } else if (k.param == "_lastUpdated") {
      out += std::string("r.ts") + dir + ", ";
    } else {
      const std::string key = std::string("(SELECT ") + (k.descending ? "max" : "min") + "(i.value" + kBinary +
                              ") FROM idx i WHERE i.rid = r.rid AND " + param_is(q, k.param) + ")";
      out += key + " IS NULL, " + key + dir + ", ";
    }
  }
  out += "r.rid";
  if (sq.newest_first) out += " DESC";
  return out;
}

StoredResource resource_at(const Rows& r, int row) {
  StoredResource s;
  s.type = r.text(row, 0);
  s.id = r.text(row, 1);
  s.version = r.int64(row, 2);
  s.last_updated = clock::iso_ms(r.int64(row, 3));
  s.deleted = r.int64(row, 4) != 0;
  s.body = r.text(row, 5);
  return s;
}

std::vector<std::string> labels_of(const std::vector<IndexEntry>& index) {
  std::vector<std::string> out;
  for (const auto& e : index)
    if (e.param == "_security") out.push_back(e.value);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

Result<Query> search_where(const SearchQuery& q, bool& selective) {
  Query w;
  w.sql = " FROM res r JOIN ver v ON v.vid = r.vid WHERE r.type = " + w.next(q.type) + " AND r.deleted = 0";
  selective = !q.ids.empty() || !q.params.empty();
  if (!q.ids.empty()) {
    w.sql += " AND r.id IN (";
    for (size_t i = 0; i < q.ids.size(); ++i) w.sql += (i ? ", " : "") + w.next(q.ids[i]);
    w.sql += ")";
  }
  for (const auto& p : q.params) restrict_by(w, q.type, p);
  if (!q.exclude_security.empty()) {
    w.sql += " AND NOT (r.labels && " + w.next(text_array(q.exclude_security)) + "::text[])";
  }
  auto bound = [&](const std::optional<std::string>& b, const char* op) -> Result<void> {
    if (!b) return {};
    auto ms = clock::parse_iso_ms(*b);
    if (!ms) return make_error(Errc::invalid_input, "not an instant: " + *b, "_lastUpdated");
    w.sql += std::string(" AND r.ts ") + op + " " + w.next(*ms);
    return {};
  };
  if (auto r = bound(q.updated_ge, ">="); !r) return r.error();
  if (auto r = bound(q.updated_gt, ">"); !r) return r.error();
  if (auto r = bound(q.updated_le, "<="); !r) return r.error();
  if (auto r = bound(q.updated_lt, "<"); !r) return r.error();
  if (!selective && (q.updated_ge || q.updated_gt)) {
    // "What changed since": driven by the versions' time index.
    auto lo = clock::parse_iso_ms(q.updated_ge ? *q.updated_ge : *q.updated_gt);
    w.sql += " AND r.vid IN (SELECT vid FROM ver WHERE ts >= " + w.next(*lo) + ")";
  }
  return w;
}

}  // namespace

Result<StoredResource> read_on(Conn& c, const std::string& type, const std::string& id) {
  auto r = c.exec(
      "SELECT r.type, r.id, r.version, r.ts, r.deleted, v.body FROM res r JOIN ver v ON v.vid = r.vid "
      "WHERE r.type = $1 AND r.id = $2",
      Params().add(type).add(id));
  if (!r) return r.error();
  if (r->empty()) return make_error(Errc::not_found, type + " not found");
  StoredResource s = resource_at(*r, 0);
  if (s.deleted) return make_error(Errc::gone, type + " was deleted");
  return s;
}

Result<StoredResource> vread_on(Conn& c, const std::string& type, const std::string& id, int64_t version) {
  auto r = c.exec(
      "SELECT v.op, v.ts, v.body FROM res r JOIN ver v ON v.rid = r.rid WHERE r.type = $1 AND r.id = $2 "
      "AND v.version = $3",
      Params().add(type).add(id).add(version));
  if (!r) return r.error();
  if (r->empty()) return make_error(Errc::not_found, type + " version not found");
  if (r->int64(0, 0) == kOpDelete) return make_error(Errc::gone, type + " version is a deletion");
  return StoredResource{type, id, version, clock::iso_ms(r->int64(0, 1)), false, r->text(0, 2)};
}

Result<std::vector<StoredResource>> history_on(Conn& c, const std::string& type, const std::string& id) {
  auto r = c.exec(
      "SELECT v.version, v.ts, v.op, v.body FROM res r JOIN ver v ON v.rid = r.rid WHERE r.type = $1 AND r.id = $2 "
      "ORDER BY v.version DESC",
      Params().add(type).add(id));
  if (!r) return r.error();
  if (r->empty()) return make_error(Errc::not_found, type + " not found");
  std::vector<StoredResource> out;
  out.reserve(static_cast<size_t>(r->size()));
  for (int i = 0; i < r->size(); ++i) {
    out.push_back(StoredResource{type, id, r->int64(i, 0), clock::iso_ms(r->int64(i, 1)), r->int64(i, 2) == kOpDelete,
                                 r->text(i, 3)});
  }
  return out;
}

Result<SearchPage> search_on(Conn& c, const SearchQuery& q, bool in_transaction) {
  if (q.type.empty()) return make_error(Errc::invalid_input, "search without a resource type");
  if (q.count < 0 || q.offset < 0) return make_error(Errc::invalid_input, "negative _count or offset");
  auto body = [&]() -> Result<SearchPage> {
    bool selective = false;
    auto where = search_where(q, selective);
    if (!where) return where.error();
    SearchPage page;
    // Creation order (rid): stable under updates.
    Query sel = *where;
    sel.sql = "SELECT r.type, r.id, r.version, r.ts, r.deleted, v.body" + where->sql;
    sel.sql += order_by(sel, q);
    sel.sql += " LIMIT " + sel.next(int64_t{q.count});
    sel.sql += " OFFSET " + sel.next(q.offset);
    auto rows = c.exec(sel.sql, sel.params);
    if (!rows) return rows.error();
    for (int i = 0; i < rows->size(); ++i) page.items.push_back(resource_at(*rows, i));
    if (q.want_total) {
      auto n = c.exec("SELECT count(*)" + where->sql, where->params);
      if (!n) return n.error();
      page.total = n->int64(0, 0);
    }
    return page;
  };
  if (in_transaction || !q.want_total) return body();
  if (auto r = c.run("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); !r) return r.error();
  auto page = body();
  if (auto r = c.run(page ? "COMMIT" : "ROLLBACK"); !r && page) return r.error();
  return page;
}

Result<std::vector<std::string>> match_on(Conn& c, const std::string& type, const std::vector<Match>& ms, int limit) {
  Query q;
  q.sql = "SELECT r.id FROM res r WHERE r.type = " + q.next(type) + " AND r.deleted = 0";
  for (const auto& m : ms) restrict_by_param(q, type, m.param, {{m.system, m.value}});
  q.sql += " ORDER BY r.rid LIMIT " + q.next(int64_t{limit});
  auto rows = c.exec(q.sql, q.params);
  if (!rows) return rows.error();
  std::vector<std::string> out;
  for (int i = 0; i < rows->size(); ++i) out.push_back(rows->text(i, 0));
  return out;
}

Result<std::optional<std::string>> unique_key_on(Conn& c, const std::string& key) {
  auto r = c.exec("SELECT r.id FROM pkey k JOIN res r ON r.rid = k.rid WHERE k.key = $1", Params().add(key));
  if (!r) return r.error();
  if (r->empty()) return std::optional<std::string>();
  return std::optional<std::string>(r->text(0, 0));
}

Result<std::vector<ChangeRow>> changes_after_on(Conn& c, int64_t after, int limit) {
  auto r = c.exec(
      "SELECT v.vid, r.type, r.id, v.version, v.op, v.ts, v.src FROM ver v JOIN res r ON r.rid = v.rid "
      "WHERE v.vid > $1 ORDER BY v.vid LIMIT $2",
      Params().add(after).add(int64_t{limit}));
  if (!r) return r.error();
  std::vector<ChangeRow> out;
  out.reserve(static_cast<size_t>(r->size()));
  for (int i = 0; i < r->size(); ++i) {
    out.push_back(ChangeRow{r->int64(i, 0), r->text(i, 1), r->text(i, 2), r->int64(i, 3), interaction_of(r->int64(i, 4)),
                            clock::iso_ms(r->int64(i, 5)), r->text(i, 6)});
  }
  return out;
}

// ---- writes ------------------------------------------------------------------------

Result<void> RowWriter::load_clock() {
  auto r = c_.exec("SELECT COALESCE(MAX(ts), 0) FROM ver");
  if (!r) return r.error();
  last_ts_ = std::max(last_ts_, r->int64(0, 0));
  return {};
}

Result<std::optional<RowWriter::Current>> RowWriter::current(const std::string& type, const std::string& id) {
  auto r = c_.exec("SELECT rid, vid, version, ts, deleted, keys, ukey FROM res WHERE type = $1 AND id = $2 FOR UPDATE",
                   Params().add(type).add(id));
  if (!r) return r.error();
  if (r->empty()) return std::optional<Current>();
  Current k;
  k.rid = r->int64(0, 0);
  k.vid = r->int64(0, 1);
  k.version = r->int64(0, 2);
  k.ts = r->int64(0, 3);
  k.deleted = r->int64(0, 4) != 0;
  k.keys = r->bytes(0, 5);
  if (!r->is_null(0, 6)) k.ukey = r->text(0, 6);
  return std::optional<Current>(std::move(k));
}

Result<void> RowWriter::check_unique_key(const WriteOp& op, int64_t rid) {
  if (!op.unique_key) return {};
  if (op.type != "Patient") return make_error(Errc::invalid_input, "unique_key is kept for Patient only");
  auto r = c_.exec("SELECT k.rid, r.id FROM pkey k JOIN res r ON r.rid = k.rid WHERE k.key = $1",
                   Params().add(*op.unique_key));
  if (!r) return r.error();
  if (!r->empty() && r->int64(0, 0) != rid) {
    return make_error(Errc::conflict, "a live Patient already holds this unique key", "Patient/" + r->text(0, 1));
  }
  return {};
}

Result<void> RowWriter::replace_index(const std::string& type, int64_t rid, const std::string& old_keys,
                                      const std::string& new_keys) {
  if (old_keys == new_keys) return {};
  auto before = decode_keys(old_keys);
  auto after = decode_keys(new_keys);
  for (const auto& e : keys_minus(before, after)) {
    auto r = c_.exec("DELETE FROM idx WHERE value = $1 AND type = $2 AND param = $3 AND system = $4 AND rid = $5",
                     Params().add(e.value).add(type).add(e.param).add(e.system).add(rid));
    if (!r) return r.error();
  }
  for (const auto& e : keys_minus(after, before)) {
    auto r = c_.exec(
        "INSERT INTO idx(value, type, param, system, rid) VALUES($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        Params().add(e.value).add(type).add(e.param).add(e.system).add(rid));
    if (!r) return r.error();
  }
  return {};
}

Result<void> RowWriter::replace_unique_key(int64_t rid, const std::optional<std::string>& old_key,
                                           const std::optional<std::string>& new_key) {
  if (old_key == new_key) return {};
  if (old_key) {
    auto r = c_.exec("DELETE FROM pkey WHERE key = $1 AND rid = $2", Params().add(*old_key).add(rid));
    if (!r) return r.error();
  }
  if (new_key) {
    // The PRIMARY KEY is the guarantee across nodes; check_unique_key only
    // made the usual collision a helpful error before getting here.
    auto r = c_.exec("INSERT INTO pkey(key, rid) VALUES($1, $2)", Params().add(*new_key).add(rid));
    if (!r) {
      if (c_.last_state() != kUniqueViolation) return r.error();
      return make_error(Errc::conflict, "a live Patient already holds this unique key");
    }
  }
  return {};
}

Result<OpOutcome> RowWriter::create(const WriteOp& op, const std::string& id, int64_t now) {
  if (auto r = check_unique_key(op, 0); !r) return r.error();
  auto ins = c_.exec(
      "INSERT INTO res(type, id, vid, version, ts, deleted, labels, keys, ukey) "
      "VALUES($1, $2, 0, 0, $3, 0, '{}', ''::bytea, NULL) RETURNING rid",
      Params().add(op.type).add(id).add(now));
  if (!ins) {
    if (c_.last_state() == kUniqueViolation) return make_error(Errc::conflict, "a resource with this id already exists", "id");
    return ins.error();
  }
  Current fresh;
  fresh.rid = ins->int64(0, 0);
  WriteOp created = op;
  created.id = id;
  auto out = write_version(created, fresh, now, false, kOpCreate);
  if (out) out->created = true;
  return out;
}

Result<OpOutcome> RowWriter::write_version(const WriteOp& op, const Current& cur, int64_t now, bool deleted,
                                           int op_code) {
  int64_t version = cur.version + 1;
  auto v = c_.exec(
      "INSERT INTO ver(vid, rid, version, ts, op, prev, body, src) "
      "VALUES(nextval('ver_vid'), $1, $2, $3, $4, $5, $6, $7) RETURNING vid",
      Params()
          .add(cur.rid)
          .add(version)
          .add(now)
          .add(int64_t{op_code})
          .add(cur.vid)
          .add(deleted ? std::string_view() : std::string_view(op.body))
          .add(op.source));
  if (!v) return v.error();
  int64_t vid = v->int64(0, 0);
  std::string keys = deleted ? std::string() : encode_keys(index_keys(op.index));
  std::string labels = text_array(deleted ? std::vector<std::string>{} : labels_of(op.index));
  std::optional<std::string> ukey = deleted ? std::nullopt : op.unique_key;
  auto u = c_.exec(
      "UPDATE res SET vid = $2, version = $3, ts = $4, deleted = $5, labels = $6::text[], keys = $7, ukey = $8 "
      "WHERE rid = $1",
      Params().add(cur.rid).add(vid).add(version).add(now).add(int64_t{deleted}).add(labels).add_bytes(keys).add(ukey));
  if (!u) return u.error();
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
      if (out) out->created = k.deleted;
      return out;
    }
    case OpKind::remove: {
      if (!*cur) return make_error(Errc::not_found, op.type + " not found");
      const Current& k = **cur;
      if (k.deleted) return OpOutcome{id, k.version, clock::iso_ms(k.ts), false, false};
      if (op.if_match && *op.if_match != k.version) {
        return make_error(Errc::version_conflict, "If-Match does not match the current version");
      }
      return write_version(resolved, k, now, true, kOpDelete);
    }
  }
  return make_error(Errc::internal, "unknown write kind");
}

}  // namespace gw::store::pg
