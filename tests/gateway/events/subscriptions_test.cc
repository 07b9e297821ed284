// The subscriptions engine end to end in one process: real HTTPS (the
// gateway's listener and a HookReceiver endpoint, both with mutual TLS),
// real SQLite, the shipped topics and policy.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <future>
#include <set>
#include <thread>


#include <map>

#include "gateway/common/json.h"
#include "gateway/events/subscriptions.h"
#include "gateway/ingest/hl7_ingest.h"
#include "tests/support/fixtures.h"
#include "tests/support/hook_receiver.h"
#include "tests/support/pki.h"
#include "tests/support/subscription_kit.h"
#include "tests/support/test_gateway.h"
#include "tests/support/test_store.h"

namespace gw {
namespace {

using namespace std::chrono_literals;
using test::HookReceiver;
using test::ReceivedPost;
using test::SubscriptionArgs;

events::SubscriptionsOptions fast_options() { return test::fast_subscriptions(8, std::chrono::milliseconds(200)); }

std::string id_of(const std::string& body) {
  auto d = json::parse(body);
  if (!d || !d->IsObject()) return {};
  return std::string(json::get_string(*d, "id").value_or(""));
}

struct Fixture {
  explicit Fixture(events::SubscriptionsOptions o = fast_options()) : gw(config::Limits{}, o) {}
  test::InProcessGateway gw;
  HookReceiver rx;

  std::map<std::string, test::HttpsClient> clients;  // one kept-alive connection per role
  test::ClientResponse call(const std::string& role, const std::string& method, const std::string& target,
                            const std::string& body = "") {
    auto it = clients.find(role);
    if (it == clients.end()) it = clients.emplace(role, gw.client(role)).first;
    auto r = it->second.request(method, target, body, {{"Content-Type", "application/fhir+json"}});
    EXPECT_TRUE(r.has_value()) << method << " " << target;
    return r ? *r : test::ClientResponse{};
  }
  // Creates a subscription and waits until it is active; returns its id.
  std::string subscribe(const std::string& role, SubscriptionArgs a) {
    if (a.endpoint.empty()) a.endpoint = rx.url();
    auto r = call(role, "POST", "/fhir/Subscription", test::subscription_json(a));
    EXPECT_EQ(r.status, 201) << r.body;
    std::string id = id_of(r.body);
    EXPECT_TRUE(wait_status(role, id, "active")) << "subscription never became active";
    return id;
  }
  std::string status_of(const std::string& role, const std::string& id) {
    auto r = call(role, "GET", "/fhir/Subscription/" + id);
    auto d = json::parse(r.body);
    return d ? std::string(json::get_string(*d, "status").value_or("")) : std::string();
  }
  bool wait_status(const std::string& role, const std::string& id, const std::string& want,
                   std::chrono::milliseconds timeout = 10s) {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      if (status_of(role, id) == want) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }
  std::string patient(uint32_t seed, const std::string& extra = "") {
    std::string body = test::fixture("fhir/Patient.json", {{"nhs", test::nhs_number_for(seed)}});
    if (!extra.empty()) body = body.substr(0, body.rfind('}')) + "," + extra + "}";
    auto r = call("integration", "POST", "/fhir/Patient", body);
    EXPECT_EQ(r.status, 201) << r.body;
    return id_of(r.body);
  }
  bool wait_events(size_t n, std::chrono::milliseconds timeout = 15s, const std::string& path = "") {
    return rx.wait_for([&](const std::vector<ReceivedPost>& p) { return test::event_numbers(p, path).size() >= n; },
                       timeout);
  }
};

template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 5s) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return pred();
}

uint64_t metric(test::InProcessGateway& gw, const std::string& name_and_labels) {
  std::string text = gw.metrics().render();
  auto pos = text.find("\n" + name_and_labels + " ");
  if (pos == std::string::npos) return 0;
  return std::stoull(text.substr(pos + name_and_labels.size() + 2));
}

