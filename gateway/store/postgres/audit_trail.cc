#include "gateway/store/postgres/audit_trail.h"

#include <algorithm>
#include <map>

#include "gateway/store/postgres/pg.h"

namespace gw::store::pg {

namespace {

constexpr const char* kColumns =
    "seq, ts, actor_ods, actor_role, actor_system, action, entity, outcome, http_status, request_id, detail, "
    "patient_ref, person, channel, purpose, src_ods, src_system, topic, latency_ms, items, chain";

AuditRecord record_at(const Rows& r, int i) {
  AuditRecord a;
  a.seq = r.int64(i, 0);
  a.ts = r.text(i, 1);
  a.actor_ods = r.text(i, 2);
  a.actor_role = r.text(i, 3);
  a.actor_system = r.text(i, 4);
  a.action = r.text(i, 5);
  a.entity = r.text(i, 6);
  a.outcome = r.text(i, 7);
  a.http_status = static_cast<int>(r.int64(i, 8));
  a.request_id = r.text(i, 9);
  a.detail = r.text(i, 10);
  a.patient_ref = r.text(i, 11);
  a.person = r.text(i, 12);
  a.channel = r.text(i, 13);
  a.purpose = r.text(i, 14);
  a.src_ods = r.text(i, 15);
  a.src_system = r.text(i, 16);
  a.topic = r.text(i, 17);
  a.latency_ms = r.int64(i, 18);
  a.items = r.int64(i, 19);
  a.chain = r.is_null(i, 20) ? std::string() : r.bytes(i, 20);
  return a;
}

// A statement stopped by the read's budget (statement_timeout) is the
// caller's 503, as on the embedded store; other failures stay what they are.
Error budget_or(Conn& c, Error e) {
  if (c.last_state() == "57014") return make_error(Errc::unavailable, "the audit query ran past its time budget");
  return e;
}

// A read transaction with a statement budget; rolled back when it ends (it
// only reads), so the budget never outlives it.
class ReadTx {
 public:
  ReadTx(Conn& c, std::chrono::milliseconds budget) : c_(c) {
    auto r = c_.run("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    if (r) r = c_.run("SET LOCAL statement_timeout = " + std::to_string(std::max<int64_t>(1, budget.count())));
    if (!r) error_ = r.error();
  }
  ~ReadTx() { (void)c_.run("ROLLBACK"); }
  ReadTx(const ReadTx&) = delete;
  ReadTx& operator=(const ReadTx&) = delete;
  const std::optional<Error>& error() const { return error_; }

 private:
  Conn& c_;
  std::optional<Error> error_;
};

Result<int64_t> scalar(Conn& c, const std::string& sql, const Params& p = {}) {
  auto r = c.exec(sql, p);
  if (!r) return budget_or(c, r.error());
  return r->empty() || r->is_null(0, 0) ? int64_t{0} : r->int64(0, 0);
}

// As the embedded store: rows are stamped never earlier than the row before,
// so a time range is a seq range, found by probing the primary key.
Result<int64_t> seq_from_ts(Conn& c, const std::string& ts, bool strict) {
  auto lo = scalar(c, "SELECT COALESCE(MIN(seq), 1) FROM audit");
  if (!lo) return lo.error();
  auto hi = scalar(c, "SELECT COALESCE(MAX(seq), 0) + 1 FROM audit");
  if (!hi) return hi.error();
  int64_t a = *lo, b = *hi;
  while (a < b) {
    int64_t mid = a + (b - a) / 2;
    auto r = c.exec("SELECT seq, ts FROM audit WHERE seq >= $1 ORDER BY seq LIMIT 1", Params().add(mid));
    if (!r) return budget_or(c, r.error());
    if (r->empty()) {
      b = mid;
      continue;
    }
    std::string t = r->text(0, 1);
    bool past = strict ? t > ts : t >= ts;
    if (past) b = mid;
    else a = r->int64(0, 0) + 1;
  }
  return a;
}

struct SeqRange {
  int64_t lo = 1, hi = INT64_MAX;
};

Result<SeqRange> seq_range(Conn& c, const std::optional<std::string>& ge, const std::optional<std::string>& gt,
                           const std::optional<std::string>& le, const std::optional<std::string>& lt) {
  SeqRange r;
  auto bound = [&](const std::optional<std::string>& ts, bool strict, bool upper) -> Result<void> {
    if (!ts) return {};
    auto s = seq_from_ts(c, *ts, strict);
    if (!s) return s.error();
    if (upper) r.hi = std::min(r.hi, *s - 1);
    else r.lo = std::max(r.lo, *s);
    return {};
  };
  if (auto x = bound(ge, false, false); !x) return x.error();
  if (auto x = bound(gt, true, false); !x) return x.error();
  if (auto x = bound(le, true, true); !x) return x.error();
  if (auto x = bound(lt, false, true); !x) return x.error();
  return r;
}

}  // namespace

// ---- writer ----------------------------------------------------------------------

Result<void> AuditTrailWriter::load() {
  auto r = c_.exec(
      "SELECT (SELECT seq FROM audit ORDER BY seq DESC LIMIT 1), (SELECT ts FROM audit ORDER BY seq DESC LIMIT 1), "
      "(SELECT chain FROM audit ORDER BY seq DESC LIMIT 1), "
      "(SELECT seq FROM audit_checkpoint ORDER BY seq DESC LIMIT 1), "
      "(SELECT chain FROM audit_checkpoint ORDER BY seq DESC LIMIT 1)");
  if (!r) return r.error();
  next_seq_ = 1;
  head_ = audit_chain::genesis();
  last_ts_.clear();
  int64_t last = 0;
  const bool any = !r->is_null(0, 0);
  if (any) {
    last = r->int64(0, 0);
    last_ts_ = r->text(0, 1);
    if (!r->is_null(0, 2)) head_ = r->bytes(0, 2);
  }
  if (!r->is_null(0, 3)) {
    int64_t cseq = r->int64(0, 3);
    // Rows older than the chain: their head is the migration checkpoint's.
    if (cseq == last && (!any || r->is_null(0, 2))) head_ = r->bytes(0, 4);
    // A trail shorter than its last checkpoint lost records from its end:
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
  auto res = c_.exec(
      "INSERT INTO audit(seq, ts, actor_ods, actor_role, actor_system, action, entity, outcome, http_status, "
      "request_id, detail, patient_ref, person, channel, purpose, src_ods, src_system, topic, latency_ms, items, "
      "chain) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)",
      Params()
          .add(r.seq)
          .add(r.ts)
          .add(r.actor_ods)
          .add(r.actor_role)
          .add(r.actor_system)
          .add(r.action)
          .add(r.entity)
          .add(r.outcome)
          .add(int64_t{r.http_status})
          .add(r.request_id)
          .add(r.detail)
          .add(r.patient_ref)
          .add(r.person)
          .add(r.channel)
          .add(r.purpose)
          .add(r.src_ods)
          .add(r.src_system)
          .add(r.topic)
          .add(r.latency_ms)
          .add(r.items)
          .add_bytes(chain));
  if (!res) return res.error();
  next_seq_ = r.seq + 1;
  head_ = std::move(chain);
  last_ts_ = std::move(r.ts);
  return {};
}

Result<void> AuditTrailWriter::insert_checkpoint(const AuditCheckpoint& cp) {
  if (cp.seq <= 0 || cp.seq >= next_seq_ || cp.chain.size() != audit_chain::kHashBytes) {
    return make_error(Errc::invalid_input, "an audit checkpoint must name a record already written");
  }
  auto r = c_.exec(
      "INSERT INTO audit_checkpoint(seq, ts, chain, signature, signer) VALUES($1, $2, $3, $4, $5) "
      "ON CONFLICT (seq) DO NOTHING",
      Params().add(cp.seq).add(cp.ts).add_bytes(cp.chain).add_bytes(cp.signature).add(cp.signer));
  if (!r) return r.error();
  return {};
}

Result<void> AuditTrailWriter::prune_through(int64_t through) {
  auto cp = c_.exec("SELECT 1 FROM audit_checkpoint WHERE seq = $1", Params().add(through));
  if (!cp) return cp.error();
  if (cp->empty() || through >= next_seq_)
    return make_error(Errc::conflict, "audit retention prunes up to a checkpoint only: none at record " +
                                          std::to_string(through), "audit_prune_through");
  if (auto r = c_.exec("DELETE FROM audit WHERE seq <= $1", Params().add(through)); !r) return r.error();
  if (auto r = c_.exec("DELETE FROM audit_checkpoint WHERE seq < $1", Params().add(through)); !r) return r.error();
  return {};
}

Result<void> chain_existing_audit(Conn& c) {
  std::string head = audit_chain::genesis();
  int64_t last = 0;
  std::string last_ts;
  for (;;) {
    auto r = c.exec(std::string("SELECT ") + kColumns + " FROM audit WHERE seq > $1 ORDER BY seq LIMIT 5000",
                    Params().add(last));
    if (!r) return r.error();
    if (r->empty()) break;
    for (int i = 0; i < r->size(); ++i) {
      AuditRecord rec = record_at(*r, i);
      head = audit_chain::next(head, rec);
      last = rec.seq;
      last_ts = rec.ts;
      if (auto u = c.exec("UPDATE audit SET chain = $1 WHERE seq = $2", Params().add_bytes(head).add(rec.seq)); !u)
        return u.error();
    }
  }
  if (last == 0) return {};
  auto ins = c.exec("INSERT INTO audit_checkpoint(seq, ts, chain, signature, signer) VALUES($1, $2, $3, '', $4)",
                    Params().add(last).add(last_ts).add_bytes(head).add(audit_chain::kMigrationSigner));
  if (!ins) return ins.error();
  return {};
}

// ---- reads ---------------------------------------------------------------------------

Result<AuditPage> search_audit_on(Conn& c, const AuditQuery& q) {
  ReadTx tx(c, q.budget);
  if (tx.error()) return *tx.error();
  auto range = seq_range(c, q.ts_ge, q.ts_gt, q.ts_le, q.ts_lt);
  if (!range) return range.error();
  AuditPage page;
  if (range->lo > range->hi) {
    if (q.want_total) page.total = 0;
    return page;
  }
  // Each list is one text[] parameter: the SQL text stays the same whatever
  // the number of values, and nothing is spliced.
  std::string where = " FROM audit WHERE seq BETWEEN $1 AND $2";
  Params p;
  p.add(range->lo).add(range->hi);
  int n = 2;
  auto any_of = [&](const char* column, const std::vector<std::string>& values) {
    if (values.empty()) return;
    where += std::string(" AND ") + column + " = ANY($" + std::to_string(++n) + "::text[])";
    p.add(text_array(values));
  };
  any_of("actor_role", q.roles);
  any_of("action", q.actions);
  any_of("outcome", q.outcomes);
  any_of("channel", q.channels);
  any_of("purpose", q.purposes);
  any_of("topic", q.topics);
  if (!q.patients.empty()) {
    any_of("patient_ref", q.patients);
    where += " AND patient_ref <> ''";  // the partial index (patient_ref, seq)
  }
  if (!q.entities.empty()) {
    const std::string k = "$" + std::to_string(++n) + "::text[]";
    where += " AND (entity = ANY(" + k + ") OR patient_ref = ANY(" + k + "))";
    p.add(text_array(q.entities));
  }
  if (!q.agents.empty()) {
    const std::string k = "$" + std::to_string(++n) + "::text[]";
    where += " AND (actor_ods = ANY(" + k + ") OR actor_system = ANY(" + k + ") OR person = ANY(" + k +
             ") OR src_ods = ANY(" + k + "))";
    p.add(text_array(q.agents));
  }
  if (q.organisation) {
    const std::string k = "$" + std::to_string(++n);
    where += " AND (actor_ods = " + k + " OR src_ods = " + k + ")";
    p.add(*q.organisation);
  }
  {
    Params pp = p;
    pp.add(int64_t{q.count}).add(q.offset);
    auto r = c.exec(std::string("SELECT ") + kColumns + where + " ORDER BY seq DESC LIMIT $" + std::to_string(n + 1) +
                        " OFFSET $" + std::to_string(n + 2),
                    pp);
    if (!r) return budget_or(c, r.error());
    for (int i = 0; i < r->size(); ++i) page.items.push_back(record_at(*r, i));
  }
  if (q.want_total) {
    auto r = c.exec("SELECT count(*)" + where, p);
    // Counting a long range may outlast the budget: the page stands without a total.
    if (r) page.total = r->int64(0, 0);
    else if (c.last_state() != "57014") return r.error();
  }
  return page;
}

Result<AuditRecord> audit_record_on(Conn& c, int64_t seq) {
  auto r = c.exec(std::string("SELECT ") + kColumns + " FROM audit WHERE seq = $1", Params().add(seq));
  if (!r) return r.error();
  if (r->empty()) return make_error(Errc::not_found, "AuditEvent not found");
  return record_at(*r, 0);
}

Result<std::vector<AuditGroup>> summarise_audit_on(Conn& c, const AuditSummaryQuery& q) {
  ReadTx tx(c, q.budget);  // one snapshot: the range and the rows it covers
  if (tx.error()) return *tx.error();
  auto range = seq_range(c, q.ts_from, std::nullopt, std::nullopt, q.ts_to);
  if (!range) return range.error();
  std::vector<AuditGroup> groups;
  if (range->lo > range->hi) return groups;
  // Grouped by the server (a hash aggregate): a year of rows never crosses
  // the connection, only the few hundred distinct flows do. Delivered
  // notifications' latency to two significant figures, as the embedded store.
  const std::string lat = "(CASE WHEN action = 'notify' AND outcome = 'success' THEN latency_ms ELSE 0 END)";
  const std::string bucket = "(CASE WHEN " + lat + " >= 100 THEN " + lat + " - " + lat + " % (10 ^ (length(" + lat +
                             "::text) - 2))::bigint ELSE " + lat + " END)";
  const std::string day = q.by_day ? "substr(ts, 1, 10)" : "''";
  auto r = c.exec("SELECT " + day +
                      ", actor_ods, actor_role, actor_system, src_ods, src_system, action, channel, topic, purpose, "
                      "outcome, " +
                      bucket +
                      " AS lat, count(*), count(*) FILTER (WHERE items > 0), COALESCE(sum(items), 0) "
                      "FROM audit WHERE seq BETWEEN $1 AND $2 GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 "
                      "LIMIT $3",
                  Params().add(range->lo).add(range->hi).add(static_cast<int64_t>(q.max_groups) + 1));
  if (!r) return budget_or(c, r.error());
  if (static_cast<size_t>(r->size()) > q.max_groups) {
    return make_error(Errc::invalid_input, "the period holds more than " + std::to_string(q.max_groups) +
                                               " distinct flows: ask for a shorter one");
  }
  for (int i = 0; i < r->size(); ++i) {
    AuditGroup g;
    if (q.by_day) g.day = r->text(i, 0);
    g.actor_ods = r->text(i, 1);
    g.actor_role = r->text(i, 2);
    g.actor_system = r->text(i, 3);
    g.src_ods = r->text(i, 4);
    g.src_system = r->text(i, 5);
    g.action = r->text(i, 6);
    g.channel = r->text(i, 7);
    g.topic = r->text(i, 8);
    g.purpose = r->text(i, 9);
    g.outcome = r->text(i, 10);
    g.latency_ms = r->int64(i, 11);
    g.events = r->int64(i, 12);
    g.with_items = r->int64(i, 13);
    g.items = r->int64(i, 14);
    groups.push_back(std::move(g));
  }
  return groups;
}

// ---- verification ----------------------------------------------------------------------

Result<TrailReport> verify_audit(const std::string& conninfo, std::optional<std::pair<int64_t, std::string>> anchor) {
  auto conn = Conn::open(conninfo);
  if (!conn) return conn.error();
  Conn& c = **conn;
  {
    auto r = c.exec(
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema() AND "
        "table_name = 'audit' AND column_name = 'chain'");
    if (!r) return r.error();
    if (r->int64(0, 0) == 0) {
      return make_error(Errc::invalid_input, "this schema has no audit chain yet: start the gateway on it once to migrate");
    }
  }
  // One snapshot, whatever the gateways write meanwhile.
  if (auto r = c.run("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); !r) return r.error();
  TrailReport out;
  std::map<int64_t, AuditCheckpoint> cps;
  {
    auto r = c.exec("SELECT seq, ts, chain, signature, signer FROM audit_checkpoint ORDER BY seq");
    if (!r) return r.error();
    for (int i = 0; i < r->size(); ++i) {
      AuditCheckpoint cp{r->int64(i, 0), r->text(i, 1), r->bytes(i, 2), r->bytes(i, 3), r->text(i, 4)};
      out.checkpoints.push_back(cp);
      cps.emplace(cp.seq, std::move(cp));
    }
  }
  audit_chain::Verifier v(std::move(cps), std::move(anchor));
  int64_t after = 0;
  for (;;) {
    auto r = c.exec(std::string("SELECT ") + kColumns + " FROM audit WHERE seq > $1 ORDER BY seq LIMIT 10000",
                    Params().add(after));
    if (!r) return r.error();
    if (r->empty()) break;
    for (int i = 0; i < r->size(); ++i) {
      AuditRecord rec = record_at(*r, i);
      after = rec.seq;
      v.feed(rec);
    }
  }
  v.finish();
  (void)c.run("COMMIT");
  out.records = v.records();
  out.first_seq = v.first_seq();
  out.last_seq = v.last_seq();
  out.head = audit_chain::hex(v.head());
  out.findings = v.findings();
  out.checkpoints_matched = v.checkpoints_matched();
  return out;
}

}  // namespace gw::store::pg
