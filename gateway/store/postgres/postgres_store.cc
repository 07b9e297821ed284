// The PostgreSQL Store, for several gateway nodes on one database. Each node
// has the embedded store's shape — one writer thread with group commit (a
// SAVEPOINT per unit), a reader pool with a connection per thread — plus a
// node connection for claims and for hearing other nodes' commits.
//
// Commit order across nodes. The change feed is ver by vid, and a sequence
// hands numbers out before commit: read by "vid > cursor", a feed could skip
// a row whose transaction commits after one with a higher number. So every
// writing transaction, on every node, first takes one transaction-level
// advisory lock (kWriterLock, per schema) and takes its vids under it; the
// lock is released only after the commit is visible to new snapshots
// (PostgreSQL releases a transaction's locks after ProcArrayEndTransaction),
// so the next holder's vids are higher than every vid already visible, and
// a reader that sees vid n sees every vid below it that will ever commit.
// tests/gateway/store/postgres_nodes_test.cc interleaves two nodes'
// transactions to show it, and shows a bare sequence skipping.
//
// The lock also gives prepare hooks the embedded store's guarantee across
// nodes: a unit's hook sees everything committed before it, and nothing
// another node writes can come between what it reads and what it writes.
// Writes of the cluster are serialised (each node's group commit still
// shares one fsync among its units); reads are not.
#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <type_traits>

#include "gateway/common/clock.h"
#include "gateway/common/log.h"
#include "gateway/common/metrics.h"
#include "gateway/store/postgres/audit_trail.h"
#include "gateway/store/postgres/pg.h"
#include "gateway/store/postgres/rows.h"
#include "gateway/store/postgres/schema.h"
#include "gateway/store/store.h"
#include "gateway/store/unit_steps.h"

namespace gw::store {

namespace {

using pg::Conn;
using pg::Params;
using pg::Rows;

struct ReaderSlot {
  const void* owner = nullptr;
  Conn* conn = nullptr;
};
thread_local ReaderSlot tls_reader;

constexpr const char* kInboundColumns =
    "id, received, adapter, channel, sender_ods, sender_system, control_id, status, reason, issues_json, raw, "
    "replay_of, kind, answer, written";

InboundRow inbound_at(const Rows& r, int i) {
  InboundRow m;
  m.id = r.int64(i, 0);
  m.received = r.text(i, 1);
  m.adapter = r.text(i, 2);
  m.channel = r.text(i, 3);
  m.sender_ods = r.text(i, 4);
  m.sender_system = r.text(i, 5);
  m.control_id = r.text(i, 6);
  m.status = r.text(i, 7);
  m.reason = r.text(i, 8);
  m.issues_json = r.text(i, 9);
  m.raw = r.bytes(i, 10);
  m.replay_of = r.int64(i, 11);
  m.kind = r.text(i, 12);
  m.answer = r.text(i, 13);
  m.written = r.text(i, 14);
  return m;
}

constexpr const char* kEventColumns =
    "subscription, number, change_seq, focus_type, focus_id, focus_version, interaction, patient_ref, content, "
    "created, status, attempts, first_attempt_ms, last_error";

EventRow event_at(const Rows& r, int i) {
  EventRow e;
  e.subscription = r.text(i, 0);
  e.number = r.int64(i, 1);
  e.change_seq = r.int64(i, 2);
  e.focus_type = r.text(i, 3);
  e.focus_id = r.text(i, 4);
  e.focus_version = r.int64(i, 5);
  e.interaction = r.text(i, 6);
  e.patient_ref = r.text(i, 7);
  e.content = r.text(i, 8);
  e.created = r.text(i, 9);
  e.status = r.text(i, 10);
  e.attempts = r.int64(i, 11);
  e.first_attempt_ms = r.int64(i, 12);
  e.last_error = r.text(i, 13);
  return e;
}

constexpr const char* kTimerColumns = "key, kind, subject, due, payload, status, scheduled, settled";

std::vector<TimerRow> timers_from(const Rows& r) {
  std::vector<TimerRow> out;
  for (int i = 0; i < r.size(); ++i) {
    TimerRow t{r.text(i, 0), r.text(i, 1), r.text(i, 2), r.text(i, 3), r.text(i, 4)};
    t.status = r.text(i, 5);
    t.scheduled = r.text(i, 6);
    t.settled = r.text(i, 7);
    out.push_back(std::move(t));
  }
  return out;
}

Result<void> ok_or(Result<Rows> r) {
  if (!r) return r.error();
  return {};
}

// The writer's view inside the open transaction (prepare hooks).
class WriterView final : public TxView {
 public:
  WriterView(Conn& c, pg::AuditTrailWriter& audit) : c_(c), audit_(audit) {}
  AuditHead audit_head() override { return audit_.head(); }
  Result<StoredResource> read(const std::string& type, const std::string& id) override {
    return pg::read_on(c_, type, id);
  }
  Result<std::vector<std::string>> match(const std::string& type, const std::vector<Match>& ms, int limit) override {
    return pg::match_on(c_, type, ms, limit);
  }
  Result<SearchPage> search(const SearchQuery& q) override { return pg::search_on(c_, q, true); }
  Result<std::optional<std::string>> find_by_unique_key(const std::string& key) override {
    return pg::unique_key_on(c_, key);
  }

