// Think family (CPIS.md §3) and Tier 4 discharge (§4) end to end in one
// process: SystmOne A28s set up who cares for the children (as a real
// deployment would have them), the CAMHS sample extract arrives through
// POST /ingest/camhs, and real HTTPS receivers (mutual TLS) get what the
// fan-out derives for each subscriber.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <set>
#include <thread>


#include "gateway/common/json.h"
#include "gateway/events/subscriptions.h"
#include "tests/support/fixtures.h"
#include "tests/support/flows_kit.h"
#include "tests/support/hook_receiver.h"
#include "tests/support/subscription_kit.h"
#include "tests/support/test_gateway.h"
#include "tests/support/user_tokens_kit.h"
#include "tests/support/test_store.h"

namespace gw {
namespace {

using namespace std::chrono_literals;
using test::SubscriptionArgs;

constexpr const char* kParent = "9990079196";  // Jade, the sample's adult MH patient
constexpr const char* kEllie = "9990237573";
constexpr const char* kNoah = "9990316767";
constexpr const char* kYoungPerson = "9990633525";  // the sample's Tier 4 spell

events::SubscriptionsOptions fast_options() { return test::fast_subscriptions(4, std::chrono::milliseconds(200)); }

// A SystmOne registration: PD1 GP practice, ZCT care-team rows, NK1 family rows.
std::string a28(const std::string& nhs, const std::string& name, const std::string& dob, const std::string& gp,
                const std::vector<std::string>& extra_segments) {
  std::string m = "MSH|^~\\&|SYSTMONE|RFR|ROUTE|CPISGW|20261103091500+0000||ADT^A28^ADT_A05|S1-" + nhs +
                  "|P|2.4|||||GBR|UNICODE UTF-8\r";
  m += "EVN|A28|20261103091500\r";
  m += "PID|1||" + nhs + "^^^NHS^NH||THOMPSON^" + name + "||" + dob + "|F\r";
  m += "PD1|||Practice^^" + gp + "^^^NHS^ODS\r";
  for (const auto& s : extra_segments) m += s + "\r";
  return m;
}

std::string sample_extract() { return test::fixture("camhs/extract_sample.xml"); }

std::string id_of(const std::string& body) {
  auto d = json::parse(body);
  if (!d || !d->IsObject()) return {};
  return std::string(json::get_string(*d, "id").value_or(""));
}

struct Fixture {
  test::InProcessGateway gw{config::Limits{}, fast_options()};
  test::HookReceiver rx;
  std::map<std::string, test::HttpsClient> clients;

