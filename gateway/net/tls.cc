#include "gateway/net/tls.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>
#include <stdexcept>

namespace gw::net {

namespace ssl = boost::asio::ssl;

namespace {

std::string cert_field(X509_NAME* name, int nid) {
  if (name == nullptr) return {};
  int idx = X509_NAME_get_index_by_NID(name, nid, -1);
  if (idx < 0) return {};
  X509_NAME_ENTRY* entry = X509_NAME_get_entry(name, idx);
  if (entry == nullptr) return {};
  unsigned char* utf8 = nullptr;
  int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(entry));
  if (len < 0 || utf8 == nullptr) return {};
  std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(len));
  OPENSSL_free(utf8);
  return out;
}

void restrict_protocols(ssl::context& ctx) {
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                  ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
}

}  // namespace

std::unique_ptr<ssl::context> make_server_context(const TlsFiles& f) {
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
  restrict_protocols(*ctx);
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(f.cert, ec);
  if (ec) throw std::runtime_error("cannot load TLS certificate chain '" + f.cert + "': " + ec.message());
  ctx->use_private_key_file(f.key, ssl::context::pem, ec);
  if (ec) throw std::runtime_error("cannot load TLS private key '" + f.key + "': " + ec.message());
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1)
    throw std::runtime_error("TLS private key '" + f.key + "' does not match certificate '" + f.cert + "'");
  ctx->load_verify_file(f.client_ca, ec);
  if (ec) throw std::runtime_error("cannot load client CA '" + f.client_ca + "': " + ec.message());
  // Tell clients which CA we accept so they pick the right certificate.
  if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(f.client_ca.c_str()))
    SSL_CTX_set_client_CA_list(ctx->native_handle(), names);
  ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  return ctx;
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

security::Principal principal_from_peer(const ssl_st* s) {
  security::Principal p;
  X509* cert = SSL_get0_peer_certificate(s);
  X509_NAME* subject = cert ? X509_get_subject_name(cert) : nullptr;
  p.ods = cert_field(subject, NID_organizationName);
  p.role = cert_field(subject, NID_organizationalUnitName);
  p.system = cert_field(subject, NID_commonName);
  return p;
}

}  // namespace gw::net
