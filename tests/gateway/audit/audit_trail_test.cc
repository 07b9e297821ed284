// The audit trail as the store writes it: numbered and chained in commit
// order, in the same transaction as the change it records, and verifiable
// from the database file alone. Tampering is done the way an insider would,
// with plain SQL on the file; verification must name the first bad record.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <future>
#include <set>
#include <regex>
#include <fstream>

#include "gateway/audit/audit_rows.h"
#include "gateway/audit/balp.h"
#include "gateway/audit/checkpoints.h"
#include "gateway/audit/verify.h"
#include "gateway/common/clock.h"
#include "gateway/common/json.h"
#include "gateway/common/metrics.h"
#include "gateway/store/audit_chain.h"
#include "gateway/store/sqlite/audit_trail.h"
#include "gateway/store/store.h"
#include "tests/support/pki.h"

namespace gw::audit {
namespace {

namespace fs = std::filesystem;

store::AuditRow some_row(int i) {
  store::AuditRow a;
  a.actor_ods = "A81001";
  a.actor_role = "gp";
  a.actor_system = "sys-1";
  a.action = i % 2 ? "read" : "search";
  a.entity = "Patient/p" + std::to_string(i);
  a.patient_ref = "Patient/p" + std::to_string(i);
  a.outcome = "success";
  a.http_status = 200;
  a.request_id = "req-" + std::to_string(i);
  a.channel = "rest";
  a.purpose = "TREAT";
  return a;
}

class AuditTrailTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "gw-audit-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = (dir_ / "gateway.db").string();
  }
  void TearDown() override {
    close();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  store::Store& open() {
    store::SqliteOptions o;
    o.path = path_;
    store_ = store::open_sqlite(o);
    return *store_;
  }
  void close() {
    if (store_) store_->close();
    store_.reset();
  }

  Result<store::CommitOutcome> commit(store::UnitOfWork u) {
    std::promise<Result<store::CommitOutcome>> p;
    auto f = p.get_future();
    auto q = store_->commit(std::move(u), [&p](Result<store::CommitOutcome> r) { p.set_value(std::move(r)); });
    if (!q) return q.error();
    return f.get();
  }

  // n units of one audit row each, rows numbered from `first`.
  void write_rows(int n, int first = 1) {
    for (int i = 0; i < n; ++i) {
      store::UnitOfWork u;
      u.audit.push_back(some_row(first + i));
      ASSERT_TRUE(commit(std::move(u)).has_value());
    }
  }

  // Plain SQL on the file, as with the sqlite3 shell.
  void sql(const std::string& text) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    int rc = sqlite3_exec(db, text.c_str(), nullptr, nullptr, &err);
    std::string msg = err ? err : "";
    sqlite3_free(err);
    sqlite3_close(db);
    ASSERT_EQ(rc, SQLITE_OK) << msg;
  }

  VerifyResult verify(const std::string& ca = {}) {
    VerifyOptions o;
    o.db_path = path_;
    o.ca_file = ca;
    return verify_trail(o);
  }

  fs::path dir_;
  std::string path_;
  std::unique_ptr<store::Store> store_;
};

TEST_F(AuditTrailTest, AnUntouchedTrailVerifiesAcrossRestarts) {
  open();
  write_rows(5);
  close();
  open();  // the writer picks the chain up where it stopped
  write_rows(4, 6);
  close();
  auto r = store::sqlite::verify_audit_file(path_);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_TRUE(r->findings.empty()) << r->findings.front().what;
  EXPECT_EQ(r->records, 9);
  EXPECT_EQ(r->first_seq, 1);
  EXPECT_EQ(r->last_seq, 9);
  auto v = verify();
  EXPECT_EQ(v.exit_code, 0) << v.report;
  EXPECT_NE(v.report.find("intact"), std::string::npos) << v.report;
  EXPECT_EQ(v.report.find("Patient/"), std::string::npos) << "the report names records, not people";
}

