// The safeguarding-concern topic as a disclosure its receivers acknowledge
// (issue 17 part 1): a concern Flag becomes, per receiving organisation, a
// Communication (in-progress) carrying the concern only; the receiver
// acknowledges it, or at the deadline (1 working day) its safeguarding lead
// is told. The local authority hears only of a concern referred to it. A
// real gateway over TLS and real mutual-TLS rest-hook receivers; the timers'
// clock is the test gateway's set_today (as tests/gateway/events/acknowledgement_test.cc).
#include <gtest/gtest.h>

#include <thread>

#include "gateway/area/area.h"
#include "gateway/events/escalation.h"
#include "gateway/events/flow_timers.h"
#include "gateway/events/subscriptions.h"
#include "tests/support/fixtures.h"
#include "tests/support/flows_kit.h"
#include "tests/support/plan_seed.h"
#include "tests/support/test_store.h"

namespace gw {
namespace {

using namespace std::chrono_literals;
using test::FlowFixture;

constexpr const char* kOds = "https://fhir.nhs.uk/Id/ods-organization-code";
constexpr const char* kExt = "https://cpis-gateway.nhs.uk/StructureDefinition/";

void tick(FlowFixture& f) {
  f.gw.subscriptions().timers()->wake();
  std::this_thread::sleep_for(400ms);
  f.settle();
}

std::string day_after(const std::string& iso) {
  return area::format_date(area::parse_date(iso.substr(0, 10)).value() + std::chrono::days(1));
}
std::string day_before(const std::string& iso) {
  return area::format_date(area::parse_date(iso.substr(0, 10)).value() - std::chrono::days(1));
}

// A concern Flag as the CASH/GUM adapter writes it (adapters/cashgum/FORMAT.md),
// about the child with this NHS number (or, unmatched, a clinic's local id).
std::string concern_flag(const std::string& subject_identifier, bool referred) {
  std::string ext = std::string(R"([{"url":")") + kExt + R"(disclosable-to","valueCode":"gp"},)" +
                    R"({"url":")" + kExt + R"(disclosable-to","valueCode":"school-nursing"},)" +
                    R"({"url":")" + kExt +
                    R"(cse-indicator","valueCoding":{"system":"https://cpis-gateway.nhs.uk/CodeSystem/cse-indicator","code":"COERCION","display":"Coercion or control"}},)";
  if (referred)
    ext += std::string(R"({"url":")") + kExt + R"(disclosable-to","valueCode":"local-authority"},)" +
           R"({"url":")" + kExt +
           R"(safeguarding-referred-to","valueCoding":{"system":"https://cpis-gateway.nhs.uk/CodeSystem/cashgum-referred-to","code":"CSE_TEAM","display":"Child sexual exploitation team"}},)" +
           R"({"url":")" + kExt + R"(referred-to-authority","valueReference":{"type":"Organization","identifier":{"system":")" +
           kOds + R"(","value":"L0001"}}},)" + R"({"url":")" + kExt +
           R"(safeguarding-referral-date","valueDate":"2026-11-03"},)";
  ext += std::string(R"({"url":")") + kExt + R"(concern-contact","valueString":"Smith, Dr K"}])";
  return R"({"resourceType":"Flag","extension":)" + ext +
         R"(,"status":"active","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/flag-category","code":"safety"}]}],)"
         R"("code":{"coding":[{"system":"http://snomed.info/sct","code":"836881000000105","display":"Child is cause for safeguarding concern"}]},)"
         R"("subject":{"type":"Patient","identifier":)" +
         subject_identifier + R"(},"period":{"start":"2026-11-02"},"author":{"type":"Organization","identifier":{"system":")" +
         kOds + R"(","value":"RXX10"}}})";
}

std::string nhs_identifier(const std::string& nhs) {
  return R"({"system":"https://fhir.nhs.uk/Id/nhs-number","value":")" + nhs + R"("})";
}

struct World {
  FlowFixture& f;
  std::string nhs = test::nhs_number_for(7101);
  std::string child;
  std::string gp, hv, la, gp_lead, hv_lead, la_lead;

