// The national CP-IS FHIR API (read side) end to end: real TLS, the real
// store, the shipped profiles, policy and topics. A client written for NHS
// England's CP-IS API must get the same answers and errors from the gateway,
// and every unscheduled access must be recorded before it is answered.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "gateway/common/json.h"
#include "gateway/events/subscriptions.h"
#include "gateway/cpis/cpis_api.h"
#include "gateway/model/resource_text.h"
#include "gateway/write/validation.h"
#include "gateway/security/policy.h"
#include "gateway/store/store.h"
#include "tests/support/fixtures.h"
#include "tests/support/hook_receiver.h"
#include "tests/support/pki.h"
#include "tests/support/subscription_kit.h"
#include "tests/support/test_gateway.h"
#include "tests/support/test_store.h"

namespace gw {
namespace {

using namespace std::chrono_literals;
using test::ClientResponse;
using test::HttpsClient;
using test::InProcessGateway;
using Headers = std::vector<std::pair<std::string, std::string>>;

constexpr const char* kCpp = "342191000000101";
constexpr const char* kNhsSystem = "https://fhir.nhs.uk/Id/nhs-number";

json::Document parse(const std::string& body) {
  auto d = json::parse(body);
  EXPECT_TRUE(d.has_value()) << body.substr(0, 200);
  return d ? std::move(*d) : json::Document();
}

std::string str(const json::Value& v, std::string_view key) {
  return v.IsObject() ? std::string(json::get_string(v, key).value_or("")) : std::string();
}

// The resources of a searchset Bundle's entries.
std::vector<const json::Value*> resources(const json::Document& bundle) {
  std::vector<const json::Value*> out;
  const json::Value* e = json::member(bundle, "entry");
  if (e && e->IsArray())
    for (const auto& entry : e->GetArray())
      if (const json::Value* r = json::member(entry, "resource")) out.push_back(r);
  return out;
}

// {severity, code, details.coding[0].system|code, diagnostics} of an OperationOutcome's first issue.
struct NationalError {
  std::string code, system, details, diagnostics;
};
NationalError national_error(const ClientResponse& r) {
  NationalError out;
  auto d = parse(r.body);
  EXPECT_EQ(str(d, "resourceType"), "OperationOutcome") << r.body;
  const json::Value* issues = json::member(d, "issue");
  if (!issues || !issues->IsArray() || issues->Empty()) return out;
  const json::Value& i = (*issues)[0];
  out.code = str(i, "code");
  out.diagnostics = str(i, "diagnostics");
  if (const json::Value* det = json::member(i, "details"))
    if (const json::Value* c = json::member(*det, "coding"); c && c->IsArray() && !c->Empty()) {
      out.system = str((*c)[0], "system");
      out.details = str((*c)[0], "code");
    }
  return out;
}

std::string nhs_query(const std::string& type, const std::string& nhs) {
  return "/fhir/" + type + "?patient:identifier=" + std::string(kNhsSystem) + "%7C" + nhs;
}

Headers national(const std::string& unscheduled, const std::string& trace = "trace-1") {
  Headers h;
  if (!unscheduled.empty()) h.emplace_back("IsUnscheduledAccessEvent", unscheduled);
  if (!trace.empty()) h.emplace_back("TraceID", trace);
  return h;
}

// Shared helpers: people and plans made through the FHIR API as the admin and
// integration roles would (the upload file is another pipeline's business).
struct Data {
  InProcessGateway& gw;
  std::map<std::string, HttpsClient> clients{};

  ClientResponse call(const std::string& role, const std::string& method, const std::string& target,
                      const std::string& body = "", Headers headers = {}) {
    auto it = clients.find(role);
    if (it == clients.end()) {
      it = clients.emplace(role, role == "local-authority-2" ? HttpsClient::for_role(gw.port(), role) : gw.client(role))
               .first;
    }
    if (!body.empty()) headers.emplace_back("Content-Type", "application/fhir+json");
    auto r = it->second.request(method, target, body, headers);
    EXPECT_TRUE(r.has_value()) << method << " " << target;
    return r ? *r : ClientResponse{};
  }
  std::string id_of(const ClientResponse& r) { return str(parse(r.body), "id"); }

