// /readyz's probe against a real SQLite store: ready only when a write
// commits and reads back, the delivery backlog reported as it is, a locked
// (stuck) writer reported within the probe timeout, and never while draining.
#include "gateway/ops/readiness.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <future>
#include <thread>

#include "gateway/common/json.h"
#include "tests/support/test_gateway.h"
#include "tests/support/test_store.h"

namespace gw::ops {
namespace {

using namespace std::chrono_literals;

class ReadinessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store::SqliteOptions so;
    so.path = dir_.path() + "/gateway.db";
    store_ = test::open_store(so);
  }
  void TearDown() override {
    if (store_) store_->close();
  }

  static ReadinessReport check(Readiness& r) {
    std::promise<ReadinessReport> p;
    auto f = p.get_future();
    r.check([&p](ReadinessReport rep) { p.set_value(std::move(rep)); });
    EXPECT_EQ(f.wait_for(10s), std::future_status::ready) << "check() never answered";
    return f.get();
  }

  static json::Document body(const ReadinessReport& r) {
    auto d = json::parse(r.body);
    EXPECT_TRUE(d.has_value() && d->IsObject()) << r.body;
    return d ? std::move(*d) : json::Document{};
  }

  static std::string store_field(const ReadinessReport& r, const char* key) {
    auto d = body(r);
    const auto* s = json::member(d, "store");
    return s ? std::string(json::get_string(*s, key).value_or("")) : "";
  }

  void commit(store::UnitOfWork u) {
    std::promise<Result<store::CommitOutcome>> p;
    auto f = p.get_future();
    ASSERT_TRUE(store_->commit(std::move(u), [&p](Result<store::CommitOutcome> r) { p.set_value(std::move(r)); }));
    auto r = f.get();
    ASSERT_TRUE(r.has_value()) << r.error().message;
  }

  test::TempDir dir_;
  std::unique_ptr<store::Store> store_;
  std::atomic<bool> draining_{false};
};

TEST_F(ReadinessTest, ReadyWhenTheProbeCommitsAndReadsBack) {
  Readiness r(*store_, [this] { return draining_.load(); });
  auto rep = check(r);
  EXPECT_TRUE(rep.ready) << rep.body;
  EXPECT_EQ(store_field(rep, "status"), "ok");
  // The probe really went through the writer: its row is in the store.
  auto written = store_->cursor(ReadinessOptions{}.probe_cursor);
  ASSERT_TRUE(written.has_value());
  EXPECT_GT(*written, 0);
}

TEST_F(ReadinessTest, DrainingIsNotReadyWhateverTheStore) {
  Readiness r(*store_, [this] { return draining_.load(); });
  draining_ = true;
  auto rep = check(r);
  EXPECT_FALSE(rep.ready);
  EXPECT_NE(rep.body.find("draining"), std::string::npos) << rep.body;
  EXPECT_EQ(store_field(rep, "status"), "not probed");
}

TEST_F(ReadinessTest, AClosedStoreIsNotReadyAndSaysWhy) {
  Readiness r(*store_, [] { return false; });
  store_->close();
  auto rep = check(r);
  EXPECT_FALSE(rep.ready);
  EXPECT_EQ(store_field(rep, "status"), "failing");
  EXPECT_NE(store_field(rep, "detail").find("store is closing"), std::string::npos) << rep.body;
  store_.reset();
}

TEST_F(ReadinessTest, ReportsTheDeliveryBacklogWithoutBecomingUnready) {
  store::UnitOfWork u;
  for (const char* sub : {"sub-a", "sub-a", "gp-hl7:B86001"}) {
    store::NewEvent e;
    e.subscription = sub;
    e.change_seq = 1;
    e.focus_type = "Patient";
    e.focus_id = "p1";
    e.focus_version = 1;
    e.interaction = "create";
    e.content = "id-only";
    u.events.push_back(e);
  }
  commit(std::move(u));
  Readiness r(*store_, [] { return false; });
  auto rep = check(r);
  EXPECT_TRUE(rep.ready) << rep.body;
  auto d = body(rep);
  const auto* del = json::member(d, "delivery");
  ASSERT_NE(del, nullptr) << rep.body;
  EXPECT_EQ(json::get_int(*del, "pending_events").value_or(-1), 3) << rep.body;
  EXPECT_EQ(json::get_int(*del, "queues_pending").value_or(-1), 2) << rep.body;
  EXPECT_FALSE(json::get_string(*del, "oldest_pending").value_or("").empty()) << rep.body;
  EXPECT_EQ(json::get_int(*del, "queues_dead").value_or(-1), 0) << rep.body;
}

TEST_F(ReadinessTest, AWriterHeldByALockIsReportedWithinTheProbeTimeout) {
  ReadinessOptions o;
  o.probe_timeout = 300ms;
  o.reuse = 0ms;
  Readiness r(*store_, [] { return false; }, o);
  ASSERT_TRUE(check(r).ready);

  // Another process's exclusive lock: the writer's BEGIN waits (busy timeout).
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open((dir_.path() + "/gateway.db").c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);

  std::promise<ReadinessReport> first;
  auto first_f = first.get_future();
  r.check([&first](ReadinessReport rep) { first.set_value(std::move(rep)); });
  EXPECT_EQ(first_f.wait_for(100ms), std::future_status::timeout) << "answered before the probe could commit";
  std::this_thread::sleep_for(400ms);
  auto late = check(r);  // past the probe timeout: answered at once, and the waiter with it
  EXPECT_FALSE(late.ready);
  EXPECT_NE(store_field(late, "detail").find("has not committed"), std::string::npos) << late.body;
  ASSERT_EQ(first_f.wait_for(1s), std::future_status::ready);
  EXPECT_FALSE(first_f.get().ready);

  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  // The lock gone, a new probe passes again (the stuck one may first end with "database is locked").
  bool ready = false;
  for (int i = 0; i < 100 && !ready; ++i) {
    ready = check(r).ready;
    if (!ready) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(ready);
}

}  // namespace
}  // namespace gw::ops