  explicit World(FlowFixture& fx) : f(fx) {
    gp = f.subscribe("gp", "safeguarding-concern", "/gp");
    hv = f.subscribe("health-visiting", "safeguarding-concern", "/hv");
    la = f.subscribe("local-authority", "safeguarding-concern", "/la");
    gp_lead = f.subscribe("gp", "safeguarding-escalation", "/gp-lead");
    hv_lead = f.subscribe("health-visiting", "safeguarding-escalation", "/hv-lead");
    la_lead = f.subscribe("local-authority", "safeguarding-escalation", "/la-lead");
    // A three-year-old registered at B86001 with the RXX02 health visitor,
    // on a child-protection plan of L0001 (so in the authority's caseload).
    f.hl7(test::a28(nhs, "Ava", "20230203", "B86001", {"ZCT|HV|RXX02^Health visiting|20230401|"}));
    child = f.patient_id(nhs);
    test::PlanSeed p;
    p.start = "2026-06-01";
    EXPECT_FALSE(test::create_plan(f.client("admin"), child, nhs, p).empty());
  }
  std::string post_concern(bool referred) {
    auto r = f.call("sexual-health", "POST", "/fhir/Flag", concern_flag(nhs_identifier(nhs), referred));
    EXPECT_EQ(r.status, 201) << r.body;
    return std::string(json::get_string(*json::parse(r.body), "id").value_or(""));
  }
  std::vector<store::TimerRow> timers(const std::string& comm) {
    return f.gw.store().timers_of("escalation", events::escalation_subject(comm)).value();
  }
  std::string due(const std::string& comm, int stage) {
    for (const auto& t : timers(comm))
      if (t.key == "escalation:" + comm + ":" + std::to_string(stage)) return t.due;
    return {};
  }
  test::ClientResponse ack(const std::string& role, const std::string& comm) {
    return f.call_as_person(role, "POST", "/fhir/Communication/" + comm + "/$acknowledge");
  }
  test::ClientResponse waiting(const std::string& role, const std::string& ods) {
    return f.call_as_person(role, "GET",
                            std::string("/fhir/Communication?status=in-progress&category=safeguarding-concern&"
                                        "recipient:identifier=") +
                                kOds + "%7C" + ods);
  }
};

