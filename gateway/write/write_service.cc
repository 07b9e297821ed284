#include "gateway/write/write_service.h"

#include <algorithm>
#include <map>
#include <mutex>

#include "gateway/audit/audit_rows.h"
#include "gateway/common/log.h"
#include "gateway/identity/nhs_number.h"
#include "gateway/identity/reconcile.h"
#include "gateway/model/resource_text.h"
#include "gateway/security/visibility.h"

namespace gw::write {

namespace {

std::string_view interaction_of(Method m) {
  switch (m) {
    case Method::get: return "read";
    case Method::post: return "create";
    case Method::put: return "update";
    case Method::remove: return "delete";
  }
  return "write";
}

std::string action_name(store::OpKind k) {
  switch (k) {
    case store::OpKind::create: return "create";
    case store::OpKind::update: return "update";
    case store::OpKind::remove: return "delete";
  }
  return "write";
}

// Validator paths start with the type ("Patient.gender"); in a Bundle they
// are re-rooted on the entry ("Bundle.entry[2].resource.gender").
void prefix_issues(std::vector<Issue>& issues, const std::string& path, const std::string& type) {
  if (path.empty()) return;
  for (auto& is : issues) {
    std::string e = is.expression;
    if (e.rfind(type, 0) == 0) e = e.substr(type.size());
    if (!e.empty() && e[0] != '.') e = "." + e;
    is.expression = path + ".resource" + e;
  }
}

// The NHS number identifier of a Patient, normalised in place: the unique key.
std::optional<std::string> nhs_unique_key(const std::string& type, json::Document& doc) {
  if (type != "Patient") return std::nullopt;
  json::Value* ids = const_cast<json::Value*>(json::member(doc, "identifier"));
  if (!ids || !ids->IsArray()) return std::nullopt;
  for (auto& ident : ids->GetArray()) {
    if (!ident.IsObject()) continue;
    auto sys = json::get_string(ident, "system");
    auto val = json::get_string(ident, "value");
    if (!sys || !val || *sys != identity::kNhsNumberSystem) continue;
    auto n = identity::normalise_nhs_number(*val);
    if (!n) continue;  // the validator has already refused invalid ones
    json::set(ident, "value", std::string_view(*n), doc.GetAllocator());
    return *n;
  }
  return std::nullopt;
}

// The NHS number a conditional Patient update is keyed on, "" otherwise.
std::string nhs_criterion(const Entry& e) {
  if (e.type != "Patient" || e.match.size() != 1) return {};
  const store::Match& m = e.match[0];
  if (m.param != "identifier" || m.system != identity::kNhsNumberSystem) return {};
  return m.value;
}

// Rewrites every "reference" that names an entry of the request by its
// urn:uuid fullUrl to "<Type>/urn:uuid:...": a placeholder no real reference
// can be (':' is not allowed in an id) that the index extractor files under
// its type, so that a body and its index rows can be made on the caller's
// thread and the writer only has to put the resolved id in (placeholder_ids).
void mark_references(json::Value& v, const std::map<std::string, std::string>& types, json::Allocator& alloc) {
  if (v.IsObject()) {
    for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
      std::string_view k(it->name.GetString(), it->name.GetStringLength());
      if (k == "reference" && it->value.IsString()) {
        auto f = types.find(std::string(json::as_view(it->value)));
        if (f != types.end()) it->value = json::str(f->second + "/" + f->first, alloc);
      } else {
        mark_references(it->value, types, alloc);
      }
    }
  } else if (v.IsArray()) {
    for (auto& e : v.GetArray()) mark_references(e, types, alloc);
  }
}

constexpr std::string_view kPlaceholder = "/urn:uuid:";

// Puts the resolved ids in for the placeholders of mark_references: `ids`
// maps "urn:uuid:..." to the id its entry resolved to.
std::string placeholder_ids(std::string_view text, const std::map<std::string, std::string>& ids) {
  std::string out;
  out.reserve(text.size());
  size_t from = 0;
  for (size_t at; (at = text.find(kPlaceholder, from)) != std::string_view::npos;) {
    size_t key_at = at + 1;
    // In a body the token ends at its closing quote; an index value is the token.
    size_t end = std::min(text.find('"', key_at), text.size());
    auto f = ids.find(std::string(text.substr(key_at, end - key_at)));
    out.append(text, from, key_at - from);
    if (f != ids.end()) out.append(f->second);
    else out.append(text, key_at, end - key_at);
    from = end;
  }
  out.append(text, from, std::string_view::npos);
  return out;
}

// The same inside a document (the merge and re-targeting paths work on JSON).
void resolve_placeholders(json::Value& v, const std::map<std::string, std::string>& ids, json::Allocator& alloc) {
  if (v.IsObject()) {
    for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
      std::string_view k(it->name.GetString(), it->name.GetStringLength());
      if (k == "reference" && it->value.IsString()) {
        std::string_view r = json::as_view(it->value);
        if (r.find(kPlaceholder) != std::string_view::npos) it->value = json::str(placeholder_ids(r, ids), alloc);
      } else {
        resolve_placeholders(it->value, ids, alloc);
      }
    }
  } else if (v.IsArray()) {
    for (auto& e : v.GetArray()) resolve_placeholders(e, ids, alloc);
  }
}

