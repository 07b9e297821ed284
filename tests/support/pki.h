#pragma once
// The dev PKI (certs/make-dev-pki.sh) minted once per test process into a
// fresh temporary directory, so no key ever lives in the tree.
#include <string>

namespace gw::test {

// Directory holding ca.pem, server.pem/.key, client-<role>.pem/.key,
// other-ca.pem and client-foreign.pem/.key. Aborts the process with a message
// when the script fails: every TLS test would fail anyway, and one clear line
// beats a hundred handshake errors.
const std::string& dev_pki_dir();

}  // namespace gw::test