TEST_F(AuditTrailTest, ManyRowsInOneGroupCommitChainInOrder) {
  open();
  // Units queued together are committed in one transaction by the writer;
  // each row still chains to the one before.
  std::vector<std::future<Result<store::CommitOutcome>>> pending;
  std::vector<std::shared_ptr<std::promise<Result<store::CommitOutcome>>>> promises;
  for (int i = 0; i < 50; ++i) {
    auto p = std::make_shared<std::promise<Result<store::CommitOutcome>>>();
    pending.push_back(p->get_future());
    store::UnitOfWork u;
    u.audit.push_back(some_row(i));
    u.audit.push_back(some_row(i + 1000));
    ASSERT_TRUE(store_->commit(std::move(u), [p](Result<store::CommitOutcome> r) { p->set_value(std::move(r)); }));
    promises.push_back(p);
  }
  for (auto& f : pending) ASSERT_TRUE(f.get().has_value());
  close();
  auto v = verify();
  EXPECT_EQ(v.exit_code, 0) << v.report;
  EXPECT_NE(v.report.find("records: 100 (1 to 100)"), std::string::npos) << v.report;
}

TEST_F(AuditTrailTest, AFailedUnitLeavesNoHoleInTheChain) {
  open();
  write_rows(2);
  // A unit that fails after its audit row was inserted (its checkpoint names
  // a record not yet written): the row goes with the rollback, and the
  // numbering and chain go back with it.
  store::UnitOfWork bad;
  bad.audit.push_back(some_row(3));
  store::AuditCheckpoint cp;
  cp.seq = 999;
  cp.chain = std::string(store::audit_chain::kHashBytes, 'x');
  bad.audit_checkpoint = cp;
  auto failed = commit(std::move(bad));
  ASSERT_FALSE(failed.has_value());
  EXPECT_EQ(failed.error().code, Errc::invalid_input);
  write_rows(2, 4);
  close();
  auto v = verify();
  EXPECT_EQ(v.exit_code, 0) << v.report;
  EXPECT_NE(v.report.find("records: 4 (1 to 4)"), std::string::npos) << v.report;
}

TEST_F(AuditTrailTest, AnEditedRecordIsNamed) {
  open();
  write_rows(6);
  close();
  sql("UPDATE audit SET actor_ods = 'Y99999' WHERE seq = 4");
  auto v = verify();
  EXPECT_EQ(v.exit_code, 1) << v.report;
  EXPECT_NE(v.report.find("first bad record 4:"), std::string::npos) << v.report;
  // Only the edited record is named: the ones after it still chain to what was stored.
  EXPECT_EQ(v.report.find("record 5"), std::string::npos) << v.report;
}

TEST_F(AuditTrailTest, AnEditedTimestampIsNamed) {
  open();
  write_rows(3);
  close();
  sql("UPDATE audit SET ts = '2020-01-01T00:00:00.000Z' WHERE seq = 2");
  auto v = verify();
  EXPECT_EQ(v.exit_code, 1) << v.report;
  EXPECT_NE(v.report.find("first bad record 2:"), std::string::npos) << v.report;
}

TEST_F(AuditTrailTest, ADeletedRecordIsNamed) {
  open();
  write_rows(6);
  close();
  sql("DELETE FROM audit WHERE seq = 3");
  auto v = verify();
  EXPECT_EQ(v.exit_code, 1) << v.report;
  EXPECT_NE(v.report.find("first bad record 3: record 3 is missing"), std::string::npos) << v.report;
}

TEST_F(AuditTrailTest, AnInsertedRecordIsNamed) {
  open();
  write_rows(4);
  close();
  // Renumber to make room and insert a forged row, copying a real chain value.
  sql("UPDATE audit SET seq = seq + 100 WHERE seq >= 3;"
      "UPDATE audit SET seq = seq - 99 WHERE seq >= 103;"
      "INSERT INTO audit(seq, ts, actor_ods, actor_role, actor_system, action, entity, outcome, http_status, "
      "request_id, detail, patient_ref, chain) SELECT 3, ts, 'X1', 'gp', 's', 'read', 'Patient/z', 'success', 200, "
      "'', '', 'Patient/z', chain FROM audit WHERE seq = 2");
  auto v = verify();
  EXPECT_EQ(v.exit_code, 1) << v.report;
  EXPECT_NE(v.report.find("first bad record 3:"), std::string::npos) << v.report;
}

