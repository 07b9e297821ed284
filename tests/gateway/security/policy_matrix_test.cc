// The access policy proved from its own data: every role the schema knows ×
// every interaction × every resource type the profiles know (plus types
// nobody is granted) × every sensitivity label. The expected answer is worked
// out here from profiles/policy/access.json by a reading of the file
// independent of the gateway's; anything no rule grants must be denied. The
// matrix is generated from the files, so a role, type or label added to the
// profiles is covered without touching this test, and one the profiles do not
// know cannot be added to the policy (the schema refuses it at start-up).
//
// The first tests ask the Policy; the last ones ask the REST API over real
// TLS with each role's certificate, so the matrix is what a caller meets.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gateway/common/json.h"
#include "gateway/security/policy.h"
#include "tests/support/test_gateway.h"

namespace gw {
namespace {

using security::Policy;
using security::Principal;

const std::string kProfiles = std::string(GW_SOURCE_DIR) + "/profiles";
const std::vector<std::string> kInteractions = {"read", "vread", "history", "search", "create", "update", "delete"};
// Types no rule names: deny by default must hold for them too.
const std::vector<std::string> kUngranted = {"Basic", "MedicationRequest", "DocumentReference"};

json::Document read_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  auto d = json::parse(ss.str());
  EXPECT_TRUE(d.has_value()) << path;
  return d ? std::move(*d) : json::Document();
}

std::vector<std::string> strings(const json::Value* v) {
  std::vector<std::string> out;
  if (v && v->IsArray())
    for (const auto& s : v->GetArray())
      if (s.IsString()) out.emplace_back(json::as_view(s));
  return out;
}

bool has(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

// What access.json says, read here without the gateway's code.
struct Reference {
  json::Document access = read_json(kProfiles + "/policy/access.json");
  json::Document common = read_json(kProfiles + "/schemas/common.schema.json");

  std::vector<std::string> roles() const {
    return strings(json::member(*json::member(*json::member(common, "definitions"), "role"), "enum"));
  }
  std::vector<std::string> known_labels() const {
    return strings(json::member(*json::member(*json::member(common, "definitions"), "label"), "enum"));
  }
  std::vector<std::string> gateway_written() const { return strings(json::member(access, "gatewayWritten")); }

  // Every type with a rules file, every type the policy names, and some nobody is granted.
  std::vector<std::string> types() const {
    std::set<std::string> out(kUngranted.begin(), kUngranted.end());
    for (const auto& e : std::filesystem::directory_iterator(kProfiles + "/rules"))
      out.insert(e.path().stem().string());
    for (const auto& rule : json::member(access, "rules")->GetArray())
      for (const auto& t : strings(json::member(rule, "resources")))
        if (t != "*") out.insert(t);
    for (const auto& t : gateway_written()) out.insert(t);
    return {out.begin(), out.end()};
  }

  struct Cell {
    bool granted = false;
    bool unconditional = false;  // some granting rule has neither ownOrganisation nor exceptCodes
    bool unscoped = false;       // some granting rule has no scope
  };
  Cell cell(const std::string& role, const std::string& type, const std::string& interaction) const {
    Cell c;
    bool write = interaction == "create" || interaction == "update" || interaction == "delete";
    if (write && has(gateway_written(), type)) return c;
    for (const auto& rule : json::member(access, "rules")->GetArray()) {
      auto ods = strings(json::member(rule, "ods"));
      bool any_org = ods.empty() || has(ods, "*");  // the matrix's callers are of no listed organisation
      auto res = strings(json::member(rule, "resources"));
      if (!has(strings(json::member(rule, "roles")), role) || !any_org) continue;
      if (!has(res, "*") && !has(res, type)) continue;
      if (!has(strings(json::member(rule, "interactions")), interaction)) continue;
      c.granted = true;
      c.unconditional |= !json::member(rule, "ownOrganisation") && !json::member(rule, "exceptCodes");
      c.unscoped |= !json::member(rule, "scope");
    }
    return c;
  }
  // Roles allowed to see a label; nullopt when the policy does not list it.
  std::optional<std::vector<std::string>> label_roles(const std::string& label) const {
    const json::Value* s = json::member(access, "sensitivity");
    const json::Value* r = s ? json::member(*s, label) : nullptr;
    if (!r) return std::nullopt;
    return strings(r);
  }
};

Principal as(const std::string& role) { return Principal{"MATRIX1", role, "policy-matrix"}; }

TEST(PolicyMatrix, EveryRoleTypeAndInteractionAnswersAsAccessJsonSays) {
  Reference ref;
  auto policy = Policy::load(kProfiles);
  ASSERT_TRUE(policy.has_value()) << policy.error().message;
  auto roles = ref.roles();
  auto types = ref.types();
  ASSERT_GE(roles.size(), 15u);
  ASSERT_GE(types.size(), 15u);
  size_t cells = 0, granted = 0;
  for (const auto& role : roles) {
    for (const auto& type : types) {
      for (const auto& interaction : kInteractions) {
        auto want = ref.cell(role, type, interaction);
        bool got = policy->allows(as(role), type, interaction);
        EXPECT_EQ(got, want.granted) << role << " " << interaction << " " << type;
        if (want.granted) {
          ++granted;
          bool unconditional = policy->write_conditions(as(role), type, interaction).empty();
          if (interaction == "create" || interaction == "update") {
            EXPECT_EQ(unconditional, want.unconditional) << role << " " << interaction << " " << type << " conditions";
          }
          EXPECT_EQ(!policy->row_scope(as(role), type, interaction).has_value(), want.unscoped)
              << role << " " << interaction << " " << type << " scope";
        }
        ++cells;
      }
    }
  }
  // A caller without a role (no OU in its certificate) gets nothing at all.
  for (const auto& type : types)
    for (const auto& interaction : kInteractions) EXPECT_FALSE(policy->allows(as(""), type, interaction));
  RecordProperty("cells", static_cast<int>(cells));
  RecordProperty("granted", static_cast<int>(granted));
  EXPECT_GT(granted, 0u);
  EXPECT_LT(granted, cells);
}

TEST(PolicyMatrix, EveryOperationIsGrantedToItsListedRolesOnly) {
  Reference ref;
  auto policy = Policy::load(kProfiles);
  ASSERT_TRUE(policy.has_value()) << policy.error().message;
  const json::Value* ops = json::member(ref.access, "operations");
  ASSERT_NE(ops, nullptr);
  for (const auto& op : ops->GetObject()) {
    auto listed = strings(&op.value);
    for (const auto& role : ref.roles())
      EXPECT_EQ(policy->allows_operation(as(role), json::as_view(op.name)), has(listed, role))
          << role << " " << json::as_view(op.name);
  }
  for (const auto& role : ref.roles()) EXPECT_FALSE(policy->allows_operation(as(role), "no-such-operation")) << role;
}

TEST(PolicyMatrix, EveryKnownLabelHasAPolicyAndHidesFromEveryRoleItDoesNotList) {
  Reference ref;
  auto policy = Policy::load(kProfiles);
  ASSERT_TRUE(policy.has_value()) << policy.error().message;
  auto labels = ref.known_labels();
  ASSERT_FALSE(labels.empty());
  for (const auto& label : labels) {
    auto allowed = ref.label_roles(label);
    // A label the gateway knows but the policy leaves out would hide nothing.
    ASSERT_TRUE(allowed.has_value()) << "sensitivity label " << label << " has no entry in access.json";
    for (const auto& role : ref.roles()) {
      auto hidden = policy->hidden_labels(as(role));
      EXPECT_EQ(has(hidden, label), !has(*allowed, role)) << role << " " << label;
    }
  }
}

// ---- the same matrix as a caller meets it ----

const std::vector<std::pair<std::string, std::string>> kJson = {{"Content-Type", "application/fhir+json"}};

class PolicyMatrixRest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { gw_ = new test::InProcessGateway(); }
  static void TearDownTestSuite() {
    delete gw_;
    gw_ = nullptr;
  }
  static test::InProcessGateway* gw_;
};
test::InProcessGateway* PolicyMatrixRest::gw_ = nullptr;

// Read, search and delete of every type by every role: 403 exactly where the
// policy grants nothing (a granted read of an id that does not exist is 404,
// never 403). Subscription has its own owner rules and is left to its tests.
TEST_F(PolicyMatrixRest, ReadSearchAndDeleteOfEveryTypeByEveryRole) {
  Reference ref;
  std::map<std::string, std::pair<std::string, std::string>> probes = {
      {"read", {"GET", "/matrix-none"}}, {"search", {"GET", "?_id=matrix-none"}}, {"delete", {"DELETE", "/matrix-none"}}};
  size_t checked = 0;
  for (const auto& role : ref.roles()) {
    auto c = gw_->client(role);
    for (const auto& type : ref.types()) {
      if (type == "Subscription") continue;
      for (const auto& [interaction, probe] : probes) {
        auto r = c.request(probe.first, "/fhir/" + type + probe.second);
        ASSERT_TRUE(r.has_value()) << role << " " << interaction << " " << type;
        bool granted = ref.cell(role, type, interaction).granted;
        bool served = std::find(kUngranted.begin(), kUngranted.end(), type) == kUngranted.end();
        if (!served) {
          // A type this server does not hold: refused or unknown, never answered.
          EXPECT_TRUE(r->status == 403 || r->status == 404) << role << " " << interaction << " " << type << ": " << r->body;
        } else if (granted) {
          EXPECT_NE(r->status, 403) << role << " " << interaction << " " << type << ": " << r->body;
        } else {
          EXPECT_EQ(r->status, 403) << role << " " << interaction << " " << type << ": " << r->body;
        }
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 500u);
}

// An Observation carrying each label is read by every role: 200 only for a
// role the policy grants the read and the label lists; the rest get 404 (not
// even its existence shows) or 403 (no read at all).
TEST_F(PolicyMatrixRest, EveryLabelledObservationIsVisibleOnlyToTheRolesItsLabelLists) {
  Reference ref;
  auto author = gw_->client("integration");
  auto patient = author.request("POST", "/fhir/Patient",
                                R"({"resourceType":"Patient","identifier":[{"system":"urn:cpis-gateway:local-id:RSH01","value":"MATRIX-1"}],"gender":"female","birthDate":"2012-03-04"})",
                                kJson);
  ASSERT_TRUE(patient.has_value());
  ASSERT_EQ(patient->status, 201) << patient->body;
  std::string patient_id(json::get_string(*json::parse(patient->body), "id").value_or(""));
  std::map<std::string, test::HttpsClient> readers;  // one kept-alive connection per role
  for (const auto& label : ref.known_labels()) {
    auto obs = author.request(
        "POST", "/fhir/Observation",
        R"({"resourceType":"Observation","meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":")" +
            label + R"("}]},"status":"final","code":{"text":"matrix"},"subject":{"reference":"Patient/)" + patient_id + R"("}})",
        kJson);
    ASSERT_TRUE(obs.has_value());
    ASSERT_EQ(obs->status, 201) << label << ": " << obs->body;
    std::string id(json::get_string(*json::parse(obs->body), "id").value_or(""));
    auto allowed = ref.label_roles(label).value_or(std::vector<std::string>{});
    for (const auto& role : ref.roles()) {
      auto it = readers.find(role);
      if (it == readers.end()) it = readers.emplace(role, gw_->client(role)).first;
      auto r = it->second.request("GET", "/fhir/Observation/" + id);
      ASSERT_TRUE(r.has_value());
      bool may_read = ref.cell(role, "Observation", "read").granted;
      int want = !may_read ? 403 : has(allowed, role) ? 200 : 404;
      EXPECT_EQ(r->status, want) << role << " reading an Observation labelled " << label;
    }
  }
}

}  // namespace
}  // namespace gw
