// The safeguarding-concern topic end to end: a sexual-health clinic posts its
// CASH/GUM CSV to /ingest/cashgum; the concern Flag about an under-18 reaches
// the child's GP practice and school-nursing team (and the local authority
// when the concern was referred) on a real HTTPS rest-hook receiver, as a
// Communication derived per receiver with the concern only and no
// sexual-health detail (the Flag itself never leaves); adults, NO_CONCERN rows and children the subscriber
// does not care for produce nothing; each disclosure is audited with its
// purpose and legal basis.
#include <gtest/gtest.h>


#include <map>

#include "gateway/common/json.h"
#include "gateway/events/subscriptions.h"
#include "tests/support/fixtures.h"
#include "tests/support/hook_receiver.h"
#include "tests/support/subscription_kit.h"
#include "tests/support/test_gateway.h"
#include "tests/support/test_store.h"

namespace gw {
namespace {

using namespace std::literals;

events::SubscriptionsOptions fast_options() {
  events::SubscriptionsOptions o;
  o.delivery.workers = 4;
  o.delivery.first_retry = 100ms;
  o.delivery.max_backoff = 400ms;
  o.delivery.poll = 200ms;
  o.fanout.poll = 200ms;
  return o;
}

const std::string kHeader =
    "RecordType,ClinicID,PatientID,NHSNumber,DateOfBirth,Age,Gender,LA,AttendanceDate,ActivityCode,RiskOutcome,"
    "CSEIndicators,ReferredTo,ReferralDate,Practitioner\n";

struct Fixture {
  test::InProcessGateway gw{config::Limits{}, fast_options()};
  test::HookReceiver rx;

  test::ClientResponse call(const std::string& role, const std::string& method, const std::string& target,
                            const std::string& body = "", const std::string& type = "application/fhir+json") {
    auto r = gw.client(role).request(method, target, body, {{"Content-Type", type}});
    EXPECT_TRUE(r.has_value()) << method << " " << target;
    return r ? *r : test::ClientResponse{};
  }
  std::string create(const std::string& type, const std::string& body) {
    auto r = call("integration", "POST", "/fhir/" + type, body);
    EXPECT_EQ(r.status, 201) << r.body;
    return std::string(json::get_string(*json::parse(r.body), "id").value_or(""));
  }
  std::string child(const std::string& nhs, const std::string& gp_ods, const std::string& birth) {
    std::string body = test::fixture("fhir/Patient.json", {{"nhs", nhs}});
    auto pos = body.find("B86001");
    body.replace(pos, 6, gp_ods);
    pos = body.find("2019-04-12");
    body.replace(pos, 10, birth);
    return create("Patient", body);
  }
  void school_nurse_caseload(const std::string& patient_id, const std::string& ods) {
    create("EpisodeOfCare", R"({"resourceType":"EpisodeOfCare","status":"active","patient":{"reference":"Patient/)" +
                                patient_id + R"("},"managingOrganization":{"identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":")" +
                                ods + R"("}}})");
  }
  // A CP-IS plan (helper-common.md: the CareTeam model) managed by this LA.
  void cpis_plan(const std::string& patient_id, const std::string& nhs, const std::string& la_ods) {
    auto r = call("local-authority", "POST", "/fhir/CareTeam",
                  R"({"resourceType":"CareTeam","identifier":[{"system":"https://cpis-gateway.nhs.uk/Id/cpis-plan","value":")" +
                      la_ods + R"(|LC-1|CPP"}],"status":"active","category":[{"coding":[{"system":"http://snomed.info/sct","code":"342191000000101"}]}],"subject":{"reference":"Patient/)" +
                      patient_id + R"(","identifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":")" + nhs +
                      R"("}},"period":{"start":"2026-01-01"},"managingOrganization":[{"identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":")" +
                      la_ods + R"("}}],"telecom":[{"system":"phone","value":"0113 000 0000","use":"work","rank":1,"extension":[{"url":"https://cpis-gateway.nhs.uk/StructureDefinition/contact-purpose","valueCode":"emergency-duty"}]}]})");
    EXPECT_EQ(r.status, 201) << r.body;
  }
  std::string subscribe(const std::string& role, const std::string& path) {
    test::SubscriptionArgs a;
    a.topic = "safeguarding-concern";
    a.endpoint = rx.url(path);
    a.content = "full-resource";
    auto r = call(role, "POST", "/fhir/Subscription", test::subscription_json(a));
    EXPECT_EQ(r.status, 201) << role << ": " << r.body;
    std::string id(json::get_string(*json::parse(r.body), "id").value_or(""));
    EXPECT_TRUE(rx.wait_for([&](auto& p) { return test::count_type(p, "handshake", path) >= 1; }, 10s)) << role;
    return id;
  }
  void ingest(const std::string& csv) {
    auto r = call("sexual-health", "POST", "/ingest/cashgum", kHeader + csv, "text/csv");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_NE(r.body.find("\"outcome\":\"accepted\""), std::string::npos) << r.body;
  }
  // The bodies of the event-notifications that reached `path`.
  static std::vector<std::string> events_in(const std::vector<test::ReceivedPost>& posts, const std::string& path) {
    std::vector<std::string> out;
    for (const auto& p : posts)
      if (p.target == path && test::read_notification(p.body).type == "event-notification") out.push_back(p.body);
    return out;
  }
  std::vector<std::string> events(const std::string& path) { return events_in(rx.posts(), path); }
};