TEST_F(AuditTrailTest, ARowWithoutAChainValueIsNamed) {
  open();
  write_rows(3);
  close();
  sql("INSERT INTO audit(seq, ts, actor_ods, actor_role, actor_system, action, entity, outcome, http_status, "
      "request_id, detail, patient_ref) VALUES(4, '2099-01-01T00:00:00.000Z', 'X1', 'gp', 's', 'read', 'Patient/z', "
      "'success', 200, '', '', 'Patient/z')");
  auto v = verify();
  EXPECT_EQ(v.exit_code, 1) << v.report;
  EXPECT_NE(v.report.find("first bad record 4: record 4 has no chain value"), std::string::npos) << v.report;
}

TEST_F(AuditTrailTest, AnAnchorKeptElsewhereCatchesARewrittenTrail) {
  open();
  write_rows(5);
  close();
  auto before = store::sqlite::verify_audit_file(path_);
  ASSERT_TRUE(before.has_value());
  auto anchor = parse_anchor("5:" + before->head);
  ASSERT_TRUE(anchor.has_value());
  // Rewrite record 2 and recompute every chain value after it, as someone
  // who knows the algorithm (it is documented) would: the chain alone
  // verifies again; the anchor does not.
  sql("UPDATE audit SET actor_ods = 'Y99999' WHERE seq = 2");
  {
    // Recompute with the engine-independent code and write the values back.
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    std::string prev = store::audit_chain::genesis();
    for (int seq = 1; seq <= 5; ++seq) {
      store::AuditRecord r;
      sqlite3_stmt* st = nullptr;
      ASSERT_EQ(sqlite3_prepare_v2(db,
                                   "SELECT ts, actor_ods, actor_role, actor_system, action, entity, outcome, "
                                   "http_status, request_id, detail, patient_ref, person, channel, purpose, src_ods, "
                                   "src_system, topic, latency_ms, items FROM audit WHERE seq = ?1",
                                   -1, &st, nullptr),
                SQLITE_OK);
      sqlite3_bind_int64(st, 1, seq);
      ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
      auto text = [&](int i) { return std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, i))); };
      r.seq = seq;
      r.ts = text(0);
      r.actor_ods = text(1);
      r.actor_role = text(2);
      r.actor_system = text(3);
      r.action = text(4);
      r.entity = text(5);
      r.outcome = text(6);
      r.http_status = sqlite3_column_int(st, 7);
      r.request_id = text(8);
      r.detail = text(9);
      r.patient_ref = text(10);
      r.person = text(11);
      r.channel = text(12);
      r.purpose = text(13);
      r.src_ods = text(14);
      r.src_system = text(15);
      r.topic = text(16);
      r.latency_ms = sqlite3_column_int64(st, 17);
      r.items = sqlite3_column_int64(st, 18);
      sqlite3_finalize(st);
      prev = store::audit_chain::next(prev, r);
      ASSERT_EQ(sqlite3_prepare_v2(db, "UPDATE audit SET chain = ?1 WHERE seq = ?2", -1, &st, nullptr), SQLITE_OK);
      sqlite3_bind_blob(st, 1, prev.data(), static_cast<int>(prev.size()), SQLITE_TRANSIENT);
      sqlite3_bind_int64(st, 2, seq);
      ASSERT_EQ(sqlite3_step(st), SQLITE_DONE);
      sqlite3_finalize(st);
    }
    sqlite3_close(db);
  }
  EXPECT_EQ(verify().exit_code, 0) << "without a checkpoint or anchor a recomputed chain is consistent";
  VerifyOptions o;
  o.db_path = path_;
  o.anchor = anchor;
  auto v = verify_trail(o);
  EXPECT_EQ(v.exit_code, 1) << v.report;
  EXPECT_NE(v.report.find("the anchor given for record 5 does not match"), std::string::npos) << v.report;
}

