// The person behind each access (issue 17 part 3): who needs a person,
// legitimate relationship (caseload) and break-glass over the real HTTPS
// stack, with the Caldicott guardian's notification delivered to a real
// mutual-TLS receiver; the person in the audit trail's AuditEvents and in the
// CP-IS access record the local authority sees; break-glass counted per
// person in the data-flow report.
#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "gateway/audit/balp.h"
#include "gateway/common/clock.h"
#include "gateway/common/json.h"
#include "gateway/events/subscriptions.h"
#include "tests/support/flows_kit.h"
#include "tests/support/hook_receiver.h"
#include "tests/support/plan_seed.h"
#include "tests/support/subscription_kit.h"
#include "tests/support/test_gateway.h"
#include "tests/support/test_store.h"
#include "tests/support/user_tokens_kit.h"

namespace gw {
namespace {

using namespace std::chrono_literals;
using Headers = std::vector<std::pair<std::string, std::string>>;

constexpr const char* kReason = "Child brought to clinic by a neighbour; mother unreachable";

std::string id_of(const std::string& body) {
  auto d = json::parse(body);
  return d && d->IsObject() ? std::string(json::get_string(*d, "id").value_or("")) : std::string();
}

std::string diagnostics(const std::string& body) {
  auto d = json::parse(body);
  if (!d || !d->HasMember("issue")) return "";
  return (*d)["issue"][0].HasMember("diagnostics") ? (*d)["issue"][0]["diagnostics"].GetString() : "";
}

struct Fixture {
  test::InProcessGateway gw{config::Limits{}, test::fast_subscriptions(4, std::chrono::milliseconds(200))};
  test::HookReceiver rx;
  std::string child, child_nhs = test::nhs_number_from("999061235");

  Fixture() {
    auto integ = gw.client("integration");
    // On the GP practice's caseload (B86001), not on the health visitors' (RXX02).
    child = test::create_patient(
        integ, child_nhs,
        R"("birthDate":"2020-02-02","generalPractitioner":[{"identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"B86001"}}])");
  }
  test::ClientResponse call(const std::string& role, const std::string& target, Headers h = {}) {
    auto c = gw.client(role);
    auto r = c.request("GET", target, "", h);
    EXPECT_TRUE(r.has_value());
    return r ? *r : test::ClientResponse{};
  }
  std::string chronology() const { return "/fhir/Patient/" + child + "/$chronology"; }
  void subscribe(const std::string& role, const std::string& path) {
    test::SubscriptionArgs a{.topic = "break-glass", .endpoint = rx.url(path), .content = "full-resource"};
    auto c = gw.client(role);
    auto r = c.request("POST", "/fhir/Subscription", test::subscription_json(a), {{"Content-Type", "application/fhir+json"}});
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(r->status, 201) << r->body;
    ASSERT_TRUE(rx.wait_for([&](auto& p) { return test::count_type(p, "handshake", path) >= 1; }, 10s));
  }
};

