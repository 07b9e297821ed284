#include "gateway/security/user_tokens.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <unordered_map>

#include "gateway/common/json.h"

namespace gw::security {

namespace {

// A token larger than this is not a user token (the header limit bounds it too).
constexpr size_t kMaxTokenBytes = 16 * 1024;

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

enum class Alg { rs256, es256 };

struct Key {
  Alg alg;
  Pkey pkey;
};

struct Issuer {
  std::string audience;
  std::map<std::string, Key, std::less<>> keys;  // kid -> key
};

Error unauthenticated(std::string msg) { return make_error(Errc::unauthenticated, std::move(msg), "Authorization"); }
Error forbidden(std::string msg) { return make_error(Errc::forbidden, std::move(msg), "Authorization"); }

// RFC 7515 base64url without padding; nullopt on any other character.
std::optional<std::string> base64url(std::string_view in) {
  if (in.size() % 4 == 1) return std::nullopt;
  std::string b64;
  b64.reserve(in.size() + 3);
  for (char c : in) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) b64.push_back(c);
    else if (c == '-') b64.push_back('+');
    else if (c == '_') b64.push_back('/');
    else return std::nullopt;
  }
  size_t pad = (4 - b64.size() % 4) % 4;
  b64.append(pad, '=');
  std::string out(b64.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(b64.data()),
                          static_cast<int>(b64.size()));
  if (n < 0 || static_cast<size_t>(n) < pad) return std::nullopt;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

struct BldFree {
  void operator()(OSSL_PARAM_BLD* b) const { OSSL_PARAM_BLD_free(b); }
};
struct ParamFree {
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
struct CtxFree {
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};
struct BnFree {
  void operator()(BIGNUM* b) const { BN_free(b); }
};

Pkey from_params(const char* type, OSSL_PARAM_BLD* bld) {
  std::unique_ptr<OSSL_PARAM, ParamFree> params(OSSL_PARAM_BLD_to_param(bld));
  std::unique_ptr<EVP_PKEY_CTX, CtxFree> ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* pkey = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &pkey, EVP_PKEY_PUBLIC_KEY, params.get()) != 1)
    return nullptr;
  Pkey out(pkey);
  // The point is on the curve, the modulus is odd and so on.
  std::unique_ptr<EVP_PKEY_CTX, CtxFree> check(EVP_PKEY_CTX_new_from_pkey(nullptr, out.get(), nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) return nullptr;
  return out;
}

// One JWK (RFC 7517/7518) as a verification key, or why not.
Result<Key> key_of(const json::Value& jwk, const std::string& where) {
  auto field = [&](std::string_view name) -> std::optional<std::string> {
    auto s = json::get_string(jwk, name);
    if (!s) return std::nullopt;
    return base64url(*s);
  };
  auto kty = json::get_string(jwk, "kty").value_or("");
  if (auto use = json::get_string(jwk, "use"); use && *use != "sig")
    return make_error(Errc::invalid_input, where + ".use must be \"sig\"", where);
  std::string_view alg = json::get_string(jwk, "alg").value_or("");
  std::unique_ptr<OSSL_PARAM_BLD, BldFree> bld(OSSL_PARAM_BLD_new());
  if (kty == "RSA") {
    if (!alg.empty() && alg != "RS256") return make_error(Errc::invalid_input, where + ".alg must be RS256 for an RSA key", where);
    auto n = field("n"), e = field("e");
    if (!n || !e || n->empty() || e->empty())
      return make_error(Errc::invalid_input, where + " needs n and e (base64url)", where);
    std::unique_ptr<BIGNUM, BnFree> bn(BN_bin2bn(reinterpret_cast<const unsigned char*>(n->data()), static_cast<int>(n->size()), nullptr));
    std::unique_ptr<BIGNUM, BnFree> be(BN_bin2bn(reinterpret_cast<const unsigned char*>(e->data()), static_cast<int>(e->size()), nullptr));
    if (!bn || !be || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn.get()) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, be.get()) != 1)
      return make_error(Errc::invalid_input, where + ": the RSA key cannot be built", where);
    Pkey pkey = from_params("RSA", bld.get());
    if (!pkey) return make_error(Errc::invalid_input, where + ": not a valid RSA public key", where);
    if (EVP_PKEY_get_bits(pkey.get()) < 2048)
      return make_error(Errc::invalid_input, where + ": RSA keys under 2048 bits are not accepted", where);
    return Key{Alg::rs256, std::move(pkey)};
  }
  if (kty == "EC") {
    if (!alg.empty() && alg != "ES256") return make_error(Errc::invalid_input, where + ".alg must be ES256 for an EC key", where);
    if (json::get_string(jwk, "crv").value_or("") != "P-256")
      return make_error(Errc::invalid_input, where + ".crv must be P-256 (ES256)", where);
    auto x = field("x"), y = field("y");
    if (!x || !y || x->size() != 32 || y->size() != 32)
      return make_error(Errc::invalid_input, where + " needs x and y of 32 bytes each (base64url)", where);
    std::string point = "\x04" + *x + *y;
    if (OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) != 1)
      return make_error(Errc::invalid_input, where + ": the EC key cannot be built", where);
    Pkey pkey = from_params("EC", bld.get());
    if (!pkey) return make_error(Errc::invalid_input, where + ": not a valid P-256 public key", where);
    return Key{Alg::es256, std::move(pkey)};
  }
  return make_error(Errc::invalid_input, where + ".kty must be RSA or EC", where);
}

