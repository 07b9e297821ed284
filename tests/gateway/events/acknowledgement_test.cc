// Issue 17 part 1: a safeguarding disclosure is acknowledged by its
// receiving organisation, and what is not acknowledged in time escalates —
// once to the organisation's safeguarding lead, once more to the
// commissioner's designated nurse — whatever the clock does, however often
// the timers engine restarts, and at once when delivery was dead-lettered.
// A real gateway over TLS, real rest-hook receivers, a child's ED attendance
// (child-ed-attendance: two working days) as the disclosure. The timers'
// clock is the test gateway's set_today (noon UTC of that day); the
// disclosure is sent at the real time, so the deadlines are read from the
// store and checked against the area's own count (the count itself is
// tests/gateway/area/escalation_deadlines_test.cc).
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <thread>

#include "gateway/area/area.h"
#include "gateway/events/escalation.h"
#include "gateway/events/flow_timers.h"
#include "gateway/events/relations.h"
#include "gateway/events/subscriptions.h"
#include "tests/support/fixtures.h"
#include "tests/support/flows_kit.h"
#include "tests/support/plan_seed.h"
#include "tests/support/test_store.h"

namespace gw {
namespace {

using namespace std::chrono_literals;
using test::FlowFixture;

constexpr const char* kChild = "9990500002";  // Mia, under 18
constexpr const char* kOds = "https://fhir.nhs.uk/Id/ods-organization-code";

void tick(FlowFixture& f) {
  f.gw.subscriptions().timers()->wake();
  std::this_thread::sleep_for(400ms);
  f.settle();
}

// The day after an instant's UTC date: noon of it is past the instant.
std::string day_after(const std::string& iso) {
  return area::format_date(area::parse_date(iso.substr(0, 10)).value() + std::chrono::days(1));
}
std::string day_before(const std::string& iso) {
  return area::format_date(area::parse_date(iso.substr(0, 10)).value() - std::chrono::days(1));
}

struct World {
  FlowFixture& f;
  std::string pl, lead, nurse, other_lead;
  std::string comm;  // the disclosure's id
  std::string sent;

