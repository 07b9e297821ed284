// The facts the linked-children and camhs-and-gp routes read from the store:
// family links (inactive ones do not count), pregnancy (an EDD that has not
// passed), and CAMHS care (an open CAMHS referral, or care-team membership).
#include <gtest/gtest.h>

#include "gateway/common/json.h"
#include "gateway/events/matcher.h"
#include "tests/support/fixtures.h"
#include "tests/support/test_gateway.h"

namespace gw::events {
namespace {

struct Fixture {
  test::InProcessGateway gw;
  test::HttpsClient client = gw.client("integration");
  StoreLookup lookup{gw.store()};

  std::string post(const std::string& type, const std::string& body) {
    auto r = client.request("POST", "/fhir/" + type, body, {{"Content-Type", "application/fhir+json"}});
    EXPECT_TRUE(r.has_value());
    EXPECT_EQ(r->status, 201) << r->body;
    auto d = json::parse(r->body);
    return d ? std::string(json::get_string(*d, "id").value_or("")) : std::string();
  }
  std::string patient(uint32_t seed) { return post("Patient", test::fixture("fhir/Patient.json", {{"nhs", test::nhs_number_for(seed)}})); }
  // A family link as both adapters write it: the parent's NHS number as identifier, patient = the child.
  void link(const std::string& child, uint32_t parent_seed, bool active) {
    post("RelatedPerson", R"({"resourceType":"RelatedPerson","active":)" + std::string(active ? "true" : "false") +
                              R"(,"identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":")" +
                              test::nhs_number_for(parent_seed) + R"("}],"patient":{"reference":"Patient/)" + child +
                              R"("}})");
  }
  void edd(const std::string& who, const std::string& date, const std::string& status = "final") {
    post("Observation", R"({"resourceType":"Observation","status":")" + status +
                            R"(","code":{"coding":[{"system":"http://snomed.info/sct","code":"161714006"}]},"subject":{"reference":"Patient/)" +
                            who + R"("},"valueDateTime":")" + date + R"("})");
  }
};

TEST(StoreLookup, LinkedChildrenAreTheActiveFamilyLinksOfTheParentsNhsNumber) {
  Fixture f;
  std::string parent = f.patient(901), c1 = f.patient(902), c2 = f.patient(903), other = f.patient(904);
  f.link(c1, 901, true);
  f.link(c2, 901, false);    // ended link
  f.link(other, 999, true);  // someone else's child
  EXPECT_EQ(f.lookup.linked_children(parent), std::vector<std::string>{c1});
  EXPECT_TRUE(f.lookup.linked_children(c1).empty());
}

TEST(StoreLookup, PregnantWhileAnEstimatedDateOfDeliveryHasNotPassed) {
  Fixture f;
  std::string mum = f.patient(911), past = f.patient(912), withdrawn = f.patient(913);
  f.edd(mum, "2999-01-01");
  f.edd(past, "2020-01-01");
  f.edd(withdrawn, "2999-01-01", "entered-in-error");
  EXPECT_TRUE(f.lookup.pregnant(mum));
  EXPECT_FALSE(f.lookup.pregnant(past));
  EXPECT_FALSE(f.lookup.pregnant(withdrawn));
}

TEST(StoreLookup, CamhsCareIsAnOpenCamhsReferralOrACareTeamMembership) {
  Fixture f;
  std::string yp = f.patient(921), other = f.patient(922), ended = f.patient(923);
  auto referral = [&](const std::string& who, const std::string& status, const std::string& service) {
    f.post("EpisodeOfCare", R"({"resourceType":"EpisodeOfCare","status":")" + status +
                                R"(","type":[{"coding":[{"system":"https://cpis-gateway.nhs.uk/CodeSystem/service","code":")" +
                                service + R"("}]}],"patient":{"reference":"Patient/)" + who +
                                R"("},"managingOrganization":{"identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"CAMHS1"}}})");
  };
  referral(yp, "active", "camhs");
  referral(other, "active", "adult-mental-health");
  referral(ended, "finished", "camhs");
  EXPECT_TRUE(f.lookup.holds_camhs_care(yp, "CAMHS1"));
  EXPECT_FALSE(f.lookup.holds_camhs_care(yp, "CAMHS2"));
  EXPECT_FALSE(f.lookup.holds_camhs_care(other, "CAMHS1"));
  EXPECT_FALSE(f.lookup.holds_camhs_care(ended, "CAMHS1"));
  f.post("CareTeam", R"({"resourceType":"CareTeam","status":"active","subject":{"reference":"Patient/)" + ended +
                         R"("},"participant":[{"member":{"type":"Organization","identifier":{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"CAMHS1"}}}]})");
  EXPECT_TRUE(f.lookup.holds_camhs_care(ended, "CAMHS1"));
}

}  // namespace
}  // namespace gw::events
