#pragma once
// The write service: the one way anything is written (DESIGN.md, Layering).
// REST interactions and Bundles, HL7 messages, legacy files, CP-IS uploads and
// access records all become a write::Request; the service checks each entry
// against the access policy and the profile rules on the caller's thread,
// then hands one unit to the store whose prepare hook — on the writer thread,
// inside the transaction — resolves conditional entries and urn:uuid
// references, follows merged NHS numbers, keeps newer demographics, refuses
// writes to what the caller may not see, applies the cross-feed merge policy,
// moves plans on a merge and builds the audit rows. The answer comes after
// the fsync'd commit (or says why nothing was written).
//
// What is decided is what is written: nothing is read on one thread and
// written on another, so no version pins and no retries are needed.
#include <functional>
#include <memory>
#include <vector>

#include "gateway/common/metrics.h"
#include "gateway/security/policy.h"
#include "gateway/store/store.h"
#include "gateway/write/merge_policy.h"
#include "gateway/write/request.h"
#include "gateway/write/validation.h"

namespace gw::security {
class Visibility;
}

namespace gw::write {

class WriteService {
 public:
  using Done = std::function<void(Outcome)>;

  // merge: the cross-feed merge policy (none: an adapter's update replaces).
  // metrics: where the audit queue's gauges and counters go (none in some tests).
  WriteService(store::Store& store, const Validator& validator, const security::Policy& policy,
               const security::Visibility& visibility, std::shared_ptr<const MergePolicy> merge,
               metrics::Registry* metrics = nullptr, size_t audit_queue_rows = 100000);
  ~WriteService();
  WriteService(const WriteService&) = delete;
  WriteService& operator=(const WriteService&) = delete;

  // done is called exactly once, from a store thread, after the durable
  // commit (or the failure: then nothing of the request was written).
  void submit(Request req, Done done);

  // Audit rows alone (who read what): held in a bounded queue and committed
  // with the next group commit, all the rows queued meanwhile in one unit.
  // When the queue is full the rows are refused (unavailable): the caller
  // must not answer what it would have audited (a 503), and the refusal is
  // counted (gw_audit_refused_total) and logged. Never a silent drop.
  Result<void> record(std::vector<store::AuditRow> rows);

  const Validator& validator() const;
  const security::Policy& policy() const;
  store::Store& store();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace gw::write