TEST(Subscriptions, HandshakeActivatesThenEveryPatientChangeArrivesInOrder) {
  Fixture f;
  auto id = f.subscribe("integration", {.headers = {"Authorization: Bearer s3cret", "X-Trace: t1"}});
  auto posts = f.rx.posts();
  ASSERT_GE(posts.size(), 1u);
  test::Seen hs = test::read_notification(posts[0].body);
  ASSERT_TRUE(hs.ok) << hs.why << "\n" << posts[0].body;
  EXPECT_EQ(hs.type, "handshake");
  EXPECT_EQ(hs.status, "requested");
  EXPECT_EQ(hs.events_since_start, 0);
  EXPECT_TRUE(hs.subscription.ends_with("/Subscription/" + id)) << hs.subscription;
  EXPECT_EQ(hs.entries, 1u);  // a handshake carries the status only
  // The gateway's certificate is the client certificate; the headers are sent.
  EXPECT_EQ(posts[0].peer.role, "gateway");
  EXPECT_EQ(posts[0].header("authorization"), "Bearer s3cret");
  EXPECT_EQ(posts[0].header("x-trace"), "t1");
  EXPECT_EQ(posts[0].header("content-type"), "application/fhir+json");

  std::string p1 = f.patient(1);
  std::string p2 = f.patient(2);
  // An update of p1 (a new version) is a third event.
  auto upd = f.call("integration", "PUT", "/fhir/Patient/" + p1,
                    "{\"resourceType\":\"Patient\",\"id\":\"" + p1 +
                        "\",\"identifier\":[{\"system\":\"https://fhir.nhs.uk/Id/nhs-number\",\"value\":\"" +
                        test::nhs_number_for(1) + "\"}],\"gender\":\"female\"}");
  ASSERT_EQ(upd.status, 200) << upd.body;
  ASSERT_TRUE(f.wait_events(3)) << f.rx.posts().size();
  std::vector<test::Seen> seen;
  for (const auto& p : f.rx.posts()) {
    auto s = test::read_notification(p.body);
    if (s.type == "event-notification") seen.push_back(s);
  }
  ASSERT_EQ(seen.size(), 3u);
  std::vector<std::string> focus_ids = {p1, p2, p1};
  for (size_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(seen[i].ok) << seen[i].why;
    EXPECT_EQ(seen[i].numbers, std::vector<int64_t>{static_cast<int64_t>(i + 1)});
    EXPECT_EQ(seen[i].events_since_start, static_cast<int64_t>(i + 1));
    EXPECT_EQ(seen[i].status, "active");
    ASSERT_EQ(seen[i].focus.size(), 1u);
    EXPECT_TRUE(seen[i].focus[0].ends_with("/Patient/" + focus_ids[i])) << seen[i].focus[0];
    EXPECT_EQ(seen[i].entries, 2u);  // id-only: the status plus one entry without resource
  }
  // The store holds every event as delivered, with an audit row each.
  auto counts = f.gw.store().event_counts(id);
  ASSERT_TRUE(counts.has_value());
  EXPECT_EQ(counts->events, 3);
  EXPECT_TRUE(eventually([&] {
    auto c = f.gw.store().event_counts(id);
    return c && c->delivered == 3;
  }));
}

TEST(Subscriptions, AnEndpointWhoseCertificateDoesNotChainToTheConfiguredCaGetsNothing) {
  auto o = fast_options();
  o.delivery.ca_file = test::dev_pki_dir() + "/other-ca.pem";
  Fixture f(o);
  auto r = f.call("integration", "POST", "/fhir/Subscription", test::subscription_json({.endpoint = f.rx.url()}));
  ASSERT_EQ(r.status, 201) << r.body;
  std::string id = id_of(r.body);
  ASSERT_TRUE(f.wait_status("integration", id, "error"));
  auto cur = f.call("integration", "GET", "/fhir/Subscription/" + id);
  EXPECT_NE(cur.body.find("handshake"), std::string::npos) << cur.body;  // the reason is in Subscription.error
  f.patient(701);
  std::this_thread::sleep_for(500ms);
  EXPECT_TRUE(f.rx.posts().empty()) << "a notification reached an endpoint the gateway could not verify";
}

