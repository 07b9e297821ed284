#pragma once
// FHIR R4 REST API at /fhir: thin handlers over the store, the validator and
// the access policy. Parsing and validation run on the calling (network)
// thread; every store read runs on the store's reader pool and every write is
// handed to the store's writer, so a network thread never blocks on SQLite.
#include <functional>
#include <memory>
#include <optional>
#include <vector>
#include <string>

#include "gateway/common/metrics.h"
#include "gateway/write/merge_policy.h"
#include "gateway/write/validation.h"
#include "gateway/net/http.h"
#include "gateway/security/policy.h"
#include "gateway/store/store.h"

namespace gw::fhir {

struct RestOptions {
  std::string public_base_url;  // overrides the Host-derived base in Location/fullUrl
  int max_count = 1000;         // _count ceiling
  int default_count = 20;
  // Today's date (YYYY-MM-DD) for the CP-IS 12-month scope; empty = the UTC
  // date. Tests set it to move the clock.
  std::function<std::string()> today{};
  // Cross-feed merge of adapter updates (profiles/merge/feeds.json); none = replace.
  std::shared_ptr<const write::MergePolicy> merge = nullptr;
};

// Rows committed in the same store transaction as a Bundle that an adapter
// produced (ingest): the message's idempotency key, the raw message, and
// outbox events.
struct TransactionExtras {
  std::optional<std::string> idempotency_key;
  // The adapter that produced the Bundle: its updates of existing resources
  // are merged per RestOptions::merge.
  std::string feed;
  std::vector<store::InboundRow> inbound;
  std::vector<std::pair<int64_t, std::string>> inbound_status;
  std::vector<store::OutboxRow> outbox;
  // Called once with the commit's outcome (on the writer thread, before the
  // answer), e.g. so a file sender can be told which inbound row keeps its file.
  std::function<void(const store::CommitOutcome&)> on_commit;
};

class RestApi final : public net::Handler {
 public:
  RestApi(store::Store& store, const write::Validator& validator, const security::Policy& policy,
          metrics::Registry& metrics, RestOptions opts);
  ~RestApi() override;
  void handle(net::Request req, net::Respond respond) override;

  // Runs a transaction Bundle (req.body) for req.principal exactly as
  // POST /fhir would, committing `extras` in the same store transaction.
  // An idempotency key already committed answers 409 with expression
  // "idempotency-key" and writes nothing.
  void submit_transaction(net::Request req, TransactionExtras extras, net::Respond respond);

  // The CapabilityStatement JSON (built once at construction).
  const std::string& capability_statement() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace gw::fhir
