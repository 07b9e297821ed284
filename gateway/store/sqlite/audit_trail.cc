#include "gateway/store/sqlite/audit_trail.h"

#include <sqlite3.h>

#include <algorithm>
#include <unordered_map>

namespace gw::store::sqlite {

namespace {

constexpr const char* kColumns =
    "seq, ts, actor_ods, actor_role, actor_system, action, entity, outcome, http_status, request_id, detail, "
    "patient_ref, person, channel, purpose, src_ods, src_system, topic, latency_ms, items, chain";

AuditRecord record_from(const Statement& st) {
  AuditRecord r;
  r.seq = st.int64(0);
  r.ts = st.text(1);
  r.actor_ods = st.text(2);
  r.actor_role = st.text(3);
  r.actor_system = st.text(4);
  r.action = st.text(5);
  r.entity = st.text(6);
  r.outcome = st.text(7);
  r.http_status = static_cast<int>(st.int64(8));
  r.request_id = st.text(9);
  r.detail = st.text(10);
  r.patient_ref = st.text(11);
  r.person = st.text(12);
  r.channel = st.text(13);
  r.purpose = st.text(14);
  r.src_ods = st.text(15);
  r.src_system = st.text(16);
  r.topic = st.text(17);
  r.latency_ms = st.int64(18);
  r.items = st.int64(19);
  r.chain = st.is_null(20) ? std::string() : st.blob(20);
  return r;
}

// Stops the connection's statements once the deadline has passed (they fail
// with SQLITE_INTERRUPT, Errc::unavailable); cleared when it goes out of scope.
class Budget {
 public:
  Budget(Connection& c, std::chrono::milliseconds limit)
      : db_(c.raw()), deadline_(std::chrono::steady_clock::now() + limit) {
    sqlite3_progress_handler(db_, 20000, &Budget::tick, this);
  }
  ~Budget() { sqlite3_progress_handler(db_, 0, nullptr, nullptr); }
  Budget(const Budget&) = delete;
  Budget& operator=(const Budget&) = delete;
  bool expired() const { return std::chrono::steady_clock::now() >= deadline_; }