TEST_F(AuditTrailTest, SignedCheckpointsVerifyAndCatchDeletionFromTheEnd) {
  const std::string& pki = test::dev_pki_dir();
  open();
  write_rows(4);
  metrics::Registry reg;
  Checkpointer cps(*store_, CheckpointOptions{pki + "/server.pem", pki + "/server.key", std::chrono::hours(1)}, reg);
  auto cp = cps.checkpoint_now();
  ASSERT_TRUE(cp.has_value()) << cp.error().message;
  ASSERT_TRUE(cp->has_value());
  EXPECT_EQ((*cp)->seq, 4);
  auto again = cps.checkpoint_now();
  ASSERT_TRUE(again.has_value());
  EXPECT_FALSE(again->has_value()) << "nothing new since the last checkpoint";
  write_rows(2, 5);
  close();

  auto v = verify(pki + "/ca.pem");
  EXPECT_EQ(v.exit_code, 0) << v.report;
  EXPECT_NE(v.report.find("1 signed and verified"), std::string::npos) << v.report;
  EXPECT_NE(v.report.find("1 matching the chain"), std::string::npos) << v.report;

  // A CA that did not issue the signer: the checkpoint is not to be trusted.
  auto other = verify(pki + "/other-ca.pem");
  EXPECT_EQ(other.exit_code, 1) << other.report;
  EXPECT_NE(other.report.find("does not chain to the CA"), std::string::npos) << other.report;

  // The last records and the tail up to the checkpoint are deleted: the
  // checkpoint still names record 4.
  sql("DELETE FROM audit WHERE seq >= 3");
  auto cut = verify(pki + "/ca.pem");
  EXPECT_EQ(cut.exit_code, 1) << cut.report;
  EXPECT_NE(cut.report.find("first bad record 3: records 3 to 4 are missing"), std::string::npos) << cut.report;
}

TEST_F(AuditTrailTest, AForgedCheckpointSignatureIsCaught) {
  const std::string& pki = test::dev_pki_dir();
  open();
  write_rows(3);
  metrics::Registry reg;
  Checkpointer cps(*store_, CheckpointOptions{pki + "/server.pem", pki + "/server.key", std::chrono::hours(1)}, reg);
  ASSERT_TRUE(cps.checkpoint_now().has_value());
  close();
  // The checkpoint is moved to claim another chain value: its signature no
  // longer covers what it states.
  sql("UPDATE audit_checkpoint SET chain = (SELECT chain FROM audit WHERE seq = 2), seq = 2 WHERE seq = 3");
  auto v = verify(pki + "/ca.pem");
  EXPECT_EQ(v.exit_code, 1) << v.report;
  EXPECT_NE(v.report.find("signature does not match"), std::string::npos) << v.report;
}

