// Labelled content (meta.security STD/HIV/SEX, PSY, SUD) is invisible to
// every role the policy does not name: in reads, vreads, history, searches
// (totals included), chained searches, _include and _revinclude,
// Patient/$everything, Bundle reads, conditional creates (plain and inside a
// transaction, whose response must not name the hidden resource), conditional
// updates (plain and in a transaction: refused, the record untouched).
// Subscription payloads: tests/gateway/events/sensitive_notifications_test.cc. A matrix over all fifteen roles, not a sample.
#include <gtest/gtest.h>

#include "gateway/common/json.h"
#include "tests/support/test_gateway.h"

namespace gw {
namespace {

using test::InProcessGateway;

const std::vector<std::string> kRoles = {"local-authority", "unscheduled-care", "gp", "health-visiting", "midwifery",
                                         "school-nursing", "paediatric-liaison", "lac-health", "camhs",
                                         "adult-mental-health", "substance-misuse", "sexual-health", "commissioner",
                                         "integration", "admin"};

const std::vector<std::pair<std::string, std::string>> kJson = {{"Content-Type", "application/fhir+json"}};

// meta.security with these labels, or nothing (FHIR JSON has no empty arrays).
std::string meta(const std::string& labels) {
  return labels.empty() ? std::string() : R"("meta":{"security":[)" + labels + "]},";
}

std::string labelled_patient(const std::string& local_id, const std::string& labels) {
  return R"({"resourceType":"Patient",)" + meta(labels) + R"("identifier":[{"system":"urn:cpis-gateway:local-id:RSH01","value":")" +
         local_id + R"("}],"gender":"female","birthDate":"2010-02-03"})";
}

std::string label(const std::string& code) {
  return R"({"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":")" + code + R"("})";
}

struct Probe {
  int read = 0, vread = 0, history = 0, search_total = -1, chained_total = -1, bundle_get = 0;
  bool conditional_create_leaks = false;
  bool transaction_names_hidden = false;  // a transaction-response mentions the hidden Patient's id
  int included = -1;        // Observation?_id=<plain obs about it>&_include=Observation:patient: include entries
  int revincluded = -1;     // Patient?_id=<shared plain Patient>&_revinclude=Observation:patient: include entries
  int everything = 0;       // status of Patient/<labelled>/$everything
  int everything_total = -1;         // total of that Bundle when 200
  int everything_shared_total = -1;  // total of Patient/<shared plain Patient>/$everything when 200
};

// What make() wrote: the labelled Patient (with a labelled Observation and an
// unlabelled one about it), and an unlabelled Patient (the shared child
// record) with one labelled Observation about it.
struct Made {
  std::string patient, plain_obs, shared_patient;
};

// Entries of a searchset in search.mode "include".
int include_entries(const std::string& body) {
  auto d = json::parse(body);
  if (!d || !d->IsObject() || !d->HasMember("entry")) return 0;
  int n = 0;
  for (const auto& e : (*d)["entry"].GetArray())
    if (e.HasMember("search") && json::get_string(e["search"], "mode").value_or("") == "include") ++n;
  return n;
}

class SensitivityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { gw_ = new InProcessGateway(); }
  static void TearDownTestSuite() {
    delete gw_;
    gw_ = nullptr;
  }

  static std::string created_id(test::HttpsClient& c, const std::string& type, const std::string& body) {
    auto r = c.request("POST", "/fhir/" + type, body, kJson);
    EXPECT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 201) << r->body;
    return std::string(json::get_string(*json::parse(r->body), "id").value_or(""));
  }
  static std::string observation(const std::string& labels, const std::string& patient_id) {
    return R"({"resourceType":"Observation",)" + meta(labels) + R"("status":"final","code":{"text":"attendance"},"subject":{"reference":"Patient/)" + patient_id +
           R"("}})";
  }

  // Creates a labelled Patient and an Observation about it, as `author`.
  static std::string make(const std::string& author, const std::string& local_id, const std::string& labels) {
    return make_all(author, local_id, labels).patient;
  }
  static Made make_all(const std::string& author, const std::string& local_id, const std::string& labels) {
    auto c = gw_->client(author);
    Made m;
    m.patient = created_id(c, "Patient", labelled_patient(local_id, labels));
    created_id(c, "Observation", observation(labels, m.patient));
    m.plain_obs = created_id(c, "Observation", observation("", m.patient));
    m.shared_patient = created_id(c, "Patient", labelled_patient(local_id + "-SHARED", ""));
    created_id(c, "Observation", observation(labels, m.shared_patient));
    return m;
  }

  static Probe probe(const std::string& role, const Made& m, const std::string& local_id) {
    Probe out = probe(role, m.patient, local_id);
    auto c = gw_->client(role);
    auto body_of = [&](const std::string& target, int* status = nullptr) {
      auto r = c.request("GET", target);
      if (status) *status = r ? r->status : 0;
      return r && r->status == 200 ? r->body : std::string();
    };
    auto total_of = [](const std::string& body) {
      auto d = json::parse(body);
      return d && d->IsObject() && d->HasMember("total") ? (*d)["total"].GetInt() : -1;
    };
    out.included = include_entries(body_of("/fhir/Observation?_id=" + m.plain_obs + "&_include=Observation:patient"));
    out.revincluded =
        include_entries(body_of("/fhir/Patient?_id=" + m.shared_patient + "&_revinclude=Observation:patient"));
    std::string all = body_of("/fhir/Patient/" + m.patient + "/$everything", &out.everything);
    out.everything_total = total_of(all);
    out.everything_shared_total = total_of(body_of("/fhir/Patient/" + m.shared_patient + "/$everything"));
    return out;
  }

  static Probe probe(const std::string& role, const std::string& id, const std::string& local_id) {
    Probe out;
    auto c = gw_->client(role);
    auto total = [&](const std::string& target) {
      auto r = c.request("GET", target);
      if (!r || r->status != 200) return -(r ? r->status : 1);
      auto d = json::parse(r->body);
      return (*d)["total"].GetInt();
    };
    out.read = c.request("GET", "/fhir/Patient/" + id)->status;
    out.vread = c.request("GET", "/fhir/Patient/" + id + "/_history/1")->status;
    out.history = c.request("GET", "/fhir/Patient/" + id + "/_history")->status;
    out.search_total = total("/fhir/Patient?identifier=urn:cpis-gateway:local-id:RSH01%7C" + local_id);
    out.chained_total = total("/fhir/Observation?patient:identifier=urn:cpis-gateway:local-id:RSH01%7C" + local_id);
    auto b = c.request("POST", "/fhir",
                       R"({"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET","url":"Patient/)" +
                           id + R"("}}]})",
                       kJson);
    if (b && b->status == 200) {
      auto d = json::parse(b->body);
      std::string st(json::get_string((*d)["entry"][0]["response"], "status").value_or(""));
      out.bundle_get = std::atoi(st.c_str());
    }
    auto cc = c.request("POST", "/fhir/Patient", labelled_patient(local_id, ""),
                        {{"Content-Type", "application/fhir+json"},
                         {"If-None-Exist", "identifier=urn:cpis-gateway:local-id:RSH01|" + local_id}});
    out.conditional_create_leaks = cc && cc->body.find("\"birthDate\"") != std::string::npos;
    for (const char* bundle_type : {"transaction", "batch"}) {
      auto tx = c.request("POST", "/fhir",
                          R"({"resourceType":"Bundle","type":")" + std::string(bundle_type) +
                              R"(","entry":[{"fullUrl":"urn:uuid:6f1c1d52-8d1e-4d4e-9a43-1c2b3d4e5f60","resource":)" +
                              labelled_patient(local_id, "") +
                              R"(,"request":{"method":"POST","url":"Patient","ifNoneExist":"identifier=urn:cpis-gateway:local-id:RSH01|)" +
                              local_id + R"("}}]})",
                          kJson);
      if (tx && tx->body.find(id) != std::string::npos) out.transaction_names_hidden = true;
    }
    return out;
  }

  // A conditional update (REST and inside a transaction) by a role that may
  // not see the match: the status of each.
  static std::pair<int, int> conditional_updates(const std::string& role, const std::string& local_id) {
    auto c = gw_->client(role);
    std::string criteria = "identifier=urn:cpis-gateway:local-id:RSH01%7C" + local_id;
    auto put = c.request("PUT", "/fhir/Patient?" + criteria, labelled_patient(local_id, ""), kJson);
    auto tx = c.request("POST", "/fhir",
                        R"({"resourceType":"Bundle","type":"transaction","entry":[{"resource":)" +
                            labelled_patient(local_id, "") + R"(,"request":{"method":"PUT","url":"Patient?)" + criteria +
                            R"("}}]})",
                        kJson);
    return {put ? put->status : 0, tx ? tx->status : 0};
  }

  // The clinic's record is unchanged: version 1, still labelled.
  static void expect_untouched(const std::string& owner, const std::string& id) {
    auto r = gw_->client(owner).request("GET", "/fhir/Patient/" + id);
    ASSERT_EQ(r->status, 200);
    EXPECT_EQ(r->header("etag").value_or(""), "W/\"1\"") << "someone who may not see it changed it";
    EXPECT_NE(r->body.find("\"security\""), std::string::npos);
  }

  static InProcessGateway* gw_;
};
InProcessGateway* SensitivityTest::gw_ = nullptr;

