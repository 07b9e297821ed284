// The read audit queue is bounded: rows beyond its capacity are refused
// (the caller answers 503), counted, and never silently dropped; rows it
// takes are committed with the next group commit.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "gateway/audit/audit_rows.h"
#include "gateway/common/metrics.h"
#include "gateway/security/policy.h"
#include "gateway/security/visibility.h"
#include "gateway/store/store.h"
#include "gateway/write/merge_policy.h"
#include "gateway/write/validation.h"
#include "gateway/write/write_service.h"
#include "tests/support/test_gateway.h"

namespace gw::write {
namespace {

TEST(AuditQueue, RefusesLoudlyBeyondItsBoundAndCommitsWhatItTakes) {
  const std::string profiles = std::string(GW_SOURCE_DIR) + "/profiles";
  auto validator = Validator::load(profiles);
  ASSERT_TRUE(validator.has_value());
  auto policy = security::Policy::load(profiles);
  ASSERT_TRUE(policy.has_value());
  auto merge = MergePolicy::load(profiles);
  ASSERT_TRUE(merge.has_value());
  test::TempDir dir;
  metrics::Registry reg;
  store::SqliteOptions so;
  so.path = dir.path() + "/gateway.db";
  auto store = store::open_sqlite(so);
  security::Visibility vis(*policy, *store);
  {
    WriteService writes(*store, *validator, *policy, vis, std::make_shared<const MergePolicy>(std::move(*merge)), &reg,
                        3);
    security::Principal who{"B86001", "gp", "gp-systmone"};
    auto row = [&](int i) { return audit::row(who, "read", "Patient/p" + std::to_string(i), 200); };

    auto refused = writes.record({row(1), row(2), row(3), row(4)});
    ASSERT_FALSE(refused.has_value());
    EXPECT_EQ(refused.error().code, Errc::unavailable);
    EXPECT_EQ(reg.counter("gw_audit_refused_total", "").value(), 4u);

    ASSERT_TRUE(writes.record({row(5), row(6), row(7)}).has_value());
    store::AuditQuery q;
    q.count = 10;
    int64_t total = 0;
    for (int i = 0; i < 200 && total < 3; ++i) {
      auto page = store->search_audit(q);
      ASSERT_TRUE(page.has_value()) << page.error().message;
      total = page->total.value_or(0);
      if (total < 3) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(total, 3) << "the rows taken are committed";
    EXPECT_EQ(reg.counter("gw_audit_lost_total", "").value(), 0u);
    EXPECT_EQ(reg.gauge("gw_audit_queue_capacity_rows", "").value(), 3);
  }
  store->close();
}

}  // namespace
}  // namespace gw::write
