#include "gateway/net/mllp_server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>

#include "gateway/delivery/mllp_sender.h"
#include "gateway/hl7/mllp.h"
#include "tests/support/mllp_test_kit.h"
#include "tests/support/pki.h"

namespace gw::net {
namespace {

using namespace std::chrono_literals;
using test::ack_fields;
using test::hl7_message;
using test::RawMllpClient;
using test::TestMllpHandler;
using Clock = std::chrono::steady_clock;

class MllpServerTest : public ::testing::Test {
 protected:
  void start(MllpOptions opts = {}) {
    if (!opts.admits) opts.admits = test::admits_feeds();
    opts.host = "127.0.0.1";
    opts.port = 0;
    server_ = std::make_unique<MllpServer>(opts, handler_, registry_);
    port_ = server_->start();
    ASSERT_NE(port_, 0);
  }

  MllpOptions tls_options() {
    const std::string& pki = test::dev_pki_dir();
    MllpOptions o;
    o.tls = true;
    o.tls_files = TlsFiles{pki + "/server.pem", pki + "/server.key", pki + "/ca.pem", {}};
    return o;
  }

  delivery::MllpEndpoint tls_endpoint(const std::string& role) {
    const std::string& pki = test::dev_pki_dir();
    delivery::MllpEndpoint ep;
    ep.host = "127.0.0.1";
    ep.port = port_;
    ep.tls = true;
    ep.ca_file = pki + "/ca.pem";
    if (!role.empty()) {
      ep.cert_file = pki + "/client-" + role + ".pem";
      ep.key_file = pki + "/client-" + role + ".key";
    }
    ep.max_attempts = 1;
    ep.connect_timeout = 3s;
    ep.ack_timeout = 3s;
    return ep;
  }

  void TearDown() override {
    handler_.join();
    if (server_) server_->shutdown(1s);
  }

  bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds limit = 3s) {
    auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
      if (pred()) return true;
      std::this_thread::sleep_for(5ms);
    }
    return pred();
  }

  std::string metrics() { return registry_.render(); }
  bool has_metric(const std::string& line) { return metrics().find(line + "\n") != std::string::npos; }

  TestMllpHandler handler_;
  metrics::Registry registry_;
  std::unique_ptr<MllpServer> server_;
  uint16_t port_ = 0;
};

TEST_F(MllpServerTest, SingleMessageGetsAaEchoingItsControlIdAndLoopbackPrincipal) {
  start();
  RawMllpClient c;
  ASSERT_TRUE(c.connect(port_));
  ASSERT_TRUE(c.send_message(hl7_message("CTRL0001")));
  auto acks = c.read_frames(1);
  ASSERT_EQ(acks.size(), 1u);
  auto f = ack_fields(acks[0]);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->code, "AA");
  EXPECT_EQ(f->control_id, "CTRL0001");

  auto msgs = handler_.messages();
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].raw, hl7_message("CTRL0001"));
  EXPECT_EQ(msgs[0].principal.ods, "LOCAL");
  EXPECT_EQ(msgs[0].principal.role, "integration");
  EXPECT_EQ(msgs[0].principal.system, "loopback");
  EXPECT_EQ(msgs[0].remote.rfind("127.0.0.1:", 0), 0u);
  EXPECT_NE(msgs[0].conn_id, 0u);
  EXPECT_TRUE(wait_until([&] { return has_metric("gw_mllp_messages_total{result=\"acked\"} 1"); }));
  EXPECT_TRUE(has_metric("gw_mllp_ack_seconds_count 1"));
  EXPECT_TRUE(has_metric("gw_mllp_open_connections 1"));
}

