#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <atomic>
#include <set>
#include <chrono>
#include <filesystem>
#include <future>
#include <latch>
#include <stdexcept>
#include <thread>

#include "gateway/common/metrics.h"
#include "gateway/store/index_keys.h"
#include "gateway/store/postgres/pg.h"
#include "gateway/store/sqlite/connection.h"
#include "gateway/store/sqlite/schema.h"
#include "gateway/store/store.h"
#include "tests/support/test_store.h"

namespace gw::store {
namespace {

namespace fs = std::filesystem;

constexpr const char* kNhs = "https://fhir.nhs.uk/Id/nhs-number";

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "gw-store-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = (dir_ / "store.db").string();
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  Store& open(SqliteOptions o = {}) {
    o.path = path_;
    store_ = test::open_store(o);  // the engine this run of the suite is for
    return *store_;
  }

  // Commits and waits for the durable outcome.
  Result<CommitOutcome> commit(UnitOfWork u) {
    std::promise<Result<CommitOutcome>> p;
    auto f = p.get_future();
    auto q = store_->commit(std::move(u), [&p](Result<CommitOutcome> r) { p.set_value(std::move(r)); });
    if (!q) return q.error();
    return f.get();
  }
  Result<CommitOutcome> commit(WriteOp op) {
    UnitOfWork u;
    u.ops.push_back(std::move(op));
    return commit(std::move(u));
  }

  // Runs a query on a connection of its own, as an auditor would (sqlite3 or psql).
  int64_t scalar(const std::string& sql) { return test::store_scalar(path_, sql); }
  // Statements on a connection of its own, on this run's engine.
  void exec_sql(const std::string& sql) {
    if (test::on_postgres()) {
      auto c = pg::Conn::open(test::pg_conninfo_for(path_));
      ASSERT_TRUE(c.has_value()) << c.error().message;
      auto r = (*c)->run(sql);
      ASSERT_TRUE(r.has_value()) << sql << ": " << r.error().message;
    } else {
      auto c = sqlite::Connection::open(path_, sqlite::Connection::Mode::read_write_create, 1000);
      ASSERT_TRUE(c.has_value()) << c.error().message;
      auto r = (*c)->exec(sql);
      ASSERT_TRUE(r.has_value()) << sql << ": " << r.error().message;
    }
  }
  // Ids of `type` whose `param` has `value` (system any).
  std::set<std::string> ids_where(const std::string& type, const std::string& param, const std::string& value,
                                  MatchKind kind = MatchKind::exact) {
    SearchQuery q;
    q.type = type;
    q.params.push_back(ParamConstraint{param, {{"", value}}, kind});
    q.count = 100;
    auto page = store_->search(q);
    EXPECT_TRUE(page.has_value());
    std::set<std::string> out;
    if (page)
      for (const auto& r : page->items) out.insert(r.id);
    return out;
  }

  fs::path dir_;
  std::string path_;
  std::unique_ptr<Store> store_;
};

WriteOp patient(const std::string& id, const std::string& nhs, const std::string& local = "") {
  WriteOp op;
  op.kind = OpKind::create;
  op.type = "Patient";
  op.id = id;
  op.body = R"({"resourceType":"Patient","id":")" + id + R"("})";
  op.index.push_back({"identifier", kNhs, nhs});
  if (!local.empty()) op.index.push_back({"identifier", "urn:local", local});
  op.unique_key = nhs;
  return op;
}

WriteOp update_of(WriteOp op, std::string body) {
  op.kind = OpKind::update;
  op.body = std::move(body);
  return op;
}

WriteOp remove_of(const std::string& type, const std::string& id) {
  WriteOp op;
  op.kind = OpKind::remove;
  op.type = type;
  op.id = id;
  return op;
}

WriteOp observation(const std::string& id, const std::string& patient_ref) {
  WriteOp op;
  op.kind = OpKind::create;
  op.type = "Observation";
  op.id = id;
  op.body = R"({"resourceType":"Observation"})";
  op.index.push_back({"subject", "", patient_ref});
  op.index.push_back({"patient", "", patient_ref});
  return op;
}

TEST_F(SqliteStoreTest, CreateReadUpdateDeleteWithVersionsAndHistory) {
  auto& s = open();
  auto c = commit(patient("p1", "9000000009"));
  ASSERT_TRUE(c.has_value()) << c.error().message;
  ASSERT_EQ(c->ops.size(), 1u);
  EXPECT_EQ(c->ops[0].id, "p1");
  EXPECT_EQ(c->ops[0].version, 1);
  EXPECT_TRUE(c->ops[0].created);
  ASSERT_EQ(c->ops[0].last_updated.size(), 24u);  // 2026-11-27T03:04:05.123Z
  EXPECT_EQ(c->ops[0].last_updated[10], 'T');
  EXPECT_EQ(c->ops[0].last_updated[19], '.');
  EXPECT_EQ(c->ops[0].last_updated.back(), 'Z');

  auto r = s.read("Patient", "p1");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->version, 1);
  EXPECT_EQ(r->body, R"({"resourceType":"Patient","id":"p1"})");
  EXPECT_EQ(r->last_updated, c->ops[0].last_updated);

