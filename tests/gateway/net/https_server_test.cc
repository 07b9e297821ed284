// The HTTPS listener over real mutual TLS on 127.0.0.1, with the dev PKI.
#include "gateway/net/https_server.h"

#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <chrono>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "tests/support/https_client.h"
#include "tests/support/pki.h"

namespace gw::net {
namespace {

using namespace std::chrono_literals;
using test::ClientResponse;
using test::HttpsClient;
using Clock = std::chrono::steady_clock;

// /echo/...  answers at once with what the server told it about the request.
// /slow/<ms>/<n> answers from another thread after <ms>.
// /never     keeps the Respond and never calls it.
class TestHandler : public Handler {
 public:
  void handle(Request req, Respond respond) override {
    if (req.path.rfind("/never", 0) == 0) {
      std::lock_guard lock(mu_);
      held_.push_back(std::move(respond));
      return;
    }
    if (req.path.rfind("/slow/", 0) == 0) {
      std::string rest = req.path.substr(6);
      int ms = std::stoi(rest.substr(0, rest.find('/')));
      std::string n = rest.find('/') == std::string::npos ? "" : rest.substr(rest.find('/') + 1);
      std::lock_guard lock(mu_);
      threads_.emplace_back([ms, n, respond = std::move(respond)] {
        std::this_thread::sleep_for(std::chrono::milliseconds(ms));
        Response r;
        r.route = "slow";
        r.body = "{\"n\":\"" + n + "\"}";
        respond(std::move(r));
      });
      return;
    }
    Response r;
    r.route = "echo";
    r.headers.emplace_back("X-Req-Conn", std::to_string(req.conn_id));
    r.body = "{\"method\":\"" + req.method + "\",\"path\":\"" + req.path + "\",\"query\":\"" + req.query +
             "\",\"ods\":\"" + req.principal.ods + "\",\"role\":\"" + req.principal.role + "\",\"system\":\"" +
             req.principal.system + "\",\"base_url\":\"" + req.base_url + "\",\"body_size\":" +
             std::to_string(req.body.size()) + ",\"x_test\":\"" + std::string(req.header("x-test").value_or("")) +
             "\"}";
    respond(std::move(r));
  }

  void join() {
    std::vector<std::thread> ts;
    {
      std::lock_guard lock(mu_);
      ts.swap(threads_);
    }
    for (auto& t : ts) t.join();
  }
  ~TestHandler() override { join(); }

 private:
  std::mutex mu_;
  std::vector<std::thread> threads_;
  std::vector<Respond> held_;
};

class HttpsServerTest : public ::testing::Test {
 protected:
  void start(config::Limits limits = {}) {
    const std::string& pki = test::dev_pki_dir();
    HttpsOptions opts;
    opts.host = "127.0.0.1";
    opts.port = 0;
    opts.threads = 2;
    opts.tls = TlsFiles{pki + "/server.pem", pki + "/server.key", pki + "/ca.pem", {}};
    opts.limits = limits;
    router_.add("/echo", &handler_);
    router_.add("/slow", &handler_);
    router_.add("/never", &handler_);
    server_ = std::make_unique<HttpsServer>(opts, router_, registry_);
    port_ = server_->start();
    ASSERT_NE(port_, 0);
  }

  void TearDown() override {
    handler_.join();
    if (server_) server_->shutdown(1s);
  }

  HttpsClient client(const std::string& role = "gp") {
    auto c = HttpsClient::for_role(port_, role);
    c.set_timeout(5s);
    return c;
  }

  // With TLS 1.3 the refusal of a client certificate can only surface after
  // the client's side of the handshake; either stage counts as refused.
  static bool refused(HttpsClient& c) {
    auto r = c.connect();
    if (!r) return true;
    return !c.request("GET", "/echo/x");
  }

  bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds limit = 3s) {
    auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
      if (pred()) return true;
      std::this_thread::sleep_for(10ms);
    }
    return pred();
  }

  TestHandler handler_;
  Router router_;
  metrics::Registry registry_;
  std::unique_ptr<HttpsServer> server_;
  uint16_t port_ = 0;
};

TEST_F(HttpsServerTest, MissingCertificateFilesFailAtConstructionNamingTheFile) {
  const std::string& pki = test::dev_pki_dir();
  HttpsOptions opts;
  opts.port = 0;
  opts.tls = TlsFiles{pki + "/server.pem", pki + "/server.key", "/nonexistent/ca.pem", {}};
  try {
    HttpsServer s(opts, router_, registry_);
    FAIL() << "expected std::runtime_error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/ca.pem"), std::string::npos) << e.what();
  }
}