void expect_hidden(const std::string& role, const Probe& p) {
  EXPECT_NE(p.read, 200) << role;
  EXPECT_NE(p.vread, 200) << role;
  EXPECT_NE(p.history, 200) << role;
  EXPECT_LE(p.search_total, 0) << role << ": the search total betrays the resource";
  EXPECT_LE(p.chained_total, 0) << role;
  EXPECT_NE(p.bundle_get, 200) << role;
  EXPECT_FALSE(p.conditional_create_leaks) << role;
  EXPECT_FALSE(p.transaction_names_hidden) << role;
}

// The paths that follow references: the hidden resources are neither
// included nor counted; the unlabelled ones stay visible to roles that may
// read them.
void expect_hidden_when_following(const std::string& role, const Probe& p, bool reads_patients) {
  EXPECT_EQ(p.included, 0) << role << ": _include brought in a hidden Patient";
  EXPECT_EQ(p.revincluded, 0) << role << ": _revinclude brought in a hidden Observation";
  EXPECT_NE(p.everything, 200) << role << ": $everything of a hidden Patient";
  if (reads_patients) {
    EXPECT_EQ(p.everything, 404) << role << ": a hidden Patient is not found, not forbidden";
    EXPECT_EQ(p.everything_shared_total, 1) << role << ": only the Patient itself, the labelled Observation not counted";
  } else {
    EXPECT_EQ(p.everything, 403) << role;
    EXPECT_EQ(p.everything_shared_total, -1) << role;
  }
}

bool reads_patients(const std::string& role) { return role != "commissioner"; }

TEST_F(SensitivityTest, SexualHealthContentIsForSexualHealthOnly) {
  Made m = make_all("sexual-health", "SH-1", label("R") + "," + label("STD") + "," + label("SEX"));
  for (const auto& role : kRoles) {
    Probe p = probe(role, m, "SH-1");
    if (role == "sexual-health") {
      EXPECT_EQ(p.read, 200);
      EXPECT_EQ(p.vread, 200);
      EXPECT_EQ(p.history, 200);
      EXPECT_EQ(p.search_total, 1);
      EXPECT_EQ(p.chained_total, 2);  // the labelled and the plain Observation
      EXPECT_EQ(p.bundle_get, 200);
      EXPECT_EQ(p.included, 1);
      EXPECT_EQ(p.revincluded, 1);
      EXPECT_EQ(p.everything, 200);
      EXPECT_EQ(p.everything_total, 3);  // the Patient and both Observations
      EXPECT_EQ(p.everything_shared_total, 2);
    } else {
      expect_hidden(role, p);
      expect_hidden_when_following(role, p, reads_patients(role));
      auto [put, tx] = conditional_updates(role, "SH-1");
      EXPECT_TRUE(put == 404 || put == 403) << role << ": conditional update answered " << put;
      EXPECT_TRUE(tx == 404 || tx == 403) << role << ": transaction conditional update answered " << tx;
    }
  }
  expect_untouched("sexual-health", m.patient);
}

