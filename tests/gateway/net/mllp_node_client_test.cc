// The MLLP listener driven by node-hl7-client (tests/tools/mllp-send.js), an
// MLLP client nobody on this project wrote: framing and ACK shape must suit
// a real third-party sender, not just our own test client. No skip when the
// tool is missing: deploy/install-deps.sh installs it with `npm ci`.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "gateway/net/mllp_server.h"
#include "tests/support/mllp_test_kit.h"

namespace gw::net {
namespace {

using namespace std::chrono_literals;

struct RunResult {
  int status = -1;
  std::vector<std::string> lines;
};

RunResult run_node_sender(uint16_t port, int count, const std::string& prefix, int timeout_ms = 20000) {
  std::string cmd = "node '" + std::string(GW_SOURCE_DIR) + "/tests/tools/mllp-send.js' --port " +
                    std::to_string(port) + " --count " + std::to_string(count) + " --prefix " + prefix +
                    " --timeout " + std::to_string(timeout_ms);
  RunResult r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int rc = ::pclose(p);
  r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) r.lines.push_back(line);
  return r;
}

TEST(MllpNodeClientTest, NodeHl7ClientGetsAnAaWithItsOwnControlIdForEveryMessage) {
  test::TestMllpHandler handler(test::TestMllpHandler::Mode::worker);
  metrics::Registry registry;
  MllpServer server(test::feed_listener_options(), handler, registry);  // plain, loopback allowed by default
  uint16_t port = server.start();

  constexpr int kCount = 25;
  RunResult r = run_node_sender(port, kCount, "NODE");
  EXPECT_EQ(r.status, 0) << "mllp-send.js failed; is `npm ci` done in tests/tools?";
  ASSERT_EQ(r.lines.size(), static_cast<size_t>(kCount));
  for (int i = 0; i < kCount; ++i)
    EXPECT_EQ(r.lines[static_cast<size_t>(i)], "AA|NODE" + std::to_string(i)) << "message " << i;

  // What the listener handed over is what node-hl7-client sent, framing removed.
  auto msgs = handler.messages();
  ASSERT_EQ(msgs.size(), static_cast<size_t>(kCount));
  for (int i = 0; i < kCount; ++i) {
    auto& raw = msgs[static_cast<size_t>(i)].raw;
    EXPECT_EQ(raw.rfind("MSH|", 0), 0u);
    EXPECT_NE(raw.find("|NODE" + std::to_string(i) + "|P|2.4"), std::string::npos);
    EXPECT_EQ(raw.find_first_of("\x0B\x1C"), std::string::npos);
  }
  handler.join();
  server.shutdown(1s);
}

TEST(MllpNodeClientTest, NodeHl7ClientSeesAFailureWhenTheHandlerNeverReplies) {
  // The script must report a lost ACK, or the test above proves nothing.
  test::TestMllpHandler handler(test::TestMllpHandler::Mode::never);
  metrics::Registry registry;
  MllpOptions o = test::feed_listener_options();
  o.handler_timeout = 300ms;
  MllpServer server(o, handler, registry);
  uint16_t port = server.start();
  // node-hl7-client reports a dropped socket only through its reconnect
  // logic, so the script's own deadline is what notices the missing ACK.
  RunResult r = run_node_sender(port, 1, "LOST", 2000);
  EXPECT_NE(r.status, 0);
  EXPECT_TRUE(r.lines.empty());
  handler.join();
  server.shutdown(1s);
}

}  // namespace
}  // namespace gw::net