TEST_F(MllpServerTest, AllowListEntryNamesThePrincipal) {
  MllpOptions o;
  o.allow = {{"10.0.0.0/8", "X1", "elsewhere"}, {"127.0.0.1", "RXX99", "pas-feed"}};
  start(o);
  RawMllpClient c;
  ASSERT_TRUE(c.connect(port_));
  ASSERT_TRUE(c.send_message(hl7_message("P1")));
  ASSERT_EQ(c.read_frames(1).size(), 1u);
  auto msgs = handler_.messages();
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].principal.ods, "RXX99");
  EXPECT_EQ(msgs[0].principal.role, "integration");
  EXPECT_EQ(msgs[0].principal.system, "pas-feed");
}

TEST_F(MllpServerTest, InvalidAllowListEntryFailsAtConstruction) {
  MllpOptions o;
  o.allow = {{"10.0.0.0/33", "X", "y"}};
  EXPECT_THROW(MllpServer(o, handler_, registry_), std::runtime_error);
  o.allow = {{"not-an-address/8", "X", "y"}};
  EXPECT_THROW(MllpServer(o, handler_, registry_), std::runtime_error);
}

TEST_F(MllpServerTest, AddressNotOnAllowListIsClosedWithoutAck) {
  MllpOptions o;
  o.allow = {{"10.0.0.0/8", "X1", "remote-feed"}, {"::1/128", "X2", "v6"}};
  start(o);
  RawMllpClient c;
  ASSERT_TRUE(c.connect(port_));
  c.write(RawMllpClient::frame(hl7_message("NOPE1")));  // may fail if the close already arrived
  std::string got;
  EXPECT_TRUE(c.wait_closed(3s, &got));
  EXPECT_EQ(got, "");
  EXPECT_EQ(handler_.received(), 0u);
  EXPECT_TRUE(has_metric("gw_mllp_connections_refused_total{reason=\"not_allowed\"} 1"));
  EXPECT_EQ(server_->open_connections(), 0u);
}

TEST_F(MllpServerTest, SixteenPipelinedAnsweredInOrderWhenHandlerRepliesInReverse) {
  handler_.set_mode(TestMllpHandler::Mode::reverse_batch, 16);
  start();
  RawMllpClient c;
  ASSERT_TRUE(c.connect(port_));
  std::string burst;
  for (int i = 0; i < 16; ++i) burst += RawMllpClient::frame(hl7_message("PIPE" + std::to_string(i)));
  ASSERT_TRUE(c.write(burst));
  auto acks = c.read_frames(16);
  ASSERT_EQ(acks.size(), 16u);
  for (int i = 0; i < 16; ++i) {
    auto f = ack_fields(acks[static_cast<size_t>(i)]);
    ASSERT_TRUE(f) << i;
    EXPECT_EQ(f->code, "AA") << i;
    EXPECT_EQ(f->control_id, "PIPE" + std::to_string(i)) << i;
  }
}

TEST_F(MllpServerTest, PipelineBeyondMaxInFlightIsHeldBackAndStillAnsweredInOrder) {
  handler_.set_mode(TestMllpHandler::Mode::delayed, 1, 2ms);
  MllpOptions o;
  o.max_in_flight = 4;
  start(o);
  RawMllpClient c;
  ASSERT_TRUE(c.connect(port_));
  std::string burst;
  for (int i = 0; i < 40; ++i) burst += RawMllpClient::frame(hl7_message("HOLD" + std::to_string(i)));
  ASSERT_TRUE(c.write(burst));
  auto acks = c.read_frames(40, 10s);
  ASSERT_EQ(acks.size(), 40u);
  for (int i = 0; i < 40; ++i) EXPECT_EQ(ack_fields(acks[static_cast<size_t>(i)])->control_id, "HOLD" + std::to_string(i));
  EXPECT_LE(handler_.max_outstanding(), 4u);
  EXPECT_GE(handler_.max_outstanding(), 2u);  // it did pipeline
}

