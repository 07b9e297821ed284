#include "gateway/store/sqlite/schema.h"

#include <string>

#include "gateway/store/index_keys.h"
#include "gateway/store/sqlite/audit_trail.h"
#include "gateway/store/sqlite/connection.h"

namespace gw::store::sqlite {

namespace {

// Version 9, after its DELETE: the current rows' key lists lose the
// `patient` keys that repeat a `subject` key, as index_keys now makes them,
// so that the next update of each resource diffs against what idx holds.
Result<void> drop_patient_duplicate_keys(Connection& c) {
  const std::string subject = "subject";
  for (int64_t after = 0;;) {
    auto st = c.cached(
        "SELECT rid, keys FROM res WHERE rid > ?1 AND instr(keys, CAST(?2 AS BLOB)) > 0 ORDER BY rid LIMIT 5000");
    if (!st) return st.error();
    st->bind(1, after).bind(2, subject);
    std::vector<std::pair<int64_t, std::string>> changed;
    int64_t last = after;
    for (;;) {
      auto row = st->step();
      if (!row) return row.error();
      if (!*row) break;
      last = st->int64(0);
      auto keys = decode_keys(st->blob(1));
      if (drop_patient_duplicates(keys)) changed.emplace_back(last, encode_keys(keys));
    }
    if (last == after) return {};
    after = last;
    for (const auto& [rid, keys] : changed) {
      auto up = c.cached("UPDATE res SET keys = ?1 WHERE rid = ?2");
      if (!up) return up.error();
      up->bind_blob(1, keys).bind(2, rid);
      if (auto r = up->run(); !r) return r.error();
    }
  }
}

}  // namespace

const std::vector<Migration>& migrations() {
  static const std::vector<Migration> steps = {
      {1, R"sql(
CREATE TABLE resources(
  type TEXT NOT NULL,
  id TEXT NOT NULL,
  version INTEGER NOT NULL,
  last_updated TEXT NOT NULL,
  deleted INTEGER NOT NULL DEFAULT 0,
  body TEXT NOT NULL,
  PRIMARY KEY(type, id)
) WITHOUT ROWID;
-- search orders by last_updated then id within a type
CREATE INDEX resources_by_updated ON resources(type, last_updated, id);

CREATE TABLE resource_history(
  type TEXT NOT NULL,
  id TEXT NOT NULL,
  version INTEGER NOT NULL,
  last_updated TEXT NOT NULL,
  deleted INTEGER NOT NULL DEFAULT 0,
  body TEXT NOT NULL,
  PRIMARY KEY(type, id, version)
) WITHOUT ROWID;

-- rows for the current version only; replaced on every write of the resource
CREATE TABLE search_index(
  type TEXT NOT NULL,
  id TEXT NOT NULL,
  param TEXT NOT NULL,
  system TEXT NOT NULL DEFAULT '',
  value TEXT NOT NULL
);
CREATE INDEX search_index_lookup ON search_index(type, param, value, system);
CREATE INDEX search_index_owner ON search_index(type, id);

-- one live Patient per NHS number: the PRIMARY KEY is the guarantee, the
-- writer's check before insert only turns a collision into a helpful error
CREATE TABLE patient_key(
  key TEXT PRIMARY KEY,
  id TEXT NOT NULL
);
CREATE INDEX patient_key_by_id ON patient_key(id);
)sql"},
      {2, R"sql(
CREATE TABLE audit(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  ts TEXT NOT NULL,
  actor_ods TEXT NOT NULL,
  actor_role TEXT NOT NULL,
  actor_system TEXT NOT NULL,
  action TEXT NOT NULL,
  entity TEXT NOT NULL,
  outcome TEXT NOT NULL,
  http_status INTEGER NOT NULL,
  request_id TEXT NOT NULL,
  detail TEXT NOT NULL,
  patient_ref TEXT NOT NULL
);
-- BALP patient-audit search ("who saw this child")
CREATE INDEX audit_by_patient ON audit(patient_ref, ts);

CREATE TABLE outbox(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  topic TEXT NOT NULL,
  focus TEXT NOT NULL,
  payload TEXT NOT NULL,
  created TEXT NOT NULL
);
)sql"},
      {3, R"sql(
-- At-most-once keys: a sender's message id seen before is not stored twice.
CREATE TABLE idempotency(
  key TEXT PRIMARY KEY,
  created TEXT NOT NULL
) WITHOUT ROWID;

-- Every legacy message as received, with what became of it (quarantine, replay).
CREATE TABLE inbound(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  received TEXT NOT NULL,
  adapter TEXT NOT NULL,
  channel TEXT NOT NULL,
  sender_ods TEXT NOT NULL,
  sender_system TEXT NOT NULL,
  control_id TEXT NOT NULL,
  status TEXT NOT NULL,
  reason TEXT NOT NULL,
  issues_json TEXT NOT NULL,
  raw BLOB NOT NULL,
  replay_of INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX inbound_by_status ON inbound(status, id);
)sql"},
      {4, R"sql(
-- The change feed: one row per resource version written, in the same
-- transaction as the write, so every write path produces it.
CREATE TABLE changes(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  type TEXT NOT NULL,
  id TEXT NOT NULL,
  version INTEGER NOT NULL,
  interaction TEXT NOT NULL,
  ts TEXT NOT NULL
);

-- Durable positions of change-feed consumers (the subscription fan-out).
CREATE TABLE cursors(
  name TEXT PRIMARY KEY,
  seq INTEGER NOT NULL
) WITHOUT ROWID;

-- Per-subscription event counter (events-since-subscription-start).
CREATE TABLE sub_counters(
  subscription TEXT PRIMARY KEY,
  events INTEGER NOT NULL
) WITHOUT ROWID;

-- Per-subscription notification events, numbered 1, 2, 3... without gaps.
CREATE TABLE sub_events(
  subscription TEXT NOT NULL,
  number INTEGER NOT NULL,
  change_seq INTEGER NOT NULL,
  focus_type TEXT NOT NULL,
  focus_id TEXT NOT NULL,
  focus_version INTEGER NOT NULL,
  interaction TEXT NOT NULL,
  patient_ref TEXT NOT NULL,
  content TEXT NOT NULL,
  created TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  first_attempt_ms INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  PRIMARY KEY(subscription, number)
) WITHOUT ROWID;
CREATE INDEX sub_events_by_status ON sub_events(status, subscription, number);
CREATE INDEX sub_events_by_sub_status ON sub_events(subscription, status, number);
)sql"},
      {5, R"sql(
-- The sensitivity filter asks, for each search candidate, whether it carries a
-- label the caller may not see: a partial index holding only the label rows
-- answers that from the index alone, whatever else the resource is indexed by.
CREATE INDEX search_index_security ON search_index(type, id, value) WHERE param = '_security';
)sql"},
      {6, R"sql(
-- The write path's layout (rows.h): every version written once (ver, in
-- commit order: its vid is the change feed), one small current row per
-- resource (res), a search index keyed by value first (idx), the NHS-number
-- constraint (pkey) and the security-label bits (labels). upgrade_to_v6
-- moves the rows of the version-5 tables into these and drops them.
CREATE TABLE labels(
  bit INTEGER PRIMARY KEY,
  code TEXT NOT NULL UNIQUE
);
CREATE TABLE res(
  rid INTEGER PRIMARY KEY,
  type TEXT NOT NULL,
  id TEXT NOT NULL,
  vid INTEGER NOT NULL,
  version INTEGER NOT NULL,
  ts INTEGER NOT NULL,
  deleted INTEGER NOT NULL,
  labels INTEGER NOT NULL,
  keys BLOB NOT NULL,
  ukey TEXT
);
CREATE UNIQUE INDEX res_by_id ON res(type, id);
CREATE INDEX res_by_type ON res(type, rid);
CREATE TABLE ver(
  vid INTEGER PRIMARY KEY,
  rid INTEGER NOT NULL,
  version INTEGER NOT NULL,
  ts INTEGER NOT NULL,
  op INTEGER NOT NULL,
  prev INTEGER NOT NULL,
  body TEXT NOT NULL
);
CREATE INDEX ver_by_ts ON ver(ts);
CREATE TABLE idx(
  value TEXT NOT NULL,
  type TEXT NOT NULL,
  param TEXT NOT NULL,
  system TEXT NOT NULL,
  rid INTEGER NOT NULL,
  PRIMARY KEY(value, type, param, system, rid)
) WITHOUT ROWID;
CREATE TABLE pkey(
  key TEXT PRIMARY KEY,
  rid INTEGER NOT NULL
) WITHOUT ROWID;
-- "Who saw this child": only the rows about a person are indexed.
DROP INDEX audit_by_patient;
CREATE INDEX audit_by_patient ON audit(patient_ref, seq) WHERE patient_ref != '';
)sql", upgrade_to_v6},
      // Durable timers (docs/TIMERS.md).
      {7, R"sql(
CREATE TABLE timers(
  key TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  subject TEXT NOT NULL,
  due TEXT NOT NULL,
  payload TEXT NOT NULL,
  status TEXT NOT NULL,
  scheduled TEXT NOT NULL,
  settled TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
-- the runner's question: what is pending and due by now, earliest first
CREATE INDEX timers_pending_due ON timers(due, key) WHERE status = 'pending';
CREATE INDEX timers_by_subject ON timers(kind, subject, due);
)sql"},
      // Issue 16 (after main's 7, the timers): the audit trail in IHE BALP's
      // shape, hash-chained in commit order with signed checkpoints
      // (docs/AUDIT.md); the writer of each version, so that a disclosure
      // decided later from the change feed names whose record left; and what
      // the console shows of a kept message. Columns only: no new index, so a
      // commit touches no more pages than before. chain_existing_audit states
      // the chain over the rows already there in a "migration" checkpoint.
      {8, R"sql(
ALTER TABLE audit ADD COLUMN person TEXT NOT NULL DEFAULT '';
ALTER TABLE audit ADD COLUMN channel TEXT NOT NULL DEFAULT '';
ALTER TABLE audit ADD COLUMN purpose TEXT NOT NULL DEFAULT '';
ALTER TABLE audit ADD COLUMN src_ods TEXT NOT NULL DEFAULT '';
ALTER TABLE audit ADD COLUMN src_system TEXT NOT NULL DEFAULT '';
ALTER TABLE audit ADD COLUMN topic TEXT NOT NULL DEFAULT '';
ALTER TABLE audit ADD COLUMN latency_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE audit ADD COLUMN items INTEGER NOT NULL DEFAULT 0;
ALTER TABLE audit ADD COLUMN chain BLOB;
CREATE TABLE audit_checkpoint(
  seq INTEGER PRIMARY KEY,
  ts TEXT NOT NULL,
  chain BLOB NOT NULL,
  signature BLOB NOT NULL,
  signer TEXT NOT NULL
);
ALTER TABLE ver ADD COLUMN src TEXT NOT NULL DEFAULT '';
ALTER TABLE inbound ADD COLUMN kind TEXT NOT NULL DEFAULT '';
ALTER TABLE inbound ADD COLUMN answer TEXT NOT NULL DEFAULT '';
ALTER TABLE inbound ADD COLUMN written TEXT NOT NULL DEFAULT '';
)sql", chain_existing_audit},
      // Issue 12: one index row where two names had the same value. A
      // `subject` reference to a Patient was indexed under `subject` and
      // again under `patient`; the `subject` row now answers both searches
      // (store/index_keys.h), one row fewer per CareTeam, Observation...
      // written. The value-first primary key makes the EXISTS one probe.
      {9, R"sql(
DELETE FROM idx WHERE param = 'patient' AND EXISTS (
  SELECT 1 FROM idx s WHERE s.value = idx.value AND s.type = idx.type AND s.param = 'subject'
    AND s.system = idx.system AND s.rid = idx.rid);
)sql", drop_patient_duplicate_keys},
  };
  return steps;
}

Result<MigrationRun> run_migrations(Connection& c, const char* now_iso, bool dry_run) {
  if (auto r = c.exec("BEGIN IMMEDIATE"); !r) return r.error();
  auto fail = [&c](Error e) -> Result<MigrationRun> {
    (void)c.exec("ROLLBACK");
    return e;
  };
  if (auto r = c.exec("CREATE TABLE IF NOT EXISTS schema_version(version INTEGER PRIMARY KEY, applied TEXT NOT NULL)");
      !r) {
    return fail(r.error());
  }
  MigrationRun run;
  run.known = migrations().back().version;
  {
    auto st = c.cached("SELECT COALESCE(MAX(version), 0) FROM schema_version");
    if (!st) return fail(st.error());
    auto row = st->step();
    if (!row) return fail(row.error());
    run.from = st->int64(0);
  }
  if (run.from > run.known) {
    return fail(make_error(Errc::conflict, "the store is at schema version " + std::to_string(run.from) +
                                          " and this gateway knows versions up to " + std::to_string(run.known) +
                                          ": it was written by a newer gateway, and a downgrade is not supported "
                                          "(restore the backup taken before the upgrade, or install the newer version)"));
  }
  for (const auto& m : migrations()) {
    if (m.version <= run.from) continue;
    auto r = c.exec(m.sql);
    if (r && m.step) r = m.step(c);
    if (!r) {
      Error e = r.error();
      e.message = "migration " + std::to_string(m.version) + ": " + e.message;
      return fail(std::move(e));
    }
    auto ins = c.cached("INSERT INTO schema_version(version, applied) VALUES(?1, ?2)");
    if (!ins) return fail(ins.error());
    ins->bind(1, static_cast<int64_t>(m.version)).bind(2, now_iso);
    if (auto r = ins->run(); !r) return fail(r.error());
    run.steps.push_back(m.version);
  }
  if (auto r = c.exec(dry_run ? "ROLLBACK" : "COMMIT"); !r) return fail(r.error());
  return run;
}

Result<int> migrate(Connection& c, const char* now_iso) {
  auto run = run_migrations(c, now_iso, false);
  if (!run) return run.error();
  return static_cast<int>(run->steps.size());
}

}  // namespace gw::store::sqlite
