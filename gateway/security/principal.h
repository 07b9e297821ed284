#pragma once
// Who is calling: taken from the verified client certificate subject
// (O = ODS code, OU = role, CN = system name), or from the plain-MLLP
// allow-list entry for legacy senders; and, when the system sent a verified
// user token (security/user_tokens.h), the person using it.
#include <optional>
#include <string>

namespace gw::security {

// The person behind a request, from a verified user token's claims.
struct Person {
  std::string id;        // sub: the user's id at the issuer
  std::string name;      // name
  std::string job_role;  // role: the national RBAC job-role code (profiles/policy/users.json)
  std::string issuer;    // iss

  // As the audit trail's person column keeps it: "id|job role|name|issuer"
  // (audit/balp.cc renders it back into a BALP agent).
  std::string recorded() const { return id + "|" + job_role + "|" + name + "|" + issuer; }
};

struct Principal {
  std::string ods;     // organisation ODS code (certificate O=)
  std::string role;    // one of the roles of DESIGN.md (certificate OU=)
  std::string system;  // system name (certificate CN=)
  std::optional<Person> person{};  // the user, when a verified token named one
};

}  // namespace gw::security
