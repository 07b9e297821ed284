#include "gateway/fhir/rest.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <map>
#include <mutex>

#include "gateway/common/issues.h"
#include "gateway/common/log.h"
#include "gateway/model/bundle.h"
#include "gateway/fhir/capability.h"
#include "gateway/cpis/cpis_api.h"
#include "gateway/model/cpis_plan.h"
#include "gateway/fhir/everything.h"
#include "gateway/fhir/include.h"
#include "gateway/model/resource_text.h"
#include "gateway/model/search_params.h"
#include "gateway/identity/nhs_number.h"

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

bool contains_ci(std::string_view hay, std::string_view needle) {
  if (needle.size() > hay.size()) return false;
  for (size_t i = 0; i + needle.size() <= hay.size(); ++i) {
    bool eq = true;
    for (size_t k = 0; k < needle.size() && eq; ++k)
      eq = std::tolower(static_cast<unsigned char>(hay[i + k])) == std::tolower(static_cast<unsigned char>(needle[k]));
    if (eq) return true;
  }
  return false;
}

// The query's _format value, if any (not decoded beyond what matters: json/xml).
std::string_view format_param(std::string_view query) {
  size_t pos = 0;
  while (pos < query.size()) {
    size_t amp = query.find('&', pos);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view kv = query.substr(pos, amp - pos);
    if (kv.rfind("_format=", 0) == 0) return kv.substr(8);
    pos = amp + 1;
  }
  return {};
}

// JSON only (DESIGN.md): XML or anything else is 415 with an OperationOutcome.
std::optional<Error> check_formats(const Request& req, bool has_body) {
  std::string_view f = format_param(req.query);
  if (!f.empty() && !contains_ci(f, "json")) {
    return make_error(Errc::unsupported_media, "_format must be json; this server speaks FHIR JSON only", "_format");
  }
  if (auto accept = req.header("accept")) {
    bool json_ok = accept->empty() || contains_ci(*accept, "json") || contains_ci(*accept, "*/*");
    if (!json_ok) {
      return make_error(Errc::unsupported_media,
                        "Accept must allow application/fhir+json or application/json; this server speaks FHIR JSON only");
    }
  }
  if (has_body) {
    auto ct = req.header("content-type");
    if (!ct || !(contains_ci(*ct, "application/fhir+json") || contains_ci(*ct, "application/json"))) {
      return make_error(Errc::unsupported_media,
                        "Content-Type must be application/fhir+json or application/json");
    }
  }
  return std::nullopt;
}

Response outcome_response(const Error& e, std::string route) {
  Response r;
  r.status = http_status_for(e.code);
  r.body = operation_outcome(e);
  r.route = std::move(route);
  return r;
}

Response issues_response(int status, const std::vector<Issue>& issues, std::string route) {
  Response r;
  r.status = status;
  r.body = operation_outcome(issues);
  r.route = std::move(route);
  return r;
}

enum class PreferReturn { representation, minimal, outcome };

PreferReturn prefer_return(const Request& req) {
  auto p = req.header("prefer");
  if (!p) return PreferReturn::representation;
  if (contains_ci(*p, "return=minimal")) return PreferReturn::minimal;
  if (contains_ci(*p, "return=operationoutcome")) return PreferReturn::outcome;
  return PreferReturn::representation;
}

bool prefer_strict(const Request& req) {
  auto p = req.header("prefer");
  return p && contains_ci(*p, "handling=strict");
}

std::optional<int64_t> parse_etag_version(std::string_view v) {
  // W/"3" or "3"
  if (v.rfind("W/", 0) == 0) v.remove_prefix(2);
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  int64_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || p != v.data() + v.size() || n < 1) return std::nullopt;
  return n;
}

}  // namespace

struct RestApi::Impl {
  store::Store& store;
  const write::Validator& validator;
  const security::Policy& policy;
  metrics::Registry& metrics;
  RestOptions opts;
  std::string capability;

  cpis::CpisApi cpis_api;  // the national CP-IS API's searches (CareTeam, AuditEvent, Flag)

  Impl(store::Store& s, const write::Validator& v, const security::Policy& p, metrics::Registry& m, RestOptions o)
      : store(s), validator(v), policy(p), metrics(m), opts(std::move(o)), cpis_api(cpis_context()) {}

  cpis::CpisContext cpis_context() {
    auto today = opts.today ? opts.today : std::function<std::string()>(model::cpis::utc_today);
    return cpis::CpisContext{store, policy, std::move(today), [this](const Request& r) { return base(r); },
                       [](const Request& r, std::string action, std::string entity, int status, std::string patient) {
                         return audit_row(r, std::move(action), std::move(entity), status, std::move(patient));
                       }};
  }

  std::string base(const Request& req) const {
    return (opts.public_base_url.empty() ? req.base_url : opts.public_base_url) + "/fhir";
  }

  // ---- audit -------------------------------------------------------------

  static store::AuditRow audit_row(const Request& req, std::string action, std::string entity, int status,
                                   std::string patient_ref = {}) {
    store::AuditRow a;
    a.actor_ods = req.principal.ods;
    a.actor_role = req.principal.role;
    a.actor_system = req.principal.system;
    a.action = std::move(action);
    a.entity = std::move(entity);
    a.outcome = status < 400 ? "success" : "failure";
    a.http_status = status;
    a.request_id = std::to_string(req.req_id);
    a.patient_ref = std::move(patient_ref);
    return a;
  }

  // Reads are audited too (who saw what); the row is committed asynchronously
  // because the answer does not depend on it, but a full queue is logged loudly.
  void audit_read(const Request& req, std::string action, std::string entity, int status,
                  std::string patient_ref = {}) {
    store::UnitOfWork u;
    u.audit.push_back(audit_row(req, std::move(action), std::move(entity), status, std::move(patient_ref)));
    auto r = store.commit(std::move(u), [](Result<store::CommitOutcome> res) {
      if (!res) log::error("audit_write_failed", {{"reason", res.error().message}});
    });
    if (!r) log::error("audit_write_refused", {{"reason", r.error().message}});
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
    if (policy.allows(req.principal, type, interaction)) return true;
    respond(outcome_response(make_error(Errc::forbidden, "Role '" + req.principal.role + "' may not " +
                                                             std::string(interaction) + " " + type),
                             route));
    return false;
  }