  auto u = commit(update_of(patient("p1", "9000000009"), "{\"v\":2}"));
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->ops[0].version, 2);
  EXPECT_FALSE(u->ops[0].created);
  EXPECT_EQ(s.read("Patient", "p1")->body, "{\"v\":2}");

  auto d = commit(remove_of("Patient", "p1"));
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->ops[0].version, 3);

  auto gone = s.read("Patient", "p1");
  ASSERT_FALSE(gone.has_value());
  EXPECT_EQ(gone.error().code, Errc::gone);
  EXPECT_EQ(s.read("Patient", "nope").error().code, Errc::not_found);

  EXPECT_EQ(s.vread("Patient", "p1", 1)->body, R"({"resourceType":"Patient","id":"p1"})");
  EXPECT_EQ(s.vread("Patient", "p1", 2)->body, "{\"v\":2}");
  EXPECT_EQ(s.vread("Patient", "p1", 3).error().code, Errc::gone);
  EXPECT_EQ(s.vread("Patient", "p1", 4).error().code, Errc::not_found);

  auto h = s.history("Patient", "p1");
  ASSERT_TRUE(h.has_value());
  ASSERT_EQ(h->size(), 3u);
  EXPECT_EQ((*h)[0].version, 3);
  EXPECT_TRUE((*h)[0].deleted);
  EXPECT_EQ((*h)[2].version, 1);
  EXPECT_EQ(s.history("Patient", "nope").error().code, Errc::not_found);

  // A deleted Patient no longer holds its NHS number, nor shows in searches.
  EXPECT_FALSE(s.find_by_unique_key("9000000009")->has_value());
  SearchQuery q;
  q.type = "Patient";
  EXPECT_EQ(s.search(q)->total, 0);
}

TEST_F(SqliteStoreTest, DeleteAndUpdateEdgeCases) {
  auto& s = open();
  EXPECT_EQ(commit(remove_of("Patient", "missing")).error().code, Errc::not_found);

  auto no_upsert = update_of(patient("p9", "9000000017"), "{}");
  no_upsert.upsert = false;
  EXPECT_EQ(commit(no_upsert).error().code, Errc::not_found);

  ASSERT_TRUE(commit(patient("p1", "9000000009")).has_value());
  ASSERT_TRUE(commit(remove_of("Patient", "p1")).has_value());
  // Idempotent delete: success, nothing new written.
  auto again = commit(remove_of("Patient", "p1"));
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->ops[0].version, 2);
  EXPECT_EQ(s.history("Patient", "p1")->size(), 2u);

  auto upd = update_of(patient("p1", "9000000009"), "{\"back\":true}");
  upd.upsert = false;
  EXPECT_EQ(commit(upd).error().code, Errc::gone);

  upd.upsert = true;
  auto back = commit(upd);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->ops[0].version, 3);
  EXPECT_TRUE(back->ops[0].created);
  EXPECT_EQ(s.read("Patient", "p1")->body, "{\"back\":true}");
  EXPECT_EQ(**s.find_by_unique_key("9000000009"), "p1");
}

TEST_F(SqliteStoreTest, IfMatchMismatchIsVersionConflictAndWritesNothing) {
  auto& s = open();
  ASSERT_TRUE(commit(patient("p1", "9000000009")).has_value());
  auto upd = update_of(patient("p1", "9000000009"), "{\"v\":2}");
  upd.if_match = 7;
  UnitOfWork u;
  u.ops.push_back(upd);
  u.audit.push_back(AuditRow{"ODS1", "role", "sys", "update", "Patient/p1", "success", 200, "r1", "", "Patient/p1"});
  auto r = commit(std::move(u));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::version_conflict);
  EXPECT_EQ(s.read("Patient", "p1")->version, 1);
  EXPECT_EQ(scalar("SELECT count(*) FROM audit"), 0);

  auto del = remove_of("Patient", "p1");
  del.if_match = 2;
  EXPECT_EQ(commit(del).error().code, Errc::version_conflict);
  EXPECT_EQ(s.read("Patient", "p1")->version, 1);

  upd.if_match = 1;
  auto ok = commit(upd);
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->ops[0].version, 2);
}

TEST_F(SqliteStoreTest, FailedUnitRollsBackAloneWhileItsBatchCommits) {
  auto& s = open();
  // Park the writer inside the first callback so the next two units are
  // queued together and taken as one batch.
  std::latch in_callback(1), release(1);
  ASSERT_TRUE(s.commit(UnitOfWork{}, [&](Result<CommitOutcome>) {
                 in_callback.count_down();
                 release.wait();
               }).has_value());
  in_callback.wait();
  uint64_t commits_before = s.stats().commits;

  UnitOfWork bad;
  bad.ops.push_back(patient("a1", "9000000009"));
  auto missing = update_of(patient("zz", "9000000017"), "{}");
  missing.upsert = false;
  bad.ops.push_back(missing);
  bad.audit.push_back(AuditRow{"ODS1", "r", "s", "create", "Patient/a1", "success", 201, "req-bad", "", ""});
  bad.outbox.push_back(OutboxRow{"topic", "Patient/a1", "{}"});
  UnitOfWork good;
  good.ops.push_back(patient("b1", "9000000025"));
  good.audit.push_back(AuditRow{"ODS1", "r", "s", "create", "Patient/b1", "success", 201, "req-good", "", ""});

  std::promise<Result<CommitOutcome>> pb, pg;
  ASSERT_TRUE(s.commit(std::move(bad), [&](Result<CommitOutcome> r) { pb.set_value(std::move(r)); }).has_value());
  ASSERT_TRUE(s.commit(std::move(good), [&](Result<CommitOutcome> r) { pg.set_value(std::move(r)); }).has_value());
  release.count_down();
  auto rb = pb.get_future().get();
  auto rg = pg.get_future().get();

  ASSERT_FALSE(rb.has_value());
  EXPECT_EQ(rb.error().code, Errc::not_found);
  ASSERT_TRUE(rg.has_value()) << rg.error().message;
  EXPECT_EQ(s.stats().commits, commits_before + 1);  // both units in one transaction

  EXPECT_EQ(s.read("Patient", "a1").error().code, Errc::not_found);
  EXPECT_FALSE(s.find_by_unique_key("9000000009")->has_value());
  EXPECT_EQ(s.read("Patient", "b1")->version, 1);
  EXPECT_EQ(scalar("SELECT count(*) FROM audit WHERE request_id = 'req-bad'"), 0);
  EXPECT_EQ(scalar("SELECT count(*) FROM outbox"), 0);
  EXPECT_EQ(scalar("SELECT count(*) FROM audit WHERE request_id = 'req-good'"), 1);
  EXPECT_EQ(scalar("SELECT count(*) FROM res WHERE id = 'a1'"), 0);
}

