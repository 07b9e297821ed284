// Misbehaving callers against the real binary: slow clients on HTTPS and
// MLLP, header floods, deeply nested JSON, thousands of query parameters, an
// HL7 message of 100 000 segments, a 100 MB CSV field, an XML bomb, and a
// caller over its rate. Each must end within a bound with a clear error, the
// gateway's memory must stay bounded, and another caller must be served
// normally while it happens.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <future>
#include <string>
#include <thread>

#include "gateway/common/json.h"
#include "tests/support/gateway_process.h"
#include "tests/support/https_client.h"
#include "tests/support/mllp_test_kit.h"
#include "tests/support/test_gateway.h"

namespace gw {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using test::GatewayProcess;
using test::HttpsClient;

// Short timeouts so a slow client is cut off within the test's patience.
constexpr const char* kConfig = R"({
  "limits": {"handshake_timeout_ms": 1500, "idle_timeout_ms": 1500, "read_timeout_ms": 1500},
  "mllp": {"idle_timeout_ms": 1500, "frame_timeout_ms": 1500}
})";

struct Gateway {
  test::TempDir dir;
  GatewayProcess gw;
  bool started = false;
  explicit Gateway(std::vector<std::string> extra = {}) {
    std::string config = dir.path() + "/gateway.json";
    std::ofstream(config) << kConfig;
    std::vector<std::string> args = {"--config", config, "--mllp-listen", "127.0.0.1:0", "--log-level", "warn"};
    args.insert(args.end(), extra.begin(), extra.end());
    started = gw.start(dir.path() + "/data", args);
  }
  // Resident memory of the gateway process, in MiB.
  long rss_mib() const {
    std::ifstream in("/proc/" + std::to_string(gw.pid()) + "/status");
    std::string line;
    while (std::getline(in, line))
      if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6)) / 1024;
    return -1;
  }
  // Another caller is served promptly: the point of every test here.
  void expect_others_served(const std::string& while_what) {
    auto c = HttpsClient::for_role(gw.port(), "camhs");
    c.set_timeout(3s);
    auto start = Clock::now();
    auto r = c.request("GET", "/fhir/metadata");
    ASSERT_TRUE(r.has_value()) << while_what << ": " << r.error().message;
    EXPECT_EQ(r->status, 200) << while_what;
    EXPECT_LT(Clock::now() - start, 2s) << "another caller waited too long " << while_what;
  }
};

std::string outcome_text(const std::string& body) {
  auto d = json::parse(body);
  if (!d || !d->IsObject()) return "";
  const json::Value* issues = json::member(*d, "issue");
  if (!issues || !issues->IsArray() || issues->Empty()) return "";
  return std::string(json::get_string((*issues)[0], "diagnostics").value_or(""));
}

// A plain TCP connection that never starts TLS must be closed by the server.
int raw_connect(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool closed_within(int fd, std::chrono::milliseconds limit) {
  auto end = Clock::now() + limit;
  char buf[256];
  while (Clock::now() < end) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) > 0) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return true;
    }
  }
  return false;
}

TEST(Abuse, SlowlorisOnHttpsIsCutOffWhileOthersAreServed) {
  Gateway g;
  ASSERT_TRUE(g.started) << g.gw.log();
  // Connects but never says hello: closed after the handshake timeout.
  int silent = raw_connect(g.gw.port());
  ASSERT_GE(silent, 0);
  // Completes TLS, then sends its headers a byte at a time.
  auto slow = HttpsClient::for_role(g.gw.port(), "gp");
  slow.set_timeout(2s);
  ASSERT_TRUE(slow.connect());
  auto trickle = std::async(std::launch::async, [&] {
    std::string header = "GET /fhir/metadata HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    auto start = Clock::now();
    for (size_t i = 0; Clock::now() - start < 10s; ++i) {
      if (!slow.send_raw(std::string(1, i < header.size() ? header[i] : 'a'))) return Clock::now() - start;
      std::this_thread::sleep_for(100ms);
    }
    return Clock::now() - start;
  });
  std::this_thread::sleep_for(500ms);
  g.expect_others_served("during a slowloris");
  auto lasted = trickle.get();
  EXPECT_LT(lasted, 5s) << "a client trickling its headers held the connection";
  EXPECT_TRUE(closed_within(silent, 3s)) << "a connection that never started TLS was not closed";
  ::close(silent);
  g.expect_others_served("after a slowloris");
}