// Audit retention (docs/AUDIT.md "Retention"): whole checkpointed segments
// are pruned and the checkpoint at the last pruned record is kept, so
// `audit verify` starts the kept trail from it and still catches an edit or a
// deletion in what is kept.
TEST_F(AuditTrailTest, RetentionPrunesWholeCheckpointedSegmentsAndTheTrailStillVerifies) {
  const std::string& pki = test::dev_pki_dir();
  open();
  metrics::Registry reg;
  CheckpointOptions o{pki + "/server.pem", pki + "/server.key", std::chrono::hours(1)};
  o.retention_days = 30;
  Checkpointer cps(*store_, o, reg);
  write_rows(4);
  ASSERT_TRUE(cps.checkpoint_now().has_value());  // at 4
  write_rows(3, 5);
  ASSERT_TRUE(cps.checkpoint_now().has_value());  // at 7
  write_rows(2, 8);                                // 8, 9: after the last checkpoint

  // Nothing is older than 30 days yet.
  auto none = cps.prune_now(clock::now_ms());
  ASSERT_TRUE(none.has_value()) << none.error().message;
  EXPECT_EQ(*none, 0);
  // A unit may prune only up to a checkpoint.
  store::UnitOfWork bad;
  bad.audit_prune_through = 5;
  auto refused = commit(std::move(bad));
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, Errc::conflict);

  // 31 days on: everything up to the newest checkpoint made before then goes.
  auto pruned = cps.prune_now(clock::now_ms() + 31LL * 86'400'000);
  ASSERT_TRUE(pruned.has_value()) << pruned.error().message;
  EXPECT_EQ(*pruned, 7);
  close();
  open();  // the writer goes on numbering after the kept records
  write_rows(2, 20);
  close();
  auto v = verify(pki + "/ca.pem");
  EXPECT_EQ(v.exit_code, 0) << v.report;
  auto r = store::sqlite::verify_audit_file(path_);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->first_seq, 8);  // 8, 9, the retention's own row (10), 11, 12
  EXPECT_EQ(r->last_seq, 12);
  EXPECT_EQ(r->records, 5);
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT detail FROM audit WHERE seq = 10", -1, &st, nullptr), SQLITE_OK);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    std::string detail = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
    EXPECT_NE(detail.find("records 1 to 7 pruned"), std::string::npos) << detail;
  }

  // What is kept is still tamper-evident: an edit is named...
  sql("UPDATE audit SET actor_ods = 'X99999' WHERE seq = 9");
  auto edited = verify(pki + "/ca.pem");
  EXPECT_EQ(edited.exit_code, 1) << edited.report;
  EXPECT_NE(edited.report.find("first bad record 9"), std::string::npos) << edited.report;
  // ...and so is a record deleted from the start of the kept trail (no
  // checkpoint marks a pruning there).
  sql("UPDATE audit SET actor_ods = 'A81001' WHERE seq = 9; DELETE FROM audit WHERE seq = 8");
  auto cut = verify(pki + "/ca.pem");
  EXPECT_EQ(cut.exit_code, 1) << cut.report;
  EXPECT_NE(cut.report.find("no checkpoint marks where the kept trail starts"), std::string::npos) << cut.report;
}

// Operational pruning never touches the trail: the only statements in the
// gateway that delete from (or drop, or truncate) the audit tables are the
// retention's, in each store's audit writer.
TEST(AuditRetention, OnlyTheRetentionDeletesFromTheAuditTables) {
  std::regex del(R"re((DELETE\s+FROM|DROP\s+TABLE|UPDATE)\s+(audit|audit_checkpoint)\b)re", std::regex::icase);
  std::set<std::string> found;
  for (const auto& top : {"gateway", "adapters"}) {
    for (const auto& e : fs::recursive_directory_iterator(fs::path(GW_SOURCE_DIR) / top)) {
      if (!e.is_regular_file()) continue;
      auto ext = e.path().extension().string();
      if (ext != ".cc" && ext != ".h") continue;
      std::ifstream in(e.path());
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      for (std::sregex_iterator it(text.begin(), text.end(), del), end; it != end; ++it)
        found.insert(fs::relative(e.path(), GW_SOURCE_DIR).string() + ": " + it->str());
    }
  }
  std::set<std::string> expected = {"gateway/store/sqlite/audit_trail.cc: DELETE FROM audit",
                                    "gateway/store/sqlite/audit_trail.cc: DELETE FROM audit_checkpoint",
                                    "gateway/store/postgres/audit_trail.cc: DELETE FROM audit",
                                    "gateway/store/postgres/audit_trail.cc: DELETE FROM audit_checkpoint"};
  // The migrations (SQLite v8, PostgreSQL step 3) give old rows their chain
  // value (a new column): an UPDATE of the chain column only, checked by the
  // migrations' own tests.
  std::set<std::string> rest;
  for (const auto& f : found)
    if (!expected.count(f) && f.find("audit_trail.cc: UPDATE audit") == std::string::npos) rest.insert(f);
  EXPECT_TRUE(rest.empty()) << "something else changes or deletes audit rows: " << *rest.begin();
  for (const auto& e : expected) EXPECT_TRUE(found.count(e)) << e << " not found: the scan is not looking";
}