 private:
  static int tick(void* self) { return static_cast<Budget*>(self)->expired() ? 1 : 0; }
  sqlite3* db_;
  std::chrono::steady_clock::time_point deadline_;
};

Result<int64_t> scalar(Connection& c, const char* sql) {
  auto st = c.cached(sql);
  if (!st) return st.error();
  auto row = st->step();
  if (!row) return row.error();
  return *row && !st->is_null(0) ? st->int64(0) : int64_t{0};
}

// The smallest seq whose ts is >= ts (strict: > ts), or max seq + 1. The
// writer never stamps a row earlier than the one before, so a time range is
// a seq range, found in O(log n) probes of the primary key: no index on ts
// (which would cost every commit a page).
Result<int64_t> seq_from_ts(Connection& c, const std::string& ts, bool strict) {
  auto lo = scalar(c, "SELECT COALESCE(MIN(seq), 1) FROM audit");
  if (!lo) return lo.error();
  auto hi = scalar(c, "SELECT COALESCE(MAX(seq), 0) + 1 FROM audit");
  if (!hi) return hi.error();
  int64_t a = *lo, b = *hi;
  while (a < b) {
    int64_t mid = a + (b - a) / 2;
    // A cached statement resets when it goes out of scope: one per probe.
    auto st = c.cached("SELECT seq, ts FROM audit WHERE seq >= ?1 ORDER BY seq LIMIT 1");
    if (!st) return st.error();
    st->bind(1, mid);
    auto row = st->step();
    if (!row) return row.error();
    if (!*row) {
      b = mid;
      continue;
    }
    std::string t = st->text(1);
    bool past = strict ? t > ts : t >= ts;
    if (past) b = mid;
    else a = st->int64(0) + 1;
  }
  return a;
}

struct SeqRange {
  int64_t lo = 1, hi = INT64_MAX;  // inclusive
};

Result<SeqRange> seq_range(Connection& c, const AuditQuery& q) {
  SeqRange r;
  if (q.ts_ge) {
    auto s = seq_from_ts(c, *q.ts_ge, false);
    if (!s) return s.error();
    r.lo = std::max(r.lo, *s);
  }
  if (q.ts_gt) {
    auto s = seq_from_ts(c, *q.ts_gt, true);
    if (!s) return s.error();
    r.lo = std::max(r.lo, *s);
  }
  if (q.ts_le) {
    auto s = seq_from_ts(c, *q.ts_le, true);
    if (!s) return s.error();
    r.hi = std::min(r.hi, *s - 1);
  }
  if (q.ts_lt) {
    auto s = seq_from_ts(c, *q.ts_lt, false);
    if (!s) return s.error();
    r.hi = std::min(r.hi, *s - 1);
  }
  return r;
}

// SQL with its text parameters in bind order; values are never spliced.
struct Where {
  std::string sql;
  std::vector<std::string> texts;
  void any_of(const char* column, const std::vector<std::string>& values) {
    if (values.empty()) return;
    sql += std::string(" AND ") + column + " IN (";
    for (size_t i = 0; i < values.size(); ++i) {
      sql += i ? ",?" : "?";
      texts.push_back(values[i]);
    }
    sql += ")";
  }
};

}  // namespace

// ---- writer ----------------------------------------------------------------------

Result<void> AuditTrailWriter::load() {
  auto st = c_.cached("SELECT seq, ts, chain FROM audit ORDER BY seq DESC LIMIT 1");
  if (!st) return st.error();
  auto row = st->step();
  if (!row) return row.error();
  next_seq_ = 1;
  head_ = audit_chain::genesis();
  last_ts_.clear();
  int64_t last = 0;
  if (*row) {
    last = st->int64(0);
    last_ts_ = st->text(1);
    if (!st->is_null(2)) head_ = st->blob(2);
  }
  // Rows older than the chain: their head is the migration checkpoint's.
  auto cp = c_.cached("SELECT seq, chain FROM audit_checkpoint ORDER BY seq DESC LIMIT 1");
  if (!cp) return cp.error();
  auto crow = cp->step();
  if (!crow) return crow.error();
  if (*crow) {
    int64_t cseq = cp->int64(0);
    if (cseq == last && (!*row || st->is_null(2))) head_ = cp->blob(1);
    // A trail shorter than its own last checkpoint lost records from its end:
    // numbering goes on after the checkpoint, so verification names the gap.
    last = std::max(last, cseq);
  }
  next_seq_ = last + 1;
  return {};
}

Result<void> AuditTrailWriter::insert(const AuditRow& a, const std::string& now) {
  AuditRecord r;
  static_cast<AuditRow&>(r) = a;
  r.seq = next_seq_;
  r.ts = std::max(now, last_ts_);
  std::string chain = audit_chain::next(head_, r);
  auto st = c_.cached(
      "INSERT INTO audit(seq, ts, actor_ods, actor_role, actor_system, action, entity, outcome, http_status, "
      "request_id, detail, patient_ref, person, channel, purpose, src_ods, src_system, topic, latency_ms, items, "
      "chain) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)");
  if (!st) return st.error();
  st->bind(1, r.seq).bind(2, r.ts).bind(3, r.actor_ods).bind(4, r.actor_role).bind(5, r.actor_system);
  st->bind(6, r.action).bind(7, r.entity).bind(8, r.outcome).bind(9, static_cast<int64_t>(r.http_status));
  st->bind(10, r.request_id).bind(11, r.detail).bind(12, r.patient_ref).bind(13, r.person).bind(14, r.channel);
  st->bind(15, r.purpose).bind(16, r.src_ods).bind(17, r.src_system).bind(18, r.topic).bind(19, r.latency_ms);
  st->bind(20, r.items).bind_blob(21, chain);
  if (auto res = st->run(); !res) return res.error();
  next_seq_ = r.seq + 1;
  head_ = std::move(chain);
  last_ts_ = std::move(r.ts);
  return {};
}

Result<void> AuditTrailWriter::insert_checkpoint(const AuditCheckpoint& cp) {
  if (cp.seq <= 0 || cp.seq >= next_seq_ || cp.chain.size() != audit_chain::kHashBytes) {
    return make_error(Errc::invalid_input, "an audit checkpoint must name a record already written");
  }
  auto st = c_.cached(
      "INSERT OR IGNORE INTO audit_checkpoint(seq, ts, chain, signature, signer) VALUES(?1, ?2, ?3, ?4, ?5)");
  if (!st) return st.error();
  st->bind(1, cp.seq).bind(2, cp.ts).bind_blob(3, cp.chain).bind_blob(4, cp.signature).bind(5, cp.signer);
  return st->run();
}

Result<void> AuditTrailWriter::prune_through(int64_t through) {
  auto cp = c_.cached("SELECT 1 FROM audit_checkpoint WHERE seq = ?1");
  if (!cp) return cp.error();
  cp->bind(1, through);
  auto row = cp->step();
  if (!row) return row.error();
  if (!*row || through >= next_seq_)
    return make_error(Errc::conflict, "audit retention prunes up to a checkpoint only: none at record " +
                                          std::to_string(through), "audit_prune_through");
  auto del = c_.cached("DELETE FROM audit WHERE seq <= ?1");
  if (!del) return del.error();
  del->bind(1, through);
  if (auto r = del->run(); !r) return r;
  auto old = c_.cached("DELETE FROM audit_checkpoint WHERE seq < ?1");
  if (!old) return old.error();
  old->bind(1, through);
  return old->run();
}

Result<void> chain_existing_audit(Connection& c) {
  std::string head = audit_chain::genesis();
  int64_t last = 0;
  std::string last_ts;
  // Each existing row gets its chain value (a new column, so nothing that was
  // there changes), and verification names an edited old row as precisely as
  // a new one. Collected first: the scan does not update the table it reads.
  std::vector<std::pair<int64_t, std::string>> chained;
  {
    auto st = c.prepare(std::string("SELECT ") + kColumns + " FROM audit ORDER BY seq");
    if (!st) return st.error();
    for (;;) {
      auto row = st->step();
      if (!row) return row.error();
      if (!*row) break;
      AuditRecord r = record_from(*st);
      head = audit_chain::next(head, r);
      last = r.seq;
      last_ts = r.ts;
      chained.emplace_back(r.seq, head);
    }
  }
  if (last == 0) return {};
  for (const auto& [seq, chain] : chained) {
    // A cached statement is reset when it goes out of scope: one per row.
    auto up = c.cached("UPDATE audit SET chain = ?1 WHERE seq = ?2");
    if (!up) return up.error();
    up->bind_blob(1, chain).bind(2, seq);
    if (auto r = up->run(); !r) return r.error();
  }
  auto ins = c.prepare("INSERT INTO audit_checkpoint(seq, ts, chain, signature, signer) VALUES(?1, ?2, ?3, x'', ?4)");
  if (!ins) return ins.error();
  ins->bind(1, last).bind(2, last_ts).bind_blob(3, head).bind(4, audit_chain::kMigrationSigner);
  return ins->run();
}

// ---- reads -------------------------------------------------------------------------

Result<AuditPage> search_audit_on(Connection& c, const AuditQuery& q) {
  Budget budget(c, q.budget);
  auto range = seq_range(c, q);
  if (!range) return range.error();
  AuditPage page;
  if (range->lo > range->hi) {
    if (q.want_total) page.total = 0;
    return page;
  }
  Where w;
  w.sql = " FROM audit WHERE seq BETWEEN ? AND ?";
  w.any_of("actor_role", q.roles);
  w.any_of("action", q.actions);
  w.any_of("outcome", q.outcomes);
  w.any_of("channel", q.channels);
  w.any_of("purpose", q.purposes);
  w.any_of("topic", q.topics);
  if (!q.patients.empty()) {
    // The partial index (patient_ref, seq) serves the rows about a person.
    w.any_of("patient_ref", q.patients);
    w.sql += " AND patient_ref != ''";
  }
  if (!q.entities.empty()) {
    w.sql += " AND (0";
    for (const auto& e : q.entities) {
      w.sql += " OR entity = ? OR patient_ref = ?";
      w.texts.push_back(e);
      w.texts.push_back(e);
    }
    w.sql += ")";
  }
  if (!q.agents.empty()) {
    w.sql += " AND (0";
    for (const auto& a : q.agents) {
      w.sql += " OR actor_ods = ? OR actor_system = ? OR person = ? OR src_ods = ?";
      for (int i = 0; i < 4; ++i) w.texts.push_back(a);
    }
    w.sql += ")";
  }
  if (q.organisation) {
    w.sql += " AND (actor_ods = ? OR src_ods = ?)";
    w.texts.push_back(*q.organisation);
    w.texts.push_back(*q.organisation);
  }
  auto bind_all = [&](Statement& st) {
    st.bind(1, range->lo).bind(2, range->hi);
    int i = 3;
    for (const auto& t : w.texts) st.bind(i++, t);
    return i;
  };
  {
    auto st = c.cached_text(std::string("SELECT ") + kColumns + w.sql + " ORDER BY seq DESC LIMIT ? OFFSET ?");
    if (!st) return st.error();
    int i = bind_all(*st);
    st->bind(i, static_cast<int64_t>(q.count)).bind(i + 1, q.offset);
    for (;;) {
      auto row = st->step();
      if (!row) return row.error();
      if (!*row) break;
      page.items.push_back(record_from(*st));
    }
  }
  if (q.want_total) {
    auto st = c.cached_text("SELECT count(*)" + w.sql);
    if (!st) return st.error();
    bind_all(*st);
    auto row = st->step();
    // Counting a long range may outlast the budget: the page stands without a total.
    if (row && *row) page.total = st->int64(0);
    else if (!row && row.error().code != Errc::unavailable) return row.error();
  }
  return page;
}

Result<AuditRecord> audit_record_on(Connection& c, int64_t seq) {
  static const std::string sql = std::string("SELECT ") + kColumns + " FROM audit WHERE seq = ?1";
  auto st = c.cached(sql.c_str());
  if (!st) return st.error();
  st->bind(1, seq);
  auto row = st->step();
  if (!row) return row.error();
  if (!*row) return make_error(Errc::not_found, "AuditEvent not found");
  return record_from(*st);
}

Result<std::vector<AuditGroup>> summarise_audit_on(Connection& c, const AuditSummaryQuery& q) {
  Budget budget(c, q.budget);
  AuditQuery range_q;
  range_q.ts_ge = q.ts_from;
  range_q.ts_lt = q.ts_to;
  // One read transaction: the range and the rows it covers are one snapshot.
  if (auto r = c.exec("BEGIN"); !r) return r.error();
  auto body = [&]() -> Result<std::vector<AuditGroup>> {
    auto range = seq_range(c, range_q);
    if (!range) return range.error();
    std::vector<AuditGroup> groups;
    if (range->lo > range->hi) return groups;
    // Grouped here rather than by SQL's GROUP BY: a year of rows would go
    // through SQLite's sorter (temporary files), where a hash of the few
    // hundred distinct flows stays in memory.
    auto st = c.cached(
        "SELECT substr(ts, 1, 10), actor_ods, actor_role, actor_system, src_ods, src_system, action, channel, topic, "
        "purpose, outcome, CASE WHEN action = 'notify' AND outcome = 'success' THEN latency_ms ELSE 0 END, items "
        "FROM audit WHERE seq BETWEEN ?1 AND ?2");
    if (!st) return st.error();
    st->bind(1, range->lo).bind(2, range->hi);
    std::unordered_map<std::string, size_t> index;
    std::string key;
    for (;;) {
      auto row = st->step();
      if (!row) return row.error();
      if (!*row) break;
      key.clear();
      for (int col = q.by_day ? 0 : 1; col <= 10; ++col) {
        key.append(st->text(col));
        key.push_back('\x1f');
      }
      int64_t lat = st->int64(11);
      if (lat > 0) {
        int64_t unit = 1;
        for (int64_t v = lat; v >= 100; v /= 10) unit *= 10;
        lat = lat / unit * unit;  // two significant figures
      }
      key.append(std::to_string(lat));
      int64_t items = st->int64(12);
      auto it = index.find(key);
      if (it == index.end()) {
        if (groups.size() >= q.max_groups) {
          return make_error(Errc::invalid_input, "the period holds more than " + std::to_string(q.max_groups) +
                                                     " distinct flows: ask for a shorter one");
        }
        AuditGroup g;
        if (q.by_day) g.day = st->text(0);
        g.actor_ods = st->text(1);
        g.actor_role = st->text(2);
        g.actor_system = st->text(3);
        g.src_ods = st->text(4);
        g.src_system = st->text(5);
        g.action = st->text(6);
        g.channel = st->text(7);
        g.topic = st->text(8);
        g.purpose = st->text(9);
        g.outcome = st->text(10);
        g.latency_ms = lat;
        it = index.emplace(key, groups.size()).first;
        groups.push_back(std::move(g));
      }
      AuditGroup& g = groups[it->second];
      ++g.events;
      if (items > 0) ++g.with_items;
      g.items += items;
    }
    return groups;
  };
  auto out = body();
  (void)c.exec(out ? "COMMIT" : "ROLLBACK");
  return out;
}

// ---- verification ----------------------------------------------------------------------

Result<TrailReport> verify_audit_file(const std::string& path, std::optional<std::pair<int64_t, std::string>> anchor) {
  auto conn = Connection::open(path, Connection::Mode::read_only, 5000);
  if (!conn) return conn.error();
  Connection& c = **conn;
  {
    auto st = c.prepare("SELECT count(*) FROM pragma_table_info('audit') WHERE name = 'chain'");
    if (!st) return st.error();
    auto row = st->step();
    if (!row) return row.error();
    if (!*row || st->int64(0) == 0) {
      return make_error(Errc::invalid_input, path + " has no audit chain yet: start the gateway on it once to migrate");
    }
  }
  if (auto r = c.exec("BEGIN"); !r) return r.error();  // one snapshot, whatever the gateway writes meanwhile
  TrailReport out;
  std::map<int64_t, AuditCheckpoint> cps;
  {
    auto st = c.prepare("SELECT seq, ts, chain, signature, signer FROM audit_checkpoint ORDER BY seq");
    if (!st) return st.error();
    for (;;) {
      auto row = st->step();
      if (!row) return row.error();
      if (!*row) break;
      AuditCheckpoint cp{st->int64(0), st->text(1), st->blob(2), st->blob(3), st->text(4)};
      out.checkpoints.push_back(cp);
      cps.emplace(cp.seq, std::move(cp));
    }
  }
  audit_chain::Verifier v(std::move(cps), std::move(anchor));
  auto st = c.prepare(std::string("SELECT ") + kColumns + " FROM audit ORDER BY seq");
  if (!st) return st.error();
  for (;;) {
    auto row = st->step();
    if (!row) return row.error();
    if (!*row) break;
    v.feed(record_from(*st));
  }
  v.finish();
  (void)c.exec("COMMIT");
  out.records = v.records();
  out.first_seq = v.first_seq();
  out.last_seq = v.last_seq();
  out.head = audit_chain::hex(v.head());
  out.findings = v.findings();
  out.checkpoints_matched = v.checkpoints_matched();
  return out;
}

}  // namespace gw::store::sqlite
