// Several gateway nodes on one PostgreSQL database, in one process: each
// "node" is a PostgresStore of its own (its own writer, readers and node
// connection) on the same schema. Registered only in the PostgreSQL run of
// the suite (suites named Postgres*, tests/CMakeLists.txt).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <latch>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "gateway/store/postgres/pg.h"
#include "gateway/store/store.h"
#include "tests/support/test_gateway.h"
#include "tests/support/test_store.h"

namespace gw::store {
namespace {

using namespace std::chrono_literals;

class PostgresNodes : public ::testing::Test {
 protected:
  std::unique_ptr<Store> node(std::function<void()> before_commit = {}) {
    PostgresOptions o;
    o.conninfo = test::pg_conninfo_for(dir_.path() + "/gateway.db");
    o.before_commit = std::move(before_commit);
    return open_postgres(o);
  }
  std::unique_ptr<pg::Conn> conn() {
    auto c = pg::Conn::open(test::pg_conninfo_for(dir_.path() + "/gateway.db"));
    EXPECT_TRUE(c.has_value()) << c.error().message;
    return std::move(*c);
  }
  static Result<CommitOutcome> commit(Store& s, UnitOfWork u) {
    std::promise<Result<CommitOutcome>> p;
    auto f = p.get_future();
    auto q = s.commit(std::move(u), [&p](Result<CommitOutcome> r) { p.set_value(std::move(r)); });
    if (!q) return q.error();
    return f.get();
  }
  test::TempDir dir_;
};

WriteOp observation(const std::string& id) {
  WriteOp op;
  op.kind = OpKind::create;
  op.type = "Observation";
  op.id = id;
  op.body = R"({"resourceType":"Observation"})";
  return op;
}

WriteOp patient(const std::string& id, const std::string& nhs) {
  WriteOp op;
  op.kind = OpKind::create;
  op.type = "Patient";
  op.id = id;
  op.body = R"({"resourceType":"Patient"})";
  op.index.push_back({"identifier", "https://fhir.nhs.uk/Id/nhs-number", nhs});
  op.unique_key = nhs;
  return op;
}

UnitOfWork unit_of(WriteOp op) {
  UnitOfWork u;
  u.ops.push_back(std::move(op));
  return u;
}

// The hazard the writer lock exists for, shown on a bare sequence: a row
// whose transaction took its number first but committed last is skipped by
// a reader that follows "seq > cursor".
TEST_F(PostgresNodes, ABareSequenceSkipsARowThatCommitsAfterAHigherOne) {
  auto setup = conn();
  ASSERT_TRUE(setup->run("CREATE TABLE bare(seq BIGSERIAL PRIMARY KEY, v TEXT)").has_value());
  auto t1 = conn(), t2 = conn(), reader = conn();
  ASSERT_TRUE(t1->run("BEGIN; INSERT INTO bare(v) VALUES('first')").has_value());   // takes seq 1
  ASSERT_TRUE(t2->run("INSERT INTO bare(v) VALUES('second')").has_value());         // seq 2, committed
  auto seen = reader->exec("SELECT max(seq) FROM bare WHERE seq > 0");
  ASSERT_TRUE(seen.has_value());
  int64_t cursor = seen->int64(0, 0);
  EXPECT_EQ(cursor, 2);
  ASSERT_TRUE(t1->run("COMMIT").has_value());
  auto after = reader->exec("SELECT count(*) FROM bare WHERE seq > " + std::to_string(cursor));
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->int64(0, 0), 0) << "row 1 committed after row 2 and a seq > cursor reader never sees it";
}

// Node A's transaction is held open after its versions were written (its
// vids taken); node B commits meanwhile. B must wait for A (the writer lock),
// nothing of either is visible until A commits, and the feed then lists A's
// change before B's: nothing B wrote can be read past while A's is pending.
TEST_F(PostgresNodes, InterleavedNodesCommitInFeedOrderAndTheFeedNeverSkips) {
  std::atomic<bool> hold{false};
  std::latch a_inside(1), let_a_go(1);
  auto a = node([&] {
    if (hold.exchange(false)) {
      a_inside.count_down();
      let_a_go.wait();
    }
  });
  auto b = node();
  ASSERT_TRUE(commit(*a, unit_of(observation("warm-up"))).has_value());
  auto before = a->changes_after(0, 100);
  ASSERT_TRUE(before.has_value());
  const int64_t start = before->back().seq;

  hold = true;
  std::promise<Result<CommitOutcome>> pa, pb;
  ASSERT_TRUE(a->commit(unit_of(observation("from-a")), [&](Result<CommitOutcome> r) { pa.set_value(std::move(r)); }));
  a_inside.wait();  // A holds its transaction open, its vid taken
  ASSERT_TRUE(b->commit(unit_of(observation("from-b")), [&](Result<CommitOutcome> r) { pb.set_value(std::move(r)); }));
  auto fb = pb.get_future();
  EXPECT_EQ(fb.wait_for(500ms), std::future_status::timeout) << "node B committed while node A held the writer lock";
  auto during = b->changes_after(start, 100);
  ASSERT_TRUE(during.has_value());
  EXPECT_TRUE(during->empty()) << "a change became visible while an earlier-numbered one was pending";
  let_a_go.count_down();
  ASSERT_TRUE(pa.get_future().get().has_value());
  ASSERT_TRUE(fb.get().has_value());
  auto feed = b->changes_after(start, 100);
  ASSERT_TRUE(feed.has_value());
  ASSERT_EQ(feed->size(), 2u);
  EXPECT_EQ((*feed)[0].id, "from-a");
  EXPECT_EQ((*feed)[1].id, "from-b");
  EXPECT_LT((*feed)[0].seq, (*feed)[1].seq);
  EXPECT_LE((*feed)[0].ts, (*feed)[1].ts) << "versions' times run backwards along the feed";
}

// Two nodes writing as fast as they can while a consumer follows the feed
// by "seq > cursor": it must end up with every version exactly once.
TEST_F(PostgresNodes, AConsumerFollowingTheFeedUnderTwoWritingNodesMissesNothing) {
  auto a = node(), b = node();
  constexpr int kPerWriter = 150;
  std::atomic<bool> writing{true};
  std::set<std::string> consumed;
  std::vector<int64_t> order;
  std::thread consumer([&] {
    int64_t cursor = 0;
    for (;;) {
      bool last_pass = !writing.load();
      auto rows = a->changes_after(cursor, 1000);
      ASSERT_TRUE(rows.has_value());
      for (const auto& r : *rows) {
        EXPECT_TRUE(consumed.insert(r.id).second) << "read twice: " << r.id;
        order.push_back(r.seq);
        cursor = r.seq;
      }
      if (last_pass && rows->empty()) return;
    }
  });
  auto writer = [&](Store& s, const std::string& prefix) {
    std::vector<std::future<Result<CommitOutcome>>> acks;
    std::vector<std::shared_ptr<std::promise<Result<CommitOutcome>>>> ps;
    for (int i = 0; i < kPerWriter; ++i) {
      auto p = std::make_shared<std::promise<Result<CommitOutcome>>>();
      acks.push_back(p->get_future());
      ASSERT_TRUE(s.commit(unit_of(observation(prefix + std::to_string(i))),
                           [p](Result<CommitOutcome> r) { p->set_value(std::move(r)); }));
      if (i % 10 == 0) std::this_thread::sleep_for(1ms);  // many small group commits, interleaving
    }
    for (auto& f : acks) ASSERT_TRUE(f.get().has_value());
  };
  std::thread wa([&] { writer(*a, "a-"); }), wb([&] { writer(*b, "b-"); });
  wa.join();
  wb.join();
  writing = false;
  consumer.join();
  EXPECT_EQ(consumed.size(), static_cast<size_t>(2 * kPerWriter));
  EXPECT_TRUE(std::is_sorted(order.begin(), order.end()));
}

TEST_F(PostgresNodes, ConcurrentCreatesOfOneNhsNumberOnTwoNodesLeaveOnePatient) {
  auto a = node(), b = node();
  constexpr int kTries = 20;
  std::mutex mu;
  std::set<std::string> created, named;
  std::atomic<int> conflicts{0};
  std::latch done(2 * kTries);
  auto attempt = [&](Store& s, const std::string& id) {
    ASSERT_TRUE(s.commit(unit_of(patient(id, "9434765919")), [&, id](Result<CommitOutcome> r) {
      std::lock_guard lk(mu);
      if (r) created.insert(id);
      else if (r.error().code == Errc::conflict) {
        ++conflicts;
        named.insert(r.error().expression);
      }
      done.count_down();
    }));
  };
  for (int i = 0; i < kTries; ++i) {
    attempt(*a, "a" + std::to_string(i));
    attempt(*b, "b" + std::to_string(i));
  }
  done.wait();
  ASSERT_EQ(created.size(), 1u);
  EXPECT_EQ(conflicts.load(), 2 * kTries - 1);
  EXPECT_EQ(named, std::set<std::string>{"Patient/" + *created.begin()}) << "a conflict must name the holder";
  EXPECT_EQ(test::store_scalar(dir_.path() + "/gateway.db", "SELECT count(*) FROM pkey WHERE key = '9434765919'"), 1);
  // The guarantee is the constraint, not the writer's check: a second row
  // for the number is refused by the database itself.
  auto raw = conn();
  EXPECT_FALSE(raw->run("INSERT INTO pkey(key, rid) VALUES('9434765919', -1)").has_value());
  EXPECT_EQ(raw->last_state(), std::string(pg::kUniqueViolation));
}

TEST_F(PostgresNodes, AnIdempotencyKeyCommitsOnceAcrossNodes) {
  auto a = node(), b = node();
  std::atomic<int> ok{0}, dup{0};
  std::latch done(20);
  for (int i = 0; i < 10; ++i) {
    for (Store* s : {a.get(), b.get()}) {
      UnitOfWork u = unit_of(observation((s == a.get() ? "a" : "b") + std::to_string(i)));
      u.idempotency_key = "systmone|B86001|MSG-42";
      ASSERT_TRUE(s->commit(std::move(u), [&](Result<CommitOutcome> r) {
        if (r) ++ok;
        else if (r.error().expression == "idempotency-key") ++dup;
        done.count_down();
      }));
    }
  }
  done.wait();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(dup.load(), 19);
  EXPECT_EQ(test::store_scalar(dir_.path() + "/gateway.db", "SELECT count(*) FROM res WHERE type = 'Observation'"), 1);
}

// A durable timer (a LAC health assessment's reminder) fires once across
// nodes: both nodes firing the same due key at once, exactly one unit
// commits what the firing writes; the other fails and writes nothing.
TEST_F(PostgresNodes, ATimerFiredOnBothNodesAtOnceFiresOnce) {
  auto a = node(), b = node();
  UnitOfWork schedule;
  schedule.timer_sets.push_back(
      TimerSet{"lac-health-assessment", "CareTeam/ct1", {TimerRow{"ct1|due-soon", "", "", "2026-01-01T00:00:00Z", "{}"}}});
  ASSERT_TRUE(commit(*a, std::move(schedule)).has_value());
  ASSERT_EQ(b->due_timers("2026-12-31T00:00:00Z", 10)->size(), 1u) << "the other node sees it due";
  std::atomic<int> ok{0}, refused{0};
  std::latch done(2);
  for (Store* s : {a.get(), b.get()}) {
    UnitOfWork fire;
    fire.timers_fired.push_back("ct1|due-soon");
    AuditRow row;
    row.action = "notify";
    row.entity = "Timer/ct1|due-soon";
    row.outcome = "success";
    fire.audit.push_back(row);
    ASSERT_TRUE(s->commit(std::move(fire), [&](Result<CommitOutcome> r) {
      if (r) ++ok;
      else if (r.error().code == Errc::conflict) ++refused;
      done.count_down();
    }));
  }
  done.wait();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(refused.load(), 1);
  EXPECT_EQ(test::store_scalar(dir_.path() + "/gateway.db", "SELECT count(*) FROM audit WHERE entity = 'Timer/ct1|due-soon'"),
            1);
  EXPECT_TRUE(a->due_timers("2026-12-31T00:00:00Z", 10)->empty());
  EXPECT_EQ(b->timers_of("lac-health-assessment", "CareTeam/ct1")->at(0).status, "fired");
}

TEST_F(PostgresNodes, AClaimIsOneNodesAtATimeAndFreedWhenItsNodeGoes) {
  auto a = node(), b = node();
  ASSERT_TRUE(*a->claim("fanout:subscriptions"));
  EXPECT_TRUE(*a->claim("fanout:subscriptions"));  // held: asked again, still held
  EXPECT_FALSE(*b->claim("fanout:subscriptions"));
  EXPECT_TRUE(*b->claim("subscription:s1"));  // other names are free
  EXPECT_FALSE(*a->claim("subscription:s1"));
  a->release("fanout:subscriptions");
  EXPECT_TRUE(*b->claim("fanout:subscriptions"));
  EXPECT_FALSE(*a->claim("fanout:subscriptions"));
  b->close();  // a node that stops (or dies: its connection closes) frees what it held
  // The server lets the locks go once the closed session's backend has
  // exited, a moment after the client hung up: the other node gets them at
  // one of its next attempts (a consumer's next poll), here within 5 s.
  auto eventually_claims = [&](const std::string& name) {
    for (int i = 0; i < 100; ++i) {
      if (auto r = a->claim(name); r && *r) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  };
  EXPECT_TRUE(eventually_claims("fanout:subscriptions"));
  EXPECT_TRUE(eventually_claims("subscription:s1"));
}

// The fence behind the claims: a consumer that lost its claim (and its
// position moved on elsewhere) cannot commit what it produced a second time.
TEST_F(PostgresNodes, ACursorUnitFromAStalePositionFailsAndWritesNothing) {
  auto a = node(), b = node();
  UnitOfWork first;
  first.cursor = std::make_pair("fanout", 10);
  first.cursor_from = 0;
  first.events.push_back(NewEvent{"s1", 10, "Patient", "p1", 1, "create", "", "id-only"});
  ASSERT_TRUE(commit(*a, std::move(first)).has_value());
  UnitOfWork stale;
  stale.cursor = std::make_pair("fanout", 10);
  stale.cursor_from = 0;  // B still thinks nobody consumed anything
  stale.events.push_back(NewEvent{"s1", 10, "Patient", "p1", 1, "create", "", "id-only"});
  auto r = commit(*b, std::move(stale));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::conflict);
  EXPECT_EQ(r.error().expression, "cursor");
  EXPECT_EQ(b->event_counts("s1")->events, 1) << "the stale unit's event was written";
  UnitOfWork next;
  next.cursor = std::make_pair("fanout", 12);
  next.cursor_from = 10;
  EXPECT_TRUE(commit(*b, std::move(next)).has_value());
  EXPECT_EQ(*a->cursor("fanout"), 12);
}

// Another node's commit wakes this node's consumers (LISTEN/NOTIFY), so a
// change written on one node is fanned out promptly by whichever node runs
// the fan-out.
TEST_F(PostgresNodes, AnotherNodesCommitWakesThisNodesListener) {
  auto a = node(), b = node();
  std::promise<void> woke;
  std::atomic<bool> once{false};
  a->set_commit_listener([&] {
    if (!once.exchange(true)) woke.set_value();
  });
  ASSERT_TRUE(commit(*b, unit_of(observation("on-b"))).has_value());
  EXPECT_EQ(woke.get_future().wait_for(5s), std::future_status::ready);
  a->set_commit_listener(nullptr);
}

}  // namespace
}  // namespace gw::store
