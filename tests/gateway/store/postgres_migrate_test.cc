// `cpis-gateway migrate`: an embedded store copied into PostgreSQL, verified,
// and restartable after an interruption. Only in the PostgreSQL run of the
// suite (suites named Postgres*).
#include <gtest/gtest.h>

#include <future>

#include "gateway/store/postgres/import_sqlite.h"
#include "gateway/store/postgres/pg.h"
#include "gateway/store/store.h"
#include "tests/support/fixtures.h"
#include "tests/support/gateway_process.h"
#include "tests/support/test_gateway.h"
#include "tests/support/test_store.h"

namespace gw::store {
namespace {

Result<CommitOutcome> commit(Store& s, UnitOfWork u) {
  std::promise<Result<CommitOutcome>> p;
  auto f = p.get_future();
  auto q = s.commit(std::move(u), [&p](Result<CommitOutcome> r) { p.set_value(std::move(r)); });
  if (!q) return q.error();
  return f.get();
}

WriteOp patient(const std::string& id, const std::string& nhs, const std::string& body, bool sensitive = false) {
  WriteOp op;
  op.kind = OpKind::update;  // update-as-create, and an update when it exists
  op.type = "Patient";
  op.id = id;
  op.body = body;
  op.index.push_back({"identifier", "https://fhir.nhs.uk/Id/nhs-number", nhs});
  if (sensitive) op.index.push_back({"_security", "", "SEX"});
  op.unique_key = nhs;
  return op;
}

class PostgresMigrate : public ::testing::Test {
 protected:
  // An embedded store with a bit of everything, written through the Store.
  void SetUp() override {
    SqliteOptions so;
    so.path = source_.path() + "/gateway.db";
    auto s = open_sqlite(so);
    for (int i = 0; i < 12; ++i) {
      std::string nhs = test::nhs_number_for(8800 + i);
      UnitOfWork u;
      u.ops.push_back(patient("p" + std::to_string(i), nhs, "{\"resourceType\":\"Patient\",\"v\":1}", i % 4 == 0));
      u.audit.push_back(AuditRow{"A81001", "integration", "feed", "create", "Patient/p" + std::to_string(i), "success",
                                 201, "req-" + std::to_string(i), "detail " + std::to_string(i),
                                 "Patient/p" + std::to_string(i)});
      u.idempotency_key = "systmone|A81001|MSG" + std::to_string(i);
      InboundRow in;
      in.adapter = "systmone";
      in.channel = "mllp";
      in.control_id = "MSG" + std::to_string(i);
      in.status = "accepted";
      in.issues_json = "[]";
      in.raw = std::string("MSH|^~\\&|\xe9\x00\xff|", 13) + std::to_string(i);  // bytes as received, not UTF-8
      u.inbound.push_back(in);
      ASSERT_TRUE(commit(*s, std::move(u)).has_value());
    }
    ASSERT_TRUE(commit(*s, UnitOfWork{{patient("p1", test::nhs_number_for(8801), "{\"resourceType\":\"Patient\",\"v\":2}")},
                                      {}, {}, {}, {}, {}})
                    .has_value());
    WriteOp del;
    del.kind = OpKind::remove;
    del.type = "Patient";
    del.id = "p2";
    ASSERT_TRUE(commit(*s, UnitOfWork{{del}, {}, {}, {}, {}, {}}).has_value());
    UnitOfWork ev;
    ev.events.push_back(NewEvent{"sub-1", 3, "Patient", "p3", 1, "create", "Patient/p3", "id-only"});
    ev.events.push_back(NewEvent{"sub-1", 4, "Patient", "p4", 1, "create", "Patient/p4", "id-only"});
    ev.cursor = std::make_pair("subscriptions", 14);
    // Durable timers: one pending, one fired.
    ev.timer_sets.push_back(TimerSet{"lac-health-assessment", "CareTeam/ct1",
                                     {TimerRow{"ct1|due-soon", "", "", "2026-01-10T09:00:00Z", "{\"n\":1}"},
                                      TimerRow{"ct1|overdue", "", "", "2026-02-10T09:00:00Z", "{\"n\":2}"}}});
    ASSERT_TRUE(commit(*s, std::move(ev)).has_value());
    UnitOfWork fired;
    fired.timers_fired.push_back("ct1|due-soon");
    ASSERT_TRUE(commit(*s, std::move(fired)).has_value());
    source_changes_ = *s->changes_after(0, 1000);
    s->close();
  }

  pg::ImportOptions options() {
    pg::ImportOptions o;
    o.sqlite_path = source_.path() + "/gateway.db";
    o.conninfo = test::pg_conninfo_for(target_.path() + "/gateway.db");
    o.chunk_rows = 5;
    return o;
  }