TEST(Abuse, SlowlorisOnMllpIsCutOffWhileOthersAreServed) {
  Gateway g;
  ASSERT_TRUE(g.started) << g.gw.log();
  // One trickles a frame, one trickles bytes outside any frame.
  test::RawMllpClient in_frame, garbage, honest;
  ASSERT_TRUE(in_frame.connect(g.gw.mllp_port()));
  ASSERT_TRUE(garbage.connect(g.gw.mllp_port()));
  ASSERT_TRUE(honest.connect(g.gw.mllp_port()));
  auto trickle = [](test::RawMllpClient& c, std::string bytes) {
    return std::async(std::launch::async, [&c, bytes] {
      auto start = Clock::now();
      for (size_t i = 0; Clock::now() - start < 10s; ++i) {
        if (c.closed_by_peer() || !c.write(std::string(1, bytes[i % bytes.size()]), 200ms)) break;
        std::string ignored;
        if (c.wait_closed(100ms, &ignored)) break;
      }
      return Clock::now() - start;
    });
  };
  auto a = trickle(in_frame, "\x0bMSH|^~\\&|SLOW|X|Y|Z|20261201000000||ADT^A28|SLOW-1|P|2.4\rPID|1||");
  auto b = trickle(garbage, "garbage outside any frame ");
  std::this_thread::sleep_for(500ms);
  ASSERT_TRUE(honest.send_message(test::hl7_message("HONEST-1")));
  auto acks = honest.read_frames(1, 5s);
  ASSERT_EQ(acks.size(), 1u) << "an honest sender was not answered during a slowloris";
  g.expect_others_served("during an MLLP slowloris");
  EXPECT_LT(a.get(), 5s) << "a sender trickling a frame held the connection";
  EXPECT_LT(b.get(), 5s) << "a sender trickling bytes outside frames held the connection";
}

TEST(Abuse, AHeaderFloodIsAnsweredWith431AndNothingElseWaits) {
  Gateway g;
  ASSERT_TRUE(g.started) << g.gw.log();
  auto c = HttpsClient::for_role(g.gw.port(), "gp");
  ASSERT_TRUE(c.connect());
  // A thousand headers, half again the 8 KiB limit, in one write (a flood
  // much larger is refused the same way but the reset of the unread rest can
  // overtake the answer on the wire).
  std::string req = "GET /fhir/metadata HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 1000; ++i) req += "X-Flood-" + std::to_string(i) + ": v\r\n";
  req += "\r\n";
  ASSERT_GT(req.size(), 12u * 1024);
  auto start = Clock::now();
  ASSERT_TRUE(c.send_raw(req));
  auto r = c.read_response();
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->status, 431);
  EXPECT_NE(outcome_text(r->body).find("request header exceeds the limit"), std::string::npos) << r->body;
  EXPECT_LT(Clock::now() - start, 3s);
  g.expect_others_served("after a header flood");
}

