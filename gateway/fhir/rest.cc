#include "gateway/fhir/rest.h"

#include <charconv>
#include <functional>
#include <map>

#include "gateway/audit/audit_rows.h"
#include "gateway/audit/balp.h"
#include "gateway/common/clock.h"
#include "gateway/common/issues.h"
#include "gateway/common/json_patch.h"
#include "gateway/events/matcher.h"
#include "gateway/cpis/cpis_api.h"
#include "gateway/fhir/capability.h"
#include "gateway/fhir/everything.h"
#include "gateway/fhir/include.h"
#include "gateway/fhir/responses.h"
#include "gateway/identity/nhs_number.h"
#include "gateway/model/bundle.h"
#include "gateway/model/cpis_plan.h"
#include "gateway/model/resource_text.h"
#include "gateway/model/search_params.h"
#include "gateway/safeguarding/break_glass.h"
#include "gateway/security/visibility.h"
#include "gateway/write/bundle_entries.h"

namespace gw::fhir {

using net::Request;
using net::Respond;
using net::Response;

namespace {

std::vector<std::string_view> split_path(std::string_view p) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < p.size()) {
    while (i < p.size() && p[i] == '/') ++i;
    size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    if (j > i) out.push_back(p.substr(i, j - i));
    i = j;
  }
  return out;
}

}  // namespace

struct RestApi::Impl {
  store::Store& store;
  write::WriteService& writes;
  const write::Validator& validator;
  const security::Policy& policy;
  const security::Visibility& visibility;
  metrics::Registry& metrics;
  RestOptions opts;
  Capabilities declared;
  std::map<std::string, net::Handler*> operation_handlers;  // "<type>/$<name>" (add_operation)

  cpis::CpisApi cpis_api;  // the national CP-IS API's searches (CareTeam, AuditEvent, Flag)

  Impl(store::Store& s, write::WriteService& w, const security::Visibility& vis, metrics::Registry& m, RestOptions o)
      : store(s),
        writes(w),
        validator(w.validator()),
        policy(w.policy()),
        visibility(vis),
        metrics(m),
        opts(std::move(o)),
        cpis_api(cpis_context()) {}

  cpis::CpisContext cpis_context() {
    auto today = opts.today ? opts.today : std::function<std::string()>(model::cpis::utc_today);
    return cpis::CpisContext{store, writes, policy, std::move(today), [this](const Request& r) { return base(r); }};
  }

  std::string base(const Request& req) const {
    return (opts.public_base_url.empty() ? req.base_url : opts.public_base_url) + "/fhir";
  }

  // ---- audit -------------------------------------------------------------

  // Reads are audited too (who saw what); the row is committed with the next
  // group commit because the answer does not depend on it. When the bounded
  // audit queue refuses the row, nothing is shown: the caller answers the
  // refusal (503) instead, so no read goes unrecorded. Returns false then.
  [[nodiscard]] bool audit_read(const Request& req, Respond& respond, const char* route, std::string action,
                                std::string entity, int status, std::string patient_ref = {}) {
    auto r = writes.record({audit::row(req.principal, std::move(action), std::move(entity), status,
                                       req.audit_id(), std::move(patient_ref))});
    if (r) return true;
    respond(outcome_response(r.error(), route));
    return false;
  }

  // ---- helpers -------------------------------------------------------------

  bool check_type(const std::string& type, Respond& respond, const char* route) {
    if (validator.supports(type)) return true;
    respond(outcome_response(
        make_error(Errc::not_found, "Resource type '" + type + "' is not supported by this server"), route));
    return false;
  }

  bool check_policy(const Request& req, const std::string& type, std::string_view interaction, Respond& respond,
                    const char* route) {
    if (policy.allows(req.principal, type, interaction)) {
      // Some content is read by a person, never by a system alone
      // (profiles/policy/users.json personRequired: a disclosure, say).
      if (req.principal.person || !policy.users().person_required_for(req.principal, type, interaction)) return true;
      respond(person_required_response("A " + std::string(interaction) + " of " + type, route));
      return false;
    }
    respond(outcome_response(make_error(Errc::forbidden, "Role '" + req.principal.role + "' may not " +
                                                             std::string(interaction) + " " + type),
                             route));
    return false;
  }

  bool hidden_from(const security::Principal& who, const store::StoredResource& r, std::string_view interaction) const {
    return visibility.hidden_from(who, r, interaction);
  }

  // ---- legitimate relationship and break-glass (issue 17 part 3) -------------

  enum class Opened { yes, answered };

