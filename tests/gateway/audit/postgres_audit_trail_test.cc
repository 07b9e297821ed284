// The audit trail on PostgreSQL (the pg: run only): numbered and chained in
// commit order by whichever node commits, every BALP column kept, the rows
// written before the chain existed chained by the migration, and `audit
// verify --store-conninfo` naming the first record an insider changed with
// plain SQL — as audit_trail_test.cc shows for the embedded store's file.
#include <gtest/gtest.h>

#include <future>

#include "gateway/audit/verify.h"
#include "gateway/store/audit_chain.h"
#include "gateway/store/postgres/audit_trail.h"
#include "gateway/store/postgres/pg.h"
#include "gateway/store/postgres/schema.h"
#include "gateway/store/store.h"
#include "tests/support/gateway_process.h"
#include "tests/support/test_gateway.h"
#include "tests/support/test_store.h"

namespace gw::audit {
namespace {

store::AuditRow row(int i, const std::string& node) {
  store::AuditRow a;
  a.actor_ods = "A81001";
  a.actor_role = "gp";
  a.actor_system = node;
  a.action = i % 2 ? "read" : "notify";
  a.entity = "Patient/p" + std::to_string(i);
  a.patient_ref = "Patient/p" + std::to_string(i);
  a.outcome = "success";
  a.http_status = 200;
  a.request_id = "req-" + std::to_string(i);
  a.person = "user-" + std::to_string(i);
  a.channel = "rest-hook";
  a.purpose = "TREAT";
  a.src_ods = "RXX";
  a.src_system = "src";
  a.topic = "relapse-indicator";
  a.latency_ms = 1234 + i;
  a.items = i;
  return a;
}

class PostgresAuditTrail : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(test::on_postgres()) << "a PostgreSQL suite: run with --gw-store=postgresql (ctest's pg: run)";
    db_ = dir_.path() + "/gateway.db";
    conninfo_ = test::pg_conninfo_for(db_);
  }

  std::unique_ptr<store::Store> open() {
    store::SqliteOptions o;
    o.path = db_;
    return test::open_store(o);
  }

  static Result<store::CommitOutcome> commit(store::Store& s, store::UnitOfWork u) {
    std::promise<Result<store::CommitOutcome>> p;
    auto f = p.get_future();
    auto q = s.commit(std::move(u), [&p](Result<store::CommitOutcome> r) { p.set_value(std::move(r)); });
    if (!q) return q.error();
    return f.get();
  }

  VerifyResult verify() {
    VerifyOptions o;
    o.conninfo = conninfo_;
    return verify_trail(o);
  }

  void sql(const std::string& text) {
    auto c = store::pg::Conn::open(conninfo_);
    ASSERT_TRUE(c.has_value()) << c.error().message;
    auto r = (*c)->run(text);
    ASSERT_TRUE(r.has_value()) << r.error().message;
  }

  test::TempDir dir_;
  std::string db_, conninfo_;
};

TEST_F(PostgresAuditTrail, TwoNodesChainOneTrailThatVerifiesAndNamesAnEditedRecord) {
  auto a = open();
  auto b = open();  // a second node on the same schema
  for (int i = 1; i <= 12; ++i) {
    store::UnitOfWork u;
    u.audit.push_back(row(i, i % 2 ? "node-a" : "node-b"));
    if (i == 5) u.audit.push_back(row(100 + i, "node-a"));  // two rows in one unit
    ASSERT_TRUE(commit(i % 2 ? *a : *b, std::move(u)).has_value()) << i;
  }
  // A unit that fails after its audit row was inserted (its checkpoint names
  // a record not yet written) leaves no hole: the row, the numbering and the
  // chain go back with the savepoint.
  {
    store::UnitOfWork u;
    u.audit.push_back(row(50, "node-a"));
    store::AuditCheckpoint cp;
    cp.seq = 999;
    cp.chain = std::string(store::audit_chain::kHashBytes, 'x');
    u.audit_checkpoint = cp;
    auto failed = commit(*a, std::move(u));
    ASSERT_FALSE(failed.has_value());
    EXPECT_EQ(failed.error().code, Errc::invalid_input);
  }
  {
    store::UnitOfWork u;
    u.audit.push_back(row(13, "node-b"));
    ASSERT_TRUE(commit(*b, std::move(u)).has_value());
  }
  a->close();
  b->close();
  EXPECT_EQ(test::store_scalar(db_, "SELECT count(*) FROM audit"), 14);
  EXPECT_EQ(test::store_scalar(db_, "SELECT max(seq) FROM audit"), 14) << "numbered without gaps across nodes";
  // Every BALP column is kept (the data-flow reports group by them).
  EXPECT_EQ(test::store_scalar(db_, "SELECT count(*) FROM audit WHERE person LIKE 'user-%' AND channel = 'rest-hook' "
                                    "AND purpose = 'TREAT' AND src_ods = 'RXX' AND topic = 'relapse-indicator' "
                                    "AND latency_ms > 1234 AND chain IS NOT NULL"),
            14);
  auto v = verify();
  EXPECT_EQ(v.exit_code, 0) << v.report;
  EXPECT_NE(v.report.find("records: 14 (1 to 14)"), std::string::npos) << v.report;

  sql("UPDATE audit SET person = 'someone-else' WHERE seq = 6");
  v = verify();
  EXPECT_EQ(v.exit_code, 1) << v.report;
  EXPECT_NE(v.report.find("first bad record 6"), std::string::npos) << v.report;
}

