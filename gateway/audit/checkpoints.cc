#include "gateway/audit/checkpoints.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <future>
#include <memory>

#include "gateway/common/clock.h"
#include "gateway/common/log.h"
#include "gateway/audit/audit_rows.h"
#include "gateway/common/text_file.h"
#include "gateway/store/audit_chain.h"

namespace gw::audit {

namespace {

template <class T, void (*F)(T*)>
struct Free {
  void operator()(T* p) const { F(p); }
};
using Bio = std::unique_ptr<BIO, Free<BIO, BIO_free_all>>;
using Pkey = std::unique_ptr<EVP_PKEY, Free<EVP_PKEY, EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Free<X509, X509_free>>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, Free<EVP_MD_CTX, EVP_MD_CTX_free>>;
using Store = std::unique_ptr<X509_STORE, Free<X509_STORE, X509_STORE_free>>;
using StoreCtx = std::unique_ptr<X509_STORE_CTX, Free<X509_STORE_CTX, X509_STORE_CTX_free>>;

std::string openssl_reason() {
  unsigned long e = ERR_get_error();
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}


// The first certificate of a PEM chain (the signer's own).
Result<X509Ptr> first_cert(std::string_view pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return make_error(Errc::invalid_input, "no certificate: " + openssl_reason());
  return cert;
}

Result<std::string> first_cert_pem(const std::string& chain_file) {
  auto text = read_text_file(chain_file);
  if (!text) return text.error();
  auto cert = first_cert(*text);
  if (!cert) return cert.error();
  Bio out(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(out.get(), cert->get());
  char* data = nullptr;
  long n = BIO_get_mem_data(out.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

}  // namespace

Result<std::string> sign_checkpoint(const store::AuditCheckpoint& cp, const std::string& key_file) {
  auto text = read_text_file(key_file);
  if (!text) return text.error();
  Bio bio(BIO_new_mem_buf(text->data(), static_cast<int>(text->size())));
  Pkey key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return make_error(Errc::invalid_input, "cannot read the signing key " + key_file + ": " + openssl_reason());
  std::string msg = store::audit_chain::checkpoint_message(cp);
  MdCtx ctx(EVP_MD_CTX_new());
  size_t len = 0;
  if (EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(msg.data()), msg.size()) != 1) {
    return make_error(Errc::internal, "cannot sign an audit checkpoint: " + openssl_reason());
  }
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(msg.data()), msg.size()) != 1) {
    return make_error(Errc::internal, "cannot sign an audit checkpoint: " + openssl_reason());
  }
  sig.resize(len);
  return sig;
}

Result<void> verify_checkpoint(const store::AuditCheckpoint& cp, const std::string& ca_file) {
  auto cert = first_cert(cp.signer);
  if (!cert) return make_error(Errc::invalid_input, "its signer is not a certificate");
  EVP_PKEY* pub = X509_get0_pubkey(cert->get());
  if (!pub) return make_error(Errc::invalid_input, "its signer certificate has no public key");
  std::string msg = store::audit_chain::checkpoint_message(cp);
  MdCtx ctx(EVP_MD_CTX_new());
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, pub) != 1 ||
      EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(cp.signature.data()), cp.signature.size(),
                       reinterpret_cast<const unsigned char*>(msg.data()), msg.size()) != 1) {
    ERR_clear_error();
    return make_error(Errc::invalid_input, "its signature does not match what it states");
  }
  if (ca_file.empty()) return {};
  Store store(X509_STORE_new());
  if (X509_STORE_load_file(store.get(), ca_file.c_str()) != 1) {
    return make_error(Errc::invalid_input, "cannot read the CA file " + ca_file + ": " + openssl_reason());
  }
  StoreCtx sctx(X509_STORE_CTX_new());
  if (X509_STORE_CTX_init(sctx.get(), store.get(), cert->get(), nullptr) != 1) {
    return make_error(Errc::internal, "cannot check a certificate: " + openssl_reason());
  }
  // As of when it was signed: a certificate that has expired since still vouches for its past checkpoints.
  if (auto ms = clock::parse_iso_ms(cp.ts)) X509_STORE_CTX_set_time(sctx.get(), 0, static_cast<time_t>(*ms / 1000));
  if (X509_verify_cert(sctx.get()) != 1) {
    return make_error(Errc::invalid_input, std::string("its signer certificate does not chain to the CA: ") +
                                               X509_verify_cert_error_string(X509_STORE_CTX_get_error(sctx.get())));
  }
  return {};
}

std::string signer_name(const store::AuditCheckpoint& cp) {
  if (cp.signer == store::audit_chain::kMigrationSigner) return std::string(cp.signer);
  auto cert = first_cert(cp.signer);
  if (!cert) return "(not a certificate)";
  char buf[256];
  X509_NAME_oneline(X509_get_subject_name(cert->get()), buf, sizeof buf);
  return buf;
}

Checkpointer::Checkpointer(store::Store& store, CheckpointOptions opts, metrics::Registry& metrics)
    : store_(store),
      opts_(std::move(opts)),
      made_(metrics.counter("gw_audit_checkpoints_total", "Signed audit-chain checkpoints committed")),
      failed_(metrics.counter("gw_audit_checkpoint_failures_total",
                              "Audit-chain checkpoints that could not be signed or committed")),
      last_seq_(metrics.gauge("gw_audit_checkpoint_seq", "Audit record the last checkpoint covers")),
      pruned_through_(metrics.gauge("gw_audit_pruned_through_seq",
                                    "Audit records up to this one were pruned by audit.retention_days")) {}