 private:
  Conn& c_;
  pg::AuditTrailWriter& audit_;
};

// This store's rows for apply_unit (unit_steps.h).
struct UnitRows {
  Conn& c;
  pg::RowWriter& rows;
  pg::AuditTrailWriter& audit;
  WriterView tx{c, audit};
  TxView& view() { return tx; }

  Result<void> claim_idempotency_key(const std::string& key, const std::string& now) {
    // Another node's uncommitted claim of the same key makes this wait for
    // its outcome (the writer lock makes that rare); then one of them wins.
    auto r = c.exec("INSERT INTO idempotency(key, created) VALUES($1, $2) ON CONFLICT (key) DO NOTHING",
                    Params().add(key).add(now));
    if (!r) return r.error();
    if (r->affected() == 0) return make_error(Errc::conflict, "this message was already accepted", "idempotency-key");
    return {};
  }
  Result<OpOutcome> apply(const WriteOp& op, int64_t now_ms) { return rows.apply(op, now_ms); }
  Result<void> insert_audit(const AuditRow& a, const std::string& now) { return audit.insert(a, now); }
  Result<void> insert_outbox(const OutboxRow& o, const std::string& now) {
    return ok_or(c.exec("INSERT INTO outbox(topic, focus, payload, created) VALUES($1, $2, $3, $4)",
                        Params().add(o.topic).add(o.focus).add(o.payload).add(now)));
  }
  Result<void> insert_audit_checkpoint(const AuditCheckpoint& cp) { return audit.insert_checkpoint(cp); }
  Result<void> prune_audit(int64_t through) { return audit.prune_through(through); }
  Result<int64_t> insert_inbound(const InboundRow& m, const std::string& now, const std::string& written) {
    auto r = c.exec(
        "INSERT INTO inbound(received, adapter, channel, sender_ods, sender_system, control_id, status, reason, "
        "issues_json, raw, replay_of, kind, answer, written) "
        "VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id",
        Params().add(now).add(m.adapter).add(m.channel).add(m.sender_ods).add(m.sender_system).add(m.control_id)
            .add(m.status).add(m.reason).add(m.issues_json).add_bytes(m.raw).add(m.replay_of).add(m.kind)
            .add(m.answer).add(written));
    if (!r) return r.error();
    return r->int64(0, 0);
  }
  Result<void> set_inbound_status(int64_t id, const std::string& status) {
    auto r = c.exec("UPDATE inbound SET status = $2 WHERE id = $1", Params().add(id).add(status));
    if (!r) return r.error();
    if (r->affected() == 0) return make_error(Errc::not_found, "inbound message not found");
    return {};
  }
  Result<int64_t> insert_event(const NewEvent& e, const std::string& now) {
    auto n = c.exec(
        "INSERT INTO sub_counters(subscription, events) VALUES($1, 1) "
        "ON CONFLICT (subscription) DO UPDATE SET events = sub_counters.events + 1 RETURNING events",
        Params().add(e.subscription));
    if (!n) return n.error();
    int64_t number = n->int64(0, 0);
    auto r = c.exec(
        "INSERT INTO sub_events(subscription, number, change_seq, focus_type, focus_id, focus_version, interaction, "
        "patient_ref, content, created, status) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending')",
        Params().add(e.subscription).add(number).add(e.change_seq).add(e.focus_type).add(e.focus_id)
            .add(e.focus_version).add(e.interaction).add(e.patient_ref).add(e.content).add(now));
    if (!r) return r.error();
    return number;
  }
  Result<void> update_events(const EventUpdate& u) {
    return ok_or(c.exec(
        "UPDATE sub_events SET status = CASE WHEN $4 = '' THEN status ELSE $4 END, attempts = attempts + $5, "
        "first_attempt_ms = CASE WHEN $6::bigint < 0 THEN first_attempt_ms WHEN $6::bigint = 0 THEN 0 "
        "WHEN first_attempt_ms = 0 THEN $6::bigint ELSE first_attempt_ms END, "
        "last_error = COALESCE($7, last_error) "
        "WHERE subscription = $1 AND number >= $2 AND number <= $3 AND ($8 = '' OR status = $8)",
        Params().add(u.subscription).add(u.from).add(u.to).add(u.status).add(u.add_attempts)
            .add(u.first_attempt_ms).add(u.last_error).add(u.only_status)));
  }
  Result<void> set_cursor(const std::string& name, int64_t seq, std::optional<int64_t> from) {
    if (from) {
      auto cur = c.exec("SELECT seq FROM cursors WHERE name = $1", Params().add(name));
      if (!cur) return cur.error();
      if ((cur->empty() ? int64_t{0} : cur->int64(0, 0)) != *from) {
        return make_error(Errc::conflict, "the consumer's position moved on elsewhere", "cursor");
      }
    }
    return ok_or(c.exec("INSERT INTO cursors(name, seq) VALUES($1, $2) ON CONFLICT (name) DO UPDATE SET seq = $2",
                        Params().add(name).add(seq)));
  }
  // As the embedded store (store/sqlite/timers.cc): cancel the subject's
  // pending timers, (re)instate the listed ones (a key that fired stays
  // fired), then mark fired keys, failing the unit when one is not pending.
  Result<void> apply_timers(const UnitOfWork& u, const std::string& now) {
    for (const auto& set : u.timer_sets) {
      if (auto r = ok_or(c.exec("UPDATE timers SET status = 'cancelled', settled = $3 "
                                "WHERE kind = $1 AND subject = $2 AND status = 'pending'",
                                Params().add(set.kind).add(set.subject).add(now)));
          !r)
        return r.error();
      for (const auto& t : set.timers) {
        if (auto r = ok_or(c.exec(
                "INSERT INTO timers(key, kind, subject, due, payload, status, scheduled) "
                "VALUES($1, $2, $3, $4, $5, 'pending', $6) ON CONFLICT (key) DO UPDATE SET due = excluded.due, "
                "payload = excluded.payload, subject = excluded.subject, status = 'pending', settled = '' "
                "WHERE timers.status <> 'fired'",
                Params().add(t.key).add(set.kind).add(set.subject).add(t.due).add(t.payload).add(now)));
            !r)
          return r.error();
      }
    }
    for (const auto& key : u.timers_fired) {
      auto r = c.exec("UPDATE timers SET status = 'fired', settled = $2 WHERE key = $1 AND status = 'pending'",
                      Params().add(key).add(now));
      if (!r) return r.error();
      if (r->affected() != 1) return make_error(Errc::conflict, "timer is not pending (fired or cancelled already)", key);
    }
    return {};
  }
};

struct Pending {
  UnitOfWork unit;
  CommitCallback cb;
};

std::vector<double> batch_bounds() {
  std::vector<double> b;
  for (double v = 1; v <= 512; v *= 2) b.push_back(v);
  return b;
}

// The LISTEN channel every node's writer notifies after a batch that fed the
// change feed or wrote events; the payload is the schema, so gateways on
// other schemas of the same database ignore it.
constexpr const char* kChannel = "gw_feed";

class PostgresStore final : public Store {
 public:
  explicit PostgresStore(const PostgresOptions& o) : opts_(o) {
    if (opts_.max_batch == 0) opts_.max_batch = 1;
    if (opts_.reader_threads < 1) opts_.reader_threads = 1;
  }
  ~PostgresStore() override { close(); }