  // As if it did not exist for this caller: labelled content its role may
  // not see, an access record (AuditEvent) about another authority's plans,
  // or outside its row scope (a disclosure sent to another organisation,
  // policy "scope": "recipient"). Call on a store reader thread.
  bool hidden_from(const security::Principal& who, const store::StoredResource& r, std::string_view interaction) const {
    if (model::hidden_by_labels(r.body, policy.hidden_labels(who))) return true;
    if (r.type == "AuditEvent" && !r.deleted && !cpis_api.may_read_access_record(who, r.body)) return true;
    auto scope = policy.row_scope(who, r.type, interaction);
    if (!scope || r.body.empty()) return false;
    auto doc = json::parse(r.body);
    if (!doc) return true;  // unreadable: fail closed
    for (const auto& e : model::index_entries(r.type, *doc))
      if (e.param == *scope && e.value == who.ods) return false;
    return true;
  }

  // Runs fn on the store reader pool; 503 when the pool's queue is full.
  template <class Fn>
  void on_reader(Respond respond, const char* route, Fn fn) {
    auto shared = std::make_shared<Respond>(std::move(respond));
    auto r = store.run_read([shared, fn = std::move(fn)]() mutable { fn(*shared); });
    if (!r) (*shared)(outcome_response(r.error(), route));
  }

  // ---- conditional grants (access.json "ownOrganisation", "exceptCodes") ------

  using Conditions = std::vector<security::WriteCondition>;

  // What the content of this write must be (empty: the caller's grant is unconditional).
  Conditions conditions(const Request& req, const std::string& type, std::string_view interaction) const {
    return policy.write_conditions(req.principal, type, interaction);
  }

  static bool allowed_content(const Conditions& conds, const json::Value& resource, const Request& req) {
    return conds.empty() || std::any_of(conds.begin(), conds.end(), [&](const security::WriteCondition& c) {
             return c.met_by(resource, req.principal);
           });
  }

  static std::string condition_path(const std::string& prefix, const Conditions& conds) {
    const std::string& e = conds.front().own_organisation;
    return e.empty() ? prefix : prefix + "." + e;
  }

  static Error not_allowed(const Request& req, const std::string& type, const Conditions& conds, bool replaced,
                           std::string expression) {
    std::string who = "role '" + req.principal.role + "' (organisation " + req.principal.ods + ")";
    if (replaced) {
      return make_error(Errc::forbidden, "this " + type + " is not one " + who + " may change: it may change only a " +
                                             type + " " + conds.front().describe(),
                        std::move(expression));
    }
    return make_error(Errc::forbidden, who + " may write only a " + type + " " + conds.front().describe(),
                      std::move(expression));
  }