  // A person opens a child's safeguarding detail (relationships.json:
  // Flags, disclosures, CP-IS plans) only on a
  // legitimate relationship, or with a break-glass reason — the same gate as
  // $chronology (safeguarding/break_glass.h). Opened::yes: answer as usual.
  // Opened::answered: refused (400/401/403, audited), or a break-glass access
  // whose record (trail rows with the reason, the AuditEvent that tells the
  // Caldicott guardian) commits before `answer` is sent.
  Opened open_gated(const Request& req, Respond& respond, const char* route, std::string_view interaction,
                    const std::string& type, const std::string& body, const std::string& entity,
                    const std::function<Response()>& answer) {
    if (!req.principal.person || !opts.relationships) return Opened::yes;
    auto doc = json::parse(body);
    if (!doc) return Opened::yes;
    auto gr = safeguarding::gated_read(req.principal, *opts.relationships, type, interaction, *doc);
    if (!gr.gated) return Opened::yes;
    events::StoreLookup lookup(store);
    auto g = safeguarding::relationship_gate(req, policy, lookup, gr.patient_id, gr.named,
                                             "this child's " + type);
    if (g.verdict == safeguarding::Gate::Verdict::related) return Opened::yes;
    if (!g.open()) {
      int status = g.verdict == safeguarding::Gate::Verdict::needs_person ? 401 : http_status_for(g.error.code);
      if (!audit_read(req, respond, route, std::string(interaction), entity, status)) return Opened::answered;
      respond(safeguarding::gate_refusal(g, route));
      return Opened::answered;
    }
    auto w = safeguarding::break_glass_record(req, gr.patient_id, entity, std::string(interaction), entity,
                                              "opened with break-glass", g.reason);
    if (!w) {
      respond(outcome_response(w.error(), route));
      return Opened::answered;
    }
    auto resp = std::make_shared<Response>(answer());
    writes.submit(std::move(*w), [respond = std::move(respond), resp, route](write::Outcome out) {
      if (out.failure) {
        Error e = *out.failure;
        e.message = "the break-glass access could not be recorded, so nothing is shown: " + e.message;
        return respond(outcome_response(e, route));
      }
      respond(std::move(*resp));
    });
    return Opened::answered;
  }

  // A person's search of a gated type: what is about people its organisation
  // has no relationship with is left out (never counted: no total then, as
  // the left-out rows would show in it), unless the type's row scope already
  // holds only rows naming the caller's organisation. Returns false when the
  // search was refused (break-glass opens one record, by read).
  bool filter_gated(const Request& req, Respond& respond, const std::string& type, store::SearchPage& page,
                    std::vector<store::StoredResource>& included, int count, int64_t offset,
                    std::optional<bool>& more, std::optional<bool> drop_total = std::nullopt) {
    if (!req.principal.person || !opts.relationships) return true;
    const bool gated_type = opts.relationships->rule(type, "search") != nullptr;
    if (!drop_total) drop_total = gated_type && !policy.row_scope(req.principal, type, "search");
    if (gated_type && req.header(safeguarding::kBreakGlassHeader)) {
      respond(outcome_response(make_error(Errc::invalid_input,
                                          "X-Break-Glass-Reason opens one record: read it by id (GET /fhir/" + type +
                                              "/{id}) or open the child's $chronology; a search leaves out what is "
                                              "about children not on your organisation's caseload",
                                          "X-Break-Glass-Reason"),
                               "fhir_search"));
      return false;
    }
    events::StoreLookup lookup(store);
    std::map<std::string, bool> caseload;  // patient id -> related
    auto unrelated = [&](const store::StoredResource& r) {
      auto doc = json::parse(r.body);
      if (!doc) return false;
      auto gr = safeguarding::gated_read(req.principal, *opts.relationships, r.type, "search", *doc);
      if (!gr.gated || gr.named) return false;
      auto it = caseload.find(gr.patient_id);
      if (it == caseload.end())
        it = caseload.emplace(gr.patient_id, safeguarding::related(req.principal, policy, lookup, gr.patient_id, false))
                 .first;
      return !it->second;
    };
    size_t before = page.items.size();
    std::erase_if(page.items, unrelated);
    std::erase_if(included, unrelated);
    if (*drop_total) {
      // Whether the store had a next page, from what it answered before the filter.
      more = page.total >= 0 ? offset + static_cast<int64_t>(before) < page.total
                                  : static_cast<int64_t>(before) >= count;
      page.total = -1;
    }
    return true;
  }

  // Runs fn on the store reader pool; 503 when the pool's queue is full.
  template <class Fn>
  void on_reader(Respond respond, const char* route, Fn fn) {
    auto shared = std::make_shared<Respond>(std::move(respond));
    auto r = store.run_read([shared, fn = std::move(fn)]() mutable { fn(*shared); });
    if (!r) (*shared)(outcome_response(r.error(), route));
  }

  // ---- entry ---------------------------------------------------------------

