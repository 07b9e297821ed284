#pragma once
// Signed checkpoints of the audit chain (docs/AUDIT.md). Every `every`
// seconds, when the trail has grown, a unit is committed whose prepare hook
// reads the chain's head inside the writer's transaction and states it,
// signed with the gateway's own key (the server certificate's): a trail
// rewritten from some record on cannot be made to agree with a checkpoint
// after it without that key. Each checkpoint is also logged
// (audit_checkpoint seq=... chain=...), so a log shipped elsewhere anchors the
// trail outside this machine (`audit verify --anchor SEQ:HEX`).
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "gateway/common/metrics.h"
#include "gateway/common/result.h"
#include "gateway/store/store.h"

namespace gw::audit {

struct CheckpointOptions {
  std::string cert_file, key_file;  // re-read for every checkpoint, so a SIGHUP rotation is followed
  std::chrono::milliseconds every{std::chrono::seconds(60)};
  // Audit retention (config audit.retention_days, docs/AUDIT.md "Retention"):
  // 0 keeps the trail for ever; otherwise every prune_every the records older
  // than this many days are pruned up to the newest checkpoint made before
  // then, which is kept as the anchor `audit verify` starts from.
  int retention_days = 0;
  std::chrono::milliseconds prune_every{std::chrono::hours(1)};
};

class Checkpointer {
 public:
  Checkpointer(store::Store& store, CheckpointOptions opts, metrics::Registry& metrics);
  ~Checkpointer();
  void start();
  // Stops the thread and commits a last checkpoint, so that a clean shutdown
  // leaves the whole trail covered. Call before the store closes.
  void stop();
  // One checkpoint now; waits for its commit. nullopt when the trail has not
  // grown since the last one (or is empty).
  Result<std::optional<store::AuditCheckpoint>> checkpoint_now();
  // Audit retention now, as of now_ms: prunes the records up to the newest
  // checkpoint made more than retention_days before now_ms, leaving a row
  // that says so (action "admin", entity "audit") in the same transaction.
  // Answers the seq pruned through, 0 when there was nothing to prune.
  Result<int64_t> prune_now(int64_t now_ms);

 private:
  store::Store& store_;
  CheckpointOptions opts_;
  metrics::Counter& made_;
  metrics::Counter& failed_;
  metrics::Gauge& last_seq_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  int64_t last_ = -1;  // seq of the last checkpoint committed (-1: not known yet)
  metrics::Gauge& pruned_through_;
  std::thread thread_;
};

// The signature of a checkpoint, over audit_chain::checkpoint_message, with
// the key in key_file (ECDSA or RSA, SHA-256); the certificate that goes with
// it, PEM, as the checkpoint's signer.
Result<std::string> sign_checkpoint(const store::AuditCheckpoint& cp, const std::string& key_file);
// Checks a checkpoint's signature against its signer certificate and, when
// ca_file is given, that certificate against the CA as of the checkpoint's
// time. The error says what failed.
Result<void> verify_checkpoint(const store::AuditCheckpoint& cp, const std::string& ca_file);
// "CN=..., O=..." of a checkpoint's signer, for people.
std::string signer_name(const store::AuditCheckpoint& cp);

}  // namespace gw::audit