TEST(Subscriptions, PayloadKindsHaveTheShapesOfTheIgAndValidateAgainstTheR4Schema) {
  Fixture f;
  std::map<std::string, std::string> ids;
  for (const char* content : {"empty", "id-only", "full-resource"}) {
    ids[content] = f.subscribe("integration", {.endpoint = f.rx.url(std::string("/") + content), .content = content});
  }
  std::string pid = f.patient(7);
  for (const char* content : {"empty", "id-only", "full-resource"})
    ASSERT_TRUE(f.wait_events(1, 10s, std::string("/") + content)) << content;

  test::TempDir out;
  int n = 0;
  for (const auto& p : f.rx.posts()) {
    std::ofstream(out.path() + "/" + std::to_string(++n) + ".json") << p.body;
    auto s = test::read_notification(p.body);
    ASSERT_TRUE(s.ok) << s.why;
    if (s.type != "event-notification") continue;
    auto d = json::parse(p.body);
    const auto& entries = (*d)["entry"];
    if (p.target == "/empty") {
      EXPECT_EQ(entries.Size(), 1u) << "empty: no entries beyond the status";
      EXPECT_TRUE(s.focus.empty()) << "empty: no focus";
    } else if (p.target == "/id-only") {
      ASSERT_EQ(entries.Size(), 2u);
      EXPECT_FALSE(entries[1].HasMember("resource"));
      EXPECT_TRUE(std::string(entries[1]["fullUrl"].GetString()).ends_with("/Patient/" + pid));
      EXPECT_EQ(s.focus.size(), 1u);
    } else {
      ASSERT_EQ(entries.Size(), 2u);
      ASSERT_TRUE(entries[1].HasMember("resource"));
      EXPECT_EQ(std::string(entries[1]["resource"]["id"].GetString()), pid);
      EXPECT_EQ(std::string(entries[1]["resource"]["resourceType"].GetString()), "Patient");
      EXPECT_EQ(s.focus.size(), 1u);
    }
  }
  // $status (instance and type level) and $events answer IG shapes too.
  for (const auto& target : {"/fhir/Subscription/" + ids["full-resource"] + "/$status",
                             std::string("/fhir/Subscription/$status"),
                             "/fhir/Subscription/" + ids["id-only"] + "/$events?eventsSinceNumber=1&eventsUntilNumber=1",
                             std::string("/fhir/Basic"), std::string("/fhir/Basic/patient-change"),
                             std::string("/fhir/metadata")}) {
    auto r = f.call("integration", "GET", target);
    ASSERT_EQ(r.status, 200) << target << ": " << r.body;
    std::ofstream(out.path() + "/" + std::to_string(++n) + ".json") << r.body;
  }
  auto meta = f.call("integration", "GET", "/fhir/metadata");
  EXPECT_NE(meta.body.find("capabilitystatement-subscriptiontopic-canonical"), std::string::npos);
  EXPECT_NE(meta.body.find("https://cpis-gateway.nhs.uk/SubscriptionTopic/cpis-plan-change"), std::string::npos);
  auto ev = f.call("integration", "GET", "/fhir/Subscription/" + ids["id-only"] + "/$events?eventsSinceNumber=1");
  auto es = test::read_notification(ev.body);
  ASSERT_TRUE(es.ok) << es.why;
  EXPECT_EQ(es.type, "query-event");
  EXPECT_EQ(es.numbers, std::vector<int64_t>{1});

  std::string cmd = "node " + std::string(GW_SOURCE_DIR) + "/tests/tools/fhir-validate.js " + out.path() + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buf[4096];
  while (size_t k = fread(buf, 1, sizeof buf, pipe)) output.append(buf, k);
  int status = pclose(pipe);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << output;
  EXPECT_NE(output.find("fhir-validate: " + std::to_string(n) + " resources, 0 invalid"), std::string::npos) << output;
}