TEST(SafeguardingConcern, EachReceiverGetsItsOwnDisclosureToAcknowledgeAndTheUnacknowledgedOneEscalates) {
  FlowFixture f;
  World w(f);
  ASSERT_FALSE(w.child.empty());
  w.post_concern(false);
  ASSERT_TRUE(f.wait_events(1, "/gp"));
  ASSERT_TRUE(f.wait_events(1, "/hv"));
  f.settle();
  // Not referred: the authority is not told, though the child is on its plan.
  EXPECT_EQ(f.events_of(w.la), 0);

  auto gp = f.received("/gp");
  auto hv = f.received("/hv");
  ASSERT_EQ(gp.size(), 1u);
  ASSERT_EQ(hv.size(), 1u);
  std::string gp_comm = gp[0]["id"].GetString(), hv_comm = hv[0]["id"].GetString();
  EXPECT_NE(gp_comm, hv_comm) << "one Communication per receiver";
  for (const auto* c : {&gp[0], &hv[0]}) {
    const json::Value& comm = *c;
    EXPECT_STREQ(comm["resourceType"].GetString(), "Communication");
    EXPECT_STREQ(comm["status"].GetString(), "in-progress");
    EXPECT_STREQ(comm["category"][0]["coding"][0]["code"].GetString(), "safeguarding-concern");
    EXPECT_STREQ(comm["subject"]["identifier"]["value"].GetString(), w.nhs.c_str());
    EXPECT_FALSE(comm["subject"].HasMember("reference")) << "the child by NHS number, as the Flag named it";
    EXPECT_STREQ(comm["sender"]["identifier"]["value"].GetString(), "RXX10");
    std::string text = test::payload_text(comm);
    EXPECT_NE(text.find("Safeguarding concern recorded on 2026-11-02 by RXX10"), std::string::npos) << text;
    EXPECT_NE(text.find("Concern: Child is cause for safeguarding concern"), std::string::npos) << text;
    EXPECT_NE(text.find("Indicator: Coercion or control"), std::string::npos) << text;
    EXPECT_NE(text.find("Contact: Smith, Dr K"), std::string::npos) << text;
    EXPECT_EQ(text.find("Referred"), std::string::npos) << text;
    // The concern only: none of the Flag's own elements, no labels.
    std::string body = json::to_string(comm);
    for (const char* banned : {"disclosable-to", "\"Flag", "\"security\"", "cse-indicator", "836881000000105"})
      EXPECT_EQ(body.find(banned), std::string::npos) << banned << " in " << body;
  }
  EXPECT_STREQ(gp[0]["recipient"][0]["identifier"]["value"].GetString(), "B86001");
  EXPECT_STREQ(hv[0]["recipient"][0]["identifier"]["value"].GetString(), "RXX02");

  // Both deadlines committed with each disclosure: 1 working day, then 2 more.
  std::string sent = gp[0]["sent"].GetString();
  auto want = f.gw.flow_context()->area->escalation_deadlines("safeguarding-concern", sent).value().value();
  for (const auto& comm : {gp_comm, hv_comm}) {
    ASSERT_EQ(w.timers(comm).size(), 2u) << comm;
    EXPECT_EQ(w.due(comm, 1), want.first);
    EXPECT_EQ(w.due(comm, 2), want.second);
  }

  // What is waiting, per organisation.
  auto mine = w.waiting("gp", "B86001");
  ASSERT_EQ(mine.status, 200) << mine.body;
  EXPECT_NE(mine.body.find(R"("total":1)"), std::string::npos) << mine.body;
  EXPECT_NE(mine.body.find(gp_comm), std::string::npos);
  EXPECT_NE(w.waiting("health-visiting", "B86001").body.find(R"("total":0)"), std::string::npos);

  // The GP acknowledges; the health visitor does not.
  EXPECT_EQ(w.ack("health-visiting", gp_comm).status, 404) << "not the recipient: it does not exist for it";
  auto a = w.ack("gp", gp_comm);
  ASSERT_EQ(a.status, 200) << a.body;
  EXPECT_NE(a.body.find(R"("status":"completed")"), std::string::npos) << a.body;
  for (const auto& t : w.timers(gp_comm)) EXPECT_EQ(t.status, "cancelled") << t.key;
  EXPECT_NE(w.waiting("gp", "B86001").body.find(R"("total":0)"), std::string::npos);

  f.gw.set_today(day_before(want.first));
  tick(f);
  EXPECT_EQ(f.events_of(w.hv_lead), 0) << "not due yet";
  // The first deadline: the health visitor's lead is told, the GP's is not.
  f.gw.set_today(day_after(want.first));
  tick(f);
  ASSERT_TRUE(f.wait_events(1, "/hv-lead"));
  auto esc = f.received("/hv-lead");
  std::string t = test::payload_text(esc[0]);
  EXPECT_NE(t.find("The safeguarding-concern disclosure Communication/" + hv_comm), std::string::npos) << t;
  EXPECT_NE(t.find("was not acknowledged by its deadline " + want.first), std::string::npos) << t;
  EXPECT_EQ(t.find("Coercion"), std::string::npos) << "the escalation names the disclosure, not its content";
  EXPECT_STREQ(esc[0]["recipient"][0]["identifier"]["value"].GetString(), "RXX02");
  EXPECT_STREQ(esc[0]["subject"]["identifier"]["value"].GetString(), w.nhs.c_str());
  f.settle();
  EXPECT_EQ(f.events_of(w.gp_lead), 0) << "acknowledged in time";
  EXPECT_EQ(f.events_of(w.la_lead), 0);
  EXPECT_EQ(f.events_of(w.hv_lead), 1);

  // Each disclosure audited with its purpose and legal basis, one row per receiver.
  if (!test::on_postgres()) {
    const std::string db = f.gw.data_dir() + "/gateway.db";
    EXPECT_EQ(test::store_scalar(db, "SELECT count(*) FROM audit WHERE action = 'disclose' AND topic = "
                                     "'safeguarding-concern' AND entity LIKE 'Communication/%' AND detail LIKE "
                                     "'%legal basis=%Art 9(2)(h)%' AND patient_ref = 'Patient/" +
                                         w.child + "'"),
              2);
  }
}