TEST_F(SqliteStoreTest, ConcurrentCreatesOfOneNhsNumberLeaveExactlyOnePatient) {
  auto& s = open();
  constexpr int kThreads = 50;
  std::vector<Result<CommitOutcome>> results(kThreads, make_error(Errc::internal, "not run"));
  std::latch go(kThreads);
  std::vector<std::thread> ts;
  for (int i = 0; i < kThreads; ++i) {
    ts.emplace_back([&, i] {
      go.arrive_and_wait();
      results[i] = commit(patient("p" + std::to_string(i), "9434765919"));
    });
  }
  for (auto& t : ts) t.join();

  std::string winner;
  int ok = 0;
  for (int i = 0; i < kThreads; ++i) {
    if (results[i].has_value()) {
      ++ok;
      winner = results[i]->ops[0].id;
    }
  }
  ASSERT_EQ(ok, 1);
  for (int i = 0; i < kThreads; ++i) {
    if (results[i].has_value()) continue;
    EXPECT_EQ(results[i].error().code, Errc::conflict);
    EXPECT_EQ(results[i].error().expression, "Patient/" + winner);
  }
  EXPECT_EQ(**s.find_by_unique_key("9434765919"), winner);
  SearchQuery q;
  q.type = "Patient";
  EXPECT_EQ(s.search(q)->total, 1);

  // An update of another Patient onto the held number is refused too.
  ASSERT_TRUE(commit(patient("other", "9000000009")).has_value());
  auto steal = commit(update_of(patient("other", "9434765919"), "{}"));
  ASSERT_FALSE(steal.has_value());
  EXPECT_EQ(steal.error().code, Errc::conflict);
  EXPECT_EQ(steal.error().expression, "Patient/" + winner);
}

TEST_F(SqliteStoreTest, IfNoneExistMatchIsANoop) {
  auto& s = open();
  auto first = commit(patient("p1", "9000000009", "L1"));
  ASSERT_TRUE(first.has_value());

  auto cond = patient("p2", "9000000017");
  cond.unique_key.reset();
  cond.if_none_exist = {Match{"identifier", "", "L1"}};  // any system
  auto r = commit(cond);
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->ops[0].noop);
  EXPECT_FALSE(r->ops[0].created);
  EXPECT_EQ(r->ops[0].id, "p1");
  EXPECT_EQ(r->ops[0].version, 1);
  EXPECT_EQ(r->ops[0].last_updated, first->ops[0].last_updated);
  EXPECT_EQ(s.read("Patient", "p2").error().code, Errc::not_found);

  // ALL entries must match: a second, unmatched criterion means a create.
  cond.if_none_exist = {Match{"identifier", "", "L1"}, Match{"identifier", "urn:other", "L1"}};
  auto created = commit(cond);
  ASSERT_TRUE(created.has_value());
  EXPECT_FALSE(created->ops[0].noop);
  EXPECT_TRUE(created->ops[0].created);
  EXPECT_EQ(created->ops[0].id, "p2");
}

TEST_F(SqliteStoreTest, ConditionalUpdateByMatchCount) {
  auto& s = open();
  auto cu = update_of(patient("new-id", "9000000009", "L1"), "{\"c\":1}");
  cu.match = {Match{"identifier", "urn:local", "L1"}};
  auto zero = commit(cu);
  ASSERT_TRUE(zero.has_value());
  EXPECT_TRUE(zero->ops[0].created);
  EXPECT_EQ(zero->ops[0].id, "new-id");

  cu.id = "ignored-id";
  cu.body = "{\"c\":2}";
  auto one = commit(cu);
  ASSERT_TRUE(one.has_value());
  EXPECT_EQ(one->ops[0].id, "new-id");
  EXPECT_EQ(one->ops[0].version, 2);
  EXPECT_EQ(s.read("Patient", "new-id")->body, "{\"c\":2}");
  EXPECT_EQ(s.read("Patient", "ignored-id").error().code, Errc::not_found);

  ASSERT_TRUE(commit(patient("twin", "9000000017", "L1")).has_value());
  cu.unique_key.reset();
  auto many = commit(cu);
  ASSERT_FALSE(many.has_value());
  EXPECT_EQ(many.error().code, Errc::version_conflict);
  EXPECT_EQ(s.read("Patient", "new-id")->version, 2);
}

