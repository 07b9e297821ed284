#pragma once
// The TLS pieces every listener and outbound connection shares, so the
// certificate policy is written once: TLS 1.2 and 1.3 only; servers require
// a client certificate that chains to the configured client CA; identity
// comes from the certificate subject (O = ODS code, OU = role, CN = system).
//
// Asio's ssl::context and OpenSSL's SSL are only forward-declared so that a
// header naming TlsFiles (listener options, config) stays free of Asio.
#include <memory>
#include <string>

#include "gateway/common/result.h"
#include "gateway/security/principal.h"

namespace boost::asio::ssl {
class context;
}
struct ssl_st;

namespace gw::net {

struct TlsFiles {
  std::string cert;       // server certificate chain (PEM)
  std::string key;        // server private key (PEM)
  std::string client_ca;  // CA that client certificates must chain to (PEM)
};

// A server context: tls_server with a floor of TLS 1.2 (not tlsv12_server,
// which would also shut out 1.3), verify_peer | verify_fail_if_no_peer_cert
// against files.client_ca, and that CA advertised so clients pick the right
// certificate. Throws std::runtime_error naming the file that cannot be
// loaded: this runs at start-up, where a bad path is a configuration error.
std::unique_ptr<boost::asio::ssl::context> make_server_context(const TlsFiles& files);

// The principal from the verified peer certificate of a completed handshake;
// empty fields when there is no certificate (callers that required one never
// see that case).
security::Principal principal_from_peer(const ssl_st* ssl);

}  // namespace gw::net
