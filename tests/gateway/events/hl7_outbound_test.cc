// FHIR rendered to the SystmOne dialect and sent over MLLP to the receiving
// practice's endpoint: what arrives is checked by parsing it back, and the
// ACK decides the outcome.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "adapters/registry.h"
#include "gateway/common/metrics.h"
#include "gateway/events/hl7_outbound.h"
#include "gateway/hl7/ack.h"
#include "gateway/hl7/er7.h"
#include "gateway/net/mllp_server.h"
#include "tests/support/mllp_test_kit.h"

namespace gw::events {
namespace {

const char* kPlanBundle = R"({"resourceType":"Bundle","type":"collection","entry":[
 {"resource":{"resourceType":"Patient","id":"p1","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9434765919"}],
   "name":[{"family":"THOMPSON","given":["Ellie"]}],"gender":"female","birthDate":"2019-05-06"}},
 {"resource":{"resourceType":"Flag","id":"f1","status":"active",
   "code":{"coding":[{"system":"http://snomed.info/sct","code":"342191000000101","display":"Subject to child protection plan"}]},
   "subject":{"reference":"Patient/p1"},"period":{"start":"2026-10-01"},
   "author":{"identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"E08000018"},"display":"Rotherham Children's Services"}}}]})";

uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

class Hl7OutboundTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto r = adapters::make_registry(std::string(GW_SOURCE_DIR) + "/profiles");
    ASSERT_TRUE(r.has_value()) << r.error().message;
    registry_ = std::move(*r);
  }
  const adapters::Adapter& systmone() { return *registry_->find("systmone"); }

  std::unique_ptr<net::MllpServer> listen(test::TestMllpHandler& h, uint16_t port = 0) {
    net::MllpOptions o = test::feed_listener_options();
    o.port = port;
    auto s = std::make_unique<net::MllpServer>(o, h, metrics_);
    s->start();
    return s;
  }

  delivery::MllpEndpoint endpoint(uint16_t port) {
    delivery::MllpEndpoint e;
    e.host = "127.0.0.1";
    e.port = port;
    e.max_attempts = 8;
    e.initial_backoff = std::chrono::milliseconds(50);
    e.max_backoff = std::chrono::milliseconds(200);
    e.ack_timeout = std::chrono::milliseconds(3000);
    return e;
  }

  metrics::Registry metrics_;
  std::unique_ptr<adapters::Registry> registry_;
};

TEST_F(Hl7OutboundTest, APlanReachesThePracticeAsAnOruWithTheNhsNumberAndPlanCode) {
  test::TestMllpHandler practice;
  auto server = listen(practice);
  events::Hl7Outbound out(systmone(), {{"C87001", endpoint(server->port())}});
  IssueSink issues;
  auto r = out.send("C87001", adapters::Bundle{kPlanBundle}, issues);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_TRUE(r->ok()) << r->last_error;
  EXPECT_EQ(r->ack_code, "AA");
  ASSERT_EQ(practice.received(), 1u);
  std::string raw = practice.messages()[0].raw;
  auto m = hl7::Message::parse(std::string_view(raw));
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->msh().field(9).component(1).raw(), "ORU");
  EXPECT_NE(raw.find("9434765919"), std::string::npos);
  EXPECT_NE(raw.find("342191000000101"), std::string::npos) << raw;
  // And our own adapter reads it back as the same child.
  IssueSink back;
  auto bundle = systmone().parse(raw, back);
  ASSERT_TRUE(bundle.has_value()) << bundle.error().message;
  EXPECT_NE(bundle->json.find("9434765919"), std::string::npos);
}

TEST_F(Hl7OutboundTest, AnApplicationErrorAckIsReportedNotAccepted) {
  test::TestMllpHandler practice;
  practice.set_ack_builder([](const net::MllpMessage& msg) {
    auto m = hl7::Message::parse(std::string_view(msg.raw));
    return hl7::build_ack(*m, hl7::AckCode::AE, "unknown patient");
  });
  auto server = listen(practice);
  events::Hl7Outbound out(systmone(), {{"C87001", endpoint(server->port())}});
  IssueSink issues;
  auto r = out.send("C87001", adapters::Bundle{kPlanBundle}, issues);
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(r->ok());
  EXPECT_EQ(r->ack_code, "AE");
  EXPECT_NE(r->text.find("unknown patient"), std::string::npos);
}

TEST_F(Hl7OutboundTest, AnEndpointThatComesUpLateStillGetsTheMessage) {
  uint16_t port = free_port();
  events::Hl7Outbound out(systmone(), {{"C87001", endpoint(port)}});
  test::TestMllpHandler practice;
  std::unique_ptr<net::MllpServer> server;
  std::thread later([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    server = listen(practice, port);
  });
  IssueSink issues;
  auto r = out.send("C87001", adapters::Bundle{kPlanBundle}, issues);
  later.join();
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->ok()) << r->last_error;
  EXPECT_GT(r->attempts, 1);
  EXPECT_EQ(practice.received(), 1u);
}

TEST_F(Hl7OutboundTest, UnknownPracticeAndUnrenderableBundleAreErrors) {
  events::Hl7Outbound out(systmone(), {});
  IssueSink issues;
  auto r = out.send("Z99999", adapters::Bundle{kPlanBundle}, issues);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::not_found);
  events::Hl7Outbound out2(systmone(), {{"C87001", endpoint(free_port())}});
  auto bad = out2.send("C87001", adapters::Bundle{R"({"resourceType":"Bundle","type":"collection","entry":[]})"}, issues);
  ASSERT_FALSE(bad.has_value());
}

}  // namespace
}  // namespace gw::events