  // On a store reader: the resource an update replaces must be the caller's
  // own as well, or a second organisation could take it over (by id or by a
  // conditional update on its identifier). The op is pinned to what was
  // checked (resolved id and If-Match), so a change in between fails as a
  // version conflict instead of slipping past the check.
  std::optional<Error> check_replaced(const Request& req, const Conditions& conds, store::WriteOp& op,
                                      const std::string& expression) {
    if (conds.empty() || op.kind != store::OpKind::update) return std::nullopt;
    if (!op.match.empty() && !op.id_resolved) {
      auto found = store.search(match_query(op.type, op.match, 2));
      if (!found) return found.error();
      op.id_resolved = true;
      if (found->items.size() == 1) op.id = found->items[0].id;
    }
    auto cur = store.read(op.type, op.id);
    if (!cur) {
      // Nothing live to take over: the update creates (or brings back) the resource.
      if (cur.error().code == Errc::not_found || cur.error().code == Errc::gone) return std::nullopt;
      return cur.error();
    }
    auto doc = json::parse(cur->body);
    if (!doc || !allowed_content(conds, *doc, req)) return not_allowed(req, op.type, conds, true, expression);
    if (!op.if_match) op.if_match = cur->version;
    return std::nullopt;
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
    bool has_body = m == "POST" || m == "PUT";
    if (auto e = check_formats(req, has_body && !(seg.size() == 1 && seg[0] == "metadata"))) {
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
      r.body = capability;
      r.route = "fhir_metadata";
      respond(std::move(r));
      return;
    }
    std::string type(seg[0]);
    if (!check_type(type, respond, "fhir_type")) return;
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
      return method_not_allowed(m, "an instance accepts GET, PUT and DELETE", respond);
    }
    if (seg.size() == 3 && seg[2] == "$everything" && type == "Patient") {
      if (m != "GET") return method_not_allowed(m, "$everything accepts GET", respond);
      return everything(std::move(req), std::move(respond), id);
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

  static Response resource_response(const store::StoredResource& r, int status, const std::string& location_base,
                                    PreferReturn pr, std::string route) {
    Response resp;
    resp.status = status;
    resp.route = std::move(route);
    resp.headers.emplace_back("ETag", model::etag(r.version));
    resp.headers.emplace_back("Last-Modified", model::http_date(r.last_updated));
    if (!location_base.empty()) {
      resp.headers.emplace_back("Location", location_base + "/" + r.type + "/" + r.id + "/_history/" +
                                                std::to_string(r.version));
    }
    if (pr == PreferReturn::minimal) {
      resp.body.clear();
    } else if (pr == PreferReturn::outcome) {
      resp.body = operation_outcome(std::vector<Issue>{});
    } else {
      resp.body = model::served_text(r);
    }
    return resp;
  }

  void read(Request req, Respond respond, const std::string& type, const std::string& id, int64_t vid) {
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
        audit_read(req, vid ? "vread" : "read", entity, status);
        respond(outcome_response(e, route));
        return;
      }
      if (hidden_from(req.principal, *r, vid ? "vread" : "read")) {
        // Labelled, out-of-scope content or another authority's access
        // record: as if it did not exist.
        audit_read(req, vid ? "vread" : "read", entity, 404);
        respond(outcome_response(make_error(Errc::not_found, vid ? "version not found" : type + " not found"), route));
        return;
      }
      if (r->deleted) {  // vread of a deletion
        audit_read(req, "vread", entity, 410);
        respond(outcome_response(make_error(Errc::gone, "this version records the deletion of the " + type), route));
        return;
      }
      audit_read(req, vid ? "vread" : "read", entity, 200, type == "Patient" ? entity : std::string());
      respond(resource_response(*r, 200, "", PreferReturn::representation, route));
    });
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
      audit_read(req, "history", type + "/" + id, 200, type == "Patient" ? type + "/" + id : std::string());
      Response resp;
      resp.route = "fhir_history";
      resp.body = model::history_bundle(base(req), *h);
      respond(std::move(resp));
    });
  }

  // ---- search ----------------------------------------------------------------

  void search(Request req, Respond respond, const std::string& type) {
    if (cpis_api.handles(type, req)) return cpis_api.search(type, std::move(req), std::move(respond));
    if (!check_policy(req, type, "search", respond, "fhir_search")) return;
    auto parsed = model::parse_search(type, req.query, prefer_strict(req));
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
    for (const auto& t : any) c.any_of.emplace_back(t.has_system ? t.system : std::string(), normalise_token_value(t));
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
    audit_read(req, "search", type + search_param_names(req.query), 200);
    Response resp;
    resp.route = "fhir_search";
    resp.body = model::searchset_bundle(base(req), type, req.query, page, q.count, q.offset, sr.ignored, included);
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
        audit_read(req, "everything", entity, http_status_for(page.error().code));
        respond(outcome_response(page.error(), route));
        return;
      }
      audit_read(req, "everything", entity, 200, entity);
      Response resp;
      resp.route = route;
      resp.body = model::searchset_bundle(base(req), entity + "/$everything", req.query, *page, count, sr.offset, sr.ignored);
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

  // Parses and validates a resource body; responds and returns false on error.
  bool parse_resource(const Request& req, Respond& respond, const std::string& type, json::Document& doc,
                      const char* route) {
    auto parsed = json::parse(req.body);
    if (!parsed) {
      respond(outcome_response(parsed.error(), route));
      return false;
    }
    doc = std::move(*parsed);
    if (!doc.IsObject()) {
      respond(outcome_response(make_error(Errc::invalid_input, "the body must be a JSON object (a FHIR resource)"),
                               route));
      return false;
    }
    auto rt = json::get_string(doc, "resourceType");
    if (!rt || *rt != type) {
      respond(outcome_response(make_error(Errc::invalid_input,
                                          "resourceType must be '" + type + "' for this endpoint", "resourceType"),
                               route));
      return false;
    }
    IssueSink sink;
    validator.validate(doc, sink);
    if (sink.has_errors()) {
      respond(issues_response(422, sink.issues(), route));
      return false;
    }
    return true;
  }

  // For a Patient: normalises the NHS number identifier in place and returns it
  // as the unique key.
  static std::optional<std::string> nhs_unique_key(const std::string& type, json::Document& doc) {
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

  // If-None-Exist / conditional update criteria: identifier (and _id) only,
  // each with a single value, so the writer can check them atomically.
  static Result<std::vector<store::Match>> criteria(const std::string& type, std::string_view query,
                                                    const char* what) {
    auto sr = model::parse_search(type, query, true);
    if (!sr) return sr.error();
    std::vector<store::Match> out;
    for (const auto& occ : sr->identifier) {
      if (occ.size() != 1) {
        return make_error(Errc::invalid_input, std::string(what) + ": one identifier value per parameter",
                          "identifier");
      }
      out.push_back(store::Match{"identifier", occ[0].has_system ? occ[0].system : std::string(),
                                 normalise_token_value(occ[0])});
    }
    if (out.empty() || !sr->ids.empty() || !sr->patient_refs.empty() || !sr->patient_identifier.empty() ||
        !sr->subject_refs.empty() || !sr->subject_identifier.empty() || !sr->last_updated.empty()) {
      return make_error(Errc::invalid_input,
                        std::string(what) + " supports identifier=[system|]value criteria only");
    }
    return out;
  }

  void create(Request req, Respond respond, const std::string& type) {
    const char* route = "fhir_create";
    if (!check_policy(req, type, "create", respond, route)) return;
    json::Document doc;
    if (!parse_resource(req, respond, type, doc, route)) return;
    if (auto conds = conditions(req, type, "create"); !allowed_content(conds, doc, req)) {
      audit_read(req, "create", type, 403);
      return respond(outcome_response(not_allowed(req, type, conds, false, condition_path(type, conds)), route));
    }
    store::WriteOp op;
    op.kind = store::OpKind::create;
    op.type = type;
    op.id = model::new_uuid();  // a server assigns the id on create; any id sent is ignored
    op.unique_key = nhs_unique_key(type, doc);
    if (auto ine = req.header("if-none-exist")) {
      std::string_view q = *ine;
      if (auto pos = q.find('?'); pos != std::string_view::npos) q = q.substr(pos + 1);
      auto c = criteria(type, q, "If-None-Exist");
      if (!c) {
        respond(outcome_response(c.error(), route));
        return;
      }
      op.if_none_exist = std::move(*c);
    }
    op.index = model::index_entries(type, doc);
    op.body = model::storage_text(doc, type, doc.GetAllocator());
    submit_write(std::move(req), std::move(respond), std::move(op), route);
  }

  void update(Request req, Respond respond, const std::string& type, const std::string& url_id) {
    const char* route = url_id.empty() ? "fhir_conditional_update" : "fhir_update";
    if (!check_policy(req, type, "update", respond, route)) return;
    json::Document doc;
    if (!parse_resource(req, respond, type, doc, route)) return;
    auto own = conditions(req, type, "update");
    if (!allowed_content(own, doc, req)) {
      audit_read(req, "update", type, 403);
      return respond(outcome_response(not_allowed(req, type, own, false, condition_path(type, own)), route));
    }
    auto body_id = json::get_string(doc, "id");
    store::WriteOp op;
    op.kind = store::OpKind::update;
    op.type = type;
    if (!url_id.empty()) {
      if (!body_id) {
        respond(outcome_response(make_error(Errc::invalid_input, "the resource must carry the id of the URL", "id"),
                                 route));
        return;
      }
      if (*body_id != url_id) {
        respond(outcome_response(
            make_error(Errc::invalid_input, "the resource id does not match the id in the URL", "id"), route));
        return;
      }
      op.id = url_id;
    } else {
      auto c = criteria(type, req.query, "conditional update");
      if (!c) {
        respond(outcome_response(c.error(), route));
        return;
      }
      op.match = std::move(*c);
      if (body_id && !model::is_valid_id(*body_id)) {
        respond(outcome_response(make_error(Errc::invalid_input, "invalid id", "id"), route));
        return;
      }
      op.id = body_id ? std::string(*body_id) : model::new_uuid();
    }
    if (auto im = req.header("if-match")) {
      auto v = parse_etag_version(*im);
      if (!v) {
        respond(outcome_response(make_error(Errc::invalid_input, "If-Match must be an ETag such as W/\"3\""), route));
        return;
      }
      op.if_match = *v;
    }
    op.unique_key = nhs_unique_key(type, doc);
    op.index = model::index_entries(type, doc);
    op.body = model::storage_text(doc, type, doc.GetAllocator());
    write_if_visible(std::move(req), std::move(respond), std::move(op), route, std::move(own));
  }

  // A conditional update whose criteria match labelled content the caller may
  // not see is refused as if nothing matched and nothing could be written
  // there (404), like a write by id: otherwise a role that guesses a clinic's
  // identifier could overwrite (and unlabel) the clinic's record.
  bool matches_hidden(const store::WriteOp& op, const std::vector<std::string>& hidden) {
    auto found = store.search(match_query(op.type, op.match, 2));
    if (!found) return false;
    for (const auto& r : found->items)
      if (model::hidden_by_labels(r.body, hidden)) return true;
    return false;
  }

  // A write by id, or a conditional write whose match is, to labelled content
  // the caller may not see is answered as if the resource did not exist (it
  // must neither change it nor learn of it).
  // `own`: what the content replaced must be for this caller (conditions()).
  void write_if_visible(Request req, Respond respond, store::WriteOp op, const char* route, Conditions own = {}) {
    auto hidden = policy.hidden_labels(req.principal);
    if (hidden.empty() && own.empty()) return submit_write(std::move(req), std::move(respond), std::move(op), route);
    on_reader(std::move(respond), route,
              [this, req = std::move(req), op = std::move(op), hidden, own, route](Respond& respond) mutable {
                bool hidden_target = false;
                if (op.match.empty()) {
                  auto cur = store.read(op.type, op.id);
                  hidden_target = cur && model::hidden_by_labels(cur->body, hidden);
                } else {
                  hidden_target = !hidden.empty() && matches_hidden(op, hidden);
                }
                if (hidden_target) {
                  audit_read(req, action_name(op.kind), op.match.empty() ? op.type + "/" + op.id : op.type, 404);
                  return respond(outcome_response(make_error(Errc::not_found, op.type + " not found"), route));
                }
                if (auto e = check_replaced(req, own, op, own.empty() ? op.type : condition_path(op.type, own))) {
                  audit_read(req, action_name(op.kind), op.type, http_status_for(e->code));
                  return respond(outcome_response(*e, route));
                }
                submit_write(std::move(req), std::move(respond), std::move(op), route);
              });
  }

  void remove(Request req, Respond respond, const std::string& type, const std::string& id) {
    const char* route = "fhir_delete";
    if (!check_policy(req, type, "delete", respond, route)) return;
    store::WriteOp op;
    op.kind = store::OpKind::remove;
    op.type = type;
    op.id = id;
    if (auto im = req.header("if-match")) {
      auto v = parse_etag_version(*im);
      if (!v) {
        respond(outcome_response(make_error(Errc::invalid_input, "If-Match must be an ETag such as W/\"3\""), route));
        return;
      }
      op.if_match = *v;
    }
    write_if_visible(std::move(req), std::move(respond), std::move(op), route);
  }

  static std::string action_name(store::OpKind k) {
    switch (k) {
      case store::OpKind::create: return "create";
      case store::OpKind::update: return "update";
      case store::OpKind::remove: return "delete";
    }
    return "write";
  }

  // Commits one write with its audit row; answers only after the durable commit.
  void submit_write(Request req, Respond respond, store::WriteOp op, const char* route) {
    auto shared_req = std::make_shared<Request>(std::move(req));
    auto shared_resp = std::make_shared<Respond>(std::move(respond));
    store::UnitOfWork unit;
    std::string entity = op.type + "/" + op.id;
    unit.audit.push_back(audit_row(*shared_req, action_name(op.kind), entity, 200,
                                   op.type == "Patient" ? entity : std::string()));
    auto type = op.type;
    auto kind = op.kind;
    auto body = op.body;  // kept to answer without a read-back
    unit.ops.push_back(std::move(op));
    auto r = store.commit(std::move(unit), [this, shared_req, shared_resp, type, kind, body = std::move(body),
                                            route](Result<store::CommitOutcome> res) mutable {
      finish_write(*shared_req, *shared_resp, type, kind, body, route, std::move(res));
    });
    if (!r) (*shared_resp)(outcome_response(r.error(), route));
  }

  void finish_write(const Request& req, Respond& respond, const std::string& type, store::OpKind kind,
                    const std::string& body, const char* route, Result<store::CommitOutcome> res) {
    if (!res) {
      Error e = res.error();
      if (e.code == Errc::conflict && e.expression.rfind("Patient/", 0) == 0) {
        e.message = "a Patient with this NHS number already exists (" + e.expression +
                    "); use a conditional create (If-None-Exist) or update that Patient";
        e.expression = "Patient.identifier";
      }
      if (e.code == Errc::internal || e.code == Errc::store_failure) {
        log::error("store_write_failed", {{"req", req.req_id}, {"reason", e.message}});
      }
      audit_read(req, action_name(kind), type, http_status_for(e.code));
      respond(outcome_response(e, route));
      return;
    }
    const store::OpOutcome& o = res->ops.at(0);
    if (kind == store::OpKind::remove) {
      Response resp;
      resp.status = 200;
      resp.route = route;
      resp.headers.emplace_back("ETag", model::etag(o.version));
      resp.body = operation_outcome(std::vector<Issue>{
          Issue{Severity::information, "informational", "", type + " deleted (version " +
                                                                 std::to_string(o.version) + ")"}});
      respond(std::move(resp));
      return;
    }
    if (o.noop) {
      // Conditional create matched: 200 with the existing resource.
      on_reader(std::move(respond), route, [this, type, id = o.id, route, who = req.principal](Respond& respond) {
        auto r = store.read(type, id);
        if (!r) {
          respond(outcome_response(r.error(), route));
          return;
        }
        if (model::hidden_by_labels(r->body, policy.hidden_labels(who))) {
          // The match is labelled content this caller may not see: say that
          // nothing was created, show nothing of what exists.
          Response resp;
          resp.status = 200;
          resp.route = route;
          resp.body = operation_outcome(std::vector<Issue>{
              Issue{Severity::information, "informational", "", "a matching resource exists; nothing was created"}});
          respond(std::move(resp));
          return;
        }
        respond(resource_response(*r, 200, "", PreferReturn::representation, route));
      });
      return;
    }
    store::StoredResource sr;
    sr.type = type;
    sr.id = o.id;
    sr.version = o.version;
    sr.last_updated = o.last_updated;
    sr.body = body;
    respond(resource_response(sr, o.created ? 201 : 200, base(req), prefer_return(req), route));
  }

  // ---- transaction / batch ----------------------------------------------------

  // One Bundle entry made ready: a write op, or a read for after the commit.
  struct Prepared {
    std::string method;
    std::string type, id;         // for GET and for the response location
    std::optional<store::WriteOp> op;
    std::shared_ptr<json::Document> doc;  // POST/PUT resource, serialised after references are resolved
    std::string full_url;          // the entry's fullUrl (urn:uuid:... for new resources)
    std::optional<Error> error;    // batch: this entry's own failure
    std::vector<Issue> issues;     // validation problems, expressions prefixed with the entry path
    std::vector<security::WriteCondition> own;  // conditions(): what the content and what it replaces must be
  };

  static std::string entry_path(size_t i) { return "Bundle.entry[" + std::to_string(i) + "]"; }

  static void prefix_issues(std::vector<Issue>& issues, const std::string& prefix, const std::string& type) {
    for (auto& is : issues) {
      // write::Validator paths start with the type ("Patient.gender"); re-root them on the entry.
      std::string e = is.expression;
      if (e.rfind(type, 0) == 0) e = e.substr(type.size());
      if (!e.empty() && e[0] != '.') e = "." + e;
      is.expression = prefix + ".resource" + e;
    }
  }

  Prepared prepare_entry(const Request& req, const json::Value& entry, size_t i) {
    Prepared p;
    std::string path = entry_path(i);
    auto fail = [&](Errc c, std::string msg, std::string expr) {
      p.error = make_error(c, std::move(msg), std::move(expr));
      return p;
    };
    if (!entry.IsObject()) return fail(Errc::invalid_input, "entry must be an object", path);
    if (auto fu = json::get_string(entry, "fullUrl")) p.full_url = std::string(*fu);
    const json::Value* request = json::member(entry, "request");
    if (!request || !request->IsObject()) return fail(Errc::invalid_input, "entry.request is required", path + ".request");
    auto method = json::get_string(*request, "method");
    auto url = json::get_string(*request, "url");
    if (!method || !url) return fail(Errc::invalid_input, "request.method and request.url are required", path + ".request");
    p.method = std::string(*method);
    std::string_view u = *url;
    if (auto pos = u.find("/fhir/"); pos != std::string_view::npos) u = u.substr(pos + 6);  // absolute URLs
    while (!u.empty() && u.front() == '/') u.remove_prefix(1);
    std::string_view query;
    if (auto q = u.find('?'); q != std::string_view::npos) {
      query = u.substr(q + 1);
      u = u.substr(0, q);
    }
    auto seg = split_path(u);
    if (seg.empty()) return fail(Errc::invalid_input, "request.url must name a resource type", path + ".request.url");
    p.type = std::string(seg[0]);
    if (!validator.supports(p.type)) {
      return fail(Errc::not_found, "resource type '" + p.type + "' is not supported", path + ".request.url");
    }
    if (seg.size() > 2) return fail(Errc::invalid_input, "request.url form not supported here", path + ".request.url");
    if (seg.size() == 2) {
      p.id = std::string(seg[1]);
      if (!model::is_valid_id(p.id)) return fail(Errc::invalid_input, "invalid id in request.url", path + ".request.url");
    }
    std::string_view interaction;
    if (p.method == "GET") interaction = "read";
    else if (p.method == "POST") interaction = "create";
    else if (p.method == "PUT") interaction = "update";
    else if (p.method == "DELETE") interaction = "delete";
    else return fail(Errc::method_not_allowed, "request.method must be GET, POST, PUT or DELETE", path + ".request.method");
    if (!policy.allows(req.principal, p.type, interaction)) {
      return fail(Errc::forbidden, "role '" + req.principal.role + "' may not " + std::string(interaction) + " " + p.type,
                  path);
    }
    if (p.method == "GET") {
      if (p.id.empty() || !query.empty()) {
        return fail(Errc::invalid_input, "only reads (GET Type/id) are supported inside a Bundle", path + ".request.url");
      }
      return p;
    }
    store::WriteOp op;
    op.type = p.type;
    if (p.method == "DELETE") {
      if (p.id.empty()) return fail(Errc::invalid_input, "DELETE needs Type/id", path + ".request.url");
      op.kind = store::OpKind::remove;
      op.id = p.id;
    } else {
      const json::Value* res = json::member(entry, "resource");
      if (!res || !res->IsObject()) return fail(Errc::invalid_input, "entry.resource is required", path + ".resource");
      auto rt = json::get_string(*res, "resourceType");
      if (!rt || *rt != p.type) {
        return fail(Errc::invalid_input, "resource.resourceType must match request.url", path + ".resource.resourceType");
      }
      p.doc = std::make_shared<json::Document>();
      p.doc->CopyFrom(*res, p.doc->GetAllocator());
      IssueSink sink;
      validator.validate(*p.doc, sink);
      if (sink.has_errors()) {
        p.issues = sink.issues();
        prefix_issues(p.issues, path, p.type);
        p.error = make_error(Errc::unprocessable, "the resource is not valid", path + ".resource");
        return p;
      }
      p.own = policy.write_conditions(req.principal, p.type, interaction);
      if (!allowed_content(p.own, *p.doc, req)) {
        p.error = not_allowed(req, p.type, p.own, false, condition_path(path + ".resource", p.own));
        return p;
      }
      if (p.method == "POST") {
        op.kind = store::OpKind::create;
        op.id = model::new_uuid();
        if (auto ine = json::get_string(*request, "ifNoneExist")) {
          std::string_view q = *ine;
          if (auto pos = q.find('?'); pos != std::string_view::npos) q = q.substr(pos + 1);
          auto c = criteria(p.type, q, "ifNoneExist");
          if (!c) return fail(c.error().code, c.error().message, path + ".request.ifNoneExist");
          op.if_none_exist = std::move(*c);
        }
      } else {
        op.kind = store::OpKind::update;
        if (!p.id.empty()) {
          auto body_id = json::get_string(*p.doc, "id");
          if (!body_id || *body_id != p.id) {
            return fail(Errc::invalid_input, "resource.id must match the id in request.url", path + ".resource.id");
          }
          op.id = p.id;
        } else {
          auto c = criteria(p.type, query, "conditional update");
          if (!c) return fail(c.error().code, c.error().message, path + ".request.url");
          op.match = std::move(*c);
          auto body_id = json::get_string(*p.doc, "id");
          op.id = body_id && model::is_valid_id(*body_id) ? std::string(*body_id) : model::new_uuid();
        }
        if (auto im = json::get_string(*request, "ifMatch")) {
          auto v = parse_etag_version(*im);
          if (!v) return fail(Errc::invalid_input, "ifMatch must be an ETag", path + ".request.ifMatch");
          op.if_match = *v;
        }
      }
      p.id = op.id;
    }
    p.op = std::move(op);
    return p;
  }

  // Replaces every "reference" equal to a key of `map` (urn:uuid:... fullUrls).
  static void resolve_references(json::Value& v, const std::map<std::string, std::string>& map,
                                 json::Allocator& alloc) {
    if (v.IsObject()) {
      for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
        std::string_view k(it->name.GetString(), it->name.GetStringLength());
        if (k == "reference" && it->value.IsString()) {
          auto f = map.find(std::string(json::as_view(it->value)));
          if (f != map.end()) it->value = json::str(f->second, alloc);
        } else {
          resolve_references(it->value, map, alloc);
        }
      }
    } else if (v.IsArray()) {
      for (auto& e : v.GetArray()) resolve_references(e, map, alloc);
    }
  }

  // Serialises a prepared POST/PUT body into its op (after reference resolution).
  static void finalise_op(Prepared& p) {
    if (!p.op || !p.doc) return;
    p.op->unique_key = nhs_unique_key(p.type, *p.doc);
    p.op->index = model::index_entries(p.type, *p.doc);
    p.op->body = model::storage_text(*p.doc, p.type, p.doc->GetAllocator());
  }

  static std::string status_text(int status) {
    switch (status) {
      case 200: return "200 OK";
      case 201: return "201 Created";
      case 204: return "204 No Content";
      default: return std::to_string(status);
    }
  }

  // One response entry of a transaction-response / batch-response Bundle.
  std::string response_entry(const std::string& base_url, const Prepared& p, const store::OpOutcome* o,
                             const std::optional<store::StoredResource>& read_back, const std::optional<Error>& err,
                             const std::vector<Issue>& issues) {
    std::string out = "{";
    if (err) {
      int status = http_status_for(err->code);
      std::string oo = issues.empty() ? operation_outcome(*err) : operation_outcome(issues);
      out += "\"response\":{\"status\":" + model::quoted(std::to_string(status)) + ",\"outcome\":" + oo + "}}";
      return out;
    }
    if (p.method == "GET") {
      if (read_back) {
        out += "\"fullUrl\":" + model::quoted(base_url + "/" + p.type + "/" + p.id) + ",\"resource\":" + model::served_text(*read_back);
        out += ",\"response\":{\"status\":\"200 OK\",\"etag\":" + model::quoted(model::etag(read_back->version)) + "}}";
      }
      return out;
    }
    int status = p.method == "DELETE" ? 200 : (o->created ? 201 : 200);
    if (p.method != "DELETE") out += "\"fullUrl\":" + model::quoted(base_url + "/" + p.type + "/" + o->id) + ",";
    out += "\"response\":{\"status\":" + model::quoted(status_text(status));
    if (p.method != "DELETE") {
      out += ",\"location\":" + model::quoted(p.type + "/" + o->id + "/_history/" + std::to_string(o->version));
    }
    out += ",\"etag\":" + model::quoted(model::etag(o->version)) + ",\"lastModified\":" + model::quoted(o->last_updated) + "}}";
    return out;
  }

  void bundle(Request req, Respond respond, std::shared_ptr<TransactionExtras> extras = nullptr) {
    const char* route = extras ? "ingest_transaction" : "fhir_bundle";
    auto parsed = json::parse(req.body);
    if (!parsed) {
      respond(outcome_response(parsed.error(), route));
      return;
    }
    json::Document doc = std::move(*parsed);
    auto rt = json::get_string(doc, "resourceType");
    auto btype = json::get_string(doc, "type");
    if (!rt || *rt != "Bundle") {
      respond(outcome_response(make_error(Errc::invalid_input, "the base URL accepts a Bundle", "resourceType"), route));
      return;
    }
    if (!btype || (*btype != "transaction" && *btype != "batch") || (extras && *btype != "transaction")) {
      respond(outcome_response(make_error(Errc::invalid_input, "Bundle.type must be transaction or batch", "Bundle.type"),
                               route));
      return;
    }
    bool transaction = *btype == "transaction";
    std::vector<Prepared> entries;
    if (const json::Value* es = json::member(doc, "entry")) {
      if (!es->IsArray()) {
        respond(outcome_response(make_error(Errc::invalid_input, "Bundle.entry must be an array", "Bundle.entry"), route));
        return;
      }
      size_t i = 0;
      for (const auto& e : es->GetArray()) entries.push_back(prepare_entry(req, e, i++));
    }
    auto shared_req = std::make_shared<Request>(std::move(req));
    if (transaction) return run_transaction(shared_req, std::move(respond), std::move(entries), std::move(extras));
    run_batch(shared_req, std::move(respond), std::move(entries));
  }

  void run_transaction(std::shared_ptr<Request> req, Respond respond, std::vector<Prepared> entries,
                       std::shared_ptr<TransactionExtras> extras) {
    const char* route = extras ? "ingest_transaction" : "fhir_transaction";
    // All or nothing: any entry's problem fails the whole Bundle, every problem listed.
    std::vector<Issue> problems;
    int status = 0;
    for (auto& p : entries) {
      if (!p.error) continue;
      if (!p.issues.empty()) {
        problems.insert(problems.end(), p.issues.begin(), p.issues.end());
      } else {
        problems.push_back(Issue{Severity::error, fhir_issue_code_for(p.error->code), p.error->expression,
                                 p.error->message});
      }
      int s = http_status_for(p.error->code);
      status = std::max(status, s == 422 ? 422 : s);
    }
    if (!problems.empty()) {
      audit_read(*req, "transaction", "Bundle", status);
      respond(issues_response(status, problems, route));
      return;
    }
    auto shared_entries = std::make_shared<const std::vector<Prepared>>(std::move(entries));
    commit_transaction(req, std::move(respond), shared_entries, std::move(extras), route, 1);
  }

  // Resolves conditional entries against the current state, points urn:uuid
  // references at the resulting ids and commits. The writer re-checks every
  // resolution inside the transaction (WriteOp::id_resolved); when another
  // writer got in between, the whole Bundle is resolved again and retried.
  void commit_transaction(std::shared_ptr<Request> req, Respond respond,
                          std::shared_ptr<const std::vector<Prepared>> entries,
                          std::shared_ptr<TransactionExtras> extras, const char* route, int attempt) {
    on_reader(std::move(respond), route, [this, req, entries, extras, route, attempt](Respond& respond) mutable {
      std::map<std::string, std::string> refs;
      std::vector<store::WriteOp> ops(entries->size());
      // Versions an adapter's update is merged into (merge_policy.h).
      std::vector<std::optional<store::StoredResource>> merge_base(entries->size());
      for (size_t i = 0; i < entries->size(); ++i) {
        const auto& p = (*entries)[i];
        if (!p.op) continue;
        store::WriteOp& op = ops[i];
        op = *p.op;
        if (op.kind == store::OpKind::create && !op.if_none_exist.empty()) {
          op.id_resolved = true;
          op.id = model::new_uuid();
          auto found = store.search(match_query(p.type, op.if_none_exist, 1));
          if (!found) return respond(outcome_response(found.error(), route));
          if (!found->items.empty()) op.id = found->items[0].id;
        } else if (op.kind == store::OpKind::update && !op.match.empty()) {
          op.id_resolved = true;
          auto found = store.search(match_query(p.type, op.match, 2));
          if (!found) return respond(outcome_response(found.error(), route));
          // A match the caller may not see: refused unless the entry keeps
          // its hidden labels (a feed resending what it wrote; never a strip).
          for (const auto& r : found->items)
            if (auto hidden = policy.hidden_labels(req->principal);
                model::hidden_by_labels(r.body, hidden) && !(p.doc && model::keeps_hidden_labels(r.body, *p.doc, hidden)))
              return respond(outcome_response(
                  make_error(Errc::not_found, "transaction rolled back, nothing was written: " + p.type + " not found",
                             entry_path(i) + ".request.url"),
                  route));
          if (found->items.size() == 1) {
            op.id = found->items[0].id;
            if (merged_feed(extras, p.type)) merge_base[i] = std::move(found->items[0]);
          }
        } else if (op.kind == store::OpKind::update && merged_feed(extras, p.type)) {
          if (auto cur = store.read(p.type, op.id); cur && !cur->deleted) merge_base[i] = std::move(*cur);
        }
        if (auto e = check_replaced(*req, p.own, op, entry_path(i) + ".resource")) {
          audit_read(*req, "transaction", "Bundle", http_status_for(e->code));
          return respond(outcome_response(*e, route));
        }
        if (p.full_url.rfind("urn:uuid:", 0) == 0 && op.kind != store::OpKind::remove) {
          refs[p.full_url] = p.type + "/" + op.id;
        }
      }
      store::UnitOfWork unit;
      std::vector<size_t> op_index(entries->size(), SIZE_MAX);
      for (size_t i = 0; i < entries->size(); ++i) {
        const auto& p = (*entries)[i];
        if (!p.op) continue;
        store::WriteOp& op = ops[i];
        if (p.doc) {
          // A copy per attempt: a retry must see the urn:uuid references again.
          json::Document d;
          d.CopyFrom(*p.doc, d.GetAllocator());
          resolve_references(d, refs, d.GetAllocator());
          if (merge_base[i]) merge_into(*merge_base[i], *extras, d, op);
          op.unique_key = nhs_unique_key(p.type, d);
          op.index = model::index_entries(p.type, d);
          op.body = model::storage_text(d, p.type, d.GetAllocator());
        }
        op_index[i] = unit.ops.size();
        std::string entity = p.type + "/" + op.id;
        unit.audit.push_back(audit_row(*req, action_name(op.kind), entity, 200,
                                       p.type == "Patient" ? entity : std::string()));
        unit.ops.push_back(std::move(op));
      }
      unit.audit.push_back(audit_row(*req, "transaction", "Bundle", 200));
      if (extras) {
        unit.idempotency_key = extras->idempotency_key;
        unit.inbound = extras->inbound;
        unit.inbound_status = extras->inbound_status;
        unit.outbox.insert(unit.outbox.end(), extras->outbox.begin(), extras->outbox.end());
      }
      auto shared_resp = std::make_shared<Respond>(std::move(respond));
      auto r = store.commit(std::move(unit), [this, req, shared_resp, entries, extras, op_index, route,
                                              attempt](Result<store::CommitOutcome> res) {
        if (!res) {
          Error e = res.error();
          if (e.code == Errc::version_conflict && attempt < kTransactionAttempts) {
            return commit_transaction(req, std::move(*shared_resp), entries, extras, route, attempt + 1);
          }
          e.message = "transaction rolled back, nothing was written: " + e.message;
          audit_read(*req, "transaction", "Bundle", http_status_for(e.code));
          (*shared_resp)(outcome_response(e, route));
          return;
        }
        auto outcome = std::make_shared<store::CommitOutcome>(std::move(*res));
        if (extras && extras->on_commit) extras->on_commit(*outcome);
        // GET entries are answered after the writes, from the committed state.
        on_reader(std::move(*shared_resp), route, [this, req, entries, op_index, outcome, route](Respond& respond) {
          std::string b = base(*req);
          std::string out = "{\"resourceType\":\"Bundle\",\"type\":\"transaction-response\",\"entry\":[";
          for (size_t i = 0; i < entries->size(); ++i) {
            const auto& p = (*entries)[i];
            if (i) out.push_back(',');
            std::optional<store::StoredResource> rb;
            std::optional<Error> err;
            if (p.method == "GET") {
              auto r = store.read(p.type, p.id);
              if (r && hidden_from(req->principal, *r, "read"))
                r = make_error(Errc::not_found, p.type + " not found");
              if (r) rb = std::move(*r);
              else err = r.error();
            }
            const store::OpOutcome* o = op_index[i] == SIZE_MAX ? nullptr : &outcome->ops[op_index[i]];
            if (o && o->noop && hidden_by_id(req->principal, p.type, o->id)) {
              out += kHiddenMatchEntry;
              continue;
            }
            out += response_entry(b, p, o, rb, err, {});
          }
          out += "]}";
          Response resp;
          resp.route = route;
          resp.body = std::move(out);
          respond(std::move(resp));
        });
      });
      if (!r) (*shared_resp)(outcome_response(r.error(), route));
    });
  }

  static constexpr int kTransactionAttempts = 5;

  bool merged_feed(const std::shared_ptr<TransactionExtras>& extras, const std::string& type) const {
    return extras && opts.merge && !extras->feed.empty() && opts.merge->merges(type, extras->feed);
  }

  // The feed's resource merged into the version read; written only if that
  // version is still current (a newer one fails the unit with
  // version_conflict, and commit_transaction reads and merges again).
  void merge_into(const store::StoredResource& base, const TransactionExtras& extras, json::Document& d,
                  store::WriteOp& op) const {
    auto cur = json::parse(base.body);
    if (!cur || !cur->IsObject()) return;
    opts.merge->merge(op.type, extras.feed, *cur, d);
    if (!op.if_match) op.if_match = base.version;
  }

  // A conditional create in a transaction that matched labelled content the
  // caller may not see: nothing was created, and the answer must not name
  // (location, etag) what exists.
  static constexpr std::string_view kHiddenMatchEntry =
      "{\"response\":{\"status\":\"200 OK\",\"outcome\":{\"resourceType\":\"OperationOutcome\",\"issue\":[{"
      "\"severity\":\"information\",\"code\":\"informational\",\"diagnostics\":\"a matching resource exists; "
      "nothing was created\"}]}}}";

  // The current version of type/id is hidden from `who` (hidden_from above). Reader thread.
  bool hidden_by_id(const security::Principal& who, const std::string& type, const std::string& id) {
    auto cur = store.read(type, id);
    return cur && hidden_from(who, *cur, "read");
  }

  static store::SearchQuery match_query(const std::string& type, const std::vector<store::Match>& ms, int count) {
    store::SearchQuery q;
    q.type = type;
    for (const auto& m : ms) q.params.push_back({m.param, {{m.system, m.value}}});
    q.count = count;
    q.want_total = false;
    return q;
  }

  // Batch: entries succeed or fail on their own; the answer lists each outcome.
  void run_batch(std::shared_ptr<Request> req, Respond respond, std::vector<Prepared> entries) {
    const char* route = "fhir_batch";
    struct State {
      std::mutex mu;
      std::vector<Prepared> entries;
      std::vector<std::string> answers;
      size_t pending = 0;
      Respond respond;
    };
    auto st = std::make_shared<State>();
    st->entries = std::move(entries);
    st->answers.resize(st->entries.size());
    st->pending = st->entries.size();
    st->respond = std::move(respond);
    auto done_one = [this, st, req, route](size_t i, std::string answer) {
      bool last = false;
      {
        std::lock_guard lock(st->mu);
        st->answers[i] = std::move(answer);
        last = --st->pending == 0;
      }
      if (!last) return;
      std::string out = "{\"resourceType\":\"Bundle\",\"type\":\"batch-response\"";
      if (!st->answers.empty()) {
        out += ",\"entry\":[";
        for (size_t k = 0; k < st->answers.size(); ++k) {
          if (k) out.push_back(',');
          out += st->answers[k];
        }
        out += "]";
      }
      out += "}";
      audit_read(*req, "batch", "Bundle", 200);
      Response resp;
      resp.route = route;
      resp.body = std::move(out);
      st->respond(std::move(resp));
    };
    if (st->entries.empty()) {
      Response resp;
      resp.route = route;
      resp.body = "{\"resourceType\":\"Bundle\",\"type\":\"batch-response\"}";
      st->respond(std::move(resp));
      return;
    }
    std::string b = base(*req);
    for (size_t i = 0; i < st->entries.size(); ++i) {
      Prepared& p = st->entries[i];
      if (p.error) {
        done_one(i, response_entry(b, p, nullptr, std::nullopt, p.error, p.issues));
        continue;
      }
      if (p.method == "GET") {
        auto r = store.run_read([this, st, i, b, done_one, req]() {
          const Prepared& p = st->entries[i];
          auto res = store.read(p.type, p.id);
          if (res && hidden_from(req->principal, *res, "read"))
            res = make_error(Errc::not_found, p.type + " not found");
          std::optional<store::StoredResource> rb;
          std::optional<Error> err;
          if (res) rb = std::move(*res);
          else err = res.error();
          done_one(i, response_entry(b, p, nullptr, rb, err, {}));
        });
        if (!r) done_one(i, response_entry(b, p, nullptr, std::nullopt, r.error(), {}));
        continue;
      }
      finalise_op(p);
      auto commit_entry = [this, st, i, b, done_one, req]() {
        Prepared& p = st->entries[i];
        store::UnitOfWork unit;
        std::string entity = p.type + "/" + p.op->id;
        unit.audit.push_back(audit_row(*req, action_name(p.op->kind), entity, 200,
                                       p.type == "Patient" ? entity : std::string()));
        unit.ops.push_back(*p.op);
        auto r = store.commit(std::move(unit), [this, st, i, b, done_one, req](Result<store::CommitOutcome> res) {
          const Prepared& p = st->entries[i];
          if (!res) {
            done_one(i, response_entry(b, p, nullptr, std::nullopt, res.error(), {}));
            return;
          }
          store::OpOutcome o = res->ops.at(0);
          if (!o.noop) return done_one(i, response_entry(b, p, &o, std::nullopt, std::nullopt, {}));
          // The match may be hidden from the caller: look on a reader, not the writer.
          auto rr = store.run_read([this, st, i, b, done_one, req, o]() {
            if (hidden_by_id(req->principal, st->entries[i].type, o.id)) return done_one(i, std::string(kHiddenMatchEntry));
            done_one(i, response_entry(b, st->entries[i], &o, std::nullopt, std::nullopt, {}));
          });
          if (!rr) done_one(i, response_entry(b, p, nullptr, std::nullopt, rr.error(), {}));
        });
        if (!r) done_one(i, response_entry(b, p, nullptr, std::nullopt, r.error(), {}));
      };
      if (p.own.empty() || p.op->kind != store::OpKind::update) {
        commit_entry();
        continue;
      }
      // What the entry replaces is checked on a reader first (check_replaced).
      auto r = store.run_read([this, st, i, b, done_one, req, commit_entry]() {
        Prepared& p = st->entries[i];
        if (auto e = check_replaced(*req, p.own, *p.op, entry_path(i) + ".resource")) {
          return done_one(i, response_entry(b, p, nullptr, std::nullopt, e, {}));
        }
        commit_entry();
      });
      if (!r) done_one(i, response_entry(b, p, nullptr, std::nullopt, r.error(), {}));
    }
  }
};

RestApi::RestApi(store::Store& store, const write::Validator& validator, const security::Policy& policy,
                 metrics::Registry& metrics, RestOptions opts)
    : impl_(std::make_unique<Impl>(store, validator, policy, metrics, std::move(opts))) {
  impl_->capability = capability_statement_json(validator, policy);
}

RestApi::~RestApi() = default;

void RestApi::handle(net::Request req, net::Respond respond) { impl_->handle(std::move(req), std::move(respond)); }

const std::string& RestApi::capability_statement() const { return impl_->capability; }

void RestApi::submit_transaction(net::Request req, TransactionExtras extras, net::Respond respond) {
  impl_->bundle(std::move(req), std::move(respond), std::make_shared<TransactionExtras>(std::move(extras)));
}

}  // namespace gw::fhir