TEST_F(SqliteStoreTest, SearchByTokenReferenceIdLastUpdatedAndPages) {
  auto& s = open();
  auto a = commit(patient("pa", "9000000009", "LA"));
  ASSERT_TRUE(a.has_value());
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  auto b = commit(patient("pb", "9000000017", "LB"));
  ASSERT_TRUE(b.has_value());
  ASSERT_LT(a->ops[0].last_updated, b->ops[0].last_updated);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(commit(observation("o" + std::to_string(i), "Patient/pa")).has_value());
  ASSERT_TRUE(commit(observation("ox", "Patient/pb")).has_value());

  auto ids = [](const SearchPage& p) {
    std::vector<std::string> out;
    for (const auto& r : p.items) out.push_back(r.id);
    return out;
  };
  SearchQuery q;
  q.type = "Patient";
  q.params = {ParamConstraint{"identifier", {{"", "9000000017"}}}};
  EXPECT_EQ(ids(*s.search(q)), std::vector<std::string>{"pb"});
  q.params = {ParamConstraint{"identifier", {{kNhs, "9000000017"}}}};
  EXPECT_EQ(ids(*s.search(q)), std::vector<std::string>{"pb"});
  q.params = {ParamConstraint{"identifier", {{"urn:local", "9000000017"}}}};
  EXPECT_TRUE(s.search(q)->items.empty());
  // OR within a constraint, AND across constraints.
  q.params = {ParamConstraint{"identifier", {{"", "LA"}, {"", "LB"}}}};
  EXPECT_EQ(ids(*s.search(q)), (std::vector<std::string>{"pa", "pb"}));
  q.params.push_back(ParamConstraint{"identifier", {{kNhs, "9000000009"}}});
  EXPECT_EQ(ids(*s.search(q)), std::vector<std::string>{"pa"});

  SearchQuery byid;
  byid.type = "Patient";
  byid.ids = {"pb", "zz"};
  EXPECT_EQ(ids(*s.search(byid)), std::vector<std::string>{"pb"});

  SearchQuery lu;
  lu.type = "Patient";
  lu.updated_ge = b->ops[0].last_updated;
  EXPECT_EQ(ids(*s.search(lu)), std::vector<std::string>{"pb"});
  lu.updated_ge.reset();
  lu.updated_lt = b->ops[0].last_updated;
  EXPECT_EQ(ids(*s.search(lu)), std::vector<std::string>{"pa"});
  lu.updated_lt.reset();
  lu.updated_gt = a->ops[0].last_updated;
  lu.updated_le = b->ops[0].last_updated;
  EXPECT_EQ(ids(*s.search(lu)), std::vector<std::string>{"pb"});

  SearchQuery obs;
  obs.type = "Observation";
  obs.params = {ParamConstraint{"subject", {{"", "Patient/pa"}}}};
  obs.count = 2;
  auto p1 = s.search(obs);
  ASSERT_TRUE(p1.has_value());
  EXPECT_EQ(p1->total, 5);
  EXPECT_EQ(ids(*p1), (std::vector<std::string>{"o0", "o1"}));
  obs.offset = 4;
  auto p3 = s.search(obs);
  EXPECT_EQ(ids(*p3), std::vector<std::string>{"o4"});
  EXPECT_EQ(p3->total, 5);
  obs.want_total = false;
  EXPECT_EQ(s.search(obs)->total, 0);

  // Index rows follow the current version only.
  auto moved = observation("o0", "Patient/pb");
  moved.kind = OpKind::update;
  ASSERT_TRUE(commit(moved).has_value());
  obs.offset = 0;
  obs.count = 50;
  obs.want_total = true;
  EXPECT_EQ(s.search(obs)->total, 4);
}

TEST_F(SqliteStoreTest, AuditAndOutboxCommitWithTheChange) {
  open();
  UnitOfWork u;
  u.ops.push_back(patient("p1", "9000000009"));
  u.audit.push_back(AuditRow{"A81001", "R8000", "sys-1", "create", "Patient/p1", "success", 201, "req-1",
                             "created", "Patient/p1"});
  u.outbox.push_back(OutboxRow{"patient-created", "Patient/p1", "{\"x\":1}"});
  auto r = commit(std::move(u));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(scalar("SELECT count(*) FROM audit WHERE actor_ods = 'A81001' AND http_status = 201 AND "
                   "patient_ref = 'Patient/p1' AND request_id = 'req-1'"),
            1);
  EXPECT_EQ(scalar("SELECT count(*) FROM outbox WHERE topic = 'patient-created' AND focus = 'Patient/p1'"), 1);
  // Every row of the unit carries the one commit time.
  const std::string iso_of_ts =
      test::on_postgres()
          ? "to_char(to_timestamp(r.ts / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
          : "strftime('%Y-%m-%dT%H:%M:%fZ', r.ts / 1000.0, 'unixepoch')";
  EXPECT_EQ(scalar("SELECT count(*) FROM audit a, outbox o, res r WHERE a.ts = o.created AND o.created = " +
                   iso_of_ts + " AND r.id = 'p1'"),
            1);
}

TEST_F(SqliteStoreTest, ReopenKeepsDataAndAppliesNoMigrationTwice) {
  open();
  ASSERT_TRUE(commit(patient("p1", "9000000009")).has_value());
  store_->close();
  store_.reset();
  const int64_t steps = static_cast<int64_t>(sqlite::migrations().size());
  EXPECT_EQ(scalar("SELECT count(*) FROM schema_version"), steps);
  auto applied_before = scalar("SELECT sum(length(applied)) FROM schema_version");

  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  auto& s = open();
  EXPECT_EQ(s.read("Patient", "p1")->version, 1);
  EXPECT_EQ(**s.find_by_unique_key("9000000009"), "p1");
  EXPECT_EQ(scalar("SELECT count(*) FROM schema_version"), steps);
  EXPECT_EQ(scalar("SELECT max(version) FROM schema_version"), sqlite::migrations().back().version);
  EXPECT_EQ(scalar("SELECT sum(length(applied)) FROM schema_version"), applied_before);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "wal");
  sqlite3_finalize(st);
  sqlite3_close(db);
}

