#include "gateway/net/principal_limiter.h"

#include <gtest/gtest.h>

namespace gw::net {
namespace {

using namespace std::chrono_literals;
using Clock = PrincipalLimiter::Clock;

security::Principal who(std::string role) { return {"RXX", std::move(role), "sys"}; }

TEST(PrincipalLimiter, ABurstThenTheRateAndEachCallerHasItsOwnBucket) {
  metrics::Registry reg;
  PrincipalLimiter l(config::CallerLimits{2.0, 3, 0}, "https", reg);
  auto t0 = Clock::now();
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(l.admit(who("gp"), t0).admitted) << i;
    l.release(who("gp"));
  }
  auto over = l.admit(who("gp"), t0);
  EXPECT_FALSE(over.admitted);
  EXPECT_EQ(over.reason, "rate");
  EXPECT_EQ(over.retry_after, 500ms);  // one token at two a second
  EXPECT_TRUE(l.admit(who("camhs"), t0).admitted) << "another caller's bucket is its own";
  EXPECT_TRUE(l.admit(who("gp"), t0 + 500ms).admitted);
  EXPECT_FALSE(l.admit(who("gp"), t0 + 600ms).admitted);
  // Refill is capped at the burst however long the caller was away.
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(l.admit(who("gp"), t0 + 1h).admitted) << i;
  EXPECT_FALSE(l.admit(who("gp"), t0 + 1h).admitted);
  std::string m = reg.render();
  EXPECT_NE(m.find(R"(gw_principal_requests_total{listener="https",principal="RXX/gp/sys",outcome="rate_limited"} 3)"),
            std::string::npos)
      << m;
}

TEST(PrincipalLimiter, ConcurrencyIsCountedAcrossConnectionsUntilReleased) {
  metrics::Registry reg;
  PrincipalLimiter l(config::CallerLimits{0, 20, 2}, "mllp", reg);
  EXPECT_TRUE(l.admit(who("integration")).admitted);
  EXPECT_TRUE(l.admit(who("integration")).admitted);
  auto third = l.admit(who("integration"));
  EXPECT_FALSE(third.admitted);
  EXPECT_EQ(third.reason, "concurrency");
  l.release(who("integration"));
  EXPECT_TRUE(l.admit(who("integration")).admitted);
  EXPECT_NE(reg.render().find(R"(gw_principal_in_progress{listener="mllp",principal="RXX/integration/sys"} 2)"),
            std::string::npos);
}

TEST(PrincipalLimiter, LabelsKeepToASafeAlphabet) {
  EXPECT_EQ(PrincipalLimiter::key({"RX\"1", "gp", "a\nb"}), "RX_1/gp/a_b");
}

}  // namespace
}  // namespace gw::net