TEST(Subscriptions, RefusesWhatTheIgOrThePolicyDoesNotAllow) {
  Fixture f;
  auto post = [&](const std::string& role, SubscriptionArgs a) {
    if (a.endpoint.empty()) a.endpoint = f.rx.url();
    return f.call(role, "POST", "/fhir/Subscription", test::subscription_json(a));
  };
  auto r = post("integration", {.endpoint = "http://127.0.0.1:1/hook"});
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_NE(r.body.find("https"), std::string::npos) << r.body;
  EXPECT_EQ(post("integration", {.topic = "no-such-topic"}).status, 422);
  EXPECT_EQ(post("integration", {.content = ""}).status, 422);  // backport-payload-content is required
  EXPECT_EQ(post("integration", {.content = "everything"}).status, 422);
  EXPECT_EQ(post("integration", {.channel_type = "email"}).status, 422);
  EXPECT_EQ(post("integration", {.payload = "application/fhir+xml"}).status, 422);
  EXPECT_EQ(post("integration", {.filters = {"Patient?code=abc"}}).status, 422);  // not a patient-change filter
  EXPECT_EQ(post("integration", {.headers = {"Content-Type: text/plain"}}).status, 422);
  // Role not allowed to use the topic.
  r = post("local-authority", {});
  EXPECT_EQ(r.status, 403) << r.body;
  // Filters outside the subscriber's organisation.
  EXPECT_EQ(post("gp", {.filters = {"Patient?organization=RXX02"}}).status, 403);
  EXPECT_EQ(post("gp", {.filters = {"Patient?organization=B86001"}}).status, 201);
  // Commissioners may not subscribe at all (policy data).
  EXPECT_EQ(post("commissioner", {}).status, 403);
  // A Subscription smuggled in a transaction Bundle is not served, and says so.
  auto tx = f.call("integration", "POST", "/fhir",
                   R"({"resourceType":"Bundle","type":"transaction","entry":[{"resource":)" +
                       test::subscription_json({.endpoint = f.rx.url("/smuggled")}) +
                       R"(,"request":{"method":"POST","url":"Subscription"}}]})");
  ASSERT_EQ(tx.status, 200) << tx.body;
  std::string loc = tx.body.substr(tx.body.find("Subscription/") + 13);
  std::string smuggled = loc.substr(0, loc.find_first_of("/\""));
  EXPECT_TRUE(f.wait_status("integration", smuggled, "error")) << smuggled;
  // Nothing refused reached the endpoint: only the one accepted handshake.
  ASSERT_TRUE(f.rx.wait_for([](auto& p) { return test::count_type(p, "handshake") >= 1; }, 5s));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(test::count_type(f.rx.posts(), "handshake"), 1u);
}

TEST(Subscriptions, FiltersCaseloadAndSensitivityDecideWhoHearsWhat) {
  Fixture f;
  std::string nhs_a = test::nhs_number_for(11);
  f.subscribe("integration", {.endpoint = f.rx.url("/by-id"),
                              .filters = {"Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|" + nhs_a}});
  // A GP practice without filters: its own caseload (generalPractitioner B86001).
  f.subscribe("gp", {.endpoint = f.rx.url("/gp")});
  f.subscribe("integration", {.endpoint = f.rx.url("/all")});

  std::string a = f.patient(11);
  std::string other_gp = test::fixture("fhir/Patient.json", {{"nhs", test::nhs_number_for(12)}});
  other_gp.replace(other_gp.find("B86001"), 6, "Y99999");
  auto rb = f.call("integration", "POST", "/fhir/Patient", other_gp);
  ASSERT_EQ(rb.status, 201);
  std::string b = id_of(rb.body);
  // Sexual-health labelled: not for these subscribers, not even that it exists.
  f.patient(13, R"("meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-Confidentiality","code":"R"}]})");
  std::string d = f.patient(14);

  ASSERT_TRUE(f.wait_events(3, 10s, "/all"));
  ASSERT_TRUE(f.wait_events(1, 10s, "/by-id"));
  ASSERT_TRUE(f.wait_events(2, 10s, "/gp"));
  std::this_thread::sleep_for(500ms);  // anything extra would have arrived by now
  auto focus = [&](const std::string& path) {
    std::vector<std::string> out;
    for (const auto& p : f.rx.posts()) {
      if (p.target != path) continue;
      auto s = test::read_notification(p.body);
      if (s.type == "event-notification")
        for (auto& x : s.focus) out.push_back(x.substr(x.rfind('/') + 1));
    }
    return out;
  };
  EXPECT_EQ(focus("/by-id"), std::vector<std::string>{a});
  EXPECT_EQ(focus("/gp"), (std::vector<std::string>{a, d}));
  EXPECT_EQ(focus("/all"), (std::vector<std::string>{a, b, d}));
  // Numbers stay contiguous: withheld changes are not events.
  EXPECT_EQ(test::event_numbers(f.rx.posts(), "/all"), (std::vector<int64_t>{1, 2, 3}));
}

