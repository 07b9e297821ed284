#include "tests/support/user_tokens_kit.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <stdexcept>

namespace gw::test {

namespace {

std::string b64url(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) c = c == '+' ? '-' : c == '/' ? '_' : c;
  return out;
}

std::string bn_bytes(const BIGNUM* bn, int pad = 0) {
  std::string out(static_cast<size_t>(pad ? pad : BN_num_bytes(bn)), '\0');
  if (pad) BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), pad);
  else BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

struct Idp {
  EVP_PKEY* rsa = nullptr;
  EVP_PKEY* ec = nullptr;
  std::string rsa_jwk, ec_jwk, jwks_path;
};

const Idp& idp() {
  static Idp i;
  static std::once_flag once;
  std::call_once(once, [] {
    i.rsa = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048});
    i.ec = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    if (!i.rsa || !i.ec) throw std::runtime_error("test IdP: key generation failed");
    BIGNUM *n = nullptr, *e = nullptr;
    EVP_PKEY_get_bn_param(i.rsa, OSSL_PKEY_PARAM_RSA_N, &n);
    EVP_PKEY_get_bn_param(i.rsa, OSSL_PKEY_PARAM_RSA_E, &e);
    i.rsa_jwk = R"({"kty":"RSA","kid":"rsa-1","use":"sig","alg":"RS256","n":")" + b64url(bn_bytes(n)) + R"(","e":")" +
                b64url(bn_bytes(e)) + R"("})";
    BN_free(n);
    BN_free(e);
    unsigned char pub[133];
    size_t len = 0;
    EVP_PKEY_get_octet_string_param(i.ec, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub, &len);
    if (len != 65) throw std::runtime_error("test IdP: unexpected EC point size");
    std::string point(reinterpret_cast<char*>(pub), len);
    i.ec_jwk = R"({"kty":"EC","kid":"ec-1","use":"sig","alg":"ES256","crv":"P-256","x":")" + b64url(point.substr(1, 32)) +
               R"(","y":")" + b64url(point.substr(33, 32)) + R"("})";
    i.jwks_path = "/tmp/gw-test-idp-" + std::to_string(::getpid()) + ".jwks.json";
    std::ofstream(i.jwks_path) << R"({"keys":[)" << i.rsa_jwk << "," << i.ec_jwk << "]}";
  });
  return i;
}

std::string sign(EVP_PKEY* key, bool ec, std::string_view data) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t len = 0;
  std::string sig;
  if (EVP_DigestSignInit_ex(ctx, nullptr, "SHA256", nullptr, nullptr, key, nullptr) == 1 &&
      EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1) {
    sig.resize(len);
    EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                   reinterpret_cast<const unsigned char*>(data.data()), data.size());
    sig.resize(len);
  }
  EVP_MD_CTX_free(ctx);
  if (!ec) return sig;
  const unsigned char* p = reinterpret_cast<const unsigned char*>(sig.data());
  ECDSA_SIG* s = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
  std::string raw = bn_bytes(ECDSA_SIG_get0_r(s), 32) + bn_bytes(ECDSA_SIG_get0_s(s), 32);
  ECDSA_SIG_free(s);
  return raw;
}

std::string q(const std::string& s) { return "\"" + s + "\""; }

}  // namespace

const std::string& test_jwks_file() { return idp().jwks_path; }

config::UsersConfig test_users_config() {
  config::UsersConfig u;
  u.issuers.push_back({kTestIssuer, kTestAudience, test_jwks_file()});
  return u;
}

std::string mint_token(const TokenSpec& s) {
  const Idp& i = idp();
  int64_t now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::string header = "{\"alg\":" + q(s.alg) + ",\"typ\":\"JWT\",\"kid\":" + q(s.kid) + "}";
  std::string claims = "{\"iss\":" + q(s.iss) + ",\"aud\":" + q(s.aud) + ",\"sub\":" + q(s.sub) + ",\"name\":" +
                       q(s.name) + ",\"role\":" + q(s.role) + ",\"org\":" + q(s.org) +
                       ",\"iat\":" + std::to_string(now + s.iat);
  if (!s.omit_nbf) claims += ",\"nbf\":" + std::to_string(now + s.nbf);
  if (!s.omit_exp) claims += ",\"exp\":" + std::to_string(now + s.exp);
  claims += "}";
  std::string signing = b64url(header) + "." + b64url(claims);
  std::string sig;
  if (s.alg == "RS256") sig = sign(i.rsa, false, signing);
  else if (s.alg == "ES256") sig = sign(i.ec, true, signing);
  else if (s.alg == "HS256") {
    // The classic alg confusion: HMAC keyed with the issuer's public key.
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t len = 0;
    EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, i.rsa_jwk.data(), i.rsa_jwk.size(),
              reinterpret_cast<const unsigned char*>(signing.data()), signing.size(), mac, sizeof mac, &len);
    sig.assign(reinterpret_cast<char*>(mac), len);
  }
  if (s.tamper) {
    claims.replace(claims.find(s.sub), s.sub.size(), std::string(s.sub.size(), 'x'));
    signing = b64url(header) + "." + b64url(claims);
  }
  return signing + "." + b64url(sig);
}

std::string dev_ods(const std::string& cert_role) {
  static const std::map<std::string, std::string> kOds = {
      {"local-authority", "L0001"},    {"unscheduled-care", "RXX01"}, {"unscheduled-care-desktop", "RXX01"},
      {"gp", "B86001"},                {"health-visiting", "RXX02"},  {"midwifery", "RXX03"},
      {"school-nursing", "RXX04"},     {"paediatric-liaison", "RXX05"}, {"lac-health", "RXX06"},
      {"camhs", "RXX07"},              {"adult-mental-health", "RXX08"}, {"substance-misuse", "RXX09"},
      {"sexual-health", "RXX10"},      {"commissioner", "QWO"},       {"integration", "RXX"},
      {"admin", "RXX"},                {"local-authority-2", "LA372"}};
  auto it = kOds.find(cert_role);
  if (it == kOds.end()) throw std::logic_error("no dev certificate client-" + cert_role);
  return it->second;
}

std::string job_role_for(const std::string& cert_role) {
  if (cert_role == "admin" || cert_role == "integration") return "R8015";
  if (cert_role == "commissioner") return "R5105";
  if (cert_role.rfind("local-authority", 0) == 0) return "R0243";
  return "R8001";
}

std::pair<std::string, std::string> user_header(const std::string& cert_role, const std::string& job_role,
                                                const std::string& sub, const std::string& name) {
  TokenSpec s;
  s.org = dev_ods(cert_role);
  s.role = job_role.empty() ? job_role_for(cert_role) : job_role;
  s.sub = sub;
  s.name = name;
  return {"Authorization", "Bearer " + mint_token(s)};
}

}  // namespace gw::test
