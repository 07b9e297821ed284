#pragma once
// TLS for outbound connections (rest-hook receivers, MLLP endpoints), and the
// protocol floor every context of the gateway shares (listeners too): TLS 1.2
// and 1.3 only. Asio's ssl::context and OpenSSL's SSL are forward-declared.
#include <memory>
#include <string>

#include "gateway/common/result.h"

namespace boost::asio::ssl {
class context;
}
struct ssl_st;

namespace gw::delivery {

// TLS 1.2 and 1.3 only (never tlsv12, which would also shut out 1.3), ECDHE
// with AEAD suites only, no renegotiation, no compression. Throws
// std::runtime_error when this OpenSSL lacks the suites.
void restrict_protocols(boost::asio::ssl::context& ctx);

// A client context for outbound connections: the peer must chain to ca_file;
// cert_file/key_file (both or neither) are presented as the client
// certificate (the gateway presents its server certificate). The error names
// the file that could not be loaded.
Result<std::unique_ptr<boost::asio::ssl::context>> make_client_context(const std::string& ca_file,
                                                                       const std::string& cert_file,
                                                                       const std::string& key_file);

// Sets SNI and the name the server certificate must carry: an IP SAN when
// `host` is an address literal, a DNS name otherwise. Without this OpenSSL
// accepts any certificate from the CA, whoever it was issued to.
Result<void> expect_peer_name(ssl_st* ssl, const std::string& host);

// Why the peer's certificate was refused ("certificate has expired",
// "hostname mismatch"), for error texts after a failed handshake; empty
// when verification did not fail.
std::string peer_verify_failure(const ssl_st* ssl);
// "TLS handshake: <error> (<why the certificate was refused>)": what an
// outbound delivery records, so the subscription's error names the reason.
std::string handshake_failure_text(const ssl_st* ssl, const std::string& error);

}  // namespace gw::delivery