  void handle(Request req, Respond respond) {
    std::string_view path = req.path;
    if (path.rfind("/fhir", 0) != 0) {
      respond(outcome_response(make_error(Errc::not_found, "no such endpoint"), "fhir_unknown"));
      return;
    }
    auto seg = split_path(path.substr(5));
    const std::string& m = req.method;
    BodyFormat body = m == "PATCH" ? BodyFormat::json_patch
                      : (m == "POST" || m == "PUT") && !(seg.size() == 1 && seg[0] == "metadata") ? BodyFormat::resource
                                                                                                  : BodyFormat::none;
    if (auto e = check_formats(req, body)) {
      respond(outcome_response(*e, "fhir_format"));
      return;
    }

    if (seg.empty()) {
      if (m == "POST") return bundle(std::move(req), std::move(respond));
      return method_not_allowed(m, "the base URL accepts POST (transaction or batch Bundle)", respond);
    }
    if (seg.size() == 1 && seg[0] == "metadata") {
      if (m != "GET") return method_not_allowed(m, "metadata accepts GET", respond);
      Response r;
      r.body = capability_statement_json(validator, policy, declared);
      r.route = "fhir_metadata";
      respond(std::move(r));
      return;
    }
    std::string type(seg[0]);
    if (!check_type(type, respond, "fhir_type")) return;
    // A feature's operation (add_operation): instance or type level.
    if (seg.size() >= 2 && seg.size() <= 3 && seg.back().size() > 1 && seg.back()[0] == '$') {
      auto op = operation_handlers.find(type + "/" + std::string(seg.back()));
      if (op != operation_handlers.end() && (seg.size() == 2 || model::is_valid_id(std::string(seg[1])))) {
        op->second->handle(std::move(req), std::move(respond));
        return;
      }
    }
    if (seg.size() == 1) {
      if (m == "GET") return search(std::move(req), std::move(respond), type);
      if (m == "POST") return create(std::move(req), std::move(respond), type);
      if (m == "PUT" && !req.query.empty()) return update(std::move(req), std::move(respond), type, "");
      return method_not_allowed(m, "the type endpoint accepts GET (search), POST (create) and conditional PUT",
                                respond);
    }
    std::string id(seg[1]);
    if (seg.size() == 2 && id == "_search") {
      return method_not_allowed(m, "search by POST is not supported; use GET", respond);
    }
    if (!model::is_valid_id(id)) {
      respond(outcome_response(make_error(Errc::invalid_input, "'" + id.substr(0, 80) + "' is not a valid FHIR id",
                                          type + ".id"),
                               "fhir_instance"));
      return;
    }
    if (seg.size() == 2) {
      if (m == "GET") return read(std::move(req), std::move(respond), type, id, 0);
      if (m == "PUT") return update(std::move(req), std::move(respond), type, id);
      if (m == "DELETE") return remove(std::move(req), std::move(respond), type, id);
      if (m == "PATCH") return patch(std::move(req), std::move(respond), type, id);
      return method_not_allowed(m, "an instance accepts GET, PUT, PATCH and DELETE", respond);
    }
    if (seg.size() == 3 && seg[2].starts_with('$')) {
      for (const auto& op : kOperations) {
        if (op.type != type || seg[2].substr(1) != op.name) continue;
        if (m != op.method) return method_not_allowed(m, "$" + std::string(op.name) + " accepts " + std::string(op.method), respond);
        return (this->*op.run)(std::move(req), std::move(respond), id);
      }
      respond(outcome_response(make_error(Errc::not_found, "no operation " + std::string(seg[2].substr(0, 64)) +
                                                               " on " + type + " (see /fhir/metadata)"),
                               "fhir_unknown"));
      return;
    }
    if (seg[2] != "_history" || seg.size() > 4) {
      respond(outcome_response(make_error(Errc::not_found, "no such FHIR endpoint"), "fhir_unknown"));
      return;
    }
    if (m != "GET") return method_not_allowed(m, "history accepts GET", respond);
    if (seg.size() == 3) return history(std::move(req), std::move(respond), type, id);
    int64_t vid = 0;
    std::string_view vs = seg[3];
    auto [p, ec] = std::from_chars(vs.data(), vs.data() + vs.size(), vid);
    if (ec != std::errc() || p != vs.data() + vs.size() || vid < 1) {
      respond(outcome_response(make_error(Errc::invalid_input, "version id must be a positive integer",
                                          type + ".meta.versionId"),
                               "fhir_vread"));
      return;
    }
    read(std::move(req), std::move(respond), type, id, vid);
  }

  void method_not_allowed(const std::string& m, const std::string& why, Respond& respond) {
    Response r = outcome_response(make_error(Errc::method_not_allowed, "method " + m + " not allowed: " + why),
                                  "fhir_method");
    respond(std::move(r));
  }

  // ---- read / vread ----------------------------------------------------------

  // GET /fhir/AuditEvent/trail-<seq>: one record of the audit trail as a
  // BALP AuditEvent, with the trail search's visibility (commissioners and
  // admins every record, other roles that may search AuditEvent their own
  // organisation's; anything else is not found). The read is audited.
  void trail_read(Request req, Respond respond, const std::string& id, int64_t seq) {
    const char* route = "audit_trail_read";
    bool whole = policy.allows_operation(req.principal, security::kTrailOperation);
    if (!whole && !policy.allows(req.principal, "AuditEvent", "search")) {
      respond(outcome_response(make_error(Errc::forbidden, "Role '" + req.principal.role + "' may not read the audit trail"),
                               route));
      return;
    }
    on_reader(std::move(respond), route, [this, req = std::move(req), id, seq, whole, route](Respond& respond) {
      std::string entity = "AuditEvent/" + id;
      auto r = store.audit_record(seq);
      if (!r && r.error().code != Errc::not_found) {
        respond(outcome_response(r.error(), route));
        return;
      }
      if (!r || (!whole && r->actor_ods != req.principal.ods && r->src_ods != req.principal.ods)) {
        if (!audit_read(req, respond, route, "audit-read", entity, 404)) return;
        respond(outcome_response(make_error(Errc::not_found, "AuditEvent not found"), route));
        return;
      }
      if (!audit_read(req, respond, route, "audit-read", entity, 200)) return;
      Response resp;
      resp.route = route;
      resp.body = audit::balp_event(*r);
      respond(std::move(resp));
    });
  }