Result<Issuer> load_jwks(const config::TrustedIssuer& t) {
  std::ifstream in(t.jwks_file, std::ios::binary);
  if (!in) return make_error(Errc::invalid_input, "users.issuers: jwks_file " + t.jwks_file + " cannot be read");
  std::stringstream ss;
  ss << in.rdbuf();
  auto doc = json::parse(ss.str());
  const std::string name = "jwks_file " + t.jwks_file;
  if (!doc) return make_error(Errc::invalid_input, name + ": not JSON: " + doc.error().message);
  const json::Value* keys = doc->IsObject() ? json::member(*doc, "keys") : nullptr;
  if (!keys || !keys->IsArray() || keys->Empty())
    return make_error(Errc::invalid_input, name + ": a JWK Set needs a non-empty \"keys\" array");
  Issuer out;
  out.audience = t.audience;
  for (json::SizeType i = 0; i < keys->Size(); ++i) {
    std::string where = name + ": keys[" + std::to_string(i) + "]";
    const json::Value& jwk = (*keys)[i];
    if (!jwk.IsObject()) return make_error(Errc::invalid_input, where + " must be an object");
    auto kid = json::get_string(jwk, "kid");
    if (!kid || kid->empty()) return make_error(Errc::invalid_input, where + ".kid is required (it selects the key)");
    auto k = key_of(jwk, where);
    if (!k) {
      ERR_clear_error();
      return k.error();
    }
    if (!out.keys.emplace(std::string(*kid), std::move(*k)).second)
      return make_error(Errc::invalid_input, where + ".kid is used by another key of the set");
  }
  return out;
}

bool verify_signature(const Key& key, std::string_view signed_part, const std::string& sig) {
  std::string der;
  if (key.alg == Alg::es256) {
    // JWS carries r || s (RFC 7518 3.4); OpenSSL verifies DER.
    if (sig.size() != 64) return false;
    ECDSA_SIG* s = ECDSA_SIG_new();
    BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(sig.data()), 32, nullptr);
    BIGNUM* ss = BN_bin2bn(reinterpret_cast<const unsigned char*>(sig.data()) + 32, 32, nullptr);
    if (!s || !r || !ss || ECDSA_SIG_set0(s, r, ss) != 1) {
      BN_free(r);
      BN_free(ss);
      ECDSA_SIG_free(s);
      return false;
    }
    unsigned char* buf = nullptr;
    int len = i2d_ECDSA_SIG(s, &buf);
    ECDSA_SIG_free(s);
    if (len <= 0) return false;
    der.assign(reinterpret_cast<char*>(buf), static_cast<size_t>(len));
    OPENSSL_free(buf);
  }
  const std::string& bytes = key.alg == Alg::es256 ? der : sig;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = ctx && EVP_DigestVerifyInit_ex(ctx, nullptr, "SHA256", nullptr, nullptr, key.pkey.get(), nullptr) == 1 &&
            EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(),
                             reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size()) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

std::optional<double> numeric_date(const json::Value& claims, std::string_view name) {
  const json::Value* v = json::member(claims, name);
  if (!v || !v->IsNumber()) return std::nullopt;
  return v->GetDouble();
}