TEST(Subscriptions, EveryWritePathFeedsTopicsHl7IngestAndCpisPlans) {
  Fixture f;
  f.subscribe("integration", {.endpoint = f.rx.url("/patients")});
  f.subscribe("local-authority", {.topic = "cpis-plan-change", .endpoint = f.rx.url("/plans"),
                                  .content = "full-resource"});
  // A legacy HL7 feed: the Patient it creates or updates is a patient-change
  // event, though the ingest code never heard of subscriptions.
  std::promise<ingest::IngestResult> p;
  ingest::Source src;
  src.channel = "test";
  src.principal = security::Principal{"RXX", "integration", "test-feed"};
  f.gw.systmone().handle(test::fixture("systmone/adt_a28_child.hl7"), src,
                         [&p](ingest::IngestResult r) { p.set_value(std::move(r)); });
  auto res = p.get_future().get();
  ASSERT_EQ(res.outcome, ingest::Outcome::accepted);
  ASSERT_TRUE(f.wait_events(1, 10s, "/patients"));
  auto s = test::read_notification(f.rx.posts().back().body);
  ASSERT_EQ(s.focus.size(), 1u);
  EXPECT_NE(s.focus[0].find("/Patient/"), std::string::npos);
  // A CP-IS plan (a CareTeam) from the local authority: it is in the child's
  // caseload through its own plan, which names it as managing organisation.
  std::string child = f.patient(601);
  auto plan = f.call("local-authority", "POST", "/fhir/CareTeam",
                     test::fixture("fhir/cpis_plan.json", {{"ods", "L0001"}, {"local_id", "SUB-601"},
                                                          {"patient", child}, {"nhs", test::nhs_number_for(601)}}));
  ASSERT_EQ(plan.status, 201) << plan.body;
  ASSERT_TRUE(f.wait_events(1, 10s, "/plans"));
  for (const auto& post : f.rx.posts()) {
    if (post.target != "/plans") continue;
    auto n = test::read_notification(post.body);
    if (n.type != "event-notification") continue;
    EXPECT_NE(post.body.find("\"resourceType\":\"CareTeam\""), std::string::npos);
    ASSERT_EQ(n.focus.size(), 1u);
    EXPECT_NE(n.focus[0].find("/CareTeam/" + id_of(plan.body)), std::string::npos);
  }
}

