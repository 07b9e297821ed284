#include "gateway/ingest/hl7_ingest.h"

#include <charconv>

#include "gateway/audit/audit_rows.h"
#include "gateway/common/issues.h"
#include "gateway/common/json.h"
#include "gateway/common/log.h"
#include "gateway/hl7/ack.h"
#include "gateway/hl7/er7.h"
#include "gateway/write/bundle_entries.h"

namespace gw::ingest {

namespace {


// "OBX[2]-3.1" -> OBX, occurrence 2, field 3; "PID" -> PID, field 0.
hl7::AckError locate(std::string_view expr) {
  hl7::AckError e;
  size_t i = 0;
  while (i < expr.size() && std::isalnum(static_cast<unsigned char>(expr[i]))) ++i;
  e.segment = std::string(expr.substr(0, i));
  if (i < expr.size() && expr[i] == '[') {
    size_t close = expr.find(']', i);
    if (close != std::string_view::npos) {
      std::from_chars(expr.data() + i + 1, expr.data() + close, e.sequence);
      i = close + 1;
    }
  }
  if (i < expr.size() && expr[i] == '-') {
    size_t end = i + 1;
    while (end < expr.size() && std::isdigit(static_cast<unsigned char>(expr[end]))) ++end;
    std::from_chars(expr.data() + i + 1, expr.data() + end, e.field);
  }
  if (e.segment.size() != 3) e.segment.clear();  // not an HL7 location (a FHIR path)
  return e;
}

hl7::ErrorCode code_for(std::string_view issue_code, const hl7::AckError& where) {
  if (issue_code == "required") return hl7::ErrorCode::required_field_missing;
  if (issue_code == "code-invalid") return hl7::ErrorCode::table_value_not_found;
  if (issue_code == "not-supported") {
    if (where.segment == "MSH" && where.field == 12) return hl7::ErrorCode::unsupported_version;
    return hl7::ErrorCode::unsupported_message_type;
  }
  if (issue_code == "value" || issue_code == "invalid" || issue_code == "structure") return hl7::ErrorCode::data_type;
  return hl7::ErrorCode::application_internal;
}

std::vector<hl7::AckError> ack_errors(const std::vector<Issue>& issues) {
  std::vector<hl7::AckError> out;
  for (const auto& i : issues) {
    if (i.severity != Severity::error && i.severity != Severity::fatal) continue;
    hl7::AckError e = locate(i.expression);
    e.code = code_for(i.code, e);
    e.text = e.segment.empty() && !i.expression.empty() ? i.expression + ": " + i.message : i.message;
    out.push_back(std::move(e));
  }
  return out;
}

std::string first_error_text(const std::vector<Issue>& issues) {
  for (const auto& i : issues)
    if (i.severity == Severity::error || i.severity == Severity::fatal)
      return i.expression.empty() ? i.message : i.expression + ": " + i.message;
  return {};
}

}  // namespace

const char* outcome_name(Outcome o) {
  switch (o) {
    case Outcome::accepted: return "accepted";
    case Outcome::duplicate: return "duplicate";
    case Outcome::invalid: return "invalid";
    case Outcome::rejected: return "rejected";
    case Outcome::unavailable: return "unavailable";
  }
  return "unknown";
}

// Everything one message needs while its commit is in flight. The Message
// views `text`, so the State is never moved once parsed.
struct MessageState {
  std::string raw;   // as received
  std::string utf8;  // converted text when MSH-18 required it
  std::string_view text;
  std::optional<hl7::Message> msg;
  Source src;
  std::vector<Issue> warnings;
  std::string idempotency_key;
  std::function<void(IngestResult)> done;
};

struct Hl7Ingest::Impl {
  const adapters::Adapter& adapter;
  write::WriteService& writes;
  store::Store& store;
  metrics::Registry& metrics;

  Impl(const adapters::Adapter& a, write::WriteService& w, metrics::Registry& m)
      : adapter(a), writes(w), store(w.store()), metrics(m) {}

  void count(Outcome o) {
    metrics
        .counter("gw_ingest_messages_total", "Legacy messages by adapter and outcome",
                 "adapter=\"" + std::string(adapter.format_id()) + "\",outcome=\"" + outcome_name(o) + "\"")
        .inc();
  }