bool audience_has(const json::Value& claims, std::string_view want) {
  const json::Value* aud = json::member(claims, "aud");
  if (!aud) return false;
  if (aud->IsString()) return json::as_view(*aud) == want;
  if (!aud->IsArray()) return false;
  for (const auto& a : aud->GetArray())
    if (a.IsString() && json::as_view(a) == want) return true;
  return false;
}

}  // namespace

namespace {

// Tokens whose signature has verified. A clinical system sends its user's
// token with every request for the token's lifetime, and the signature check
// (an RSA or ECDSA verification) is what a token costs a request
// (tests/bench/user_token_load). Only the signature is remembered, keyed by
// the SHA-256 of the whole token (header, claims and signature, so any other
// bytes verify afresh; the cache holds no usable token) until the token's
// exp; every claim check (times, audience, the organisation against this
// request's certificate, the job role) still runs on every request. A reload
// of the issuers' keys builds a new UserTokens, and so an empty cache.
class VerifiedSignatures {
 public:
  static constexpr size_t kCapacity = 8192;

  static std::optional<std::string> digest(std::string_view token) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_Digest(token.data(), token.size(), md, &n, EVP_sha256(), nullptr) != 1) return std::nullopt;
    return std::string(reinterpret_cast<const char*>(md), n);
  }
  bool contains(const std::string& d, double now) const {
    std::lock_guard lock(m_);
    auto it = seen_.find(d);
    return it != seen_.end() && now <= it->second;
  }
  void add(std::string d, double until, double now) {
    std::lock_guard lock(m_);
    if (seen_.size() >= kCapacity) {
      std::erase_if(seen_, [now](const auto& e) { return e.second < now; });
      if (seen_.size() >= kCapacity) seen_.clear();  // all live: start again rather than grow
    }
    seen_[std::move(d)] = until;
  }

 private:
  mutable std::mutex m_;
  std::unordered_map<std::string, double> seen_;  // SHA-256 of the token -> its exp + leeway
};

}  // namespace

struct UserTokens::Impl {
  std::map<std::string, Issuer, std::less<>> issuers;  // iss -> keys
  int64_t leeway = 60;
  UserRules rules;
  VerifiedSignatures verified;
};

UserTokens::UserTokens() : impl_(std::make_unique<Impl>()) {}
UserTokens::~UserTokens() = default;

bool UserTokens::empty() const { return impl_->issuers.empty(); }

Result<std::shared_ptr<const UserTokens>> UserTokens::load(const config::UsersConfig& users, const UserRules& rules) {
  auto out = std::make_shared<UserTokens>();
  out->impl_->leeway = users.leeway_seconds;
  out->impl_->rules = rules;
  for (const auto& t : users.issuers) {
    auto i = load_jwks(t);
    if (!i) return i.error();
    out->impl_->issuers.emplace(t.issuer, std::move(*i));
  }
  return std::shared_ptr<const UserTokens>(std::move(out));
}

