#pragma once
// A test identity provider: an RSA 2048 and an EC P-256 key pair made with
// OpenSSL once per test process (nothing committed), their public JWK Set in
// a temporary file, and user tokens (JWTs) signed with them, well-formed or
// deliberately wrong for the token matrix.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gateway/config/config.h"

namespace gw::test {

inline constexpr const char* kTestIssuer = "https://idp.test.cpis-gateway.nhs.uk";
inline constexpr const char* kTestAudience = "cpis-gateway";

// The JWKS file (kid "rsa-1": RS256, kid "ec-1": ES256) and the config trusting it.
const std::string& test_jwks_file();
config::UsersConfig test_users_config();

struct TokenSpec {
  std::string alg = "RS256";  // RS256 | ES256 | none | HS256 (HMAC keyed with the RSA public JWK: alg confusion)
  std::string kid = "rsa-1";  // the key named in the header; the RSA key signs RS256, the EC key ES256
  std::string iss = kTestIssuer;
  std::string aud = kTestAudience;
  std::string sub = "user-1001";
  std::string name = "Alex Example";
  std::string role = "R8001";  // national RBAC job role
  std::string org;             // ODS code; empty: dev_ods(of the role the test uses)
  int64_t iat = 0, nbf = 0, exp = 300;  // seconds from now; nbf/iat omitted when nullopt-like (see omit_*)
  bool omit_nbf = false, omit_exp = false;
  bool tamper = false;  // flip a byte of the claims after signing
};
std::string mint_token(const TokenSpec& s);

// The ODS code of client-<role>.pem in the dev PKI (certs/make-dev-pki.sh).
std::string dev_ods(const std::string& cert_role);
// A job role (profiles/policy/users.json) that may act through a system of this role.
std::string job_role_for(const std::string& cert_role);
// {"Authorization", "Bearer <token>"} for a person at the organisation of
// client-<cert_role>.pem; job_role "" = job_role_for(cert_role).
std::pair<std::string, std::string> user_header(const std::string& cert_role, const std::string& job_role = "",
                                                const std::string& sub = "user-1001", const std::string& name = "Alex Example");

}  // namespace gw::test
