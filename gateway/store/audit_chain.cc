#include "gateway/store/audit_chain.h"

#include <openssl/evp.h>

#include <stdexcept>

namespace gw::store::audit_chain {

namespace {

void put(std::string& out, std::string_view v) {
  uint32_t n = static_cast<uint32_t>(v.size());
  out.push_back(static_cast<char>(n >> 24));
  out.push_back(static_cast<char>(n >> 16));
  out.push_back(static_cast<char>(n >> 8));
  out.push_back(static_cast<char>(n));
  out.append(v);
}

void put(std::string& out, int64_t v) { put(out, std::to_string(v)); }

}  // namespace

std::string genesis() { return std::string(kHashBytes, '\0'); }

std::string canonical(const AuditRecord& r) {
  std::string out;
  out.reserve(256 + r.detail.size() + r.entity.size());
  put(out, r.seq);
  put(out, r.ts);
  put(out, r.actor_ods);
  put(out, r.actor_role);
  put(out, r.actor_system);
  put(out, r.person);
  put(out, r.action);
  put(out, r.entity);
  put(out, r.outcome);
  put(out, int64_t{r.http_status});
  put(out, r.request_id);
  put(out, r.detail);
  put(out, r.patient_ref);
  put(out, r.channel);
  put(out, r.purpose);
  put(out, r.src_ods);
  put(out, r.src_system);
  put(out, r.topic);
  put(out, r.latency_ms);
  put(out, r.items);
  return out;
}

std::string next(std::string_view prev, const AuditRecord& r) {
  std::string data;
  std::string c = canonical(r);
  data.reserve(kDomain.size() + prev.size() + c.size());
  data.append(kDomain).append(prev).append(c);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // One-shot EVP: the SHA-256 of one record costs about a microsecond.
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) != 1 || len != kHashBytes) {
    throw std::runtime_error("SHA-256 failed");  // OpenSSL without SHA-256 cannot run the gateway
  }
  return std::string(reinterpret_cast<const char*>(md), len);
}

std::string checkpoint_message(const AuditCheckpoint& c) {
  return "cpis-gateway audit checkpoint v1\nseq=" + std::to_string(c.seq) + "\nts=" + c.ts + "\nchain=" + hex(c.chain) +
         "\n";
}

std::string hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 15]);
  }
  return out;
}

Verifier::Verifier(std::map<int64_t, AuditCheckpoint> checkpoints,
                   std::optional<std::pair<int64_t, std::string>> anchor, size_t max_findings)
    : checkpoints_(std::move(checkpoints)), anchor_(std::move(anchor)), max_findings_(max_findings) {
  for (const auto& [seq, c] : checkpoints_)
    if (c.signer == kMigrationSigner) legacy_until_ = std::max(legacy_until_, seq);
}

void Verifier::find(int64_t seq, std::string what) {
  if (findings_.size() < max_findings_) findings_.push_back(Finding{seq, std::move(what)});
}

void Verifier::check_checkpoint(int64_t seq) {
  if (auto it = checkpoints_.find(seq); it != checkpoints_.end()) {
    if (it->second.chain == prev_) {
      ++matched_;
    } else {
      find(seq, "the checkpoint of " + it->second.ts + " at record " + std::to_string(seq) +
                    " does not match the chain: records up to it were changed and the chain recomputed");
    }
  }
  if (anchor_ && anchor_->first == seq && anchor_->second != prev_)
    find(seq, "the anchor given for record " + std::to_string(seq) + " does not match the chain");
}

void Verifier::feed(const AuditRecord& r) {
  bool verifiable = true;
  if (!started_) {
    started_ = true;
    first_ = r.seq;
    if (r.seq == 1) {
      prev_ = genesis();
    } else if (auto it = checkpoints_.find(r.seq - 1); it != checkpoints_.end()) {
      prev_ = it->second.chain;  // the trail was pruned up to a checkpoint (audit retention)
    } else {
      find(1, "records 1 to " + std::to_string(r.seq - 1) +
                  " are missing and no checkpoint marks where the kept trail starts");
      verifiable = false;
    }
  } else if (r.seq != expect_) {
    if (r.seq > expect_) {
      find(expect_, expect_ == r.seq - 1 ? "record " + std::to_string(expect_) + " is missing (deleted)"
                                         : "records " + std::to_string(expect_) + " to " +
                                               std::to_string(r.seq - 1) + " are missing (deleted)");
    } else {
      find(r.seq, "record " + std::to_string(r.seq) + " is out of order");
    }
    verifiable = false;  // its predecessor is gone: only the records after it can be checked
  }
  if (verifiable) {
    std::string c = next(prev_, r);
    if (r.chain.empty()) {
      if (r.seq > legacy_until_)
        find(r.seq, "record " + std::to_string(r.seq) + " has no chain value (inserted, or its chain erased)");
      prev_ = std::move(c);
    } else if (r.chain != c) {
      find(r.seq, "record " + std::to_string(r.seq) +
                      " does not match the chain: edited, or inserted in place of another");
      prev_ = r.chain;  // go on from what was stored, so that only changed records are named
    } else {
      prev_ = std::move(c);
    }
  } else {
    prev_ = r.chain.empty() ? genesis() : r.chain;
  }
  check_checkpoint(r.seq);
  expect_ = r.seq + 1;
  last_ = r.seq;
  ++records_;
}

void Verifier::finish() {
  int64_t beyond = 0;
  std::string when;
  for (auto it = checkpoints_.upper_bound(last_); it != checkpoints_.end(); ++it) {
    beyond = it->first;
    when = it->second.ts;
  }
  if (beyond) {
    find(last_ + 1, "records " + std::to_string(last_ + 1) + " to " + std::to_string(beyond) +
                        " are missing (deleted from the end): the checkpoint of " + when + " names record " +
                        std::to_string(beyond));
  }
  if (anchor_ && anchor_->first > last_)
    find(last_ + 1, "records " + std::to_string(last_ + 1) + " to " + std::to_string(anchor_->first) +
                        " are missing: the anchor given names record " + std::to_string(anchor_->first));
}

}  // namespace gw::store::audit_chain
