// CP-IS plans into the GP record: the in-process gateway takes plan
// CareTeams through FHIR, the feed queues them from the change feed and sends
// them over MLLP to a test practice endpoint; what arrives is parsed back
// with the ER7 parser. Also: AE retried then dead-lettered and replayed, a
// practice without an endpoint recorded undeliverable.
#include <gtest/gtest.h>

#include <thread>

#include "adapters/registry.h"
#include "adapters/systmone/systmone_adapter.h"
#include "gateway/common/json.h"
#include "gateway/events/gp_record_feed.h"
#include "gateway/events/rest_hook_delivery.h"
#include "gateway/hl7/ack.h"
#include "gateway/hl7/er7.h"
#include "gateway/net/mllp_server.h"
#include "tests/support/fixtures.h"
#include "tests/support/mllp_test_kit.h"
#include "tests/support/pki.h"
#include "tests/support/test_gateway.h"
#include "tests/support/test_store.h"

namespace gw::events {
namespace {

using namespace std::chrono_literals;

constexpr const char* kPractice = "B86001";  // the fixture Patient's GP practice

// A CPP plan managed by local authority `la`, as the CP-IS plan model says.
std::string plan_json(const std::string& patient_id, const std::string& nhs, const std::string& la,
                      const std::string& end = "") {
  std::string status = end.empty() ? "active" : "inactive";
  std::string period = R"({"start":"2026-10-01")" + (end.empty() ? std::string() : R"(,"end":")" + end + "\"") + "}";
  return R"({"resourceType":"CareTeam","status":")" + status + R"(",
    "identifier":[{"system":"https://cpis-gateway.nhs.uk/Id/cpis-plan","value":")" + la + R"(|C-1|CPP"}],
    "category":[{"coding":[{"system":"http://snomed.info/sct","code":"342191000000101","display":"Subject to child protection plan"}]}],
    "subject":{"reference":"Patient/)" + patient_id + R"(","identifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":")" + nhs + R"("}},
    "period":)" + period + R"(,
    "managingOrganization":[{"identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":")" + la + R"("},"display":"Leeds Children's Services"}],
    "telecom":[
      {"system":"phone","value":"0113 222 0001","use":"work","rank":1,"extension":[{"url":"https://cpis-gateway.nhs.uk/StructureDefinition/contact-purpose","valueCode":"emergency-duty"}]},
      {"system":"phone","value":"0113 222 0002","use":"work","rank":2,"extension":[{"url":"https://cpis-gateway.nhs.uk/StructureDefinition/contact-purpose","valueCode":"office-hours"}]}]})";
}

std::string id_of(const std::string& body) {
  auto d = json::parse(body);
  return d && d->IsObject() ? std::string(json::get_string(*d, "id").value_or("")) : std::string();
}

template <class Pred>
bool eventually(Pred p, std::chrono::milliseconds limit = 10s) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (p()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return p();
}

class GpRecordFeedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto r = adapters::make_registry(std::string(GW_SOURCE_DIR) + "/profiles");
    ASSERT_TRUE(r.has_value()) << r.error().message;
    adapters_ = std::move(*r);
    net::MllpOptions o = test::feed_listener_options();
    server_ = std::make_unique<net::MllpServer>(o, practice_, mllp_metrics_);
    server_->start();
  }
  void TearDown() override {
    if (feed_) feed_->stop();
  }

  void start_feed(std::map<std::string, delivery::MllpEndpoint> endpoints, GpRecordOptions o = {}) {
    outbound_ = std::make_unique<events::Hl7Outbound>(*adapters_->find("systmone"), std::move(endpoints));
    o.poll = 20ms;
    feed_ = std::make_unique<events::GpRecordFeed>(gw_.store(), *outbound_, gw_.metrics(), o);
    feed_->start();
  }
  delivery::MllpEndpoint practice_endpoint() {
    delivery::MllpEndpoint e;
    e.host = "127.0.0.1";
    e.port = server_->port();
    e.max_attempts = 1;
    e.ack_timeout = 3s;
    return e;
  }

  // A Patient registered with `gp` (empty: none); returns its id.
  std::string patient(const std::string& nhs, const std::string& gp = kPractice) {
    std::string body = test::fixture("fhir/Patient.json", {{"nhs", nhs}});
    if (gp != kPractice) {
      auto at = body.find(kPractice);
      body = gp.empty() ? body.substr(0, body.find(",\"generalPractitioner\"")) + "}"
                        : body.replace(at, std::string(kPractice).size(), gp);
    }
    auto r = fhir_.request("POST", "/fhir/Patient", body, {{"Content-Type", "application/fhir+json"}});
    EXPECT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 201) << r->body;
    return id_of(r->body);
  }
  std::string create_plan(const std::string& patient_id, const std::string& nhs) {
    auto r = fhir_.request("POST", "/fhir/CareTeam", plan_json(patient_id, nhs, "L0001"),
                           {{"Content-Type", "application/fhir+json"}});
    EXPECT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 201) << r->body;
    return id_of(r->body);
  }
  store::EventCounts counts(const std::string& practice) {
    auto c = gw_.store().event_counts(events::gp_queue(practice));
    EXPECT_TRUE(c.has_value());
    return c ? *c : store::EventCounts{};
  }
  std::string last_error(const std::string& practice) {
    auto evs = gw_.store().events(events::gp_queue(practice), 1, 0, "", 100);
    return evs && !evs->empty() ? evs->back().last_error : std::string();
  }

  test::InProcessGateway gw_;
  test::HttpsClient fhir_ = gw_.client("integration");
  metrics::Registry mllp_metrics_;
  test::TestMllpHandler practice_;
  std::unique_ptr<net::MllpServer> server_;
  std::unique_ptr<adapters::Registry> adapters_;
  std::unique_ptr<events::Hl7Outbound> outbound_;
  std::unique_ptr<events::GpRecordFeed> feed_;
};

