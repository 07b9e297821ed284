// The real binary with --ops-listen: probes and scrapers get /healthz,
// /readyz and /metrics over plain HTTP with no certificate, and nothing else;
// the FHIR API stays mutual-TLS only.
#include <gtest/gtest.h>

#include "gateway/common/json.h"
#include "tests/support/fixtures.h"
#include "tests/support/gateway_process.h"
#include "tests/support/https_client.h"
#include "tests/support/pki.h"
#include "tests/support/test_gateway.h"

namespace gw {
namespace {

using test::GatewayProcess;
using test::plain_http_request;

class OpsListener : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(gw_.start(dir_.path(), {"--ops-listen", "127.0.0.1:0"})) << gw_.log(); }
  test::TempDir dir_;
  GatewayProcess gw_;
};

TEST_F(OpsListener, ProbesAndScrapersNeedNoCertificate) {
  ASSERT_NE(gw_.ops_port(), 0);
  ASSERT_NE(gw_.ops_port(), gw_.port());
  auto h = plain_http_request(gw_.ops_port(), "GET", "/healthz");
  ASSERT_TRUE(h.has_value()) << h.error().message;
  EXPECT_EQ(h->status, 200);

  auto r = plain_http_request(gw_.ops_port(), "GET", "/readyz");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->status, 200) << r->body;
  auto d = json::parse(r->body);
  ASSERT_TRUE(d.has_value() && d->IsObject()) << r->body;
  EXPECT_EQ(json::get_string(*d, "status").value_or(""), "ready");
  const auto* store = json::member(*d, "store");
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(json::get_string(*store, "status").value_or(""), "ok");
  const auto* delivery = json::member(*d, "delivery");
  ASSERT_NE(delivery, nullptr) << r->body;
  EXPECT_EQ(json::get_int(*delivery, "pending_events").value_or(-1), 0) << r->body;

  auto m = plain_http_request(gw_.ops_port(), "GET", "/metrics");
  ASSERT_TRUE(m.has_value()) << m.error().message;
  EXPECT_EQ(m->status, 200);
  EXPECT_NE(m->body.find("gw_store_"), std::string::npos) << "the store's metrics are on the scrape";
  // The probes just made are counted apart from FHIR traffic.
  EXPECT_NE(m->body.find("gw_ops_http_requests_total{route=\"readyz\",status=\"200\"}"), std::string::npos)
      << m->body.substr(0, 2000);
}

TEST_F(OpsListener, ServesNothingButTheOperationsRoutes) {
  for (const char* target : {"/fhir/metadata", "/fhir/Patient", "/admin/quarantine", "/ingest/systmone", "/"}) {
    auto r = plain_http_request(gw_.ops_port(), "GET", target);
    ASSERT_TRUE(r.has_value()) << target << ": " << r.error().message;
    EXPECT_EQ(r->status, 404) << target;
  }
  auto post = plain_http_request(gw_.ops_port(), "POST", "/readyz");
  ASSERT_TRUE(post.has_value());
  EXPECT_EQ(post->status, 405);
}

TEST_F(OpsListener, FhirStaysMutualTlsOnly) {
  // Plain HTTP to the FHIR port gets no HTTP answer (it expects a TLS handshake).
  auto plain = plain_http_request(gw_.port(), "GET", "/fhir/metadata", std::chrono::seconds(3));
  EXPECT_FALSE(plain.has_value() && plain->status == 200);
  test::HttpsClient anonymous("127.0.0.1", gw_.port(), test::dev_pki_dir() + "/ca.pem");
  EXPECT_FALSE(anonymous.connect().has_value()) << "a client without a certificate was let in";
  auto gp = test::HttpsClient::for_role(gw_.port(), "gp");
  auto meta = gp.request("GET", "/fhir/metadata");
  ASSERT_TRUE(meta.has_value());
  EXPECT_EQ(meta->status, 200);
}

TEST(OpsListenerFlag, BadAddressIsRefusedAtStartNamingTheFlag) {
  test::TempDir dir;
  std::string out;
  int rc = test::run_gateway_command({"serve", "--data-dir", dir.path(), "--ops-listen", "9464"}, out);
  EXPECT_EQ(rc, 2);
  EXPECT_NE(out.find("--ops-listen"), std::string::npos) << out;
}

}  // namespace
}  // namespace gw