TEST(Subscriptions, EndpointFailingThenRecoveringGetsEverythingInOrderAndStatusFollows) {
  Fixture f;
  auto id = f.subscribe("integration", {});
  f.rx.fail_next(4, 503);
  for (uint32_t i = 0; i < 6; ++i) f.patient(100 + i);
  ASSERT_TRUE(f.wait_events(6, 20s));
  EXPECT_EQ(test::event_numbers(f.rx.posts()), (std::vector<int64_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(f.rx.failures(), 4u);
  EXPECT_TRUE(f.wait_status("integration", id, "active"));
  // The resource's history shows it went to error (with the reason) and back.
  auto h = f.call("admin", "GET", "/fhir/Subscription/" + id + "/_history");
  ASSERT_EQ(h.status, 200);
  EXPECT_NE(h.body.find("\"status\":\"error\""), std::string::npos) << h.body;
  EXPECT_NE(h.body.find("HTTP 503"), std::string::npos);
  EXPECT_GE(metric(f.gw, "gw_subscription_delivery_attempts_total{outcome=\"http_error\"}"), 4u);
  // Every attempt is audited: who received what about whom, and the outcome.
  auto count = [&](const std::string& where) {
    return test::store_scalar(f.gw.data_dir() + "/gateway.db",
                              "SELECT count(*) FROM audit WHERE action = 'notify' AND entity = 'Subscription/" + id +
                                  "' AND " + where);
  };
  EXPECT_EQ(count("outcome = 'success' AND actor_role = 'integration' AND actor_ods = 'RXX' AND patient_ref LIKE 'Patient/%'"), 6);
  // Failed attempts within the retry window are "retry" (BALP outcome 4), not given up.
  EXPECT_EQ(count("outcome = 'retry' AND http_status = 503"), 4);
  // What the data-flow reports count: the channel, the topic, and for a
  // delivery its latency.
  EXPECT_EQ(count("channel = 'rest-hook' AND topic != '' AND purpose = 'TREAT'"), 10);
  EXPECT_EQ(count("outcome = 'success' AND latency_ms > 0"), 6);
}

TEST(Subscriptions, OffStopsDeliveriesRequestedResumesAndOnlyTheOwnerMayChangeIt) {
  Fixture f;
  auto id = f.subscribe("gp", {.heartbeat_s = 1});
  // Idle: a heartbeat within the period (plus scheduling slack).
  ASSERT_TRUE(f.rx.wait_for([](auto& p) { return test::count_type(p, "heartbeat") >= 1; }, 5s));
  for (const auto& p : f.rx.posts()) {
    auto s = test::read_notification(p.body);
    if (s.type == "heartbeat") {
      EXPECT_EQ(s.events_since_start, 0);
    }
  }
  auto current = f.call("gp", "GET", "/fhir/Subscription/" + id);
  ASSERT_EQ(current.status, 200);
  // Another organisation may neither read nor take over the subscription.
  EXPECT_EQ(f.call("health-visiting", "GET", "/fhir/Subscription/" + id).status, 403);
  std::string off = current.body;
  off.replace(off.find("\"status\":\"active\""), 17, "\"status\":\"off\"");
  EXPECT_EQ(f.call("health-visiting", "PUT", "/fhir/Subscription/" + id, off).status, 403);
  EXPECT_EQ(f.call("health-visiting", "GET", "/fhir/Subscription/" + id + "/$status").status, 404);
  auto theirs = f.call("health-visiting", "GET", "/fhir/Subscription");
  ASSERT_EQ(theirs.status, 200) << theirs.body;
  EXPECT_EQ(theirs.body.find(id), std::string::npos) << "a search shows others' subscriptions";
  auto mine = f.call("gp", "GET", "/fhir/Subscription");
  ASSERT_EQ(mine.status, 200) << mine.body;
  EXPECT_NE(mine.body.find(id), std::string::npos);
  auto r = f.call("gp", "PUT", "/fhir/Subscription/" + id, off);
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_TRUE(f.wait_status("gp", id, "off"));
  // Off means off (the IG's meaning): a change now is no event for it.
  f.patient(401);
  std::this_thread::sleep_for(800ms);
  EXPECT_EQ(test::event_numbers(f.rx.posts()).size(), 0u);
  auto c = f.gw.store().event_counts(id);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->events, 0);
  auto st = f.call("gp", "GET", "/fhir/Subscription/" + id + "/$status");
  ASSERT_EQ(st.status, 200);
  EXPECT_NE(st.body.find("\"valueCode\":\"off\""), std::string::npos) << st.body;
  // Back to requested: a new handshake, then the next change is event 1.
  size_t handshakes = test::count_type(f.rx.posts(), "handshake");
  std::string again = f.call("gp", "GET", "/fhir/Subscription/" + id).body;
  again.replace(again.find("\"status\":\"off\""), 14, "\"status\":\"requested\"");
  r = f.call("gp", "PUT", "/fhir/Subscription/" + id, again);
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_TRUE(f.wait_status("gp", id, "active"));
  EXPECT_EQ(test::count_type(f.rx.posts(), "handshake"), handshakes + 1);
  f.patient(402);
  ASSERT_TRUE(f.wait_events(1, 10s));
  EXPECT_EQ(test::event_numbers(f.rx.posts()), std::vector<int64_t>{1});
  st = f.call("gp", "GET", "/fhir/Subscription/" + id + "/$status");
  EXPECT_NE(st.body.find("\"events-since-subscription-start\",\"valueString\":\"1\""), std::string::npos) << st.body;
  EXPECT_TRUE(f.wait_status("gp", id, "active"));
}

TEST(Subscriptions, EndpointDownPastTheRetryWindowDeadLettersThenReplayDeliversThem) {
  auto o = fast_options();
  o.delivery.retry_for = 800ms;
  Fixture f(o);
  auto id = f.subscribe("integration", {});
  f.rx.set_path_mode("/hook", HookReceiver::Mode::down);
  f.patient(201);
  f.patient(202);
  auto end = std::chrono::steady_clock::now() + 15s;
  while (metric(f.gw, "gw_subscription_dead_letters_total") < 2 && std::chrono::steady_clock::now() < end)
    std::this_thread::sleep_for(50ms);
  ASSERT_EQ(metric(f.gw, "gw_subscription_dead_letters_total"), 2u);
  auto c = f.gw.store().event_counts(id);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->dead, 2);
  EXPECT_EQ(c->pending, 0);
  // The gauge is refreshed once the delivery has also set the status (a
  // commit of its own) after counting the dead letters: wait for it.
  EXPECT_TRUE(eventually([&] {
    return f.gw.metrics().render().find("gw_subscription_dead_events{subscription=\"" + id + "\"} 2") !=
           std::string::npos;
  }));
  EXPECT_EQ(f.status_of("integration", id), "error");
  EXPECT_EQ(test::event_numbers(f.rx.posts()).size(), 0u);

  f.rx.set_path_mode("/hook", HookReceiver::Mode::ok);
  EXPECT_EQ(f.call("integration", "POST", "/admin/subscriptions/" + id + "/replay-dead-letters").status, 403);
  auto r = f.call("admin", "POST", "/admin/subscriptions/" + id + "/replay-dead-letters");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("\"replayed\":2"), std::string::npos) << r.body;
  // The replay's audit row was committed with it (before the 200), naming who and how many.
  EXPECT_EQ(test::store_scalar(f.gw.data_dir() + "/gateway.db",
                               "SELECT count(*) FROM audit WHERE action = 'replay' AND actor_role = 'admin' AND "
                               "entity = 'dead-letters/" + id + "' AND detail = 'admin: 2 dead letters made pending'"),
            1);
  ASSERT_TRUE(f.wait_events(2, 10s));
  EXPECT_EQ(test::event_numbers(f.rx.posts()), (std::vector<int64_t>{1, 2}));
  EXPECT_TRUE(f.wait_status("integration", id, "active"));
  EXPECT_TRUE(eventually([&] {
    return f.gw.metrics().render().find("gw_subscription_dead_events{subscription=\"" + id + "\"} 0") !=
           std::string::npos;
  }));
}