  void read(Request req, Respond respond, const std::string& type, const std::string& id, int64_t vid) {
    if (type == "AuditEvent" && !vid)
      if (auto seq = audit::seq_of_trail_id(id)) return trail_read(std::move(req), std::move(respond), id, *seq);
    const char* route = vid ? "fhir_vread" : "fhir_read";
    if (!check_policy(req, type, vid ? "vread" : "read", respond, route)) return;
    on_reader(std::move(respond), route, [this, req = std::move(req), type, id, vid, route](Respond& respond) {
      auto r = vid ? store.vread(type, id, vid) : store.read(type, id);
      std::string entity = type + "/" + id;
      if (!r) {
        Error e = r.error();
        if (e.code == Errc::not_found) e.message = vid ? "version not found" : type + " not found";
        if (e.code == Errc::gone) e.message = type + " was deleted";
        int status = http_status_for(e.code);
        if (!audit_read(req, respond, route, vid ? "vread" : "read", entity, status)) return;
        respond(outcome_response(e, route));
        return;
      }
      if (hidden_from(req.principal, *r, vid ? "vread" : "read")) {
        // Labelled, out-of-scope content or another authority's access
        // record: as if it did not exist.
        if (!audit_read(req, respond, route, vid ? "vread" : "read", entity, 404)) return;
        respond(outcome_response(make_error(Errc::not_found, vid ? "version not found" : type + " not found"), route));
        return;
      }
      if (r->deleted) {  // vread of a deletion
        if (!audit_read(req, respond, route, "vread", entity, 410)) return;
        respond(outcome_response(make_error(Errc::gone, "this version records the deletion of the " + type), route));
        return;
      }
      if (open_gated(req, respond, route, vid ? "vread" : "read", type, r->body, entity, [&] {
            return resource_response(*r, 200, "", PreferReturn::representation, route);
          }) == Opened::answered)
        return;
      if (!audit_read(req, respond, route, vid ? "vread" : "read", entity, 200, type == "Patient" ? entity : std::string()))
        return;
      if (!vid && not_modified(req, *r)) {
        // Conditional read: the client's copy is current.
        Response nm;
        nm.status = 304;
        nm.route = route;
        nm.headers.emplace_back("ETag", model::etag(r->version));
        nm.headers.emplace_back("Last-Modified", model::http_date(r->last_updated));
        return respond(std::move(nm));
      }
      respond(resource_response(*r, 200, "", PreferReturn::representation, route));
    });
  }

  // If-None-Match (an ETag list or *) wins over If-Modified-Since (RFC 9110 13.2.2).
  static bool not_modified(const Request& req, const store::StoredResource& r) {
    if (auto inm = req.header("if-none-match")) {
      std::string_view list = *inm;
      size_t pos = 0;
      while (pos <= list.size()) {
        size_t comma = list.find(',', pos);
        if (comma == std::string_view::npos) comma = list.size();
        std::string_view tag = list.substr(pos, comma - pos);
        while (!tag.empty() && tag.front() == ' ') tag.remove_prefix(1);
        while (!tag.empty() && tag.back() == ' ') tag.remove_suffix(1);
        if (tag == "*") return true;
        if (auto v = write::parse_etag_version(tag); v && *v == r.version) return true;
        pos = comma + 1;
      }
      return false;
    }
    if (auto ims = req.header("if-modified-since")) {
      auto since = model::parse_http_date(*ims);
      auto changed = clock::parse_iso_ms(r.last_updated);
      // HTTP dates have whole seconds: a change within the named second is not after it.
      return since && changed && *changed / 1000 <= *since;
    }
    return false;
  }

  // ---- history ---------------------------------------------------------------

  void history(Request req, Respond respond, const std::string& type, const std::string& id) {
    if (!check_policy(req, type, "history", respond, "fhir_history")) return;
    on_reader(std::move(respond), "fhir_history", [this, req = std::move(req), type, id](Respond& respond) {
      auto h = store.history(type, id);
      if (!h) {
        respond(outcome_response(h.error(), "fhir_history"));
        return;
      }
      std::erase_if(*h, [&](const store::StoredResource& v) {
        return hidden_from(req.principal, v, "history");
      });
      if (h->empty()) {
        respond(outcome_response(make_error(Errc::not_found, type + " not found"), "fhir_history"));
        return;
      }
      auto bundle = [&] {
        Response resp;
        resp.route = "fhir_history";
        resp.body = model::history_bundle(base(req), *h);
        return resp;
      };
      // Gated on what the newest version (that is not a deletion) says it is about.
      const store::StoredResource* newest = nullptr;
      for (const auto& v : *h)
        if (!v.deleted && (!newest || v.version > newest->version)) newest = &v;
      if (newest && open_gated(req, respond, "fhir_history", "history", type, newest->body, type + "/" + id,
                               bundle) == Opened::answered)
        return;
      if (!audit_read(req, respond, "fhir_history", "history", type + "/" + id, 200,
                      type == "Patient" ? type + "/" + id : std::string()))
        return;
      respond(bundle());
    });
  }

  // ---- search ----------------------------------------------------------------

  void search(Request req, Respond respond, const std::string& type) {
    if (cpis_api.handles(type, req)) return cpis_api.search(type, std::move(req), std::move(respond));
    if (!check_policy(req, type, "search", respond, "fhir_search")) return;
    auto parsed = model::parse_search(validator.search_params(), type, req.query, prefer_strict(req));
    if (!parsed) {
      respond(outcome_response(parsed.error(), "fhir_search"));
      return;
    }
    on_reader(std::move(respond), "fhir_search",
              [this, req = std::move(req), type, sr = std::move(*parsed)](Respond& respond) {
                run_search(req, respond, type, sr);
              });
  }

  static std::string normalise_token_value(const model::TokenValue& t) {
    if (t.system == identity::kNhsNumberSystem) {
      if (auto n = identity::normalise_nhs_number(t.value)) return *n;
    }
    return t.value;
  }

  static store::ParamConstraint token_constraint(const std::string& param, const std::vector<model::TokenValue>& any) {
    store::ParamConstraint c;
    c.param = param;
    // "|code" asks for a code without a system; "code" for any system.
    for (const auto& t : any)
      c.any_of.emplace_back(!t.has_system ? std::string() : t.system.empty() ? std::string(store::kNoSystem) : t.system,
                            normalise_token_value(t));
    return c;
  }