Checkpointer::~Checkpointer() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Checkpointer::start() {
  thread_ = std::thread([this] {
    log::name_thread("gw-audit-cp");
    std::unique_lock lk(mu_);
    auto next_prune = std::chrono::steady_clock::now() + opts_.every;  // after the first checkpoint
    while (!cv_.wait_for(lk, opts_.every, [this] { return stopping_; })) {
      lk.unlock();
      (void)checkpoint_now();
      if (opts_.retention_days > 0 && std::chrono::steady_clock::now() >= next_prune) {
        (void)prune_now(clock::now_ms());
        next_prune = std::chrono::steady_clock::now() + opts_.prune_every;
      }
      lk.lock();
    }
  });
}

void Checkpointer::stop() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  (void)checkpoint_now();
}

Result<std::optional<store::AuditCheckpoint>> Checkpointer::checkpoint_now() {
  auto signer = first_cert_pem(opts_.cert_file);
  if (!signer) {
    failed_.inc();
    log::error("audit_checkpoint_failed", {{"reason", signer.error().message}});
    return signer.error();
  }
  struct Made {
    std::optional<store::AuditCheckpoint> cp;
    std::optional<Error> error;
  };
  auto made = std::make_shared<Made>();
  int64_t last = last_;
  store::UnitOfWork u;
  // Not lazy: one commit a minute costs nothing, and the caller waits for it
  // (stop() at shutdown), which a lazy unit would make depend on the lazy
  // timer (under libfaketime's shifted clocks that wait never ended).
  u.prepare = [made, last, key = opts_.key_file, pem = std::move(*signer)](store::TxView& view,
                                                                            store::UnitOfWork& unit) -> Result<void> {
    store::AuditHead head = view.audit_head();
    if (head.seq <= 0 || head.seq == last) return {};
    store::AuditCheckpoint cp;
    cp.seq = head.seq;
    cp.ts = clock::iso_now();
    cp.chain = head.chain;
    cp.signer = pem;
    auto sig = sign_checkpoint(cp, key);
    if (!sig) {
      made->error = sig.error();
      return {};
    }
    cp.signature = std::move(*sig);
    unit.audit_checkpoint = cp;
    made->cp = std::move(cp);
    return {};
  };
  std::promise<Result<store::CommitOutcome>> p;
  auto f = p.get_future();
  if (auto r = store_.commit(std::move(u), [&p](Result<store::CommitOutcome> res) { p.set_value(std::move(res)); });
      !r) {
    failed_.inc();
    log::error("audit_checkpoint_failed", {{"reason", r.error().message}});
    return r.error();
  }
  auto res = f.get();
  if (!res || made->error) {
    Error e = !res ? res.error() : *made->error;
    failed_.inc();
    log::error("audit_checkpoint_failed", {{"reason", e.message}});
    return e;
  }
  if (!made->cp) return std::optional<store::AuditCheckpoint>();
  last_ = made->cp->seq;
  made_.inc();
  last_seq_.set(made->cp->seq);
  log::info("audit_checkpoint", {{"seq", made->cp->seq}, {"chain", store::audit_chain::hex(made->cp->chain)}});
  return made->cp;
}

Result<int64_t> Checkpointer::prune_now(int64_t now_ms) {
  if (opts_.retention_days <= 0) return int64_t{0};
  const std::string before = clock::iso_ms(now_ms - int64_t{opts_.retention_days} * 86'400'000);
  std::promise<Result<std::optional<int64_t>>> found;
  auto ff = found.get_future();
  if (auto r = store_.run_read([&] { found.set_value(store_.audit_prune_point(before)); }); !r) return r.error();
  auto point = ff.get();
  if (!point) {
    log::error("audit_prune_failed", {{"reason", point.error().message}});
    return point.error();
  }
  if (!*point) return int64_t{0};
  const int64_t through = **point;
  store::UnitOfWork u;
  store::AuditRow a;
  a.actor_role = "gateway";
  a.actor_system = "cpis-gateway audit retention";
  a.action = "admin";
  a.entity = "audit";
  a.outcome = "success";
  a.http_status = 200;
  a.detail = "audit retention: records 1 to " + std::to_string(through) + " pruned (older than " +
             std::to_string(opts_.retention_days) + " days); the checkpoint at " + std::to_string(through) +
             " is kept as the trail's anchor";
  a.channel = std::string(kChannelInternal);
  a.purpose = std::string(kPurposeSystemAdmin);
  a.topic = "audit";
  u.audit.push_back(std::move(a));
  u.audit_prune_through = through;
  std::promise<Result<store::CommitOutcome>> p;
  auto f = p.get_future();
  if (auto r = store_.commit(std::move(u), [&p](Result<store::CommitOutcome> res) { p.set_value(std::move(res)); });
      !r)
    return r.error();
  auto res = f.get();
  if (!res) {
    log::error("audit_prune_failed", {{"reason", res.error().message}});
    return res.error();
  }
  pruned_through_.set(through);
  log::info("audit_pruned", {{"through", through}, {"retention_days", opts_.retention_days}});
  return through;
}

}  // namespace gw::audit
