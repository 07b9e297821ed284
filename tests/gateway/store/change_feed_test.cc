// The change feed and the subscription event tables of the SQLite store:
// every applied write is a change row in the same transaction, event
// numbers are per subscription and gap-free, and events, delivery state and
// the fan-out cursor commit (or roll back) together with their unit.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <future>
#include <thread>

#include "gateway/events/feed_position.h"
#include "gateway/store/store.h"
#include "tests/support/test_store.h"

namespace gw::store {
namespace {

namespace fs = std::filesystem;

class ChangeFeedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "gw-feed-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    SqliteOptions o;
    o.path = (dir_ / "store.db").string();
    store_ = test::open_store(o);
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  Result<CommitOutcome> commit(UnitOfWork u) {
    std::promise<Result<CommitOutcome>> p;
    auto f = p.get_future();
    auto q = store_->commit(std::move(u), [&p](Result<CommitOutcome> r) { p.set_value(std::move(r)); });
    if (!q) return q.error();
    return f.get();
  }
  static WriteOp op(OpKind k, const std::string& id) {
    WriteOp w;
    w.kind = k;
    w.type = "Observation";
    w.id = id;
    w.body = R"({"resourceType":"Observation","meta":{},"status":"final"})";
    return w;
  }
  static NewEvent event(const std::string& sub, int64_t seq) {
    NewEvent e;
    e.subscription = sub;
    e.change_seq = seq;
    e.focus_type = "Observation";
    e.focus_id = "o1";
    e.focus_version = 1;
    e.interaction = "create";
    e.content = "id-only";
    return e;
  }
  fs::path dir_;
  std::unique_ptr<Store> store_;
};

UnitOfWork with_ops(std::vector<WriteOp> ops) {
  UnitOfWork u;
  u.ops = std::move(ops);
  return u;
}
UnitOfWork with_events(std::vector<NewEvent> evs, std::optional<std::pair<std::string, int64_t>> cursor = {}) {
  UnitOfWork u;
  u.events = std::move(evs);
  u.cursor = std::move(cursor);
  return u;
}
UnitOfWork with_update(EventUpdate e) {
  UnitOfWork u;
  u.event_updates.push_back(std::move(e));
  return u;
}

TEST_F(ChangeFeedTest, EveryAppliedWriteIsAChangeInCommitOrder) {
  ASSERT_TRUE(commit(with_ops({op(OpKind::create, "o1")})));
  ASSERT_TRUE(commit(with_ops({op(OpKind::update, "o1"), op(OpKind::create, "o2")})));
  ASSERT_TRUE(commit(with_ops({op(OpKind::remove, "o1")})));
  // A failed unit writes no change.
  ASSERT_FALSE(commit(with_ops({op(OpKind::create, "o3"), op(OpKind::create, "o2")})));
  auto ch = store_->changes_after(0, 100);
  ASSERT_TRUE(ch.has_value());
  ASSERT_EQ(ch->size(), 4u);
  std::vector<std::string> got;
  for (const auto& c : *ch) got.push_back(c.id + ":" + std::to_string(c.version) + ":" + c.interaction);
  EXPECT_EQ(got, (std::vector<std::string>{"o1:1:create", "o1:2:update", "o2:1:create", "o1:3:delete"}));
  for (size_t i = 1; i < ch->size(); ++i) EXPECT_GT((*ch)[i].seq, (*ch)[i - 1].seq);
  auto page = store_->changes_after((*ch)[1].seq, 1);
  ASSERT_TRUE(page.has_value());
  ASSERT_EQ(page->size(), 1u);
  EXPECT_EQ(page->front().id, "o2");
}

TEST_F(ChangeFeedTest, EventNumbersArePerSubscriptionGapFreeAndCommitWithTheCursor) {
  auto r = commit(with_events({event("a", 1), event("b", 1), event("a", 2)}, std::make_pair(std::string("fan"), int64_t{2})));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->event_numbers, (std::vector<int64_t>{1, 1, 2}));
  EXPECT_EQ(*store_->cursor("fan"), 2);
  // A unit that fails takes its events and cursor move with it.
  ASSERT_TRUE(commit(with_events({event("a", 3)}, std::make_pair(std::string("fan"), int64_t{3}))));
  UnitOfWork failing = with_events({event("a", 4)}, std::make_pair(std::string("fan"), int64_t{4}));
  failing.ops.push_back(op(OpKind::update, "missing"));
  failing.ops.back().upsert = false;  // not_found: the whole unit fails
  auto bad = commit(std::move(failing));
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(*store_->cursor("fan"), 3);
  auto next = commit(with_events({event("a", 5)}));
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->event_numbers, std::vector<int64_t>{4});  // 3 went with the first unit, none lost to the failure
  auto evs = store_->events("a", 1, 0, "", 10);
  ASSERT_TRUE(evs.has_value());
  ASSERT_EQ(evs->size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ((*evs)[i].number, static_cast<int64_t>(i + 1));
}