bool allowed_content(const std::vector<security::WriteCondition>& conds, const json::Value& resource,
                     const security::Principal& who) {
  return conds.empty() || std::any_of(conds.begin(), conds.end(), [&](const security::WriteCondition& c) {
           return c.met_by(resource, who);
         });
}

std::string condition_path(const std::string& prefix, const std::vector<security::WriteCondition>& conds) {
  const std::string& e = conds.front().own_organisation;
  return e.empty() ? prefix : prefix + "." + e;
}

Error not_allowed(const security::Principal& who, const std::string& type,
                  const std::vector<security::WriteCondition>& conds, bool replaced, std::string expression) {
  std::string by = "role '" + who.role + "' (organisation " + who.ods + ")";
  if (replaced) {
    return make_error(Errc::forbidden, "this " + type + " is not one " + by + " may change: it may change only a " +
                                           type + " " + conds.front().describe(),
                      std::move(expression));
  }
  return make_error(Errc::forbidden, by + " may write only a " + type + " " + conds.front().describe(),
                    std::move(expression));
}

// Where an entry's own problems point: its path in a Bundle, its type alone.
std::string where(const Entry& e, std::string_view suffix) {
  return e.path.empty() ? (suffix == ".resource" ? e.type : std::string()) : e.path + std::string(suffix);
}

}  // namespace

// One request on its way through the store. The resolution fields are
// written by the prepare hook on the writer thread and read by the commit
// callback on the same thread, after it.
// A write entry made ready on the caller's thread: the stored text and the
// index rows, with placeholders where the writer puts resolved ids.
struct Ready {
  std::string body;
  std::vector<store::IndexEntry> index;
  std::optional<std::string> unique_key;
  bool placeholders = false;
};

struct State {
  Request req;
  std::vector<Ready> ready;
  WriteService::Done done;
  std::vector<std::string> hidden;                           // the caller's hidden labels
  std::vector<std::vector<security::WriteCondition>> conds;  // per entry (create/update)
  // Resolution (writer thread).
  std::vector<size_t> op_index;       // entry -> unit op, SIZE_MAX when none
  std::vector<EntryOutcome> resolved;  // what the hook decided for entries without an op
  std::vector<std::string> bodies;     // single interactions: the text written, to answer without a read-back
  std::vector<Issue> notes;
};

// Read audit rows waiting for the next group commit: bounded, so that a
// writer that falls behind makes reads refuse loudly instead of growing
// memory or losing rows.
struct AuditQueue {
  std::mutex mu;
  std::vector<store::AuditRow> rows;
  bool flush_queued = false;
  size_t capacity = 100000;
  metrics::Gauge* depth = nullptr;
  metrics::Counter* refused = nullptr;
  metrics::Counter* lost = nullptr;
};

struct WriteService::Impl {
  store::Store& store;
  const Validator& validator;
  const security::Policy& policy;
  const security::Visibility& visibility;
  std::shared_ptr<const MergePolicy> merge;
  std::shared_ptr<AuditQueue> audit_queue = std::make_shared<AuditQueue>();