TEST(BreakGlass, ChronologyNeedsAPersonAndACaseloadOrAReason) {
  Fixture f;
  f.subscribe("health-visiting", "/hv-caldicott");
  f.subscribe("gp", "/gp-caldicott");
  // The system alone: 401 saying a user token is required.
  auto alone = f.call("health-visiting", f.chronology());
  EXPECT_EQ(alone.status, 401) << alone.body;
  EXPECT_NE(diagnostics(alone.body).find("user token"), std::string::npos) << alone.body;
  EXPECT_EQ(alone.header("www-authenticate").value_or(""), "Bearer realm=\"cpis-gateway\"");

  // The GP practice has the child on its caseload: allowed, no break-glass.
  auto gp = f.call("gp", f.chronology(), {test::user_header("gp", "R8000", "gp-user-7", "Dr Kay Example")});
  EXPECT_EQ(gp.status, 200) << gp.body;

  // A health visitor, not on the caseload: refused, told how to break the glass.
  Headers hv{test::user_header("health-visiting", "R8001", "hv-user-3", "Sam Visitor")};
  auto refused = f.call("health-visiting", f.chronology(), hv);
  EXPECT_EQ(refused.status, 403) << refused.body;
  EXPECT_NE(diagnostics(refused.body).find("X-Break-Glass-Reason"), std::string::npos) << refused.body;
  EXPECT_NE(diagnostics(refused.body).find("Caldicott guardian"), std::string::npos) << refused.body;
  // A reason too short to say anything, or far too long: 400 naming the header.
  for (std::string reason : {std::string("because"), std::string(600, 'x')}) {
    Headers h = hv;
    h.emplace_back("X-Break-Glass-Reason", reason);
    auto r = f.call("health-visiting", f.chronology(), h);
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_NE(r.body.find("X-Break-Glass-Reason"), std::string::npos);
  }
  // With a reason: allowed for this request.
  Headers glass = hv;
  glass.emplace_back("X-Break-Glass-Reason", kReason);
  auto opened = f.call("health-visiting", f.chronology(), glass);
  ASSERT_EQ(opened.status, 200) << opened.body;
  EXPECT_NE(opened.body.find("\"chronology\""), std::string::npos);
  // ...and only for that request.
  EXPECT_EQ(f.call("health-visiting", f.chronology(), hv).status, 403);

  // The health visitors' Caldicott guardian is told, over mutual TLS; the GP
  // practice's is not (its organisation did not break the glass).
  ASSERT_TRUE(f.rx.wait_for([](auto& p) { return test::event_numbers(p, "/hv-caldicott").size() >= 1; }, 15s));
  auto focus = test::focus_resources(f.rx.posts(), "/hv-caldicott");
  ASSERT_EQ(focus.size(), 1u);
  std::string note = json::to_string(focus[0]);
  EXPECT_NE(note.find("break-glass"), std::string::npos) << note;
  EXPECT_NE(note.find("hv-user-3"), std::string::npos) << note;
  EXPECT_NE(note.find("Sam Visitor"), std::string::npos) << note;
  EXPECT_NE(note.find("RXX02"), std::string::npos) << note;
  EXPECT_NE(note.find("Patient/" + f.child), std::string::npos) << note;
  EXPECT_NE(note.find("\"BTG\""), std::string::npos) << note;
  // No clinical content, and not the free-text reason.
  EXPECT_EQ(note.find("neighbour"), std::string::npos) << note;
  EXPECT_EQ(note.find("Encounter"), std::string::npos) << note;
  for (const auto& p : f.rx.posts())
    if (p.target == "/hv-caldicott") {
      EXPECT_EQ(p.body.find("neighbour"), std::string::npos);
    }
  std::this_thread::sleep_for(500ms);
  EXPECT_TRUE(test::event_numbers(f.rx.posts(), "/gp-caldicott").empty());


  // Audited with the reason and purpose of use BTG, naming the person.
  store::AuditQuery q;
  q.actions = {"break-glass"};
  auto rows = f.gw.store().search_audit(q);
  ASSERT_TRUE(rows.has_value()) << rows.error().message;
  ASSERT_EQ(rows->items.size(), 1u);
  const auto& row = rows->items[0];
  EXPECT_EQ(row.purpose, "BTG");
  EXPECT_NE(row.detail.find(kReason), std::string::npos);
  EXPECT_EQ(row.patient_ref, "Patient/" + f.child);
  std::string ae = audit::balp_event(row);
  EXPECT_NE(ae.find("hv-user-3"), std::string::npos) << ae;
  EXPECT_NE(ae.find(test::kTestIssuer), std::string::npos) << ae;
  EXPECT_NE(ae.find("\"R8001\""), std::string::npos) << ae;
  EXPECT_NE(ae.find("\"BTG\""), std::string::npos) << ae;
  EXPECT_NE(ae.find("neighbour"), std::string::npos) << ae;
}

