#include "gateway/ingest/hl7_ingest.h"

#include <charconv>

#include "gateway/common/issues.h"
#include "gateway/common/json.h"
#include "gateway/common/log.h"
#include "gateway/hl7/ack.h"
#include "gateway/hl7/er7.h"

namespace gw::ingest {

namespace {

constexpr std::string_view kSourceTimeUrl = "https://cpis-gateway.nhs.uk/StructureDefinition/source-message-time";
constexpr int kAttempts = 3;

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

// The issues of an OperationOutcome body (FHIR-side failures after mapping).
std::vector<Issue> outcome_issues(std::string_view body) {
  std::vector<Issue> out;
  auto d = json::parse(body);
  if (d && d->IsObject()) {
    if (const json::Value* is = json::member(*d, "issue"); is && is->IsArray()) {
      for (const auto& i : is->GetArray()) {
        Issue x;
        x.severity = json::get_string(i, "severity").value_or("error") == "error" ? Severity::error : Severity::warning;
        x.code = std::string(json::get_string(i, "code").value_or("processing"));
        x.message = std::string(json::get_string(i, "diagnostics").value_or("the mapped FHIR was refused"));
        if (const json::Value* e = json::member(i, "expression"); e && e->IsArray() && !e->Empty() && (*e)[0].IsString())
          x.expression = std::string(json::as_view((*e)[0]));
        out.push_back(std::move(x));
      }
    }
  }
  if (out.empty()) out.push_back(Issue{Severity::error, "processing", "", "the mapped FHIR was refused"});
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
  std::string bundle_text;  // as the adapter produced it
  json::Document bundle;    // this attempt's copy, adjusted by reconcile_subject
  std::string idempotency_key;
  std::function<void(IngestResult)> done;
};

struct Hl7Ingest::Impl {
  const adapters::Adapter& adapter;
  fhir::RestApi& rest;
  store::Store& store;
  metrics::Registry& metrics;
  std::atomic<uint64_t> next_req{1};

  Impl(const adapters::Adapter& a, fhir::RestApi& r, store::Store& s, metrics::Registry& m)
      : adapter(a), rest(r), store(s), metrics(m) {}

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
    log::info("ingest", {{"adapter", std::string(adapter.format_id())},
                         {"channel", st->src.channel},
                         {"conn", st->src.conn_id},
                         {"msg", st->src.msg_id},
                         {"outcome", outcome_name(o)},
                         {"inbound_id", inbound_id}});
    IngestResult r;
    r.outcome = o;
    r.ack = std::move(ack_text);
    r.control_id = st->msg ? std::string(st->msg->control_id()) : std::string();
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
    if (!doc) {
      // The adapter produced something that is not JSON: a bug, kept for replay once fixed.
      std::vector<Issue> is{{Severity::error, "exception", "", "internal mapping error"}};
      return quarantine(st, Outcome::invalid,
                        ack(*st, hl7::AckCode::AE, "internal mapping error",
                            {hl7::AckError{"", 1, 0, hl7::ErrorCode::application_internal, "internal mapping error"}}),
                        std::move(is), "internal mapping error");
    }
    st->bundle_text = std::move(bundle->json);
    if (auto id = json::member(*doc, "identifier"); id && id->IsObject()) {
      st->idempotency_key = std::string(adapter.format_id()) + "|" + st->src.principal.ods + "|" +
                            std::string(json::get_string(*id, "system").value_or("")) + "|" +
                            std::string(json::get_string(*id, "value").value_or(""));
    }
    submit(st, 1);
  }

