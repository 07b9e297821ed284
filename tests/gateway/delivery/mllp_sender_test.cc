#include "gateway/delivery/mllp_sender.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <thread>

#include "gateway/hl7/ack.h"
#include "gateway/hl7/er7.h"
#include "gateway/net/mllp_server.h"
#include "tests/support/mllp_test_kit.h"

namespace gw::delivery {
namespace {

using namespace std::chrono_literals;
using test::hl7_message;
using test::TestMllpHandler;

// A loopback port nothing listens on (bound, read, released).
uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

class MllpSenderTest : public ::testing::Test {
 protected:
  void start(uint16_t port = 0, std::chrono::milliseconds idle = 300s) {
    net::MllpOptions o = test::feed_listener_options();
    o.port = port;
    o.idle_timeout = idle;
    server_ = std::make_unique<net::MllpServer>(o, handler_, registry_);
    port_ = server_->start();
  }
  void TearDown() override {
    handler_.join();
    if (server_) server_->shutdown(1s);
  }
  MllpEndpoint endpoint(uint16_t port) {
    MllpEndpoint ep;
    ep.host = "127.0.0.1";
    ep.port = port;
    ep.max_attempts = 3;
    ep.initial_backoff = 20ms;
    ep.max_backoff = 100ms;
    ep.connect_timeout = 2s;
    ep.ack_timeout = 2s;
    return ep;
  }
  static std::string ack_with(const net::MllpMessage& m, hl7::AckCode code, std::string_view text,
                              std::span<const hl7::AckError> errors = {}) {
    auto parsed = hl7::Message::parse(std::string_view(m.raw));
    return hl7::build_ack(*parsed, code, text, errors);
  }

  TestMllpHandler handler_;
  metrics::Registry registry_;
  std::unique_ptr<net::MllpServer> server_;
  uint16_t port_ = 0;
};

TEST_F(MllpSenderTest, AaIsAcceptedAndTheConnectionIsReused) {
  start();
  MllpSender s(endpoint(port_));
  auto r1 = s.send(hl7_message("SEND1"));
  ASSERT_TRUE(r1);
  EXPECT_EQ(r1->status, SendStatus::accepted) << r1->last_error;
  EXPECT_TRUE(r1->ok());
  EXPECT_EQ(r1->ack_code, "AA");
  EXPECT_EQ(r1->attempts, 1);
  EXPECT_TRUE(s.connected());
  auto r2 = s.send(hl7_message("SEND2"));
  ASSERT_TRUE(r2);
  EXPECT_TRUE(r2->ok());
  auto msgs = handler_.messages();
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].conn_id, msgs[1].conn_id);
  EXPECT_EQ(msgs[0].raw, hl7_message("SEND1"));
}

TEST_F(MllpSenderTest, AeIsReportedWithMsa3AndErrTextAndIsNotPermanent) {
  handler_.set_ack_builder([](const net::MllpMessage& m) {
    hl7::AckError e{"PID", 1, 3, hl7::ErrorCode::data_type, "NHS number check digit is wrong"};
    return ack_with(m, hl7::AckCode::AE, "message invalid", std::span(&e, 1));
  });
  start();
  MllpSender s(endpoint(port_));
  auto r = s.send(hl7_message("SENDAE"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, SendStatus::application_error);
  EXPECT_FALSE(r->ok());
  EXPECT_FALSE(r->permanent);
  EXPECT_EQ(r->ack_code, "AE");
  EXPECT_NE(r->text.find("message invalid"), std::string::npos) << r->text;
  EXPECT_NE(r->text.find("NHS number check digit is wrong"), std::string::npos) << r->text;
  EXPECT_EQ(r->attempts, 1);  // an answer is never resent by send()
  EXPECT_EQ(handler_.received(), 1u);
}

TEST_F(MllpSenderTest, ArIsAPermanentReject) {
  handler_.set_ack_builder(
      [](const net::MllpMessage& m) { return ack_with(m, hl7::AckCode::AR, "unsupported message type"); });
  start();
  MllpSender s(endpoint(port_));
  auto r = s.send(hl7_message("SENDAR"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, SendStatus::rejected);
  EXPECT_TRUE(r->permanent);
  EXPECT_EQ(r->text, "unsupported message type");
  EXPECT_EQ(handler_.received(), 1u);
}

TEST_F(MllpSenderTest, AckForAnotherControlIdIsDetected) {
  handler_.set_ack_builder([](const net::MllpMessage&) {
    return std::string("MSH|^~\\&|RX|RX|TX|TX|20240101120000||ACK|A1|P|2.4\rMSA|AA|SOMEONEELSE\r");
  });
  start();
  MllpSender s(endpoint(port_));
  auto r = s.send(hl7_message("MINE1"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, SendStatus::bad_ack);
  EXPECT_FALSE(r->ok());
  EXPECT_NE(r->last_error.find("MSA-2"), std::string::npos);
  EXPECT_FALSE(s.connected());  // out of step: not reused
}

TEST_F(MllpSenderTest, MessageWithoutControlIdIsAnError) {
  MllpSender s(endpoint(free_port()));
  EXPECT_FALSE(s.send("MSH|^~\\&|A|B|C|D|20240101||ADT^A28||P|2.4\r"));
  EXPECT_FALSE(s.send("PID|1\r"));
}

TEST_F(MllpSenderTest, EndpointDownIsRetriedThenGivenUp) {
  MllpSender s(endpoint(free_port()));
  auto t0 = std::chrono::steady_clock::now();
  auto r = s.send(hl7_message("DOWN1"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, SendStatus::unreachable);
  EXPECT_EQ(r->attempts, 3);
  EXPECT_FALSE(r->last_error.empty());
  // Two backoffs of at least half of 20 ms and 40 ms.
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 30ms);
}

TEST_F(MllpSenderTest, EndpointThatComesUpLaterSucceedsOnALaterAttempt) {
  uint16_t port = free_port();
  auto ep = endpoint(port);
  ep.max_attempts = 20;
  ep.initial_backoff = 100ms;
  ep.max_backoff = 200ms;
  auto result = std::async(std::launch::async, [ep] {
    MllpSender s(ep);
    return s.send(hl7_message("LATER1"));
  });
  std::this_thread::sleep_for(250ms);
  start(port);
  auto r = result.get();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, SendStatus::accepted) << r->last_error;
  EXPECT_GT(r->attempts, 1);
  EXPECT_EQ(handler_.received(), 1u);
}

TEST_F(MllpSenderTest, KeptConnectionClosedByTheReceiverIsReplacedWithoutCountingAnAttempt) {
  start(0, 100ms);
  MllpSender s(endpoint(port_));
  ASSERT_TRUE(s.send(hl7_message("IDLE1"))->ok());
  std::this_thread::sleep_for(400ms);  // the listener's idle timeout closes it
  auto r = s.send(hl7_message("IDLE2"));
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->ok()) << r->last_error;
  EXPECT_EQ(r->attempts, 1);
  EXPECT_EQ(handler_.received(), 2u);
}

TEST_F(MllpSenderTest, ReceiverThatNeverAcksTimesOutAndCountsAttempts) {
  handler_.set_mode(TestMllpHandler::Mode::never);
  start();
  auto ep = endpoint(port_);
  ep.ack_timeout = 200ms;
  ep.max_attempts = 2;
  MllpSender s(ep);
  auto r = s.send(hl7_message("SILENT1"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, SendStatus::unreachable);
  EXPECT_EQ(r->attempts, 2);
  EXPECT_EQ(handler_.received(), 2u);  // resent: receivers acknowledge a repeated MSH-10 again
}

}  // namespace
}  // namespace gw::delivery
