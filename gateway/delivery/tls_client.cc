#include "gateway/delivery/tls_client.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>
#include <stdexcept>

namespace gw::delivery {

namespace ssl = boost::asio::ssl;

namespace {

// TLS 1.2 suites: ECDHE key exchange (forward secrecy) with an AEAD cipher
// only, as NCSC guidance and testssl.sh expect; every TLS 1.3 suite already
// is. CBC, static-RSA and SHA-1 suites stay out even though OpenSSL's
// default list still carries them.
constexpr const char* kTls12Suites =
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256";
constexpr const char* kGroups = "X25519:P-256:P-384";

}  // namespace

void restrict_protocols(ssl::context& ctx) {
  SSL_CTX* c = ctx.native_handle();
  SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                  ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use |
                  ssl::context::no_compression);
  // Renegotiation lets a peer make the server redo handshakes at will (a
  // cheap CPU attack) and is never needed by a client of this gateway.
  SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_set_cipher_list(c, kTls12Suites) != 1 || SSL_CTX_set1_groups_list(c, kGroups) != 1)
    throw std::runtime_error("this OpenSSL lacks the AEAD/ECDHE suites the gateway requires");
}

Result<std::unique_ptr<ssl::context>> make_client_context(const std::string& ca_file, const std::string& cert_file,
                                                          const std::string& key_file) {
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
  try {
    restrict_protocols(*ctx);
  } catch (const std::exception& e) {
    return make_error(Errc::internal, e.what());
  }
  boost::system::error_code ec;
  ctx->load_verify_file(ca_file, ec);
  if (ec) return make_error(Errc::invalid_input, "cannot load CA '" + ca_file + "': " + ec.message());
  ctx->set_verify_mode(ssl::verify_peer);
  if (cert_file.empty() != key_file.empty())
    return make_error(Errc::invalid_input, "a client certificate needs both a certificate and a key file");
  if (!cert_file.empty()) {
    ctx->use_certificate_chain_file(cert_file, ec);
    if (ec) return make_error(Errc::invalid_input, "cannot load certificate '" + cert_file + "': " + ec.message());
    ctx->use_private_key_file(key_file, ssl::context::pem, ec);
    if (ec) return make_error(Errc::invalid_input, "cannot load key '" + key_file + "': " + ec.message());
    if (SSL_CTX_check_private_key(ctx->native_handle()) != 1)
      return make_error(Errc::invalid_input, "key '" + key_file + "' does not match certificate '" + cert_file + "'");
  }
  return ctx;
}

Result<void> expect_peer_name(ssl_st* s, const std::string& host) {
  boost::system::error_code ec;
  boost::asio::ip::make_address(host, ec);
  X509_VERIFY_PARAM* param = SSL_get0_param(s);
  if (!ec) {
    if (X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) != 1)
      return make_error(Errc::invalid_input, "cannot expect IP address '" + host + "' in the peer certificate");
    return {};
  }
  // SNI only carries DNS names, never address literals.
  if (SSL_set_tlsext_host_name(s, host.c_str()) != 1 || X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0) != 1)
    return make_error(Errc::invalid_input, "cannot expect host name '" + host + "' in the peer certificate");
  return {};
}

std::string peer_verify_failure(const ssl_st* s) {
  long result = SSL_get_verify_result(s);
  if (result == X509_V_OK) return {};
  return X509_verify_cert_error_string(result);
}

std::string handshake_failure_text(const ssl_st* s, const std::string& error) {
  std::string why = peer_verify_failure(s);
  return "TLS handshake: " + error + (why.empty() ? "" : " (" + why + ")");
}

}  // namespace gw::delivery