TEST_F(HttpsServerTest, ClientWithoutCertificateIsRefused) {
  start();
  HttpsClient c("127.0.0.1", port_, test::dev_pki_dir() + "/ca.pem");
  c.set_timeout(5s);
  EXPECT_TRUE(refused(c));
  EXPECT_TRUE(wait_until([&] { return registry_.render().find("gw_tls_handshake_failures_total 1") != std::string::npos; }))
      << registry_.render();
}

TEST_F(HttpsServerTest, CertificateFromAnotherCaIsRefused) {
  start();
  const std::string& pki = test::dev_pki_dir();
  HttpsClient c("127.0.0.1", port_, pki + "/ca.pem", pki + "/client-foreign.pem", pki + "/client-foreign.key");
  c.set_timeout(5s);
  EXPECT_TRUE(refused(c));
  // The same client with a certificate from the right CA is let in, so the
  // refusal above is about the certificate and not the client.
  auto ok = client("gp");
  auto r = ok.request("GET", "/echo/x");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, 200);
}

TEST_F(HttpsServerTest, Tls11OnlyClientIsRefused) {
  start();
  auto c = client("gp");
  c.set_max_tls_version(TLS1_1_VERSION);
  EXPECT_FALSE(c.connect());
}

TEST_F(HttpsServerTest, PrincipalPathQueryAndBaseUrlReachTheHandler) {
  start();
  auto c = client("gp");
  auto r = c.request("GET", "/echo/a%20b?identifier=https://fhir.nhs.uk/Id/nhs-number%7C9000000009", "",
                     {{"X-Test", "yes"}});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, 200);
  // make-dev-pki.sh issues client-gp as O=B86001/OU=gp/CN=gp-systmone.
  EXPECT_NE(r->body.find("\"ods\":\"B86001\""), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("\"role\":\"gp\""), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("\"system\":\"gp-systmone\""), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("\"path\":\"/echo/a b\""), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("\"query\":\"identifier=https://fhir.nhs.uk/Id/nhs-number%7C9000000009\""),
            std::string::npos)
      << r->body;
  EXPECT_NE(r->body.find("\"x_test\":\"yes\""), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("\"base_url\":\"https://127.0.0.1:" + std::to_string(port_) + "\""), std::string::npos)
      << r->body;
  EXPECT_EQ(r->header("server").value_or(""), "cpis-gateway");
  EXPECT_EQ(r->header("content-type").value_or(""), "application/fhir+json; charset=utf-8");
  EXPECT_EQ(r->header("content-length").value_or(""), std::to_string(r->body.size()));

  auto admin = client("admin");
  auto a = admin.request("GET", "/echo/y");
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_NE(a->body.find("\"ods\":\"RXX\""), std::string::npos) << a->body;
  EXPECT_NE(a->body.find("\"role\":\"admin\""), std::string::npos) << a->body;
}

TEST_F(HttpsServerTest, WithoutHostTheBaseUrlIsTheListenerAndHttp10Closes) {
  start();
  auto c = client();
  ASSERT_TRUE(c.connect());
  ASSERT_TRUE(c.send_raw("GET /echo/x HTTP/1.0\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("\"base_url\":\"https://127.0.0.1:" + std::to_string(port_) + "\""), std::string::npos)
      << r->body;
  EXPECT_FALSE(r->keep_alive);
  EXPECT_TRUE(wait_until([&] { return server_->open_connections() == 0; }, 3s));
}

TEST_F(HttpsServerTest, KeepAliveServesManyRequestsOnOneConnection) {
  start();
  auto c = client();
  std::string first_conn;
  for (int i = 0; i < 50; ++i) {
    auto r = c.request("POST", "/echo/" + std::to_string(i), std::string(static_cast<size_t>(i), 'x'));
    ASSERT_TRUE(r) << i << ": " << r.error().message;
    ASSERT_EQ(r->status, 200);
    EXPECT_NE(r->body.find("\"body_size\":" + std::to_string(i)), std::string::npos);
    auto conn = r->header("x-req-conn").value_or("");
    if (i == 0) first_conn = conn;
    EXPECT_EQ(conn, first_conn) << "request " << i << " arrived on another connection";
  }
  EXPECT_EQ(server_->open_connections(), 1u);
}

