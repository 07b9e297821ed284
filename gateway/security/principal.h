#pragma once
// Who is calling: taken from the verified client certificate subject
// (O = ODS code, OU = role, CN = system name), or from the plain-MLLP
// allow-list entry for legacy senders.
#include <string>

namespace gw::security {

struct Principal {
  std::string ods;     // organisation ODS code (certificate O=)
  std::string role;    // one of the roles of DESIGN.md (certificate OU=)
  std::string system;  // system name (certificate CN=)
};

}  // namespace gw::security
