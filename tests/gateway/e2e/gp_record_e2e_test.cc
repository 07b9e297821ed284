// The real binary sends CP-IS plans to a practice's MLLP endpoint configured
// in gp_hl7.practices; a plan committed just before kill -9, while the
// practice was answering AE, still arrives after the restart, and what was
// already delivered is not sent again (the feed resumes from its cursor).
#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "gateway/common/json.h"
#include "gateway/common/metrics.h"
#include "gateway/hl7/ack.h"
#include "gateway/hl7/er7.h"
#include "gateway/net/mllp_server.h"
#include "tests/support/fixtures.h"
#include "tests/support/gateway_process.h"
#include "tests/support/https_client.h"
#include "tests/support/mllp_test_kit.h"
#include "tests/support/test_gateway.h"

namespace gw {
namespace {

using namespace std::chrono_literals;

const std::vector<std::pair<std::string, std::string>> kJson = {{"Content-Type", "application/fhir+json"}};

std::string plan_json(const std::string& patient_id, const std::string& nhs) {
  return R"({"resourceType":"CareTeam","status":"active",
    "category":[{"coding":[{"system":"http://snomed.info/sct","code":"764841000000100"}]}],
    "subject":{"reference":"Patient/)" + patient_id + R"(","identifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":")" + nhs + R"("}},"period":{"start":"2026-10-01"},
    "managingOrganization":[{"identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"L0001"},"display":"Leeds"}],
    "telecom":[{"system":"phone","value":"0113 222 0001","use":"work","rank":1,"extension":[{"url":"https://cpis-gateway.nhs.uk/StructureDefinition/contact-purpose","valueCode":"emergency-duty"}]}]})";
}

std::string id_of(const std::string& body) {
  auto d = json::parse(body);
  return d && d->IsObject() ? std::string(json::get_string(*d, "id").value_or("")) : std::string();
}

// The messages the practice received for this NHS number, with their MSH-10.
std::vector<std::string> control_ids_for(const test::TestMllpHandler& practice, const std::string& nhs) {
  std::vector<std::string> out;
  for (const auto& m : practice.messages()) {
    auto parsed = hl7::Message::parse(std::string_view(m.raw));
    if (parsed && parsed->segment("PID").field(3).component(1).raw() == nhs)
      out.emplace_back(parsed->control_id());
  }
  return out;
}

template <class Pred>
bool eventually(Pred p, std::chrono::milliseconds limit = 15s) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (p()) return true;
    std::this_thread::sleep_for(25ms);
  }
  return p();
}

TEST(GpRecordE2E, APlanCommittedBeforeKillNineReachesThePracticeAfterRestartAndNothingIsSentTwice) {
  test::TestPractice endpoint;
  test::TestMllpHandler& practice = endpoint.handler;
  uint16_t port = endpoint.port;
  test::TempDir dir;
  std::string cfg = dir.path() + "/config.json";
  std::ofstream(cfg) << R"({"gp_hl7":{"practices":[{"ods":"B86001","address":"127.0.0.1:)" << port
                     << R"("}],"poll_ms":50,"first_retry_ms":50,"max_backoff_ms":200,"ack_timeout_ms":2000}})";

  test::GatewayProcess gw;
  ASSERT_TRUE(gw.start(dir.path() + "/data", {"--config", cfg})) << gw.log();
  auto c = test::HttpsClient::for_role(gw.port(), "integration");
  auto admin = test::HttpsClient::for_role(gw.port(), "admin");
  auto create = [&c](const std::string& type, const std::string& body) {
    auto r = c.request("POST", "/fhir/" + type, body, kJson);
    EXPECT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 201) << r->body;
    return id_of(r->body);
  };
  const std::string first = test::nhs_number_for(8100), second = test::nhs_number_for(8101);
  std::string p1 = create("Patient", test::fixture("fhir/Patient.json", {{"nhs", first}}));
  create("CareTeam", plan_json(p1, first));
  ASSERT_TRUE(eventually([&] { return control_ids_for(practice, first).size() == 1; })) << gw.log();
  // Delivered means committed as delivered, not only received.
  ASSERT_TRUE(eventually([&] {
    auto m = admin.request("GET", "/metrics");
    return m && m->body.find("gw_gp_hl7_delivered_total 1") != std::string::npos;
  }));

  // The practice now fails every message; a plan lands and the gateway dies.
  practice.set_ack_builder([](const net::MllpMessage& msg) {
    auto m = hl7::Message::parse(std::string_view(msg.raw));
    return hl7::build_ack(*m, hl7::AckCode::AE, "try later");
  });
  std::string p2 = create("Patient", test::fixture("fhir/Patient.json", {{"nhs", second}}));
  create("CareTeam", plan_json(p2, second));
  gw.kill9();

  practice.set_ack_builder(nullptr);
  test::GatewayProcess again;
  ASSERT_TRUE(again.start(dir.path() + "/data", {"--config", cfg})) << again.log();
  ASSERT_TRUE(eventually([&] {
    auto m = test::HttpsClient::for_role(again.port(), "admin").request("GET", "/metrics");
    return m && m->body.find("gw_gp_hl7_delivered_total 1") != std::string::npos;
  })) << again.log();
  auto ids = control_ids_for(practice, second);
  ASSERT_GE(ids.size(), 1u);
  for (const auto& id : ids) EXPECT_EQ(id, ids.front()) << "a resend must keep its MSH-10";
  EXPECT_EQ(control_ids_for(practice, first).size(), 1u) << "the first plan was sent again after the restart";
  EXPECT_EQ(again.terminate(), 0);
}

