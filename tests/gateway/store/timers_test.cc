// Durable timers in the store (both engines): a schedule replaces the pending timers
// of its subject, a fired key never fires again (firing it twice fails the
// unit, so its events are not committed twice), and timers survive a reopen.
#include <gtest/gtest.h>
#include <future>

#include "gateway/store/store.h"
#include "tests/support/test_gateway.h"
#include "tests/support/test_store.h"

namespace gw::store {
namespace {

class TimersTest : public ::testing::Test {
 protected:
  void SetUp() override { open(); }
  void open() {
    SqliteOptions o;
    o.path = dir_.path() + "/store.db";
    store_ = test::open_store(o);  // the engine this run of the suite is for
  }
  Result<CommitOutcome> commit(UnitOfWork u) {
    std::promise<Result<CommitOutcome>> p;
    auto f = p.get_future();
    auto q = store_->commit(std::move(u), [&p](Result<CommitOutcome> r) { p.set_value(std::move(r)); });
    if (!q) return q.error();
    return f.get();
  }
  static TimerRow timer(const std::string& key, const std::string& due) {
    return TimerRow{key, "", "", due, "{\"k\":\"" + key + "\"}"};
  }
  Result<CommitOutcome> schedule(const std::string& subject, std::vector<TimerRow> ts) {
    UnitOfWork u;
    u.timer_sets.push_back(TimerSet{"kind-a", subject, std::move(ts)});
    return commit(std::move(u));
  }
  std::vector<std::string> due_keys(const std::string& now) {
    std::vector<std::string> out;
    for (const auto& t : store_->due_timers(now, 100).value()) out.push_back(t.key);
    return out;
  }
  test::TempDir dir_;  // outlives store_ (declared first)
  std::unique_ptr<Store> store_;
};

TEST_F(TimersTest, DueTimersComeEarliestFirstAndOnlyWhenDue) {
  ASSERT_TRUE(schedule("CareTeam/p1", {timer("b", "2027-01-11T00:00:00Z"), timer("a", "2027-01-04T00:00:00Z")}));
  EXPECT_TRUE(due_keys("2027-01-03T23:59:59Z").empty());
  EXPECT_EQ(due_keys("2027-01-04T00:00:00Z"), std::vector<std::string>{"a"});
  EXPECT_EQ(due_keys("2027-02-01T00:00:00Z"), (std::vector<std::string>{"a", "b"}));
  auto all = store_->timers_of("kind-a", "CareTeam/p1").value();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].payload, "{\"k\":\"a\"}");
  EXPECT_EQ(all[0].status, "pending");
}

TEST_F(TimersTest, AScheduleReplacesThePendingTimersOfItsSubjectOnly) {
  ASSERT_TRUE(schedule("CareTeam/p1", {timer("a", "2027-01-04T00:00:00Z"), timer("b", "2027-01-11T00:00:00Z")}));
  ASSERT_TRUE(schedule("CareTeam/p2", {timer("c", "2027-01-05T00:00:00Z")}));
  // p1 is rescheduled: "a" moves, "b" is no longer wanted.
  ASSERT_TRUE(schedule("CareTeam/p1", {timer("a", "2027-02-01T00:00:00Z")}));
  EXPECT_EQ(due_keys("2027-01-31T00:00:00Z"), std::vector<std::string>{"c"});
  EXPECT_EQ(due_keys("2027-03-01T00:00:00Z"), (std::vector<std::string>{"c", "a"}));
  auto p1 = store_->timers_of("kind-a", "CareTeam/p1").value();
  ASSERT_EQ(p1.size(), 2u);
  EXPECT_EQ(p1[0].key, "b");
  EXPECT_EQ(p1[0].status, "cancelled");
  EXPECT_FALSE(p1[0].settled.empty());
  // An empty set cancels everything pending for the subject.
  ASSERT_TRUE(schedule("CareTeam/p2", {}));
  EXPECT_EQ(due_keys("2027-03-01T00:00:00Z"), std::vector<std::string>{"a"});
}

TEST_F(TimersTest, AFiredKeyNeverFiresAgainEvenWhenRescheduled) {
  ASSERT_TRUE(schedule("CareTeam/p1", {timer("a", "2027-01-04T00:00:00Z")}));
  UnitOfWork fire;
  fire.timers_fired.push_back("a");
  fire.audit.push_back(AuditRow{"X", "r", "s", "fired", "Timer/a", "success", 0, "", "", ""});
  ASSERT_TRUE(commit(std::move(fire)));
  EXPECT_TRUE(due_keys("2030-01-01T00:00:00Z").empty());
  // Firing it again fails the whole unit: nothing it carried is written.
  UnitOfWork again;
  again.timers_fired.push_back("a");
  again.cursor = std::make_pair(std::string("timer-test"), int64_t{7});
  auto r = commit(std::move(again));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::conflict);
  EXPECT_EQ(r.error().expression, "a");
  EXPECT_EQ(store_->cursor("timer-test").value(), 0);
  // A later schedule naming the fired key does not revive it.
  ASSERT_TRUE(schedule("CareTeam/p1", {timer("a", "2027-06-01T00:00:00Z")}));
  EXPECT_TRUE(due_keys("2030-01-01T00:00:00Z").empty());
  EXPECT_EQ(store_->timers_of("kind-a", "CareTeam/p1").value().at(0).status, "fired");
}

TEST_F(TimersTest, ACancelledTimerComesBackWhenScheduledAgain) {
  ASSERT_TRUE(schedule("CareTeam/p1", {timer("a", "2027-01-04T00:00:00Z")}));
  ASSERT_TRUE(schedule("CareTeam/p1", {}));
  EXPECT_TRUE(due_keys("2030-01-01T00:00:00Z").empty());
  ASSERT_TRUE(schedule("CareTeam/p1", {timer("a", "2027-01-04T00:00:00Z")}));
  EXPECT_EQ(due_keys("2030-01-01T00:00:00Z"), std::vector<std::string>{"a"});
}

TEST_F(TimersTest, TimersSurviveAReopen) {
  ASSERT_TRUE(schedule("CareTeam/p1", {timer("a", "2027-01-04T00:00:00Z")}));
  store_->close();
  store_.reset();
  open();
  EXPECT_EQ(due_keys("2027-01-05T00:00:00Z"), std::vector<std::string>{"a"});
}

}  // namespace
}  // namespace gw::store