  std::string ack(const MessageState& st, hl7::AckCode code, std::string_view text,
                  const std::vector<hl7::AckError>& errors = {}) {
    if (st.msg) return hl7::build_ack(*st.msg, code, text, errors);
    return hl7::build_reject(text, {}, errors);
  }

  void finish(const std::shared_ptr<MessageState>& st, Outcome o, std::string ack_text, int64_t inbound_id,
              std::vector<Issue> issues) {
    count(o);
    // MSH-10 ties the line to the sender's own log and to the ACK it got
    // (never a patient identifier); inbound_id is the id /admin shows.
    std::string control_id = st->msg ? std::string(st->msg->control_id()) : std::string();
    log::info("ingest", {{"adapter", std::string(adapter.format_id())},
                         {"channel", st->src.channel},
                         {"conn", st->src.conn_id},
                         {"msg", st->src.msg_id},
                         {"control_id", control_id.substr(0, 64)},
                         {"outcome", outcome_name(o)},
                         {"inbound_id", inbound_id}});
    IngestResult r;
    r.outcome = o;
    r.ack = std::move(ack_text);
    r.control_id = std::move(control_id);
    r.inbound_id = inbound_id;
    r.issues = std::move(issues);
    st->done(std::move(r));
  }

  void handle(std::string raw, Source src, std::function<void(IngestResult)> done) {
    auto st = std::make_shared<MessageState>();
    st->raw = std::move(raw);
    st->src = std::move(src);
    st->done = std::move(done);
    if (auto t = hl7::to_utf8(st->raw, st->utf8)) {
      st->text = *t;
      if (auto m = hl7::Message::parse(st->text)) st->msg.emplace(std::move(*m));
    }

    IssueSink sink;
    auto bundle = adapter.parse(st->raw, sink);
    std::vector<Issue> issues = sink.issues();
    if (!bundle || sink.has_errors()) {
      bool understood = sink.has_errors() && st->msg.has_value();
      if (!bundle && !sink.has_errors()) {
        issues.push_back(Issue{Severity::error,
                               bundle.error().code == Errc::invalid_input ? "structure" : "not-supported",
                               bundle.error().expression, bundle.error().message});
      }
      std::vector<hl7::AckError> errs = ack_errors(issues);
      std::string text = first_error_text(issues);
      std::string a = ack(*st, understood ? hl7::AckCode::AE : hl7::AckCode::AR, text, errs);
      return quarantine(st, understood ? Outcome::invalid : Outcome::rejected, std::move(a), std::move(issues), text);
    }
    st->warnings = std::move(issues);
    auto doc = json::parse(bundle->json);
    if (!doc || !doc->IsObject()) {
      // The adapter produced something that is not JSON: a bug, kept for replay once fixed.
      std::vector<Issue> is{{Severity::error, "exception", "", "internal mapping error"}};
      return quarantine(st, Outcome::invalid,
                        ack(*st, hl7::AckCode::AE, "internal mapping error",
                            {hl7::AckError{"", 1, 0, hl7::ErrorCode::application_internal, "internal mapping error"}}),
                        std::move(is), "internal mapping error");
    }
    if (auto id = json::member(*doc, "identifier"); id && id->IsObject()) {
      st->idempotency_key = std::string(adapter.format_id()) + "|" + st->src.principal.ods + "|" +
                            std::string(json::get_string(*id, "system").value_or("")) + "|" +
                            std::string(json::get_string(*id, "value").value_or(""));
    }
    write::Request w;
    w.who = st->src.principal;
    w.request_id = std::to_string(st->src.msg_id);
    w.action = "transaction";
    w.feed = std::string(adapter.format_id());
    // The audit trail's channel and topic (audit/audit_rows.h).
    w.channel = audit::audit_channel(st->src.channel);
    w.topic = std::string(adapter.format_id());
    w.message_time = std::string(json::get_string(*doc, "timestamp").value_or(""));
    w.entries = write::entries_from_bundle(json::member(*doc, "entry"));
    if (!st->idempotency_key.empty()) w.idempotency_key = st->idempotency_key;
    w.inbound.push_back(inbound_row(*st, "accepted", "", st->warnings));
    if (st->src.replay_of) w.inbound_status.emplace_back(st->src.replay_of, "replayed");
    writes.submit(std::move(w), [this, st](write::Outcome out) { on_committed(st, std::move(out)); });
  }