  std::string patient(const std::string& nhs) {
    auto r = call("integration", "POST", "/fhir/Patient", test::fixture("fhir/Patient.json", {{"nhs", nhs}}));
    EXPECT_EQ(r.status, 201) << r.body;
    return id_of(r);
  }
  // A CP-IS plan CareTeam managed by local authority `la`; period is JSON.
  std::string plan(const std::string& patient_id, const std::string& nhs, const std::string& la,
                   const std::string& period = R"({"start":"2026-01-10"})", const std::string& status = "active") {
    static std::atomic<int> n{0};
    auto r = call("admin", "POST", "/fhir/CareTeam",
                  test::fixture("fhir/CpisPlan.json", {{"patient", patient_id},
                                                      {"nhs", nhs},
                                                      {"la", la},
                                                      {"la_name", "Authority " + la},
                                                      {"local_id", "C" + std::to_string(++n)},
                                                      {"status", status},
                                                      {"snomed", kCpp},
                                                      {"period", period}}));
    EXPECT_EQ(r.status, 201) << r.body;
    return id_of(r);
  }
};

class CpisApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { gw_ = new InProcessGateway(); }
  static void TearDownTestSuite() {
    delete gw_;
    gw_ = nullptr;
  }
  void SetUp() override { nhs_ = test::nhs_number_for(70000 + next_.fetch_add(1)); }
  void TearDown() override { gw_->set_today(""); }