TEST_F(HttpsServerTest, PipelinedResponsesComeBackInRequestOrder) {
  start();
  auto c = client();
  ASSERT_TRUE(c.connect());
  // The first request is answered last: ordering must come from the server.
  std::string batch;
  const int delays[] = {400, 300, 200, 100, 0};
  for (int i = 0; i < 5; ++i) {
    batch += "GET /slow/" + std::to_string(delays[i]) + "/" + std::to_string(i) +
             " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  }
  auto t0 = Clock::now();
  ASSERT_TRUE(c.send_raw(batch));
  for (int i = 0; i < 5; ++i) {
    auto r = c.read_response();
    ASSERT_TRUE(r) << i << ": " << r.error().message;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "{\"n\":\"" + std::to_string(i) + "\"}");
  }
  // Read-ahead means the handlers ran side by side: about 400 ms, not 1000.
  EXPECT_LT(Clock::now() - t0, 900ms);
}

TEST_F(HttpsServerTest, PipelineDepthIsBounded) {
  config::Limits l;
  l.max_pipelined = 2;
  start(l);
  auto c = client();
  ASSERT_TRUE(c.connect());
  std::string batch;
  for (int i = 0; i < 6; ++i) batch += "GET /slow/150/" + std::to_string(i) + " HTTP/1.1\r\nHost: h\r\n\r\n";
  auto t0 = Clock::now();
  ASSERT_TRUE(c.send_raw(batch));
  for (int i = 0; i < 6; ++i) {
    auto r = c.read_response();
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->body, "{\"n\":\"" + std::to_string(i) + "\"}");
  }
  // At most two at a time: three rounds of 150 ms, never one.
  EXPECT_GE(Clock::now() - t0, 400ms);
}

TEST_F(HttpsServerTest, BodyOverLimitGets413OperationOutcomeThenClose) {
  config::Limits l;
  l.body_bytes = 1024;
  start(l);
  auto c = client();
  auto ok = c.request("POST", "/echo/a", std::string(1024, 'a'));
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->status, 200);
  auto r = c.request("POST", "/echo/a", std::string(4096, 'a'));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, 413);
  EXPECT_NE(r->body.find("\"resourceType\":\"OperationOutcome\""), std::string::npos) << r->body;
  EXPECT_FALSE(r->keep_alive);
  EXPECT_EQ(r->header("connection").value_or(""), "close");
}

TEST_F(HttpsServerTest, OversizedHeaderGets4xx) {
  config::Limits l;
  l.header_bytes = 1024;
  start(l);
  auto c = client();
  auto r = c.request("GET", "/echo/a", "", {{"X-Big", std::string(4000, 'b')}});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_GE(r->status, 400);
  EXPECT_LT(r->status, 500);
  EXPECT_NE(r->body.find("OperationOutcome"), std::string::npos);
  EXPECT_FALSE(r->keep_alive);
}

TEST_F(HttpsServerTest, MalformedRequestGets400) {
  start();
  auto c = client();
  ASSERT_TRUE(c.connect());
  ASSERT_TRUE(c.send_raw("GET /echo/x HTTP/1.1\r\nHost: h\r\nBad Header Line\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("OperationOutcome"), std::string::npos);
}

TEST_F(HttpsServerTest, UnknownRouteGets404OperationOutcome) {
  start();
  auto c = client();
  auto r = c.request("GET", "/nothing/here");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, 404);
  EXPECT_NE(r->body.find("\"resourceType\":\"OperationOutcome\""), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("not-found"), std::string::npos) << r->body;
  // The connection stays usable.
  auto again = c.request("GET", "/echo/x");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200);
  EXPECT_TRUE(wait_until([&] {
    return registry_.render().find("gw_http_requests_total{route=\"unmatched\",status=\"404\"} 1") !=
           std::string::npos;
  }))
      << registry_.render();
}

TEST_F(HttpsServerTest, HandlerThatNeverAnswersGets504) {
  config::Limits l;
  l.handler_timeout = 200ms;
  start(l);
  auto c = client();
  auto t0 = Clock::now();
  auto r = c.request("GET", "/never");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, 504);
  EXPECT_GE(Clock::now() - t0, 150ms);
  EXPECT_NE(r->body.find("OperationOutcome"), std::string::npos);
  auto again = c.request("GET", "/echo/x");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200);
}

