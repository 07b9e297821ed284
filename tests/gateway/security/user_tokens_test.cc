// The person behind each access (issue 17 part 3): the token matrix over a
// real mutual-TLS connection — every way a user token can be wrong is
// refused with its own OperationOutcome (401 with WWW-Authenticate, or 403),
// a good RS256 or ES256 token is accepted — and the JWKS and config checks
// that stop start-up.
#include "gateway/security/user_tokens.h"

#include <gtest/gtest.h>

#include <fstream>

#include "gateway/common/json.h"
#include "gateway/config/config.h"
#include "gateway/security/policy.h"
#include "tests/support/plan_seed.h"
#include "tests/support/test_gateway.h"
#include "tests/support/user_tokens_kit.h"

namespace gw {
namespace {

using test::TokenSpec;

std::string diagnostics(const std::string& body) {
  auto d = json::parse(body);
  if (!d || !d->HasMember("issue")) return "";
  return (*d)["issue"][0].HasMember("diagnostics") ? (*d)["issue"][0]["diagnostics"].GetString() : "";
}

class TokenMatrix : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { gw_ = new test::InProcessGateway(); }
  static void TearDownTestSuite() {
    delete gw_;
    gw_ = nullptr;
  }
  static TokenSpec good() {
    TokenSpec s;
    s.org = test::dev_ods("health-visiting");
    return s;
  }
  test::ClientResponse get(const std::string& authorization) {
    auto c = gw_->client("health-visiting");
    auto r = c.request("GET", "/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number%7C9434765919", "",
                       {{"Authorization", authorization}});
    EXPECT_TRUE(r.has_value());
    return r ? *r : test::ClientResponse{};
  }
  // A refusal: its status, an OperationOutcome whose diagnostics say `why`,
  // and a Bearer challenge on a 401.
  void refused(const TokenSpec& s, int status, const std::string& why) {
    auto r = get("Bearer " + test::mint_token(s));
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_NE(r.body.find("\"OperationOutcome\""), std::string::npos) << r.body;
    EXPECT_NE(diagnostics(r.body).find(why), std::string::npos) << diagnostics(r.body);
    if (status == 401) {
      auto w = r.header("www-authenticate");
      ASSERT_TRUE(w.has_value());
      EXPECT_EQ(w->rfind("Bearer realm=\"cpis-gateway\", error=\"invalid_token\"", 0), 0u) << *w;
    }
  }
  static test::InProcessGateway* gw_;
};
test::InProcessGateway* TokenMatrix::gw_ = nullptr;

TEST_F(TokenMatrix, GoodRs256AndEs256TokensAreAccepted) {
  EXPECT_EQ(get("Bearer " + test::mint_token(good())).status, 200);
  TokenSpec es = good();
  es.alg = "ES256";
  es.kid = "ec-1";
  EXPECT_EQ(get("Bearer " + test::mint_token(es)).status, 200);
  // Within the documented leeway (60 s) of its expiry.
  TokenSpec late = good();
  late.exp = -30;
  EXPECT_EQ(get("Bearer " + test::mint_token(late)).status, 200);
  // No token at all: a system-only read stays allowed where no person is required.
  auto c = gw_->client("health-visiting");
  EXPECT_EQ(c.request("GET", "/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number%7C9434765919")->status, 200);
}

TEST_F(TokenMatrix, ExpiredBeyondTheLeeway) {
  TokenSpec s = good();
  s.iat = -3600;
  s.nbf = -3600;
  s.exp = -120;
  refused(s, 401, "expired");
}

TEST_F(TokenMatrix, WithoutExpiry) {
  TokenSpec s = good();
  s.omit_exp = true;
  refused(s, 401, "no expiry");
}

TEST_F(TokenMatrix, NotYetValid) {
  TokenSpec s = good();
  s.nbf = 600;
  refused(s, 401, "not valid yet");
}

TEST_F(TokenMatrix, IssuedInTheFuture) {
  TokenSpec s = good();
  s.iat = 600;
  s.nbf = 0;
  refused(s, 401, "issued in the future");
}

TEST_F(TokenMatrix, WrongAudience) {
  TokenSpec s = good();
  s.aud = "another-service";
  refused(s, 401, "not meant for this gateway");
}

TEST_F(TokenMatrix, WrongIssuer) {
  TokenSpec s = good();
  s.iss = "https://idp.elsewhere.example";
  refused(s, 401, "not a trusted identity provider");
}

TEST_F(TokenMatrix, AlgNone) {
  TokenSpec s = good();
  s.alg = "none";
  refused(s, 401, "only RS256 and ES256");
}

TEST_F(TokenMatrix, HmacWithThePublicKeyAsSecret) {
  TokenSpec s = good();
  s.alg = "HS256";
  refused(s, 401, "only RS256 and ES256");
}

TEST_F(TokenMatrix, AlgThatDoesNotMatchTheKeyType) {
  TokenSpec s = good();
  s.alg = "ES256";  // signed with the EC key, but naming the RSA key
  s.kid = "rsa-1";
  refused(s, 401, "does not match the type of the key");
}

TEST_F(TokenMatrix, UnknownKid) {
  TokenSpec s = good();
  s.kid = "rsa-2";
  refused(s, 401, "key id (kid)");
}

TEST_F(TokenMatrix, BadSignature) {
  TokenSpec s = good();
  s.tamper = true;
  refused(s, 401, "signature does not verify");
}

TEST_F(TokenMatrix, Malformed) {
  for (const char* t : {"abc", "a.b", "a.b.c.d", "e30.e30.%%%", "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln"}) {
    SCOPED_TRACE(t);
    auto r = get(std::string("Bearer ") + t);
    EXPECT_EQ(r.status, 401) << r.body;
    EXPECT_NE(diagnostics(r.body).find("user token"), std::string::npos) << r.body;
    EXPECT_TRUE(r.header("www-authenticate").has_value());
  }
  auto basic = get("Basic dXNlcjpwYXNz");
  EXPECT_EQ(basic.status, 401) << basic.body;
  EXPECT_NE(diagnostics(basic.body).find("Bearer"), std::string::npos);
}

TEST_F(TokenMatrix, OrganisationMismatch) {
  TokenSpec s = good();
  s.org = test::dev_ods("gp");  // a GP practice's user through the health visitors' system
  refused(s, 403, "not the organisation of the client certificate");
}

TEST_F(TokenMatrix, JobRoleNotAllowedForTheSystem) {
  TokenSpec s = good();
  s.role = "R8009";  // Receptionist Access Role
  refused(s, 403, "may not act through a health-visiting system");
  s.role = "R9999";
  refused(s, 403, "is not one profiles/policy/users.json knows");
}

TEST(UserTokensLoad, BadOrMissingJwksStopsStartUp) {
  test::TempDir dir;
  auto rules = security::UserRules::load(std::string(GW_SOURCE_DIR) + "/profiles").value();
  config::UsersConfig u;
  u.issuers.push_back({"https://idp", "aud", dir.path() + "/missing.json"});
  auto r = security::UserTokens::load(u, rules);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("missing.json cannot be read"), std::string::npos) << r.error().message;
  auto write = [&](const std::string& text) {
    std::ofstream(dir.path() + "/k.json") << text;
    u.issuers[0].jwks_file = dir.path() + "/k.json";
    return security::UserTokens::load(u, rules);
  };
  for (auto [text, why] : std::vector<std::pair<std::string, std::string>>{
           {"not json", "not JSON"},
           {R"({"keys":[]})", "non-empty \"keys\""},
           {R"({"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]})", "kid is required"},
           {R"({"keys":[{"kty":"RSA","kid":"a","n":"AQAB","e":"AQAB"}]})", "RSA"},
           {R"({"keys":[{"kty":"oct","kid":"a","k":"c2VjcmV0"}]})", "kty must be RSA or EC"},
           {R"({"keys":[{"kty":"EC","kid":"a","crv":"P-384","x":"AA","y":"AA"}]})", "P-256"}}) {
    auto bad = write(text);
    ASSERT_FALSE(bad.has_value()) << text;
    EXPECT_NE(bad.error().message.find(why), std::string::npos) << bad.error().message;
  }
  // An EC point that is not on the curve.
  std::string zeros32 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
  auto off = write(R"({"keys":[{"kty":"EC","kid":"a","crv":"P-256","x":")" + zeros32 + R"(","y":")" + zeros32 + R"("}]})");
  EXPECT_FALSE(off.has_value());
  // The test issuer's own set loads.
  EXPECT_TRUE(security::UserTokens::load(test::test_users_config(), rules).has_value());
}