  void start() {
    auto fail = [this](const std::string& what) {
      throw std::runtime_error("postgresql store (" + pg::redact_conninfo(opts_.conninfo) + "): " + what);
    };
    if (pg::conninfo_has_password(opts_.conninfo)) {
      log::warn("store_conninfo_has_password",
                {{"advice", "put the password in a passfile (passfile=, PGPASSFILE) or PGPASSWORD"}});
    }
    auto open = [&]() {
      auto c = Conn::open(opts_.conninfo);
      if (!c) fail(c.error().message);
      return std::move(*c);
    };
    writer_ = open();
    // Acknowledged only once durable, whatever the server's or role's default.
    if (auto r = writer_->run("SET synchronous_commit = on"); !r) fail(r.error().message);
    auto schema = writer_->exec("SELECT current_schema()");
    if (!schema || schema->empty() || schema->is_null(0, 0)) fail("no current schema (search_path)");
    schema_ = schema->text(0, 0);
    auto applied = pg::migrate(*writer_, clock::iso_now());
    if (!applied) fail(applied.error().message);
    migrations_applied_ = *applied;
    rows_ = std::make_unique<pg::RowWriter>(*writer_);
    audit_ = std::make_unique<pg::AuditTrailWriter>(*writer_);
    for (int i = 0; i < opts_.reader_threads; ++i) readers_.push_back(open());
    fallback_ = open();
    node_ = open();
    if (auto r = node_->run(std::string("LISTEN ") + kChannel); !r) fail(r.error().message);
    writer_pid_ = writer_->backend_pid();

    if (opts_.metrics) {
      commit_seconds_ = &opts_.metrics->histogram("gw_store_commit_seconds", "Store group-commit latency (seconds)",
                                                  metrics::latency_buckets());
      batch_units_ = &opts_.metrics->histogram("gw_store_commit_batch_units", "Units of work per store commit",
                                               batch_bounds());
      depth_gauge_ = &opts_.metrics->gauge("gw_store_writer_queue_depth", "Units waiting for the store writer");
      failures_ = &opts_.metrics->counter("gw_store_commit_failures_total", "Store commits that failed");
      lock_wait_ = &opts_.metrics->histogram("gw_store_writer_lock_wait_seconds",
                                             "Time a group commit waited for the cluster's writer lock (seconds)",
                                             metrics::latency_buckets());
      claims_lost_ = &opts_.metrics->counter("gw_store_claims_lost_total",
                                             "Times this node's claims were lost with its node connection");
    }
    writer_thread_ = std::thread([this] {
      log::name_thread("gw-writer");
      writer_loop();
    });
    node_thread_ = std::thread([this] {
      log::name_thread("gw-pg-node");
      node_loop();
    });
    for (auto& r : readers_) {
      Conn* conn = r.get();
      reader_threads_.emplace_back([this, conn] {
        log::name_thread("gw-reader");
        reader_loop(conn);
      });
    }
    log::info("store_opened", {{"engine", "postgresql"},
                               {"conninfo", pg::redact_conninfo(opts_.conninfo)},
                               {"schema", schema_},
                               {"migrations_applied", migrations_applied_},
                               {"readers", opts_.reader_threads}});
  }