  test::TempDir source_, target_;
  std::vector<ChangeRow> source_changes_;
};

TEST_F(PostgresMigrate, AnInterruptedRunGoesOnAndEverythingArrivesVerified) {
  pg::ImportOptions o = options();
  int chunks = 0;
  o.after_chunk = [&](const std::string&, int64_t) { return ++chunks < 4; };  // stop as a kill would
  auto first = pg::import_sqlite(o);
  ASSERT_TRUE(first.has_value()) << first.error().message;
  EXPECT_FALSE(first->verified);
  o.after_chunk = nullptr;
  auto second = pg::import_sqlite(o);
  ASSERT_TRUE(second.has_value()) << second.error().message;
  EXPECT_TRUE(second->verified);
  int64_t copied = 0;
  for (const auto& t : second->tables) {
    EXPECT_EQ(t.source_rows, t.target_rows) << t.table;
    copied += t.copied_now;
    if (t.table == "res" || t.table == "audit") {
      EXPECT_EQ(t.source_rows, 12) << t.table;
    }
  }
  EXPECT_GT(copied, 0);
  EXPECT_EQ(second->audit_digest_source, second->audit_digest_target);

  PostgresOptions po;
  po.conninfo = o.conninfo;
  auto s = open_postgres(po);
  // History, deletions, labels, keys, the feed and its cursors, events, raw bytes.
  auto h = s->history("Patient", "p1");
  ASSERT_TRUE(h.has_value());
  ASSERT_EQ(h->size(), 2u);
  EXPECT_NE((*h)[0].body.find("\"v\":2"), std::string::npos);
  EXPECT_EQ(s->read("Patient", "p2").error().code, Errc::gone);
  EXPECT_EQ(**s->find_by_unique_key(test::nhs_number_for(8803)), "p3");
  SearchQuery q;
  q.type = "Patient";
  q.exclude_security = {"SEX"};
  EXPECT_EQ(s->search(q)->total, 8);  // 11 live, 3 of them labelled
  auto feed = s->changes_after(0, 1000);
  ASSERT_TRUE(feed.has_value());
  ASSERT_EQ(feed->size(), source_changes_.size());
  for (size_t i = 0; i < feed->size(); ++i) {
    EXPECT_EQ((*feed)[i].seq, source_changes_[i].seq);
    EXPECT_EQ((*feed)[i].id, source_changes_[i].id);
    EXPECT_EQ((*feed)[i].interaction, source_changes_[i].interaction);
  }
  EXPECT_EQ(*s->cursor("subscriptions"), 14);
  EXPECT_EQ(s->event_counts("sub-1")->events, 2);
  auto timers = s->timers_of("lac-health-assessment", "CareTeam/ct1");
  ASSERT_TRUE(timers.has_value()) << timers.error().message;
  ASSERT_EQ(timers->size(), 2u);
  EXPECT_EQ((*timers)[0].status, "fired");
  EXPECT_EQ((*timers)[1].status, "pending");
  EXPECT_EQ((*timers)[1].payload, "{\"n\":2}");
  auto in = s->list_inbound("accepted", 100, 0);
  ASSERT_TRUE(in.has_value());
  ASSERT_EQ(in->size(), 12u);
  EXPECT_EQ(in->back().raw, std::string("MSH|^~\\&|\xe9\x00\xff|", 13) + "0");
  // The gateway goes on from there: new rows after the copied ones.
  UnitOfWork dup;
  dup.ops.push_back(patient("p99", test::nhs_number_for(8899), "{\"resourceType\":\"Patient\"}"));
  dup.idempotency_key = "systmone|A81001|MSG3";  // accepted before the move
  auto r = commit(*s, std::move(dup));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().expression, "idempotency-key");
  UnitOfWork next;
  next.ops.push_back(patient("p99", test::nhs_number_for(8899), "{\"resourceType\":\"Patient\"}"));
  next.events.push_back(NewEvent{"sub-1", 99, "Patient", "p99", 1, "create", "", "id-only"});
  auto c = commit(*s, std::move(next));
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->event_numbers[0], 3);
  EXPECT_GT(s->changes_after(source_changes_.back().seq, 10)->size(), 0u);
  s->close();
}

TEST_F(PostgresMigrate, AChangedAuditRowOrAForeignTargetIsCaught) {
  pg::ImportOptions o = options();
  ASSERT_TRUE(pg::import_sqlite(o)->verified);
  auto c = pg::Conn::open(o.conninfo);
  ASSERT_TRUE(c.has_value());
  ASSERT_TRUE((*c)->run("UPDATE audit SET detail = 'altered' WHERE seq = 5").has_value());
  auto again = pg::import_sqlite(o);
  ASSERT_TRUE(again.has_value());
  EXPECT_FALSE(again->verified) << "an altered audit row went unnoticed";
  EXPECT_NE(again->audit_digest_source, again->audit_digest_target);
  // A database that holds a gateway's data but no migration of this one.
  ASSERT_TRUE((*c)->run("DROP TABLE migrate_progress").has_value());
  auto foreign = pg::import_sqlite(o);
  ASSERT_FALSE(foreign.has_value());
  EXPECT_EQ(foreign.error().code, Errc::conflict);
}

TEST_F(PostgresMigrate, TheCommandCopiesAndSaysVerified) {
  std::string out;
  int rc = test::run_gateway_command({"migrate", "--from-data-dir", source_.path(), "--to-postgresql",
                                      test::pg_conninfo_for(target_.path() + "/gateway.db")},
                                     out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("copied and verified"), std::string::npos) << out;
  EXPECT_EQ(out.find("MISMATCH"), std::string::npos) << out;
  EXPECT_EQ(test::run_gateway_command({"migrate", "--from-data-dir", target_.path(), "--to-postgresql", "x"}, out), 2);
}

}  // namespace
}  // namespace gw::store