  // A declared parameter's occurrence as the store's constraint (the index
  // rows' shapes are model/search_decl.h's).
  static store::ParamConstraint constraint_of(const model::ParamTerm& t) {
    store::ParamConstraint c;
    c.param = t.decl->name;
    if (t.modifier == "missing") {
      c.kind = t.missing ? store::MatchKind::missing : store::MatchKind::present;
      return c;
    }
    switch (t.decl->type) {
      case model::ParamType::string: {
        c.kind = t.modifier == "exact" ? store::MatchKind::exact
                 : t.modifier == "contains" ? store::MatchKind::contains
                                            : store::MatchKind::prefix;
        // "family" is searched in the "family" rows of "name" (search_decl.h).
        if (!t.decl->within.empty()) c.param = t.decl->within;
        for (const auto& v : t.strings)
          c.any_of.emplace_back(t.decl->within_key,
                                t.modifier == "exact" ? model::fold_text(v) + model::kFoldSeparator + v : v);
        return c;
      }
      case model::ParamType::token:
        if (t.modifier == "text") {
          c.param += ":text";
          c.kind = store::MatchKind::prefix;
          for (const auto& v : t.strings) c.any_of.emplace_back("", v);
          return c;
        }
        c = token_constraint(c.param, t.tokens);
        if (t.modifier == "not") c.kind = store::MatchKind::not_any;
        return c;
      case model::ParamType::date:
        c.kind = store::MatchKind::range;
        for (const auto& d : t.dates) c.ranges.push_back(store::DateRange{d.prefix, d.low, d.high});
        return c;
      case model::ParamType::reference:
        if (t.modifier == "identifier") return token_constraint(c.param, t.tokens);
        for (const auto& v : t.strings) c.any_of.emplace_back("", v);
        return c;
    }
    return c;
  }

  // Resolves a chained patient:identifier (or subject:identifier) to a
  // reference constraint; false when no Patient matches (empty result).
  bool resolve_chain(const std::string& param, const std::vector<model::TokenValue>& any, store::SearchQuery& q,
                     Error& err) {
    store::SearchQuery pq;
    pq.type = "Patient";
    pq.exclude_security = q.exclude_security;
    pq.params.push_back(token_constraint("identifier", any));
    pq.count = 1000;
    pq.want_total = false;
    auto res = store.search(pq);
    if (!res) {
      err = res.error();
      return false;
    }
    if (res->items.empty()) return false;
    store::ParamConstraint c;
    c.param = param;
    for (const auto& it : res->items) c.any_of.emplace_back("", "Patient/" + it.id);
    q.params.push_back(std::move(c));
    return true;
  }

  void run_search(const Request& req, Respond& respond, const std::string& type, const model::SearchRequest& sr) {
    store::SearchQuery q;
    q.type = type;
    q.ids = sr.ids;
    q.count = std::min(sr.count, opts.max_count);
    q.offset = sr.offset;
    q.exclude_security = policy.hidden_labels(req.principal);
    if (auto scope = policy.row_scope(req.principal, type, "search"))
      q.params.push_back(store::ParamConstraint{*scope, {{"", req.principal.ods}}});
    for (const auto& occ : sr.identifier) q.params.push_back(token_constraint("identifier", occ));
    for (const auto& occ : sr.patient_refs) {
      store::ParamConstraint c{"patient", {}};
      for (const auto& r : occ) c.any_of.emplace_back("", r);
      q.params.push_back(std::move(c));
    }
    for (const auto& occ : sr.subject_refs) {
      store::ParamConstraint c{"subject", {}};
      for (const auto& r : occ) c.any_of.emplace_back("", r);
      q.params.push_back(std::move(c));
    }
    for (const auto& b : sr.last_updated) {
      if (b.prefix == "ge") q.updated_ge = b.value;
      else if (b.prefix == "gt" || b.prefix == "sa") q.updated_gt = b.value;
      else if (b.prefix == "le") q.updated_le = b.value;
      else if (b.prefix == "lt" || b.prefix == "eb") q.updated_lt = b.value;
    }
    for (const auto& t : sr.terms) q.params.push_back(constraint_of(t));
    for (const auto& k : sr.sort) q.sort.push_back(store::SortKey{k.param, k.descending});
    if (sr.summary_count) q.count = 0;
    if (sr.total == "none" && !sr.summary_count) q.want_total = false;
    bool empty = false;
    Error err;
    for (const auto& occ : sr.patient_identifier)
      if (!resolve_chain("patient", occ, q, err)) empty = true;
    for (const auto& occ : sr.subject_identifier)
      if (!resolve_chain("subject", occ, q, err)) empty = true;
    if (!err.message.empty()) {
      respond(outcome_response(err, "fhir_search"));
      return;
    }
    store::SearchPage page;
    if (!empty) {
      auto res = store.search(q);
      if (!res) {
        respond(outcome_response(res.error(), "fhir_search"));
        return;
      }
      page = std::move(*res);
    }
    std::vector<store::StoredResource> included;
    if (!sr.includes.empty() || !sr.revincludes.empty()) {
      auto inc = included_resources(store, sr, page, include_context(req));
      if (!inc) {
        respond(outcome_response(inc.error(), "fhir_search"));
        return;
      }
      included = std::move(*inc);
    }
    if (!q.want_total) page.total = -1;
    std::optional<bool> more;
    if (!filter_gated(req, respond, type, page, included, q.count, q.offset, more)) return;
    if (!audit_read(req, respond, "fhir_search", "search", type + search_param_names(req.query), 200)) return;
    if (!sr.elements.empty()) {
      for (auto& r : page.items) r.body = model::subset_elements(r, sr.elements);
    }
    Response resp;
    resp.route = "fhir_search";
    resp.body =
        model::searchset_bundle(base(req), type, sr.applied_query, page, q.count, q.offset, sr.ignored, included, {}, more);
    respond(std::move(resp));
  }