TEST(Subscriptions, OneDeadSubscriberDoesNotDelayNinetyNineLiveOnes) {
  Fixture f;
  HookReceiver dead;
  dead.set_mode(HookReceiver::Mode::hang);  // accepts, never answers: the worst kind
  // The dead one is created first and is never activated (its handshake hangs).
  auto rd = f.call("integration", "POST", "/fhir/Subscription",
                   test::subscription_json({.endpoint = dead.url("/dead")}));
  ASSERT_EQ(rd.status, 201);
  for (int i = 0; i < 99; ++i) f.subscribe("integration", {.endpoint = f.rx.url("/s" + std::to_string(i))});
  auto t0 = std::chrono::steady_clock::now();
  const int kPatients = 10;
  for (int i = 0; i < kPatients; ++i) f.patient(300 + i);
  bool all = f.rx.wait_for(
      [&](const std::vector<ReceivedPost>& p) { return test::event_numbers(p).size() >= 99u * kPatients; }, 30s);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(all) << test::event_numbers(f.rx.posts()).size();
  // 990 deliveries; with the dead endpoint holding a worker for the whole
  // POST timeout (2 s) on every attempt, a shared queue would take minutes.
  EXPECT_LT(secs, 10.0) << "live subscribers were delayed";
  for (int i = 0; i < 99; ++i) {
    auto nums = test::event_numbers(f.rx.posts(), "/s" + std::to_string(i));
    ASSERT_EQ(nums.size(), static_cast<size_t>(kPatients)) << i;
    for (int k = 0; k < kPatients; ++k) EXPECT_EQ(nums[k], k + 1);
  }
  RecordProperty("live_fanout_seconds", std::to_string(secs));
  std::printf("live fan-out: %d events x 99 subscribers in %.2f s with one hanging endpoint\n", kPatients, secs);
}

}  // namespace
}  // namespace gw

