// The embedded Store: one writer thread with group commit over a bounded
// queue, a small reader pool with one connection per thread, WAL so readers
// never wait for the writer. See store.h for the contract.
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <type_traits>

#include "gateway/common/log.h"
#include "gateway/common/metrics.h"
#include "gateway/store/sqlite/connection.h"
#include "gateway/store/sqlite/schema.h"
#include "gateway/store/sqlite/timers.h"
#include "gateway/store/store.h"

namespace gw::store {

namespace {

using sqlite::Connection;
using sqlite::Statement;

std::string iso_now() {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm t{};
  gmtime_r(&secs, &t);
  char buf[96];  // generous: the compiler cannot prove the tm fields are in range
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday,
                t.tm_hour, t.tm_min, t.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

// Which connection a reader-pool thread owns. Keyed by store so that a task on
// one store's pool calling another store falls back to that store's own
// shared connection instead of using a foreign one.
struct ReaderSlot {
  const void* owner = nullptr;
  Connection* conn = nullptr;
};
thread_local ReaderSlot tls_reader;

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

// Restricts `r` (resources) to ids having an index row for `param` matching one
// of the (system, value) pairs; system "" matches any system. A non-correlated
// IN lets SQLite drive from the search_index lookup index.
void restrict_by_param(Query& q, const std::string& type, const std::string& param,
                       const std::vector<std::pair<std::string, std::string>>& any_of) {
  if (any_of.empty()) {
    q.add(" AND 0");  // an OR over nothing matches nothing
    return;
  }
  q.add(" AND r.id IN (SELECT s.id FROM search_index s WHERE s.type = ?", type);
  q.add(" AND s.param = ?", param);
  q.add(" AND (");
  bool first = true;
  for (const auto& [system, value] : any_of) {
    if (!first) q.add(" OR ");
    first = false;
    if (system.empty()) {
      q.add("s.value = ?", value);
    } else {
      q.add("(s.value = ?", value);
      q.add(" AND s.system = ?)", system);
    }
  }
  q.add("))");
}

Result<Statement> prepare_query(Connection& c, const Query& q) {
  auto st = c.cached_text(q.sql);
  if (!st) return st.error();
  int i = 1;
  for (const auto& b : q.binds) st->bind(i++, b);
  return st;
}

StoredResource row_to_resource(const Statement& st) {
  // Column order of kResourceColumns.
  StoredResource r;
  r.type = st.text(0);
  r.id = st.text(1);
  r.version = st.int64(2);
  r.last_updated = st.text(3);
  r.deleted = st.int64(4) != 0;
  r.body = st.text(5);
  return r;
}

constexpr const char* kInboundColumns =
    "id, received, adapter, channel, sender_ods, sender_system, control_id, status, reason, issues_json, raw, "
    "replay_of";

InboundRow row_to_inbound(Statement& st) {
  InboundRow m;
  m.id = st.int64(0);
  m.received = st.text(1);
  m.adapter = st.text(2);
  m.channel = st.text(3);
  m.sender_ods = st.text(4);
  m.sender_system = st.text(5);
  m.control_id = st.text(6);
  m.status = st.text(7);
  m.reason = st.text(8);
  m.issues_json = st.text(9);
  m.raw = st.text(10);
  m.replay_of = st.int64(11);
  return m;
}

constexpr const char* kResourceColumns = "r.type, r.id, r.version, r.last_updated, r.deleted, r.body";

// ---- reads (any connection) ----------------------------------------------------

Result<StoredResource> read_on(Connection& c, const std::string& type, const std::string& id) {
  auto st = c.cached(
      "SELECT type, id, version, last_updated, deleted, body FROM resources WHERE type = ?1 AND id = ?2");
  if (!st) return st.error();
  st->bind(1, type).bind(2, id);
  auto row = st->step();
  if (!row) return row.error();
  if (!*row) return make_error(Errc::not_found, type + " not found");
  StoredResource r = row_to_resource(*st);
  if (r.deleted) return make_error(Errc::gone, type + " was deleted");
  return r;
}

Result<StoredResource> vread_on(Connection& c, const std::string& type, const std::string& id, int64_t version) {
  auto st = c.cached(
      "SELECT type, id, version, last_updated, deleted, body FROM resource_history "
      "WHERE type = ?1 AND id = ?2 AND version = ?3");
  if (!st) return st.error();
  st->bind(1, type).bind(2, id).bind(3, version);
  auto row = st->step();
  if (!row) return row.error();
  if (!*row) return make_error(Errc::not_found, type + " version not found");
  StoredResource r = row_to_resource(*st);
  if (r.deleted) return make_error(Errc::gone, type + " version is a deletion");
  return r;
}

Result<std::vector<StoredResource>> history_on(Connection& c, const std::string& type, const std::string& id) {
  auto st = c.cached(
      "SELECT type, id, version, last_updated, deleted, body FROM resource_history "
      "WHERE type = ?1 AND id = ?2 ORDER BY version DESC");
  if (!st) return st.error();
  st->bind(1, type).bind(2, id);
  std::vector<StoredResource> out;
  for (;;) {
    auto row = st->step();
    if (!row) return row.error();
    if (!*row) break;
    out.push_back(row_to_resource(*st));
  }
  if (out.empty()) return make_error(Errc::not_found, type + " not found");
  return out;
}

Query search_where(const SearchQuery& q) {
  Query w;
  w.add(" FROM resources r WHERE r.type = ?", q.type);
  w.add(" AND r.deleted = 0");
  if (!q.ids.empty()) {
    w.add(" AND r.id IN (");
    for (size_t i = 0; i < q.ids.size(); ++i) w.add(i ? ", ?" : "?", q.ids[i]);
    w.add(")");
  }
  for (const auto& p : q.params) restrict_by_param(w, q.type, p.param, p.any_of);
  if (!q.exclude_security.empty()) {
    // Correlated, so each candidate's own few index rows are probed through
    // search_index_security (migration 5): the cost follows the candidates, not the
    // number of labelled resources of the type in the whole store. "+value":
    // one range probe of the candidate's few label rows, not one per hidden label.
    w.add(" AND NOT EXISTS (SELECT 1 FROM search_index s WHERE s.type = r.type AND s.id = r.id");
    w.add(" AND s.param = '_security' AND +s.value IN (");
    for (size_t i = 0; i < q.exclude_security.size(); ++i) w.add(i ? ", ?" : "?", q.exclude_security[i]);
    w.add("))");
  }
  // ISO 8601 instants in one format sort as strings.
  if (q.updated_ge) w.add(" AND r.last_updated >= ?", *q.updated_ge);
  if (q.updated_gt) w.add(" AND r.last_updated > ?", *q.updated_gt);
  if (q.updated_le) w.add(" AND r.last_updated <= ?", *q.updated_le);
  if (q.updated_lt) w.add(" AND r.last_updated < ?", *q.updated_lt);
  return w;
}

Result<SearchPage> search_page_on(Connection& c, const SearchQuery& q, const Query& where) {
  SearchPage page;
  {
    Query sel;
    // With an _id or index constraint the few matching rows are found by key
    // and sorted; "+" keeps SQLite from walking every resource of the type in
    // last_updated order instead (it prefers that to a sort when it has no
    // statistics, which costs O(resources) per search).
    bool selective = !q.ids.empty() || !q.params.empty();
    std::string order = selective ? " ORDER BY +r.last_updated, +r.id" : " ORDER BY r.last_updated, r.id";
    if (q.newest_first) order = selective ? " ORDER BY +r.last_updated DESC, +r.id DESC" : " ORDER BY r.last_updated DESC, r.id DESC";
    sel.sql = std::string("SELECT ") + kResourceColumns + where.sql + order + " LIMIT ? OFFSET ?";
    sel.binds = where.binds;
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
  }
  if (q.want_total) {
    Query cnt;
    cnt.sql = "SELECT count(*)" + where.sql;
    cnt.binds = where.binds;
    auto st = prepare_query(c, cnt);
    if (!st) return st.error();
    auto row = st->step();
    if (!row) return row.error();
    page.total = st->int64(0);
  }
  return page;
}

Result<SearchPage> search_on(Connection& c, const SearchQuery& q) {
  if (q.type.empty()) return make_error(Errc::invalid_input, "search without a resource type");
  if (q.count < 0 || q.offset < 0) return make_error(Errc::invalid_input, "negative _count or offset");
  // One read transaction so the page and the total see the same snapshot; the
  // statements are gone before COMMIT so the snapshot is always released.
  // Prepared once per connection: sqlite3_exec would parse them on every search.
  auto begin = c.cached("BEGIN");
  if (!begin) return begin.error();
  if (auto r = begin->run(); !r) return r.error();
  auto page = search_page_on(c, q, search_where(q));
  auto commit = c.cached("COMMIT");
  if (auto r = commit ? commit->run() : Result<void>(commit.error()); !r) {
    (void)c.exec("ROLLBACK");
    if (page) return r.error();
  }
  return page;
}

Result<std::optional<std::string>> unique_key_on(Connection& c, const std::string& key) {
  auto st = c.cached("SELECT id FROM patient_key WHERE key = ?1");
  if (!st) return st.error();
  st->bind(1, key);
  auto row = st->step();
  if (!row) return row.error();
  if (!*row) return std::optional<std::string>();
  return std::optional<std::string>(st->text(0));
}

// ---- writes (writer connection only) --------------------------------------------

struct Current {
  int64_t version = 0;
  bool deleted = false;
  std::string last_updated;
};

Result<std::optional<Current>> load_current(Connection& c, const std::string& type, const std::string& id) {
  auto st = c.cached("SELECT version, deleted, last_updated FROM resources WHERE type = ?1 AND id = ?2");
  if (!st) return st.error();
  st->bind(1, type).bind(2, id);
  auto row = st->step();
  if (!row) return row.error();
  if (!*row) return std::optional<Current>();
  return std::optional<Current>(Current{st->int64(0), st->int64(1) != 0, st->text(2)});
}

// Live ids of `type` matching every Match, oldest first, at most `limit`.
Result<std::vector<std::string>> matching_ids(Connection& c, const std::string& type, const std::vector<Match>& ms,
                                              int limit) {
  Query q;
  q.add("SELECT r.id FROM resources r WHERE r.type = ?", type);
  q.add(" AND r.deleted = 0");
  for (const auto& m : ms) restrict_by_param(q, type, m.param, {{m.system, m.value}});
  q.add(" ORDER BY +r.last_updated, +r.id LIMIT ?");  // "+": find by index row, not by walking the type
  auto st = prepare_query(c, q);
  if (!st) return st.error();
  st->bind(static_cast<int>(q.binds.size()) + 1, static_cast<int64_t>(limit));
  std::vector<std::string> out;
  for (;;) {
    auto row = st->step();
    if (!row) return row.error();
    if (!*row) break;
    out.push_back(st->text(0));
  }
  return out;
}

// A unique-key holder other than `id` makes the write a conflict; the holder
// goes in `expression` so the caller can point the sender at it.
Result<void> check_unique_key(Connection& c, const WriteOp& op, const std::string& id) {
  if (!op.unique_key) return {};
  if (op.type != "Patient") return make_error(Errc::invalid_input, "unique_key is kept for Patient only");
  auto holder = unique_key_on(c, *op.unique_key);
  if (!holder) return holder.error();
  if (*holder && **holder != id) {
    return make_error(Errc::conflict, "a live Patient already holds this unique key", "Patient/" + **holder);
  }
  return {};
}

// Writes version `version` of the resource as current, appends it to history
// and replaces its index and key rows.
Result<void> write_version(Connection& c, const WriteOp& op, const std::string& id, int64_t version, bool deleted,
                           const std::string& now, const char* interaction) {
  {
    auto st = c.cached("INSERT INTO changes(type, id, version, interaction, ts) VALUES(?1, ?2, ?3, ?4, ?5)");
    if (!st) return st.error();
    st->bind(1, op.type).bind(2, id).bind(3, version).bind(4, interaction).bind(5, now);
    if (auto r = st->run(); !r) return r.error();
  }
  const std::string empty;
  const std::string& body = deleted ? empty : op.body;
  {
    auto st = c.cached(
        "INSERT INTO resources(type, id, version, last_updated, deleted, body) VALUES(?1, ?2, ?3, ?4, ?5, ?6) "
        "ON CONFLICT(type, id) DO UPDATE SET version = excluded.version, last_updated = excluded.last_updated, "
        "deleted = excluded.deleted, body = excluded.body");
    if (!st) return st.error();
    st->bind(1, op.type).bind(2, id).bind(3, version).bind(4, now).bind(5, int64_t{deleted}).bind(6, body);
    if (auto r = st->run(); !r) return r.error();
  }
  {
    auto st = c.cached(
        "INSERT INTO resource_history(type, id, version, last_updated, deleted, body) "
        "VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
    if (!st) return st.error();
    st->bind(1, op.type).bind(2, id).bind(3, version).bind(4, now).bind(5, int64_t{deleted}).bind(6, body);
    if (auto r = st->run(); !r) return r.error();
  }
  {
    auto st = c.cached("DELETE FROM search_index WHERE type = ?1 AND id = ?2");
    if (!st) return st.error();
    st->bind(1, op.type).bind(2, id);
    if (auto r = st->run(); !r) return r.error();
  }
  if (!deleted) {
    for (const auto& e : op.index) {
      auto st = c.cached("INSERT INTO search_index(type, id, param, system, value) VALUES(?1, ?2, ?3, ?4, ?5)");
      if (!st) return st.error();
      st->bind(1, op.type).bind(2, id).bind(3, e.param).bind(4, e.system).bind(5, e.value);
      if (auto r = st->run(); !r) return r.error();
    }
  }
  if (op.type == "Patient") {
    auto del = c.cached("DELETE FROM patient_key WHERE id = ?1");
    if (!del) return del.error();
    del->bind(1, id);
    if (auto r = del->run(); !r) return r.error();
    if (!deleted && op.unique_key) {
      auto ins = c.cached("INSERT INTO patient_key(key, id) VALUES(?1, ?2)");
      if (!ins) return ins.error();
      ins->bind(1, *op.unique_key).bind(2, id);
      if (auto r = ins->run(); !r) return r.error();
    }
  }
  return {};
}

Result<OpOutcome> apply_create(Connection& c, const WriteOp& op, const std::string& now) {
  if (!op.if_none_exist.empty()) {
    auto ids = matching_ids(c, op.type, op.if_none_exist, 1);
    if (!ids) return ids.error();
    if (!ids->empty()) {
      if (op.id_resolved && ids->front() != op.id) {
        return make_error(Errc::version_conflict, "a matching resource appeared since the references were resolved");
      }
      auto cur = load_current(c, op.type, ids->front());
      if (!cur) return cur.error();
      if (!*cur) return make_error(Errc::internal, "matched resource vanished inside the transaction");
      return OpOutcome{ids->front(), (*cur)->version, (*cur)->last_updated, false, true};
    }
  }
  auto cur = load_current(c, op.type, op.id);
  if (!cur) return cur.error();
  if (*cur) return make_error(Errc::conflict, "a resource with this id already exists", "id");
  if (auto r = check_unique_key(c, op, op.id); !r) return r.error();
  if (auto r = write_version(c, op, op.id, 1, false, now, "create"); !r) return r.error();
  return OpOutcome{op.id, 1, now, true, false};
}

Result<OpOutcome> apply_update(Connection& c, const WriteOp& op, const std::string& now) {
  std::string id = op.id;
  if (!op.match.empty()) {
    auto ids = matching_ids(c, op.type, op.match, 2);
    if (!ids) return ids.error();
    if (ids->size() > 1) return make_error(Errc::version_conflict, "conditional update matched more than one resource");
    if (ids->size() == 1) id = ids->front();
    if (op.id_resolved && id != op.id) {
      return make_error(Errc::version_conflict, "the matching resource changed since the references were resolved");
    }
  }
  if (id.empty()) return make_error(Errc::invalid_input, "update without an id", "id");
  auto cur = load_current(c, op.type, id);
  if (!cur) return cur.error();
  int64_t version = 1;
  bool created = true;
  if (!*cur) {
    if (!op.upsert) return make_error(Errc::not_found, op.type + " not found");
    if (op.if_match) return make_error(Errc::version_conflict, "If-Match given but the resource does not exist");
  } else {
    const Current& k = **cur;
    if (k.deleted && !op.upsert) return make_error(Errc::gone, op.type + " was deleted");
    if (op.if_match && *op.if_match != k.version) {
      return make_error(Errc::version_conflict, "If-Match does not match the current version");
    }
    version = k.version + 1;
    created = k.deleted;  // an update of a deleted resource brings it back
  }
  if (auto r = check_unique_key(c, op, id); !r) return r.error();
  if (auto r = write_version(c, op, id, version, false, now, created ? "create" : "update"); !r) return r.error();
  return OpOutcome{id, version, now, created, false};
}

Result<OpOutcome> apply_remove(Connection& c, const WriteOp& op, const std::string& now) {
  auto cur = load_current(c, op.type, op.id);
  if (!cur) return cur.error();
  if (!*cur) return make_error(Errc::not_found, op.type + " not found");
  const Current& k = **cur;
  // FHIR delete is idempotent: deleting what is already deleted succeeds.
  if (k.deleted) return OpOutcome{op.id, k.version, k.last_updated, false, false};
  if (op.if_match && *op.if_match != k.version) {
    return make_error(Errc::version_conflict, "If-Match does not match the current version");
  }
  if (auto r = write_version(c, op, op.id, k.version + 1, true, now, "delete"); !r) return r.error();
  return OpOutcome{op.id, k.version + 1, now, false, false};
}

Result<OpOutcome> apply_op(Connection& c, const WriteOp& op, const std::string& now) {
  if (op.type.empty()) return make_error(Errc::invalid_input, "write without a resource type");
  switch (op.kind) {
    case OpKind::create:
      if (op.id.empty()) return make_error(Errc::invalid_input, "create without an id", "id");
      return apply_create(c, op, now);
    case OpKind::update:
      return apply_update(c, op, now);
    case OpKind::remove:
      if (op.id.empty()) return make_error(Errc::invalid_input, "delete without an id", "id");
      return apply_remove(c, op, now);
  }
  return make_error(Errc::internal, "unknown write kind");
}

Result<void> insert_audit(Connection& c, const AuditRow& a, const std::string& now) {
  auto st = c.cached(
      "INSERT INTO audit(ts, actor_ods, actor_role, actor_system, action, entity, outcome, http_status, "
      "request_id, detail, patient_ref) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
  if (!st) return st.error();
  st->bind(1, now).bind(2, a.actor_ods).bind(3, a.actor_role).bind(4, a.actor_system).bind(5, a.action);
  st->bind(6, a.entity).bind(7, a.outcome).bind(8, static_cast<int64_t>(a.http_status)).bind(9, a.request_id);
  st->bind(10, a.detail).bind(11, a.patient_ref);
  return st->run();
}

Result<void> insert_outbox(Connection& c, const OutboxRow& o, const std::string& now) {
  auto st = c.cached("INSERT INTO outbox(topic, focus, payload, created) VALUES(?1, ?2, ?3, ?4)");
  if (!st) return st.error();
  st->bind(1, o.topic).bind(2, o.focus).bind(3, o.payload).bind(4, now);
  return st->run();
}

Result<void> claim_idempotency_key(Connection& c, const std::string& key, const std::string& now) {
  auto st = c.cached("INSERT OR IGNORE INTO idempotency(key, created) VALUES(?1, ?2)");
  if (!st) return st.error();
  st->bind(1, key).bind(2, now);
  if (auto r = st->run(); !r) return r.error();
  if (sqlite3_changes(c.raw()) == 0) {
    return make_error(Errc::conflict, "this message was already accepted", "idempotency-key");
  }
  return {};
}

Result<int64_t> insert_inbound(Connection& c, const InboundRow& m, const std::string& now) {
  auto st = c.cached(
      "INSERT INTO inbound(received, adapter, channel, sender_ods, sender_system, control_id, status, reason, "
      "issues_json, raw, replay_of) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
  if (!st) return st.error();
  st->bind(1, now).bind(2, m.adapter).bind(3, m.channel).bind(4, m.sender_ods).bind(5, m.sender_system);
  st->bind(6, m.control_id).bind(7, m.status).bind(8, m.reason).bind(9, m.issues_json).bind(10, m.raw);
  st->bind(11, m.replay_of);
  if (auto r = st->run(); !r) return r.error();
  return static_cast<int64_t>(sqlite3_last_insert_rowid(c.raw()));
}

Result<void> set_inbound_status(Connection& c, int64_t id, const std::string& status) {
  auto st = c.cached("UPDATE inbound SET status = ?2 WHERE id = ?1");
  if (!st) return st.error();
  st->bind(1, id).bind(2, status);
  if (auto r = st->run(); !r) return r.error();
  if (sqlite3_changes(c.raw()) == 0) return make_error(Errc::not_found, "inbound message not found");
  return {};
}

// Transaction-control statements run for every unit; prepared once, since
// sqlite3_exec would parse them each time.
Result<void> run_cached(Connection& c, const char* sql) {
  auto st = c.cached(sql);
  if (!st) return st.error();
  return st->run();
}

Result<int64_t> insert_event(Connection& c, const NewEvent& e, const std::string& now) {
  int64_t number = 1;
  {
    auto st = c.cached(
        "INSERT INTO sub_counters(subscription, events) VALUES(?1, 1) "
        "ON CONFLICT(subscription) DO UPDATE SET events = events + 1 RETURNING events");
    if (!st) return st.error();
    st->bind(1, e.subscription);
    auto row = st->step();
    if (!row) return row.error();
    if (!*row) return make_error(Errc::internal, "event counter returned no row");
    number = st->int64(0);
  }
  auto st = c.cached(
      "INSERT INTO sub_events(subscription, number, change_seq, focus_type, focus_id, focus_version, interaction, "
      "patient_ref, content, created, status) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'pending')");
  if (!st) return st.error();
  st->bind(1, e.subscription).bind(2, number).bind(3, e.change_seq).bind(4, e.focus_type).bind(5, e.focus_id);
  st->bind(6, e.focus_version).bind(7, e.interaction).bind(8, e.patient_ref).bind(9, e.content).bind(10, now);
  if (auto r = st->run(); !r) return r.error();
  return number;
}

Result<void> update_events(Connection& c, const EventUpdate& u) {
  auto st = c.cached(
      "UPDATE sub_events SET status = CASE WHEN ?4 = '' THEN status ELSE ?4 END, attempts = attempts + ?5, "
      "first_attempt_ms = CASE WHEN ?6 < 0 THEN first_attempt_ms WHEN ?6 = 0 THEN 0 "
      "WHEN first_attempt_ms = 0 THEN ?6 ELSE first_attempt_ms END, "
      "last_error = CASE WHEN ?7 IS NULL THEN last_error ELSE ?7 END "
      "WHERE subscription = ?1 AND number >= ?2 AND number <= ?3 AND (?8 = '' OR status = ?8)");
  if (!st) return st.error();
  st->bind(1, u.subscription).bind(2, u.from).bind(3, u.to).bind(4, u.status).bind(5, u.add_attempts);
  st->bind(6, u.first_attempt_ms);
  if (u.last_error) st->bind(7, *u.last_error);
  else st->bind_null(7);
  st->bind(8, u.only_status);
  return st->run();
}

Result<void> set_cursor(Connection& c, const std::string& name, int64_t seq) {
  auto st = c.cached(
      "INSERT INTO cursors(name, seq) VALUES(?1, ?2) ON CONFLICT(name) DO UPDATE SET seq = excluded.seq");
  if (!st) return st.error();
  st->bind(1, name).bind(2, seq);
  return st->run();
}

constexpr const char* kEventColumns =
    "subscription, number, change_seq, focus_type, focus_id, focus_version, interaction, patient_ref, content, "
    "created, status, attempts, first_attempt_ms, last_error";

EventRow row_to_event(const Statement& st) {
  EventRow e;
  e.subscription = st.text(0);
  e.number = st.int64(1);
  e.change_seq = st.int64(2);
  e.focus_type = st.text(3);
  e.focus_id = st.text(4);
  e.focus_version = st.int64(5);
  e.interaction = st.text(6);
  e.patient_ref = st.text(7);
  e.content = st.text(8);
  e.created = st.text(9);
  e.status = st.text(10);
  e.attempts = st.int64(11);
  e.first_attempt_ms = st.int64(12);
  e.last_error = st.text(13);
  return e;
}

// The prepare hook's view: the writer connection, inside the open transaction.
class WriterView final : public TxView {
 public:
  explicit WriterView(Connection& c) : c_(c) {}
  Result<StoredResource> read(const std::string& type, const std::string& id) override { return read_on(c_, type, id); }
  Result<std::vector<std::string>> match(const std::string& type, const std::vector<Match>& ms, int limit) override {
    return matching_ids(c_, type, ms, limit);
  }
  Result<SearchPage> search(const SearchQuery& q) override { return search_page_on(c_, q, search_where(q)); }
  Result<std::optional<std::string>> find_by_unique_key(const std::string& key) override {
    return unique_key_on(c_, key);
  }

 private:
  Connection& c_;
};

Result<CommitOutcome> apply_unit_body(Connection& c, UnitOfWork& u, const std::string& now) {
  if (u.prepare) {
    WriterView view(c);
    if (auto r = u.prepare(view, u); !r) return r.error();
  }
  CommitOutcome out;
  if (u.idempotency_key)
    if (auto r = claim_idempotency_key(c, *u.idempotency_key, now); !r) return r.error();
  out.ops.reserve(u.ops.size());
  for (const auto& op : u.ops) {
    auto r = apply_op(c, op, now);
    if (!r) return r.error();
    out.ops.push_back(std::move(*r));
  }
  for (const auto& a : u.audit)
    if (auto r = insert_audit(c, a, now); !r) return r.error();
  for (const auto& o : u.outbox)
    if (auto r = insert_outbox(c, o, now); !r) return r.error();
  for (const auto& m : u.inbound) {
    auto id = insert_inbound(c, m, now);
    if (!id) return id.error();
    out.inbound_ids.push_back(*id);
  }
  for (const auto& [id, status] : u.inbound_status)
    if (auto r = set_inbound_status(c, id, status); !r) return r.error();
  for (const auto& e : u.events) {
    auto n = insert_event(c, e, now);
    if (!n) return n.error();
    out.event_numbers.push_back(*n);
  }
  for (const auto& e : u.event_updates)
    if (auto r = update_events(c, e); !r) return r.error();
  if (u.cursor)
    if (auto r = set_cursor(c, u.cursor->first, u.cursor->second); !r) return r.error();
  if (!u.timer_sets.empty() || !u.timers_fired.empty())
    if (auto r = apply_timers(c, u, now); !r) return r.error();
  return out;
}

struct Pending {
  UnitOfWork unit;
  CommitCallback cb;
};

std::vector<double> batch_bounds() {
  std::vector<double> b;
  for (double v = 1; v <= 512; v *= 2) b.push_back(v);
  return b;
}

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(const SqliteOptions& o) : opts_(o) {
    if (opts_.max_batch == 0) opts_.max_batch = 1;
    if (opts_.reader_threads < 1) opts_.reader_threads = 1;
    queue_capacity_ = opts_.writer_queue_capacity;
  }

  ~SqliteStore() override { close(); }

  // Opens every connection and migrates; throws so start-up can report it.
  void start() {
    auto fail = [this](const std::string& what) {
      throw std::runtime_error("sqlite store " + opts_.path + ": " + what);
    };
    auto w = Connection::open(opts_.path, Connection::Mode::read_write_create, opts_.busy_timeout_ms);
    if (!w) fail(w.error().message);
    writer_ = std::move(*w);
    {
      auto st = writer_->prepare("PRAGMA journal_mode=WAL");
      if (!st) fail(st.error().message);
      auto row = st->step();
      if (!row) fail(row.error().message);
      if (!*row || st->text(0) != "wal") fail("cannot switch to WAL journal mode");
    }
    // FULL: a unit is acknowledged only once it survives power loss.
    if (auto r = writer_->exec("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON"); !r) fail(r.error().message);
    // Ids are random UUIDs, so inserts land all over every B-tree: keep the
    // interior pages in memory (SqliteOptions::writer_cache_mib) instead of
    // re-reading them per commit, and checkpoint every ~40 MiB of WAL rather
    // than every 4 MiB so a page written many times between checkpoints is
    // copied back once.
    const std::string pragmas = "PRAGMA cache_size=-" + std::to_string(int64_t{opts_.writer_cache_mib} * 1024) +
                                "; PRAGMA mmap_size=268435456; PRAGMA wal_autocheckpoint=10000";
    if (auto r = writer_->exec(pragmas); !r) {
      fail(r.error().message);
    }
    auto applied = sqlite::migrate(*writer_, iso_now().c_str());
    if (!applied) fail(applied.error().message);
    migrations_applied_ = *applied;

    auto open_reader = [&]() {
      auto c = Connection::open(opts_.path, Connection::Mode::read_write_create, opts_.busy_timeout_ms);
      if (!c) fail(c.error().message);
      // Readers never write; query_only makes that a rule, not a habit.
      if (auto r = (*c)->exec("PRAGMA query_only=1; PRAGMA foreign_keys=ON"); !r) fail(r.error().message);
      // Reads through a shared memory map instead of copying each page in.
      if (auto r = (*c)->exec("PRAGMA cache_size=-16384; PRAGMA mmap_size=268435456"); !r) fail(r.error().message);
      return std::move(*c);
    };
    for (int i = 0; i < opts_.reader_threads; ++i) readers_.push_back(open_reader());
    fallback_ = open_reader();

    if (opts_.metrics) {
      commit_seconds_ = &opts_.metrics->histogram("gw_store_commit_seconds",
                                                  "Store group-commit latency (seconds)", metrics::latency_buckets());
      batch_units_ = &opts_.metrics->histogram("gw_store_commit_batch_units", "Units of work per store commit",
                                               batch_bounds());
      depth_gauge_ = &opts_.metrics->gauge("gw_store_writer_queue_depth", "Units waiting for the store writer");
      failures_ = &opts_.metrics->counter("gw_store_commit_failures_total", "Store commits that failed");
    }

    writer_thread_ = std::thread([this] { writer_loop(); });
    for (auto& r : readers_) {
      Connection* conn = r.get();
      reader_threads_.emplace_back([this, conn] { reader_loop(conn); });
    }
    log::info("store_opened", {{"engine", "sqlite"},
                               {"migrations_applied", migrations_applied_},
                               {"readers", opts_.reader_threads},
                               {"queue_capacity", static_cast<uint64_t>(queue_capacity_)}});
  }

  Result<void> commit(UnitOfWork unit, CommitCallback cb) override {
    {
      std::lock_guard lk(wmu_);
      if (wclosing_) return make_error(Errc::unavailable, "store is closing");
      if (wq_.size() >= queue_capacity_) return make_error(Errc::unavailable, "store writer queue is full");
      wq_.push_back(Pending{std::move(unit), std::move(cb)});
      set_depth(wq_.size());
    }
    wcv_.notify_one();
    return {};
  }

  Result<StoredResource> read(const std::string& type, const std::string& id) override {
    return with_reader([&](Connection& c) { return read_on(c, type, id); });
  }
  Result<StoredResource> vread(const std::string& type, const std::string& id, int64_t version) override {
    return with_reader([&](Connection& c) { return vread_on(c, type, id, version); });
  }
  Result<std::vector<StoredResource>> history(const std::string& type, const std::string& id) override {
    return with_reader([&](Connection& c) { return history_on(c, type, id); });
  }
  Result<SearchPage> search(const SearchQuery& q) override {
    return with_reader([&](Connection& c) { return search_on(c, q); });
  }
  Result<std::optional<std::string>> find_by_unique_key(const std::string& key) override {
    return with_reader([&](Connection& c) { return unique_key_on(c, key); });
  }

  Result<std::vector<InboundRow>> list_inbound(const std::string& status, int limit, int64_t offset) override {
    return with_reader([&](Connection& c) -> Result<std::vector<InboundRow>> {
      static const std::string sql = std::string("SELECT ") + kInboundColumns +
                                     " FROM inbound WHERE (?1 = '' OR status = ?1) ORDER BY id DESC LIMIT ?2 OFFSET ?3";
      auto st = c.cached(sql.c_str());
      if (!st) return st.error();
      st->bind(1, status).bind(2, static_cast<int64_t>(limit)).bind(3, offset);
      std::vector<InboundRow> out;
      for (;;) {
        auto row = st->step();
        if (!row) return row.error();
        if (!*row) break;
        out.push_back(row_to_inbound(*st));
      }
      return out;
    });
  }

  Result<InboundRow> get_inbound(int64_t id) override {
    return with_reader([&](Connection& c) -> Result<InboundRow> {
      static const std::string sql = std::string("SELECT ") + kInboundColumns + " FROM inbound WHERE id = ?1";
      auto st = c.cached(sql.c_str());
      if (!st) return st.error();
      st->bind(1, id);
      auto row = st->step();
      if (!row) return row.error();
      if (!*row) return make_error(Errc::not_found, "inbound message not found");
      return row_to_inbound(*st);
    });
  }

  Result<std::vector<ChangeRow>> changes_after(int64_t after, int limit) override {
    return with_reader([&](Connection& c) -> Result<std::vector<ChangeRow>> {
      auto st = c.cached(
          "SELECT seq, type, id, version, interaction, ts FROM changes WHERE seq > ?1 ORDER BY seq LIMIT ?2");
      if (!st) return st.error();
      st->bind(1, after).bind(2, static_cast<int64_t>(limit));
      std::vector<ChangeRow> out;
      for (;;) {
        auto row = st->step();
        if (!row) return row.error();
        if (!*row) break;
        out.push_back(ChangeRow{st->int64(0), st->text(1), st->text(2), st->int64(3), st->text(4), st->text(5)});
      }
      return out;
    });
  }

  Result<std::vector<TimerRow>> due_timers(const std::string& now, int limit) override {
    return with_reader([&](Connection& c) { return due_timers_on(c, now, limit); });
  }
  Result<std::vector<TimerRow>> timers_of(const std::string& kind, const std::string& subject) override {
    return with_reader([&](Connection& c) { return timers_of_on(c, kind, subject); });
  }

  Result<int64_t> cursor(const std::string& name) override {
    return with_reader([&](Connection& c) -> Result<int64_t> {
      auto st = c.cached("SELECT seq FROM cursors WHERE name = ?1");
      if (!st) return st.error();
      st->bind(1, name);
      auto row = st->step();
      if (!row) return row.error();
      return *row ? st->int64(0) : int64_t{0};
    });
  }

  Result<std::vector<EventRow>> events(const std::string& subscription, int64_t from, int64_t until,
                                       const std::string& status, int limit) override {
    return with_reader([&](Connection& c) -> Result<std::vector<EventRow>> {
      static const std::string sql = std::string("SELECT ") + kEventColumns +
                                     " FROM sub_events WHERE subscription = ?1 AND number >= ?2 AND (?3 = 0 OR "
                                     "number <= ?3) AND (?4 = '' OR status = ?4) ORDER BY number LIMIT ?5";
      auto st = c.cached(sql.c_str());
      if (!st) return st.error();
      st->bind(1, subscription).bind(2, from).bind(3, until).bind(4, status).bind(5, static_cast<int64_t>(limit));
      std::vector<EventRow> out;
      for (;;) {
        auto row = st->step();
        if (!row) return row.error();
        if (!*row) break;
        out.push_back(row_to_event(*st));
      }
      return out;
    });
  }

  Result<EventCounts> event_counts(const std::string& subscription) override {
    return with_reader([&](Connection& c) -> Result<EventCounts> {
      EventCounts out;
      if (auto r = c.exec("BEGIN"); !r) return r.error();
      auto body = [&]() -> Result<void> {
        {
          auto st = c.cached("SELECT events FROM sub_counters WHERE subscription = ?1");
          if (!st) return st.error();
          st->bind(1, subscription);
          auto row = st->step();
          if (!row) return row.error();
          if (*row) out.events = st->int64(0);
        }
        // Pending and dead are few and indexed; delivered is what is left
        // (every event is in exactly one status), so no scan of the history.
        for (const char* status : {"pending", "dead"}) {
          auto st = c.cached(
              "SELECT count(*), min(created) FROM sub_events WHERE subscription = ?1 AND status = ?2");
          if (!st) return st.error();
          st->bind(1, subscription).bind(2, status);
          auto row = st->step();
          if (!row) return row.error();
          if (std::string_view(status) == "pending") {
            out.pending = st->int64(0);
            if (!st->is_null(1)) out.oldest_pending = st->text(1);
          } else {
            out.dead = st->int64(0);
          }
        }
        out.delivered = out.events - out.pending - out.dead;
        return {};
      };
      auto r = body();
      (void)c.exec(r ? "COMMIT" : "ROLLBACK");
      if (!r) return r.error();
      return out;
    });
  }

  Result<std::vector<std::string>> subscriptions_with_events(const std::string& status) override {
    return with_reader([&](Connection& c) -> Result<std::vector<std::string>> {
      auto st = c.cached("SELECT DISTINCT subscription FROM sub_events WHERE status = ?1");
      if (!st) return st.error();
      st->bind(1, status);
      std::vector<std::string> out;
      for (;;) {
        auto row = st->step();
        if (!row) return row.error();
        if (!*row) break;
        out.push_back(st->text(0));
      }
      return out;
    });
  }

  void set_commit_listener(std::function<void()> fn) override {
    std::lock_guard lk(listener_mu_);
    listener_ = std::make_shared<std::function<void()>>(std::move(fn));
  }

  Result<void> run_read(std::function<void()> fn) override {
    {
      std::lock_guard lk(rmu_);
      if (rclosing_) return make_error(Errc::unavailable, "store is closing");
      if (rq_.size() >= opts_.reader_queue_capacity) return make_error(Errc::unavailable, "store reader queue is full");
      rq_.push_back(std::move(fn));
    }
    rcv_.notify_one();
    return {};
  }

  // Must not be called from a store thread (a callback or a read task): it
  // joins them.
  void close() override {
    std::lock_guard cl(close_mu_);
    if (closed_) return;
    closed_ = true;
    {
      std::lock_guard lk(wmu_);
      wclosing_ = true;
    }
    wcv_.notify_all();
    // The writer drains what is queued first; callbacks may still queue reads.
    if (writer_thread_.joinable()) writer_thread_.join();
    {
      std::lock_guard lk(rmu_);
      rclosing_ = true;
    }
    rcv_.notify_all();
    for (auto& t : reader_threads_)
      if (t.joinable()) t.join();
    if (writer_) log::info("store_closed", {{"engine", "sqlite"}, {"commits", commits_.load()}});
  }

  Stats stats() const override {
    Stats s;
    s.commits = commits_.load();
    s.units = units_.load();
    s.queue_depth = depth_.load();
    s.queue_capacity = queue_capacity_;
    s.last_batch_size = static_cast<double>(last_batch_.load());
    return s;
  }

 private:
  template <class F>
  std::invoke_result_t<F, Connection&> with_reader(F&& f) {
    if (tls_reader.owner == this) return f(*tls_reader.conn);
    std::lock_guard lk(fallback_mu_);
    return f(*fallback_);
  }

  void set_depth(size_t d) {
    depth_.store(d);
    if (depth_gauge_) depth_gauge_->set(static_cast<int64_t>(d));
  }

  void writer_loop() {
    for (;;) {
      std::vector<Pending> batch;
      {
        std::unique_lock lk(wmu_);
        wcv_.wait(lk, [this] { return !wq_.empty() || wclosing_; });
        if (wq_.empty()) return;  // closing and drained
        size_t n = std::min(opts_.max_batch, wq_.size());
        batch.reserve(n);
        for (size_t i = 0; i < n; ++i) {
          batch.push_back(std::move(wq_.front()));
          wq_.pop_front();
        }
        set_depth(wq_.size());
      }
      commit_batch(batch);
    }
  }

  // One transaction for the whole batch, one SAVEPOINT per unit: a unit that
  // fails is rolled back alone, and one fsync covers all the others.
  void commit_batch(std::vector<Pending>& batch) {
    auto t0 = std::chrono::steady_clock::now();
    const std::string now = iso_now();
    std::vector<Result<CommitOutcome>> results;
    results.reserve(batch.size());
    Connection& c = *writer_;
    std::string failure;
    if (auto r = run_cached(c, "BEGIN IMMEDIATE"); !r) failure = r.error().message;
    for (size_t i = 0; failure.empty() && i < batch.size(); ++i) {
      if (auto r = run_cached(c, "SAVEPOINT unit"); !r) {
        failure = r.error().message;
        break;
      }
      auto res = apply_unit_body(c, batch[i].unit, now);
      if (!res) {
        if (res.error().code == Errc::store_failure) {
          log::warn("store_unit_failed", {{"reason", res.error().message}});
        }
        if (auto r = run_cached(c, "ROLLBACK TO unit"); !r) failure = r.error().message;
      }
      if (auto r = run_cached(c, "RELEASE unit"); !r && failure.empty()) failure = r.error().message;
      results.push_back(std::move(res));
    }
    if (failure.empty()) {
      if (auto r = run_cached(c, "COMMIT"); !r) failure = r.error().message;
    }
    if (!failure.empty()) {
      (void)c.exec("ROLLBACK");
      log::error("store_commit_failed", {{"units", static_cast<uint64_t>(batch.size())}, {"reason", failure}});
      if (failures_) failures_->inc();
      results.clear();
      for (size_t i = 0; i < batch.size(); ++i) {
        results.push_back(make_error(Errc::store_failure, "the store could not commit the change"));
      }
    } else {
      uint64_t ok = 0;
      for (const auto& r : results) ok += r.has_value() ? 1 : 0;
      commits_.fetch_add(1);
      units_.fetch_add(ok);
      last_batch_.store(batch.size());
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (commit_seconds_) commit_seconds_->observe(secs);
      if (batch_units_) batch_units_->observe(static_cast<double>(batch.size()));
    }
    // Only now is every unit durable (or definitely not written).
    bool fed = false;
    for (size_t i = 0; i < batch.size(); ++i) {
      if (results[i] && (!batch[i].unit.ops.empty() || !batch[i].unit.events.empty())) fed = true;
    }
    if (fed) {
      std::shared_ptr<std::function<void()>> l;
      {
        std::lock_guard lk(listener_mu_);
        l = listener_;
      }
      if (l && *l) (*l)();
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      if (!batch[i].cb) continue;
      try {
        batch[i].cb(std::move(results[i]));
      } catch (const std::exception& e) {
        // A throwing callback must not take the writer (and every later unit) down.
        log::error("store_callback_threw", {{"what", e.what()}});
      } catch (...) {
        log::error("store_callback_threw", {{"what", "unknown"}});
      }
    }
  }

  void reader_loop(Connection* conn) {
    tls_reader = ReaderSlot{this, conn};
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock lk(rmu_);
        rcv_.wait(lk, [this] { return !rq_.empty() || rclosing_; });
        if (rq_.empty()) break;
        fn = std::move(rq_.front());
        rq_.pop_front();
      }
      try {
        fn();
      } catch (const std::exception& e) {
        log::error("store_read_task_threw", {{"what", e.what()}});
      } catch (...) {
        log::error("store_read_task_threw", {{"what", "unknown"}});
      }
    }
    tls_reader = ReaderSlot{};
  }

  SqliteOptions opts_;
  size_t queue_capacity_ = 0;
  int migrations_applied_ = 0;

  std::unique_ptr<Connection> writer_;
  std::vector<std::unique_ptr<Connection>> readers_;
  std::unique_ptr<Connection> fallback_;
  std::mutex fallback_mu_;

  std::mutex wmu_;
  std::condition_variable wcv_;
  std::deque<Pending> wq_;
  bool wclosing_ = false;
  std::thread writer_thread_;

  std::mutex rmu_;
  std::condition_variable rcv_;
  std::deque<std::function<void()>> rq_;
  bool rclosing_ = false;
  std::vector<std::thread> reader_threads_;

  std::mutex close_mu_;
  bool closed_ = false;

  std::mutex listener_mu_;
  std::shared_ptr<std::function<void()>> listener_;

  std::atomic<uint64_t> commits_{0}, units_{0}, depth_{0}, last_batch_{0};
  metrics::Histogram* commit_seconds_ = nullptr;
  metrics::Histogram* batch_units_ = nullptr;
  metrics::Gauge* depth_gauge_ = nullptr;
  metrics::Counter* failures_ = nullptr;
};

}  // namespace

std::unique_ptr<Store> open_sqlite(const SqliteOptions& opts) {
  auto s = std::make_unique<SqliteStore>(opts);
  s->start();  // on throw, the destructor's close() finds no threads to join
  return s;
}

}  // namespace gw::store