TEST_F(ChangeFeedTest, DeliveryStateUpdatesAndCounts) {
  ASSERT_TRUE(commit(with_events({event("a", 1), event("a", 2), event("a", 3), event("a", 4)})));
  ASSERT_TRUE(commit(with_update(EventUpdate{"a", 1, 2, "delivered", 1, 0, std::string(), "pending"})));
  ASSERT_TRUE(commit(with_update(EventUpdate{"a", 3, 3, "", 1, 1234, std::string("HTTP 503"), "pending"})));
  ASSERT_TRUE(commit(with_update(EventUpdate{"a", 3, 3, "", 1, 9999, std::nullopt, "pending"})));
  auto e3 = store_->events("a", 3, 3, "", 1);
  ASSERT_TRUE(e3.has_value());
  ASSERT_EQ(e3->size(), 1u);
  EXPECT_EQ((*e3)[0].attempts, 2);
  EXPECT_EQ((*e3)[0].first_attempt_ms, 1234);  // the window starts at the first failure
  EXPECT_EQ((*e3)[0].last_error, "HTTP 503");
  ASSERT_TRUE(commit(with_update(EventUpdate{"a", 1, INT64_MAX, "dead", 0, -1, std::nullopt, "pending"})));
  auto c = store_->event_counts("a");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->events, 4);
  EXPECT_EQ(c->delivered, 2);
  EXPECT_EQ(c->dead, 2);
  EXPECT_EQ(c->pending, 0);
  EXPECT_EQ(*store_->subscriptions_with_events("dead"), std::vector<std::string>{"a"});
  EXPECT_TRUE(store_->subscriptions_with_events("pending")->empty());
  auto pending = store_->events("a", 1, 0, "pending", 10);
  ASSERT_TRUE(pending.has_value());
  EXPECT_TRUE(pending->empty());
}

// A consumer's page that produced nothing to write (most changes, for the
// flow timers and the GP-record feed) moves its cursor in a lazy unit: no
// transaction and no fsync of its own, committed with the next unit someone
// waits for.
TEST(FeedPositionLazily, ACursorThatWroteNothingRidesWithTheNextCommit) {
  std::string tmpl = (fs::temp_directory_path() / "gw-lazy-XXXXXX").string();
  ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
  SqliteOptions o;
  o.path = (fs::path(tmpl) / "store.db").string();
  o.lazy_delay = std::chrono::seconds(60);  // nothing commits the cursor alone during the test
  auto store = test::open_store(o);
  auto commit_one = [&](const std::string& id) {
    std::promise<Result<CommitOutcome>> p;
    auto f = p.get_future();
    WriteOp w;
    w.kind = OpKind::create;
    w.type = "Observation";
    w.id = id;
    w.body = R"({"resourceType":"Observation","meta":{},"status":"final"})";
    ASSERT_TRUE(store->commit(with_ops({w}), [&p](Result<CommitOutcome> r) { p.set_value(std::move(r)); }));
    ASSERT_TRUE(f.get().has_value());
  };
  commit_one("o1");
  events::FeedPosition pos("quiet-consumer");
  auto page = pos.next(*store, 10);
  ASSERT_TRUE(page.has_value());
  ASSERT_EQ(page->size(), 1u);
  uint64_t commits = store->stats().commits;
  ASSERT_TRUE(pos.consume_lazily(*store, page->back().seq, "test_cursor_not_saved"));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(store->stats().commits, commits) << "the cursor alone paid a commit";
  EXPECT_EQ(store->cursor("quiet-consumer").value(), 0);
  // The position moved on in memory: the next page starts after it.
  auto empty = pos.next(*store, 10);
  ASSERT_TRUE(empty.has_value());
  EXPECT_TRUE(empty->empty());
  commit_one("o2");
  EXPECT_EQ(store->stats().commits, commits + 1) << "one transaction for both units";
  EXPECT_EQ(store->cursor("quiet-consumer").value(), page->back().seq);
  store.reset();
  std::error_code ec;
  fs::remove_all(tmpl, ec);
}

}  // namespace
}  // namespace gw::store