  test::ClientResponse call(const std::string& role, const std::string& method, const std::string& target,
                            const std::string& body = "", const std::string& type = "application/fhir+json") {
    auto it = clients.find(role);
    if (it == clients.end()) it = clients.emplace(role, gw.client(role)).first;
    // A person at the role's organisation: reading a disclosure needs one
    // (profiles/policy/users.json personRequired).
    auto r = it->second.request(method, target, body, {{"Content-Type", type}, test::user_header(role)});
    EXPECT_TRUE(r.has_value()) << method << " " << target;
    return r ? *r : test::ClientResponse{};
  }
  std::string subscribe(const std::string& role, const std::string& topic, const std::string& path) {
    SubscriptionArgs a{.topic = topic, .endpoint = rx.url(path), .content = "full-resource"};
    auto r = call(role, "POST", "/fhir/Subscription", test::subscription_json(a));
    EXPECT_EQ(r.status, 201) << r.body;
    std::string id = id_of(r.body);
    EXPECT_TRUE(rx.wait_for([&](auto& p) { return test::count_type(p, "handshake", path) >= 1; }, 10s));
    return id;
  }
  void hl7(const std::string& message) {
    auto r = call("integration", "POST", "/ingest/systmone", message, "application/hl7-v2");
    ASSERT_EQ(r.status, 200) << r.body;
  }
  void extract(const std::string& xml) {
    auto r = call("integration", "POST", "/ingest/camhs", xml, "application/xml");
    ASSERT_EQ(r.status, 200) << r.body;
  }
  bool wait_events(size_t n, const std::string& path, std::chrono::milliseconds timeout = 15s) {
    return rx.wait_for([&](auto& p) { return test::event_numbers(p, path).size() >= n; }, timeout);
  }
  // The focus resources of every event-notification posted to path, in order.
  std::vector<json::Document> resources(const std::string& path) { return test::focus_resources(rx.posts(), path); }
  std::vector<std::string> bodies(const std::string& path) {
    std::vector<std::string> out;
    for (const auto& p : rx.posts())
      if (p.target == path && test::read_notification(p.body).type == "event-notification") out.push_back(p.body);
    return out;
  }
  int64_t events_of(const std::string& subscription) {
    auto c = gw.store().event_counts(subscription);
    return c ? c->events : -1;
  }
};

// NHS numbers named in Communication.about.
std::set<std::string> about(const json::Value& c) {
  std::set<std::string> out;
  if (!c.HasMember("about")) return out;
  for (const auto& a : c["about"].GetArray()) out.insert(a["identifier"]["value"].GetString());
  return out;
}

std::string payload_text(const json::Value& c) {
  std::string out;
  for (const auto& p : c["payload"].GetArray()) out += std::string(p["contentString"].GetString()) + "\n";
  return out;
}

// Nothing of the clinical record leaves: no labels, no diagnosis/team codes,
// no references to encounters, referrals, plans or observations, no notes,
// no identifiers of the trust's local records.
void expect_no_clinical_content(const std::string& body) {
  for (const char* leak : {"\"PSY\"", "\"SUD\"", "v3-ActCode", "v3-Confidentiality", "\"security\"", "EpisodeOfCare",
                           "Encounter", "CarePlan", "Observation", "\"note\"", "A05", "ServiceRequest", "referral",
                           "RXE-A-5511", "relapse-signature", "care-plan-category", "Adolescent Unit", "HOME",
                           "ROUTINE", "\"GP\""})
    EXPECT_EQ(body.find(leak), std::string::npos) << "leaked " << leak;
}

// Every notification Bundle (with its Communication) is valid FHIR R4, by
// the independent JSON-schema validator the other schema tests use.
void expect_valid_r4(const std::vector<std::string>& bodies) {
  test::TempDir out;
  for (size_t i = 0; i < bodies.size(); ++i) std::ofstream(out.path() + "/" + std::to_string(i) + ".json") << bodies[i];
  std::string cmd = "node " + std::string(GW_SOURCE_DIR) + "/tests/tools/fhir-validate.js " + out.path() + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buf[4096];
  while (size_t k = fread(buf, 1, sizeof buf, pipe)) output.append(buf, k);
  int status = pclose(pipe);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << output;
  EXPECT_NE(output.find("fhir-validate: " + std::to_string(bodies.size()) + " resources, 0 invalid"), std::string::npos)
      << output;
}

// The children's registrations: Ellie at school (school nursing RXX04),
// Noah with the health visitor (RXX02), both at GP practice B86001. Ellie's
// NK1 names Jade as mother: the same family link the extract's Dependant
// row writes.
void register_children(Fixture& f) {
  f.hl7(a28(kEllie, "Ellie", "20190506", "B86001",
            {"NK1|1|THOMPSON^Jade^^^Ms|MTH" + std::string(30, '|') + kParent + "^^^NHS^NH",
             "ZCT|SN|RXX04^School Nursing Rotherham|20240901|"}));
  f.hl7(a28(kNoah, "Noah", "20230111", "B86001", {"ZCT|HV|RXX02^Health Visiting Rotherham|20230201|"}));
}

TEST(RelapseIndicator, SampleExtractTellsEachServiceAboutItsOwnLinkedChildrenOnly) {
  Fixture f;
  std::string gp = f.subscribe("gp", "relapse-indicator", "/gp");
  std::string hv = f.subscribe("health-visiting", "relapse-indicator", "/hv");
  std::string sn = f.subscribe("school-nursing", "relapse-indicator", "/sn");
  std::string pl = f.subscribe("paediatric-liaison", "relapse-indicator", "/pl");  // cares for nobody here
  std::string mw = f.subscribe("midwifery", "relapse-indicator", "/mw");           // no pregnancy recorded
  register_children(f);
  f.extract(sample_extract());

  ASSERT_TRUE(f.wait_events(1, "/gp"));
  ASSERT_TRUE(f.wait_events(1, "/hv"));
  ASSERT_TRUE(f.wait_events(1, "/sn"));
  // One fan-out unit holds every subscriber's events: the others have none.
  EXPECT_EQ(f.events_of(pl), 0);
  EXPECT_EQ(f.events_of(mw), 0);
  EXPECT_EQ(f.events_of(gp), 1);
  EXPECT_EQ(f.events_of(hv), 1);
  EXPECT_EQ(f.events_of(sn), 1);

  auto gp_r = f.resources("/gp"), hv_r = f.resources("/hv"), sn_r = f.resources("/sn");
  ASSERT_EQ(gp_r.size(), 1u);
  ASSERT_EQ(hv_r.size(), 1u);
  ASSERT_EQ(sn_r.size(), 1u);
  for (auto* c : {&gp_r[0], &hv_r[0], &sn_r[0]}) {
    EXPECT_STREQ((*c)["resourceType"].GetString(), "Communication");
    EXPECT_STREQ((*c)["status"].GetString(), "in-progress") << "until its recipient acknowledges it (issue 17)";
    EXPECT_STREQ((*c)["category"][0]["coding"][0]["code"].GetString(), "relapse-indicator");
    EXPECT_STREQ((*c)["subject"]["identifier"]["value"].GetString(), kParent);
    EXPECT_FALSE((*c)["subject"].HasMember("reference"));
    std::string text = payload_text(*c);
    EXPECT_NE(text.find("Indicator: Stops taking prescribed medication"), std::string::npos) << text;
    EXPECT_NE(text.find("Indicator: Keeps the children home from school"), std::string::npos);
    EXPECT_NE(text.find("Indicator: Not answering the door to professionals"), std::string::npos);
    EXPECT_NE(text.find("recorded on 2026-11-03"), std::string::npos);
    EXPECT_NE(text.find("Review due on 2027-02-03"), std::string::npos);
    EXPECT_NE(text.find("Agreed action: Tell the care coordinator the same day"), std::string::npos);
    EXPECT_NE(text.find("Contact: A. Worker, Adult Community MH Rotherham, 01709 000000"), std::string::npos) << text;
    EXPECT_STREQ((*c)["sender"]["display"].GetString(), "A. Worker");
  }
  EXPECT_STREQ(gp_r[0]["recipient"][0]["identifier"]["value"].GetString(), "B86001");
  EXPECT_STREQ(hv_r[0]["recipient"][0]["identifier"]["value"].GetString(), "RXX02");
  // Which children: each service hears about the children it cares for.
  EXPECT_EQ(about(gp_r[0]), (std::set<std::string>{kEllie, kNoah}));
  EXPECT_EQ(about(hv_r[0]), (std::set<std::string>{kNoah}));
  EXPECT_EQ(about(sn_r[0]), (std::set<std::string>{kEllie}));
  // The sibling a service does not care for is not in its notification at all.
  auto hv_body = f.bodies("/hv"), sn_body = f.bodies("/sn");
  EXPECT_EQ(hv_body[0].find(kEllie), std::string::npos);
  EXPECT_EQ(hv_body[0].find("Ellie"), std::string::npos);
  EXPECT_EQ(sn_body[0].find(kNoah), std::string::npos);
  std::vector<std::string> all;
  for (const auto& path : {"/gp", "/hv", "/sn"})
    for (const auto& body : f.bodies(path)) {
      expect_no_clinical_content(body);
      all.push_back(body);
    }
  expect_valid_r4(all);
}

TEST(RelapseIndicator, FamilyLinksFromNk1AndDependantRowsAreOneLink) {
  Fixture f;
  register_children(f);
  f.extract(sample_extract());
  std::string q = "/fhir/RelatedPerson?identifier=https://cpis-gateway.nhs.uk/Id/family-link%7C" + std::string(kEllie) +
                  "-" + kParent;
  auto r = f.call("admin", "GET", q);
  ASSERT_EQ(r.status, 200);
  auto d = json::parse(r.body);
  ASSERT_TRUE(d);
  ASSERT_EQ((*d)["total"].GetInt(), 1) << r.body;
  // Written by both feeds: the A28's NK1 created it, the extract updated it.
  std::string id = (*d)["entry"][0]["resource"]["id"].GetString();
  auto h = f.call("admin", "GET", "/fhir/RelatedPerson/" + id + "/_history");
  EXPECT_EQ((*json::parse(h.body))["total"].GetInt(), 2) << h.body;
  EXPECT_STREQ((*d)["entry"][0]["resource"]["meta"]["versionId"].GetString(), "2") << r.body;
}

TEST(RelapseIndicator, DisclosuresAreReadableByTheirRecipientOnlyAndAudited) {
  Fixture f;
  std::string gp = f.subscribe("gp", "relapse-indicator", "/gp");
  std::string hv = f.subscribe("health-visiting", "relapse-indicator", "/hv");
  register_children(f);
  f.extract(sample_extract());
  ASSERT_TRUE(f.wait_events(1, "/gp"));
  ASSERT_TRUE(f.wait_events(1, "/hv"));
  std::string gp_comm = id_of(json::to_string(f.resources("/gp")[0]));
  std::string hv_comm = id_of(json::to_string(f.resources("/hv")[0]));
  EXPECT_EQ(f.call("gp", "GET", "/fhir/Communication/" + gp_comm).status, 200);
  // The system alone, without the person using it, reads no disclosure.
  auto alone = f.gw.client("gp").request("GET", "/fhir/Communication/" + gp_comm);
  ASSERT_TRUE(alone.has_value());
  EXPECT_EQ(alone->status, 401) << alone->body;
  EXPECT_NE(alone->body.find("user token"), std::string::npos) << alone->body;
  EXPECT_TRUE(alone->header("www-authenticate").has_value());
  EXPECT_EQ(f.call("health-visiting", "GET", "/fhir/Communication/" + gp_comm).status, 404);
  EXPECT_EQ(f.call("admin", "GET", "/fhir/Communication/" + gp_comm).status, 200);
  auto s = f.call("health-visiting", "GET", "/fhir/Communication");
  ASSERT_EQ(s.status, 200);
  EXPECT_EQ((*json::parse(s.body))["total"].GetInt(), 1);
  EXPECT_NE(s.body.find(hv_comm), std::string::npos);
  // Never written by a client, admin included.
  const std::string forged = "{\"resourceType\":\"Communication\",\"status\":\"completed\"}";
  EXPECT_EQ(f.call("gp", "POST", "/fhir/Communication", forged).status, 403);
  EXPECT_EQ(f.call("admin", "POST", "/fhir/Communication", forged).status, 403);
  EXPECT_EQ(f.call("admin", "DELETE", "/fhir/Communication/" + gp_comm).status, 403);
  // The parent's plan itself stays with the mental-health services.
  auto plans = f.call("gp", "GET", "/fhir/CarePlan");
  EXPECT_EQ((*json::parse(plans.body))["total"].GetInt(), 0);

  // Who received what about whom, and why: one row per person concerned.
  auto count = [&](const std::string& where) {
    return test::store_scalar(f.gw.data_dir() + "/gateway.db",
                              "SELECT count(*) FROM audit WHERE action = 'disclose' AND " + where);
  };
  EXPECT_EQ(count("actor_ods = 'B86001' AND entity = 'Communication/" + gp_comm + "'"), 3);  // parent + 2 children
  EXPECT_EQ(count("actor_ods = 'RXX02' AND entity = 'Communication/" + hv_comm + "'"), 2);   // parent + Noah
  EXPECT_EQ(count("detail LIKE '%purpose safeguarding-children%'"), 5);
  // The same, as the data-flow reports group it.
  EXPECT_EQ(count("topic = 'relapse-indicator' AND purpose = 'safeguarding-children' AND channel = 'rest-hook'"), 5);
  EXPECT_EQ(count("detail LIKE '%" + std::string(kParent) + "%' OR detail LIKE '%" + kEllie + "%'"), 0);
}

TEST(RelapseIndicator, ResentExtractIsQuietAndAnObservedIndicatorIsNotified) {
  Fixture f;
  std::string gp = f.subscribe("gp", "relapse-indicator", "/gp");
  register_children(f);
  f.extract(sample_extract());
  ASSERT_TRUE(f.wait_events(1, "/gp"));
  f.extract(sample_extract());  // the same extract again: nothing new to disclose
  std::string observed = sample_extract();
  observed.replace(observed.find("    <Dependant"), 0,
                   "    <IndicatorObserved CarePlanID=\"CP2\" Seq=\"2\" Date=\"2026-11-20\" ObservedBy=\"P77\">"
                   "<Note>Clinical note that must stay behind</Note></IndicatorObserved>\n");
  f.extract(observed);
  ASSERT_TRUE(f.wait_events(2, "/gp"));
  // Event 2 is the observation: the unchanged re-send made no event.
  auto r = f.resources("/gp");
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(f.events_of(gp), 2);
  std::string text = payload_text(r[1]);
  EXPECT_NE(text.find("Indicator observed on 2026-11-20: Keeps the children home from school"), std::string::npos) << text;
  EXPECT_NE(text.find("Adult Community MH Rotherham, 01709 000000"), std::string::npos) << text;
  EXPECT_EQ(about(r[1]), (std::set<std::string>{kEllie, kNoah}));
  auto bodies = f.bodies("/gp");
  EXPECT_EQ(bodies.back().find("Clinical note"), std::string::npos);
  expect_no_clinical_content(bodies.back());
}

TEST(RelapseIndicator, MidwiferyHearsWhileCaringForThePregnantParent) {
  Fixture f;
  std::string mw = f.subscribe("midwifery", "relapse-indicator", "/mw");
  register_children(f);
  // A booking: EDD 2027-05-14 (in the future for this test's lifetime), midwives RXX03.
  f.hl7("MSH|^~\\&|SYSTMONE|RFRMW|ROUTE|CPISGW|20261108094500+0000||ORU^R01^ORU_R01|S1-000500|P|2.4\r"
        "PID|1||" + std::string(kParent) + "^^^NHS^NH||THOMPSON^Jade^^^Ms||19960212|F\r"
        "OBR|1||S1-OBR-500|BOOKING^Pregnancy booking^LOCAL|||20261108093000\r"
        "ZPN|20270514|14|20261108|Y|\r"
        "ZCT|MW|RXX03^Rotherham Community Midwives|20261108|\r");
  f.extract(sample_extract());
  ASSERT_TRUE(f.wait_events(1, "/mw"));
  auto r = f.resources("/mw");
  ASSERT_EQ(r.size(), 1u);
  EXPECT_TRUE(about(r[0]).empty());  // the midwives care for neither child
  EXPECT_STREQ(r[0]["subject"]["identifier"]["value"].GetString(), kParent);
  EXPECT_NE(payload_text(r[0]).find("pregnant"), std::string::npos);
  EXPECT_EQ(f.bodies("/mw")[0].find(kEllie), std::string::npos);
  EXPECT_EQ(f.bodies("/mw")[0].find(kNoah), std::string::npos);
}

// The young person's registration: GP practice B86001 and the local CAMHS
// team RXX07 on the SystmOne care team (the extract's trust RXE holds the
// referral; RXX07 is the community CAMHS team the dev PKI has a certificate for).
// The GP is also a ZCT row because the extract's conditional PUT replaces the
// whole Patient and drops PD1's generalPractitioner (the merge policy of
// another issue); the care team survives as its own resource.
void register_young_person(Fixture& f) {
  f.hl7(a28(kYoungPerson, "Amy", "20110304", "B86001",
            {"ZCT|CAMHS|RXX07^CAMHS Rotherham|20260901|", "ZCT|GP|B86001^Practice|20110401|"}));
}

TEST(Tier4Discharge, CamhsGetsTheSpellTheGpADischargeNoticeAndNobodyElse) {
  Fixture f;
  std::string camhs = f.subscribe("camhs", "tier4-discharge", "/camhs");
  std::string gp = f.subscribe("gp", "tier4-discharge", "/gp");
  register_young_person(f);
  register_children(f);  // other patients at the same practice: not concerned
  f.extract(sample_extract());
  ASSERT_TRUE(f.wait_events(1, "/camhs"));
  ASSERT_TRUE(f.wait_events(1, "/gp"));
  EXPECT_EQ(f.events_of(camhs), 1);  // the spell only, not the other resources of the extract
  EXPECT_EQ(f.events_of(gp), 1);

  auto c = f.resources("/camhs");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_STREQ(c[0]["resourceType"].GetString(), "Encounter");  // CAMHS may see the PSY-labelled spell
  EXPECT_STREQ(c[0]["period"]["end"].GetString(), "2026-11-05");
  std::string encounter = c[0]["id"].GetString();

  auto g = f.resources("/gp");
  ASSERT_EQ(g.size(), 1u);
  EXPECT_STREQ(g[0]["resourceType"].GetString(), "Communication");
  EXPECT_STREQ(g[0]["category"][0]["coding"][0]["code"].GetString(), "tier4-discharge");
  EXPECT_STREQ(g[0]["subject"]["identifier"]["value"].GetString(), kYoungPerson);
  std::string text = payload_text(g[0]);
  EXPECT_NE(text.find("Discharged from Tier 4 CAMHS inpatient care on 2026-11-05"), std::string::npos) << text;
  EXPECT_NE(text.find("Tier 4 provider (ODS): RXX"), std::string::npos);
  expect_no_clinical_content(f.bodies("/gp")[0]);
  expect_valid_r4({f.bodies("/gp")[0], f.bodies("/camhs")[0]});

  // The CAMHS-format rendering for the CAMHS system.
  auto x = f.call("camhs", "GET", "/render/camhs/Encounter/" + encounter);
  ASSERT_EQ(x.status, 200) << x.body;
  EXPECT_NE(x.header("content-type").value_or("").find("application/xml"), std::string::npos);
  EXPECT_NE(x.body.find("<HospitalSpell"), std::string::npos) << x.body;
  EXPECT_NE(x.body.find("End=\"2026-11-05\""), std::string::npos);
  EXPECT_NE(x.body.find("Tier=\"4\""), std::string::npos);
  EXPECT_NE(x.body.find(kYoungPerson), std::string::npos);
  EXPECT_EQ(f.call("gp", "GET", "/render/camhs/Encounter/" + encounter).status, 403);
  EXPECT_EQ(f.call("camhs", "GET", "/render/camhs/Encounter/nope").status, 404);
}

TEST(Tier4Discharge, AnOpenSpellIsNotADischargeAndItsEndIs) {
  Fixture f;
  std::string camhs = f.subscribe("camhs", "tier4-discharge", "/camhs");
  std::string gp = f.subscribe("gp", "tier4-discharge", "/gp");
  std::string all = f.subscribe("integration", "patient-change", "/all");
  register_young_person(f);
  std::string open = sample_extract();
  open.replace(open.find(" End=\"2026-11-05\""), 17, "");
  f.extract(open);
  // A later change the fan-out must pass after the extract: proof it has decided.
  f.hl7(a28(kEllie, "Ellie", "20190506", "B86001", {}));
  ASSERT_TRUE(f.rx.wait_for([&](auto& p) {
    for (const auto& b : p)
      if (b.target == "/all" && b.body.find(kEllie) != std::string::npos) return true;
    return false;
  }, 15s));
  EXPECT_EQ(f.events_of(camhs), 0);
  EXPECT_EQ(f.events_of(gp), 0);
  f.extract(sample_extract());  // the spell ends
  ASSERT_TRUE(f.wait_events(1, "/camhs"));
  ASSERT_TRUE(f.wait_events(1, "/gp"));
  EXPECT_EQ(f.events_of(camhs), 1);
  EXPECT_EQ(f.events_of(gp), 1);
}

TEST(Tier4Discharge, ServicesNotCaringForTheYoungPersonHearNothing) {
  Fixture f;
  std::string camhs = f.subscribe("camhs", "tier4-discharge", "/camhs");
  std::string gp = f.subscribe("gp", "tier4-discharge", "/gp");
  std::string all = f.subscribe("integration", "patient-change", "/all");
  f.extract(sample_extract());  // the trust RXE holds the referral; RXX07 and B86001 care for nobody here
  f.hl7(a28(kEllie, "Ellie", "20190506", "B86001", {}));
  ASSERT_TRUE(f.rx.wait_for([&](auto& p) {
    for (const auto& b : p)
      if (b.target == "/all" && b.body.find(kEllie) != std::string::npos) return true;
    return false;
  }, 15s));
  EXPECT_EQ(f.events_of(camhs), 0);
  EXPECT_EQ(f.events_of(gp), 0);
}

}  // namespace
}  // namespace gw