TEST_F(GpRecordFeedTest, APlanAndItsEndReachThePracticeAsOruR01) {
  start_feed({{kPractice, practice_endpoint()}});
  const std::string nhs = test::nhs_number_for(4100);
  std::string pid = patient(nhs);
  std::string plan = create_plan(pid, nhs);
  ASSERT_TRUE(eventually([&] { return practice_.received() >= 1; })) << last_error(kPractice);

  auto msgs = practice_.messages();
  auto m = hl7::Message::parse(std::string_view(msgs[0].raw));
  ASSERT_TRUE(m.has_value()) << m.error().message;
  EXPECT_EQ(m->msh().field(9).raw(), "ORU^R01^ORU_R01");
  EXPECT_EQ(m->msh().field(6).raw(), kPractice);
  EXPECT_EQ(m->segment("PID").field(3).component(1).raw(), nhs);
  EXPECT_EQ(m->segment("PD1").field(3).component(3).raw(), kPractice);
  hl7::Segment obx = m->segment("OBX");
  EXPECT_EQ(obx.field(3).component(1).raw(), "342191000000101");
  EXPECT_EQ(obx.field(3).component(3).raw(), "SCT");
  EXPECT_EQ(obx.field(5).component(1).raw(), "Y");
  EXPECT_EQ(obx.field(11).raw(), "F");
  EXPECT_EQ(obx.field(12).raw(), "");  // no end date yet
  EXPECT_EQ(obx.field(14).raw(), "20261001");
  EXPECT_EQ(obx.field(15).component(1).raw(), "L0001");
  EXPECT_EQ(hl7::unescape(obx.field(15).component(2).raw(), m->delimiters()), "Leeds Children's Services");
  auto phones = m->segments("OBX");
  ASSERT_EQ(phones.size(), 3u);
  EXPECT_EQ(phones[1].field(2).raw(), "TN");
  EXPECT_EQ(phones[1].field(3).component(1).raw(), adapters::systmone::kEmergencyDutyPhoneCode);
  EXPECT_EQ(phones[1].field(5).raw(), "0113 222 0001");
  EXPECT_EQ(phones[2].field(3).component(1).raw(), adapters::systmone::kOfficeHoursPhoneCode);
  EXPECT_EQ(phones[2].field(5).raw(), "0113 222 0002");
  EXPECT_EQ(hl7::unescape(m->segment("OBR").field(3).raw(), m->delimiters()), "L0001|C-1|CPP");

  // Ending the plan sends the end date, and the plan as no longer active.
  auto put = fhir_.request("PUT", "/fhir/CareTeam/" + plan,
                           plan_json(pid, nhs, "L0001", "2026-11-20").insert(1, "\"id\":\"" + plan + "\","),
                           {{"Content-Type", "application/fhir+json"}});
  ASSERT_TRUE(put.has_value());
  ASSERT_EQ(put->status, 200) << put->body;
  ASSERT_TRUE(eventually([&] { return practice_.received() >= 2; })) << last_error(kPractice);
  msgs = practice_.messages();
  auto ended = hl7::Message::parse(std::string_view(msgs[1].raw));
  ASSERT_TRUE(ended.has_value());
  hl7::Segment eobx = ended->segment("OBX");
  EXPECT_EQ(eobx.field(12).raw(), "20261120");
  EXPECT_EQ(eobx.field(5).component(1).raw(), "N");
  EXPECT_NE(ended->control_id(), m->control_id());
  EXPECT_TRUE(eventually([&] { return counts(kPractice).delivered == 2; }));
  EXPECT_EQ(counts(kPractice).dead, 0);
}