  Result<void> commit(UnitOfWork unit, CommitCallback cb) override {
    {
      std::lock_guard lk(wmu_);
      if (wclosing_) return make_error(Errc::unavailable, "store is closing");
      if (wq_.size() >= opts_.writer_queue_capacity) return make_error(Errc::unavailable, "store writer queue is full");
      if (!unit.lazy) ++urgent_queued_;
      wq_.push_back(Pending{std::move(unit), std::move(cb)});
      set_depth(wq_.size());
    }
    wcv_.notify_one();
    return {};
  }

  Result<StoredResource> read(const std::string& type, const std::string& id) override {
    return with_reader([&](Conn& c) { return pg::read_on(c, type, id); });
  }
  Result<StoredResource> vread(const std::string& type, const std::string& id, int64_t version) override {
    return with_reader([&](Conn& c) { return pg::vread_on(c, type, id, version); });
  }
  Result<std::vector<StoredResource>> history(const std::string& type, const std::string& id) override {
    return with_reader([&](Conn& c) { return pg::history_on(c, type, id); });
  }
  Result<SearchPage> search(const SearchQuery& q) override {
    return with_reader([&](Conn& c) { return pg::search_on(c, q, false); });
  }
  Result<std::optional<std::string>> find_by_unique_key(const std::string& key) override {
    return with_reader([&](Conn& c) { return pg::unique_key_on(c, key); });
  }

  Result<std::vector<InboundRow>> list_inbound(const std::string& status, int limit, int64_t offset) override {
    return with_reader([&](Conn& c) -> Result<std::vector<InboundRow>> {
      static const std::string sql = std::string("SELECT ") + kInboundColumns +
                                     " FROM inbound WHERE ($1 = '' OR status = $1) ORDER BY id DESC LIMIT $2 OFFSET $3";
      auto r = c.exec(sql, Params().add(status).add(int64_t{limit}).add(offset));
      if (!r) return r.error();
      std::vector<InboundRow> out;
      for (int i = 0; i < r->size(); ++i) out.push_back(inbound_at(*r, i));
      return out;
    });
  }

