#include "gateway/store/postgres/schema.h"

#include "gateway/store/index_keys.h"
#include "gateway/store/postgres/audit_trail.h"
#include "gateway/store/postgres/pg.h"

namespace gw::store::pg {

namespace {

// Step 4, after its DELETE: the current rows' key lists lose the `patient`
// keys that repeat a `subject` key (the embedded store's step 9).
Result<void> drop_patient_duplicate_keys(Conn& c) {
  for (int64_t after = 0;;) {
    auto rows = c.exec(
        "SELECT rid, keys FROM res WHERE rid > $1 AND position('subject'::bytea IN keys) > 0 "
        "ORDER BY rid LIMIT 5000",
        Params().add(after));
    if (!rows) return rows.error();
    if (rows->empty()) return {};
    for (int i = 0; i < rows->size(); ++i) {
      after = rows->int64(i, 0);
      auto keys = decode_keys(rows->bytes(i, 1));
      if (!drop_patient_duplicates(keys)) continue;
      if (auto r = c.exec("UPDATE res SET keys = $1 WHERE rid = $2", Params().add_bytes(encode_keys(keys)).add(after));
          !r)
        return r.error();
    }
  }
}

}  // namespace

const std::vector<Migration>& migrations() {
  static const std::vector<Migration> steps = {
      {1, R"sql(
-- The embedded store's layout 6 (store/sqlite/rows.h), column for column,
-- so an operator's query (and the migrate command) reads the same on both:
--   ver   every version once; its vid is the change feed's seq. vids are
--         taken only inside the writer lock (postgres_store.cc), so they are
--         handed out in commit order across nodes.
--   res   one row per resource: current version, labels, index keys.
--   idx   the search index keyed value first; pkey one live Patient per NHS number.
CREATE TABLE res(
  rid BIGSERIAL PRIMARY KEY,
  type TEXT NOT NULL,
  id TEXT NOT NULL,
  vid BIGINT NOT NULL,
  version BIGINT NOT NULL,
  ts BIGINT NOT NULL,
  deleted SMALLINT NOT NULL,
  labels TEXT[] NOT NULL DEFAULT '{}',
  keys BYTEA NOT NULL,
  ukey TEXT
);
CREATE UNIQUE INDEX res_by_id ON res(type, id);
CREATE INDEX res_by_type ON res(type, rid);
CREATE SEQUENCE ver_vid;
CREATE TABLE ver(
  vid BIGINT PRIMARY KEY,
  rid BIGINT NOT NULL,
  version BIGINT NOT NULL,
  ts BIGINT NOT NULL,
  op SMALLINT NOT NULL,
  prev BIGINT NOT NULL,
  body TEXT NOT NULL
);
CREATE INDEX ver_by_ts ON ver(ts);
-- history and vread (the embedded store walks `prev`; one index here is one round trip)
CREATE INDEX ver_by_rid ON ver(rid, version);
CREATE TABLE idx(
  value TEXT NOT NULL,
  type TEXT NOT NULL,
  param TEXT NOT NULL,
  system TEXT NOT NULL,
  rid BIGINT NOT NULL,
  PRIMARY KEY(value, type, param, system, rid)
);
CREATE INDEX idx_by_rid ON idx(rid);
-- One live Patient per NHS number across every node: the constraint, not a check.
CREATE TABLE pkey(
  key TEXT PRIMARY KEY,
  rid BIGINT NOT NULL
);

CREATE TABLE audit(
  seq BIGSERIAL PRIMARY KEY,
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
CREATE INDEX audit_by_patient ON audit(patient_ref, seq) WHERE patient_ref <> '';

CREATE TABLE outbox(
  seq BIGSERIAL PRIMARY KEY,
  topic TEXT NOT NULL,
  focus TEXT NOT NULL,
  payload TEXT NOT NULL,
  created TEXT NOT NULL
);

-- At most once across nodes: the primary key decides which node's unit wins.
CREATE TABLE idempotency(
  key TEXT PRIMARY KEY,
  created TEXT NOT NULL
);

-- raw is BYTEA: legacy files are kept byte for byte, whatever their encoding.
CREATE TABLE inbound(
  id BIGSERIAL PRIMARY KEY,
  received TEXT NOT NULL,
  adapter TEXT NOT NULL,
  channel TEXT NOT NULL,
  sender_ods TEXT NOT NULL,
  sender_system TEXT NOT NULL,
  control_id TEXT NOT NULL,
  status TEXT NOT NULL,
  reason TEXT NOT NULL,
  issues_json TEXT NOT NULL,
  raw BYTEA NOT NULL,
  replay_of BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX inbound_by_status ON inbound(status, id);

CREATE TABLE cursors(
  name TEXT PRIMARY KEY,
  seq BIGINT NOT NULL
);
CREATE TABLE sub_counters(
  subscription TEXT PRIMARY KEY,
  events BIGINT NOT NULL
);
CREATE TABLE sub_events(
  subscription TEXT NOT NULL,
  number BIGINT NOT NULL,
  change_seq BIGINT NOT NULL,
  focus_type TEXT NOT NULL,
  focus_id TEXT NOT NULL,
  focus_version BIGINT NOT NULL,
  interaction TEXT NOT NULL,
  patient_ref TEXT NOT NULL,
  content TEXT NOT NULL,
  created TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts BIGINT NOT NULL DEFAULT 0,
  first_attempt_ms BIGINT NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  PRIMARY KEY(subscription, number)
);
CREATE INDEX sub_events_by_status ON sub_events(status, subscription, number);
CREATE INDEX sub_events_by_sub_status ON sub_events(subscription, status, number);
)sql"},
      // Durable timers (docs/TIMERS.md): the embedded store's layout 7.
      {2, R"sql(
-- "C": due times and keys order byte by byte, as in SQLite, whatever the
-- database's collation.
CREATE TABLE timers(
  key TEXT COLLATE "C" PRIMARY KEY,
  kind TEXT NOT NULL,
  subject TEXT NOT NULL,
  due TEXT COLLATE "C" NOT NULL,
  payload TEXT NOT NULL,
  status TEXT NOT NULL,
  scheduled TEXT NOT NULL,
  settled TEXT NOT NULL DEFAULT ''
);
-- the runner's question: what is pending and due by now, earliest first
CREATE INDEX timers_pending_due ON timers(due, key) WHERE status = 'pending';
CREATE INDEX timers_by_subject ON timers(kind, subject, due);
)sql"},
      // The embedded store's layout 8 (issue 16): the audit columns of IHE
      // BALP and the hash chain (numbered by the writer in commit order from
      // here on: seq is given, not drawn from the sequence), checkpoints, the
      // writer of each version, and what the console shows of a kept message.
      {3, R"sql(
ALTER TABLE audit ADD COLUMN person TEXT NOT NULL DEFAULT '',
                  ADD COLUMN channel TEXT NOT NULL DEFAULT '',
                  ADD COLUMN purpose TEXT NOT NULL DEFAULT '',
                  ADD COLUMN src_ods TEXT NOT NULL DEFAULT '',
                  ADD COLUMN src_system TEXT NOT NULL DEFAULT '',
                  ADD COLUMN topic TEXT NOT NULL DEFAULT '',
                  ADD COLUMN latency_ms BIGINT NOT NULL DEFAULT 0,
                  ADD COLUMN items BIGINT NOT NULL DEFAULT 0,
                  ADD COLUMN chain BYTEA;
CREATE TABLE audit_checkpoint(
  seq BIGINT PRIMARY KEY,
  ts TEXT NOT NULL,
  chain BYTEA NOT NULL,
  signature BYTEA NOT NULL,
  signer TEXT NOT NULL
);
ALTER TABLE ver ADD COLUMN src TEXT NOT NULL DEFAULT '';
ALTER TABLE inbound ADD COLUMN kind TEXT NOT NULL DEFAULT '',
                    ADD COLUMN answer TEXT NOT NULL DEFAULT '',
                    ADD COLUMN written TEXT NOT NULL DEFAULT '';
)sql", chain_existing_audit},
      // The embedded store's layout 9 (issue 12): a `subject` reference to a
      // Patient is one index row, which answers `patient` searches too
      // (store/index_keys.h); the duplicate `patient` rows go.
      {4, R"sql(
DELETE FROM idx p USING idx s
 WHERE p.param = 'patient' AND s.param = 'subject' AND s.value = p.value AND s.type = p.type
   AND s.system = p.system AND s.rid = p.rid;
)sql", drop_patient_duplicate_keys},
  };
  return steps;
}

Result<MigrationRun> run_migrations(Conn& c, const std::string& now_iso, bool dry_run) {
  // A session lock, taken before the transaction so that a node that waited
  // for another's migration then sees its schema_version rows.
  if (auto r = c.exec("SELECT pg_advisory_lock($1, hashtext(current_schema()))",
                      Params().add(int64_t{kMigrationLock}));
      !r) {
    return r.error();
  }
  auto unlock = [&c] {
    (void)c.exec("SELECT pg_advisory_unlock($1, hashtext(current_schema()))", Params().add(int64_t{kMigrationLock}));
  };
  auto fail = [&](Error e) -> Result<MigrationRun> {
    (void)c.run("ROLLBACK");
    unlock();
    return e;
  };
  if (auto r = c.run("BEGIN"); !r) return fail(r.error());
  if (auto r = c.run("CREATE TABLE IF NOT EXISTS schema_version(version INTEGER PRIMARY KEY, applied TEXT NOT NULL)");
      !r) {
    return fail(r.error());
  }
  auto cur = c.exec("SELECT COALESCE(MAX(version), 0) FROM schema_version");
  if (!cur) return fail(cur.error());
  MigrationRun run;
  run.from = cur->int64(0, 0);
  run.known = migrations().back().version;
  if (run.from > run.known) {
    return fail(make_error(Errc::conflict, "the store is at schema version " + std::to_string(run.from) +
                                          " and this gateway knows versions up to " + std::to_string(run.known) +
                                          ": it was written by a newer gateway, and a downgrade is not supported "
                                          "(restore the backup taken before the upgrade, or install the newer version)"));
  }
  for (const auto& m : migrations()) {
    if (m.version <= run.from) continue;
    auto r = c.run(m.sql);
    if (r && m.step) r = m.step(c);
    if (!r) {
      Error e = r.error();
      e.message = "migration " + std::to_string(m.version) + ": " + e.message;
      return fail(std::move(e));
    }
    if (auto r = c.exec("INSERT INTO schema_version(version, applied) VALUES($1, $2)",
                        Params().add(int64_t{m.version}).add(now_iso));
        !r) {
      return fail(r.error());
    }
    run.steps.push_back(m.version);
  }
  if (auto r = c.run(dry_run ? "ROLLBACK" : "COMMIT"); !r) return fail(r.error());
  unlock();
  return run;
}

Result<int> migrate(Conn& c, const std::string& now_iso) {
  auto run = run_migrations(c, now_iso, false);
  if (!run) return run.error();
  return static_cast<int>(run->steps.size());
}

}  // namespace gw::store::pg