TEST_F(AuditTrailTest, NoRetentionSettingPrunesNothing) {
  const std::string& pki = test::dev_pki_dir();
  open();
  metrics::Registry reg;
  Checkpointer cps(*store_, CheckpointOptions{pki + "/server.pem", pki + "/server.key", std::chrono::hours(1)}, reg);
  write_rows(3);
  ASSERT_TRUE(cps.checkpoint_now().has_value());
  write_rows(1, 4);
  auto pruned = cps.prune_now(clock::now_ms() + 10LL * 366 * 86'400'000);
  ASSERT_TRUE(pruned.has_value());
  EXPECT_EQ(*pruned, 0);
  close();
  auto r = store::sqlite::verify_audit_file(path_);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->first_seq, 1);
  EXPECT_EQ(r->records, 4);
}

TEST_F(AuditTrailTest, AnUnreadableStoreExitsTwo) {
  VerifyOptions o;
  o.db_path = (dir_ / "absent.db").string();
  auto v = verify_trail(o);
  EXPECT_EQ(v.exit_code, 2) << v.report;
}

TEST(AuditAnchor, ParsesOnlyWellFormedText) {
  std::string hex(64, 'a');
  auto a = parse_anchor("12:" + hex);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->first, 12);
  EXPECT_EQ(a->second, std::string(32, '\xaa'));
  EXPECT_FALSE(parse_anchor("12" + hex).has_value());
  EXPECT_FALSE(parse_anchor("0:" + hex).has_value());
  EXPECT_FALSE(parse_anchor("x:" + hex).has_value());
  EXPECT_FALSE(parse_anchor("12:" + hex.substr(2)).has_value());
  EXPECT_FALSE(parse_anchor("12:" + std::string(62, 'a') + "zz").has_value());
}

TEST(AuditChain, CanonicalFormIsUnambiguous) {
  // Length-prefixed fields: moving a character across a field boundary
  // changes the hash.
  store::AuditRecord a, b;
  a.seq = b.seq = 1;
  a.actor_ods = "AB";
  a.actor_role = "C";
  b.actor_ods = "A";
  b.actor_role = "BC";
  EXPECT_NE(store::audit_chain::canonical(a), store::audit_chain::canonical(b));
  auto g = store::audit_chain::genesis();
  EXPECT_NE(store::audit_chain::next(g, a), store::audit_chain::next(g, b));
  EXPECT_EQ(store::audit_chain::next(g, a).size(), store::audit_chain::kHashBytes);
  EXPECT_EQ(store::audit_chain::next(g, a), store::audit_chain::next(g, a));
}

// ---- BALP shape ---------------------------------------------------------------

json::Document parse(const std::string& text) {
  json::Document d;
  d.Parse(text.c_str(), text.size());
  EXPECT_FALSE(d.HasParseError()) << text;
  return d;
}

std::string str(const json::Value& v, const char* k) {
  return v.HasMember(k) && v[k].IsString() ? std::string(v[k].GetString(), v[k].GetStringLength()) : std::string();
}