  // What a caller may see beyond the resources it searched for: the same
  // hidden labels, and only the types it may search.
  IncludeContext include_context(const Request& req) const {
    IncludeContext ctx;
    ctx.hidden_labels = policy.hidden_labels(req.principal);
    ctx.may_search = [this, who = req.principal](std::string_view type) { return policy.allows(who, type, "search"); };
    ctx.limit = opts.max_count;
    return ctx;
  }

  // ---- instance operations: what handle() dispatches and metadata lists ----------

  struct InstanceOperation {
    std::string_view type, name, method, definition, documentation;
    void (Impl::*run)(Request, Respond, const std::string&);
  };
  static const InstanceOperation kOperations[1];

  // ---- Patient/$everything ------------------------------------------------------

  void everything(Request req, Respond respond, const std::string& id) {
    const char* route = "fhir_everything";
    if (!check_policy(req, "Patient", "read", respond, route)) return;
    auto parsed = model::parse_search("Patient", req.query, false);  // _count and _offset; the rest is reported ignored
    if (!parsed) {
      respond(outcome_response(parsed.error(), route));
      return;
    }
    on_reader(std::move(respond), route, [this, req = std::move(req), id, sr = std::move(*parsed), route](Respond& respond) {
      int count = std::min(sr.count, opts.max_count);
      auto page = patient_everything(store, validator.resource_types(), id, include_context(req), count, sr.offset);
      std::string entity = "Patient/" + id;
      if (!page) {
        if (!audit_read(req, respond, route, "everything", entity, http_status_for(page.error().code))) return;
        respond(outcome_response(page.error(), route));
        return;
      }
      // What the caller has no relationship with is left out (Flags,
      // disclosures, CP-IS plans: relationships.json), and then
      // not counted either.
      events::StoreLookup lookup(store);
      std::vector<store::StoredResource> none;
      bool unrelated = req.principal.person && opts.relationships &&
                       !safeguarding::related(req.principal, policy, lookup, id, false);
      std::optional<bool> more;
      if (!filter_gated(req, respond, "Patient", *page, none, count, sr.offset, more, unrelated)) return;
      if (!audit_read(req, respond, route, "everything", entity, 200, entity)) return;
      Response resp;
      resp.route = route;
      resp.body = model::searchset_bundle(base(req), entity + "/$everything", req.query, *page, count, sr.offset,
                                          sr.ignored, {}, {}, more);
      respond(std::move(resp));
    });
  }

  // "?identifier,patient:identifier" — parameter names only, never values.
  static std::string search_param_names(std::string_view query) {
    std::string out;
    size_t pos = 0;
    while (pos < query.size()) {
      size_t amp = query.find('&', pos);
      if (amp == std::string_view::npos) amp = query.size();
      std::string_view kv = query.substr(pos, amp - pos);
      std::string_view k = kv.substr(0, kv.find('='));
      if (!k.empty()) {
        out += out.empty() ? "?" : ",";
        out.append(k.substr(0, 64));
      }
      pos = amp + 1;
    }
    return out;
  }

  // ---- create / update -------------------------------------------------------
  // ---- writes: every one through the write service -------------------------

  // Parses a resource body; responds and returns nullptr when it is not one
  // of `type`. Profile rules and policy are the write service's.
  std::shared_ptr<json::Document> parse_resource(const Request& req, Respond& respond, const std::string& type,
                                                 const char* route) {
    auto parsed = json::parse(req.body);
    if (!parsed) {
      respond(outcome_response(parsed.error(), route));
      return nullptr;
    }
    if (!parsed->IsObject()) {
      respond(outcome_response(make_error(Errc::invalid_input, "the body must be a JSON object (a FHIR resource)"),
                               route));
      return nullptr;
    }
    auto rt = json::get_string(*parsed, "resourceType");
    if (!rt || *rt != type) {
      respond(outcome_response(make_error(Errc::invalid_input,
                                          "resourceType must be '" + type + "' for this endpoint", "resourceType"),
                               route));
      return nullptr;
    }
    return std::make_shared<json::Document>(std::move(*parsed));
  }

  bool if_match(const Request& req, write::Entry& e, Respond& respond, const char* route) {
    auto im = req.header("if-match");
    if (!im) return true;
    auto v = write::parse_etag_version(*im);
    if (!v) {
      respond(outcome_response(make_error(Errc::invalid_input, "If-Match must be an ETag such as W/\"3\""), route));
      return false;
    }
    e.if_match = *v;
    return true;
  }

  write::Request single(const Request& req, write::Entry e) {
    write::Request w;
    w.who = req.principal;
    w.request_id = req.audit_id();
    w.entries.push_back(std::move(e));
    return w;
  }