  Data data_{*gw_};
  std::string nhs_;
  static InProcessGateway* gw_;
  static std::atomic<int> next_;
};
InProcessGateway* CpisApiTest::gw_ = nullptr;
std::atomic<int> CpisApiTest::next_{1};

TEST_F(CpisApiTest, CareTeamQueryAnswersThePlansInScopeAsTheNationalApi) {
  std::string pid = data_.patient(nhs_);
  std::string plan = data_.plan(pid, nhs_, "L0001");
  // A care team that is not a plan is no CP-IS answer.
  ASSERT_EQ(data_.call("integration", "POST", "/fhir/CareTeam", test::fixture("fhir/CareTeam.json", {{"patient", pid}}))
                .status,
            201);
  auto r = data_.call("unscheduled-care", "GET", nhs_query("CareTeam", nhs_), "", national("false"));
  ASSERT_EQ(r.status, 200) << r.body;
  auto b = parse(r.body);
  EXPECT_EQ(str(b, "type"), "searchset");
  EXPECT_EQ(b["total"].GetInt(), 1);
  auto rs = resources(b);
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(str(*rs[0], "id"), plan);
  EXPECT_EQ(str((*rs[0])["managingOrganization"][0], "display"), "Authority L0001");
  ASSERT_EQ((*rs[0])["telecom"].Size(), 2u);
  EXPECT_EQ(str((*rs[0])["category"][0]["coding"][0], "code"), kCpp);
}

TEST_F(CpisApiTest, NoPlanInScopeIsAnEmptySearchset) {
  data_.patient(nhs_);
  for (const std::string& nhs : {nhs_, test::nhs_number_for(79999)}) {  // known person; nobody
    auto r = data_.call("gp", "GET", nhs_query("CareTeam", nhs), "", national("true"));
    ASSERT_EQ(r.status, 200) << r.body;
    auto b = parse(r.body);
    EXPECT_EQ(str(b, "type"), "searchset");
    EXPECT_EQ(b["total"].GetInt(), 0);
    EXPECT_FALSE(b.HasMember("entry"));
  }
}

TEST_F(CpisApiTest, RolesThatMayNotQueryAreRefusedWithAccessDenied) {
  std::string pid = data_.patient(nhs_);
  data_.plan(pid, nhs_, "L0001");
  for (const char* role : {"sexual-health", "commissioner", "adult-mental-health"}) {
    auto r = data_.call(role, "GET", nhs_query("CareTeam", nhs_), "", national("true"));
    EXPECT_EQ(r.status, 403) << role << ": " << r.body;
    auto e = national_error(r);
    EXPECT_EQ(e.code, "forbidden");
    EXPECT_EQ(e.system, "https://fhir.nhs.uk/CodeSystem/Spine-ErrorOrWarningCode");
    EXPECT_EQ(e.details, "ACCESS_DENIED") << role;
  }
}

TEST_F(CpisApiTest, MissingOrInvalidIsUnscheduledAccessEventIsPreconditionFailed) {
  data_.patient(nhs_);
  for (const Headers& h : {national("", "trace-only"), national("yes"), national("1")}) {
    auto r = data_.call("unscheduled-care", "GET", nhs_query("CareTeam", nhs_), "", h);
    EXPECT_EQ(r.status, 400) << r.body;
    auto e = national_error(r);
    EXPECT_EQ(e.code, "invalid");
    EXPECT_EQ(e.details, "PRECONDITION_FAILED");
    EXPECT_EQ(e.diagnostics, "Missing or invalid header parameter");
  }
  // The value is a boolean whatever its case.
  for (const char* v : {"TRUE", "False"})
    EXPECT_EQ(data_.call("unscheduled-care", "GET", nhs_query("CareTeam", nhs_), "", national(v)).status, 200) << v;
}

TEST_F(CpisApiTest, InvalidNhsNumberIsInvalidSearchData) {
  std::string bad_check = nhs_.substr(0, 9) + std::to_string((nhs_[9] - '0' + 1) % 10);
  const std::vector<std::string> targets = {
      nhs_query("CareTeam", bad_check),
      nhs_query("CareTeam", "12345"),
      "/fhir/CareTeam?patient:identifier=https://example.org/other%7C" + nhs_,
      "/fhir/CareTeam?_count=5",
  };
  for (const auto& t : targets) {
    auto r = data_.call("unscheduled-care", "GET", t, "", national("true"));
    EXPECT_EQ(r.status, 400) << t << ": " << r.body;
    auto e = national_error(r);
    EXPECT_EQ(e.details, "INVALID_SEARCH_DATA") << t;
    EXPECT_EQ(e.diagnostics, "Invalid NHS number") << t;
    EXPECT_EQ(r.body.find(bad_check), std::string::npos) << "the number is not echoed";
  }
  auto r = data_.call("gp", "GET", nhs_query("AuditEvent", bad_check));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(national_error(r).details, "INVALID_SEARCH_DATA");
}

TEST_F(CpisApiTest, ScopeFollowsTheInjectedClockTwelveMonthsAfterThePlanEnds) {
  gw_->set_today("2027-06-15");
  std::string pid = data_.patient(nhs_);
  std::string ended_13_months_ago = data_.plan(pid, nhs_, "L0001", R"({"start":"2025-01-01","end":"2026-05-15"})",
                                               "inactive");
  std::string ended_11_months_ago = data_.plan(pid, nhs_, "L0001", R"({"start":"2025-01-01","end":"2026-07-15"})",
                                               "inactive");
  std::string withdrawn = data_.plan(pid, nhs_, "L0001", R"({"start":"2026-01-01"})", "entered-in-error");
  auto ids = [&] {
    auto r = data_.call("health-visiting", "GET", nhs_query("CareTeam", nhs_), "", national("false"));
    EXPECT_EQ(r.status, 200) << r.body;
    std::set<std::string> out;
    auto b = parse(r.body);
    for (const auto* res : resources(b)) out.insert(str(*res, "id"));
    return out;
  };
  EXPECT_EQ(ids(), std::set<std::string>{ended_11_months_ago});
  // A month on, the second plan has left scope too.
  gw_->set_today("2027-07-16");
  EXPECT_TRUE(ids().empty());
  // Back when the first had ended only eleven months before, both were in scope.
  gw_->set_today("2027-04-14");
  EXPECT_EQ(ids(), (std::set<std::string>{ended_13_months_ago, ended_11_months_ago}));
}

TEST_F(CpisApiTest, OtherCareTeamSearchesWorkAsBefore) {
  std::string pid = data_.patient(nhs_);
  data_.plan(pid, nhs_, "L0001");
  ASSERT_EQ(data_.call("integration", "POST", "/fhir/CareTeam", test::fixture("fhir/CareTeam.json", {{"patient", pid}}))
                .status,
            201);
  // No national headers: an ordinary search, every CareTeam about the person,
  // also for a role that may not query CP-IS.
  for (const char* role : {"gp", "local-authority", "adult-mental-health"}) {
    auto r = data_.call(role, "GET", nhs_query("CareTeam", nhs_));
    ASSERT_EQ(r.status, 200) << role << ": " << r.body;
    EXPECT_EQ(parse(r.body)["total"].GetInt(), 2) << role;
  }
  EXPECT_EQ(data_.call("commissioner", "GET", nhs_query("CareTeam", nhs_)).status, 403);
}

TEST_F(CpisApiTest, AnUnscheduledAccessIsRecordedAsAnAuditEventBeforeTheAnswer) {
  std::string pid = data_.patient(nhs_);
  std::string plan = data_.plan(pid, nhs_, "L0001");
  Headers h = national("true", "trace-abc-123");
  h.emplace_back("NHSD-Session-URID", "555021935107");
  h.emplace_back("X-User-Name", "Dr A Clinician");
  auto r = data_.call("unscheduled-care", "GET", nhs_query("CareTeam", nhs_), "", h);
  ASSERT_EQ(r.status, 200) << r.body;
  // Answered only after the commit: the record is there at once.
  auto trail = data_.call("admin", "GET", nhs_query("AuditEvent", nhs_));
  ASSERT_EQ(trail.status, 200) << trail.body;
  auto b = parse(trail.body);
  auto rs = resources(b);
  ASSERT_EQ(rs.size(), 1u) << trail.body;
  const json::Value& ae = *rs[0];
  EXPECT_EQ(str(ae["type"], "code"), "rest");
  EXPECT_EQ(str(ae, "action"), "E");
  EXPECT_FALSE(str(ae, "recorded").empty());
  EXPECT_EQ(str(ae["meta"]["tag"][0], "code"), "unscheduled");
  EXPECT_EQ(str(ae["purposeOfEvent"][0]["coding"][0], "code"), "ETREAT");
  std::string text = json::to_string(ae);
  for (const std::string& want : {std::string("RXX01"), std::string("ed-symphony"), std::string("555021935107"),
                                  std::string("Dr A Clinician"), std::string("trace-abc-123"), "CareTeam/" + plan,
                                  "Patient/" + pid, nhs_})
    EXPECT_NE(text.find(want), std::string::npos) << want << " missing from " << text;
  // What the gateway wrote passes its own AuditEvent rules.
  auto v = write::Validator::load(std::string(GW_SOURCE_DIR) + "/profiles");
  ASSERT_TRUE(v.has_value());
  IssueSink sink;
  v->validate(ae, sink);
  EXPECT_FALSE(sink.has_errors()) << issues_json(sink.issues());
}

TEST_F(CpisApiTest, ScheduledQueriesAndQueriesWithoutAPlanLeaveNoAccessEvent) {
  std::string pid = data_.patient(nhs_);
  ASSERT_EQ(data_.call("gp", "GET", nhs_query("CareTeam", nhs_), "", national("true")).status, 200);  // no plan yet
  data_.plan(pid, nhs_, "L0001");
  ASSERT_EQ(data_.call("gp", "GET", nhs_query("CareTeam", nhs_), "", national("false")).status, 200);
  auto trail = data_.call("admin", "GET", nhs_query("AuditEvent", nhs_));
  ASSERT_EQ(trail.status, 200);
  EXPECT_EQ(parse(trail.body)["total"].GetInt(), 0) << trail.body;
  // The silent read is audited locally all the same: who, about whom, that it was scheduled.
  auto scheduled_rows = [&] {
    return test::store_scalar(
        gw_->data_dir() + "/gateway.db",
        "SELECT count(*) FROM audit WHERE actor_ods = 'B86001' AND actor_system = 'gp-systmone' AND "
        "entity = 'CareTeam?patient:identifier' AND detail = 'cpis scheduled; plans in scope: 1' AND patient_ref = "
        "'Patient/" + pid + "'");
  };
  int64_t n = 0;
  for (int i = 0; i < 100 && (n = scheduled_rows()) == 0; ++i) std::this_thread::sleep_for(20ms);  // committed without waiting
  EXPECT_EQ(n, 1);
}

TEST_F(CpisApiTest, CareRolesSeeTheTwentyFiveMostRecentAccessesNewestFirst) {
  std::string pid = data_.patient(nhs_);
  data_.plan(pid, nhs_, "L0001");
  const int kQueries = 27;
  for (int i = 1; i <= kQueries; ++i) {
    auto r = data_.call("unscheduled-care", "GET", nhs_query("CareTeam", nhs_), "",
                        national("true", "trace-" + std::to_string(i)));
    ASSERT_EQ(r.status, 200) << r.body;
  }
  auto trace_of = [](const json::Value& ae) {
    for (const auto& e : ae["entity"].GetArray())
      if (e.HasMember("detail")) return str(e["detail"][0], "valueString");
    return std::string();
  };
  // As the national API sends it, _include and all.
  std::string target = nhs_query("AuditEvent", nhs_) +
                       "&_include=AuditEvent:entity-type=http://terminology.hl7.org/CodeSystem/v3-RoleClass%7CASSIGNED";
  auto r = data_.call("school-nursing", "GET", target, "", national("", "trace-view"));
  ASSERT_EQ(r.status, 200) << r.body;
  auto b = parse(r.body);
  auto rs = resources(b);
  ASSERT_EQ(rs.size(), 25u);
  for (int i = 0; i < 25; ++i) EXPECT_EQ(trace_of(*rs[i]), "trace-" + std::to_string(kQueries - i)) << i;

  // The whole trail for commissioners, paged, newest first.
  auto c = data_.call("commissioner", "GET", nhs_query("AuditEvent", nhs_) + "&_count=10");
  ASSERT_EQ(c.status, 200) << c.body;
  auto cb = parse(c.body);
  EXPECT_EQ(cb["total"].GetInt(), kQueries);
  auto crs = resources(cb);
  ASSERT_EQ(crs.size(), 10u);
  EXPECT_EQ(trace_of(*crs[0]), "trace-27");
  bool has_next = false;
  for (const auto& l : cb["link"].GetArray()) has_next |= str(l, "relation") == "next";
  EXPECT_TRUE(has_next);
  auto page3 = data_.call("commissioner", "GET", nhs_query("AuditEvent", nhs_) + "&_count=10&_offset=20");
  auto p3 = resources(parse(page3.body));
  ASSERT_EQ(p3.size(), 7u);
  EXPECT_EQ(trace_of(*p3[6]), "trace-1");

  EXPECT_EQ(data_.call("local-authority", "GET", nhs_query("AuditEvent", nhs_)).status, 403);
}

TEST_F(CpisApiTest, NoClientWritesAnAuditEvent) {
  std::string ae = R"({"resourceType":"AuditEvent","type":{"system":"http://terminology.hl7.org/CodeSystem/audit-event-type","code":"rest"},"recorded":"2026-11-01T10:00:00Z","agent":[{"requestor":true}],"source":{"observer":{"display":"x"}}})";
  for (const char* role : {"admin", "integration", "unscheduled-care"}) {
    EXPECT_EQ(data_.call(role, "POST", "/fhir/AuditEvent", ae).status, 403) << role;
    EXPECT_EQ(data_.call(role, "PUT", "/fhir/AuditEvent/x1", R"({"id":"x1",)" + ae.substr(1)).status, 403) << role;
  }
  auto cap = parse(data_.call("gp", "GET", "/fhir/metadata").body);
  bool found = false;
  for (const auto& res : cap["rest"][0]["resource"].GetArray()) {
    if (str(res, "type") != "AuditEvent") continue;
    found = true;
    for (const auto& i : res["interaction"].GetArray()) EXPECT_NE(str(i, "code"), "create");
  }
  EXPECT_TRUE(found);
}

TEST_F(CpisApiTest, FlagViewDerivesOneFlagPerPlanInScopeBesideTheStoredFlags) {
  std::string pid = data_.patient(nhs_);
  std::string plan = data_.plan(pid, nhs_, "L0001");
  gw_->set_today("2027-06-15");
  data_.plan(pid, nhs_, "L0001", R"({"start":"2025-01-01","end":"2026-05-15"})", "inactive");  // out of scope
  ASSERT_EQ(data_.call("integration", "POST", "/fhir/Flag", test::fixture("fhir/Flag.json", {{"patient", pid}})).status,
            201);
  auto r = data_.call("midwifery", "GET", nhs_query("Flag", nhs_));
  ASSERT_EQ(r.status, 200) << r.body;
  auto b = parse(r.body);
  EXPECT_EQ(b["total"].GetInt(), 2);
  auto rs = resources(b);
  ASSERT_EQ(rs.size(), 2u);
  const json::Value* derived = nullptr;
  for (const auto* f : rs)
    if (f->HasMember("extension")) derived = f;
  ASSERT_NE(derived, nullptr) << r.body;
  EXPECT_EQ(str(*derived, "status"), "active");
  EXPECT_EQ(str((*derived)["code"]["coding"][0], "code"), kCpp);
  EXPECT_EQ(str((*derived)["author"]["identifier"], "value"), "L0001");
  EXPECT_EQ(str((*derived)["subject"], "reference"), "Patient/" + pid);
  // The reference travels: the receiver matches the child by NHS number (issue 13).
  EXPECT_EQ(str((*derived)["subject"]["identifier"], "system"), "https://fhir.nhs.uk/Id/nhs-number") << r.body;
  EXPECT_EQ(str((*derived)["subject"]["identifier"], "value"), nhs_) << r.body;
  EXPECT_EQ(str((*derived)["period"], "start"), "2026-01-10");
  EXPECT_EQ(str((*derived)["extension"][0]["valueReference"], "reference"), "CareTeam/" + plan);
  auto v = write::Validator::load(std::string(GW_SOURCE_DIR) + "/profiles");
  ASSERT_TRUE(v.has_value());
  IssueSink sink;
  v->validate(*derived, sink);
  EXPECT_FALSE(sink.has_errors()) << issues_json(sink.issues());

  // Without the header the view is a silent read; with it, it is an access like the CareTeam query.
  EXPECT_EQ(parse(data_.call("admin", "GET", nhs_query("AuditEvent", nhs_)).body)["total"].GetInt(), 0);
  ASSERT_EQ(data_.call("unscheduled-care", "GET", nhs_query("Flag", nhs_), "", national("true")).status, 200);
  EXPECT_EQ(parse(data_.call("admin", "GET", nhs_query("AuditEvent", nhs_)).body)["total"].GetInt(), 1);

  // A role that may not query CP-IS gets the stored Flags only, as before.
  auto plain = data_.call("adult-mental-health", "GET", nhs_query("Flag", nhs_));
  ASSERT_EQ(plain.status, 200) << plain.body;
  EXPECT_EQ(parse(plain.body)["total"].GetInt(), 1);
}

TEST(CpisAuditEvent, TheRecordOfAnAccessPassesTheGatewaysOwnRules) {
  cpis::Access a;
  a.unscheduled = true;
  a.caller = {"RXX01", "unscheduled-care", "ed-symphony"};
  a.remote = "127.0.0.1";
  a.trace_id = "t-1";
  a.nhs_number = test::nhs_number_for(1);
  a.patient_id = "p1";
  a.plan_ids = {"c1", "c2"};
  a.query = "patient:identifier=x";
  a.resource_type = "CareTeam";
  a.recorded = "2026-11-27T07:00:00.000Z";
  auto v = write::Validator::load(std::string(GW_SOURCE_DIR) + "/profiles");
  ASSERT_TRUE(v.has_value());
  for (bool with_user : {false, true}) {
    if (with_user) a.user_role_profile = "555021935107";
    auto d = json::parse(cpis::access_audit_event(a));
    ASSERT_TRUE(d.has_value());
    IssueSink sink;
    v->validate(*d, sink);
    EXPECT_FALSE(sink.has_errors()) << issues_json(sink.issues());
    // The caller is the requestor unless a person was named.
    EXPECT_EQ((*d)["agent"][0]["requestor"].GetBool(), !with_user);
  }
}

// ---- the access record is durable before the answer ---------------------------

// A real store (the engine of this run) whose AuditEvent commits wait (or fail) until the test
// says so, to see what CpisApi sends meanwhile.
class HeldCommits final : public store::Store {
 public:
  explicit HeldCommits(store::Store& real) : real_(real) {}
  Result<void> commit(store::UnitOfWork unit, store::CommitCallback cb) override {
    // Resource writes come from the write service with their prepare hook
    // (the access record's AuditEvent); audit-only units pass straight on.
    if (!unit.prepare) return real_.commit(std::move(unit), std::move(cb));
    std::lock_guard lock(mu_);
    held_.emplace_back(std::move(unit), std::move(cb));
    return {};
  }
  // Commits (or fails) what was held.
  void release(bool fail) {
    std::vector<std::pair<store::UnitOfWork, store::CommitCallback>> held;
    {
      std::lock_guard lock(mu_);
      held.swap(held_);
    }
    for (auto& [unit, cb] : held) {
      if (fail) cb(make_error(Errc::store_failure, "disk full"));
      else (void)real_.commit(std::move(unit), std::move(cb));
    }
  }
  size_t held() {
    std::lock_guard lock(mu_);
    return held_.size();
  }
  Result<store::StoredResource> read(const std::string& t, const std::string& id) override { return real_.read(t, id); }
  Result<store::StoredResource> vread(const std::string& t, const std::string& id, int64_t v) override {
    return real_.vread(t, id, v);
  }
  Result<std::vector<store::StoredResource>> history(const std::string& t, const std::string& id) override {
    return real_.history(t, id);
  }
  Result<store::SearchPage> search(const store::SearchQuery& q) override { return real_.search(q); }
  Result<std::optional<std::string>> find_by_unique_key(const std::string& k) override {
    return real_.find_by_unique_key(k);
  }
  Result<std::vector<store::InboundRow>> list_inbound(const std::string& s, int l, int64_t o) override {
    return real_.list_inbound(s, l, o);
  }
  Result<store::InboundRow> get_inbound(int64_t id) override { return real_.get_inbound(id); }
  Result<std::vector<store::ChangeRow>> changes_after(int64_t a, int l) override { return real_.changes_after(a, l); }
  Result<int64_t> cursor(const std::string& n) override { return real_.cursor(n); }
  Result<bool> claim(const std::string& n) override { return real_.claim(n); }
  void release(const std::string& n) override { real_.release(n); }
  Result<std::vector<store::EventRow>> events(const std::string& s, int64_t f, int64_t u, const std::string& st,
                                              int l) override {
    return real_.events(s, f, u, st, l);
  }
  Result<store::EventCounts> event_counts(const std::string& s) override { return real_.event_counts(s); }
  Result<std::vector<std::string>> subscriptions_with_events(const std::string& s) override {
    return real_.subscriptions_with_events(s);
  }
  void set_commit_listener(std::function<void()> fn) override { real_.set_commit_listener(std::move(fn)); }
  Result<void> run_read(std::function<void()> fn) override { return real_.run_read(std::move(fn)); }
  void close() override { real_.close(); }
  store::Stats stats() const override { return real_.stats(); }