// Every resource of this type in a notification Bundle.
std::vector<std::string> resources_in(const std::string& notification, const std::string& type) {
  std::vector<std::string> out;
  auto d = json::parse(notification);
  if (!d || !d->IsObject() || !d->HasMember("entry")) return out;
  for (const auto& e : (*d)["entry"].GetArray()) {
    const json::Value* r = json::member(e, "resource");
    if (r && json::get_string(*r, "resourceType").value_or("") == type) out.push_back(json::to_string(*r));
  }
  return out;
}

int64_t scalar(const std::string& db_path, const std::string& sql) { return test::store_scalar(db_path, sql); }

TEST(SafeguardingConcern, UnderEighteenConcernReachesGpAndSchoolNurseAndReferredReachesTheLocalAuthority) {
  Fixture f;
  const std::string nhs_a = test::nhs_number_for(7001), nhs_b = test::nhs_number_for(7002),
                    nhs_adult = test::nhs_number_for(7003);
  std::string a = f.child(nhs_a, "B86001", "2010-02-03");
  f.school_nurse_caseload(a, "RXX04");
  f.cpis_plan(a, nhs_a, "L0001");
  std::string b = f.child(nhs_b, "B99999", "2011-05-06");  // another practice's child
  std::string adult = f.child(nhs_adult, "B86001", "1990-01-01");
  f.school_nurse_caseload(adult, "RXX04");
  f.cpis_plan(adult, nhs_adult, "L0001");

  f.subscribe("gp", "/gp");
  f.subscribe("school-nursing", "/sn");
  f.subscribe("local-authority", "/la");
  f.subscribe("health-visiting", "/hv");  // does not care for child A

  f.ingest("ATTENDANCE,RFRSH,GUM-A1,"s + nhs_a + ",2010-02-03,16,2,E08000018,2026-11-02,T4,,,,,Nurse B\n" +
           "RISK,RFRSH,GUM-A1," + nhs_a +
           ",2010-02-03,16,2,E08000018,2026-11-02,,CONCERN_ADVICE,OLDER_PARTNER;MULTIPLE_STI,NONE,,Nurse B\n" +
           "RISK,RFRSH,GUM-A1," + nhs_a + ",2010-02-03,16,2,E08000018,2026-11-03,,NO_CONCERN,,,,Nurse B\n" +
           "RISK,RFRSH,GUM-D1," + nhs_adult +
           ",1990-01-01,36,2,E08000018,2026-11-02,,CSE_RISK,OLDER_PARTNER,SOCIAL_CARE,2026-11-02,Nurse B\n" +
           "RISK,RFRSH,GUM-B1," + nhs_b +
           ",2011-05-06,15,2,E08000018,2026-11-02,,CONCERN_REFERRED,GIFTS,SOCIAL_CARE,2026-11-02,Nurse B\n");
  // A Flag that says it may go to the GP but carries sexual-health labels is
  // still withheld: the labels win over what the record says of itself.
  auto labelled = f.call("sexual-health", "POST", "/fhir/Flag",
                         R"({"resourceType":"Flag","meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"STD"}]},)"
                         R"("extension":[{"url":"https://cpis-gateway.nhs.uk/StructureDefinition/disclosable-to","valueCode":"gp"}],)"
                         R"("status":"active","code":{"text":"labelled"},"subject":{"type":"Patient","identifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":")" +
                             nhs_a + R"("}}})");
  EXPECT_EQ(labelled.status, 201) << labelled.body;
  // A later, referred concern about child A: everyone who hears of it has
  // also been decided on for every change before it (the fan-out is in order).
  f.ingest("RISK,RFRSH,GUM-A1,"s + nhs_a +
           ",2010-02-03,16,2,E08000018,2026-11-04,,CONCERN_REFERRED,COERCION,CSE_TEAM,2026-11-04,Nurse B\n");

  // (wait_for hands over the posts it holds: asking the receiver again inside would deadlock)
  ASSERT_TRUE(f.rx.wait_for([&](auto& p) { return Fixture::events_in(p, "/la").size() >= 2; }, 20s));
  ASSERT_TRUE(f.rx.wait_for(
      [&](auto& p) { return Fixture::events_in(p, "/gp").size() >= 2 && Fixture::events_in(p, "/sn").size() >= 2; },
      20s));
  EXPECT_EQ(f.events("/gp").size(), 2u) << "the GP hears of child A's two concerns only (not the adult, not child B)";
  EXPECT_EQ(f.events("/sn").size(), 2u);
  // The LA hears of the concerns referred to it: child A's through her plan,
  // child B's (no plan) because the file names Rotherham (E08000018 -> L0001,
  // profiles/area/services.json) as the authority it was referred to (issue 15).
  EXPECT_EQ(f.events("/la").size(), 2u) << "the LA hears only of the concerns referred to it";
  EXPECT_EQ(f.events("/hv").size(), 0u) << "a team that does not care for the child hears nothing";

  for (const std::string path : {"/gp", "/sn", "/la"}) {
    for (const auto& body : f.events(path)) {
      EXPECT_TRUE(resources_in(body, "Flag").empty()) << "the Flag itself never leaves: " << body;
      auto comms = resources_in(body, "Communication");
      ASSERT_EQ(comms.size(), 1u) << body;
      const std::string& comm = comms[0];
      EXPECT_TRUE(comm.find(nhs_a) != std::string::npos || (path == "/la" && comm.find(nhs_b) != std::string::npos))
          << "the child is named by NHS number";
      EXPECT_NE(comm.find("Concern: Child is cause for safeguarding concern"), std::string::npos) << "the concern itself";
      EXPECT_NE(comm.find("Safeguarding concern recorded on 2026-11-0"), std::string::npos) << "its date";
      EXPECT_NE(comm.find("Contact: Nurse B"), std::string::npos) << "the clinic's contact";
      EXPECT_NE(comm.find("\"status\":\"in-progress\""), std::string::npos) << "until its receiver acknowledges it";
      // No sexual-health detail anywhere in what left the gateway.
      for (const char* banned : {"\"security\"", "\"STD\"", "\"HIV\"", "\"SEX\"", "\"R\"", "\"T4\"", "MULTIPLE_STI",
                                 "Encounter", "Observation", "SH-RISK", "diagnos", "birthDate", "GUM-A1", "local-id",
                                 "E08000018", "\"gender\"", "labelled"}) {
        EXPECT_EQ(body.find(banned), std::string::npos) << path << " received " << banned << ":\n" << body;
      }
    }
  }

  // Each disclosure is audited: who received it, about whom, why, on what basis.
  std::string db = f.gw.data_dir() + "/gateway.db";
  auto disclosures = [&](const std::string& where) {
    return scalar(db, "SELECT count(*) FROM audit WHERE action = 'disclose' AND " + where);
  };
  EXPECT_EQ(disclosures("actor_role = 'gp' AND actor_ods = 'B86001' AND patient_ref = 'Patient/" + a + "'"), 2);
  EXPECT_EQ(disclosures("actor_role = 'school-nursing' AND actor_ods = 'RXX04'"), 2);
  EXPECT_EQ(disclosures("actor_role = 'local-authority' AND actor_ods = 'L0001'"), 2);
  EXPECT_EQ(disclosures("actor_role = 'health-visiting'"), 0);
  EXPECT_EQ(disclosures("entity LIKE 'Communication/%' AND purpose = 'safeguarding' AND "
                        "detail LIKE '%derived from Flag/%' AND detail LIKE '%legal basis=%Art 9(2)(h)%'"),
            6);
  EXPECT_EQ(disclosures("(detail LIKE '%" + nhs_a + "%' OR detail LIKE '%GUM-%')"), 0) << "no identifier in the text";

}

}  // namespace
}  // namespace gw