TEST(BreakGlass, RepeatedBreakGlassIsCountedPerPersonInTheReport) {
  Fixture f;
  Headers a{test::user_header("health-visiting", "R8001", "hv-user-3", "Sam Visitor"), {"X-Break-Glass-Reason", kReason}};
  Headers b{test::user_header("health-visiting", "R8001", "hv-user-9", "Jo Other"), {"X-Break-Glass-Reason", kReason}};
  for (int i = 0; i < 3; ++i) ASSERT_EQ(f.call("health-visiting", f.chronology(), a).status, 200);
  ASSERT_EQ(f.call("health-visiting", f.chronology(), b).status, 200);
  const int64_t day = 24 * 3600 * 1000;
  auto report = f.call("commissioner", "/audit/flows?from=" + clock::iso_ms(clock::now_ms() - day).substr(0, 10) +
                                           "&to=" + clock::iso_ms(clock::now_ms() + day).substr(0, 10));
  ASSERT_EQ(report.status, 200) << report.body;
  auto d = json::parse(report.body);
  ASSERT_TRUE(d.has_value());
  const json::Value& g = (*d)["safeguarding"]["break_glass_by_person"];
  ASSERT_EQ(g.Size(), 2u) << report.body;
  EXPECT_STREQ(g[0]["person"].GetString(), "hv-user-3");
  EXPECT_STREQ(g[0]["name"].GetString(), "Sam Visitor");
  EXPECT_STREQ(g[0]["organisation"].GetString(), "RXX02");
  EXPECT_EQ(g[0]["accesses"].GetInt64(), 3);
  EXPECT_STREQ(g[1]["person"].GetString(), "hv-user-9");
  EXPECT_EQ(g[1]["accesses"].GetInt64(), 1);
  // The reason never reaches the report.
  EXPECT_EQ(report.body.find("neighbour"), std::string::npos);

  // The same counts as CSV (table=break-glass), for the spreadsheet.
  const std::string period = "from=" + clock::iso_ms(clock::now_ms() - day).substr(0, 10) +
                             "&to=" + clock::iso_ms(clock::now_ms() + day).substr(0, 10);
  auto csv = f.call("commissioner", "/audit/flows?" + period + "&format=csv&table=break-glass");
  ASSERT_EQ(csv.status, 200) << csv.body;
  EXPECT_EQ(csv.header("content-type").value_or(""), "text/csv; charset=utf-8");
  EXPECT_NE(csv.header("content-disposition").value_or("").find("break-glass.csv"), std::string::npos);
  const std::string iss = test::kTestIssuer;
  EXPECT_EQ(csv.body, "organisation,person,name,issuer,accesses\r\n"
                      "\"RXX02\",\"hv-user-3\",\"Sam Visitor\",\"" + iss + "\",3\r\n"
                      "\"RXX02\",\"hv-user-9\",\"Jo Other\",\"" + iss + "\",1\r\n");
  EXPECT_EQ(csv.body.find("neighbour"), std::string::npos);
  // The flows CSV is unchanged by it; a table that is not one, or a table
  // asked of the JSON (which holds every table), is 400 naming `table`.
  auto flows = f.call("commissioner", "/audit/flows?" + period + "&format=csv");
  ASSERT_EQ(flows.status, 200);
  EXPECT_EQ(flows.body.rfind("from_org,from_system,to_org,", 0), 0u) << flows.body;
  for (std::string q : {"&format=csv&table=people", "&table=break-glass"}) {
    auto bad = f.call("commissioner", "/audit/flows?" + period + q);
    EXPECT_EQ(bad.status, 400) << q << bad.body;
    EXPECT_NE(bad.body.find("table"), std::string::npos) << bad.body;
  }
  // Only the trail's readers: a health visitor's system may not.
  EXPECT_EQ(f.call("health-visiting", "/audit/flows?" + period + "&format=csv&table=break-glass").status, 403);
}

