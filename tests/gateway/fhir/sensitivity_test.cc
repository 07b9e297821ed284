// Labelled content (meta.security STD/HIV/SEX, PSY, SUD) is invisible to
// every role the policy does not name: in reads, vreads, history, searches
// (totals included), chained searches, Bundle reads and conditional creates.
// A matrix over all fifteen roles, not a sample.
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

std::string labelled_patient(const std::string& local_id, const std::string& labels) {
  return R"({"resourceType":"Patient","meta":{"security":[)" + labels + R"(]},"identifier":[{"system":"urn:cpis-gateway:local-id:RSH01","value":")" +
         local_id + R"("}],"gender":"female","birthDate":"2010-02-03"})";
}

std::string label(const std::string& code) {
  return R"({"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":")" + code + R"("})";
}

struct Probe {
  int read = 0, vread = 0, history = 0, search_total = -1, chained_total = -1, bundle_get = 0;
  bool conditional_create_leaks = false;
};

class SensitivityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { gw_ = new InProcessGateway(); }
  static void TearDownTestSuite() {
    delete gw_;
    gw_ = nullptr;
  }

  // Creates a labelled Patient and an Observation about it, as `author`.
  static std::string make(const std::string& author, const std::string& local_id, const std::string& labels) {
    auto c = gw_->client(author);
    auto p = c.request("POST", "/fhir/Patient", labelled_patient(local_id, labels), kJson);
    EXPECT_TRUE(p.has_value());
    EXPECT_EQ(p->status, 201) << author << ": " << p->body;
    std::string id(json::get_string(*json::parse(p->body), "id").value_or(""));
    auto o = c.request("POST", "/fhir/Observation",
                       R"({"resourceType":"Observation","meta":{"security":[)" + labels +
                           R"(]},"status":"final","code":{"text":"attendance"},"subject":{"reference":"Patient/)" + id +
                           R"("}})",
                       kJson);
    EXPECT_EQ(o->status, 201) << o->body;
    return id;
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
    return out;
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
}

TEST_F(SensitivityTest, SexualHealthContentIsForSexualHealthOnly) {
  std::string id = make("sexual-health", "SH-1", label("R") + "," + label("STD") + "," + label("SEX"));
  for (const auto& role : kRoles) {
    Probe p = probe(role, id, "SH-1");
    if (role == "sexual-health") {
      EXPECT_EQ(p.read, 200);
      EXPECT_EQ(p.vread, 200);
      EXPECT_EQ(p.history, 200);
      EXPECT_EQ(p.search_total, 1);
      EXPECT_EQ(p.chained_total, 1);
      EXPECT_EQ(p.bundle_get, 200);
    } else {
      expect_hidden(role, p);
    }
  }
}

TEST_F(SensitivityTest, MentalHealthContentStaysWithMentalHealthServices) {
  std::string id = make("camhs", "MH-1", label("PSY"));
  for (const auto& role : kRoles) {
    Probe p = probe(role, id, "MH-1");
    bool allowed = role == "camhs" || role == "adult-mental-health" || role == "substance-misuse";
    if (allowed) {
      EXPECT_EQ(p.read, 200) << role;
      EXPECT_EQ(p.search_total, 1) << role;
    } else {
      expect_hidden(role, p);
    }
  }
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

TEST_F(SensitivityTest, UnlabelledContentIsUnaffected) {
  std::string id = make("integration", "PLAIN-1", label("N"));
  EXPECT_EQ(probe("gp", id, "PLAIN-1").read, 200);
  EXPECT_EQ(probe("gp", id, "PLAIN-1").search_total, 1);
}

}  // namespace
}  // namespace gw