  Impl(store::Store& s, const Validator& v, const security::Policy& p, const security::Visibility& vis,
       std::shared_ptr<const MergePolicy> m, metrics::Registry* metrics, size_t queue_rows)
      : store(s), validator(v), policy(p), visibility(vis), merge(std::move(m)) {
    audit_queue->capacity = std::max<size_t>(queue_rows, 1);
    if (metrics) {
      audit_queue->depth = &metrics->gauge("gw_audit_queue_rows", "Read audit rows waiting for the next commit");
      audit_queue->refused = &metrics->counter(
          "gw_audit_refused_total", "Audit rows refused because the audit queue was full (the request got 503)");
      audit_queue->lost = &metrics->counter("gw_audit_lost_total",
                                            "Queued audit rows whose commit failed (the store failed)");
      metrics->gauge("gw_audit_queue_capacity_rows", "Capacity of the read audit queue")
          .set(static_cast<int64_t>(audit_queue->capacity));
    }
  }

  // How and why, as the request says (audit/audit_rows.h).
  static store::AuditRow stamped(const Request& r, store::AuditRow a) {
    if (!r.channel.empty()) a.channel = r.channel;
    if (!r.purpose.empty()) a.purpose = r.purpose;
    if (!r.person.empty()) a.person = r.person;
    return a;
  }

  // ---- checks on the caller's thread ------------------------------------------

  void check(const Request& r, Entry& e, std::vector<security::WriteCondition>& conds) {
    if (e.error) return;
    if (!validator.supports(e.type)) {
      e.error = make_error(Errc::not_found, "resource type '" + e.type + "' is not supported",
                           e.path.empty() ? std::string() : e.path + ".request.url");
      return;
    }
    std::string_view interaction = interaction_of(e.method);
    if (!r.internal && !policy.allows(r.who, e.type, interaction)) {
      e.error = make_error(Errc::forbidden,
                           "role '" + r.who.role + "' may not " + std::string(interaction) + " " + e.type, e.path);
      return;
    }
    if (e.method != Method::post && e.method != Method::put) return;
    if (!e.resource || !e.resource->IsObject()) {
      e.error = make_error(Errc::invalid_input, "entry.resource is required", where(e, ".resource"));
      return;
    }
    IssueSink sink;
    validator.validate(*e.resource, sink);
    if (sink.has_errors()) {
      e.issues = sink.issues();
      prefix_issues(e.issues, e.path, e.type);
      e.error = make_error(Errc::unprocessable, "the resource is not valid", where(e, ".resource"));
      return;
    }
    if (!r.internal) conds = policy.write_conditions(r.who, e.type, interaction);
    if (!allowed_content(conds, *e.resource, r.who)) {
      e.error = not_allowed(r.who, e.type, conds, false, condition_path(where(e, ".resource"), conds));
      return;
    }
    if (e.method == Method::put && !e.id.empty()) {
      auto body_id = json::get_string(*e.resource, "id");
      if (!body_id || *body_id != e.id) {
        e.error = make_error(Errc::invalid_input, "resource.id must match the id in request.url",
                             e.path.empty() ? "id" : e.path + ".resource.id");
        return;
      }
    }
  }

  // The JSON work of every write entry, here rather than on the writer:
  // references to other entries marked, the stored text and the index rows.
  void prepare(State& st) {
    std::map<std::string, std::string> types;  // urn:uuid fullUrl -> its entry's type
    // A batch's entries stand alone: their urn:uuid references are not resolved.
    if (st.req.mode == Mode::transaction)
      for (const auto& e : st.req.entries)
        if (e.full_url.rfind("urn:uuid:", 0) == 0 && e.method != Method::remove && e.method != Method::get)
          types[e.full_url] = e.type;
    st.ready.assign(st.req.entries.size(), Ready{});
    for (size_t i = 0; i < st.req.entries.size(); ++i) {
      Entry& e = st.req.entries[i];
      if (e.error || !e.resource || (e.method != Method::post && e.method != Method::put)) continue;
      json::Document& d = *e.resource;
      if (!types.empty()) mark_references(d, types, d.GetAllocator());
      Ready& r = st.ready[i];
      r.unique_key = nhs_unique_key(e.type, d);
      r.index = model::index_entries(e.type, d, validator.search_params());
      r.body = model::storage_text(d, e.type, d.GetAllocator());
      r.placeholders = !types.empty() && r.body.find(kPlaceholder) != std::string::npos;
    }
  }

  static Issue issue_of(const Error& e) {
    return Issue{Severity::error, fhir_issue_code_for(e.code), e.expression, e.message};
  }

  // ---- submit -------------------------------------------------------------------

