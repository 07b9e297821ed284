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

// A private copy of the dev PKI (CA key included) for tests that change it,
// such as a revocation, without disturbing tests running beside them.
void copy_dev_pki(const std::string& into);
// certs/make-dev-pki.sh revoke DIR ROLE: revokes client-ROLE.pem, rewrites DIR/crl.pem.
void revoke_client(const std::string& pki_dir, const std::string& role);

}  // namespace gw::test