TEST(GpRecordE2E, ARejectedPlanIsDeadLetteredAtOnceAndTheReplayCommandSendsItAgain) {
  test::TestPractice endpoint;
  test::TestMllpHandler& practice = endpoint.handler;
  practice.set_ack_builder([](const net::MllpMessage& msg) {
    auto m = hl7::Message::parse(std::string_view(msg.raw));
    return hl7::build_ack(*m, hl7::AckCode::AR, "unsupported message");
  });
  uint16_t port = endpoint.port;
  test::TempDir dir;
  std::string cfg = dir.path() + "/config.json";
  // A retry window of an hour: only AR can have dead-lettered it within the test.
  std::ofstream(cfg) << R"({"gp_hl7":{"practices":[{"ods":"B86001","address":"127.0.0.1:)" << port
                     << R"("}],"poll_ms":50,"retry_for_seconds":3600}})";
  test::GatewayProcess gw;
  ASSERT_TRUE(gw.start(dir.path() + "/data", {"--config", cfg})) << gw.log();
  auto c = test::HttpsClient::for_role(gw.port(), "integration");
  auto admin = test::HttpsClient::for_role(gw.port(), "admin");
  const std::string nhs = test::nhs_number_for(8102);
  auto p = c.request("POST", "/fhir/Patient", test::fixture("fhir/Patient.json", {{"nhs", nhs}}), kJson);
  ASSERT_TRUE(p.has_value());
  ASSERT_EQ(p->status, 201);
  auto plan = c.request("POST", "/fhir/CareTeam", plan_json(id_of(p->body), nhs), kJson);
  ASSERT_TRUE(plan.has_value());
  ASSERT_EQ(plan->status, 201) << plan->body;
  ASSERT_TRUE(eventually([&] {
    auto m = admin.request("GET", "/metrics");
    return m && m->body.find(R"(gw_gp_hl7_dead_letters_total{practice="B86001",reason="rejected"} 1)") !=
                    std::string::npos;
  }));
  EXPECT_EQ(control_ids_for(practice, nhs).size(), 1u) << "AR is not retried";
  // The operator sees which message and why.
  auto summary = admin.request("GET", "/admin/gp-hl7");
  ASSERT_TRUE(summary.has_value());
  ASSERT_EQ(summary->status, 200) << summary->body;
  EXPECT_NE(summary->body.find(R"({"practice":"B86001","queue":"gp-hl7:B86001","pending":0,"delivered":0,"dead":1)"),
            std::string::npos)
      << summary->body;
  auto dead = admin.request("GET", "/admin/gp-hl7/B86001");
  ASSERT_TRUE(dead.has_value());
  ASSERT_EQ(dead->status, 200) << dead->body;
  auto listed = json::parse(dead->body);
  ASSERT_TRUE(listed.has_value());
  const json::Value* msgs = json::member(*listed, "messages");
  ASSERT_TRUE(msgs && msgs->IsArray() && msgs->Size() == 1u) << dead->body;
  EXPECT_EQ(json::get_string((*msgs)[0], "status").value_or(""), "dead");
  EXPECT_EQ(json::get_string((*msgs)[0], "last_error").value_or(""),
            "rejected by the practice (AR): unsupported message");
  EXPECT_EQ(json::get_string((*msgs)[0], "plan").value_or("").rfind("CareTeam/" + id_of(plan->body), 0), 0u);
  auto not_admin = c.request("GET", "/admin/gp-hl7");
  ASSERT_TRUE(not_admin.has_value());
  EXPECT_EQ(not_admin->status, 403);

  practice.set_ack_builder(nullptr);
  std::string out;
  ASSERT_EQ(test::run_gateway_command(
                {"replay", "--data-dir", dir.path() + "/data", "--dead-letters", "--subscription", "gp-hl7:B86001"},
                out),
            0)
      << out;
  EXPECT_NE(out.find("requeued 1"), std::string::npos) << out;
  ASSERT_TRUE(eventually([&] {
    auto m = admin.request("GET", "/metrics");
    return m && m->body.find("gw_gp_hl7_delivered_total 1") != std::string::npos;
  }));
  auto ids = control_ids_for(practice, nhs);
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids[0], ids[1]);
  EXPECT_EQ(gw.terminate(), 0);
}

}  // namespace
}  // namespace gw