  void submit(Request req, Done done) {
    auto st = std::make_shared<State>();
    st->req = std::move(req);
    st->done = std::move(done);
    st->hidden = st->req.internal ? std::vector<std::string>{} : policy.hidden_labels(st->req.who);
    st->conds.resize(st->req.entries.size());
    for (size_t i = 0; i < st->req.entries.size(); ++i) check(st->req, st->req.entries[i], st->conds[i]);
    prepare(*st);
    if (st->req.mode == Mode::batch) return run_batch(st);
    // All or nothing: any entry's problem fails the whole request, every problem listed.
    Outcome refused;
    int status = 0;
    for (const auto& e : st->req.entries) {
      if (!e.error) continue;
      if (!e.issues.empty()) refused.issues.insert(refused.issues.end(), e.issues.begin(), e.issues.end());
      else refused.issues.push_back(issue_of(*e.error));
      int s = http_status_for(e.error->code);
      if (s > status) {
        status = s;
        refused.failure = *e.error;
      }
    }
    if (refused.failure) {
      record_failure(*st, status);
      return st->done(std::move(refused));
    }
    commit(st);
  }

  void record_failure(const State& st, int status) {
    const Request& r = st.req;
    std::string action = r.action;
    std::string entity = "Bundle";
    if (action.empty() && r.entries.size() == 1) {
      const Entry& e = r.entries[0];
      action = std::string(interaction_of(e.method));
      entity = e.id.empty() ? e.type : e.type + "/" + e.id;
    }
    if (action.empty()) return;
    (void)record({stamped(r, audit::row(r.who, action, entity, status, r.request_id))});
  }

  void commit(std::shared_ptr<State> st) {
    store::UnitOfWork unit;
    unit.idempotency_key = st->req.idempotency_key;
    unit.inbound = std::move(st->req.inbound);
    unit.inbound_status = std::move(st->req.inbound_status);
    unit.audit = std::move(st->req.audit);
    unit.timer_sets = std::move(st->req.timer_sets);
    unit.prepare = [this, st](store::TxView& view, store::UnitOfWork& u) { return resolve(*st, view, u); };
    auto r = store.commit(std::move(unit), [this, st](Result<store::CommitOutcome> res) {
      committed(st, std::move(res));
    });
    if (!r) fail(*st, r.error());
  }

  void fail(State& st, Error e) {
    if (e.code == Errc::internal || e.code == Errc::store_failure) {
      log::error("store_write_failed", {{"req", st.req.request_id}, {"reason", e.message}});
    }
    record_failure(st, http_status_for(e.code));
    Outcome out;
    out.failure = std::move(e);
    st.done(std::move(out));
  }

  // ---- resolution, inside the writer's transaction --------------------------------

  // What one write entry lands on.
  struct Target {
    std::string id;
    std::optional<store::StoredResource> current;  // the live version it replaces
    bool noop = false;
    bool retargeted = false;  // a merged-away number's update, rewritten for its survivor
  };