TEST_F(GpRecordFeedTest, AnApplicationErrorIsRetriedThenDeadLetteredAndComesBackWithReplay) {
  practice_.set_ack_builder([](const net::MllpMessage& msg) {
    auto m = hl7::Message::parse(std::string_view(msg.raw));
    return hl7::build_ack(*m, hl7::AckCode::AE, "patient not registered here");
  });
  events::GpRecordOptions o;
  o.first_retry = 30ms;
  o.max_backoff = 60ms;
  o.retry_for = 400ms;
  start_feed({{kPractice, practice_endpoint()}}, o);
  const std::string nhs = test::nhs_number_for(4101);
  create_plan(patient(nhs), nhs);
  ASSERT_TRUE(eventually([&] { return counts(kPractice).dead == 1; }));
  EXPECT_GE(practice_.received(), 2u) << "AE must be retried before giving up";
  EXPECT_NE(last_error(kPractice).find("(AE)"), std::string::npos) << last_error(kPractice);
  EXPECT_NE(last_error(kPractice).find("patient not registered here"), std::string::npos);
  // Every resend of the one message carries the same MSH-10.
  auto msgs = practice_.messages();
  for (const auto& m : msgs) {
    auto parsed = hl7::Message::parse(std::string_view(m.raw));
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(parsed->control_id(), hl7::Message::parse(std::string_view(msgs[0].raw))->control_id());
  }

  // The practice is fixed; the operator replays the dead letters.
  practice_.set_ack_builder(nullptr);
  size_t before = practice_.received();
  auto n = RestHookDelivery::replay_dead_letters(gw_.store(), events::gp_queue(kPractice));
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(*n, 1);
  ASSERT_TRUE(eventually([&] { return counts(kPractice).delivered == 1; })) << last_error(kPractice);
  EXPECT_GT(practice_.received(), before);
  EXPECT_EQ(counts(kPractice).dead, 0);

  // The audit trail tells the attempts apart, as the data-flow reports count
  // them.
  auto trail = [&](const char* outcome) {
    store::AuditQuery q;
    q.channels = {"gp-feed"};
    q.outcomes = {outcome};
    q.agents = {kPractice};
    auto page = gw_.store().search_audit(q);
    EXPECT_TRUE(page.has_value());
    return page ? page->total.value_or(-1) : -1;
  };
  EXPECT_TRUE(eventually([&] { return trail("success") == 1; }));
  EXPECT_EQ(trail("dead"), 1);
  EXPECT_GE(trail("retry"), 1);
}

TEST_F(GpRecordFeedTest, APracticeWithoutAnEndpointOrAPatientWithoutAPracticeIsRecordedUndeliverable) {
  start_feed({{kPractice, practice_endpoint()}});
  const std::string a = test::nhs_number_for(4102), b = test::nhs_number_for(4103);
  create_plan(patient(a, "Y99999"), a);
  create_plan(patient(b, ""), b);
  ASSERT_TRUE(eventually([&] { return counts("Y99999").dead == 1 && counts("").dead == 1; }));
  EXPECT_NE(last_error("Y99999").find("no MLLP endpoint is configured for practice Y99999"), std::string::npos);
  EXPECT_NE(last_error("").find("no registered GP practice"), std::string::npos);
  // Counted just after the commit the test saw: wait for the counters too.
  EXPECT_TRUE(eventually([&] {
    std::string metrics = gw_.metrics().render();
    return metrics.find(R"(gw_gp_hl7_dead_letters_total{practice="Y99999",reason="no-endpoint"} 1)") !=
               std::string::npos &&
           metrics.find(R"(gw_gp_hl7_dead_letters_total{practice="none",reason="no-practice"} 1)") !=
               std::string::npos;
  })) << gw_.metrics().render();
  EXPECT_EQ(practice_.received(), 0u);
}

TEST_F(GpRecordFeedTest, ADeletedPlanIsSentAsWithdrawn) {
  start_feed({{kPractice, practice_endpoint()}});
  const std::string nhs = test::nhs_number_for(4105);
  std::string plan = create_plan(patient(nhs), nhs);
  ASSERT_TRUE(eventually([&] { return practice_.received() >= 1; }));
  auto admin = gw_.client("admin");
  auto del = admin.request("DELETE", "/fhir/CareTeam/" + plan);
  ASSERT_TRUE(del.has_value());
  ASSERT_TRUE(del->status == 200 || del->status == 204) << del->status << " " << del->body;
  ASSERT_TRUE(eventually([&] { return practice_.received() >= 2; })) << last_error(kPractice);
  auto m = hl7::Message::parse(std::string_view(practice_.messages()[1].raw));
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->segment("PID").field(3).component(1).raw(), nhs);
  EXPECT_EQ(m->segment("OBX").field(3).component(1).raw(), "342191000000101");
  EXPECT_EQ(m->segment("OBX").field(5).component(1).raw(), "N");
  EXPECT_EQ(m->segment("OBX").field(11).raw(), "W");
}