 private:
  store::Store& real_;
  std::mutex mu_;
  std::vector<std::pair<store::UnitOfWork, store::CommitCallback>> held_;
};

class CpisDurability : public ::testing::Test {
 protected:
  void SetUp() override {
    store::SqliteOptions so;
    so.path = dir_.path() + "/gateway.db";
    real_ = test::open_store(so);
    held_ = std::make_unique<HeldCommits>(*real_);
    auto p = security::Policy::load(std::string(GW_SOURCE_DIR) + "/profiles");
    ASSERT_TRUE(p.has_value());
    policy_ = std::move(*p);
    auto v = write::Validator::load(std::string(GW_SOURCE_DIR) + "/profiles");
    ASSERT_TRUE(v.has_value());
    validator_ = std::move(*v);
    visibility_ = std::make_unique<security::Visibility>(policy_, *held_);
    writes_ = std::make_unique<write::WriteService>(*held_, validator_, policy_, *visibility_, nullptr);
    api_ = std::make_unique<cpis::CpisApi>(cpis::CpisContext{
        *held_, *writes_, policy_, [] { return std::string("2026-11-27"); },
        [](const net::Request&) { return std::string("https://gw/fhir"); }});
    // A child with a plan, straight into the store, shaped as the REST API stores them.
    auto stored = [](const std::string& type, const std::string& id, const std::string& text) {
      auto d = json::parse(text);
      store::WriteOp op;
      op.type = type;
      op.id = id;
      op.index = model::index_entries(type, *d);
      op.body = model::storage_text(*d, type, d->GetAllocator());
      return op;
    };
    store::UnitOfWork u;
    store::WriteOp patient = stored("Patient", "child", test::fixture("fhir/Patient.json", {{"nhs", nhs_}}));
    patient.unique_key = nhs_;
    store::WriteOp plan = stored(
        "CareTeam", "plan",
        test::fixture("fhir/CpisPlan.json", {{"patient", "child"}, {"nhs", nhs_}, {"la", "L0001"}, {"la_name", "A"},
                                             {"local_id", "1"}, {"status", "active"}, {"snomed", kCpp},
                                             {"period", R"({"start":"2026-01-10"})"}}));
    u.ops = {patient, plan};
    std::promise<bool> done;
    ASSERT_TRUE(real_->commit(std::move(u), [&](Result<store::CommitOutcome> r) { done.set_value(r.has_value()); }));
    ASSERT_TRUE(done.get_future().get());
  }
  void TearDown() override { real_->close(); }

