// Subscription payloads honour the sensitivity labels for every role: a
// labelled Patient that every subscriber's organisation cares for notifies
// nobody who may not read it (not even "something changed"), while the
// unlabelled change after it reaches everyone. A matrix over all fifteen
// roles on the patient-change topic: roles the topic refuses cannot subscribe.
#include <gtest/gtest.h>

#include <map>

#include "gateway/common/json.h"
#include "gateway/events/subscriptions.h"
#include "gateway/events/topics.h"
#include "tests/support/fixtures.h"
#include "tests/support/hook_receiver.h"
#include "tests/support/subscription_kit.h"
#include "tests/support/test_gateway.h"

namespace gw {
namespace {

using namespace std::literals;

const std::vector<std::string> kRoles = {"local-authority", "unscheduled-care", "gp", "health-visiting", "midwifery",
                                         "school-nursing", "paediatric-liaison", "lac-health", "camhs",
                                         "adult-mental-health", "substance-misuse", "sexual-health", "commissioner",
                                         "integration", "admin"};
// Every ODS code of the dev PKI (certs/make-dev-pki.sh), so that caseload
// admits every subscriber and only the labels can hold a notification back.
const std::vector<std::string> kOds = {"L0001", "RXX01", "B86001", "RXX02", "RXX03", "RXX04", "RXX05",
                                       "RXX06", "RXX07", "RXX08", "RXX09", "RXX10", "QWO",   "RXX"};

std::string patient(const std::string& nhs, const std::string& security) {
  std::string gps;
  for (const auto& ods : kOds)
    gps += std::string(gps.empty() ? "" : ",") +
           R"({"identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":")" + ods + R"("}})";
  std::string meta = security.empty() ? std::string() : R"("meta":{"security":[)" + security + "]},";
  return R"({"resourceType":"Patient",)" + meta + R"("identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":")" + nhs +
         R"("}],"birthDate":"2010-02-03","generalPractitioner":[)" + gps + "]}";
}

TEST(SensitiveNotifications, LabelledChangesNotifyNoRoleThatMayNotReadThem) {
  events::SubscriptionsOptions o;
  o.delivery.workers = 4;
  o.delivery.poll = 200ms;
  o.fanout.poll = 200ms;
  test::InProcessGateway gw(config::Limits{}, o);
  test::HookReceiver rx;
  auto topics = events::Topics::load(std::string(GW_SOURCE_DIR) + "/profiles");
  ASSERT_TRUE(topics.has_value());
  const events::Topic* topic = topics->by_name("patient-change");
  ASSERT_NE(topic, nullptr);

  std::vector<std::string> subscribed;
  for (const auto& role : kRoles) {
    test::SubscriptionArgs a;
    a.topic = "patient-change";
    a.endpoint = rx.url("/" + role);
    a.content = "full-resource";
    auto r = gw.client(role).request("POST", "/fhir/Subscription", test::subscription_json(a),
                                     {{"Content-Type", "application/fhir+json"}});
    ASSERT_TRUE(r.has_value());
    if (!topic->allows_role(role)) {
      EXPECT_GE(r->status, 400) << role << " may not subscribe to patient-change";
      continue;
    }
    ASSERT_EQ(r->status, 201) << role << ": " << r->body;
    subscribed.push_back(role);
    ASSERT_TRUE(rx.wait_for([&](auto& p) { return test::count_type(p, "handshake", "/" + role) >= 1; }, 10s)) << role;
  }
  ASSERT_FALSE(subscribed.empty());

  const std::string labels = R"({"system":"http://terminology.hl7.org/CodeSystem/v3-Confidentiality","code":"R"},)"
                             R"({"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"STD"},)"
                             R"({"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"SEX"})";
  auto hidden = gw.client("sexual-health").request("POST", "/fhir/Patient", patient(test::nhs_number_for(8101), labels),
                                                   {{"Content-Type", "application/fhir+json"}});
  ASSERT_EQ(hidden->status, 201) << hidden->body;
  std::string hidden_id(json::get_string(*json::parse(hidden->body), "id").value_or(""));
  // The change after it reaches every subscriber: by then each has been
  // decided on for the labelled one too (the fan-out runs in change order).
  auto plain = gw.client("integration").request("POST", "/fhir/Patient", patient(test::nhs_number_for(8102), ""),
                                                {{"Content-Type", "application/fhir+json"}});
  ASSERT_EQ(plain->status, 201) << plain->body;
  std::string plain_id(json::get_string(*json::parse(plain->body), "id").value_or(""));

  for (const auto& role : subscribed) {
    ASSERT_TRUE(rx.wait_for([&](auto& p) { return test::event_numbers(p, "/" + role).size() >= 1; }, 20s)) << role;
    std::vector<std::string> focus;
    for (const auto& p : rx.posts()) {
      if (p.target != "/" + role) continue;
      auto seen = test::read_notification(p.body);
      if (seen.type != "event-notification") continue;
      focus.insert(focus.end(), seen.focus.begin(), seen.focus.end());
      EXPECT_EQ(p.body.find(hidden_id), std::string::npos) << role << " heard of the labelled Patient";
      EXPECT_EQ(p.body.find("\"STD\""), std::string::npos) << role;
    }
    ASSERT_EQ(focus.size(), 1u) << role;
    EXPECT_TRUE(focus[0].ends_with("Patient/" + plain_id)) << role << ": " << focus[0];
  }
}

}  // namespace
}  // namespace gw