TEST_F(SqliteStoreTest, OpeningAnOlderSchemaAppliesOnlyTheMissingSteps) {
  ASSERT_GE(sqlite::migrations().size(), 2u);
  {
    auto c = sqlite::Connection::open(path_, sqlite::Connection::Mode::read_write_create, 1000);
    ASSERT_TRUE(c.has_value());
    auto& first = sqlite::migrations().front();
    ASSERT_TRUE((*c)->exec("CREATE TABLE schema_version(version INTEGER PRIMARY KEY, applied TEXT NOT NULL)").has_value());
    ASSERT_TRUE((*c)->exec(first.sql).has_value());
    ASSERT_TRUE((*c)->exec("INSERT INTO schema_version VALUES(1, 'old')").has_value());
    ASSERT_TRUE((*c)->exec("INSERT INTO resources VALUES('Patient', 'old1', 1, '2020-01-01T00:00:00.000Z', 0, '{}')").has_value());
  }
  auto& s = open();
  EXPECT_EQ(scalar("SELECT count(*) FROM schema_version WHERE version = 1 AND applied = 'old'"), 1);
  EXPECT_EQ(scalar("SELECT count(*) FROM schema_version"),
            static_cast<int64_t>(sqlite::migrations().size()));
  EXPECT_EQ(s.read("Patient", "old1")->version, 1);
  // The later step's tables exist: a unit with audit and outbox commits.
  UnitOfWork u;
  u.audit.push_back(AuditRow{});
  u.outbox.push_back(OutboxRow{"t", "f", "{}"});
  EXPECT_TRUE(commit(std::move(u)).has_value());
}

TEST_F(SqliteStoreTest, FullQueueIsUnavailableWithoutCallingBack) {
  SqliteOptions o;
  o.writer_queue_capacity = 1;
  auto& s = open(o);
  std::latch in_callback(1), release(1);
  ASSERT_TRUE(s.commit(UnitOfWork{}, [&](Result<CommitOutcome>) {
                 in_callback.count_down();
                 release.wait();
               }).has_value());
  in_callback.wait();  // the writer has taken unit 1 off the queue and is stuck
  std::promise<bool> second;
  ASSERT_TRUE(s.commit(UnitOfWork{}, [&](Result<CommitOutcome> r) { second.set_value(r.has_value()); }).has_value());
  EXPECT_EQ(s.stats().queue_depth, 1u);
  std::atomic<bool> third_called{false};
  auto third = s.commit(UnitOfWork{}, [&](Result<CommitOutcome>) { third_called = true; });
  ASSERT_FALSE(third.has_value());
  EXPECT_EQ(third.error().code, Errc::unavailable);
  release.count_down();
  EXPECT_TRUE(second.get_future().get());
  s.close();
  EXPECT_FALSE(third_called.load());
  auto after = s.commit(UnitOfWork{}, {});
  ASSERT_FALSE(after.has_value());
  EXPECT_EQ(after.error().code, Errc::unavailable);
}