// A token whose signature verified once is not verified again (the cost a
// token adds to a request is that verification), but everything else is
// checked on every request: a later clock, another certificate's
// organisation, and any other bytes, even of the same token.
TEST(UserTokensCache, OnlyTheSignatureIsRememberedAndOnlyForTheSameBytes) {
  auto rules = security::UserRules::load(std::string(GW_SOURCE_DIR) + "/profiles").value();
  auto tokens = security::UserTokens::load(test::test_users_config(), rules).value();
  test::TokenSpec s;
  s.org = test::dev_ods("health-visiting");
  s.exp = 300;
  const std::string token = test::mint_token(s);
  security::Principal hv{s.org, "health-visiting", "client-health-visiting", std::nullopt};
  const auto now = std::chrono::system_clock::now();
  for (int i = 0; i < 3; ++i) {  // first verified, then remembered: the same answer
    auto p = tokens->verify(token, hv, now);
    ASSERT_TRUE(p.has_value()) << p.error().message;
    EXPECT_EQ(p->id, "user-1001");
  }
  // The same remembered token through another organisation's certificate.
  security::Principal gp{test::dev_ods("gp"), "gp", "client-gp", std::nullopt};
  auto other = tokens->verify(token, gp, now);
  ASSERT_FALSE(other.has_value());
  EXPECT_EQ(other.error().code, Errc::forbidden);
  // After its expiry and the leeway (60 s): refused although remembered.
  auto late = tokens->verify(token, hv, now + std::chrono::seconds(300 + 61));
  ASSERT_FALSE(late.has_value());
  EXPECT_NE(late.error().message.find("expired"), std::string::npos) << late.error().message;
  // Another signature on the same header and claims: verified afresh, and refused.
  std::string forged = token;
  char& last = forged[forged.size() - 2];
  last = last == 'A' ? 'B' : 'A';
  auto bad = tokens->verify(forged, hv, now);
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message.find("signature does not verify"), std::string::npos) << bad.error().message;
  // The good token still is.
  EXPECT_TRUE(tokens->verify(token, hv, now).has_value());
}

