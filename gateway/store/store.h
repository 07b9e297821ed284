#pragma once
// The storage seam. Rows and transactions only: resources with version
// history, search-index rows, audit rows and outbox rows. It knows nothing of
// HTTP, topics or FHIR semantics beyond what the FHIR layer hands it as index
// rows. Two implementations: SQLite (store/sqlite/, one node) and PostgreSQL
// (store/postgres/, several gateway nodes on one database).
//
// Threading: commit() is asynchronous — the unit of work is queued for the one
// writer thread, which commits many units in one transaction (group commit, one
// fsync) and then calls each callback from the writer thread. Reads are
// synchronous and must not be called on a network thread; callers run them on
// the store's reader pool via run_read().
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gateway/common/result.h"

namespace gw::metrics { class Registry; }

namespace gw::store {

// One search-index row the FHIR layer extracted from a resource.
// Token params: system may be empty, value is the code/identifier value.
// Reference params ("patient", "subject"): value is "Patient/<id>", system empty.
struct IndexEntry {
  std::string param;   // "identifier", "patient", "subject", "status", "code"...
  std::string system;  // token system or empty
  std::string value;
};

// A condition evaluated by the writer inside the transaction, so that
// check-then-write is atomic (conditional create/update, If-Match).
struct Match {
  std::string param;   // index param, e.g. "identifier"
  std::string system;  // empty = any system
  std::string value;
};

enum class OpKind { create, update, remove };

struct WriteOp {
  OpKind kind = OpKind::create;
  std::string type;  // resource type
  std::string id;    // logical id; for create chosen by the caller (UUID)
  // Resource JSON WITHOUT meta.versionId / meta.lastUpdated (the store assigns
  // those and the FHIR layer merges them in on read). Empty for remove.
  std::string body;
  std::vector<IndexEntry> index;

  // If set, the NHS number this Patient is keyed on: enforced unique by an
  // index across all live Patients. A create that collides fails with
  // Errc::conflict and CommitOutcome::existing_id set to the holder.
  std::optional<std::string> unique_key;