TEST_F(SqliteStoreTest, ConcurrentUnitsShareOneCommit) {
  metrics::Registry reg;
  SqliteOptions o;
  o.metrics = &reg;
  auto& s = open(o);
  std::latch in_callback(1), release(1);
  ASSERT_TRUE(s.commit(UnitOfWork{}, [&](Result<CommitOutcome>) {
                 in_callback.count_down();
                 release.wait();
               }).has_value());
  in_callback.wait();
  constexpr int kUnits = 100;
  std::latch done(kUnits);
  std::atomic<int> ok{0};
  for (int i = 0; i < kUnits; ++i) {
    UnitOfWork u;
    u.ops.push_back(observation("o" + std::to_string(i), "Patient/x"));
    ASSERT_TRUE(s.commit(std::move(u), [&](Result<CommitOutcome> r) {
                   if (r) ++ok;
                   done.count_down();
                 }).has_value());
  }
  EXPECT_EQ(s.stats().queue_depth, static_cast<uint64_t>(kUnits));
  release.count_down();
  done.wait();
  EXPECT_EQ(ok.load(), kUnits);
  auto st = s.stats();
  EXPECT_EQ(st.commits, 2u);  // the parked unit's batch, then all 100 together
  EXPECT_EQ(st.units, static_cast<uint64_t>(kUnits + 1));
  EXPECT_EQ(st.last_batch_size, kUnits);
  EXPECT_EQ(st.queue_depth, 0u);

  std::string text = reg.render();
  EXPECT_NE(text.find("gw_store_commit_seconds"), std::string::npos);
  EXPECT_NE(text.find("gw_store_commit_batch_units_bucket{le=\"64\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("gw_store_commit_batch_units_bucket{le=\"128\"} 2"), std::string::npos) << text;
  EXPECT_NE(text.find("gw_store_writer_queue_depth"), std::string::npos);
  EXPECT_NE(text.find("gw_store_commit_failures_total 0"), std::string::npos);
}

TEST_F(SqliteStoreTest, ReadsRunOnTheReaderPool) {
  SqliteOptions o;
  o.reader_threads = 2;
  auto& s = open(o);
  ASSERT_TRUE(commit(patient("p1", "9000000009")).has_value());
  constexpr int kTasks = 20;
  std::latch done(kTasks);
  std::atomic<int> found{0};
  for (int i = 0; i < kTasks; ++i) {
    ASSERT_TRUE(s.run_read([&] {
                   auto r = s.read("Patient", "p1");
                   if (r && r->version == 1) ++found;
                   done.count_down();
                 }).has_value());
  }
  done.wait();
  EXPECT_EQ(found.load(), kTasks);
}

// The checkpointer copies the WAL into the database file off the commit path.
// Its connection used to be opened and never read from, and SQLite 3.40 does
// nothing when asked to checkpoint through a connection that has not yet
// found the WAL: the database file stayed at its first page and the WAL grew
// without bound (630 MB after 16 000 A28 messages), every read searching it.
TEST_F(SqliteStoreTest, TheWalIsCopiedIntoTheDatabaseFileOnceItHoldsEnoughPages) {
  SqliteOptions o;
  o.checkpoint_pages = 64;
  open(o);
  const std::string pad(3000, 'x');
  for (int i = 0; i < 200; ++i) {
    auto op = patient("p" + std::to_string(i), "90000000" + std::to_string(10 + i));
    op.body = R"({"resourceType":"Patient","id":"p)" + std::to_string(i) + R"(","text":")" + pad + R"("})";
    ASSERT_TRUE(commit(std::move(op)).has_value());
  }
  // 200 resources of 3 KB: far more than 64 pages, so the database file must
  // hold them (not only the WAL) once a checkpoint has run.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (fs::file_size(path_) < 400 * 1024 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_GE(fs::file_size(path_), 400u * 1024) << "WAL: " << fs::file_size(path_ + "-wal") << " bytes";
  auto last = store_->read("Patient", "p199");
  ASSERT_TRUE(last.has_value());
  EXPECT_NE(last->body.find(pad), std::string::npos);
}

TEST_F(SqliteStoreTest, CloseCommitsWhatIsQueued) {
  auto& s = open();
  std::atomic<int> ok{0};
  for (int i = 0; i < 30; ++i) {
    UnitOfWork u;
    u.ops.push_back(observation("o" + std::to_string(i), "Patient/x"));
    ASSERT_TRUE(s.commit(std::move(u), [&](Result<CommitOutcome> r) {
                   if (r) ++ok;
                 }).has_value());
  }
  s.close();
  EXPECT_EQ(ok.load(), 30);
  EXPECT_EQ(scalar("SELECT count(*) FROM res"), 30);
}

TEST_F(SqliteStoreTest, AFailedTransactionFailsEveryUnitOfTheBatch) {
  metrics::Registry reg;
  SqliteOptions o;
  o.metrics = &reg;
  o.busy_timeout_ms = 50;
  auto& s = open(o);
  ASSERT_TRUE(commit(patient("p1", "9000000009")).has_value());
  std::latch in_callback(1), release(1);
  ASSERT_TRUE(s.commit(UnitOfWork{}, [&](Result<CommitOutcome>) {
                 in_callback.count_down();
                 release.wait();
               }).has_value());
  in_callback.wait();
  // Another process holding the write lock makes the writer's BEGIN fail.
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  std::promise<Result<CommitOutcome>> pa, pb;
  ASSERT_TRUE(s.commit(UnitOfWork{{patient("p2", "9000000017")}, {}, {}, {}, {}, {}},
                       [&](Result<CommitOutcome> r) { pa.set_value(std::move(r)); })
                  .has_value());
  ASSERT_TRUE(s.commit(UnitOfWork{{remove_of("Patient", "p1")}, {}, {}, {}, {}, {}},
                       [&](Result<CommitOutcome> r) { pb.set_value(std::move(r)); })
                  .has_value());
  uint64_t commits_before = s.stats().commits;
  release.count_down();
  auto ra = pa.get_future().get();
  auto rb = pb.get_future().get();
  ASSERT_FALSE(ra.has_value());
  EXPECT_EQ(ra.error().code, Errc::store_failure);
  ASSERT_FALSE(rb.has_value());
  EXPECT_EQ(rb.error().code, Errc::store_failure);
  EXPECT_EQ(s.stats().commits, commits_before);
  EXPECT_NE(reg.render().find("gw_store_commit_failures_total 1"), std::string::npos);
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);

  // The writer carries on once the lock is gone.
  EXPECT_EQ(s.read("Patient", "p1")->version, 1);
  EXPECT_EQ(s.read("Patient", "p2").error().code, Errc::not_found);
  EXPECT_TRUE(commit(patient("p2", "9000000017")).has_value());
}

TEST_F(SqliteStoreTest, FullReaderQueueIsUnavailable) {
  SqliteOptions o;
  o.reader_threads = 1;
  o.reader_queue_capacity = 1;
  auto& s = open(o);
  std::latch running(1), release(1);
  ASSERT_TRUE(s.run_read([&] {
                 running.count_down();
                 release.wait();
               }).has_value());
  running.wait();
  std::atomic<bool> second_ran{false};
  ASSERT_TRUE(s.run_read([&] { second_ran = true; }).has_value());
  auto third = s.run_read([] {});
  ASSERT_FALSE(third.has_value());
  EXPECT_EQ(third.error().code, Errc::unavailable);
  release.count_down();
  s.close();  // readers drain their queue before stopping
  EXPECT_TRUE(second_ran.load());
}