  // Sends the unscheduled query; the future is set when the answer is sent.
  std::future<net::Response> query() {
    auto answer = std::make_shared<std::promise<net::Response>>();
    auto f = answer->get_future();
    net::Request req;
    req.method = "GET";
    req.path = "/fhir/CareTeam";
    req.query = "patient:identifier=https://fhir.nhs.uk/Id/nhs-number%7C" + nhs_;
    req.headers = {{"isunscheduledaccessevent", "true"}, {"traceid", "t-1"}};
    req.principal = {"RXX01", "unscheduled-care", "ed-symphony"};
    EXPECT_TRUE(api_->handles("CareTeam", req));
    api_->search("CareTeam", std::move(req), [answer](net::Response r) { answer->set_value(std::move(r)); });
    return f;
  }
  bool wait_held() {
    for (int i = 0; i < 500 && held_->held() == 0; ++i) std::this_thread::sleep_for(10ms);
    return held_->held() == 1;
  }

  test::TempDir dir_;
  std::string nhs_ = test::nhs_number_for(72001);
  std::unique_ptr<store::Store> real_;
  std::unique_ptr<HeldCommits> held_;
  security::Policy policy_;
  write::Validator validator_;
  std::unique_ptr<security::Visibility> visibility_;
  std::unique_ptr<write::WriteService> writes_;
  std::unique_ptr<cpis::CpisApi> api_;
};

TEST_F(CpisDurability, NoAnswerLeavesBeforeTheAccessRecordIsCommitted) {
  auto f = query();
  ASSERT_TRUE(wait_held());
  EXPECT_EQ(f.wait_for(200ms), std::future_status::timeout) << "answered before the AuditEvent was durable";
  held_->release(false);
  ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
  auto r = f.get();
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("\"id\":\"plan\""), std::string::npos) << r.body;
}