  // Adjusts the subject Patient entry (entry 0, by the adapter contract)
  // against what is stored, on a reader thread:
  //  - merged away (link replaced-by): the message's data follows the survivor;
  //  - the stored demographics came from a newer message (source-message-time):
  //    they are not overwritten, the entry only resolves to the stored Patient;
  //  - otherwise the update is pinned to the version seen (ifMatch), so a newer
  //    message committing in between makes this one re-check instead of
  //    overwriting it.
  Result<void> reconcile_subject(MessageState& st) {
    json::Value* entries = const_cast<json::Value*>(json::member(st.bundle, "entry"));
    if (!entries || !entries->IsArray() || entries->Empty()) return {};
    json::Value& e0 = (*entries)[0];
    const json::Value* req = json::member(e0, "request");
    const json::Value* res = json::member(e0, "resource");
    if (!req || !res || json::get_string(*res, "resourceType").value_or("") != "Patient") return {};
    if (json::get_string(*req, "method").value_or("") != "PUT") return {};
    std::string_view url = json::get_string(*req, "url").value_or("");
    auto q = url.find("?identifier=");
    if (q == std::string_view::npos) return {};
    std::string_view token = url.substr(q + 12);
    auto bar = token.find('|');
    store::SearchQuery sq;
    sq.type = "Patient";
    sq.params.push_back({"identifier", {{std::string(token.substr(0, bar == std::string_view::npos ? 0 : bar)),
                                         std::string(bar == std::string_view::npos ? token : token.substr(bar + 1))}}});
    sq.count = 2;
    sq.want_total = false;
    auto found = store.search(sq);
    if (!found) return found.error();
    if (found->items.size() != 1) return {};
    const store::StoredResource& cur = found->items[0];
    auto stored = json::parse(cur.body);
    if (!stored || !stored->IsObject()) return {};
    auto& alloc = st.bundle.GetAllocator();

    // Merged away: point every reference at the survivor and drop the entry.
    if (const json::Value* links = json::member(*stored, "link"); links && links->IsArray()) {
      for (const auto& l : links->GetArray()) {
        if (json::get_string(l, "type").value_or("") != "replaced-by") continue;
        const json::Value* other = json::member(l, "other");
        std::string_view survivor = other ? json::get_string(*other, "reference").value_or("") : "";
        if (survivor.rfind("Patient/", 0) != 0) continue;
        std::string full(json::get_string(e0, "fullUrl").value_or(""));
        entries->Erase(entries->Begin());
        if (!full.empty()) replace_references(st.bundle, full, survivor, alloc);
        st.warnings.push_back(Issue{Severity::warning, "informational", "PID-3",
                                    "this NHS number was merged into another record; the message was applied to the "
                                    "surviving record"});
        return {};
      }
    }
    // Out of order: an older message must not overwrite newer demographics.
    std::string_view incoming = json::get_string(st.bundle, "timestamp").value_or("");
    std::string_view stored_time;
    if (const json::Value* exts = json::member(*stored, "extension"); exts && exts->IsArray()) {
      for (const auto& x : exts->GetArray())
        if (json::get_string(x, "url").value_or("") == kSourceTimeUrl)
          stored_time = json::get_string(x, "valueInstant").value_or("");
    }
    json::Value& request = const_cast<json::Value&>(*req);
    if (!incoming.empty() && !stored_time.empty() && incoming < stored_time) {
      std::string criteria(url.substr(q + 1));
      json::Value fresh(rapidjson::kObjectType);
      json::set(fresh, "method", std::string_view("POST"), alloc);
      json::set(fresh, "url", std::string_view("Patient"), alloc);
      json::set(fresh, "ifNoneExist", std::string_view(criteria), alloc);
      request = fresh;
      st.warnings.push_back(Issue{Severity::warning, "informational", "MSH-7",
                                  "older than the data already held for this patient: demographics not overwritten"});
      return {};
    }
    json::set(request, "ifMatch", std::string_view("W/\"" + std::to_string(cur.version) + "\""), alloc);
    return {};
  }

  static void replace_references(json::Value& v, std::string_view from, std::string_view to, json::Allocator& a) {
    if (v.IsObject()) {
      for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
        if (std::string_view(it->name.GetString(), it->name.GetStringLength()) == "reference" && it->value.IsString() &&
            json::as_view(it->value) == from) {
          it->value = json::str(to, a);
        } else {
          replace_references(it->value, from, to, a);
        }
      }
    } else if (v.IsArray()) {
      for (auto& e : v.GetArray()) replace_references(e, from, to, a);
    }
  }

  void submit(std::shared_ptr<MessageState> st, int attempt) {
    auto r = store.run_read([this, st, attempt] {
      // A fresh copy per attempt: reconcile edits the Bundle.
      st->bundle = std::move(*json::parse(st->bundle_text));
      if (auto rc = reconcile_subject(*st); !rc) {
        return finish(st, Outcome::unavailable,
                      ack(*st, hl7::AckCode::AR, "the gateway cannot read its store; resend later"), 0, {});
      }
      net::Request req;
      req.method = "POST";
      req.path = "/fhir";
      req.target = "/fhir";
      req.principal = st->src.principal;
      req.conn_id = st->src.conn_id;
      req.req_id = st->src.msg_id;
      req.body = json::to_string(st->bundle);
      fhir::TransactionExtras extras;
      extras.feed = std::string(adapter.format_id());
      if (!st->idempotency_key.empty()) extras.idempotency_key = st->idempotency_key;
      extras.inbound.push_back(inbound_row(*st, "accepted", "", st->warnings));
      if (st->src.replay_of) extras.inbound_status.emplace_back(st->src.replay_of, "replayed");
      rest.submit_transaction(std::move(req), std::move(extras), [this, st, attempt](net::Response resp) {
        on_committed(st, attempt, std::move(resp));
      });
    });
    if (!r) finish(st, Outcome::unavailable, ack(*st, hl7::AckCode::AR, "the gateway is busy; resend later"), 0, {});
  }

  void on_committed(std::shared_ptr<MessageState> st, int attempt, net::Response resp) {
    if (resp.status == 200) {
      std::string text = st->warnings.empty() ? "" : first_warning(st->warnings);
      return finish(st, Outcome::accepted, ack(*st, hl7::AckCode::AA, text), 0, st->warnings);
    }
    std::vector<Issue> issues = outcome_issues(resp.body);
    if (resp.status == 409 && !issues.empty() && issues[0].expression == "idempotency-key") {
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
    if (resp.status == 412 && attempt < kAttempts) {
      // Newer data landed between the check and the commit: check again.
      return submit(st, attempt + 1);
    }
    if (resp.status == 503) {
      return finish(st, Outcome::unavailable, ack(*st, hl7::AckCode::AR, "the gateway is busy; resend later"), 0, {});
    }
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

Hl7Ingest::Hl7Ingest(const adapters::Adapter& adapter, fhir::RestApi& rest, store::Store& store,
                     metrics::Registry& metrics)
    : impl_(std::make_unique<Impl>(adapter, rest, store, metrics)) {}

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