TEST(Balp, AReadHasTheRestTypeAndEveryRequiredElement) {
  store::AuditRecord r;
  static_cast<store::AuditRow&>(r) = some_row(1);  // a read of Patient/p1
  r.seq = 42;
  r.ts = "2026-12-07T11:00:00.000Z";
  auto d = parse(balp_event(r));
  ASSERT_TRUE(d.IsObject());
  EXPECT_EQ(str(d, "resourceType"), "AuditEvent");
  EXPECT_EQ(str(d, "id"), "trail-42");
  // AuditEvent's required elements (R4: type, recorded, agent 1..*, source).
  ASSERT_TRUE(d.HasMember("type"));
  EXPECT_EQ(str(d["type"], "system"), "http://terminology.hl7.org/CodeSystem/audit-event-type");
  EXPECT_EQ(str(d["type"], "code"), "rest");
  ASSERT_TRUE(d.HasMember("subtype") && d["subtype"].IsArray() && d["subtype"].Size() == 1);
  EXPECT_EQ(str(d["subtype"][0], "system"), "http://hl7.org/fhir/restful-interaction");
  EXPECT_EQ(str(d["subtype"][0], "code"), "read");
  EXPECT_EQ(str(d, "action"), "R");
  EXPECT_EQ(str(d, "recorded"), "2026-12-07T11:00:00.000Z");
  EXPECT_EQ(str(d, "outcome"), "0");
  ASSERT_TRUE(d.HasMember("purposeOfEvent"));
  EXPECT_EQ(str(d["purposeOfEvent"][0]["coding"][0], "system"),
            "http://terminology.hl7.org/CodeSystem/v3-ActReason");
  EXPECT_EQ(str(d["purposeOfEvent"][0]["coding"][0], "code"), "TREAT");
  ASSERT_TRUE(d.HasMember("agent") && d["agent"].IsArray() && d["agent"].Size() >= 2);
  // Every agent says whether it is the requestor (required in R4), and
  // exactly one of them is.
  int requestors = 0;
  for (const auto& a : d["agent"].GetArray()) {
    ASSERT_TRUE(a.HasMember("requestor") && a["requestor"].IsBool());
    if (a["requestor"].GetBool()) {
      ++requestors;
      EXPECT_EQ(str(a["who"]["identifier"], "system"), "https://fhir.nhs.uk/Id/ods-organization-code");
      EXPECT_EQ(str(a["who"]["identifier"], "value"), "A81001");
      EXPECT_EQ(str(a["type"]["coding"][0], "code"), "110153");  // BALP: the client is the source
    }
  }
  EXPECT_EQ(requestors, 1);
  ASSERT_TRUE(d.HasMember("source") && d["source"].HasMember("observer"));
  // BALP: the patient is an entity of type Person, role Patient.
  bool patient = false;
  for (const auto& e : d["entity"].GetArray()) {
    if (e.HasMember("what") && str(e["what"], "reference") == "Patient/p1") {
      patient = true;
      EXPECT_EQ(str(e["type"], "code"), "1");
      EXPECT_EQ(str(e["role"], "code"), "1");
    }
  }
  EXPECT_TRUE(patient);
}

TEST(Balp, ADeliveryNamesSourceAndDestination) {
  security::Principal la;
  la.ods = "LA001";
  la.role = "local-authority";
  la.system = "la-case";
  store::AuditRecord r;
  static_cast<store::AuditRow&>(r) = delivery(la, "cpis-access", "", "RX1|ed-system", Delivery::dead, 503, 1234,
                                              "Subscription/s1", "Patient/p9", kChannelRestHook);
  r.seq = 7;
  r.ts = "2026-12-07T11:00:00.000Z";
  auto d = parse(balp_event(r));
  EXPECT_EQ(str(d["type"], "code"), "110106");  // DICOM Export
  EXPECT_EQ(str(d["subtype"][0], "code"), "notify");
  EXPECT_EQ(str(d, "outcome"), "12") << "dead-lettered is a major failure";
  bool dest = false, src = false;
  for (const auto& a : d["agent"].GetArray()) {
    std::string code = str(a["type"]["coding"][0], "code");
    if (a["who"].HasMember("identifier")) {
      std::string ods = str(a["who"]["identifier"], "value");
      if (code == "110152" && ods == "LA001") dest = true;
      if (code == "110153" && ods == "RX1") src = true;
    }
  }
  EXPECT_TRUE(dest) << "the recipient is the destination";
  EXPECT_TRUE(src) << "the organisation whose record left is the source";
  bool channel = false;
  for (const auto& c : d["source"]["type"].GetArray())
    if (str(c, "code") == "rest-hook") channel = true;
  EXPECT_TRUE(channel);
}

TEST(Balp, SearchTokensMapToStoredValues) {
  EXPECT_EQ(action_of_subtype("read"), "read");
  EXPECT_EQ(action_of_subtype("search-type"), "search");
  EXPECT_FALSE(action_of_subtype("nonsense").has_value());
  auto exports = actions_of_type("110106");
  EXPECT_NE(std::find(exports.begin(), exports.end(), "notify"), exports.end());
  EXPECT_EQ(outcome_of_code("12"), "dead");
  EXPECT_FALSE(outcome_of_code("3").has_value());
  EXPECT_EQ(seq_of_trail_id("trail-17"), 17);
  EXPECT_FALSE(seq_of_trail_id("trail-0").has_value());
  EXPECT_FALSE(seq_of_trail_id("17").has_value());
}

}  // namespace
}  // namespace gw::audit