  // Answers once the write is durable (or refused).
  void submit(Request req, Respond respond, write::Request w, const char* route) {
    auto shared_req = std::make_shared<Request>(std::move(req));
    auto shared_w = std::make_shared<write::Request>();
    // The service consumes the request; the answer needs its entries' shape.
    for (const auto& e : w.entries) {
      write::Entry shape;
      shape.method = e.method;
      shape.type = e.type;
      shape.id = e.id;
      shared_w->entries.push_back(std::move(shape));
    }
    writes.submit(std::move(w), [this, shared_req, shared_w, respond = std::move(respond), route](write::Outcome out) {
      respond(write_response(*shared_req, *shared_w, out, base(*shared_req), route));
    });
  }

  void create(Request req, Respond respond, const std::string& type) {
    const char* route = "fhir_create";
    if (!check_policy(req, type, "create", respond, route)) return;
    write::Entry e;
    e.method = write::Method::post;
    e.type = type;
    e.resource = parse_resource(req, respond, type, route);
    if (!e.resource) return;
    if (auto ine = req.header("if-none-exist")) {
      std::string_view q = *ine;
      if (auto pos = q.find('?'); pos != std::string_view::npos) q = q.substr(pos + 1);
      auto c = write::parse_criteria(type, q, "If-None-Exist");
      if (!c) return respond(outcome_response(c.error(), route));
      e.if_none_exist = std::move(*c);
    }
    auto w = single(req, std::move(e));
    submit(std::move(req), std::move(respond), std::move(w), route);
  }

  void update(Request req, Respond respond, const std::string& type, const std::string& url_id) {
    const char* route = url_id.empty() ? "fhir_conditional_update" : "fhir_update";
    if (!check_policy(req, type, "update", respond, route)) return;
    write::Entry e;
    e.method = write::Method::put;
    e.type = type;
    e.resource = parse_resource(req, respond, type, route);
    if (!e.resource) return;
    auto body_id = json::get_string(*e.resource, "id");
    if (!url_id.empty()) {
      if (!body_id) {
        return respond(outcome_response(
            make_error(Errc::invalid_input, "the resource must carry the id of the URL", "id"), route));
      }
      if (*body_id != url_id) {
        return respond(outcome_response(
            make_error(Errc::invalid_input, "the resource id does not match the id in the URL", "id"), route));
      }
      e.id = url_id;
    } else {
      auto c = write::parse_criteria(type, req.query, "conditional update");
      if (!c) return respond(outcome_response(c.error(), route));
      e.match = std::move(*c);
      if (body_id && !model::is_valid_id(*body_id)) {
        return respond(outcome_response(make_error(Errc::invalid_input, "invalid id", "id"), route));
      }
    }
    if (!if_match(req, e, respond, route)) return;
    auto w = single(req, std::move(e));
    submit(std::move(req), std::move(respond), std::move(w), route);
  }

  void remove(Request req, Respond respond, const std::string& type, const std::string& id) {
    const char* route = "fhir_delete";
    if (!check_policy(req, type, "delete", respond, route)) return;
    write::Entry e;
    e.method = write::Method::remove;
    e.type = type;
    e.id = id;
    if (!if_match(req, e, respond, route)) return;
    auto w = single(req, std::move(e));
    submit(std::move(req), std::move(respond), std::move(w), route);
  }

  // ---- patch -------------------------------------------------------------------
  // JSON Patch is applied to the current version read here, and the result
  // goes through the write service as an update of exactly that version
  // (If-Match): the same policy and profile checks as PUT, on this side of the
  // writer, which stays free of JSON work. A concurrent update makes the
  // If-Match fail; without the client's own If-Match the patch is applied
  // again to the newer version (a few times), with it the client gets 412.

  void patch(Request req, Respond respond, const std::string& type, const std::string& id) {
    const char* route = "fhir_patch";
    if (!check_policy(req, type, "update", respond, route)) return;
    auto ops = json::parse(req.body);
    if (!ops) return respond(outcome_response(ops.error(), route));
    if (!ops->IsArray()) {
      return respond(outcome_response(
          make_error(Errc::invalid_input, "a JSON Patch body is an array of operations"), route));
    }
    std::optional<int64_t> client_match;
    if (auto im = req.header("if-match")) {
      client_match = write::parse_etag_version(*im);
      if (!client_match) {
        return respond(outcome_response(make_error(Errc::invalid_input, "If-Match must be an ETag such as W/\"3\""),
                                        route));
      }
    }
    auto patch_doc = std::make_shared<json::Document>(std::move(*ops));
    patch_attempt(std::make_shared<Request>(std::move(req)), std::move(respond), type, id, patch_doc, client_match, 3);
  }

  void patch_attempt(std::shared_ptr<Request> req, Respond respond, std::string type, std::string id,
                     std::shared_ptr<json::Document> ops, std::optional<int64_t> client_match, int tries) {
    const char* route = "fhir_patch";
    on_reader(std::move(respond), route, [=, this](Respond& respond) {
      auto cur = store.read(type, id);
      if (!cur || hidden_from(req->principal, *cur, "read")) {
        Error e = cur ? make_error(Errc::not_found, type + " not found") : cur.error();
        return respond(outcome_response(e, route));
      }
      if (client_match && *client_match != cur->version) {
        return respond(outcome_response(
            make_error(Errc::version_conflict, "If-Match does not match the current version"), route));
      }
      auto doc = json::parse(model::served_text(*cur));
      if (!doc) return respond(outcome_response(doc.error(), route));
      if (auto r = json::apply_patch(*doc, *ops); !r) return respond(outcome_response(r.error(), route));
      auto rt = doc->IsObject() ? json::get_string(*doc, "resourceType") : std::nullopt;
      auto pid = doc->IsObject() ? json::get_string(*doc, "id") : std::nullopt;
      if (!rt || *rt != type || !pid || *pid != id) {
        return respond(outcome_response(
            make_error(Errc::unprocessable, "a patch may not change resourceType or id", type + ".id"), route));
      }
      write::Entry e;
      e.method = write::Method::put;
      e.type = type;
      e.id = id;
      e.if_match = cur->version;
      e.resource = std::make_shared<json::Document>(std::move(*doc));
      write::Request w = single(*req, std::move(e));
      auto shape = std::make_shared<write::Request>();
      shape->entries.push_back(write::Entry{});
      shape->entries[0].method = write::Method::put;
      shape->entries[0].type = type;
      shape->entries[0].id = id;
      writes.submit(std::move(w), [=, this, respond = std::move(respond)](write::Outcome out) mutable {
        bool raced = out.failure && out.failure->code == Errc::version_conflict && !client_match && tries > 1;
        if (raced) return patch_attempt(req, std::move(respond), type, id, ops, client_match, tries - 1);
        respond(write_response(*req, *shape, out, base(*req), route));
      });
    });
  }