  void on_committed(std::shared_ptr<MessageState> st, write::Outcome out) {
    if (!out.failure) {
      st->warnings.insert(st->warnings.end(), out.notes.begin(), out.notes.end());
      std::string text = st->warnings.empty() ? "" : first_warning(st->warnings);
      int64_t kept = out.inbound_ids.empty() ? 0 : out.inbound_ids[0];
      return finish(st, Outcome::accepted, ack(*st, hl7::AckCode::AA, text), kept, st->warnings);
    }
    const Error& e = *out.failure;
    if (e.code == Errc::conflict && e.expression == "idempotency-key") {
      if (st->src.replay_of) {
        // The sender resent it and that copy was accepted: nothing left to replay.
        store::UnitOfWork u;
        u.inbound_status.emplace_back(st->src.replay_of, "superseded");
        auto r = store.commit(std::move(u), [this, st](Result<store::CommitOutcome>) {
          finish(st, Outcome::duplicate, ack(*st, hl7::AckCode::AA, "duplicate of a message already accepted"),
                 st->src.replay_of, {});
        });
        if (r) return;
      }
      return finish(st, Outcome::duplicate, ack(*st, hl7::AckCode::AA, "duplicate of a message already accepted"), 0,
                    {});
    }
    if (e.code == Errc::unavailable) {
      return finish(st, Outcome::unavailable, ack(*st, hl7::AckCode::AR, "the gateway is busy; resend later"), 0, {});
    }
    if (e.code == Errc::store_failure) {
      return finish(st, Outcome::unavailable,
                    ack(*st, hl7::AckCode::AR, "the gateway could not store this message; resend later"), 0, {});
    }
    std::vector<Issue> issues = out.issues;
    if (issues.empty()) issues.push_back(Issue{Severity::error, fhir_issue_code_for(e.code), e.expression, e.message});
    std::string text = first_error_text(issues);
    std::vector<hl7::AckError> errs;
    for (const auto& i : issues) {
      if (i.severity != Severity::error) continue;
      errs.push_back(hl7::AckError{"", 1, 0, hl7::ErrorCode::application_internal,
                                   i.expression.empty() ? i.message : i.expression + ": " + i.message});
    }
    issues.insert(issues.end(), st->warnings.begin(), st->warnings.end());
    quarantine(st, Outcome::invalid, ack(*st, hl7::AckCode::AE, text, errs), std::move(issues), text);
  }

  static std::string first_warning(const std::vector<Issue>& issues) {
    for (const auto& i : issues) return i.expression.empty() ? i.message : i.expression + ": " + i.message;
    return {};
  }

  store::InboundRow inbound_row(const MessageState& st, std::string status, std::string reason,
                                const std::vector<Issue>& issues) {
    store::InboundRow m;
    m.adapter = std::string(adapter.format_id());
    m.channel = st.src.channel;
    m.sender_ods = st.src.principal.ods;
    m.sender_system = st.src.principal.system;
    m.control_id = st.msg ? std::string(st.msg->control_id()).substr(0, 64) : std::string();
    m.status = std::move(status);
    m.reason = std::move(reason);
    m.issues_json = issues_json(issues);
    m.raw = st.raw;
    m.replay_of = st.src.replay_of;
    if (st.msg) {
      // The message type (MSH-9's code and trigger, "ADT^A28"): the console's "type" filter.
      std::string_view type = st.msg->msh().field(9).raw();
      if (auto second = type.find('^', type.find('^') == std::string_view::npos ? type.size() : type.find('^') + 1);
          second != std::string_view::npos)
        type = type.substr(0, second);
      m.kind = std::string(type.substr(0, 32));
    }
    return m;
  }