  Result<Target> target_of(State& st, const Entry& e, json::Document* doc, store::TxView& view) {
    const Request& r = st.req;
    Target t;
    auto read_live = [&](const std::string& id) -> Result<std::optional<store::StoredResource>> {
      auto cur = view.read(e.type, id);
      if (cur) return std::optional<store::StoredResource>(std::move(*cur));
      if (cur.error().code == Errc::not_found || cur.error().code == Errc::gone)
        return std::optional<store::StoredResource>();
      return cur.error();
    };
    auto not_found = [&]() {
      return make_error(Errc::not_found, e.type + " not found", e.path.empty() ? "" : e.path + ".request.url");
    };
    if (e.method == Method::post) {
      t.id = model::new_uuid();
      if (e.if_none_exist.empty()) return t;
      auto ids = view.match(e.type, e.if_none_exist, 1);
      if (!ids) return ids.error();
      if (ids->empty()) return t;
      t.id = ids->front();
      t.noop = true;
      auto cur = read_live(t.id);
      if (!cur) return cur.error();
      t.current = std::move(*cur);
      return t;
    }
    if (e.method == Method::put && !e.match.empty()) {
      // A feed's Patient keyed on an NHS number: merges are followed, and an
      // older message leaves newer demographics alone (identity/reconcile.h).
      std::string nhs = r.feed.empty() ? std::string() : nhs_criterion(e);
      if (!nhs.empty() && doc && identity::replaced_by(*doc).empty()) {
        auto subject = identity::find_subject(view, nhs);
        if (!subject) {
          Error err = subject.error();
          if (!e.path.empty() && err.expression.empty()) err.expression = e.path + ".request.url";
          return err;
        }
        if (*subject) {
          if (security::hidden_by_labels((*subject)->record.body, st.hidden) &&
              !security::keeps_hidden_labels((*subject)->record.body, *doc, st.hidden))
            return not_found();
          auto stored = json::parse((*subject)->record.body);
          if (!stored || !stored->IsObject()) return make_error(Errc::internal, "a stored Patient is not readable");
          t.id = (*subject)->record.id;
          if ((*subject)->merged_away) {
            identity::retarget_to_survivor(*doc, *stored);
            t.retargeted = true;
            st.notes.push_back(Issue{Severity::warning, "informational", "PID-3",
                                     "this NHS number was merged into another record; the message was applied to the "
                                     "surviving record"});
          }
          if (identity::older_than_stored(r.message_time, *stored)) {
            t.noop = true;
            st.notes.push_back(Issue{Severity::warning, "informational", "MSH-7",
                                     "older than the data already held for this patient: demographics not overwritten"});
          }
          t.current = std::move((*subject)->record);
          return t;
        }
      }
      auto ids = view.match(e.type, e.match, 2);
      if (!ids) return ids.error();
      if (ids->size() > 1) {
        return make_error(Errc::version_conflict, "conditional update matched more than one resource",
                          e.path.empty() ? "" : e.path + ".request.url");
      }
      if (ids->empty()) {
        auto body_id = doc ? json::get_string(*doc, "id") : std::nullopt;
        t.id = body_id && model::is_valid_id(*body_id) ? std::string(*body_id) : model::new_uuid();
        return t;
      }
      t.id = ids->front();
      auto cur = read_live(t.id);
      if (!cur) return cur.error();
      t.current = std::move(*cur);
      // A match the caller may not see: a single interaction is refused as if
      // nothing matched; in a Bundle it is refused unless the entry keeps the
      // hidden labels (a feed resending what it wrote; never a strip).
      if (t.current && security::hidden_by_labels(t.current->body, st.hidden)) {
        bool keeps = !r.action.empty() && doc && security::keeps_hidden_labels(t.current->body, *doc, st.hidden);
        if (!keeps) return not_found();
      }
      return t;
    }
    // By id: PUT (update, or create when absent) and DELETE.
    t.id = e.id;
    auto cur = read_live(t.id);
    if (!cur) return cur.error();
    t.current = std::move(*cur);
    if (t.current && security::hidden_by_labels(t.current->body, st.hidden)) return not_found();
    if (e.method == Method::remove && !t.current) {
      // Deleting what is already deleted succeeds (FHIR delete is idempotent);
      // the store says whether it ever existed.
      return t;
    }
    return t;
  }

