#pragma once
// The person behind a request: a user token (Authorization: Bearer, a JWS
// compact JWT signed RS256 or ES256) from an identity provider the config
// trusts (users.issuers), verified with OpenSSL 3 against the issuer's JWK
// Set (kid selects the key). Only RS256 and ES256 are accepted and each key
// verifies only the algorithm of its own type, so "alg: none" and HMAC with
// a public key as the secret are impossible, not merely refused. Then the
// claims: iss trusted, aud the issuer's audience, exp / nbf / iat within the
// leeway, sub / name / role / org present, org equal to the client
// certificate's O=, and the job role (role) one that profiles/policy/
// users.json lets act through a system of the certificate's OU= role.
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/common/result.h"
#include "gateway/config/config.h"
#include "gateway/security/principal.h"
#include "gateway/security/user_rules.h"

namespace gw::security {

class UserTokens {
 public:
  // Reads every issuer's JWKS file. A missing or unreadable file, a key
  // that cannot be built (RSA under 2048 bits, an EC key off P-256), a key
  // without kid, or a file without a usable key is an error naming the file.
  static Result<std::shared_ptr<const UserTokens>> load(const config::UsersConfig& users, const UserRules& rules);

  // The person the token names, or why not: Errc::unauthenticated (401: malformed,
  // unknown issuer or kid, bad signature, wrong audience, expired, not yet
  // valid, issued in the future, a claim missing) or Errc::forbidden (403:
  // another organisation's user, a job role that may not act through this
  // system). Messages never repeat the token.
  Result<Person> verify(std::string_view token, const Principal& system,
                        std::chrono::system_clock::time_point now = std::chrono::system_clock::now()) const;

  // The WWW-Authenticate value of a 401 (RFC 6750), with the reason.
  static std::string challenge(const Error& e);

  bool empty() const;

  UserTokens();
  ~UserTokens();
  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// "Bearer <token>" -> the token; nullopt when the header is another scheme
// or carries no token.
std::optional<std::string_view> bearer_token(std::string_view authorization);

}  // namespace gw::security