  // Keeps the raw message and its problems, then answers (the ACK promises
  // the message is kept).
  void quarantine(std::shared_ptr<MessageState> st, Outcome o, std::string ack_text, std::vector<Issue> issues,
                  std::string reason) {
    store::UnitOfWork u;
    if (st->src.replay_of) {
      // A replay that still fails leaves the original quarantined; no second copy.
      return finish(st, o, std::move(ack_text), st->src.replay_of, std::move(issues));
    }
    u.inbound.push_back(inbound_row(*st, "quarantined", reason.substr(0, 500), issues));
    u.inbound.back().answer = ack_text.substr(0, 4000);  // what the sender was told (the console shows it)
    store::AuditRow a;
    a.actor_ods = st->src.principal.ods;
    a.actor_role = st->src.principal.role;
    a.actor_system = st->src.principal.system;
    a.action = "ingest";
    a.entity = "inbound";
    a.outcome = "failure";
    a.http_status = o == Outcome::invalid ? 422 : 400;
    a.request_id = std::to_string(st->src.msg_id);
    a.detail = std::string(adapter.format_id()) + " message quarantined";
    a.channel = audit::audit_channel(st->src.channel);
    a.topic = std::string(adapter.format_id());
    a.purpose = std::string(audit::kPurposeTreatment);
    u.audit.push_back(std::move(a));
    auto shared_issues = std::make_shared<std::vector<Issue>>(std::move(issues));
    auto shared_ack = std::make_shared<std::string>(std::move(ack_text));
    auto r = store.commit(std::move(u), [this, st, o, shared_ack, shared_issues](Result<store::CommitOutcome> res) {
      if (!res) {
        log::error("quarantine_failed", {{"adapter", std::string(adapter.format_id())}, {"reason", res.error().message}});
        return finish(st, Outcome::unavailable,
                      ack(*st, hl7::AckCode::AR, "the gateway could not keep this message; resend later"), 0,
                      std::move(*shared_issues));
      }
      finish(st, o, std::move(*shared_ack), res->inbound_ids.empty() ? 0 : res->inbound_ids[0],
             std::move(*shared_issues));
    });
    if (!r) {
      finish(st, Outcome::unavailable, ack(*st, hl7::AckCode::AR, "the gateway is busy; resend later"), 0,
             std::move(*shared_issues));
    }
  }
};

Hl7Ingest::Hl7Ingest(const adapters::Adapter& adapter, write::WriteService& writes, metrics::Registry& metrics)
    : impl_(std::make_unique<Impl>(adapter, writes, metrics)) {}

Hl7Ingest::~Hl7Ingest() = default;

void Hl7Ingest::handle(std::string raw, Source src, std::function<void(IngestResult)> done) {
  impl_->handle(std::move(raw), std::move(src), std::move(done));
}

void Hl7Ingest::replay(int64_t inbound_id, security::Principal who, std::function<void(Result<IngestResult>)> done) {
  auto shared_done = std::make_shared<std::function<void(Result<IngestResult>)>>(std::move(done));
  auto r = impl_->store.run_read([this, inbound_id, who, shared_done] {
    auto row = impl_->store.get_inbound(inbound_id);
    if (!row) return (*shared_done)(row.error());
    if (row->status != "quarantined") {
      return (*shared_done)(make_error(Errc::conflict, "message " + std::to_string(inbound_id) + " is " + row->status +
                                                           ", not quarantined"));
    }
    if (row->adapter != impl_->adapter.format_id()) {
      return (*shared_done)(make_error(Errc::invalid_input, "message " + std::to_string(inbound_id) +
                                                                " belongs to adapter " + row->adapter));
    }
    Source src;
    src.channel = "replay";
    // The message is replayed as its original sender, so the audit trail and
    // the at-most-once key stay the sender's; who asked is logged.
    src.principal = security::Principal{row->sender_ods, "integration", row->sender_system};
    src.replay_of = inbound_id;
    log::info("replay", {{"inbound_id", inbound_id}, {"by_ods", who.ods}, {"by_role", who.role}});
    impl_->handle(row->raw, src, [shared_done](IngestResult r) { (*shared_done)(std::move(r)); });
  });
  if (!r) (*shared_done)(r.error());
}

}  // namespace gw::ingest