  // update/remove: expected current version (If-Match); mismatch -> version_conflict.
  std::optional<int64_t> if_match;
  // create: If-None-Exist. If any live resource of `type` matches ALL entries,
  // the op does nothing and reports existing_id (status 200, not 201).
  std::vector<Match> if_none_exist;
  // update: conditional update by search. 0 matches -> create with `id`;
  // 1 match -> update that resource (its id replaces `id`); >1 -> version_conflict.
  std::vector<Match> match;
  // update: create when absent (FHIR update-as-create). Otherwise not_found.
  bool upsert = true;
  // Set when other ops of the unit already refer to `id` (a transaction
  // resolved urn:uuid references before the commit): if the writer's
  // conditional match or If-None-Exist lands on a different resource, the unit
  // fails with version_conflict instead of leaving dangling references, and
  // the caller resolves again and retries.
  bool id_resolved = false;
  // Who wrote this version ("ODS|system"), kept with it so that a disclosure
  // decided later from the change feed names the organisation whose record
  // left (ChangeRow::source). "" for the gateway's own writes.
  std::string source{};
};

// One audit row, committed with the change it records (IHE BALP's who, what,
// about whom, when, outcome, why and how; audit/audit_rows.h builds them and
// audit/balp.h renders them as AuditEvents). The store numbers the rows in
// commit order (seq), stamps them (ts) and chains each to the one before
// (store/audit_chain.h, docs/AUDIT.md): every field below is hashed.
struct AuditRow {
  std::string actor_ods, actor_role, actor_system;
  std::string action;        // "create", "read", "search", "update", "delete", "transaction", "ingest",
                             // "disclose", "notify", "replay", "admin"... (the BALP subtype)
  std::string entity;        // "Patient/123" or a search path without values
  // "success"; "failure"; for a delivery attempt "retry" (failed, to be
  // retried) or "dead" (failed and dead-lettered).
  std::string outcome;
  int http_status = 0;
  std::string request_id;
  std::string detail;        // free text, never a patient identifier
  std::string patient_ref;   // "Patient/<id>" when known, for BALP patient search
  // The user behind the system, when the caller said who (role profile id,
  // name). After the older fields so that positional initialisers keep working.
  std::string person{};
  std::string channel{};     // "rest", "mllp", "mllp-tls", "file", "rest-hook", "gp-feed", "replay", "cli", "internal"
  std::string purpose{};     // purpose of use: a v3 code (TREAT, ETREAT, HOPERAT...) or a topic's own
  // disclose/notify: the organisation (and system) whose record left; the
  // actor is the recipient. Empty for everything else (the actor is the source).
  std::string src_ods{}, src_system{};
  std::string topic{};       // the topic of a disclosure, else the resource or message type
  int64_t latency_ms = 0;    // a delivered notification: commit to the receiver's 2xx/AA
  int64_t items = 0;         // CP-IS query: plans in scope; notify: events in the notification
};

// An audit row as stored: its number, time and chain value.
struct AuditRecord : AuditRow {
  int64_t seq = 0;
  std::string ts;     // ISO 8601 UTC with milliseconds; never earlier than the row before
  std::string chain;  // 32 bytes (store/audit_chain.h); empty on rows older than the chain
};

// A signed (or, for the rows that predate the chain, computed) statement of
// the chain's value at one record, committed in the trail's own order.
struct AuditCheckpoint {
  int64_t seq = 0;
  std::string ts;
  std::string chain;      // 32 bytes: the chain value of record `seq`
  std::string signature;  // over audit_chain::checkpoint_message(); empty for "migration"
  std::string signer;     // the signing certificate (PEM), or "migration"
};

// The chain's head as the writer sees it inside its transaction.
struct AuditHead {
  int64_t seq = 0;    // 0: no record yet
  std::string chain;  // 32 bytes
};

// A subscription-engine outbox row, committed with the change (later issues).
struct OutboxRow {
  std::string topic;
  std::string focus;       // "Patient/123"
  std::string payload;     // JSON
};

// A legacy message or file as received, kept with what became of it, so that
// failures can be inspected and replayed (and unknown segments are not lost).
struct InboundRow {
  int64_t id = 0;               // assigned by the store
  std::string received;         // assigned by the store (ISO 8601 UTC)
  std::string adapter;          // "systmone"...
  std::string channel;          // "mllp", "mllp-tls", "http", "replay"
  std::string sender_ods, sender_system;
  std::string control_id;       // MSH-10 or the batch/file id; may be empty
  std::string status;           // "accepted" | "quarantined" | "replayed"
  std::string reason;           // short, never a patient identifier
  std::string issues_json;      // JSON array of {severity, code, expression, message}
  std::string raw;              // the bytes as received
  int64_t replay_of = 0;        // the quarantined row this one replays
  std::string kind{};           // what it is: the HL7 message type ("ADT^A28"), or the file's format
  std::string answer{};         // what the sender was told when it was refused (the ACK), "" otherwise
  // Filled by the store: the change-feed seqs (ChangeRow::seq) of the
  // versions the same unit wrote, comma-separated: "the FHIR it became".
  std::string written{};
};

// Which kept messages to list (InboundRow fields; "" / 0 = any), newest first.
struct InboundFilter {
  std::string status, adapter, channel, kind;
  std::string sender;                        // sender ODS code or system name
  std::string received_from, received_to;    // ISO 8601 UTC bounds, [from, to)
  int limit = 50;
  int64_t before_id = 0;                     // paging: rows with a smaller id (0 = from the newest)
  bool with_raw = false;
};

// ---- change feed and subscription events -------------------------------------
// Every resource version the writer applies is also a row of the change feed
// (same transaction), so every write path (REST, transactions, ingest,
// adapters) feeds the subscription engine without remembering to.
struct ChangeRow {
  int64_t seq = 0;           // strictly increasing in commit order
  std::string type, id;
  int64_t version = 0;
  std::string interaction;   // "create" | "update" | "delete"
  std::string ts;            // the version's last_updated
  std::string source{};      // WriteOp::source of the version ("ODS|system"), "" when not recorded
};

// A notification event for one subscription; the writer gives it the
// subscription's next event number (1, 2, 3... no gaps) in the transaction.
struct NewEvent {
  std::string subscription;  // Subscription id
  int64_t change_seq = 0;
  std::string focus_type, focus_id;
  int64_t focus_version = 0;
  std::string interaction;
  std::string patient_ref;   // "Patient/<id>" the event is about (audit), may be empty
  std::string content;       // payload content decided at fan-out: empty | id-only | full-resource
};

struct EventRow : NewEvent {
  int64_t number = 0;
  std::string created;          // ISO 8601 UTC
  std::string status;           // "pending" | "delivered" | "dead"
  int64_t attempts = 0;
  int64_t first_attempt_ms = 0; // unix ms of the first failed attempt (retry window), 0 = none
  std::string last_error;
};

// Changes the delivery state of events [from, to] of one subscription.
struct EventUpdate {
  std::string subscription;
  int64_t from = 0, to = 0;
  std::string status;             // new status; empty = unchanged
  int64_t add_attempts = 0;
  int64_t first_attempt_ms = -1;  // -1 = unchanged; otherwise set when 0 (or reset when 0 is given)
  std::optional<std::string> last_error;
  std::string only_status;        // if set, only rows currently in this status change
};

struct EventCounts {
  int64_t events = 0;        // events-since-subscription-start
  int64_t pending = 0, delivered = 0, dead = 0;
  std::string oldest_pending;  // created of the oldest pending event, "" when none
};

// ---- durable timers (docs/TIMERS.md) ------------------------------------------
// A due time committed in the same transaction as the decision that sets it,
// fired by a consumer that marks it fired in the same transaction as what the
// firing writes: so a timer fires exactly once across restarts, clock jumps
// and a gateway that was down on the day (it catches up).
struct TimerRow {
  std::string key;      // unique for ever: a key fires at most once
  std::string kind;     // which consumer fires it ("lac-health-assessment"...)
  std::string subject;  // what it is about ("CareTeam/<id>"): the unit TimerSet replaces
  std::string due;      // ISO 8601 UTC "YYYY-MM-DDTHH:MM:SSZ" (text order is time order)
  std::string payload;  // JSON the consumer needs to fire it
  // Read side only:
  std::string status{};     // "pending" | "fired" | "cancelled"
  std::string scheduled{};  // when it was first scheduled
  std::string settled{};    // when it fired or was cancelled ("" while pending)
};

// The pending timers of (kind, subject) become exactly `timers`: pending ones
// not listed are cancelled; listed ones are inserted, or made pending again
// with the given due time and payload; a key that already fired is left as
// it is (it never fires twice).
struct TimerSet {
  std::string kind, subject;
  std::vector<TimerRow> timers;
};

class TxView;
struct UnitOfWork;
// Runs on the writer thread inside the unit's transaction, before its ops are
// applied: it may resolve and fill in the unit (ops, audit rows...) from what
// it reads. An error fails the unit alone (nothing of it is written). It must
// not block on anything but the TxView.
using PrepareHook = std::function<Result<void>(TxView&, UnitOfWork&)>;

struct UnitOfWork {
  std::vector<WriteOp> ops;  // all or nothing
  std::vector<AuditRow> audit;
  std::vector<OutboxRow> outbox;
  // At most once: a unit whose key was already committed fails with
  // Errc::conflict and expression "idempotency-key" (the sender's retry of a
  // message that is already stored).
  std::optional<std::string> idempotency_key;
  std::vector<InboundRow> inbound;                             // new rows
  std::vector<std::pair<int64_t, std::string>> inbound_status;  // (id, new status) of existing rows
  // Subscription engine: new events (numbered by the writer), delivery-state
  // changes, and a change-feed cursor advanced in the same transaction.
  // (Default member initializers: units built positionally elsewhere stay warning-free.)
  std::vector<NewEvent> events{};
  std::vector<EventUpdate> event_updates{};
  std::optional<std::pair<std::string, int64_t>> cursor{};  // (consumer name, last seq consumed)
  // When set with `cursor`: the unit fails with Errc::conflict (expression
  // "cursor") unless the consumer's committed position is this (0 when it
  // never committed one). A consumer that lost its claim to another node
  // (Store::claim) can then never commit a second copy of what it produced.
  std::optional<int64_t> cursor_from{};
  PrepareHook prepare{};
  // A statement of the audit chain's value, committed in the trail's order
  // (audit/checkpoints.h fills it from TxView::audit_head in a prepare hook).
  std::optional<AuditCheckpoint> audit_checkpoint{};
  // Audit retention: the records up to and including this seq are deleted,
  // with the checkpoints before it; the checkpoint AT it must exist and is
  // kept, so the verifier starts the kept trail from its chain value
  // (docs/AUDIT.md "Retention"). Otherwise the unit fails (Errc::conflict).
  std::optional<int64_t> audit_prune_through{};
  // Durable timers: schedules replaced, and timers fired by this unit. A
  // fired key that is not pending any more fails the unit (Errc::conflict),
  // so what the firing writes is never committed twice.
  std::vector<TimerSet> timer_sets{};
  std::vector<std::string> timers_fired{};
  // Nobody waits on this unit (a change-feed cursor that moved without
  // producing anything): it rides with the next group commit instead of
  // costing an fsync of its own, committed at the latest after
  // SqliteOptions::lazy_delay.
  bool lazy = false;
};

struct OpOutcome {
  std::string id;            // the resource's id after the op
  int64_t version = 0;       // version after the op (unchanged when nothing written)
  std::string last_updated;  // ISO 8601 instant with milliseconds, UTC ("...Z")
  bool created = false;      // a new resource was created
  bool noop = false;         // conditional create matched an existing resource
  int64_t seq = 0;           // the change-feed seq of the version written (0 when none)
};

struct CommitOutcome {
  std::vector<OpOutcome> ops;         // one per WriteOp, same order
  std::vector<int64_t> inbound_ids;  // one per UnitOfWork::inbound row, same order
  std::vector<int64_t> event_numbers{}; // one per UnitOfWork::events row, same order
};

// Called once per unit, from the writer thread, after the durable commit (or
// the failure). On failure nothing of the unit was written. An Error with
// code conflict from a unique_key collision carries the existing id in
// Error::expression (as "Patient/<id>").
using CommitCallback = std::function<void(Result<CommitOutcome>)>;

struct StoredResource {
  std::string type, id;
  int64_t version = 0;
  std::string last_updated;  // ISO 8601 UTC with milliseconds
  bool deleted = false;
  std::string body;          // as written (empty when deleted)
};

// Conjunction of constraints. Each param constraint is an OR over its values
// (FHIR comma semantics); different constraints AND together. How a value
// matches the index rows of `param` is the constraint's kind; the rows'
// shapes per search-parameter type are model/search_decl.h's.
enum class MatchKind {
  exact,     // a row (system or "" for any, value) equals one of any_of
  prefix,    // a row's value starts with one of any_of's values (system ignored)
  contains,  // the part of a row's value before '\x1f' contains one of any_of's values
  not_any,   // no row equals any of any_of (resources without the element included)
  range,     // date rows (value = low, system = high) against `ranges`
  missing,   // the resource has no row of `param`
  present,   // the resource has at least one row of `param`
};

// One date search value: the search range [low, high) and the prefix that
// says how a row's [low, high) must relate to it (eq ne lt gt le ge sa eb ap).
struct DateRange {
  std::string prefix, low, high;
};

// As the system of a token constraint: the row must have none ("|code").
inline constexpr std::string_view kNoSystem = "|";

struct ParamConstraint {
  std::string param;
  std::vector<std::pair<std::string, std::string>> any_of;  // (system, "" for any or kNoSystem, value)
  MatchKind kind = MatchKind::exact;
  std::vector<DateRange> ranges{};  // kind range (OR)
};

// _sort: by the lowest (ascending) or highest (descending) value of an index
// param, "_id" or "_lastUpdated"; resources without a value come last.
struct SortKey {
  std::string param;
  bool descending = false;
};

struct SearchQuery {
  std::string type;
  std::vector<std::string> ids;                // _id (OR), empty = any
  std::vector<ParamConstraint> params;
  std::optional<std::string> updated_ge, updated_gt, updated_le, updated_lt;  // _lastUpdated bounds
  // Leave out resources indexed with any of these "_security" label codes
  // (the caller's hidden labels): not returned and not counted.
  std::vector<std::string> exclude_security;
  int count = 50;           // page size
  int64_t offset = 0;       // paging offset
  bool want_total = true;
  // Newest first (last_updated, id descending): "the 25 most recent" without
  // counting first.
  bool newest_first = false;
  // Then creation order (rid) breaks ties, so paging stays stable.
  std::vector<SortKey> sort{};
};

struct SearchPage {
  std::vector<StoredResource> items;  // ordered by last_updated then id, newest last (or first, see newest_first)
  int64_t total = 0;                  // when want_total
};

// Reads inside the writer's transaction, for a unit's prepare hook: they see
// every unit committed before it, including the earlier units of the same
// group commit, and nothing can change between what the hook reads and what
// the unit writes.
class TxView {
 public:
  virtual ~TxView() = default;
  // As Store::read: Errc::not_found, or Errc::gone for a deleted resource.
  virtual Result<StoredResource> read(const std::string& type, const std::string& id) = 0;
  // Live ids of `type` matching every Match, oldest first, at most `limit`.
  virtual Result<std::vector<std::string>> match(const std::string& type, const std::vector<Match>& matches,
                                                 int limit) = 0;
  virtual Result<SearchPage> search(const SearchQuery& q) = 0;
  virtual Result<std::optional<std::string>> find_by_unique_key(const std::string& key) = 0;
  // The audit chain's head, including the rows of the units before this one.
  virtual AuditHead audit_head() { return {}; }
};

// ---- reading the audit trail --------------------------------------------------
// Each filter is an OR over its values; filters AND together. Newest first.
struct AuditQuery {
  std::optional<std::string> ts_ge, ts_gt, ts_le, ts_lt;  // ISO 8601 UTC instants (text order is time order)
  std::vector<std::string> agents;     // actor_ods, actor_system, person or src_ods equal to one of these
  std::vector<std::string> roles;      // actor_role
  std::vector<std::string> entities;   // entity or patient_ref
  std::vector<std::string> patients;   // patient_ref ("Patient/<id>")
  std::vector<std::string> actions, outcomes, channels, purposes, topics;
  // Only events of this organisation: it acted, or its record left (src_ods).
  std::optional<std::string> organisation;
  int count = 20;
  int64_t offset = 0;
  bool want_total = true;
  // A query that runs longer is stopped (Errc::unavailable): a year of a busy
  // trust's trail must not hold a reader for minutes.
  std::chrono::milliseconds budget{10000};
};

struct AuditPage {
  std::vector<AuditRecord> items;
  std::optional<int64_t> total;  // absent when not asked for, or when counting ran out of budget
};

// Counts over [ts_from, ts_to), grouped by the row's flow columns (and day).
struct AuditSummaryQuery {
  std::string ts_from, ts_to;  // ISO 8601 UTC instants
  bool by_day = false;
  size_t max_groups = 200000;  // more groups than this: Errc::invalid_input (narrow the range)
  std::chrono::milliseconds budget{60000};
};

struct AuditGroup {
  std::string day;  // YYYY-MM-DD, when by_day
  std::string actor_ods, actor_role, actor_system, src_ods, src_system;
  std::string action, channel, topic, purpose, outcome;
  // Delivered notifications are grouped by latency to two significant
  // figures (1234 ms -> 1200), so percentiles come from a bounded histogram.
  int64_t latency_ms = 0;
  int64_t events = 0;
  int64_t with_items = 0;  // rows whose items > 0 (CP-IS queries that found a plan)
  int64_t items = 0;       // sum of items
};

struct Stats {  // for /metrics
  uint64_t commits = 0;           // transactions committed
  uint64_t units = 0;             // units of work committed
  uint64_t queue_depth = 0;       // units waiting for the writer
  uint64_t queue_capacity = 0;
  double last_batch_size = 0;
  // cumulative commit latency histogram buckets (seconds) are kept by the
  // implementation and rendered through metrics::Registry.
};

class Store {
 public:
  virtual ~Store() = default;