  Result<void> resolve(State& st, store::TxView& view, store::UnitOfWork& u) {
    const Request& r = st.req;
    const size_t n = r.entries.size();
    st.op_index.assign(n, SIZE_MAX);
    st.resolved.assign(n, EntryOutcome{});
    st.bodies.assign(r.action.empty() ? n : 0, std::string());
    st.notes.clear();
    std::vector<Target> targets(n);
    std::vector<json::Document*> docs(n, nullptr);
    std::map<std::string, std::string> ids;  // urn:uuid fullUrl -> resolved id
    for (size_t i = 0; i < n; ++i) {
      const Entry& e = r.entries[i];
      if (e.method == Method::get) continue;
      // The hook runs once per request, so it may work on the entry's own document.
      if (e.resource) docs[i] = e.resource.get();
      auto t = target_of(st, e, docs[i], view);
      if (!t) return t.error();
      targets[i] = std::move(*t);
      // What the entry replaces must be the caller's own as well (conditional
      // grants), or a second organisation could take it over.
      const auto& conds = st.conds[i];
      if (!conds.empty() && e.method == Method::put && targets[i].current) {
        auto cur = json::parse(targets[i].current->body);
        if (!cur || !allowed_content(conds, *cur, r.who)) {
          return not_allowed(r.who, e.type, conds, true,
                             e.path.empty() ? condition_path(e.type, conds) : e.path + ".resource");
        }
      }
      if (e.full_url.rfind("urn:uuid:", 0) == 0 && e.method != Method::remove) ids[e.full_url] = targets[i].id;
    }
    for (size_t i = 0; i < n; ++i) {
      const Entry& e = r.entries[i];
      if (e.method == Method::get) continue;
      Target& t = targets[i];
      if (t.noop) {
        EntryOutcome& o = st.resolved[i];
        o.status = 200;
        o.id = t.id;
        o.noop = true;
        if (t.current) {
          o.version = t.current->version;
          o.last_updated = t.current->last_updated;
        }
        continue;
      }
      store::WriteOp op;
      op.type = e.type;
      op.id = t.id;
      op.if_match = e.if_match;
      if (e.method == Method::remove) {
        op.kind = store::OpKind::remove;
      } else {
        op.kind = e.method == Method::post ? store::OpKind::create : store::OpKind::update;
        bool merged = !r.feed.empty() && merge && t.current && merge->merges(e.type, r.feed);
        if (merged || t.retargeted) {
          // What is stored depends on what is there: the JSON way, here.
          json::Document& d = *docs[i];
          resolve_placeholders(d, ids, d.GetAllocator());
          if (merged) {
            if (auto cur = json::parse(t.current->body); cur && cur->IsObject()) merge->merge(e.type, r.feed, *cur, d);
          }
          op.unique_key = nhs_unique_key(e.type, d);
          op.index = model::index_entries(e.type, d, validator.search_params());
          op.body = model::storage_text(d, e.type, d.GetAllocator());
        } else {
          Ready& ready = st.ready[i];
          op.unique_key = std::move(ready.unique_key);
          op.index = std::move(ready.index);
          if (ready.placeholders) {
            op.body = placeholder_ids(ready.body, ids);
            for (auto& x : op.index)
              if (x.value.find(kPlaceholder) != std::string::npos) x.value = placeholder_ids(x.value, ids);
          } else {
            op.body = std::move(ready.body);
          }
        }
        if (!st.bodies.empty()) st.bodies[i] = op.body;
      }
      st.op_index[i] = u.ops.size();
      std::string entity = e.type + "/" + op.id;
      if (!r.internal) {
        u.audit.push_back(stamped(r, audit::row(r.who, action_name(op.kind), entity, 200, r.request_id,
                                                e.type == "Patient" ? entity : std::string())));
        op.source = audit::source_of(r.who);
      }
      u.ops.push_back(std::move(op));
    }
    if (auto moved = move_plans(st, view, targets, docs, ids, u); !moved) return moved.error();
    if (!r.action.empty()) u.audit.push_back(bundle_row(r, 200));
    // What was decided on the sender's behalf is kept with its message too.
    if (!st.notes.empty())
      for (auto& row : u.inbound) row.issues_json = append_issues(row.issues_json, st.notes);
    return {};
  }

  static std::string append_issues(const std::string& json_array, const std::vector<Issue>& more) {
    std::string add = issues_json(more);
    if (json_array.size() < 2 || json_array == "[]") return add;
    return json_array.substr(0, json_array.size() - 1) + "," + add.substr(1);
  }

  // A Patient entry that is a merge (link replaced-by): the plans held against
  // the retired record move to the survivor in the same transaction.
  Result<void> move_plans(State& st, store::TxView& view, const std::vector<Target>& targets,
                          const std::vector<json::Document*>& docs, const std::map<std::string, std::string>& ids,
                          store::UnitOfWork& u) {
    const Request& r = st.req;
    size_t moved = 0;
    for (size_t i = 0; i < r.entries.size(); ++i) {
      const Entry& e = r.entries[i];
      if (e.type != "Patient" || !docs[i] || st.op_index[i] == SIZE_MAX) continue;
      std::string survivor = placeholder_ids(identity::replaced_by(*docs[i]), ids);
      if (survivor.rfind("Patient/", 0) != 0 || survivor == "Patient/" + targets[i].id) continue;
      std::string retired_nhs = identity::nhs_number_of(*docs[i]);
      if (retired_nhs.empty() || !targets[i].current) continue;
      std::string survivor_nhs;
      for (size_t k = 0; k < r.entries.size(); ++k)
        if (docs[k] && r.entries[k].type == "Patient" && "Patient/" + targets[k].id == survivor)
          survivor_nhs = identity::nhs_number_of(*docs[k]);
      auto plans = identity::plans_moved_by_merge(view, targets[i].id, retired_nhs, survivor, survivor_nhs);
      if (!plans) return plans.error();
      for (auto& p : *plans) {
        store::WriteOp op;
        op.kind = store::OpKind::update;
        op.type = "CareTeam";
        op.id = p.id;
        op.if_match = p.version;
        op.index = model::index_entries("CareTeam", p.care_team, validator.search_params());
        op.body = model::storage_text(p.care_team, "CareTeam", p.care_team.GetAllocator());
        std::string entity = "CareTeam/" + p.id;
        u.audit.push_back(stamped(r, audit::row(r.who, "update", entity, 200, r.request_id)));
        op.source = audit::source_of(r.who);
        u.ops.push_back(std::move(op));
        ++moved;
      }
    }
    if (moved) {
      st.notes.push_back(Issue{Severity::warning, "informational", "MRG-1",
                               std::to_string(moved) +
                                   " child protection plan(s) moved to the surviving record; the local authority "
                                   "is notified"});
    }
    return {};
  }

