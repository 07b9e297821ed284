#include "gateway/ingest/hl7_ingest.h"

#include <charconv>

#include "gateway/common/issues.h"
#include "gateway/common/json.h"
#include "gateway/common/log.h"
#include "gateway/model/cpis_plan.h"
#include "gateway/hl7/ack.h"
#include "gateway/hl7/er7.h"
#include "gateway/identity/nhs_number.h"

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

  // A merge (a Patient entry linked replaced-by its survivor) that retires
  // a record with CP-IS plans: each plan CareTeam follows the survivor in the
  // same transaction as the merge, pinned to the version read (a concurrent
  // edit makes the message re-check), and carries the retired NHS number so
  // the responsible local authority learns which number went
  // (cpis-inactive-nhs-number, route plan-authority-on-move).
  Result<void> move_plans_of_merged(MessageState& st) {
    json::Value* entries = const_cast<json::Value*>(json::member(st.bundle, "entry"));
    if (!entries || !entries->IsArray()) return {};
    std::vector<json::Value> moved;
    auto& alloc = st.bundle.GetAllocator();
    for (const auto& e : entries->GetArray()) {
      const json::Value* res = json::member(e, "resource");
      if (!res || json::get_string(*res, "resourceType").value_or("") != "Patient") continue;
      std::string survivor = survivor_of(*res);
      std::string retired_nhs = nhs_number_of(*res);
      if (survivor.empty() || retired_nhs.empty()) continue;
      auto retired_id = store.find_by_unique_key(retired_nhs);
      if (!retired_id) return retired_id.error();
      if (!*retired_id || survivor == "Patient/" + **retired_id) continue;
      auto plans = plans_of(**retired_id);
      if (!plans) return plans.error();
      const std::string survivor_nhs = nhs_number_of_entry(st.bundle, survivor);
      for (const auto& plan : *plans) {
        auto doc = json::parse(plan.body);
        if (!doc || !doc->IsObject() || !model::cpis::plan_type_of(*doc)) continue;
        moved.push_back(moved_plan_entry(plan, *doc, survivor, survivor_nhs, retired_nhs, alloc));
      }
    }
    for (auto& m : moved) entries->PushBack(m, alloc);
    if (!moved.empty())
      st.warnings.push_back(Issue{Severity::warning, "informational", "MRG-1",
                                  std::to_string(moved.size()) +
                                      " child protection plan(s) moved to the surviving record; the local authority "
                                      "is notified"});
    return {};
  }

  // The transaction entry that re-points one stored plan at the survivor.
  static json::Value moved_plan_entry(const store::StoredResource& plan, const json::Value& stored,
                                      const std::string& survivor, const std::string& survivor_nhs,
                                      const std::string& retired_nhs, json::Allocator& alloc) {
    json::Value subject(rapidjson::kObjectType);
    json::set(subject, "reference", std::string_view(survivor), alloc);
    if (!survivor_nhs.empty()) subject.AddMember("identifier", nhs_identifier(survivor_nhs, alloc), alloc);
    json::Value resource(stored, alloc);
    drop_version_meta(resource);
    json::set(resource, "id", std::string_view(plan.id), alloc);
    json::set(resource, "subject", std::move(subject), alloc);
    mark_superseded(resource, retired_nhs, alloc);
    json::Value request(rapidjson::kObjectType);
    json::set(request, "method", std::string_view("PUT"), alloc);
    json::set(request, "url", std::string_view("CareTeam/" + plan.id), alloc);
    json::set(request, "ifMatch", std::string_view("W/\"" + std::to_string(plan.version) + "\""), alloc);
    json::Value entry(rapidjson::kObjectType);
    entry.AddMember("resource", resource, alloc);
    entry.AddMember("request", request, alloc);
    return entry;
  }

  // The reference a merged-away Patient entry names as its survivor, or "".
  static std::string survivor_of(const json::Value& patient) {
    const json::Value* links = json::member(patient, "link");
    if (!links || !links->IsArray()) return {};
    for (const auto& l : links->GetArray()) {
      if (json::get_string(l, "type").value_or("") != "replaced-by") continue;
      if (const json::Value* other = json::member(l, "other"))
        return std::string(json::get_string(*other, "reference").value_or(""));
    }
    return {};
  }

  static std::string nhs_number_of(const json::Value& patient) {
    const json::Value* ids = json::member(patient, "identifier");
    if (!ids || !ids->IsArray()) return {};
    for (const auto& id : ids->GetArray())
      if (json::get_string(id, "system").value_or("") == identity::kNhsNumberSystem)
        return std::string(json::get_string(id, "value").value_or(""));
    return {};
  }

  // The NHS number of the Bundle entry with this fullUrl (the survivor), or "".
  static std::string nhs_number_of_entry(const json::Value& bundle, const std::string& full_url) {
    const json::Value* entries = json::member(bundle, "entry");
    if (!entries || !entries->IsArray()) return {};
    for (const auto& e : entries->GetArray())
      if (json::get_string(e, "fullUrl").value_or("") == full_url)
        if (const json::Value* r = json::member(e, "resource")) return nhs_number_of(*r);
    return {};
  }

  static json::Value nhs_identifier(const std::string& nhs, json::Allocator& a) {
    json::Value id(rapidjson::kObjectType);
    json::set(id, "system", identity::kNhsNumberSystem, a);
    json::set(id, "value", std::string_view(nhs), a);
    return id;
  }

  // The stored body's meta minus what the store assigns; no meta when nothing is left.
  static void drop_version_meta(json::Value& resource) {
    json::Value* meta = const_cast<json::Value*>(json::member(resource, "meta"));
    if (!meta || !meta->IsObject()) return;
    meta->RemoveMember("versionId");
    meta->RemoveMember("lastUpdated");
    if (meta->ObjectEmpty()) resource.RemoveMember("meta");
  }

  // Replaces any earlier mark (a plan moved twice names the last number retired).
  static void mark_superseded(json::Value& care_team, const std::string& retired_nhs, json::Allocator& a) {
    json::Value kept(rapidjson::kArrayType);
    if (json::Value* exts = const_cast<json::Value*>(json::member(care_team, "extension")); exts && exts->IsArray())
      for (auto& x : exts->GetArray())
        if (json::get_string(x, "url").value_or("") != model::cpis::kSupersededNhsNumberUrl) kept.PushBack(x, a);
    json::Value mark(rapidjson::kObjectType);
    json::set(mark, "url", model::cpis::kSupersededNhsNumberUrl, a);
    mark.AddMember("valueIdentifier", nhs_identifier(retired_nhs, a), a);
    kept.PushBack(mark, a);
    json::set(care_team, "extension", std::move(kept), a);
  }

  // Every CareTeam whose subject is this Patient (plans are filtered by the caller).
  Result<std::vector<store::StoredResource>> plans_of(const std::string& patient_id) {
    std::vector<store::StoredResource> out;
    for (int64_t offset = 0;; offset += 200) {
      store::SearchQuery q;
      q.type = "CareTeam";
      q.params.push_back({"patient", {{"", "Patient/" + patient_id}}});
      q.count = 200;
      q.offset = offset;
      q.want_total = false;
      auto page = store.search(q);
      if (!page) return page.error();
      for (auto& r : page->items) out.push_back(std::move(r));
      if (page->items.size() < 200) return out;
    }
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
      auto rc = reconcile_subject(*st);
      if (rc) rc = move_plans_of_merged(*st);
      if (!rc) {
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