TEST_F(SqliteStoreTest, OpenFailureNamesThePath) {
  SqliteOptions o;
  o.path = (dir_ / "no-such-dir" / "x.db").string();
  try {
    open_sqlite(o);
    FAIL() << "expected a start-up error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no-such-dir"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace gw::store

namespace gw::store {
namespace {

class SqliteIngestRowsTest : public SqliteStoreTest {};

TEST_F(SqliteIngestRowsTest, AnIdempotencyKeyCommitsOnceAndTheRetryWritesNothing) {
  open();
  UnitOfWork first;
  first.ops.push_back(patient("p1", "9000000009"));
  first.idempotency_key = "systmone|B86001|MSG0001";
  ASSERT_TRUE(commit(std::move(first)).has_value());

  UnitOfWork again;
  again.ops.push_back(observation("o1", "Patient/p1"));
  again.idempotency_key = "systmone|B86001|MSG0001";
  auto r = commit(std::move(again));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::conflict);
  EXPECT_EQ(r.error().expression, "idempotency-key");
  EXPECT_EQ(scalar("SELECT COUNT(*) FROM res WHERE type = 'Observation'"), 0);

  UnitOfWork other;
  other.ops.push_back(observation("o2", "Patient/p1"));
  other.idempotency_key = "systmone|B86001|MSG0002";
  EXPECT_TRUE(commit(std::move(other)).has_value());
}

TEST_F(SqliteIngestRowsTest, InboundRowsAreKeptListedAndTheirStatusChanges) {
  open();
  UnitOfWork u;
  InboundRow m;
  m.adapter = "systmone";
  m.channel = "mllp";
  m.sender_ods = "B86001";
  m.sender_system = "loopback";
  m.control_id = "MSG9";
  m.status = "quarantined";
  m.reason = "PID-3: check digit";
  m.issues_json = "[]";
  m.raw = std::string("MSH|^~\\&|\xE9\r", 12);  // bytes as received, Latin-1 included
  u.inbound.push_back(m);
  auto r = commit(std::move(u));
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->inbound_ids.size(), 1u);
  int64_t id = r->inbound_ids[0];

  auto q = store_->list_inbound("quarantined", 10, 0);
  ASSERT_TRUE(q.has_value());
  ASSERT_EQ(q->size(), 1u);
  EXPECT_EQ((*q)[0].raw, m.raw);
  EXPECT_EQ((*q)[0].control_id, "MSG9");
  EXPECT_FALSE((*q)[0].received.empty());
  EXPECT_TRUE(store_->list_inbound("accepted", 10, 0)->empty());

  UnitOfWork replay;
  replay.inbound_status.emplace_back(id, "replayed");
  ASSERT_TRUE(commit(std::move(replay)).has_value());
  EXPECT_EQ(store_->get_inbound(id)->status, "replayed");
  EXPECT_TRUE(store_->list_inbound("quarantined", 10, 0)->empty());
  EXPECT_EQ(store_->get_inbound(id + 100).error().code, Errc::not_found);

  UnitOfWork missing;
  missing.inbound_status.emplace_back(id + 100, "replayed");
  EXPECT_EQ(commit(std::move(missing)).error().code, Errc::not_found);
}

TEST_F(SqliteIngestRowsTest, AResolvedIdThatNoLongerMatchesFailsTheUnit) {
  open();
  ASSERT_TRUE(commit(patient("p1", "9000000009")).has_value());
  // The caller resolved "no match, will be p2" before p1 existed.
  WriteOp cond = patient("p2", "9000000009");
  cond.if_none_exist = {{"identifier", kNhs, "9000000009"}};
  cond.id_resolved = true;
  auto r = commit(cond);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::version_conflict);
  // Resolved to the right id: a no-op on p1.
  cond.id = "p1";
  auto ok = commit(cond);
  ASSERT_TRUE(ok.has_value());
  EXPECT_TRUE(ok->ops[0].noop);

  WriteOp upd = update_of(patient("p3", "9000000009"), R"({"resourceType":"Patient"})");
  upd.match = {{"identifier", kNhs, "9000000009"}};
  upd.id_resolved = true;
  EXPECT_EQ(commit(upd).error().code, Errc::version_conflict);
  upd.id = "p1";
  auto u = commit(upd);
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->ops[0].version, 2);
}

// A subject reference to a Patient is indexed under "subject" and "patient"
// by model::index_entries (FHIR's patient parameter is the subject when it is
// a Patient); the store keeps one row, which answers both names.
WriteOp care_team(const std::string& id, const std::string& patient_ref) {
  WriteOp op;
  op.kind = OpKind::create;
  op.type = "CareTeam";
  op.id = id;
  op.body = R"({"resourceType":"CareTeam"})";
  op.index.push_back({"subject", "", patient_ref});
  op.index.push_back({"patient", "", patient_ref});
  op.index.push_back({"identifier", "urn:team", id});
  return op;
}

WriteOp consent(const std::string& id, const std::string& patient_ref) {
  WriteOp op;
  op.kind = OpKind::create;
  op.type = "Consent";
  op.id = id;
  op.body = R"({"resourceType":"Consent"})";
  op.index.push_back({"patient", "", patient_ref});
  return op;
}

TEST_F(SqliteStoreTest, ASubjectReferenceIsOneIndexRowThatAnswersPatientAndSubject) {
  auto& s = open();
  ASSERT_TRUE(commit(care_team("t1", "Patient/pa")).has_value());
  ASSERT_TRUE(commit(care_team("t2", "Patient/pb")).has_value());
  ASSERT_TRUE(commit(consent("c1", "Patient/pa")).has_value());
  // One row for the CareTeam's subject, none repeating it as patient; the
  // Consent's own patient element keeps its row.
  EXPECT_EQ(scalar("SELECT count(*) FROM idx WHERE type = 'CareTeam' AND value = 'Patient/pa'"), 1);
  EXPECT_EQ(scalar("SELECT count(*) FROM idx WHERE type = 'CareTeam' AND param = 'patient'"), 0);
  EXPECT_EQ(scalar("SELECT count(*) FROM idx WHERE type = 'Consent' AND param = 'patient'"), 1);
  using Ids = std::set<std::string>;
  EXPECT_EQ(ids_where("CareTeam", "patient", "Patient/pa"), (Ids{"t1"}));
  EXPECT_EQ(ids_where("CareTeam", "subject", "Patient/pa"), (Ids{"t1"}));
  EXPECT_EQ(ids_where("Consent", "patient", "Patient/pa"), (Ids{"c1"}));
  EXPECT_TRUE(ids_where("Consent", "subject", "Patient/pa").empty()) << "a patient element is not a subject";
  EXPECT_EQ(ids_where("CareTeam", "patient", "Patient/pa", MatchKind::not_any), (Ids{"t2"}));
  EXPECT_EQ(ids_where("CareTeam", "patient", "", MatchKind::present), (Ids{"t1", "t2"}));
  EXPECT_TRUE(ids_where("CareTeam", "patient", "", MatchKind::missing).empty());
  EXPECT_EQ(ids_where("Consent", "subject", "", MatchKind::missing), (Ids{"c1"}));
  // Conditional writes match on both names too: If-None-Exist on patient
  // finds t2 (alone and beside another parameter); a conditional update on
  // patient updates it.
  auto again = care_team("t9", "Patient/pb");
  again.if_none_exist = {Match{"patient", "", "Patient/pb"}};
  auto r = commit(again);
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->ops[0].noop);
  EXPECT_EQ(r->ops[0].id, "t2");
  again.if_none_exist = {Match{"patient", "", "Patient/pb"}, Match{"identifier", "urn:team", "t2"}};
  r = commit(again);
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->ops[0].noop);
  auto cond = care_team("t8", "Patient/pb");
  cond.kind = OpKind::update;
  cond.match = {Match{"patient", "", "Patient/pb"}};
  r = commit(cond);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->ops[0].id, "t2");
  EXPECT_FALSE(r->ops[0].created);
  // _sort on patient orders by the subject rows.
  SearchQuery q;
  q.type = "CareTeam";
  q.sort.push_back(SortKey{"patient", true});
  auto page = s.search(q);
  ASSERT_TRUE(page.has_value());
  ASSERT_EQ(page->items.size(), 2u);
  EXPECT_EQ(page->items[0].id, "t2");
  // Moving the subject moves the one row.
  auto moved = care_team("t1", "Patient/pc");
  moved.kind = OpKind::update;
  ASSERT_TRUE(commit(moved).has_value());
  EXPECT_EQ(scalar("SELECT count(*) FROM idx WHERE type = 'CareTeam' AND value = 'Patient/pa'"), 0);
  EXPECT_EQ(ids_where("CareTeam", "patient", "Patient/pc"), (Ids{"t1"}));
  (void)s;
}