namespace gw {
namespace {

// Outbound certificate checks: the dev CA signed both receivers, so only the
// expiry or the host name can refuse them, and the subscription must say which.
void expect_refused_with(const std::string& cert_name, const std::string& reason) {
  Fixture f;
  HookReceiver bad(cert_name);
  auto r = f.call("integration", "POST", "/fhir/Subscription", test::subscription_json({.endpoint = bad.url()}));
  ASSERT_EQ(r.status, 201) << r.body;
  std::string id = id_of(r.body);
  ASSERT_TRUE(f.wait_status("integration", id, "error"));
  auto cur = f.call("integration", "GET", "/fhir/Subscription/" + id);
  auto d = json::parse(cur.body);
  ASSERT_TRUE(d.has_value());
  const json::Value* error = json::member(*d, "error");
  ASSERT_NE(error, nullptr) << cur.body;
  std::string text(json::as_view(*error));
  EXPECT_NE(text.find("certificate verify failed"), std::string::npos) << text;
  EXPECT_NE(text.find(reason), std::string::npos) << text;
  f.patient(702);
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE(bad.posts().empty()) << "a notification reached an endpoint whose certificate is not valid for it";
}

TEST(OutboundTls, RestHookToAnEndpointWithAnExpiredCertificateIsRefusedAndTheSubscriptionSaysWhy) {
  expect_refused_with("server-expired", "certificate has expired");
}

TEST(OutboundTls, RestHookToAnEndpointCertifiedForAnotherHostIsRefusedAndTheSubscriptionSaysWhy) {
  expect_refused_with("server-wrong-host", "IP address mismatch");  // the endpoint is 127.0.0.1
}

// A receiver as found in the wild: Python's http.server answering HTTP/1.0
// without Content-Length and closing without a TLS close_notify. The status
// line and headers are the answer; the subscription must become active and
// its events be delivered once each.
TEST(OutboundTls, AnHttp10ReceiverThatClosesWithoutCloseNotifyCountsAsDelivered) {
  test::TempDir dir;
  const std::string& pki = test::dev_pki_dir();
  std::string port_file = dir.path() + "/port", log_file = dir.path() + "/posts";
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::string script = std::string(GW_SOURCE_DIR) + "/tests/tools/http10_receiver.py";
    execlp("python3", "python3", script.c_str(), "--cert", (pki + "/server.pem").c_str(), "--key",
           (pki + "/server.key").c_str(), "--ca", (pki + "/ca.pem").c_str(), "--port-file", port_file.c_str(),
           "--log", log_file.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  struct Reap {
    pid_t pid;
    ~Reap() {
      kill(pid, SIGTERM);
      waitpid(pid, nullptr, 0);
    }
  } reap{pid};
  std::string port;
  ASSERT_TRUE(eventually([&] {
    std::ifstream in(port_file);
    return static_cast<bool>(std::getline(in, port)) && !port.empty();
  }, 10s)) << "the Python receiver did not start";
  auto count_posts = [&] {
    std::ifstream in(log_file);
    std::string line;
    size_t n = 0;
    while (std::getline(in, line)) ++n;
    return n;
  };

  Fixture f;
  auto r = f.call("integration", "POST", "/fhir/Subscription",
                  test::subscription_json({.endpoint = "https://127.0.0.1:" + port + "/notify"}));
  ASSERT_EQ(r.status, 201) << r.body;
  std::string id = id_of(r.body);
  ASSERT_TRUE(f.wait_status("integration", id, "active")) << f.call("integration", "GET", "/fhir/Subscription/" + id).body;
  f.patient(703);
  f.patient(704);
  ASSERT_TRUE(eventually([&] {
    auto c = f.gw.store().event_counts(id);
    return c && c->delivered == 2;
  }, 10s));
  // One handshake and two notifications: nothing was sent twice for want of an answer.
  EXPECT_EQ(count_posts(), 3u);
  EXPECT_EQ(f.status_of("integration", id), "active");
}

}  // namespace
}  // namespace gw