  // Queues a unit for the writer. Returns Errc::unavailable immediately (and
  // does not call cb) when the bounded queue is full or the store is closing.
  virtual Result<void> commit(UnitOfWork unit, CommitCallback cb) = 0;

  // Synchronous reads (call from a store reader thread, see run_read).
  virtual Result<StoredResource> read(const std::string& type, const std::string& id) = 0;
  virtual Result<StoredResource> vread(const std::string& type, const std::string& id, int64_t version) = 0;
  virtual Result<std::vector<StoredResource>> history(const std::string& type, const std::string& id) = 0;
  virtual Result<SearchPage> search(const SearchQuery& q) = 0;
  // Id of the live Patient keyed on this normalised NHS number, if any.
  virtual Result<std::optional<std::string>> find_by_unique_key(const std::string& key) = 0;

  // Inbound messages by status ("" = any), newest first; raw included.
  virtual Result<std::vector<InboundRow>> list_inbound(const std::string& status, int limit, int64_t offset) = 0;
  virtual Result<InboundRow> get_inbound(int64_t id) = 0;
  // Kept messages by the filter. The default pages through list_inbound and
  // filters in memory; an engine answers it with its own query.
  virtual Result<std::vector<InboundRow>> find_inbound(const InboundFilter& f);
  // How many kept messages there are in each status.
  virtual Result<std::vector<std::pair<std::string, int64_t>>> inbound_counts() {
    return make_error(Errc::unavailable, "this store does not count kept messages");
  }

