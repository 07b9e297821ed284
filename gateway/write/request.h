#pragma once
// What a writer asks the write service for, and what it answers: the entries
// of a FHIR interaction or Bundle (REST, an adapter's transaction, a CP-IS
// access record), the principal, and what must commit with them (raw input,
// idempotency key, extra audit rows). The answer comes once the store
// transaction is durable, or says why nothing was written.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gateway/common/issues.h"
#include "gateway/common/json.h"
#include "gateway/common/result.h"
#include "gateway/security/principal.h"
#include "gateway/store/store.h"

namespace gw::write {

enum class Method { get, post, put, remove };

// One entry: a Bundle entry, or the whole of a single REST interaction.
struct Entry {
  Method method = Method::post;
  std::string type;
  // PUT/DELETE/GET by id: the id of the URL; POST: ignored (the server assigns one).
  std::string id;
  // POST/PUT: the resource as sent (checked, then serialised after its
  // urn:uuid references are resolved).
  std::shared_ptr<json::Document> resource;
  std::string full_url;                      // urn:uuid:... that other entries may reference
  std::vector<store::Match> if_none_exist;   // conditional create
  std::vector<store::Match> match;           // conditional update
  std::optional<int64_t> if_match;           // the version the client expects
  // Where the entry sits for issue expressions: "Bundle.entry[3]", or "" for
  // a single interaction (then expressions are the validator's, "Patient.gender").
  std::string path;
  // A problem found while reading the entry (a batch answers it on its own).
  std::optional<Error> error;
  std::vector<Issue> issues;
};

enum class Mode {
  transaction,  // all entries or none
  batch,        // each entry on its own
};

struct Request {
  security::Principal who;
  std::string request_id;  // for the audit rows ("" when none)
  Mode mode = Mode::transaction;
  std::vector<Entry> entries;
  // The audit action of the whole request ("transaction", "batch"); "" for a
  // single interaction, whose entry row says it all.
  std::string action;
  // The adapter a feed's Bundle came from: its updates are merged into what
  // is stored (write/merge_policy.h) and its Patients follow merges and keep
  // the newer demographics (identity/reconcile.h). "" for REST.
  std::string feed;
  // The message's own time (Bundle.timestamp) for the older-message rule.
  std::string message_time;
  // The gateway's own record (an access AuditEvent): no role's policy applies.
  bool internal = false;
  // What the audit rows say of how and why (audit/audit_rows.h): the channel
  // the request came through, the purpose of use when the caller stated one
  // ("" = the action's default), the user behind the system when known, and
  // what a feed's Bundle was (its message or file type, "ADT^A28").
  std::string channel = "rest";
  std::string purpose{};
  std::string person{};
  std::string topic{};
  // Committed in the same transaction.
  std::optional<std::string> idempotency_key;
  std::vector<store::InboundRow> inbound;
  std::vector<std::pair<int64_t, std::string>> inbound_status;
  std::vector<store::AuditRow> audit;
  // Durable timers rescheduled by what this request decides (docs/TIMERS.md),
  // e.g. $acknowledge cancelling a disclosure's escalation. Transaction mode only.
  std::vector<store::TimerSet> timer_sets{};
};

struct EntryOutcome {
  int status = 0;  // 200, 201; a batch entry's own failure status
  std::string id;
  int64_t version = 0;
  std::string last_updated;
  bool created = false;
  bool noop = false;    // nothing written: a conditional create matched, or an older message
  bool hidden = false;  // a conditional create matched what the caller may not see
  std::string body;     // the stored text written (POST/PUT), for answers without a read-back
  // GET entries (read after the commit) and the resource a conditional
  // create matched, when the caller may see it.
  std::optional<store::StoredResource> resource;
  std::optional<Error> error;  // batch: this entry failed
  std::vector<Issue> issues;
};

struct Outcome {
  // The whole request failed and nothing of it was written. When the entries
  // were refused before the commit (policy, profile, shape), `issues` lists
  // every problem with its element path and `failure` is the worst of them;
  // otherwise `failure` alone says what the store or the resolution refused.
  std::optional<Error> failure;
  std::vector<Issue> issues;
  std::vector<EntryOutcome> entries;  // one per Request entry, same order (when not failed)
  std::vector<int64_t> inbound_ids;   // one per Request::inbound row
  std::vector<Issue> notes;           // for the sender: what was decided on its behalf
};

}  // namespace gw::write