TEST_F(GpRecordFeedTest, APracticeThatNeverAnswersHoldsUpOnlyItself) {
  test::TestMllpHandler hung(test::TestMllpHandler::Mode::never);
  net::MllpServer hung_server(test::feed_listener_options(), hung, mllp_metrics_);
  delivery::MllpEndpoint silent = practice_endpoint();
  silent.port = hung_server.start();
  silent.ack_timeout = 60s;  // longer than the test waits for the other practice
  start_feed({{kPractice, practice_endpoint()}, {"Y12345", silent}});
  const std::string a = test::nhs_number_for(4106), b = test::nhs_number_for(4107);
  create_plan(patient(a, "Y12345"), a);
  ASSERT_TRUE(eventually([&] { return hung.received() == 1; }));
  create_plan(patient(b), b);
  EXPECT_TRUE(eventually([&] { return counts(kPractice).delivered == 1; }, 20s))
      << "the practice that answers waited behind the one that does not";
  EXPECT_EQ(counts("Y12345").pending, 1);
  // Closing the silent practice ends the send in flight, so the feed can stop.
  hung_server.shutdown(std::chrono::milliseconds(0));
  feed_->stop();
}

TEST_F(GpRecordFeedTest, CareTeamsThatAreNotPlansAreNotSent) {
  start_feed({{kPractice, practice_endpoint()}});
  const std::string nhs = test::nhs_number_for(4104);
  std::string pid = patient(nhs);
  auto r = fhir_.request("POST", "/fhir/CareTeam", test::fixture("fhir/CareTeam.json", {{"patient", pid}}),
                         {{"Content-Type", "application/fhir+json"}});
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->status, 201) << r->body;
  create_plan(pid, nhs);  // the control: a plan after it is sent
  ASSERT_TRUE(eventually([&] { return counts(kPractice).delivered == 1; }));
  EXPECT_EQ(counts(kPractice).events, 1);
  EXPECT_EQ(practice_.received(), 1u);
}

}  // namespace
}  // namespace gw::events

namespace gw::events {
namespace {

// The practice's MLLP/TLS endpoint presents a certificate from the dev CA
// that has expired or names another host: the plan must not go there, and
// the queued message's error (GET /admin/gp-hl7/<ODS>) must say why.
class GpRecordFeedTlsTest : public GpRecordFeedTest {
 protected:
  void expect_refused(const std::string& cert_name, const std::string& reason) {
    const std::string& pki = test::dev_pki_dir();
    net::MllpOptions o = test::feed_listener_options();
    o.tls = true;
    o.tls_files = net::TlsFiles{pki + "/" + cert_name + ".pem", pki + "/" + cert_name + ".key", pki + "/ca.pem", {}};
    o.admits = [](const security::Principal&) { return true; };  // the gateway presents its server certificate
    net::MllpServer tls_practice(o, practice_, mllp_metrics_);
    delivery::MllpEndpoint e = practice_endpoint();
    e.port = tls_practice.start();
    e.tls = true;
    e.ca_file = pki + "/ca.pem";
    e.cert_file = pki + "/server.pem";
    e.key_file = pki + "/server.key";
    GpRecordOptions go;
    go.first_retry = 60s;  // one attempt is enough to see the reason
    start_feed({{kPractice, e}}, go);
    const std::string nhs = test::nhs_number_for(4190);
    create_plan(patient(nhs), nhs);
    ASSERT_TRUE(eventually([&] { return !last_error(kPractice).empty(); })) << "the send was never tried";
    std::string error = last_error(kPractice);
    EXPECT_NE(error.find("certificate verify failed"), std::string::npos) << error;
    EXPECT_NE(error.find(reason), std::string::npos) << error;
    EXPECT_EQ(practice_.received(), 0u) << "the plan reached a practice endpoint the gateway could not verify";
    EXPECT_EQ(counts(kPractice).delivered, 0);
  }
};

TEST_F(GpRecordFeedTlsTest, APracticeEndpointWithAnExpiredCertificateIsRefusedWithTheReason) {
  expect_refused("server-expired", "certificate has expired");
}

TEST_F(GpRecordFeedTlsTest, APracticeEndpointCertifiedForAnotherHostIsRefusedWithTheReason) {
  expect_refused("server-wrong-host", "IP address mismatch");  // the endpoint is 127.0.0.1
}

}  // namespace
}  // namespace gw::events