  // The filter in SQL (the default pages through list_inbound with the raw
  // bytes): "the newest message of this adapter" is one index walk.
  Result<std::vector<InboundRow>> find_inbound(const InboundFilter& f) override {
    return with_reader([&](Conn& c) -> Result<std::vector<InboundRow>> {
      std::string cols = kInboundColumns;
      if (!f.with_raw) cols.replace(cols.find(" raw,"), 5, " ''::bytea AS raw,");
      std::string sql = "SELECT " + cols + " FROM inbound WHERE TRUE";
      Params params;
      int n = 0;
      auto eq = [&](const char* col, const std::string& v) {
        if (v.empty()) return;
        sql += std::string(" AND ") + col + " = $" + std::to_string(++n);
        params.add(v);
      };
      eq("status", f.status);
      eq("adapter", f.adapter);
      eq("channel", f.channel);
      eq("kind", f.kind);
      if (!f.sender.empty()) {
        const std::string k = std::to_string(++n);
        sql += " AND (sender_ods = $" + k + " OR sender_system = $" + k + ")";
        params.add(f.sender);
      }
      if (!f.received_from.empty()) {
        sql += " AND received >= $" + std::to_string(++n);
        params.add(f.received_from);
      }
      if (!f.received_to.empty()) {
        sql += " AND received < $" + std::to_string(++n);
        params.add(f.received_to);
      }
      if (f.before_id > 0) {
        sql += " AND id < $" + std::to_string(++n);
        params.add(f.before_id);
      }
      sql += " ORDER BY id DESC LIMIT $" + std::to_string(++n);
      params.add(int64_t{std::max(f.limit, 0)});
      auto r = c.exec(sql, params);
      if (!r) return r.error();
      std::vector<InboundRow> out;
      for (int i = 0; i < r->size(); ++i) out.push_back(inbound_at(*r, i));
      return out;
    });
  }

  Result<InboundRow> get_inbound(int64_t id) override {
    return with_reader([&](Conn& c) -> Result<InboundRow> {
      static const std::string sql = std::string("SELECT ") + kInboundColumns + " FROM inbound WHERE id = $1";
      auto r = c.exec(sql, Params().add(id));
      if (!r) return r.error();
      if (r->empty()) return make_error(Errc::not_found, "inbound message not found");
      return inbound_at(*r, 0);
    });
  }

  Result<std::vector<ChangeRow>> changes_after(int64_t after, int limit) override {
    return with_reader([&](Conn& c) { return pg::changes_after_on(c, after, limit); });
  }

  Result<std::vector<std::pair<std::string, int64_t>>> inbound_counts() override {
    return with_reader([&](Conn& c) -> Result<std::vector<std::pair<std::string, int64_t>>> {
      // inbound_by_status(status, id) answers this from the index.
      auto r = c.exec("SELECT status, count(*) FROM inbound GROUP BY status");
      if (!r) return r.error();
      std::vector<std::pair<std::string, int64_t>> out;
      for (int i = 0; i < r->size(); ++i) out.emplace_back(r->text(i, 0), r->int64(i, 1));
      return out;
    });
  }
  Result<AuditPage> search_audit(const AuditQuery& q) override {
    return with_reader([&](Conn& c) { return pg::search_audit_on(c, q); });
  }
  Result<std::optional<int64_t>> audit_prune_point(const std::string& before) override {
    return with_reader([&](Conn& c) -> Result<std::optional<int64_t>> {
      auto r = c.exec(
          "SELECT max(seq) FROM audit_checkpoint WHERE ts < $1 AND seq >= (SELECT coalesce(min(seq), 0) FROM audit)",
          Params().add(before));
      if (!r) return r.error();
      if (r->empty() || r->is_null(0, 0)) return std::optional<int64_t>();
      return std::optional<int64_t>(r->int64(0, 0));
    });
  }
  Result<AuditRecord> audit_record(int64_t seq) override {
    return with_reader([&](Conn& c) { return pg::audit_record_on(c, seq); });
  }
  Result<std::vector<AuditGroup>> summarise_audit(const AuditSummaryQuery& q) override {
    return with_reader([&](Conn& c) { return pg::summarise_audit_on(c, q); });
  }

