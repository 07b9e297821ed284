#include "gateway/net/tls.h"

#include "gateway/delivery/tls_client.h"

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

// CRLs join the verification store; with them, every certificate of a
// client's chain is checked against its issuer's CRL on every handshake.
void load_crls(ssl::context& ctx, const std::vector<std::string>& files) {
  if (files.empty()) return;
  X509_STORE* store = SSL_CTX_get_cert_store(ctx.native_handle());
  X509_LOOKUP* lookup = X509_STORE_add_lookup(store, X509_LOOKUP_file());
  if (lookup == nullptr) throw std::runtime_error("cannot prepare the certificate store for CRLs");
  for (const auto& f : files) {
    if (X509_load_crl_file(lookup, f.c_str(), X509_FILETYPE_PEM) <= 0)
      throw std::runtime_error("cannot load CRL '" + f + "': not a readable PEM certificate revocation list");
  }
  X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
}

}  // namespace

std::unique_ptr<ssl::context> make_server_context(const TlsFiles& f) {
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
  delivery::restrict_protocols(*ctx);
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
  load_crls(*ctx, f.crls);
  ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  // No session resumption: every connection verifies its client certificate
  // (and the CRLs) in full. Without this the server issued TLS 1.3 tickets,
  // and a client that offered one back (node's https agent does) got
  // "session id context uninitialized" and an internal_error alert. The id
  // context makes an offered session a plain full handshake, never an error.
  SSL_CTX_set_session_cache_mode(ctx->native_handle(), SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ctx->native_handle(), SSL_OP_NO_TICKET);
  SSL_CTX_set_num_tickets(ctx->native_handle(), 0);
  static const unsigned char kSessionContext[] = "cpis-gateway";
  SSL_CTX_set_session_id_context(ctx->native_handle(), kSessionContext, sizeof kSessionContext - 1);
  return ctx;
}

ServerTls::ServerTls(TlsFiles files) : files_(std::move(files)), ctx_(make_server_context(files_)) {}

std::shared_ptr<ssl::context> ServerTls::current() const {
  std::lock_guard lock(mu_);
  return ctx_;
}

Result<void> ServerTls::reload() {
  std::shared_ptr<ssl::context> fresh;
  try {
    fresh = make_server_context(files_);
  } catch (const std::exception& e) {
    return make_error(Errc::invalid_input, e.what());
  }
  std::lock_guard lock(mu_);
  ctx_ = std::move(fresh);
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