TEST_F(SensitivityTest, MentalHealthContentStaysWithMentalHealthServices) {
  Made m = make_all("camhs", "MH-1", label("PSY"));
  for (const auto& role : kRoles) {
    Probe p = probe(role, m, "MH-1");
    bool allowed = role == "camhs" || role == "adult-mental-health" || role == "substance-misuse";
    if (allowed) {
      EXPECT_EQ(p.read, 200) << role;
      EXPECT_EQ(p.search_total, 1) << role;
      EXPECT_EQ(p.included, 1) << role;
      EXPECT_EQ(p.revincluded, 1) << role;
      EXPECT_EQ(p.everything_total, 3) << role;
    } else {
      expect_hidden(role, p);
      expect_hidden_when_following(role, p, reads_patients(role));
      auto [put, tx] = conditional_updates(role, "MH-1");
      EXPECT_TRUE(put == 404 || put == 403) << role << ": conditional update answered " << put;
      EXPECT_TRUE(tx == 404 || tx == 403) << role << ": transaction conditional update answered " << tx;
    }
  }
  expect_untouched("camhs", m.patient);
}

TEST_F(SensitivityTest, WritesByIdToHiddenContentAreRefusedAsNotFound) {
  std::string id = make("sexual-health", "SH-W", label("STD"));
  std::string body = R"({"resourceType":"Patient","id":")" + id + R"(","gender":"male"})";
  auto gp = gw_->client("integration");
  auto put = gp.request("PUT", "/fhir/Patient/" + id, body, kJson);
  EXPECT_EQ(put->status, 404) << put->body;
  auto admin = gw_->client("admin");
  EXPECT_EQ(admin.request("DELETE", "/fhir/Patient/" + id)->status, 404);
  // The clinic's record is untouched: still version 1.
  auto clinic = gw_->client("sexual-health");
  auto r = clinic.request("GET", "/fhir/Patient/" + id);
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(r->header("etag").value_or(""), "W/\"1\"");
}

TEST_F(SensitivityTest, EverythingIsPagedOverTheWholeVisibleRecord) {
  Made m = make_all("sexual-health", "SH-P", label("STD"));
  auto clinic = gw_->client("sexual-health");
  auto page = [&](const std::string& q) {
    auto r = clinic.request("GET", "/fhir/Patient/" + m.patient + "/$everything?" + q);
    EXPECT_EQ(r->status, 200) << r->body;
    return *json::parse(r->body);
  };
  auto first = page("_count=2");
  EXPECT_EQ(first["total"].GetInt(), 3);
  ASSERT_EQ(first["entry"].Size(), 2u);
  EXPECT_STREQ(first["entry"][0]["resource"]["resourceType"].GetString(), "Patient");
  EXPECT_NE(json::to_string(first["link"]).find("\"next\""), std::string::npos);
  auto second = page("_count=2&_offset=2");
  ASSERT_EQ(second["entry"].Size(), 1u);
  EXPECT_STREQ(second["entry"][0]["resource"]["resourceType"].GetString(), "Observation");
  EXPECT_EQ(gw_->client("sexual-health").request("GET", "/fhir/Patient/no-such-id/$everything")->status, 404);
  EXPECT_EQ(gw_->client("sexual-health").request("POST", "/fhir/Patient/" + m.patient + "/$everything", "{}", kJson)->status,
            405);
}

TEST_F(SensitivityTest, UnlabelledContentIsUnaffected) {
  std::string id = make("integration", "PLAIN-1", label("N"));
  EXPECT_EQ(probe("gp", id, "PLAIN-1").read, 200);
  EXPECT_EQ(probe("gp", id, "PLAIN-1").search_total, 1);
}

}  // namespace
}  // namespace gw