  // The audit trail (BALP search, data-flow reports). Engines without them
  // answer unavailable.
  virtual Result<AuditPage> search_audit(const AuditQuery& q) {
    (void)q;
    return make_error(Errc::unavailable, "this store does not search the audit trail");
  }
  virtual Result<AuditRecord> audit_record(int64_t seq) {
    (void)seq;
    return make_error(Errc::unavailable, "this store does not read audit records");
  }
  // Audit retention: the seq of the newest checkpoint made before `before`
  // (ISO 8601 UTC) that still has records at or before it; nullopt when
  // there is nothing to prune.
  virtual Result<std::optional<int64_t>> audit_prune_point(const std::string& before) {
    (void)before;
    return make_error(Errc::unavailable, "this store does not prune the audit trail");
  }
  virtual Result<std::vector<AuditGroup>> summarise_audit(const AuditSummaryQuery& q) {
    (void)q;
    return make_error(Errc::unavailable, "this store does not summarise the audit trail");
  }

  // Change feed: rows with seq > after, oldest first, at most limit.
  virtual Result<std::vector<ChangeRow>> changes_after(int64_t after, int limit) = 0;
  // A consumer's committed position (0 when it never committed one).
  virtual Result<int64_t> cursor(const std::string& name) = 0;
  // Events of one subscription with from <= number <= until (until 0 = no
  // bound), in number order, at most limit; status "" = any.
  virtual Result<std::vector<EventRow>> events(const std::string& subscription, int64_t from, int64_t until,
                                               const std::string& status, int limit) = 0;
  virtual Result<EventCounts> event_counts(const std::string& subscription) = 0;
  // Subscriptions that have events in this status.
  virtual Result<std::vector<std::string>> subscriptions_with_events(const std::string& status) = 0;
  // Pending timers due at or before `now` (ISO 8601 UTC), earliest first,
  // at most limit. (Stores without timers answer unavailable.)
  virtual Result<std::vector<TimerRow>> due_timers(const std::string& now, int limit) {
    (void)now, (void)limit;
    return make_error(Errc::unavailable, "this store keeps no timers");
  }
  // Every timer of (kind, subject) whatever its status, by due time.
  virtual Result<std::vector<TimerRow>> timers_of(const std::string& kind, const std::string& subject) {
    (void)kind, (void)subject;
    return make_error(Errc::unavailable, "this store keeps no timers");
  }
  // Called (from the writer thread, after the durable commit) after every
  // batch that wrote change-feed rows or events: a consumer's wake-up, not data.
  virtual void set_commit_listener(std::function<void()> fn) = 0;