TEST_F(MllpServerTest, ManyConcurrentConnectionsEachGetTheirOwnAcks) {
  handler_.set_mode(TestMllpHandler::Mode::worker);
  start();
  constexpr int kConns = 32, kMsgs = 50;
  std::atomic<int> good{0}, bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kConns; ++t) {
    threads.emplace_back([&, t] {
      RawMllpClient c;
      if (!c.connect(port_)) return void(bad += kMsgs);
      // Windows of 5 pipelined messages: some overlap, every ACK checked.
      for (int i = 0; i < kMsgs; i += 5) {
        std::string burst;
        for (int k = i; k < i + 5; ++k) burst += RawMllpClient::frame(hl7_message("C" + std::to_string(t) + "M" + std::to_string(k)));
        if (!c.write(burst)) return void(bad += kMsgs - i);
        auto acks = c.read_frames(5, 10s);
        for (int k = 0; k < 5; ++k) {
          auto f = k < static_cast<int>(acks.size()) ? ack_fields(acks[static_cast<size_t>(k)]) : std::nullopt;
          if (f && f->code == "AA" && f->control_id == "C" + std::to_string(t) + "M" + std::to_string(i + k))
            ++good;
          else
            ++bad;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(good.load(), kConns * kMsgs);
  EXPECT_EQ(bad.load(), 0);
  EXPECT_TRUE(wait_until([&] { return server_->open_connections() == 0; }));
}

TEST_F(MllpServerTest, GarbageBeforeStartBlockIsDiscardedAndCounted) {
  start();
  RawMllpClient c;
  ASSERT_TRUE(c.connect(port_));
  ASSERT_TRUE(c.write("GARBAGE" + RawMllpClient::frame(hl7_message("AFTERJUNK"))));
  auto acks = c.read_frames(1);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(ack_fields(acks[0])->control_id, "AFTERJUNK");
  EXPECT_EQ(handler_.received(), 1u);
  EXPECT_EQ(handler_.messages()[0].raw, hl7_message("AFTERJUNK"));
  EXPECT_TRUE(has_metric("gw_mllp_garbage_bytes_total 7"));
}

TEST_F(MllpServerTest, OversizedFrameGetsRejectInItsTurnAndConnectionStaysUsable) {
  MllpOptions o;
  o.max_frame_bytes = 1024;
  start(o);
  RawMllpClient c;
  ASSERT_TRUE(c.connect(port_));
  std::string bytes = RawMllpClient::frame(hl7_message("SMALL1")) + RawMllpClient::frame(hl7_message("BIG", 5000)) +
                      RawMllpClient::frame(hl7_message("SMALL2"));
  ASSERT_TRUE(c.write(bytes));
  auto acks = c.read_frames(3);
  ASSERT_EQ(acks.size(), 3u);
  EXPECT_EQ(ack_fields(acks[0])->code, "AA");
  EXPECT_EQ(ack_fields(acks[0])->control_id, "SMALL1");
  EXPECT_EQ(ack_fields(acks[1])->code, "AR");
  EXPECT_EQ(ack_fields(acks[2])->code, "AA");
  EXPECT_EQ(ack_fields(acks[2])->control_id, "SMALL2");
  EXPECT_EQ(handler_.received(), 2u);  // the oversized frame never reached handle()
  EXPECT_EQ(handler_.oversized_calls(), 1u);
  EXPECT_EQ(handler_.last_oversized_bytes(), 1024u);
  EXPECT_TRUE(has_metric("gw_mllp_frames_oversized_total 1"));
  // And later messages on the same connection still work.
  ASSERT_TRUE(c.send_message(hl7_message("SMALL3")));
  auto more = c.read_frames(1);
  ASSERT_EQ(more.size(), 1u);
  EXPECT_EQ(ack_fields(more[0])->control_id, "SMALL3");
}

TEST_F(MllpServerTest, HalfFrameThenCloseIsDroppedAndNothingLeaks) {
  start();
  {
    RawMllpClient c;
    ASSERT_TRUE(c.connect(port_));
    std::string f = RawMllpClient::frame(hl7_message("HALF"));
    ASSERT_TRUE(c.write(f.substr(0, f.size() / 2)));
    ASSERT_TRUE(wait_until([&] { return server_->open_connections() == 1; }));
  }
  EXPECT_TRUE(wait_until([&] { return server_->open_connections() == 0; }));
  EXPECT_EQ(handler_.received(), 0u);
  EXPECT_TRUE(has_metric("gw_mllp_open_connections 0"));
}

TEST_F(MllpServerTest, CompleteFramesBeforeHalfCloseAreStillAnswered) {
  handler_.set_mode(TestMllpHandler::Mode::delayed, 1, 50ms);
  start();
  RawMllpClient c;
  ASSERT_TRUE(c.connect(port_));
  ASSERT_TRUE(c.send_message(hl7_message("LAST1")));
  c.half_close();
  auto acks = c.read_frames(1);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(ack_fields(acks[0])->control_id, "LAST1");
  EXPECT_TRUE(c.wait_closed(3s));
  EXPECT_TRUE(wait_until([&] { return server_->open_connections() == 0; }));
}

TEST_F(MllpServerTest, IdleConnectionIsClosedAfterIdleTimeout) {
  MllpOptions o;
  o.idle_timeout = 300ms;
  start(o);
  RawMllpClient c;
  ASSERT_TRUE(c.connect(port_));
  auto t0 = Clock::now();
  EXPECT_TRUE(c.wait_closed(5s));
  EXPECT_GE(Clock::now() - t0, 250ms);
  EXPECT_TRUE(wait_until([&] { return server_->open_connections() == 0; }));
}

TEST_F(MllpServerTest, SlowHandlerIsNotCutByIdleTimeout) {
  handler_.set_mode(TestMllpHandler::Mode::delayed, 1, 500ms);
  MllpOptions o;
  o.idle_timeout = 200ms;
  start(o);
  RawMllpClient c;
  ASSERT_TRUE(c.connect(port_));
  ASSERT_TRUE(c.send_message(hl7_message("SLOW1")));
  auto acks = c.read_frames(1);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(ack_fields(acks[0])->code, "AA");
}

TEST_F(MllpServerTest, HandlerThatNeverRepliesGetsConnectionClosedWithoutAck) {
  handler_.set_mode(TestMllpHandler::Mode::never);
  MllpOptions o;
  o.handler_timeout = 300ms;
  start(o);
  RawMllpClient c;
  ASSERT_TRUE(c.connect(port_));
  ASSERT_TRUE(c.send_message(hl7_message("NEVER1")));
  std::string got;
  EXPECT_TRUE(c.wait_closed(5s, &got));
  EXPECT_EQ(got, "");  // no made-up AA, nor anything else
  EXPECT_EQ(handler_.received(), 1u);
  EXPECT_TRUE(has_metric("gw_mllp_messages_total{result=\"handler_timeout\"} 1"));
  EXPECT_TRUE(wait_until([&] { return server_->open_connections() == 0; }));
}

TEST_F(MllpServerTest, ShutdownWritesInFlightAcksBeforeClosing) {
  handler_.set_mode(TestMllpHandler::Mode::delayed, 1, 300ms);
  start();
  RawMllpClient c;
  ASSERT_TRUE(c.connect(port_));
  ASSERT_TRUE(c.send_message(hl7_message("DRAIN1")));
  ASSERT_TRUE(wait_until([&] { return handler_.received() == 1; }));
  std::thread stopper([&] { server_->shutdown(3s); });
  auto acks = c.read_frames(1);
  stopper.join();
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(ack_fields(acks[0])->control_id, "DRAIN1");
  EXPECT_TRUE(c.wait_closed(2s));
  EXPECT_EQ(server_->open_connections(), 0u);
}

TEST_F(MllpServerTest, TlsIntegrationCertificateIsAcceptedWithItsPrincipal) {
  start(tls_options());
  delivery::MllpSender s(tls_endpoint("integration"));
  auto r = s.send(hl7_message("TLS1"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, delivery::SendStatus::accepted) << r->last_error;
  auto msgs = handler_.messages();
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].principal.ods, "RXX");
  EXPECT_EQ(msgs[0].principal.role, "integration");
  EXPECT_EQ(msgs[0].principal.system, "trust-integration-engine");
}

TEST_F(MllpServerTest, TlsCertificateWithAnotherRoleIsRefused) {
  start(tls_options());
  delivery::MllpSender s(tls_endpoint("gp"));
  auto r = s.send(hl7_message("TLSGP"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, delivery::SendStatus::unreachable);
  EXPECT_EQ(handler_.received(), 0u);
  EXPECT_TRUE(wait_until([&] { return has_metric("gw_mllp_connections_refused_total{reason=\"role\"} 1"); }));
  EXPECT_TRUE(wait_until([&] { return server_->open_connections() == 0; }));
}

TEST_F(MllpServerTest, TlsClientWithoutCertificateIsRefused) {
  start(tls_options());
  delivery::MllpSender s(tls_endpoint(""));
  auto r = s.send(hl7_message("TLSNONE"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, delivery::SendStatus::unreachable);
  EXPECT_EQ(handler_.received(), 0u);
  EXPECT_TRUE(wait_until([&] { return server_->open_connections() == 0; }));
}

TEST_F(MllpServerTest, PlainClientOnTlsListenerGetsNothing) {
  start(tls_options());
  RawMllpClient c;
  ASSERT_TRUE(c.connect(port_));
  c.write(RawMllpClient::frame(hl7_message("PLAIN")));
  std::string got;
  EXPECT_TRUE(c.wait_closed(5s, &got));
  EXPECT_EQ(got.find("MSA"), std::string::npos);
  EXPECT_EQ(handler_.received(), 0u);
}

TEST_F(MllpServerTest, RandomBytesAndSplitsDoNotHurtTheListener) {
  handler_.set_mode(TestMllpHandler::Mode::worker);
  MllpOptions o;
  o.max_frame_bytes = 4096;
  start(o);
  std::mt19937 rng(12345);
  const std::string good = RawMllpClient::frame(hl7_message("FUZZGOOD"));
  auto deadline = Clock::now() + 2500ms;
  int rounds = 0;
  while (Clock::now() < deadline) {
    RawMllpClient c;
    ASSERT_TRUE(c.connect(port_));
    std::string bytes;
    size_t len = rng() % 20000;
    for (size_t i = 0; i < len; ++i) {
      // Control bytes are over-represented so frames start and end often.
      unsigned r = rng() % 16;
      bytes += r == 0 ? '\x0B' : r == 1 ? '\x1C' : r == 2 ? '\r' : static_cast<char>(rng() % 256);
      if (rng() % 500 == 0) bytes += good.substr(0, rng() % good.size());
    }
    size_t pos = 0;
    while (pos < bytes.size() && Clock::now() < deadline) {
      size_t n = std::min(bytes.size() - pos, static_cast<size_t>(1 + rng() % 700));
      if (!c.write(std::string_view(bytes).substr(pos, n), 500ms)) break;
      pos += n;
      c.read_frames(100, 0ms);  // drain ACKs so the server is never blocked on us
    }
    ++rounds;
  }
  EXPECT_GT(rounds, 0);
  EXPECT_TRUE(wait_until([&] { return server_->open_connections() == 0; }, 5s));
  RawMllpClient c;
  ASSERT_TRUE(c.connect(port_));
  ASSERT_TRUE(c.write(good));
  auto acks = c.read_frames(1);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(ack_fields(acks[0])->code, "AA");
  EXPECT_EQ(ack_fields(acks[0])->control_id, "FUZZGOOD");
}

}  // namespace
}  // namespace gw::net