// A store written before the change (SQLite layout 8, PostgreSQL 3) holds
// both rows and both keys; opening it removes the duplicates (SQLite step 9,
// PostgreSQL step 4), and the searches answer as before.
TEST_F(SqliteStoreTest, AStoreWithDuplicatePatientRowsIsUpgraded) {
  open();
  ASSERT_TRUE(commit(care_team("t1", "Patient/pa")).has_value());
  ASSERT_TRUE(commit(consent("c1", "Patient/pa")).has_value());
  store_->close();
  store_.reset();
  // What the previous version wrote: the patient row and key beside the subject ones.
  std::vector<IndexEntry> old = {{"identifier", "urn:team", "t1"}, {"patient", "", "Patient/pa"}, {"subject", "", "Patient/pa"}};
  auto hex_of = [](const std::string& blob) {
    std::string hex;
    for (unsigned char ch : blob) {
      static const char* d = "0123456789abcdef";
      hex += d[ch >> 4];
      hex += d[ch & 15];
    }
    return hex;
  };
  const bool pg = test::on_postgres();
  auto literal = [&](const std::vector<IndexEntry>& keys) {
    std::string hex = hex_of(encode_keys(keys));
    return pg ? "'\\x" + hex + "'::bytea" : "X'" + hex + "'";
  };
  const int step = pg ? 4 : 9;
  exec_sql(std::string("INSERT INTO idx(value, type, param, system, rid) SELECT 'Patient/pa', 'CareTeam', 'patient', '', rid "
                       "FROM res WHERE type = 'CareTeam' AND id = 't1';") +
           "UPDATE res SET keys = " + literal(old) +
           " WHERE type = 'CareTeam' AND id = 't1';" + "DELETE FROM schema_version WHERE version >= " +
           std::to_string(step) + ";");
  ASSERT_EQ(scalar("SELECT count(*) FROM idx WHERE type = 'CareTeam' AND param = 'patient'"), 1);
  auto& s = open();
  EXPECT_EQ(scalar("SELECT count(*) FROM schema_version WHERE version = " + std::to_string(step)), 1);
  EXPECT_EQ(scalar("SELECT count(*) FROM idx WHERE type = 'CareTeam' AND param = 'patient'"), 0);
  EXPECT_EQ(scalar("SELECT count(*) FROM idx WHERE type = 'CareTeam' AND param = 'subject'"), 1);
  EXPECT_EQ(scalar("SELECT count(*) FROM idx WHERE type = 'Consent' AND param = 'patient'"), 1) << "not a duplicate";
  EXPECT_EQ(scalar("SELECT count(*) FROM res WHERE type = 'CareTeam' AND keys = " +
                   literal(index_keys(care_team("t1", "Patient/pa").index))),
            1)
      << "the current row's key list is what a write makes now";
  using Ids = std::set<std::string>;
  EXPECT_EQ(ids_where("CareTeam", "patient", "Patient/pa"), (Ids{"t1"}));
  EXPECT_EQ(ids_where("CareTeam", "subject", "Patient/pa"), (Ids{"t1"}));
  // The key list lost the patient key too: an update that keeps the subject
  // writes no index row, one that moves it leaves no row behind.
  auto same = care_team("t1", "Patient/pa");
  same.kind = OpKind::update;
  ASSERT_TRUE(commit(same).has_value());
  EXPECT_EQ(scalar("SELECT count(*) FROM idx WHERE type = 'CareTeam'"), 2);
  auto moved = care_team("t1", "Patient/pb");
  moved.kind = OpKind::update;
  ASSERT_TRUE(commit(moved).has_value());
  EXPECT_EQ(scalar("SELECT count(*) FROM idx WHERE type = 'CareTeam' AND value = 'Patient/pa'"), 0);
  EXPECT_EQ(ids_where("CareTeam", "patient", "Patient/pb"), (Ids{"t1"}));
  (void)s;
}

}  // namespace
}  // namespace gw::store