Result<Person> UserTokens::verify(std::string_view token, const Principal& system,
                                  std::chrono::system_clock::time_point now) const {
  if (impl_->issuers.empty())
    return unauthenticated("this gateway trusts no identity provider (users.issuers), so it cannot accept a user token");
  if (token.size() > kMaxTokenBytes) return unauthenticated("the user token is too large");
  size_t d1 = token.find('.'), d2 = d1 == std::string_view::npos ? d1 : token.find('.', d1 + 1);
  if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos)
    return unauthenticated("the user token is not a JWS in compact form (header.payload.signature)");
  auto header_text = base64url(token.substr(0, d1));
  auto claims_text = base64url(token.substr(d1 + 1, d2 - d1 - 1));
  auto sig = base64url(token.substr(d2 + 1));
  if (!header_text || !claims_text || !sig)
    return unauthenticated("the user token is malformed: a part is not base64url");
  auto header = json::parse(*header_text);
  auto claims = json::parse(*claims_text);
  if (!header || !header->IsObject() || !claims || !claims->IsObject())
    return unauthenticated("the user token is malformed: its header or claims are not a JSON object");

  // The algorithm is pinned by the key, never chosen by the token: only
  // RS256 and ES256 are known at all, and the key found must be of that type.
  std::string_view alg = json::get_string(*header, "alg").value_or("");
  if (alg != "RS256" && alg != "ES256")
    return unauthenticated("the user token's alg '" + std::string(alg.substr(0, 16)) +
                           "' is not accepted: only RS256 and ES256 are");
  if (json::member(*header, "crit"))
    return unauthenticated("the user token names critical header parameters this gateway does not implement");
  std::string_view iss = json::get_string(*claims, "iss").value_or("");
  auto issuer = impl_->issuers.find(iss);
  if (issuer == impl_->issuers.end()) return unauthenticated("the user token's issuer (iss) is not a trusted identity provider");
  std::string_view kid = json::get_string(*header, "kid").value_or("");
  auto key = issuer->second.keys.find(kid);
  if (kid.empty() || key == issuer->second.keys.end())
    return unauthenticated("the user token's key id (kid) is not one of its issuer's keys");
  if ((key->second.alg == Alg::rs256) != (alg == "RS256"))
    return unauthenticated("the user token's alg does not match the type of the key its kid names");
  const double t = std::chrono::duration<double>(now.time_since_epoch()).count();
  const double leeway = static_cast<double>(impl_->leeway);
  auto digest = VerifiedSignatures::digest(token);
  if (!digest || !impl_->verified.contains(*digest, t)) {
    bool good = verify_signature(key->second, token.substr(0, d2), *sig);
    ERR_clear_error();  // a failed verify leaves errors that the TLS code on this thread must not see
    if (!good) return unauthenticated("the user token's signature does not verify");
    if (auto exp = numeric_date(*claims, "exp"); exp && digest) impl_->verified.add(std::move(*digest), *exp + leeway, t);
  }

  if (!audience_has(*claims, issuer->second.audience))
    return unauthenticated("the user token is not meant for this gateway (aud)");
  auto exp = numeric_date(*claims, "exp");
  if (!exp) return unauthenticated("the user token has no expiry (exp)");
  if (t > *exp + leeway) return unauthenticated("the user token has expired");
  if (auto nbf = numeric_date(*claims, "nbf"); nbf && t + leeway < *nbf)
    return unauthenticated("the user token is not valid yet (nbf)");
  if (auto iat = numeric_date(*claims, "iat"); iat && t + leeway < *iat)
    return unauthenticated("the user token was issued in the future (iat)");
  else if (json::member(*claims, "iat") && !iat)
    return unauthenticated("the user token's iat is not a number");

  Person p;
  for (auto [name, out] : {std::pair<const char*, std::string*>{"sub", &p.id}, {"name", &p.name}, {"role", &p.job_role}}) {
    auto v = json::get_string(*claims, name);
    if (!v || v->empty() || v->size() > 256 || v->find('|') != std::string_view::npos)
      return unauthenticated(std::string("the user token's ") + name + " claim is missing or not a plain string");
    *out = std::string(*v);
  }
  p.issuer = std::string(iss);
  auto org = json::get_string(*claims, "org");
  if (!org || org->empty()) return unauthenticated("the user token has no organisation (org)");
  if (*org != system.ods)
    return forbidden("the user token's organisation (org) is not the organisation of the client certificate (O=)");
  const UserRules::JobRole* jr = impl_->rules.job_role(p.job_role);
  if (!jr) return forbidden("the user's job role " + p.job_role + " is not one profiles/policy/users.json knows");
  if (std::find(jr->roles.begin(), jr->roles.end(), system.role) == jr->roles.end())
    return forbidden("the user's job role " + p.job_role + " (" + jr->display + ") may not act through a " + system.role +
                     " system");
  return p;
}

std::string UserTokens::challenge(const Error& e) {
  std::string desc;
  for (char c : e.message) desc.push_back(c == '"' || c == '\\' ? '\'' : c);
  return "Bearer realm=\"cpis-gateway\", error=\"invalid_token\", error_description=\"" + desc + "\"";
}

std::optional<std::string_view> bearer_token(std::string_view h) {
  while (!h.empty() && h.front() == ' ') h.remove_prefix(1);
  if (h.size() < 7) return std::nullopt;
  std::string scheme(h.substr(0, 6));
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme != "bearer" || h[6] != ' ') return std::nullopt;
  h.remove_prefix(7);
  while (!h.empty() && h.front() == ' ') h.remove_prefix(1);
  while (!h.empty() && h.back() == ' ') h.remove_suffix(1);
  if (h.empty()) return std::nullopt;
  return h;
}

}  // namespace gw::security