TEST_F(PostgresAuditTrail, ADeletedRecordAndTheTrailSearchAndSummary) {
  auto s = open();
  for (int i = 1; i <= 6; ++i) {
    store::UnitOfWork u;
    u.audit.push_back(row(i, "node-a"));
    ASSERT_TRUE(commit(*s, std::move(u)).has_value());
  }
  store::AuditQuery q;
  q.agents = {"user-3"};
  auto page = s->search_audit(q);
  ASSERT_TRUE(page.has_value()) << page.error().message;
  ASSERT_EQ(page->items.size(), 1u);
  EXPECT_EQ(page->items[0].patient_ref, "Patient/p3");
  EXPECT_EQ(page->total.value_or(-1), 1);
  q = {};
  q.actions = {"notify"};
  q.count = 2;
  page = s->search_audit(q);
  ASSERT_TRUE(page.has_value()) << page.error().message;
  EXPECT_EQ(page->items.size(), 2u);
  EXPECT_EQ(page->total.value_or(-1), 3);
  EXPECT_EQ(page->items[0].seq, 6) << "newest first";
  auto one = s->audit_record(page->items[0].seq);
  ASSERT_TRUE(one.has_value());
  EXPECT_EQ(one->chain.size(), store::audit_chain::kHashBytes);

  store::AuditSummaryQuery sq;
  sq.ts_from = "2000-01-01T00:00:00Z";
  sq.ts_to = "2100-01-01T00:00:00Z";
  auto groups = s->summarise_audit(sq);
  ASSERT_TRUE(groups.has_value()) << groups.error().message;
  int64_t events = 0, notify = 0;
  for (const auto& g : *groups) {
    events += g.events;
    if (g.action == "notify") {
      notify += g.events;
      // Delivered notifications' latency to two significant figures, as the embedded store groups it.
      EXPECT_EQ(g.latency_ms, 1200);
    } else {
      EXPECT_EQ(g.latency_ms, 0);
    }
  }
  EXPECT_EQ(events, 6);
  EXPECT_EQ(notify, 3);
  s->close();

  sql("DELETE FROM audit WHERE seq = 4");
  auto v = verify();
  EXPECT_EQ(v.exit_code, 1) << v.report;
  EXPECT_NE(v.report.find("first bad record 4"), std::string::npos) << v.report;
}

// A schema written before the chain (step 2): its rows are chained by step 3
// and a "migration" checkpoint states the chain at the last of them; rows
// written after go on from there, and the whole trail verifies.
TEST_F(PostgresAuditTrail, RowsWrittenBeforeTheChainAreChainedByTheMigration) {
  {
    auto c = store::pg::Conn::open(conninfo_);
    ASSERT_TRUE(c.has_value());
    ASSERT_TRUE((*c)->run("CREATE TABLE schema_version(version INTEGER PRIMARY KEY, applied TEXT NOT NULL)").has_value());
    for (const auto& m : store::pg::migrations()) {
      if (m.version > 2) break;
      ASSERT_TRUE((*c)->run(m.sql).has_value()) << m.version;
      ASSERT_TRUE((*c)->run("INSERT INTO schema_version VALUES(" + std::to_string(m.version) + ", 'old')").has_value());
    }
    for (int i = 1; i <= 3; ++i) {
      ASSERT_TRUE((*c)->run("INSERT INTO audit(ts, actor_ods, actor_role, actor_system, action, entity, outcome, "
                            "http_status, request_id, detail, patient_ref) VALUES('2026-01-0" +
                            std::to_string(i) + "T00:00:00.000Z', 'A81001', 'gp', 's', 'read', 'Patient/x', "
                            "'success', 200, 'r', '', 'Patient/x')")
                      .has_value());
    }
  }
  auto s = open();
  EXPECT_EQ(test::store_scalar(db_, "SELECT count(*) FROM audit_checkpoint WHERE seq = 3 AND signer = 'migration'"),
            1);
  store::UnitOfWork u;
  u.audit.push_back(row(4, "node-a"));
  ASSERT_TRUE(commit(*s, std::move(u)).has_value());
  s->close();
  EXPECT_EQ(test::store_scalar(db_, "SELECT max(seq) FROM audit"), 4);
  auto v = verify();
  EXPECT_EQ(v.exit_code, 0) << v.report;
  EXPECT_NE(v.report.find("records: 4 (1 to 4)"), std::string::npos) << v.report;

  // The command line, as an auditor would run it.
  std::string out;
  EXPECT_EQ(test::run_gateway_command({"audit", "verify", "--store-conninfo", conninfo_}, out), 0) << out;
  EXPECT_NE(out.find("intact"), std::string::npos) << out;
  sql("UPDATE audit SET ts = '2026-01-02T12:00:00.000Z' WHERE seq = 2");
  out.clear();
  EXPECT_EQ(test::run_gateway_command({"audit", "verify", "--store-conninfo", conninfo_}, out), 1) << out;
  EXPECT_NE(out.find("first bad record 2"), std::string::npos) << out;
}

}  // namespace
}  // namespace gw::audit