TEST(PersonBehindAccess, EveryAuditEventOfTheRequestNamesThePerson) {
  test::InProcessGateway gw;
  auto integ = gw.client("integration");
  std::string pid = test::create_patient(integ, test::nhs_number_from("999071111"));
  auto c = gw.client("health-visiting");
  auto r = c.request("GET", "/fhir/Patient/" + pid, "", {test::user_header("health-visiting", "R8001", "hv-42", "Pat Reader")});
  ASSERT_EQ(r->status, 200) << r->body;
  store::AuditQuery q;
  q.entities = {"Patient/" + pid};
  q.actions = {"read"};
  bool found = false;
  for (int i = 0; i < 50 && !found; ++i) {  // read rows are queued, committed with the next group
    auto rows = gw.store().search_audit(q);
    ASSERT_TRUE(rows.has_value());
    for (const auto& row : rows->items) {
      std::string ae = audit::balp_event(row);
      auto d = json::parse(ae);
      ASSERT_TRUE(d.has_value());
      for (const auto& agent : (*d)["agent"].GetArray()) {
        if (!agent["who"].HasMember("identifier")) continue;
        if (std::string(agent["who"]["identifier"]["value"].GetString()) != "hv-42") continue;
        found = true;
        EXPECT_STREQ(agent["who"]["identifier"]["system"].GetString(), test::kTestIssuer);
        EXPECT_STREQ(agent["name"].GetString(), "Pat Reader");
        EXPECT_STREQ(agent["role"][0]["coding"][0]["code"].GetString(), "R8001");
        EXPECT_TRUE(agent["requestor"].GetBool());
      }
    }
    if (!found) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(found) << "no AuditEvent names the person";
}

TEST(PersonBehindAccess, UserFacingSystemsNameThePersonInTheCpisAccessRecord) {
  test::InProcessGateway gw;
  auto integ = gw.client("integration");
  std::string nhs = test::nhs_number_from("999081212");
  std::string pid = test::create_patient(integ, nhs);
  auto la = gw.client("local-authority");
  test::create_plan(la, pid, nhs, test::PlanSeed{});
  const std::string query = "/fhir/CareTeam?patient:identifier=https://fhir.nhs.uk/Id/nhs-number%7C" + nhs;
  Headers national{{"IsUnscheduledAccessEvent", "true"}, {"TraceID", "trace-77"}};
  // The ED desktop (userFacingSystems): without a person, 401.
  auto desktop = gw.client("unscheduled-care-desktop");
  auto alone = desktop.request("GET", query, "", national);
  ASSERT_TRUE(alone.has_value());
  EXPECT_EQ(alone->status, 401) << alone->body;
  EXPECT_NE(diagnostics(alone->body).find("user token"), std::string::npos);
  // The ED's integration engine is not user-facing: as before, no person needed.
  auto engine = gw.client("unscheduled-care");
  EXPECT_EQ(engine.request("GET", query, "", national)->status, 200);
  // With the person: answered, and the access record the local authority reads names them.
  Headers with = national;
  with.push_back(test::user_header("unscheduled-care-desktop", "R8000", "ed-doc-5", "Dr Robin Casualty"));
  auto r = desktop.request("GET", query, "", with);
  ASSERT_EQ(r->status, 200) << r->body;
  auto admin = gw.client("admin");
  auto all = admin.request("GET", "/fhir/AuditEvent?patient:identifier=https://fhir.nhs.uk/Id/nhs-number%7C" + nhs);
  ASSERT_EQ(all->status, 200);
  EXPECT_NE(all->body.find("Dr Robin Casualty"), std::string::npos) << all->body;
  EXPECT_NE(all->body.find("ed-doc-5"), std::string::npos);
  EXPECT_NE(all->body.find("ed-desktop"), std::string::npos);
  // The local authority reads the record its cpis-access notification points at.
  auto d = json::parse(all->body);
  std::string with_person;
  for (const auto& e : (*d)["entry"].GetArray()) {
    std::string text = json::to_string(e["resource"]);
    if (text.find("ed-doc-5") != std::string::npos) with_person = id_of(text);
  }
  ASSERT_FALSE(with_person.empty());
  auto read = la.request("GET", "/fhir/AuditEvent/" + with_person);
  ASSERT_EQ(read->status, 200) << read->body;
  EXPECT_NE(read->body.find("Dr Robin Casualty"), std::string::npos);
  EXPECT_NE(read->body.find(test::kTestIssuer), std::string::npos);
}

}  // namespace
}  // namespace gw