TEST(SafeguardingConcern, TheAuthorityHearsOnlyOfAReferralAndAcknowledgesItLikeAnyReceiver) {
  FlowFixture f;
  World w(f);
  ASSERT_FALSE(w.child.empty());
  std::string flag = w.post_concern(false);
  ASSERT_TRUE(f.wait_events(1, "/gp"));
  f.settle();
  EXPECT_EQ(f.events_of(w.la), 0);
  // The clinic refers the concern to the CSE team: the same Flag updated.
  std::string body = concern_flag(nhs_identifier(w.nhs), true);
  body.insert(1, R"("id":")" + flag + R"(",)");
  auto put = f.call("sexual-health", "PUT", "/fhir/Flag/" + flag, body);
  ASSERT_EQ(put.status, 200) << put.body;
  ASSERT_TRUE(f.wait_events(1, "/la"));
  auto la = f.received("/la");
  ASSERT_EQ(la.size(), 1u);
  std::string comm = la[0]["id"].GetString();
  std::string text = test::payload_text(la[0]);
  EXPECT_NE(text.find("Referred to: Child sexual exploitation team on 2026-11-03"), std::string::npos) << text;
  EXPECT_STREQ(la[0]["recipient"][0]["identifier"]["value"].GetString(), "L0001");
  ASSERT_EQ(w.timers(comm).size(), 2u);
  // The referral changed what the concern says: the GP is told again.
  ASSERT_TRUE(f.wait_events(2, "/gp"));
  // A re-sent, unchanged Flag discloses nothing new.
  auto again = f.call("sexual-health", "PUT", "/fhir/Flag/" + flag, body);
  ASSERT_EQ(again.status, 200) << again.body;
  f.settle();
  EXPECT_EQ(f.events_of(w.la), 1);
  EXPECT_EQ(f.events_of(w.gp), 2);

  // A service that refers a concern only by listing the authority (a FHIR
  // client without the CASH/GUM referral extensions): the authority hears then.
  std::string plain = concern_flag(nhs_identifier(w.nhs), false);
  auto second = f.call("sexual-health", "POST", "/fhir/Flag", plain);
  ASSERT_EQ(second.status, 201) << second.body;
  std::string second_id(json::get_string(*json::parse(second.body), "id").value_or(""));
  ASSERT_TRUE(f.wait_events(3, "/gp"));
  f.settle();
  EXPECT_EQ(f.events_of(w.la), 1);
  std::string listed = plain;
  listed.insert(1, R"("id":")" + second_id + R"(",)");
  const std::string dt = std::string(R"({"url":")") + kExt + R"(disclosable-to","valueCode":"gp"},)";
  listed.replace(listed.find(dt), dt.size(),
                 dt + R"({"url":")" + kExt + R"(disclosable-to","valueCode":"local-authority"},)");
  ASSERT_EQ(f.call("sexual-health", "PUT", "/fhir/Flag/" + second_id, listed).status, 200);
  ASSERT_TRUE(f.wait_events(2, "/la"));
  EXPECT_NE(test::payload_text(f.received("/la")[1]).find("Referred to: the local authority"), std::string::npos);

  auto a = w.ack("local-authority", comm);
  ASSERT_EQ(a.status, 200) << a.body;
  for (const auto& t : w.timers(comm)) EXPECT_EQ(t.status, "cancelled") << t.key;
  f.gw.set_today(day_after(w.due(comm, 2)));
  tick(f);
  EXPECT_EQ(f.events_of(w.la_lead), 1) << "the first, acknowledged, does not escalate; the second does, once";
  std::string unacked = f.received("/la")[1]["id"].GetString();
  ASSERT_TRUE(f.wait_events(1, "/la-lead"));
  std::string lead_text = test::payload_text(f.received("/la-lead")[0]);
  EXPECT_NE(lead_text.find("Communication/" + unacked + " "), std::string::npos) << lead_text;
  EXPECT_EQ(lead_text.find("Communication/" + comm + " "), std::string::npos) << lead_text;
  EXPECT_GE(f.events_of(w.gp_lead), 1) << "the GP did not acknowledge its two";
}

TEST(SafeguardingConcern, AReferredConcernAboutAnUnmatchedChildStillReachesTheAuthorityWithItsDeadlines) {
  FlowFixture f;
  std::string la = f.subscribe("local-authority", "safeguarding-concern", "/la");
  std::string gp = f.subscribe("gp", "safeguarding-concern", "/gp");
  std::string lead = f.subscribe("local-authority", "safeguarding-escalation", "/la-lead");
  // No NHS number on the clinic's row: the child is named by the clinic's local id.
  const std::string local = R"({"system":"urn:cpis-gateway:local-id:RXX10","value":"GUM-Z9"})";
  auto r = f.call("sexual-health", "POST", "/fhir/Flag", concern_flag(local, true));
  ASSERT_EQ(r.status, 201) << r.body;
  ASSERT_TRUE(f.wait_events(1, "/la"));
  auto got = f.received("/la");
  std::string comm = got[0]["id"].GetString();
  EXPECT_STREQ(got[0]["subject"]["identifier"]["value"].GetString(), "GUM-Z9");
  EXPECT_STREQ(got[0]["status"].GetString(), "in-progress");
  f.settle();
  EXPECT_EQ(f.events_of(gp), 0) << "no practice can be found for an unmatched child";
  // Its deadline escalates to the authority's lead like any other.
  auto timers = f.gw.store().timers_of("escalation", events::escalation_subject(comm)).value();
  ASSERT_EQ(timers.size(), 2u);
  f.gw.set_today(day_after(timers[0].due));
  tick(f);
  ASSERT_TRUE(f.wait_events(1, "/la-lead"));
  EXPECT_NE(test::payload_text(f.received("/la-lead")[0]).find("Communication/" + comm), std::string::npos);
  EXPECT_EQ(f.events_of(la), 1);
  if (!test::on_postgres()) {
    const std::string db = f.gw.data_dir() + "/gateway.db";
    EXPECT_EQ(test::store_scalar(db, "SELECT count(*) FROM audit WHERE action = 'disclose' AND entity = "
                                     "'Communication/" + comm + "' AND patient_ref = ''"),
              1)
        << "accounted for, about nobody the gateway knows";
  }
}

TEST(SafeguardingConcern, ADeadLetteredConcernEscalatesAtOnce) {
  FlowFixture f(std::chrono::milliseconds(300));
  std::string nhs = test::nhs_number_for(7102);
  std::string gp = f.subscribe("gp", "safeguarding-concern", "/gp");
  std::string lead = f.subscribe("gp", "safeguarding-escalation", "/gp-lead");
  f.rx.set_path_mode("/gp", test::HookReceiver::Mode::down);
  f.hl7(test::a28(nhs, "Zoe", "20120304", "B86001", {}));
  auto r = f.call("sexual-health", "POST", "/fhir/Flag", concern_flag(nhs_identifier(nhs), false));
  ASSERT_EQ(r.status, 201) << r.body;
  bool dead = false;
  for (int i = 0; i < 100 && !dead; ++i) {
    auto c = f.gw.store().event_counts(gp);
    dead = c && c->dead >= 1;
    if (!dead) std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(dead);
  tick(f);
  ASSERT_TRUE(f.wait_events(1, "/gp-lead"));
  std::string t = test::payload_text(f.received("/gp-lead")[0]);
  EXPECT_NE(t.find("The safeguarding-concern disclosure"), std::string::npos) << t;
  EXPECT_NE(t.find("Delivery to B86001 failed: the notification was dead-lettered"), std::string::npos) << t;
}

}  // namespace
}  // namespace gw
