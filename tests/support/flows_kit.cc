#include "tests/support/flows_kit.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "gateway/events/subscriptions.h"
#include "tests/support/subscription_kit.h"
#include "tests/support/user_tokens_kit.h"

namespace gw::test {

using namespace std::chrono_literals;

namespace {
events::SubscriptionsOptions options(std::chrono::milliseconds retry_for = std::chrono::hours(72)) {
  auto o = fast_subscriptions(4, std::chrono::milliseconds(200));
  o.timers.poll = std::chrono::milliseconds(200);
  o.delivery.retry_for = retry_for;
  return o;
}
}  // namespace

FlowFixture::FlowFixture() : gw(config::Limits{}, options()) {}
FlowFixture::FlowFixture(std::chrono::milliseconds retry_for) : gw(config::Limits{}, options(retry_for)) {}

HttpsClient& FlowFixture::client(const std::string& role) {
  auto it = clients_.find(role);
  if (it == clients_.end()) it = clients_.emplace(role, gw.client(role)).first;
  return it->second;
}

std::string FlowFixture::patient_id(const std::string& nhs) {
  auto id = gw.store().find_by_unique_key(nhs);
  return id && *id ? **id : std::string();
}

ClientResponse FlowFixture::call(const std::string& role, const std::string& method, const std::string& target,
                                 const std::string& body, const std::string& type) {
  auto r = client(role).request(method, target, body, {{"Content-Type", type}});
  EXPECT_TRUE(r.has_value()) << method << " " << target;
  return r ? *r : ClientResponse{};
}

ClientResponse FlowFixture::call_as_person(const std::string& role, const std::string& method,
                                           const std::string& target, const std::string& body,
                                           const std::string& type) {
  auto r = client(role).request(method, target, body, {{"Content-Type", type}, test::user_header(role)});
  EXPECT_TRUE(r.has_value()) << method << " " << target;
  return r ? *r : ClientResponse{};
}

std::string FlowFixture::subscribe(const std::string& role, const std::string& topic, const std::string& path) {
  SubscriptionArgs a{.topic = topic, .endpoint = rx.url(path), .content = "full-resource"};
  auto r = call(role, "POST", "/fhir/Subscription", subscription_json(a));
  EXPECT_EQ(r.status, 201) << r.body;
  auto d = json::parse(r.body);
  std::string id = d && d->IsObject() ? std::string(json::get_string(*d, "id").value_or("")) : std::string();
  EXPECT_TRUE(rx.wait_for([&](auto& p) { return count_type(p, "handshake", path) >= 1; }, 10s));
  return id;
}

void FlowFixture::hl7(const std::string& message) {
  auto r = call("integration", "POST", "/ingest/systmone", message, "application/hl7-v2");
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_NE(r.body.find("AA"), std::string::npos) << r.body;
}

std::vector<json::Document> focus_resources(const std::vector<ReceivedPost>& posts, const std::string& path) {
  std::vector<json::Document> out;
  for (const auto& p : posts) {
    if (p.target != path || read_notification(p.body).type != "event-notification") continue;
    auto b = json::parse(p.body);
    if (!b) continue;
    const json::Value& entries = (*b)["entry"];
    for (json::SizeType i = 1; i < entries.Size(); ++i) {
      if (!entries[i].HasMember("resource")) continue;
      json::Document d;
      d.CopyFrom(entries[i]["resource"], d.GetAllocator());
      out.push_back(std::move(d));
    }
  }
  return out;
}

std::vector<json::Document> FlowFixture::received(const std::string& path) { return focus_resources(rx.posts(), path); }

bool FlowFixture::wait_events(size_t n, const std::string& path, std::chrono::milliseconds timeout) {
  return rx.wait_for([&](auto& p) { return event_numbers(p, path).size() >= n; }, timeout);
}

int64_t FlowFixture::events_of(const std::string& subscription) {
  auto c = gw.store().event_counts(subscription);
  return c ? c->events : -1;
}

void FlowFixture::settle() {
  auto last = gw.store().changes_after(0, 1000000);
  int64_t want = last && !last->empty() ? last->back().seq : 0;
  for (int i = 0; i < 200; ++i) {
    auto a = gw.store().cursor("subscriptions"), b = gw.store().cursor("flow-timers");
    if (a && b && *a >= want && *b >= want) return;
    std::this_thread::sleep_for(50ms);
  }
  ADD_FAILURE() << "the fan-out or the flow timers did not catch up";
}

std::string payload_text(const json::Value& c) {
  std::string out;
  if (!c.HasMember("payload")) return out;
  for (const auto& p : c["payload"].GetArray()) out += std::string(p["contentString"].GetString()) + "\n";
  return out;
}

std::set<std::string> about_numbers(const json::Value& c) {
  std::set<std::string> out;
  if (!c.HasMember("about")) return out;
  for (const auto& a : c["about"].GetArray())
    if (a.HasMember("identifier")) out.insert(a["identifier"]["value"].GetString());
  return out;
}

std::string a28(const std::string& nhs, const std::string& given, const std::string& dob, const std::string& gp,
                const std::vector<std::string>& extra_segments, const std::string& sex, const std::string& msh7) {
  static std::atomic<int> seq{0};
  std::string m = "MSH|^~\\&|SYSTMONE|RFR|ROUTE|CPISGW|" + msh7 + "+0000||ADT^A28^ADT_A05|S1-" + nhs + "-" +
                  std::to_string(++seq) + "|P|2.4|||||GBR|UNICODE UTF-8\r";
  m += "EVN|A28|" + msh7 + "\r";
  m += "PID|1||" + nhs + "^^^NHS^NH||FAMILY^" + given + "||" + dob + "|" + sex +
       "|||1 Street^^Rotherham^^S60 1AA^GBR^H\r";
  if (!gp.empty()) m += "PD1|||Practice^^" + gp + "^^^NHS^ODS\r";
  for (const auto& s : extra_segments) m += s + "\r";
  return m;
}

std::string ed_a04(const std::string& nhs, const std::string& dob, const std::string& site, const std::string& day,
                   const std::string& visit, const std::vector<std::string>& dg1_codes, const std::vector<std::string>& obx) {
  std::string m = "MSH|^~\\&|SYMPHONY|" + site + "|ROUTE|CPISGW|" + day + "1015+0000||ADT^A04^ADT_A01|" + visit +
                  "|P|2.4\r";
  m += "EVN|A04|" + day + "1000\r";
  m += "PID|1||" + nhs + "^^^NHS^NH||FAMILY^Person||" + dob + "|F\r";
  m += "PV1|1|E|ED^MAJORS^B1^" + site + "||||||||||||||||" + visit + "-V" + std::string(25, '|') + day + "1000\r";
  int i = 1;
  for (const auto& c : dg1_codes) m += "DG1|" + std::to_string(i++) + "||" + c + "||" + day + "1000|A\r";
  for (const auto& o : obx) m += o + "\r";
  return m;
}

}  // namespace gw::test
