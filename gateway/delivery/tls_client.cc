#include "gateway/delivery/tls_client.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>

namespace gw::delivery {

namespace ssl = boost::asio::ssl;

void restrict_protocols(ssl::context& ctx) {
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                  ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
}


Result<std::unique_ptr<ssl::context>> make_client_context(const std::string& ca_file, const std::string& cert_file,
                                                          const std::string& key_file) {
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
  restrict_protocols(*ctx);
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

}  // namespace gw::delivery