TEST_F(HttpsServerTest, LateAnswerAfter504IsIgnored) {
  config::Limits l;
  l.handler_timeout = 100ms;
  start(l);
  auto c = client();
  auto r = c.request("GET", "/slow/300/late");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, 504);
  std::this_thread::sleep_for(400ms);  // the late answer arrives meanwhile
  auto next = c.request("GET", "/echo/after");
  ASSERT_TRUE(next) << next.error().message;
  EXPECT_EQ(next->status, 200);
  EXPECT_NE(next->body.find("/echo/after"), std::string::npos) << next->body;
}

TEST_F(HttpsServerTest, IdleConnectionIsClosedAfterIdleTimeout) {
  config::Limits l;
  l.idle_timeout = 200ms;
  start(l);
  auto c = client();
  auto r = c.request("GET", "/echo/x");
  ASSERT_TRUE(r);
  EXPECT_EQ(server_->open_connections(), 1u);
  EXPECT_TRUE(wait_until([&] { return server_->open_connections() == 0; }, 2s));
  EXPECT_FALSE(c.read_response()) << "the server should have closed the connection";
}

TEST_F(HttpsServerTest, SlowHandlerIsNotCutByIdleTimeout) {
  config::Limits l;
  // Longer than the client's 150 ms post-handshake wait for a TLS 1.3 alert.
  l.idle_timeout = 250ms;
  start(l);
  auto c = client();
  auto r = c.request("GET", "/slow/700/1");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "{\"n\":\"1\"}");
}

TEST_F(HttpsServerTest, ConnectionsBeyondMaxAreClosed) {
  config::Limits l;
  l.max_connections = 2;
  start(l);
  auto a = client(), b = client();
  ASSERT_TRUE(a.request("GET", "/echo/a"));
  ASSERT_TRUE(b.request("GET", "/echo/b"));
  auto extra = client();
  EXPECT_TRUE(refused(extra));
  EXPECT_NE(registry_.render().find("gw_http_connections_refused_total 1"), std::string::npos)
      << registry_.render();
  // The first two are unaffected.
  auto r = a.request("GET", "/echo/a2");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(HttpsServerTest, ShutdownDrainsInFlightRequest) {
  start();
  auto c = client();
  ASSERT_TRUE(c.connect());
  ASSERT_TRUE(c.send_raw("GET /slow/300/drained HTTP/1.1\r\nHost: h\r\n\r\n"));
  std::this_thread::sleep_for(50ms);
  auto t0 = Clock::now();
  auto done = std::async(std::launch::async, [&] { server_->shutdown(5s); });
  auto r = c.read_response();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "{\"n\":\"drained\"}");
  EXPECT_EQ(done.wait_for(3s), std::future_status::ready);
  EXPECT_LT(Clock::now() - t0, 3s);
  EXPECT_EQ(server_->open_connections(), 0u);
  // No longer accepting.
  auto late = client();
  EXPECT_FALSE(late.connect());
}

TEST_F(HttpsServerTest, ShutdownForcesCloseAfterGrace) {
  start();
  auto c = client();
  ASSERT_TRUE(c.connect());
  ASSERT_TRUE(c.send_raw("GET /never HTTP/1.1\r\nHost: h\r\n\r\n"));
  std::this_thread::sleep_for(50ms);
  auto t0 = Clock::now();
  server_->shutdown(200ms);
  EXPECT_LT(Clock::now() - t0, 2s);
  EXPECT_EQ(server_->open_connections(), 0u);
}

TEST_F(HttpsServerTest, MetricsCountRequestsByRouteAndStatus) {
  start();
  auto c = client();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(c.request("GET", "/echo/m"));
  // Counted once the write completes, which can be just after the client has the bytes.
  wait_until([&] { return registry_.render().find("route=\"echo\",status=\"200\"} 3") != std::string::npos; });
  std::string text = registry_.render();
  EXPECT_NE(text.find("gw_http_requests_total{route=\"echo\",status=\"200\"} 3"), std::string::npos) << text;
  EXPECT_NE(text.find("gw_http_request_seconds_count{route=\"echo\"} 3"), std::string::npos) << text;
  EXPECT_NE(text.find("gw_http_open_connections 1"), std::string::npos) << text;
}

}  // namespace
}  // namespace gw::net
