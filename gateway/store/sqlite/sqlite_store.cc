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
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <type_traits>

#include "gateway/common/log.h"
#include "gateway/common/metrics.h"
#include "gateway/common/clock.h"
#include "gateway/store/sqlite/audit_trail.h"
#include "gateway/store/sqlite/connection.h"
#include "gateway/store/sqlite/rows.h"
#include "gateway/store/sqlite/schema.h"
#include "gateway/store/sqlite/timers.h"
#include "gateway/store/store.h"
#include "gateway/store/unit_steps.h"

namespace gw::store {

namespace {

using sqlite::Connection;
using sqlite::Statement;
using sqlite::RowWriter;
using sqlite::read_on;
using sqlite::vread_on;
using sqlite::history_on;
using sqlite::search_on;
using sqlite::match_on;
using sqlite::unique_key_on;
using sqlite::changes_after_on;


// Which connection a reader-pool thread owns. Keyed by store so that a task on
// one store's pool calling another store falls back to that store's own
// shared connection instead of using a foreign one.
struct ReaderSlot {
  const void* owner = nullptr;
  Connection* conn = nullptr;
};
thread_local ReaderSlot tls_reader;

constexpr const char* kInboundColumns =
    "id, received, adapter, channel, sender_ods, sender_system, control_id, status, reason, issues_json, raw, "
    "replay_of, kind, answer, written";

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
  m.kind = st.text(12);
  m.answer = st.text(13);
  m.written = st.text(14);
  return m;
}

Result<void> sqlite_outbox(Connection& c, const OutboxRow& o, const std::string& now) {
  auto st = c.cached("INSERT INTO outbox(topic, focus, payload, created) VALUES(?1, ?2, ?3, ?4)");
  if (!st) return st.error();
  st->bind(1, o.topic).bind(2, o.focus).bind(3, o.payload).bind(4, now);
  return st->run();
}

Result<void> sqlite_claim_key(Connection& c, const std::string& key, const std::string& now) {
  auto st = c.cached("INSERT OR IGNORE INTO idempotency(key, created) VALUES(?1, ?2)");
  if (!st) return st.error();
  st->bind(1, key).bind(2, now);
  if (auto r = st->run(); !r) return r.error();
  if (sqlite3_changes(c.raw()) == 0) {
    return make_error(Errc::conflict, "this message was already accepted", "idempotency-key");
  }
  return {};
}

Result<int64_t> sqlite_inbound(Connection& c, const InboundRow& m, const std::string& now, const std::string& written) {
  auto st = c.cached(
      "INSERT INTO inbound(received, adapter, channel, sender_ods, sender_system, control_id, status, reason, "
      "issues_json, raw, replay_of, kind, answer, written) "
      "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)");
  if (!st) return st.error();
  st->bind(1, now).bind(2, m.adapter).bind(3, m.channel).bind(4, m.sender_ods).bind(5, m.sender_system);
  st->bind(6, m.control_id).bind(7, m.status).bind(8, m.reason).bind(9, m.issues_json).bind(10, m.raw);
  st->bind(11, m.replay_of).bind(12, m.kind).bind(13, m.answer).bind(14, written);
  if (auto r = st->run(); !r) return r.error();
  return static_cast<int64_t>(sqlite3_last_insert_rowid(c.raw()));
}

Result<void> sqlite_inbound_status(Connection& c, int64_t id, const std::string& status) {
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

Result<int64_t> sqlite_event(Connection& c, const NewEvent& e, const std::string& now) {
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

Result<void> sqlite_update_events(Connection& c, const EventUpdate& u) {
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

Result<void> sqlite_cursor(Connection& c, const std::string& name, int64_t seq, std::optional<int64_t> from) {
  if (from) {
    auto cur = c.cached("SELECT seq FROM cursors WHERE name = ?1");
    if (!cur) return cur.error();
    cur->bind(1, name);
    auto row = cur->step();
    if (!row) return row.error();
    if ((*row ? cur->int64(0) : int64_t{0}) != *from) {
      return make_error(Errc::conflict, "the consumer's position moved on elsewhere", "cursor");
    }
  }
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
  WriterView(Connection& c, const sqlite::AuditTrailWriter& audit) : c_(c), audit_(audit) {}
  Result<StoredResource> read(const std::string& type, const std::string& id) override { return read_on(c_, type, id); }
  Result<std::vector<std::string>> match(const std::string& type, const std::vector<Match>& ms, int limit) override {
    return match_on(c_, type, ms, limit);
  }
  Result<SearchPage> search(const SearchQuery& q) override { return search_on(c_, q, true); }
  Result<std::optional<std::string>> find_by_unique_key(const std::string& key) override {
    return unique_key_on(c_, key);
  }
  AuditHead audit_head() override { return audit_.head(); }

 private:
  Connection& c_;
  const sqlite::AuditTrailWriter& audit_;
};

// The embedded store's rows for apply_unit (unit_steps.h); audit rows are
// numbered, stamped and chained by the trail writer (issue 16).
struct UnitRows {
  Connection& c;
  RowWriter& rows;
  sqlite::AuditTrailWriter& audit;
  WriterView tx{c, audit};
  TxView& view() { return tx; }
  Result<void> claim_idempotency_key(const std::string& key, const std::string& now) {
    return sqlite_claim_key(c, key, now);
  }
  Result<OpOutcome> apply(const WriteOp& op, int64_t now_ms) { return rows.apply(op, now_ms); }
  Result<void> insert_audit(const AuditRow& a, const std::string& now) { return audit.insert(a, now); }
  Result<void> insert_audit_checkpoint(const AuditCheckpoint& cp) { return audit.insert_checkpoint(cp); }
  Result<void> prune_audit(int64_t through) { return audit.prune_through(through); }
  Result<void> insert_outbox(const OutboxRow& o, const std::string& now) { return sqlite_outbox(c, o, now); }
  Result<int64_t> insert_inbound(const InboundRow& m, const std::string& now, const std::string& written) {
    return sqlite_inbound(c, m, now, written);
  }
  Result<void> set_inbound_status(int64_t id, const std::string& status) { return sqlite_inbound_status(c, id, status); }
  Result<int64_t> insert_event(const NewEvent& e, const std::string& now) { return sqlite_event(c, e, now); }
  Result<void> update_events(const EventUpdate& u) { return sqlite_update_events(c, u); }
  Result<void> set_cursor(const std::string& name, int64_t seq, std::optional<int64_t> from) {
    return sqlite_cursor(c, name, seq, from);
  }
  Result<void> apply_timers(const UnitOfWork& u, const std::string& now) { return sqlite::apply_timers(c, u, now); }
};

Result<CommitOutcome> apply_unit_body(Connection& c, RowWriter& rows, sqlite::AuditTrailWriter& audit, UnitOfWork& u,
                                      int64_t now_ms, const std::string& now) {
  UnitRows unit_rows{c, rows, audit};
  return apply_unit(unit_rows, u, now_ms, now);
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
    if (auto r = sqlite::register_functions(*writer_); !r) fail(r.error().message);
    {
      auto st = writer_->prepare("PRAGMA journal_mode=WAL");
      if (!st) fail(st.error().message);
      auto row = st->step();
      if (!row) fail(row.error().message);
      if (!*row || st->text(0) != "wal") fail("cannot switch to WAL journal mode");
    }
    // FULL: a unit is acknowledged only once it survives power loss.
    if (auto r = writer_->exec("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON"); !r) fail(r.error().message);
    // The writer keeps the interior pages of every B-tree in memory
    // (SqliteOptions::writer_cache_mib) instead of re-reading them per commit.
    // It never checkpoints: an automatic checkpoint would run inside COMMIT,
    // between the fsync and the callbacks, and hold every answer of the batch
    // back; the checkpointer thread does it on its own connection (PASSIVE:
    // it never blocks the writer), and journal_size_limit trims the WAL file
    // once a checkpoint let it start over.
    const std::string pragmas = "PRAGMA cache_size=-" + std::to_string(int64_t{opts_.writer_cache_mib} * 1024) +
                                "; PRAGMA mmap_size=268435456; PRAGMA wal_autocheckpoint=0"
                                "; PRAGMA journal_size_limit=67108864";
    if (auto r = writer_->exec(pragmas); !r) {
      fail(r.error().message);
    }
    auto applied = sqlite::migrate(*writer_, clock::iso_now().c_str());
    if (!applied) fail(applied.error().message);
    migrations_applied_ = *applied;
    rows_ = std::make_unique<sqlite::RowWriter>(*writer_);
    if (auto r = rows_->load(); !r) fail(r.error().message);
    audit_ = std::make_unique<sqlite::AuditTrailWriter>(*writer_);
    if (auto r = audit_->load(); !r) fail(r.error().message);

    auto open_reader = [&]() {
      auto c = Connection::open(opts_.path, Connection::Mode::read_write_create, opts_.busy_timeout_ms);
      if (!c) fail(c.error().message);
      if (auto r = sqlite::register_functions(**c); !r) fail(r.error().message);
      // Readers never write; query_only makes that a rule, not a habit.
      if (auto r = (*c)->exec("PRAGMA query_only=1; PRAGMA foreign_keys=ON"); !r) fail(r.error().message);
      // No memory map for readers. A read transaction that starts after any
      // commit (the normal case: every audited read commits) makes SQLite
      // drop the connection's page cache and unmap its whole map (pager.c,
      // pagerBeginReadTransaction), and the munmap costs a TLB shootdown on
      // every core and a page fault per page touched again. Copying the few
      // pages a query needs is cheaper: the CP-IS silent query at one
      // connection went from 3 099 to 4 861 req/s (20 000 plans) and, on a
      // 680 000-child store, from 2 071-2 297 to 2 726-3 111 (tests/bench/README
      // "Readers without a memory map"). Long scans lose a little (a whole-type
      // walk 254 -> 362 ms on 20 000 patients).
      if (auto r = (*c)->exec("PRAGMA cache_size=-16384; PRAGMA mmap_size=0"); !r) fail(r.error().message);
      return std::move(*c);
    };
    for (int i = 0; i < opts_.reader_threads; ++i) readers_.push_back(open_reader());
    fallback_ = open_reader();
    {
      auto c = Connection::open(opts_.path, Connection::Mode::read_write_create, opts_.busy_timeout_ms);
      if (!c) fail(c.error().message);
      checkpointer_ = std::move(*c);
      // SQLite (3.40) checkpoints nothing, and says SQLITE_OK, through a
      // connection that has not yet read the database and so not found its
      // WAL: one read makes it open the WAL before the first checkpoint.
      if (auto r = checkpointer_->exec("SELECT count(*) FROM sqlite_schema"); !r) fail(r.error().message);
    }
    sqlite3_wal_hook(writer_->raw(), &SqliteStore::on_wal_commit, this);

    if (opts_.metrics) {
      commit_seconds_ = &opts_.metrics->histogram("gw_store_commit_seconds",
                                                  "Store group-commit latency (seconds)", metrics::latency_buckets());
      batch_units_ = &opts_.metrics->histogram("gw_store_commit_batch_units", "Units of work per store commit",
                                               batch_bounds());
      depth_gauge_ = &opts_.metrics->gauge("gw_store_writer_queue_depth", "Units waiting for the store writer");
      failures_ = &opts_.metrics->counter("gw_store_commit_failures_total", "Store commits that failed");
      checkpoints_ = &opts_.metrics->counter("gw_store_checkpoints_total", "WAL checkpoints run off the commit path");
      checkpoint_seconds_ = &opts_.metrics->histogram("gw_store_checkpoint_seconds", "WAL checkpoint duration (seconds)",
                                                      metrics::latency_buckets());
    }

    writer_thread_ = std::thread([this] {
      log::name_thread("gw-writer");
      writer_loop();
    });
    checkpoint_thread_ = std::thread([this] {
      log::name_thread("gw-checkpoint");
      checkpoint_loop();
    });
    for (auto& r : readers_) {
      Connection* conn = r.get();
      reader_threads_.emplace_back([this, conn] {
        log::name_thread("gw-reader");
        reader_loop(conn);
      });
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
      if (!unit.lazy) ++urgent_queued_;
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
    return with_reader([&](Connection& c) { return search_on(c, q, false); });
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

  Result<std::vector<InboundRow>> find_inbound(const InboundFilter& f) override {
    return with_reader([&](Connection& c) -> Result<std::vector<InboundRow>> {
      std::string cols = kInboundColumns;
      if (!f.with_raw) cols.replace(cols.find(" raw,"), 5, " x'' AS raw,");
      std::string sql = "SELECT " + cols + " FROM inbound WHERE 1";
      std::vector<std::string> texts;
      auto eq = [&](const char* col, const std::string& v) {
        if (v.empty()) return;
        sql += std::string(" AND ") + col + " = ?";
        texts.push_back(v);
      };
      eq("status", f.status);
      eq("adapter", f.adapter);
      eq("channel", f.channel);
      eq("kind", f.kind);
      if (!f.sender.empty()) {
        sql += " AND (sender_ods = ? OR sender_system = ?)";
        texts.push_back(f.sender);
        texts.push_back(f.sender);
      }
      if (!f.received_from.empty()) {
        sql += " AND received >= ?";
        texts.push_back(f.received_from);
      }
      if (!f.received_to.empty()) {
        sql += " AND received < ?";
        texts.push_back(f.received_to);
      }
      sql += " AND id < ? ORDER BY id DESC LIMIT ?";
      auto st = c.cached_text(sql);
      if (!st) return st.error();
      int i = 1;
      for (const auto& t : texts) st->bind(i++, t);
      st->bind(i, f.before_id > 0 ? f.before_id : INT64_MAX).bind(i + 1, static_cast<int64_t>(std::max(f.limit, 0)));
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

  Result<std::vector<std::pair<std::string, int64_t>>> inbound_counts() override {
    return with_reader([&](Connection& c) -> Result<std::vector<std::pair<std::string, int64_t>>> {
      // inbound_by_status(status, id) answers this from the index alone.
      auto st = c.cached("SELECT status, count(*) FROM inbound GROUP BY status");
      if (!st) return st.error();
      std::vector<std::pair<std::string, int64_t>> out;
      for (;;) {
        auto row = st->step();
        if (!row) return row.error();
        if (!*row) break;
        out.emplace_back(st->text(0), st->int64(1));
      }
      return out;
    });
  }

  Result<AuditPage> search_audit(const AuditQuery& q) override {
    return with_reader([&](Connection& c) { return sqlite::search_audit_on(c, q); });
  }
  Result<std::optional<int64_t>> audit_prune_point(const std::string& before) override {
    return with_reader([&](Connection& c) -> Result<std::optional<int64_t>> {
      auto st = c.cached(
          "SELECT max(seq) FROM audit_checkpoint WHERE ts < ?1 AND seq >= (SELECT coalesce(min(seq), 0) FROM audit)");
      if (!st) return st.error();
      st->bind(1, before);
      auto row = st->step();
      if (!row) return row.error();
      if (!*row || st->is_null(0)) return std::optional<int64_t>();
      return std::optional<int64_t>(st->int64(0));
    });
  }
  Result<AuditRecord> audit_record(int64_t seq) override {
    return with_reader([&](Connection& c) { return sqlite::audit_record_on(c, seq); });
  }
  Result<std::vector<AuditGroup>> summarise_audit(const AuditSummaryQuery& q) override {
    return with_reader([&](Connection& c) { return sqlite::summarise_audit_on(c, q); });
  }

  Result<std::vector<ChangeRow>> changes_after(int64_t after, int limit) override {
    return with_reader([&](Connection& c) { return changes_after_on(c, after, limit); });
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

  // One node per embedded store: every claim is this process's.
  Result<bool> claim(const std::string&) override { return true; }
  void release(const std::string&) override {}

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
      std::lock_guard lk(cmu_);
      cstop_ = true;
    }
    ccv_.notify_all();
    if (checkpoint_thread_.joinable()) checkpoint_thread_.join();
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
        // Only lazy units queued: wait a while for a unit someone waits on,
        // so they share its fsync instead of paying one of their own.
        if (!wclosing_ && urgent_queued_ == 0) {
          wcv_.wait_for(lk, opts_.lazy_delay, [this] { return urgent_queued_ > 0 || wclosing_; });
        }
        size_t n = std::min(opts_.max_batch, wq_.size());
        batch.reserve(n);
        for (size_t i = 0; i < n; ++i) {
          if (!wq_.front().unit.lazy) --urgent_queued_;
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
    const int64_t now_ms = clock::now_ms();
    const std::string now = clock::iso_ms(now_ms);
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
      const auto audit_mark = audit_->mark();
      auto res = apply_unit_body(c, *rows_, *audit_, batch[i].unit, now_ms, now);
      if (!res) {
        if (res.error().code == Errc::store_failure) {
          log::warn("store_unit_failed", {{"reason", res.error().message}});
        }
        audit_->restore(audit_mark);
        if (auto r = run_cached(c, "ROLLBACK TO unit"); !r) failure = r.error().message;
        // What the unit handed out (label bits above all) is gone with it.
        else if (auto r2 = rows_->reload(); !r2) failure = r2.error().message;
      }
      if (auto r = run_cached(c, "RELEASE unit"); !r && failure.empty()) failure = r.error().message;
      results.push_back(std::move(res));
    }
    if (failure.empty()) {
      if (auto r = run_cached(c, "COMMIT"); !r) failure = r.error().message;
    }
    if (!failure.empty()) {
      (void)c.exec("ROLLBACK");
      if (auto r = rows_->reload(); !r) log::error("store_reload_failed", {{"reason", r.error().message}});
      if (auto r = audit_->load(); !r) log::error("store_reload_failed", {{"reason", r.error().message}});
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

  // After every commit of the writer (its thread): the WAL's size in pages.
  static int on_wal_commit(void* self, sqlite3*, const char*, int pages) {
    auto* s = static_cast<SqliteStore*>(self);
    if (pages >= s->opts_.checkpoint_pages) {
      {
        std::lock_guard lk(s->cmu_);
        s->checkpoint_due_ = true;
      }
      s->ccv_.notify_one();
    }
    return SQLITE_OK;
  }

  void checkpoint_loop() {
    for (;;) {
      {
        std::unique_lock lk(cmu_);
        ccv_.wait(lk, [this] { return checkpoint_due_ || cstop_; });
        if (cstop_) return;
        checkpoint_due_ = false;
      }
      int log_pages = 0, copied = 0;
      auto t0 = std::chrono::steady_clock::now();
      int rc = sqlite3_wal_checkpoint_v2(checkpointer_->raw(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log_pages, &copied);
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
        log::warn("store_checkpoint_failed", {{"reason", checkpointer_->last_error()}});
      } else if (checkpoints_) {
        checkpoints_->inc();
        if (checkpoint_seconds_) checkpoint_seconds_->observe(secs);
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
  std::unique_ptr<sqlite::RowWriter> rows_;
  std::unique_ptr<sqlite::AuditTrailWriter> audit_;
  std::unique_ptr<Connection> checkpointer_;
  std::thread checkpoint_thread_;
  std::mutex cmu_;
  std::condition_variable ccv_;
  bool checkpoint_due_ = false, cstop_ = false;
  std::vector<std::unique_ptr<Connection>> readers_;
  std::unique_ptr<Connection> fallback_;
  std::mutex fallback_mu_;

  std::mutex wmu_;
  std::condition_variable wcv_;
  std::deque<Pending> wq_;
  size_t urgent_queued_ = 0;  // queued units that are not lazy
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
  metrics::Counter* checkpoints_ = nullptr;
  metrics::Histogram* checkpoint_seconds_ = nullptr;
};

}  // namespace

std::unique_ptr<Store> open_sqlite(const SqliteOptions& opts) {
  auto s = std::make_unique<SqliteStore>(opts);
  s->start();  // on throw, the destructor's close() finds no threads to join
  return s;
}

Result<MigrationCheck> check_migrations_sqlite(const std::string& path) {
  MigrationCheck check;
  check.known = sqlite::migrations().back().version;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    check.exists = false;
    for (const auto& m : sqlite::migrations()) check.pending.push_back(m.version);
    return check;
  }
  // As the writer opens it, so that the steps run as they would at start-up.
  auto c = Connection::open(path, Connection::Mode::read_write_create, 5000);
  if (!c) return c.error();
  if (auto r = sqlite::register_functions(**c); !r) return r.error();
  if (auto r = (*c)->exec("PRAGMA foreign_keys=ON"); !r) return r.error();
  auto run = sqlite::run_migrations(**c, clock::iso_now().c_str(), /*dry_run=*/true);
  if (!run) return run.error();
  check.at = run->from;
  check.pending = std::move(run->steps);
  return check;
}

}  // namespace gw::store