  // Runs fn on the reader pool (bounded queue; unavailable when full).
  virtual Result<void> run_read(std::function<void()> fn) = 0;

  // Work that must run on one node at a time among the gateways sharing this
  // store (a change-feed consumer, one subscription's or practice's delivery
  // queue, a timer): true while this process holds `name`. A claim is held
  // until release(), close(), or the end of the process — on PostgreSQL a
  // node killed with kill -9 loses its claims when its connection closes, so
  // another node takes the work over at its next attempt. Idempotent: asking
  // again for a claim held answers true without a round trip. On SQLite (one
  // node per store) every claim is granted.
  virtual Result<bool> claim(const std::string& name) = 0;
  virtual void release(const std::string& name) = 0;

  // Waits for queued units to commit, then stops the writer and readers.
  virtual void close() = 0;
  virtual Stats stats() const = 0;
};

struct SqliteOptions {
  std::string path;                 // database file, created if missing
  int reader_threads = 2;
  size_t writer_queue_capacity = 10000;   // units
  size_t reader_queue_capacity = 10000;   // tasks
  size_t max_batch = 512;           // units per group commit
  // The writer's page cache. A large file is one unit (all or nothing); once
  // its dirty pages outgrow the cache SQLite spills them into the WAL and
  // reads them back, which dominated a 100 k-row CASH/GUM file at 64 MiB.
  int writer_cache_mib = 256;
  int busy_timeout_ms = 5000;
  // The longest a lazy unit waits for company before it is committed alone.
  std::chrono::milliseconds lazy_delay{200};
  // Checkpoints run on a thread of their own, off the commit path, once the
  // WAL holds this many pages (about 4 KiB each).
  int checkpoint_pages = 8192;
  // When set, the store registers commit batch size / latency histograms and
  // queue depth gauges here (rendered on /metrics).
  metrics::Registry* metrics = nullptr;
};

// Opens (migrating the schema) or creates the database. Throws std::runtime_error
// at start-up on failure (configuration error), never later.
std::unique_ptr<Store> open_sqlite(const SqliteOptions& opts);

struct PostgresOptions {
  // libpq conninfo ("host=... dbname=... user=..."). The password belongs in
  // a passfile (passfile=, PGPASSFILE) or PGPASSWORD, never here: the
  // conninfo is shown (without any password) in logs and errors.
  std::string conninfo;
  int reader_threads = 2;
  size_t writer_queue_capacity = 10000;   // units
  size_t reader_queue_capacity = 10000;   // tasks
  size_t max_batch = 512;                 // units per group commit
  std::chrono::milliseconds lazy_delay{200};
  metrics::Registry* metrics = nullptr;
  // Tests only: runs on the writer thread inside every group commit, after
  // its units were applied and before COMMIT, so a test can hold a
  // transaction open and interleave another node's (change-feed order).
  std::function<void()> before_commit{};
};

// Connects (migrating the schema under a lock, so nodes starting together
// apply each step once). Throws std::runtime_error at start-up on failure.
std::unique_ptr<Store> open_postgres(const PostgresOptions& opts);

// `serve --check-migrations`: what opening the store would migrate, proved by
// applying the pending steps in a transaction that is rolled back. Nothing is
// created or changed; a missing embedded file is reported, not made. While it
// runs it holds the store's write lock (a running gateway's commits wait).
struct MigrationCheck {
  bool exists = true;       // false: no store yet (opening would create it at `known`)
  int64_t at = 0;           // the store's schema version
  int known = 0;            // the last version this binary has
  std::vector<int> pending; // steps opening would apply, in order (all applied cleanly in the dry run)
};
Result<MigrationCheck> check_migrations_sqlite(const std::string& path);
Result<MigrationCheck> check_migrations_postgres(const std::string& conninfo);

}  // namespace gw::store