TEST(UserTokensConfig, IssuersAreCheckedByKey) {
  auto ok = config::parse_config(
      R"({"users":{"issuers":[{"issuer":"https://idp","audience":"cpis-gateway","jwks_file":"/etc/idp.json"}],"leeway_seconds":30}})");
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  EXPECT_EQ(ok->users.issuers.at(0).audience, "cpis-gateway");
  EXPECT_EQ(ok->users.leeway_seconds, 30);
  auto missing = config::parse_config(R"({"users":{"issuers":[{"issuer":"https://idp","jwks_file":"/x"}]}})");
  ASSERT_FALSE(missing.has_value());
  EXPECT_NE(missing.error().message.find("users.issuers[0]: missing required key 'audience' (at /users/issuers/0)"),
            std::string::npos)
      << missing.error().message;
  auto typo = config::parse_config(R"({"users":{"issuers":[{"issuer":"a","audience":"b","jwks":"/x"}]}})");
  ASSERT_FALSE(typo.has_value());
  EXPECT_NE(typo.error().message.find("users.issuers[0].jwks is not a known setting"), std::string::npos)
      << typo.error().message;
  auto leeway = config::parse_config(R"({"users":{"leeway_seconds":3600}})");
  ASSERT_FALSE(leeway.has_value());
  EXPECT_NE(leeway.error().message.find("users.leeway_seconds"), std::string::npos);
}

TEST(UserRules, ShippedRulesAndTheirChecks) {
  auto p = security::Policy::load(std::string(GW_SOURCE_DIR) + "/profiles");
  ASSERT_TRUE(p.has_value()) << p.error().message;
  const auto& u = p->users();
  security::Principal desktop{"RXX01", "unscheduled-care", "ed-desktop"};
  security::Principal engine{"RXX01", "unscheduled-care", "ed-symphony"};
  EXPECT_TRUE(u.person_required_for(desktop, security::kCpisUnscheduledQuery));
  EXPECT_FALSE(u.person_required_for(engine, security::kCpisUnscheduledQuery));
  EXPECT_TRUE(u.person_required_for(engine, security::kChronologyOperation));
  EXPECT_TRUE(u.person_required_for(engine, "Communication", "read"));
  EXPECT_FALSE(u.person_required_for(engine, "Patient", "read"));
  EXPECT_EQ(u.min_reason, 20u);
  auto bad = security::UserRules::parse(R"({"jobRoles":{"R1":{"roles":["gp"],"colour":"red"}}})");
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message.find("jobRoles.R1.colour"), std::string::npos);
  security::Policy q = security::Policy::parse(R"({"rules":[]})").value();
  auto unknown_role = security::UserRules::parse(R"({"jobRoles":{"R1":{"roles":["surgeon"]}}})").value();
  auto set = q.set_users(unknown_role);
  ASSERT_FALSE(set.has_value());
  EXPECT_NE(set.error().message.find("unknown role 'surgeon'"), std::string::npos);
}

}  // namespace
}  // namespace gw