  // ---- after the commit (writer thread) -------------------------------------------

  void committed(std::shared_ptr<State> st, Result<store::CommitOutcome> res) {
    if (!res) return fail(*st, res.error());
    auto out = std::make_shared<Outcome>();
    out->inbound_ids = std::move(res->inbound_ids);
    out->notes = st->notes;
    const auto& entries = st->req.entries;
    out->entries.resize(entries.size());
    bool reads = false;
    for (size_t i = 0; i < entries.size(); ++i) {
      EntryOutcome& o = out->entries[i];
      const Entry& e = entries[i];
      if (e.method == Method::get) {
        reads = true;
        continue;
      }
      if (st->op_index[i] == SIZE_MAX) {
        o = std::move(st->resolved[i]);
        reads = reads || o.noop;
        continue;
      }
      const store::OpOutcome& op = res->ops.at(st->op_index[i]);
      o.id = op.id;
      o.version = op.version;
      o.last_updated = op.last_updated;
      o.created = op.created;
      o.noop = op.noop;
      o.status = e.method == Method::remove ? 200 : (op.created ? 201 : 200);
      if (!st->bodies.empty()) o.body = std::move(st->bodies[i]);
    }
    if (!reads) return st->done(std::move(*out));
    // GET entries are answered from the committed state, and what a
    // conditional create matched only when the caller may see it: on a reader.
    auto r = store.run_read([this, st, out] {
      const auto& entries = st->req.entries;
      for (size_t i = 0; i < entries.size(); ++i) {
        EntryOutcome& o = out->entries[i];
        const Entry& e = entries[i];
        if (e.method != Method::get && !o.noop) continue;
        auto cur = store.read(e.type, e.method == Method::get ? e.id : o.id);
        bool hidden = cur && visibility.hidden_from(st->req.who, *cur, "read");
        if (e.method == Method::get) {
          if (hidden) cur = make_error(Errc::not_found, e.type + " not found");
          if (cur) {
            o.status = 200;
            o.resource = std::move(*cur);
          } else {
            o.status = http_status_for(cur.error().code);
            o.error = cur.error();
          }
        } else {
          o.hidden = hidden;
          if (cur && !hidden) o.resource = std::move(*cur);
        }
      }
      st->done(std::move(*out));
    });
    if (!r) fail(*st, r.error());
  }

  // ---- batch --------------------------------------------------------------------