  // ---- transaction / batch ----------------------------------------------------

  void bundle(Request req, Respond respond) {
    const char* route = "fhir_bundle";
    auto parsed = json::parse(req.body);
    if (!parsed) return respond(outcome_response(parsed.error(), route));
    json::Document doc = std::move(*parsed);
    auto rt = json::get_string(doc, "resourceType");
    auto btype = json::get_string(doc, "type");
    if (!rt || *rt != "Bundle") {
      return respond(
          outcome_response(make_error(Errc::invalid_input, "the base URL accepts a Bundle", "resourceType"), route));
    }
    if (!btype || (*btype != "transaction" && *btype != "batch")) {
      return respond(outcome_response(
          make_error(Errc::invalid_input, "Bundle.type must be transaction or batch", "Bundle.type"), route));
    }
    bool batch = *btype == "batch";
    route = batch ? "fhir_batch" : "fhir_transaction";
    const json::Value* es = json::member(doc, "entry");
    if (es && !es->IsArray()) {
      return respond(
          outcome_response(make_error(Errc::invalid_input, "Bundle.entry must be an array", "Bundle.entry"), route));
    }
    write::Request w;
    w.who = req.principal;
    w.request_id = req.audit_id();
    w.mode = batch ? write::Mode::batch : write::Mode::transaction;
    w.action = batch ? "batch" : "transaction";
    w.entries = write::entries_from_bundle(es);
    auto shape = std::make_shared<write::Request>();
    for (const auto& e : w.entries) {
      write::Entry s;
      s.method = e.method;
      s.type = e.type;
      s.id = e.id;
      shape->entries.push_back(std::move(s));
    }
    std::string b = base(req);
    writes.submit(std::move(w), [shape, b, batch, route, respond = std::move(respond)](write::Outcome out) {
      if (out.failure) {
        if (!out.issues.empty()) return respond(issues_response(http_status_for(out.failure->code), out.issues, route));
        Error e = *out.failure;
        e.message = "transaction rolled back, nothing was written: " + e.message;
        return respond(outcome_response(e, route));
      }
      Response resp;
      resp.route = route;
      resp.body = bundle_response(b, *shape, out, batch);
      respond(std::move(resp));
    });
  }
};

const RestApi::Impl::InstanceOperation RestApi::Impl::kOperations[1] = {
    {"Patient", "everything", "GET", "http://hl7.org/fhir/OperationDefinition/Patient-everything",
     "GET only; _count and _offset page the Patient and every resource whose patient/subject it is; content the "
     "caller may not see (sensitivity labels, types its role may not search) is neither returned nor counted.",
     &RestApi::Impl::everything},
};

RestApi::RestApi(store::Store& store, write::WriteService& writes, const security::Visibility& visibility,
                 metrics::Registry& metrics, RestOptions opts)
    : impl_(std::make_unique<Impl>(store, writes, visibility, metrics, std::move(opts))) {
  // Served by handle() below (the instance-operation table).
  for (const auto& op : Impl::kOperations)
    declare(OperationDecl{std::string(op.type), std::string(op.name), std::string(op.definition),
                          std::string(op.documentation)});
  // Every AuditEvent search is CP-IS's access trail (CpisApi::handles).
  declare(SearchDecl{"AuditEvent",
                     {{"patient", "reference",
                       "Required, and only as patient:identifier=https://fhir.nhs.uk/Id/nhs-number|<NHS number>: "
                       "the CP-IS access trail of that child"}}});
}

void RestApi::declare(OperationDecl op) { impl_->declared.operations.push_back(std::move(op)); }
void RestApi::declare(ResourceDecl r) { impl_->declared.resources.push_back(std::move(r)); }
void RestApi::declare(CapabilityExtension e) { impl_->declared.extensions.push_back(std::move(e)); }
void RestApi::declare(SearchDecl s) { impl_->declared.searches.push_back(std::move(s)); }

RestApi::~RestApi() = default;

void RestApi::handle(net::Request req, net::Respond respond) { impl_->handle(std::move(req), std::move(respond)); }

std::string RestApi::capability_statement() const {
  return capability_statement_json(impl_->validator, impl_->policy, impl_->declared);
}

void RestApi::add_operation(OperationDoc doc, net::Handler* handler) {
  impl_->operation_handlers[doc.type + "/$" + doc.name] = handler;
  declare(std::move(doc));  // listed from the same table that routes it
}

}  // namespace gw::fhir