namespace gw {
namespace {

using namespace std::chrono_literals;
using Headers = std::vector<std::pair<std::string, std::string>>;

std::vector<std::string> entry_ids(const std::string& bundle) {
  std::vector<std::string> out;
  auto d = json::parse(bundle);
  if (!d || !d->HasMember("entry")) return out;
  for (const auto& e : (*d)["entry"].GetArray())
    if (e.HasMember("resource") && e["resource"].HasMember("id")) out.emplace_back(e["resource"]["id"].GetString());
  return out;
}

// The same gate as $chronology on a child's safeguarding detail read through
// the FHIR API (profiles/policy/relationships.json): safeguarding Flags, the
// disclosures (Communication) and CP-IS plans (CareTeam) about the child.
TEST(BreakGlass, SafeguardingReadsNeedACaseloadTheRecipientRelationshipOrAReason) {
  test::FlowFixture f;
  // Mia: registered with B86001 (the GP practice); her ED attendance at RXX01
  // is disclosed to paediatric liaison RXX05, which has no caseload link to her.
  f.subscribe("paediatric-liaison", "child-ed-attendance", "/pl");
  f.subscribe("health-visiting", "break-glass", "/hv-caldicott");
  f.hl7(test::a28("9990500002", "Mia", "20190611", "B86001", {}));
  f.hl7(test::ed_a04("9990500002", "20190611", "RXX01", "20261201", "G1", {}));
  ASSERT_TRUE(f.wait_events(1, "/pl"));
  std::string comm = f.received("/pl")[0]["id"].GetString();
  std::string child = f.patient_id("9990500002");
  ASSERT_FALSE(child.empty());
  std::string flag = test::create_resource(
      f.client("gp"), "Flag",
      R"({"resourceType":"Flag","status":"active","code":{"text":"Safeguarding concern"},"subject":{"reference":"Patient/)" +
          child + R"("}})");
  test::PlanSeed seed;
  std::string plan = test::create_plan(f.client("local-authority"), child, "9990500002", seed);
  ASSERT_FALSE(flag.empty());
  ASSERT_FALSE(plan.empty());
  auto get = [&](const std::string& role, const std::string& target, Headers h) {
    auto r = f.client(role).request("GET", target, "", h);
    EXPECT_TRUE(r.has_value());
    return r ? *r : test::ClientResponse{};
  };
  const Headers gp{test::user_header("gp", "R8000", "gp-user-1", "Dr Kay Example")};
  const Headers hv{test::user_header("health-visiting", "R8001", "hv-user-3", "Sam Visitor")};
  const Headers pl{test::user_header("paediatric-liaison", "R8001", "pl-user-5", "Lee Liaison")};
  const std::string flag_url = "/fhir/Flag/" + flag, plan_url = "/fhir/CareTeam/" + plan,
                    flags = "/fhir/Flag?patient=Patient/" + child, plans = "/fhir/CareTeam?patient=Patient/" + child;

  // On the caseload (the GP practice): 200, and the searches find them.
  EXPECT_EQ(get("gp", flag_url, gp).status, 200);
  EXPECT_EQ(get("gp", flag_url + "/_history/1", gp).status, 200);
  EXPECT_EQ(get("gp", plan_url, gp).status, 200);
  EXPECT_EQ(entry_ids(get("gp", flags, gp).body), std::vector<std::string>{flag});
  EXPECT_EQ(entry_ids(get("gp", plans, gp).body), std::vector<std::string>{plan});

  // Off the caseload: 403 naming the header, for each read; audited.
  for (const auto& url : {flag_url, flag_url + "/_history/1", flag_url + "/_history", plan_url}) {
    auto r = get("health-visiting", url, hv);
    EXPECT_EQ(r.status, 403) << url << r.body;
    EXPECT_NE(diagnostics(r.body).find("X-Break-Glass-Reason"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("\"expression\":[\"X-Break-Glass-Reason\"]"), std::string::npos) << r.body;
  }
  // Searches leave them out, and do not count them either (no total).
  for (const auto& url : {flags, plans, std::string("/fhir/Flag?_count=50")}) {
    auto r = get("health-visiting", url, hv);
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_TRUE(entry_ids(r.body).empty()) << url << r.body;
    EXPECT_EQ(r.body.find("\"total\""), std::string::npos) << url << r.body;
  }
  // A break-glass reason opens one record by read, not a search: 400 naming the header.
  {
    Headers h = hv;
    h.emplace_back("X-Break-Glass-Reason", kReason);
    auto r = get("health-visiting", flags, h);
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_NE(r.body.find("X-Break-Glass-Reason"), std::string::npos);
  }
  // A reason too short: 400 naming the header.
  {
    Headers h = hv;
    h.emplace_back("X-Break-Glass-Reason", "worried");
    auto r = get("health-visiting", flag_url, h);
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_NE(diagnostics(r.body).find("X-Break-Glass-Reason"), std::string::npos) << r.body;
  }

  // The disclosure's recipient is a relationship: RXX05 reads and lists the
  // disclosure it was sent (with its total), though the child is not on its
  // caseload; her Flag is still not open to it.
  EXPECT_EQ(get("paediatric-liaison", "/fhir/Communication/" + comm, pl).status, 200);
  auto waiting = get("paediatric-liaison", "/fhir/Communication?status=in-progress", pl);
  EXPECT_EQ(entry_ids(waiting.body), std::vector<std::string>{comm}) << waiting.body;
  EXPECT_NE(waiting.body.find("\"total\":1"), std::string::npos) << waiting.body;
  EXPECT_EQ(get("paediatric-liaison", flag_url, pl).status, 403);

  // With a reason: 200 for that request only, audited with the reason, and
  // the health visitors' Caldicott guardian told over mutual TLS.
  Headers glass = hv;
  glass.emplace_back("X-Break-Glass-Reason", kReason);
  auto opened = get("health-visiting", flag_url, glass);
  ASSERT_EQ(opened.status, 200) << opened.body;
  EXPECT_EQ(id_of(opened.body), flag);
  EXPECT_EQ(get("health-visiting", plan_url, glass).status, 200);
  EXPECT_EQ(get("health-visiting", flag_url, hv).status, 403) << "only for that request";
  ASSERT_TRUE(f.rx.wait_for([](auto& p) { return test::event_numbers(p, "/hv-caldicott").size() >= 2; }, 15s));
  auto notes = test::focus_resources(f.rx.posts(), "/hv-caldicott");
  ASSERT_EQ(notes.size(), 2u);
  std::string note = json::to_string(notes[0]);
  EXPECT_NE(note.find("Flag/" + flag), std::string::npos) << note;
  EXPECT_NE(note.find("hv-user-3"), std::string::npos) << note;
  EXPECT_NE(note.find("Patient/" + child), std::string::npos) << note;
  EXPECT_EQ(note.find("neighbour"), std::string::npos) << note;
  EXPECT_EQ(note.find("Safeguarding concern"), std::string::npos) << "no content in the notification: " << note;
  store::AuditQuery q;
  q.actions = {"break-glass"};
  auto rows = f.gw.store().search_audit(q);
  ASSERT_TRUE(rows.has_value());
  ASSERT_EQ(rows->items.size(), 2u);
  std::set<std::string> entities;
  for (const auto& row : rows->items) {
    EXPECT_EQ(row.purpose, "BTG");
    EXPECT_EQ(row.patient_ref, "Patient/" + child);
    EXPECT_NE(row.detail.find(kReason), std::string::npos);
    entities.insert(row.entity);
  }
  EXPECT_EQ(entities, (std::set<std::string>{"Flag/" + flag, "CareTeam/" + plan}));
  // The refusals are in the trail too.
  store::AuditQuery refused;
  refused.actions = {"read"};
  auto reads = f.gw.store().search_audit(refused);
  ASSERT_TRUE(reads.has_value());
  int forbidden = 0;
  for (const auto& row : reads->items)
    if (row.entity == "Flag/" + flag && row.http_status == 403) ++forbidden;
  EXPECT_GE(forbidden, 2);

  // A system without a person is governed by the access rules alone (the
  // relationship is a person's): unchanged.
  EXPECT_EQ(get("health-visiting", flag_url, {}).status, 200);
}

}  // namespace
}  // namespace gw