  Result<std::vector<TimerRow>> due_timers(const std::string& now, int limit) override {
    return with_reader([&](Conn& c) -> Result<std::vector<TimerRow>> {
      static const std::string sql = std::string("SELECT ") + kTimerColumns +
                                     " FROM timers WHERE status = 'pending' AND due <= $1 ORDER BY due, key LIMIT $2";
      auto r = c.exec(sql, Params().add(now).add(int64_t{limit}));
      if (!r) return r.error();
      return timers_from(*r);
    });
  }
  Result<std::vector<TimerRow>> timers_of(const std::string& kind, const std::string& subject) override {
    return with_reader([&](Conn& c) -> Result<std::vector<TimerRow>> {
      static const std::string sql =
          std::string("SELECT ") + kTimerColumns + " FROM timers WHERE kind = $1 AND subject = $2 ORDER BY due, key";
      auto r = c.exec(sql, Params().add(kind).add(subject));
      if (!r) return r.error();
      return timers_from(*r);
    });
  }

  Result<int64_t> cursor(const std::string& name) override {
    return with_reader([&](Conn& c) -> Result<int64_t> {
      auto r = c.exec("SELECT seq FROM cursors WHERE name = $1", Params().add(name));
      if (!r) return r.error();
      return r->empty() ? int64_t{0} : r->int64(0, 0);
    });
  }

  Result<std::vector<EventRow>> events(const std::string& subscription, int64_t from, int64_t until,
                                       const std::string& status, int limit) override {
    return with_reader([&](Conn& c) -> Result<std::vector<EventRow>> {
      static const std::string sql = std::string("SELECT ") + kEventColumns +
                                     " FROM sub_events WHERE subscription = $1 AND number >= $2 AND ($3 = 0 OR "
                                     "number <= $3) AND ($4 = '' OR status = $4) ORDER BY number LIMIT $5";
      auto r = c.exec(sql, Params().add(subscription).add(from).add(until).add(status).add(int64_t{limit}));
      if (!r) return r.error();
      std::vector<EventRow> out;
      for (int i = 0; i < r->size(); ++i) out.push_back(event_at(*r, i));
      return out;
    });
  }

  Result<EventCounts> event_counts(const std::string& subscription) override {
    return with_reader([&](Conn& c) -> Result<EventCounts> {
      // One statement, one snapshot: the counter and both statuses agree.
      auto r = c.exec(
          "SELECT COALESCE((SELECT events FROM sub_counters WHERE subscription = $1), 0), "
          "(SELECT count(*) FROM sub_events WHERE subscription = $1 AND status = 'pending'), "
          "(SELECT min(created) FROM sub_events WHERE subscription = $1 AND status = 'pending'), "
          "(SELECT count(*) FROM sub_events WHERE subscription = $1 AND status = 'dead')",
          Params().add(subscription));
      if (!r) return r.error();
      EventCounts out;
      out.events = r->int64(0, 0);
      out.pending = r->int64(0, 1);
      if (!r->is_null(0, 2)) out.oldest_pending = r->text(0, 2);
      out.dead = r->int64(0, 3);
      out.delivered = out.events - out.pending - out.dead;
      return out;
    });
  }