TEST(Abuse, TenThousandDeepJsonIsRefusedWith400InBoundedMemory) {
  Gateway g;
  ASSERT_TRUE(g.started) << g.gw.log();
  long before = g.rss_mib();
  auto c = HttpsClient::for_role(g.gw.port(), "integration");
  for (size_t depth : {10'000u, 4'000'000u}) {
    std::string body = "{\"resourceType\":\"Patient\",\"extension\":" + std::string(depth, '[') + std::string(depth, ']') + "}";
    auto start = Clock::now();
    auto r = c.request("POST", "/fhir/Patient", body, {{"Content-Type", "application/fhir+json"}});
    ASSERT_TRUE(r.has_value()) << r.error().message;
    EXPECT_EQ(r->status, 400) << r->body.substr(0, 300);
    EXPECT_NE(outcome_text(r->body).find("nested deeper than 128 levels"), std::string::npos) << r->body.substr(0, 300);
    EXPECT_LT(Clock::now() - start, 5s) << depth;
  }
  EXPECT_LT(g.rss_mib() - before, 200) << "memory grew by more than 200 MiB";
  g.expect_others_served("after deeply nested JSON");
  EXPECT_TRUE(g.gw.running());
}

TEST(Abuse, ThousandsOfQueryParametersAreRefusedWith400) {
  Gateway g;
  ASSERT_TRUE(g.started) << g.gw.log();
  auto c = HttpsClient::for_role(g.gw.port(), "gp");
  std::string q;
  for (int i = 0; i < 1500; ++i) q += (i ? "&" : "") + std::string("a=1");
  auto start = Clock::now();
  auto r = c.request("GET", "/fhir/Patient?" + q);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(outcome_text(r->body).find("1500 parameters, more than the limit of 100"), std::string::npos) << r->body;
  EXPECT_LT(Clock::now() - start, 2s);
  // Just under the limit is still a search.
  std::string ok;
  for (int i = 0; i < 100; ++i) ok += (i ? "&" : "") + std::string("identifier=urn:x%7C") + std::to_string(i);
  EXPECT_EQ(c.request("GET", "/fhir/Patient?" + ok)->status, 200);
  g.expect_others_served("after a query flood");
}

TEST(Abuse, AnHl7MessageOfAHundredThousandSegmentsGetsAnErrorAckNamingTheSegment) {
  Gateway g;
  ASSERT_TRUE(g.started) << g.gw.log();
  long before = g.rss_mib();
  std::string msg =
      "MSH|^~\\&|SYSTMONE|RFR|ROUTE|CPISGW|20261103091500+0000||ADT^A28^ADT_A05|BIG-1|P|2.4\rEVN|A28|20261103091500\r"
      "PID|1||9990237573^^^NHS^NH||TEST^Child||20190506|F\r";
  for (int i = 0; i < 100'000; ++i) msg += "NTE|1\r";
  ASSERT_LT(msg.size(), 1u << 20) << "must fit the default frame limit to reach the parser";
  test::RawMllpClient c;
  ASSERT_TRUE(c.connect(g.gw.mllp_port()));
  auto start = Clock::now();
  ASSERT_TRUE(c.send_message(msg));
  auto acks = c.read_frames(1, 10s);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_LT(Clock::now() - start, 5s);
  auto f = test::ack_fields(acks[0]);
  ASSERT_TRUE(f.has_value()) << acks[0];
  EXPECT_TRUE(f->code == "AR" || f->code == "AE") << acks[0];
  EXPECT_NE(acks[0].find("more than 10000 segments"), std::string::npos) << acks[0].substr(0, 400);
  EXPECT_NE(acks[0].find("ERR|"), std::string::npos);
  EXPECT_LT(g.rss_mib() - before, 200);
  g.expect_others_served("after a 100 000-segment message");
  // The body is not in the log, the NHS number of its PID neither.
  EXPECT_EQ(g.gw.refresh_log().find("9990237573"), std::string::npos);
}

TEST(Abuse, ACsvWithAHundredMegabyteFieldIsRefusedWith413) {
  Gateway g;
  ASSERT_TRUE(g.started) << g.gw.log();
  long before = g.rss_mib();
  // Declared up front: refused as soon as the headers are read.
  {
    auto c = HttpsClient::for_role(g.gw.port(), "sexual-health");
    ASSERT_TRUE(c.connect());
    auto start = Clock::now();
    ASSERT_TRUE(c.send_raw("POST /ingest/cashgum HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
                           "Content-Length: 104857700\r\n\r\nclinic_id,notes\r\nC1,\""));
    auto r = c.read_response();
    ASSERT_TRUE(r.has_value()) << r.error().message;
    EXPECT_EQ(r->status, 413);
    EXPECT_NE(outcome_text(r->body).find("request body exceeds the limit"), std::string::npos) << r->body;
    EXPECT_LT(Clock::now() - start, 2s);
  }
  // Streamed without a length: refused once the limit is passed, not at 100 MB.
  {
    auto c = HttpsClient::for_role(g.gw.port(), "sexual-health");
    c.set_timeout(10s);
    ASSERT_TRUE(c.connect());
    ASSERT_TRUE(c.send_raw("POST /ingest/cashgum HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
                           "Transfer-Encoding: chunked\r\n\r\n"));
    std::string chunk(1 << 20, 'x');
    char size_line[32];
    std::snprintf(size_line, sizeof size_line, "%zx\r\n", chunk.size());
    bool refused_early = false;
    for (int mib = 0; mib < 100; ++mib) {
      if (!c.send_raw(std::string(size_line) + chunk + "\r\n")) {
        refused_early = true;
        break;
      }
      if (mib == 11) break;  // past the 10 MiB limit: the answer must be there
    }
    auto r = c.read_response();
    ASSERT_TRUE(r.has_value() || refused_early);
    if (r) {
      EXPECT_EQ(r->status, 413);
    }
  }
  EXPECT_LT(g.rss_mib() - before, 200);
  g.expect_others_served("after a 100 MB field");
}

TEST(Abuse, AnXmlBombIsRefusedWithoutExpandingIt) {
  Gateway g;
  ASSERT_TRUE(g.started) << g.gw.log();
  long before = g.rss_mib();
  std::string bomb = "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n<!ENTITY lol \"lol\">\n";
  for (int i = 1; i <= 9; ++i) {
    bomb += "<!ENTITY lol" + std::to_string(i) + " \"";
    for (int k = 0; k < 10; ++k) bomb += "&lol" + (i == 1 ? std::string() : std::to_string(i - 1)) + ";";
    bomb += "\">\n";
  }
  bomb += "]>\n<MHSExtract>&lol9;</MHSExtract>\n";
  auto c = HttpsClient::for_role(g.gw.port(), "camhs");
  auto start = Clock::now();
  auto r = c.request("POST", "/ingest/camhs", bomb, {{"Content-Type", "application/xml"}});
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_GE(r->status, 400);
  EXPECT_LT(r->status, 500);
  EXPECT_NE(r->body.find("DOCTYPE"), std::string::npos) << r->body.substr(0, 400);
  EXPECT_LT(Clock::now() - start, 3s);
  EXPECT_LT(g.rss_mib() - before, 100) << "the entities were expanded";
  g.expect_others_served("after an XML bomb");
}

TEST(RateLimit, ACallerOverItsRateGets429WithRetryAfterWhileOthersAreServed) {
  Gateway g({"--rate-limit", "2:3"});
  ASSERT_TRUE(g.started) << g.gw.log();
  auto c = HttpsClient::for_role(g.gw.port(), "gp");
  int ok = 0, throttled = 0;
  test::ClientResponse last429;
  for (int i = 0; i < 10; ++i) {
    auto r = c.request("GET", "/fhir/metadata");
    ASSERT_TRUE(r.has_value());
    if (r->status == 200) ++ok;
    if (r->status == 429) {
      ++throttled;
      last429 = *r;
    }
  }
  EXPECT_GE(ok, 3);
  EXPECT_LE(ok, 5);  // the burst, and at most a token or two refilled meanwhile
  EXPECT_GE(throttled, 5);
  ASSERT_TRUE(last429.header("retry-after").has_value());
  EXPECT_GE(std::stoi(*last429.header("retry-after")), 1);
  auto d = json::parse(last429.body);
  ASSERT_TRUE(d.has_value());
  EXPECT_NE(last429.body.find("\"throttled\""), std::string::npos) << last429.body;
  // Another certificate has a bucket of its own.
  g.expect_others_served("while the gp system was throttled");
  // Counted per principal, with no patient identifier in the labels.
  auto admin = HttpsClient::for_role(g.gw.port(), "admin");
  auto m = admin.request("GET", "/metrics");
  ASSERT_TRUE(m.has_value());
  EXPECT_NE(m->body.find(R"(gw_principal_requests_total{listener="https",principal="B86001/gp/gp-systmone",outcome="rate_limited"})"),
            std::string::npos)
      << m->body.substr(0, 2000);
  // After waiting as told, the caller is served again.
  std::this_thread::sleep_for(std::chrono::seconds(std::stoi(*last429.header("retry-after"))));
  EXPECT_EQ(c.request("GET", "/fhir/metadata")->status, 200);
}

TEST(RateLimit, AnMllpSenderOverItsRateIsSlowedNeverRefusedAndEveryMessageIsAcked) {
  Gateway g({"--rate-limit", "5:2"});
  ASSERT_TRUE(g.started) << g.gw.log();
  test::RawMllpClient c;
  ASSERT_TRUE(c.connect(g.gw.mllp_port()));
  auto start = Clock::now();
  std::string all;
  for (int i = 0; i < 12; ++i) all += test::RawMllpClient::frame(test::hl7_message("RATE-" + std::to_string(i)));
  ASSERT_TRUE(c.write(all));
  auto acks = c.read_frames(12, 15s);
  auto took = Clock::now() - start;
  ASSERT_EQ(acks.size(), 12u) << "a message was dropped instead of held back";
  for (int i = 0; i < 12; ++i) {
    auto f = test::ack_fields(acks[i]);
    ASSERT_TRUE(f.has_value());
    EXPECT_EQ(f->control_id, "RATE-" + std::to_string(i));
  }
  // Two at once, then five a second: ten more need about two seconds.
  EXPECT_GE(took, 1500ms);
  g.expect_others_served("while an MLLP sender was held back");
}

}  // namespace
}  // namespace gw