  explicit World(FlowFixture& fx) : f(fx) {
    pl = f.subscribe("paediatric-liaison", "child-ed-attendance", "/pl");
    lead = f.subscribe("paediatric-liaison", "safeguarding-escalation", "/lead");  // RXX05's safeguarding lead
    nurse = f.subscribe("commissioner", "safeguarding-escalation", "/nurse");      // QWO, the designated nurse
    other_lead = f.subscribe("gp", "safeguarding-escalation", "/gp-lead");          // another organisation's lead
    f.hl7(test::a28(kChild, "Mia", "20190611", "B86001", {}));
    f.hl7(test::ed_a04(kChild, "20190611", "RXX01", "20261201", "A1", {}));
    EXPECT_TRUE(f.wait_events(1, "/pl"));
    auto got = f.received("/pl");
    if (got.empty()) return;
    comm = got[0]["id"].GetString();
    sent = got[0]["sent"].GetString();
  }
  std::vector<store::TimerRow> timers() {
    return f.gw.store().timers_of("escalation", events::escalation_subject(comm)).value();
  }
  std::string due(int stage) {
    for (const auto& t : timers())
      if (t.key == "escalation:" + comm + ":" + std::to_string(stage)) return t.due;
    return {};
  }
  test::ClientResponse ack(const std::string& role, const std::string& body = "") {
    return f.call(role, "POST", "/fhir/Communication/" + comm + "/$acknowledge", body);
  }
};

std::string text_of(FlowFixture& f, const std::string& path, size_t i = 0) {
  auto c = f.received(path);
  return c.size() > i ? test::payload_text(c[i]) : std::string();
}

TEST(Acknowledgement, ADisclosureStartsInProgressWithItsTwoDeadlines) {
  FlowFixture f;
  World w(f);
  ASSERT_FALSE(w.comm.empty());
  auto c = f.received("/pl");
  EXPECT_STREQ(c[0]["status"].GetString(), "in-progress");
  EXPECT_FALSE(c[0].HasMember("received"));
  auto want = f.gw.flow_context()->area->escalation_deadlines("child-ed-attendance", w.sent).value().value();
  auto timers = w.timers();
  ASSERT_EQ(timers.size(), 2u);
  for (const auto& t : timers) EXPECT_EQ(t.status, "pending") << t.key;
  EXPECT_EQ(w.due(1), want.first);
  EXPECT_EQ(w.due(2), want.second);
  EXPECT_LT(w.sent, want.first);
}

TEST(Acknowledgement, OnlyTheRecipientAcknowledgesAndTwiceIsHarmless) {
  FlowFixture f;
  World w(f);
  ASSERT_FALSE(w.comm.empty());
  // Not sent to them: it does not exist for them (the Communication read rules).
  EXPECT_EQ(w.ack("gp").status, 404);
  EXPECT_EQ(w.ack("unscheduled-care").status, 404);
  EXPECT_EQ(w.ack("commissioner").status, 404);
  // Roles the policy gives no acknowledge operation.
  EXPECT_EQ(w.ack("admin").status, 403);
  EXPECT_EQ(w.ack("integration").status, 403);
  // Bad requests say what is wrong.
  auto get = f.call("paediatric-liaison", "GET", "/fhir/Communication/" + w.comm + "/$acknowledge");
  EXPECT_EQ(get.status, 405) << get.body;
  auto params = w.ack("paediatric-liaison", R"({"resourceType":"Patient"})");
  EXPECT_EQ(params.status, 400);
  EXPECT_NE(params.body.find("resourceType"), std::string::npos) << params.body;
  EXPECT_EQ(f.call("paediatric-liaison", "POST", "/fhir/Communication/no-such-id/$acknowledge").status, 404);
  EXPECT_EQ(w.timers()[0].status, "pending") << "nothing above acknowledged it";

  auto first = f.call_as_person("paediatric-liaison", "POST", "/fhir/Communication/" + w.comm + "/$acknowledge",
                                R"({"resourceType":"Parameters"})");
  ASSERT_EQ(first.status, 200) << first.body;
  auto d = json::parse(first.body).value();
  EXPECT_STREQ(d["status"].GetString(), "completed");
  ASSERT_TRUE(d.HasMember("received"));
  std::string received = d["received"].GetString();
  EXPECT_GE(received, w.sent);
  // Who acknowledged: the organisation and its system.
  std::string body = first.body;
  EXPECT_NE(body.find(R"("url":"https://cpis-gateway.nhs.uk/StructureDefinition/acknowledged-by")"), std::string::npos);
  EXPECT_NE(body.find(std::string(R"({"url":"organization","valueIdentifier":{"system":")") + kOds +
                      R"(","value":"RXX05"}})"),
            std::string::npos)
      << body;
  EXPECT_NE(body.find(R"({"url":"system","valueString":"paed-liaison"})"), std::string::npos) << body;
  // ...and the person behind the request (issue 17 part 3): their id at the issuer and name.
  EXPECT_NE(body.find(R"("url":"person","valueIdentifier":{)"), std::string::npos) << body;
  EXPECT_NE(body.find(R"("value":"user-1001")"), std::string::npos) << body;
  EXPECT_NE(body.find(R"({"url":"personName","valueString":"Alex Example"})"), std::string::npos) << body;
  EXPECT_STREQ(d["meta"]["versionId"].GetString(), "2");
  for (const auto& t : w.timers()) EXPECT_EQ(t.status, "cancelled") << t.key;

  // Again: the same state, nothing written.
  auto second = w.ack("paediatric-liaison");
  ASSERT_EQ(second.status, 200) << second.body;
  auto d2 = json::parse(second.body).value();
  EXPECT_STREQ(d2["received"].GetString(), received.c_str());
  EXPECT_STREQ(d2["meta"]["versionId"].GetString(), "2");
  // The reader sees what was answered.
  auto read = f.call_as_person("paediatric-liaison", "GET", "/fhir/Communication/" + w.comm);
  ASSERT_EQ(read.status, 200);
  EXPECT_NE(read.body.find(R"("status":"completed")"), std::string::npos);

  // Audited: both acknowledgements and the refusals, by whom.
  const std::string db = f.gw.data_dir() + "/gateway.db";
  const std::string entity = "Communication/" + w.comm + "/$acknowledge";
  // (Rows of reads and refusals ride with the next group commit: wait for them.)
  auto rows = [&](const std::string& ods, int status) {
    const std::string sql = "SELECT count(*) FROM audit WHERE entity = '" + entity + "' AND actor_ods = '" + ods +
                            "' AND http_status = " + std::to_string(status);
    int64_t n = 0;
    for (int i = 0; i < 50 && (n = test::store_scalar(db, sql)) < 1; ++i) std::this_thread::sleep_for(100ms);
    std::this_thread::sleep_for(300ms);
    return test::store_scalar(db, sql);
  };
  EXPECT_EQ(rows("RXX05", 200), 2);
  EXPECT_EQ(rows("B86001", 404), 1);

  // Past both deadlines: nothing escalates.
  f.gw.set_today(day_after(w.due(2)));
  tick(f);
  EXPECT_EQ(f.events_of(w.lead), 0);
  EXPECT_EQ(f.events_of(w.nurse), 0);
}

TEST(Acknowledgement, UnacknowledgedEscalatesOnceToTheLeadThenOnceToTheDesignatedNurse) {
  FlowFixture f;
  World w(f);
  ASSERT_FALSE(w.comm.empty());
  std::string first = w.due(1), second = w.due(2);
  f.gw.set_today(day_before(first));
  tick(f);
  EXPECT_EQ(f.events_of(w.lead), 0) << "not due yet";

  f.gw.set_today(day_after(first));
  tick(f);
  ASSERT_TRUE(f.wait_events(1, "/lead"));
  std::string t = text_of(f, "/lead");
  EXPECT_NE(t.find("Communication/" + w.comm), std::string::npos) << t;
  EXPECT_NE(t.find("was not acknowledged by its deadline " + first), std::string::npos) << t;
  EXPECT_NE(t.find("sent " + w.sent + " to RXX05"), std::string::npos) << t;
  // Names the disclosure, never its content.
  EXPECT_EQ(t.find(text_of(f, "/pl").substr(0, 30)), std::string::npos) << t;
  auto esc = f.received("/lead");
  EXPECT_STREQ(esc[0]["recipient"][0]["identifier"]["value"].GetString(), "RXX05");
  EXPECT_STREQ(esc[0]["subject"]["identifier"]["value"].GetString(), kChild);
  EXPECT_STREQ(esc[0]["category"][0]["coding"][0]["code"].GetString(), "safeguarding-escalation");
  f.settle();
  EXPECT_EQ(f.events_of(w.nurse), 0) << "the second deadline has not passed";
  EXPECT_EQ(f.events_of(w.other_lead), 0) << "another organisation's lead hears nothing";

  // Another engine over the same store (a restart), later the same day: nothing twice.
  events::FlowTimersOptions o;
  std::string later = day_after(first);
  o.clock = [later] {
    return std::chrono::system_clock::time_point(area::parse_date(later).value()) + std::chrono::hours(20);
  };
  events::FlowTimers again(f.gw.store(), f.gw.subscriptions().topics(), f.gw.subscriptions().set(),
                           f.gw.flow_context(), f.gw.metrics(), o, {});
  EXPECT_EQ(again.run_once().value(), 0);
  tick(f);
  EXPECT_EQ(f.events_of(w.lead), 1);

  // The second deadline: the designated nurse, once.
  f.gw.set_today(day_after(second));
  tick(f);
  ASSERT_TRUE(f.wait_events(1, "/nurse"));
  std::string n = text_of(f, "/nurse");
  EXPECT_NE(n.find("is still not acknowledged at its second deadline " + second), std::string::npos) << n;
  auto nc = f.received("/nurse");
  EXPECT_STREQ(nc[0]["recipient"][0]["identifier"]["value"].GetString(), "QWO");
  // The nurse reads the escalation sent to it, not the disclosure itself.
  EXPECT_EQ(f.call_as_person("commissioner", "GET", "/fhir/Communication/" + std::string(nc[0]["id"].GetString())).status, 200);
  EXPECT_EQ(f.call_as_person("commissioner", "GET", "/fhir/Communication/" + w.comm).status, 404);
  // Clock jumps back, and forward again: nothing fires again.
  f.gw.set_today(day_before(first));
  tick(f);
  f.gw.set_today(day_after(second));
  tick(f);
  EXPECT_EQ(again.run_once().value(), 0);
  EXPECT_EQ(f.events_of(w.lead), 1);
  EXPECT_EQ(f.events_of(w.nurse), 1);
  EXPECT_EQ(f.events_of(w.other_lead), 0);
  for (const auto& tm : w.timers()) EXPECT_EQ(tm.status, "fired") << tm.key;
  // Still unacknowledged, and the receiver can still acknowledge it.
  EXPECT_EQ(w.ack("paediatric-liaison").status, 200);
}

TEST(Acknowledgement, AcknowledgedAfterTheFirstEscalationStopsTheSecond) {
  FlowFixture f;
  World w(f);
  ASSERT_FALSE(w.comm.empty());
  std::string second = w.due(2);
  f.gw.set_today(day_after(w.due(1)));
  tick(f);
  ASSERT_TRUE(f.wait_events(1, "/lead"));
  ASSERT_EQ(w.ack("paediatric-liaison").status, 200);
  f.gw.set_today(day_after(second));
  tick(f);
  EXPECT_EQ(f.events_of(w.nurse), 0);
  auto timers = w.timers();
  ASSERT_EQ(timers.size(), 2u);
  EXPECT_EQ(timers[0].status, "fired");
  EXPECT_EQ(timers[1].status, "cancelled");
}

TEST(Acknowledgement, ADeadLetteredDisclosureEscalatesAtOnceAndStaysUnacknowledged) {
  FlowFixture f(std::chrono::milliseconds(300));  // delivery gives up after 300 ms
  std::string pl = f.subscribe("paediatric-liaison", "child-ed-attendance", "/pl");
  std::string lead = f.subscribe("paediatric-liaison", "safeguarding-escalation", "/lead");
  f.rx.set_path_mode("/pl", test::HookReceiver::Mode::down);  // liaison's system stops answering
  f.hl7(test::a28(kChild, "Mia", "20190611", "B86001", {}));
  f.hl7(test::ed_a04(kChild, "20190611", "RXX01", "20261201", "A1", {}));
  // Dead-lettered within the retry window, then escalated without waiting for the deadline.
  bool dead = false;
  for (int i = 0; i < 100 && !dead; ++i) {
    auto c = f.gw.store().event_counts(pl);
    dead = c && c->dead >= 1;
    if (!dead) std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(dead);
  tick(f);
  ASSERT_TRUE(f.wait_events(1, "/lead"));
  std::string t = text_of(f, "/lead");
  EXPECT_NE(t.find("Delivery to RXX05 failed: the notification was dead-lettered"), std::string::npos) << t;
  // Never counted as delivered or acknowledged: still waiting for RXX05.
  auto listed = f.call_as_person("paediatric-liaison", "GET",
                                 "/fhir/Communication?status=in-progress&category=safeguarding-escalation");
  auto waiting = f.call_as_person("paediatric-liaison", "GET",
                                  std::string("/fhir/Communication?status=in-progress&recipient:identifier=") + kOds +
                            "%7CRXX05&category=child-ed-attendance");
  ASSERT_EQ(waiting.status, 200) << waiting.body;
  EXPECT_NE(waiting.body.find(R"("total":1)"), std::string::npos) << waiting.body;
  EXPECT_NE(listed.body.find(R"("total":1)"), std::string::npos) << "the escalation itself waits too: " << listed.body;
  EXPECT_EQ(f.events_of(lead), 1);
}

TEST(Acknowledgement, WhatIsWaitingIsListedForTheOwnOrganisationOnly) {
  FlowFixture f;
  World w(f);
  ASSERT_FALSE(w.comm.empty());
  const std::string mine = std::string("/fhir/Communication?status=in-progress&recipient:identifier=") + kOds + "%7CRXX05";
  auto r = f.call_as_person("paediatric-liaison", "GET", mine);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find(R"("total":1)"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(w.comm), std::string::npos);
  // Another organisation asking about RXX05's: nothing exists for it.
  auto other = f.call_as_person("gp", "GET", mine);
  ASSERT_EQ(other.status, 200) << other.body;
  EXPECT_NE(other.body.find(R"("total":0)"), std::string::npos) << other.body;
  // Bad parameters are named.
  auto bad = f.call_as_person("paediatric-liaison", "GET", "/fhir/Communication?status=in-progress&sent=yesterday");
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_NE(bad.body.find("sent"), std::string::npos) << bad.body;
  // Acknowledged: no longer waiting.
  ASSERT_EQ(w.ack("paediatric-liaison").status, 200);
  auto after = f.call_as_person("paediatric-liaison", "GET", mine);
  EXPECT_NE(after.body.find(R"("total":0)"), std::string::npos) << after.body;
  auto done = f.call_as_person("paediatric-liaison", "GET",
                               std::string("/fhir/Communication?status=completed&recipient:identifier=") + kOds + "%7CRXX05");
  EXPECT_NE(done.body.find(w.comm), std::string::npos) << done.body;
}

// The dashboard (issue 17 part 1): what is waiting to be acknowledged and
// what escalated, per receiving organisation and topic, counted from the
// store after real disclosures — one acknowledged, two escalated by the
// timers to the lead and then to the designated nurse.
TEST(Acknowledgement, TheDashboardCountsWhatWaitsAndWhatEscalatedPerOrganisationAndTopic) {
  FlowFixture f;
  World w(f);  // Mia's attendance: disclosure 1 to RXX05
  ASSERT_FALSE(w.comm.empty());
  const std::string noah = test::nhs_number_from("999050004"), ava = test::nhs_number_from("999050005");
  f.hl7(test::a28(noah, "Noah", "20200101", "B86001", {}));
  f.hl7(test::ed_a04(noah, "20200101", "RXX01", "20261201", "N1", {}));
  f.hl7(test::a28(ava, "Ava", "20210303", "B86001", {}));
  f.hl7(test::ed_a04(ava, "20210303", "RXX01", "20261201", "V1", {}));
  ASSERT_TRUE(f.wait_events(3, "/pl"));
  auto sent = f.received("/pl");
  ASSERT_EQ(sent.size(), 3u);
  // Ava's is acknowledged by RXX05.
  std::string ava_comm;
  for (const auto& c : sent)
    if (std::string(c["subject"]["identifier"]["value"].GetString()) == ava) ava_comm = c["id"].GetString();
  ASSERT_FALSE(ava_comm.empty());
  ASSERT_EQ(f.call_as_person("paediatric-liaison", "POST", "/fhir/Communication/" + ava_comm + "/$acknowledge").status,
            200);

  struct Row {
    int64_t unack = 0, escalated = 0, nurse = 0;
    bool operator==(const Row&) const = default;
  };
  struct Status {
    std::map<std::pair<std::string, std::string>, Row> rows;
    Row total;
  };
  auto status = [&](const std::string& role, const std::string& path) {
    Status out;
    auto r = f.call(role, "GET", path);
    EXPECT_EQ(r.status, 200) << r.body;
    auto d = json::parse(r.body);
    if (!d || !d->HasMember("acknowledgement")) return std::optional<Status>();
    const auto& a = (*d)["acknowledgement"];
    out.total = {a["unacknowledged"].GetInt64(), a["escalated"].GetInt64(), a["escalated_to_nurse"].GetInt64()};
    EXPECT_FALSE(a["truncated"].GetBool());
    for (const auto& row : a["by_organisation_and_topic"].GetArray())
      out.rows[{row["organisation"].GetString(), row["topic"].GetString()}] = {
          row["unacknowledged"].GetInt64(), row["escalated"].GetInt64(), row["escalated_to_nurse"].GetInt64()};
    return std::optional<Status>(std::move(out));
  };
  using Key = std::pair<std::string, std::string>;
  const Key ed{"RXX05", "child-ed-attendance"}, lead{"RXX05", "safeguarding-escalation"},
      nurse{"QWO", "safeguarding-escalation"};

  auto now = status("commissioner", "/dashboard/api/status");
  ASSERT_TRUE(now.has_value());
  EXPECT_EQ(now->rows, (std::map<Key, Row>{{ed, {2, 0, 0}}}));
  EXPECT_EQ(now->total, (Row{2, 0, 0}));

  // The first deadline passes: both unacknowledged escalate to RXX05's lead
  // (the escalations wait for acknowledgement too, under their own topic).
  f.gw.set_today(day_after(w.due(1)));
  tick(f);
  ASSERT_TRUE(f.wait_events(2, "/lead"));
  now = status("commissioner", "/dashboard/api/status");
  ASSERT_TRUE(now.has_value());
  EXPECT_EQ(now->rows, (std::map<Key, Row>{{ed, {2, 2, 0}}, {lead, {2, 0, 0}}}));
  EXPECT_EQ(now->total, (Row{4, 2, 0}));

  // Mia's is acknowledged late; the second deadline passes: Noah's goes on
  // to the designated nurse (QWO).
  ASSERT_EQ(w.ack("paediatric-liaison").status, 200);
  f.gw.set_today(day_after(w.due(2)));
  tick(f);
  ASSERT_TRUE(f.wait_events(1, "/nurse"));
  now = status("admin", "/dashboard/api/status");
  ASSERT_TRUE(now.has_value());
  EXPECT_EQ(now->rows, (std::map<Key, Row>{{ed, {1, 1, 1}}, {lead, {2, 0, 0}}, {nurse, {1, 0, 0}}}));
  EXPECT_EQ(now->total, (Row{4, 1, 1}));

  // Who may see it: the dashboard's roles (commissioner, admin); the
  // console's status for integration engines has none of it; others 403.
  EXPECT_FALSE(status("integration", "/console/api/status").has_value());
  EXPECT_TRUE(status("admin", "/console/api/status").has_value());
  for (const char* role : {"gp", "paediatric-liaison", "local-authority"})
    EXPECT_EQ(f.call(role, "GET", "/dashboard/api/status").status, 403) << role;
}

}  // namespace
}  // namespace gw
