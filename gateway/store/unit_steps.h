#pragma once
// The order in which a unit of work lands, the same in both stores: the
// prepare hook first (inside the transaction, so what it decides is what is
// written), then the idempotency key, the ops, audit, outbox, inbound rows,
// events and the cursor. Each store supplies the rows (its SQL):
//
//   TxView& view();
//   Result<void> claim_idempotency_key(const std::string& key, const std::string& now);
//   Result<OpOutcome> apply(const WriteOp&, int64_t now_ms);
//   Result<void> insert_audit(const AuditRow&, const std::string& now);
//   Result<void> insert_audit_checkpoint(const AuditCheckpoint&);
//   Result<void> prune_audit(int64_t through);
//   Result<void> insert_outbox(const OutboxRow&, const std::string& now);
//   Result<int64_t> insert_inbound(const InboundRow&, const std::string& now, const std::string& written);
//   Result<void> set_inbound_status(int64_t id, const std::string& status);
//   Result<int64_t> insert_event(const NewEvent&, const std::string& now);
//   Result<void> update_events(const EventUpdate&);
//   Result<void> set_cursor(const std::string& name, int64_t seq, std::optional<int64_t> from);
//   Result<void> apply_timers(const UnitOfWork&, const std::string& now);  // schedules, then fired keys
#include <string>

#include "gateway/store/store.h"

namespace gw::store {

template <class Rows>
Result<CommitOutcome> apply_unit(Rows& rows, UnitOfWork& u, int64_t now_ms, const std::string& now) {
  if (u.prepare)
    if (auto r = u.prepare(rows.view(), u); !r) return r.error();
  CommitOutcome out;
  if (u.idempotency_key)
    if (auto r = rows.claim_idempotency_key(*u.idempotency_key, now); !r) return r.error();
  out.ops.reserve(u.ops.size());
  for (const auto& op : u.ops) {
    auto r = rows.apply(op, now_ms);
    if (!r) return r.error();
    out.ops.push_back(std::move(*r));
  }
  // Audit rows one writing transaction at a time, so the trail's hash chain
  // (docs/AUDIT.md) is linear.
  for (const auto& a : u.audit)
    if (auto r = rows.insert_audit(a, now); !r) return r.error();
  if (u.audit_checkpoint)
    if (auto r = rows.insert_audit_checkpoint(*u.audit_checkpoint); !r) return r.error();
  if (u.audit_prune_through)
    if (auto r = rows.prune_audit(*u.audit_prune_through); !r) return r.error();
  for (const auto& o : u.outbox)
    if (auto r = rows.insert_outbox(o, now); !r) return r.error();
  // A kept message points at the versions its unit wrote ("the FHIR it became").
  std::string written;
  for (const auto& op : out.ops) {
    if (op.seq <= 0) continue;
    if (!written.empty()) written += ',';
    written += std::to_string(op.seq);
  }
  for (const auto& m : u.inbound) {
    auto id = rows.insert_inbound(m, now, written);
    if (!id) return id.error();
    out.inbound_ids.push_back(*id);
  }
  for (const auto& [id, status] : u.inbound_status)
    if (auto r = rows.set_inbound_status(id, status); !r) return r.error();
  for (const auto& e : u.events) {
    auto n = rows.insert_event(e, now);
    if (!n) return n.error();
    out.event_numbers.push_back(*n);
  }
  for (const auto& e : u.event_updates)
    if (auto r = rows.update_events(e); !r) return r.error();
  if (u.cursor)
    if (auto r = rows.set_cursor(u.cursor->first, u.cursor->second, u.cursor_from); !r) return r.error();
  if (!u.timer_sets.empty() || !u.timers_fired.empty())
    if (auto r = rows.apply_timers(u, now); !r) return r.error();
  return out;
}

}  // namespace gw::store