  // Each entry on its own: a one-entry transaction per write, answered together.
  void run_batch(std::shared_ptr<State> st) {
    struct Batch {
      std::mutex mu;
      Outcome out;
      size_t pending = 0;
    };
    auto b = std::make_shared<Batch>();
    const size_t n = st->req.entries.size();
    b->out.entries.resize(n);
    b->pending = n;
    auto done_one = [this, st, b](size_t i, EntryOutcome o) {
      bool last = false;
      {
        std::lock_guard lock(b->mu);
        b->out.entries[i] = std::move(o);
        last = --b->pending == 0;
      }
      if (!last) return;
      if (!st->req.action.empty()) (void)record({bundle_row(st->req, 200)});
      st->done(std::move(b->out));
    };
    if (n == 0) {
      if (!st->req.action.empty()) (void)record({bundle_row(st->req, 200)});
      return st->done(Outcome{});
    }
    for (size_t i = 0; i < n; ++i) {
      Entry& e = st->req.entries[i];
      if (e.error) {
        EntryOutcome o;
        o.status = http_status_for(e.error->code);
        o.error = e.error;
        o.issues = e.issues;
        done_one(i, std::move(o));
        continue;
      }
      Request one;
      one.who = st->req.who;
      one.request_id = st->req.request_id;
      one.internal = st->req.internal;
      one.channel = st->req.channel;
      one.purpose = st->req.purpose;
      one.person = st->req.person;
      one.entries.push_back(std::move(e));
      auto sub = std::make_shared<State>();
      sub->req = std::move(one);
      sub->hidden = st->hidden;
      sub->conds = {st->conds[i]};
      sub->ready = {std::move(st->ready[i])};
      sub->done = [done_one, i](Outcome o) {
        if (o.failure) {
          EntryOutcome eo;
          eo.status = http_status_for(o.failure->code);
          eo.error = std::move(o.failure);
          return done_one(i, std::move(eo));
        }
        done_one(i, std::move(o.entries.at(0)));
      };
      commit(sub);
    }
  }

  // The row of a whole Bundle: a feed's says what the message was.
  static store::AuditRow bundle_row(const Request& r, int status) {
    store::AuditRow a = stamped(r, audit::row(r.who, r.action, "Bundle", status, r.request_id));
    if (!r.topic.empty()) a.topic = r.topic;
    return a;
  }

  Result<void> record(std::vector<store::AuditRow> rows) {
    if (rows.empty()) return {};
    std::shared_ptr<AuditQueue> q = audit_queue;
    bool flush = false;
    {
      std::lock_guard lk(q->mu);
      if (q->rows.size() + rows.size() > q->capacity) {
        if (q->refused) q->refused->inc(rows.size());
        log::error("audit_queue_full", {{"rows", static_cast<uint64_t>(q->rows.size())},
                                        {"capacity", static_cast<uint64_t>(q->capacity)}});
        return make_error(Errc::unavailable, "the audit trail cannot keep up: try again shortly");
      }
      for (auto& a : rows) q->rows.push_back(std::move(a));
      if (q->depth) q->depth->set(static_cast<int64_t>(q->rows.size()));
      flush = !q->flush_queued;
      q->flush_queued = true;
    }
    if (flush) queue_flush(q);
    return {};
  }

  // One unit takes every row queued by the time the writer reaches it: under
  // load one unit (and no extra fsync) per group commit, whatever the reads.
  void queue_flush(const std::shared_ptr<AuditQueue>& q) {
    auto taken = std::make_shared<size_t>(0);
    store::UnitOfWork u;
    u.prepare = [q, taken](store::TxView&, store::UnitOfWork& unit) -> Result<void> {
      std::lock_guard lk(q->mu);
      unit.audit.swap(q->rows);
      q->flush_queued = false;
      *taken = unit.audit.size();
      if (q->depth) q->depth->set(0);
      return {};
    };
    auto r = store.commit(std::move(u), [q, taken](Result<store::CommitOutcome> res) {
      if (res) return;
      if (q->lost) q->lost->inc(*taken);
      log::error("audit_write_failed", {{"rows", static_cast<uint64_t>(*taken)}, {"reason", res.error().message}});
    });
    if (!r) {
      // The rows stay queued (and counted against the bound); the next
      // record() queues the flush again.
      std::lock_guard lk(q->mu);
      q->flush_queued = false;
      log::warn("audit_flush_deferred", {{"reason", r.error().message}});
    }
  }
};

WriteService::WriteService(store::Store& store, const Validator& validator, const security::Policy& policy,
                           const security::Visibility& visibility, std::shared_ptr<const MergePolicy> merge,
                           metrics::Registry* metrics, size_t audit_queue_rows)
    : impl_(std::make_unique<Impl>(store, validator, policy, visibility, std::move(merge), metrics,
                                   audit_queue_rows)) {}

WriteService::~WriteService() = default;

void WriteService::submit(Request req, Done done) { impl_->submit(std::move(req), std::move(done)); }

Result<void> WriteService::record(std::vector<store::AuditRow> rows) { return impl_->record(std::move(rows)); }

const Validator& WriteService::validator() const { return impl_->validator; }
const security::Policy& WriteService::policy() const { return impl_->policy; }
store::Store& WriteService::store() { return impl_->store; }

}  // namespace gw::write