  Result<std::vector<std::string>> subscriptions_with_events(const std::string& status) override {
    return with_reader([&](Conn& c) -> Result<std::vector<std::string>> {
      auto r = c.exec("SELECT DISTINCT subscription FROM sub_events WHERE status = $1", Params().add(status));
      if (!r) return r.error();
      std::vector<std::string> out;
      for (int i = 0; i < r->size(); ++i) out.push_back(r->text(i, 0));
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

  // A session advisory lock on the node connection: it lasts as long as the
  // connection, so a node that dies (kill -9 closes its sockets) frees its
  // claims at once, and the node loop's heartbeat notices a connection that
  // broke under a live process and drops every claim with it.
  Result<bool> claim(const std::string& name) override {
    std::lock_guard lk(node_mu_);
    if (claims_.count(name)) return true;
    if (node_closed_) return make_error(Errc::unavailable, "store is closing");
    if (!node_->ok()) return make_error(Errc::store_failure, "the node connection is down");
    auto r = node_->exec("SELECT pg_try_advisory_lock($1, hashtext(current_schema() || ':' || $2))",
                         Params().add(int64_t{pg::kClaimLock}).add(name));
    if (!r) return r.error();
    bool got = r->boolean(0, 0);
    if (got) claims_.insert(name);
    return got;
  }

  void release(const std::string& name) override {
    std::lock_guard lk(node_mu_);
    if (!claims_.erase(name) || !node_ || !node_->ok()) return;
    (void)node_->exec("SELECT pg_advisory_unlock($1, hashtext(current_schema() || ':' || $2))",
                      Params().add(int64_t{pg::kClaimLock}).add(name));
  }

  void close() override {
    std::lock_guard cl(close_mu_);
    if (closed_) return;
    closed_ = true;
    {
      std::lock_guard lk(wmu_);
      wclosing_ = true;
    }
    wcv_.notify_all();
    if (writer_thread_.joinable()) writer_thread_.join();
    {
      std::lock_guard lk(node_mu_);
      node_closed_ = true;
    }
    if (node_thread_.joinable()) node_thread_.join();
    {
      // Its claims go with the connection: another node may take the work now.
      std::lock_guard lk(node_mu_);
      claims_.clear();
      node_.reset();
    }
    {
      std::lock_guard lk(rmu_);
      rclosing_ = true;
    }
    rcv_.notify_all();
    for (auto& t : reader_threads_)
      if (t.joinable()) t.join();
    if (writer_) log::info("store_closed", {{"engine", "postgresql"}, {"commits", commits_.load()}});
  }

  Stats stats() const override {
    Stats s;
    s.commits = commits_.load();
    s.units = units_.load();
    s.queue_depth = depth_.load();
    s.queue_capacity = opts_.writer_queue_capacity;
    s.last_batch_size = static_cast<double>(last_batch_.load());
    return s;
  }

 private:
  template <class F>
  std::invoke_result_t<F, Conn&> with_reader(F&& f) {
    if (tls_reader.owner == this) return with_live(*tls_reader.conn, f);
    std::lock_guard lk(fallback_mu_);
    return with_live(*fallback_, f);
  }

  // A reader whose connection broke (a server restart) reconnects once
  // before it answers; the read itself is never retried behind the caller.
  template <class F>
  std::invoke_result_t<F, Conn&> with_live(Conn& c, F& f) {
    if (!c.ok() && !c.reset()) return make_error(Errc::store_failure, "the store's database cannot be reached");
    return f(c);
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
        if (wq_.empty()) return;
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

  Result<void> begin_locked() {
    if (!writer_->ok() && !writer_->reset()) return make_error(Errc::store_failure, "the database cannot be reached");
    if (writer_->backend_pid() != writer_pid_) {
      writer_pid_ = writer_->backend_pid();
      if (auto r = writer_->run("SET synchronous_commit = on"); !r) return r.error();
    }
    if (auto r = writer_->run("BEGIN"); !r) return r.error();
    auto t0 = std::chrono::steady_clock::now();
    auto lock = writer_->exec("SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))",
                              Params().add(int64_t{pg::kWriterLock}));
    if (!lock) return lock.error();
    if (lock_wait_) lock_wait_->observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    // Another node may have written newer versions, and audit rows, since
    // this one last did.
    if (auto r = rows_->load_clock(); !r) return r.error();
    return audit_->load();
  }

  void commit_batch(std::vector<Pending>& batch) {
    auto t0 = std::chrono::steady_clock::now();
    std::vector<Result<CommitOutcome>> results;
    results.reserve(batch.size());
    Conn& c = *writer_;
    std::string failure;
    if (auto r = begin_locked(); !r) failure = r.error().message;
    // The time is read under the lock: a version never predates one another
    // node committed before this transaction could start writing.
    const int64_t now_ms = clock::now_ms();
    const std::string now = clock::iso_ms(now_ms);
    bool fed = false;
    for (size_t i = 0; failure.empty() && i < batch.size(); ++i) {
      if (auto r = c.run("SAVEPOINT unit"); !r) {
        failure = r.error().message;
        break;
      }
      UnitRows unit_rows{c, *rows_, *audit_};
      const auto audit_mark = audit_->mark();
      auto res = apply_unit(unit_rows, batch[i].unit, now_ms, now);
      if (!res) {
        audit_->restore(audit_mark);
        if (res.error().code == Errc::store_failure) log::warn("store_unit_failed", {{"reason", res.error().message}});
        if (auto r = c.run("ROLLBACK TO SAVEPOINT unit"); !r) failure = r.error().message;
      } else if (!batch[i].unit.ops.empty() || !batch[i].unit.events.empty()) {
        fed = true;
      }
      if (failure.empty())
        if (auto r = c.run("RELEASE SAVEPOINT unit"); !r) failure = r.error().message;
      results.push_back(std::move(res));
    }
    if (failure.empty() && fed) {
      if (auto r = c.exec("SELECT pg_notify($1, current_schema())", Params().add(std::string_view(kChannel))); !r)
        failure = r.error().message;
    }
    if (failure.empty() && opts_.before_commit) opts_.before_commit();
    if (failure.empty())
      if (auto r = c.run("COMMIT"); !r) failure = r.error().message;
    if (!failure.empty()) {
      // A COMMIT that failed because the connection broke may or may not
      // have been applied; every unit is answered as failed, never as done.
      (void)c.run("ROLLBACK");
      log::error("store_commit_failed", {{"units", static_cast<uint64_t>(batch.size())}, {"reason", failure}});
      if (failures_) failures_->inc();
      results.clear();
      for (size_t i = 0; i < batch.size(); ++i)
        results.push_back(make_error(Errc::store_failure, "the store could not commit the change"));
      fed = false;
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
    if (fed) call_listener();
    for (size_t i = 0; i < batch.size(); ++i) {
      if (!batch[i].cb) continue;
      try {
        batch[i].cb(std::move(results[i]));
      } catch (const std::exception& e) {
        log::error("store_callback_threw", {{"what", e.what()}});
      } catch (...) {
        log::error("store_callback_threw", {{"what", "unknown"}});
      }
    }
  }

  void call_listener() {
    std::shared_ptr<std::function<void()>> l;
    {
      std::lock_guard lk(listener_mu_);
      l = listener_;
    }
    if (l && *l) (*l)();
  }

  // Hears other nodes' commits (LISTEN) and keeps the node connection, and
  // with it the claims, honest: a connection that broke has lost them.
  void node_loop() {
    auto last_beat = std::chrono::steady_clock::now();
    for (;;) {
      int fd = -1;
      {
        std::lock_guard lk(node_mu_);
        if (node_closed_) return;
        fd = node_->socket();
      }
      if (fd >= 0) {
        pollfd p{fd, POLLIN, 0};
        (void)::poll(&p, 1, 250);
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
      }
      bool heard = false;
      {
        std::lock_guard lk(node_mu_);
        if (node_closed_) return;
        auto now = std::chrono::steady_clock::now();
        bool beat = now - last_beat >= std::chrono::seconds(1);
        if (beat) last_beat = now;
        if (node_->ok()) {
          PQconsumeInput(node_->raw());
          while (PGnotify* n = PQnotifies(node_->raw())) {
            if (n->be_pid != writer_pid_ && schema_ == n->extra) heard = true;
            PQfreemem(n);
          }
          if (beat) (void)node_->run("SELECT 1");
        }
        if (!node_->ok()) lost_node_connection();
      }
      if (heard) call_listener();
    }
  }

  // Under node_mu_.
  void lost_node_connection() {
    if (!claims_.empty()) {
      log::error("store_claims_lost", {{"claims", static_cast<uint64_t>(claims_.size())}});
      if (claims_lost_) claims_lost_->inc();
    }
    claims_.clear();
    if (node_->reset()) (void)node_->run(std::string("LISTEN ") + kChannel);
  }

  void reader_loop(Conn* conn) {
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

  PostgresOptions opts_;
  int migrations_applied_ = 0;
  std::string schema_;
  int writer_pid_ = 0;

  std::unique_ptr<Conn> writer_;
  std::unique_ptr<pg::RowWriter> rows_;
  std::unique_ptr<pg::AuditTrailWriter> audit_;
  std::vector<std::unique_ptr<Conn>> readers_;
  std::unique_ptr<Conn> fallback_;
  std::mutex fallback_mu_;

  std::unique_ptr<Conn> node_;
  std::mutex node_mu_;
  std::set<std::string> claims_;
  bool node_closed_ = false;
  std::thread node_thread_;

  std::mutex wmu_;
  std::condition_variable wcv_;
  std::deque<Pending> wq_;
  size_t urgent_queued_ = 0;
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
  metrics::Histogram* lock_wait_ = nullptr;
  metrics::Gauge* depth_gauge_ = nullptr;
  metrics::Counter* failures_ = nullptr;
  metrics::Counter* claims_lost_ = nullptr;
};

}  // namespace

std::unique_ptr<Store> open_postgres(const PostgresOptions& opts) {
  auto s = std::make_unique<PostgresStore>(opts);
  s->start();
  return s;
}

Result<MigrationCheck> check_migrations_postgres(const std::string& conninfo) {
  auto c = Conn::open(conninfo);
  if (!c) return c.error();
  MigrationCheck check;
  auto run = pg::run_migrations(**c, clock::iso_now(), /*dry_run=*/true);
  if (!run) return run.error();
  check.at = run->from;
  check.known = run->known;
  check.pending = std::move(run->steps);
  check.exists = run->from > 0;
  return check;
}

}  // namespace gw::store