TEST_F(CpisDurability, AnAccessThatCannotBeRecordedShowsNoPlan) {
  auto f = query();
  ASSERT_TRUE(wait_held());
  held_->release(true);
  ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
  auto r = f.get();
  EXPECT_GE(r.status, 500);
  EXPECT_EQ(r.body.find("\"id\":\"plan\""), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("0300 123 4567"), std::string::npos) << r.body;
}

// ---- cpis-access notifications ---------------------------------------------------

events::SubscriptionsOptions fast_options() { return test::fast_subscriptions(4, std::chrono::milliseconds(100)); }

TEST(CpisAccessNotification, OnlyTheResponsibleAuthorityHearsOfAnUnscheduledAccess) {
  InProcessGateway gw(config::Limits{}, fast_options());
  test::HookReceiver rx;
  Data d{gw};
  auto subscribe = [&](const std::string& role, const std::string& path) {
    auto r = d.call(role, "POST", "/fhir/Subscription",
                    test::subscription_json({.topic = "cpis-access", .endpoint = rx.url(path), .content = "full-resource"}));
    ASSERT_EQ(r.status, 201) << r.body;
  };
  subscribe("local-authority", "/l0001");
  subscribe("local-authority-2", "/l0002");
  ASSERT_TRUE(rx.wait_for([](auto& p) { return test::count_type(p, "handshake") >= 2; }, 10s));

  std::string child_nhs = test::nhs_number_for(71001), other_nhs = test::nhs_number_for(71002),
              no_plan_nhs = test::nhs_number_for(71003);
  std::string child = d.patient(child_nhs), other = d.patient(other_nhs);
  d.patient(no_plan_nhs);
  d.plan(child, child_nhs, "L0001");
  // The child's GP and the ED also name the child on care teams: they are
  // not the authority, and neither is LA372.
  ASSERT_EQ(d.call("integration", "POST", "/fhir/CareTeam",
                   test::fixture("fhir/CareTeam.json", {{"patient", child}}))
                .status,
            201);
  std::string other_plan = d.plan(other, other_nhs, "LA372");

  // Silent read, and an unscheduled query about a child with no plan: nothing to tell.
  ASSERT_EQ(d.call("gp", "GET", nhs_query("CareTeam", child_nhs), "", national("false")).status, 200);
  ASSERT_EQ(d.call("unscheduled-care", "GET", nhs_query("CareTeam", no_plan_nhs), "", national("true")).status, 200);
  // The unscheduled access to L0001's child, then one to LA372's.
  ASSERT_EQ(d.call("unscheduled-care", "GET", nhs_query("CareTeam", child_nhs), "", national("true", "tr-1")).status,
            200);
  ASSERT_EQ(d.call("unscheduled-care", "GET", nhs_query("CareTeam", other_nhs), "", national("true", "tr-2")).status,
            200);

  ASSERT_TRUE(rx.wait_for([](auto& p) { return test::event_numbers(p, "/l0002").size() >= 1; }, 15s));
  ASSERT_TRUE(rx.wait_for([](auto& p) { return test::event_numbers(p, "/l0001").size() >= 1; }, 15s));
  // Fan-out and delivery keep commit order, so anything the earlier reads had
  // fired would have arrived before these.
  std::this_thread::sleep_for(300ms);
  auto posts = rx.posts();
  EXPECT_EQ(test::event_numbers(posts, "/l0001"), std::vector<int64_t>{1});
  EXPECT_EQ(test::event_numbers(posts, "/l0002"), std::vector<int64_t>{1});
  for (const auto& p : posts) {
    auto seen = test::read_notification(p.body);
    if (seen.type != "event-notification") continue;
    ASSERT_EQ(seen.focus.size(), 1u);
    EXPECT_NE(seen.focus[0].find("/AuditEvent/"), std::string::npos) << seen.focus[0];
    // The full resource tells the authority which of its plans was looked at, by whom, with which TraceID.
    // Each authority may read the access record it was told of, and not the other's.
    std::string id = seen.focus[0].substr(seen.focus[0].rfind('/') + 1);
    std::string mine = p.target == "/l0001" ? "local-authority" : "local-authority-2";
    std::string theirs = p.target == "/l0001" ? "local-authority-2" : "local-authority";
    EXPECT_EQ(d.call(mine, "GET", "/fhir/AuditEvent/" + id).status, 200);
    EXPECT_EQ(d.call(theirs, "GET", "/fhir/AuditEvent/" + id).status, 404);
    auto batch = d.call(theirs, "POST", "/fhir",
                        R"({"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET","url":"AuditEvent/)" +
                            id + R"("}}]})");
    EXPECT_EQ(batch.status, 200) << batch.body;
    EXPECT_NE(batch.body.find("\"status\":\"404\""), std::string::npos) << batch.body;
    EXPECT_EQ(batch.body.find("RXX01"), std::string::npos) << "another authority's access record leaked through a batch";
    EXPECT_EQ(d.call("commissioner", "GET", "/fhir/AuditEvent/" + id).status, 200);
    if (p.target == "/l0001") {
      EXPECT_NE(p.body.find("tr-1"), std::string::npos);
      EXPECT_NE(p.body.find("RXX01"), std::string::npos);
      EXPECT_EQ(p.body.find(other_plan), std::string::npos);
    } else {
      EXPECT_NE(p.body.find("tr-2"), std::string::npos);
      EXPECT_NE(p.body.find("CareTeam/" + other_plan), std::string::npos);
    }
  }
}

}  // namespace
}  // namespace gw
