#pragma once
// The TLS pieces every listener and outbound connection shares, so the
// certificate policy is written once: TLS 1.2 and 1.3 only; servers require
// a client certificate that chains to the configured client CA; identity
// comes from the certificate subject (O = ODS code, OU = role, CN = system).
//
// Asio's ssl::context and OpenSSL's SSL are only forward-declared so that a
// header naming TlsFiles (listener options, config) stays free of Asio.
#include <memory>
#include <mutex>
#include <string>
#include <vector>

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
  // Certificate revocation lists (PEM), checked on every handshake for the
  // client certificate and every certificate of its chain. When any is
  // given, each issuer in a client's chain must have a CRL here: a chain
  // whose revocation cannot be checked is refused (fail closed).
  std::vector<std::string> crls;
};

// A server context: tls_server with a floor of TLS 1.2 (not tlsv12_server,
// which would also shut out 1.3), only AEAD suites with forward secrecy,
// verify_peer | verify_fail_if_no_peer_cert against files.client_ca (and its
// CRLs), and that CA advertised so clients pick the right certificate.
// Throws std::runtime_error naming the file that cannot be loaded: this runs
// at start-up, where a bad path is a configuration error.
std::unique_ptr<boost::asio::ssl::context> make_server_context(const TlsFiles& files);

// The server context of one listener, replaceable while it runs (SIGHUP):
// each new connection takes the context current at accept time and keeps it
// (an OpenSSL SSL holds its SSL_CTX), so established connections are never
// disturbed by a reload.
class ServerTls {
 public:
  // Throws like make_server_context.
  explicit ServerTls(TlsFiles files);
  std::shared_ptr<boost::asio::ssl::context> current() const;
  // Reads the same files again. On any problem (a missing or unparsable
  // file, a key that does not match) the error names it and the context in
  // use stays.
  Result<void> reload();
  const TlsFiles& files() const { return files_; }

 private:
  TlsFiles files_;
  mutable std::mutex mu_;
  std::shared_ptr<boost::asio::ssl::context> ctx_;
};

// The principal from the verified peer certificate of a completed handshake;
// empty fields when there is no certificate (callers that required one never
// see that case).
security::Principal principal_from_peer(const ssl_st* ssl);

}  // namespace gw::net
