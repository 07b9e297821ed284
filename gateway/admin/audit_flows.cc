#include "gateway/admin/audit_flows.h"

#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <tuple>

#include "gateway/audit/audit_rows.h"
#include "gateway/audit/person.h"
#include "gateway/common/clock.h"
#include "gateway/common/issues.h"
#include "gateway/common/json.h"
#include "gateway/model/search_params.h"
#include "gateway/security/visibility.h"

namespace gw::admin {

namespace {

constexpr const char* kRoute = "audit_flows";
constexpr std::string_view kGateway = "cpis-gateway";
constexpr int64_t kMaxSpanMs = 366LL * 24 * 3600 * 1000;

net::Response answer(int status, std::string body, std::string content_type) {
  net::Response r;
  r.status = status;
  r.content_type = std::move(content_type);
  r.body = std::move(body);
  r.route = kRoute;
  // Counts by organisation, no patient data; still not for shared caches.
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

net::Response refused(const Error& e) {
  return answer(http_status_for(e.code), operation_outcome(e), "application/fhir+json; charset=utf-8");
}

bool is_read(std::string_view a) {
  for (std::string_view r : {"read", "vread", "history", "search", "everything", "audit-search", "audit-read", "report"})
    if (a == r) return true;
  return false;
}

// YYYY-MM-DD (midnight UTC) or an instant.
std::optional<int64_t> instant_of(std::string_view v) {
  if (v.size() == 10) {
    std::string t = std::string(v) + "T00:00:00Z";
    return clock::parse_iso_ms(t);
  }
  return clock::parse_iso_ms(v);
}

void put(json::Writer& w, const char* k, std::string_view v) {
  w.Key(k);
  w.String(v.data(), static_cast<json::SizeType>(v.size()));
}

// The smallest latency with at least q of the deliveries at or below it.
int64_t percentile(std::vector<std::pair<int64_t, int64_t>> latencies, int64_t total, double q) {
  if (latencies.empty() || total <= 0) return -1;
  std::sort(latencies.begin(), latencies.end());
  int64_t need = std::max<int64_t>(1, static_cast<int64_t>(q * static_cast<double>(total) + 0.999999));
  int64_t seen = 0;
  for (const auto& [ms, n] : latencies) {
    seen += n;
    if (seen >= need) return ms;
  }
  return latencies.back().first;
}

}  // namespace

// Always quoted; a leading = + - @ is defused so a spreadsheet
// does not run it as a formula.
std::string csv_field(std::string_view v) {
  std::string out = "\"";
  if (!v.empty() && (v[0] == '=' || v[0] == '+' || v[0] == '-' || v[0] == '@')) out.push_back('\'');
  for (char c : v) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

Safeguarding safeguarding_of(const std::vector<store::AuditGroup>& groups) {
  Safeguarding out;
  std::map<std::string, SiteQueries> sites;
  std::map<std::string, std::pair<TopicDeliveries, std::vector<std::pair<int64_t, int64_t>>>> topics;
  for (std::string_view t : kSafeguardingTopics) topics[std::string(t)].first.topic = std::string(t);
  for (const auto& g : groups) {
    // A CP-IS query (CareTeam or Flag by NHS number) made for unscheduled care.
    if (g.action == "search" && g.purpose == audit::kPurposeEmergency) {
      auto& s = sites[g.actor_ods];
      s.site = g.actor_ods;
      s.queries += g.events;
      s.found_plan += g.with_items;
    }
    if (g.action != "notify") continue;
    auto it = topics.find(g.topic);
    if (it == topics.end()) continue;
    auto& [t, lat] = it->second;
    if (g.outcome == "success") {
      t.delivered += g.events;
      lat.emplace_back(g.latency_ms, g.events);
    } else if (g.outcome == "retry") {
      t.retries += g.events;
    } else if (g.outcome == "dead") {
      t.dead += g.events;
    }
  }
  for (auto& [k, s] : sites) out.cpis_queries.push_back(std::move(s));
  std::stable_sort(out.cpis_queries.begin(), out.cpis_queries.end(),
                   [](const SiteQueries& a, const SiteQueries& b) { return a.queries > b.queries; });
  for (std::string_view name : kSafeguardingTopics) {
    auto& [t, lat] = topics[std::string(name)];
    t.latency_median_ms = percentile(lat, t.delivered, 0.5);
    t.latency_p99_ms = percentile(lat, t.delivered, 0.99);
    out.disclosures.push_back(std::move(t));
  }
  return out;
}

std::vector<Flow> flows_of(const std::vector<store::AuditGroup>& groups) {
  using Key = std::tuple<std::string, std::string, std::string, std::string, std::string, std::string, std::string>;
  struct Acc {
    Flow f;
    std::string action;
    std::vector<std::pair<int64_t, int64_t>> latencies;  // (ms, delivered count)
  };
  std::map<Key, Acc> acc;
  for (const auto& g : groups) {
    std::string from_org, from_system, to_org;
    if (g.action == "disclose" || g.action == "notify") {
      from_org = g.src_ods.empty() ? std::string(kGateway) : g.src_ods;
      from_system = g.src_system;
      to_org = g.actor_ods;
    } else if (is_read(g.action)) {
      from_org = std::string(kGateway);
      to_org = g.actor_ods;
    } else {
      from_org = g.actor_ods;
      from_system = g.actor_system;
      to_org = std::string(kGateway);
    }
    Key k{from_org, from_system, to_org, g.channel, g.topic, g.purpose, g.action};
    auto& a = acc[k];
    if (a.f.from_org.empty()) {
      a.f.from_org = from_org;
      a.f.from_system = from_system;
      a.f.to_org = to_org;
      a.f.channel = g.channel;
      a.f.topic = g.topic;
      a.f.purpose = g.purpose;
      a.action = g.action;
    }
    a.f.events += g.events;
    if (g.outcome == "failure") a.f.failures += g.events;
    if (g.outcome == "retry") a.f.retries += g.events;
    if (g.outcome == "dead") a.f.dead += g.events;
    if (g.action == "notify" && g.outcome == "success") {
      a.f.delivered += g.events;
      a.latencies.emplace_back(g.latency_ms, g.events);
    }
  }
  std::vector<Flow> out;
  for (auto& [k, a] : acc) {
    a.f.latency_median_ms = percentile(a.latencies, a.f.delivered, 0.5);
    a.f.latency_p99_ms = percentile(a.latencies, a.f.delivered, 0.99);
    // The action is part of the flow's identity (a read and a write of the
    // same type are two flows) and shown as the topic's qualifier.
    a.f.topic = a.f.topic.empty() ? a.action : a.f.topic + " " + a.action;
    out.push_back(std::move(a.f));
  }
  std::stable_sort(out.begin(), out.end(), [](const Flow& x, const Flow& y) { return x.events > y.events; });
  return out;
}

Result<std::vector<BreakGlassCount>> break_glass_of(store::Store& store, const std::string& from, const std::string& to) {
  std::map<std::pair<std::string, std::string>, BreakGlassCount> by;
  store::AuditQuery q;
  q.ts_ge = from;
  q.ts_lt = to;
  q.actions = {"break-glass"};
  q.count = 1000;
  q.want_total = false;
  // Break-glass is rare; a period with more than this many is bounded, not scanned without end.
  for (int page = 0; page < 100; ++page) {
    q.offset = int64_t{page} * q.count;
    auto rows = store.search_audit(q);
    if (!rows) return rows.error();
    for (const auto& r : rows->items) {
      auto p = audit::person_of_record(r.person);
      auto& c = by[{r.actor_ods, p ? p->issuer + "|" + p->id : r.person}];
      c.organisation = r.actor_ods;
      c.person = p ? p->id : r.person;
      c.name = p ? p->name : std::string();
      c.issuer = p ? p->issuer : std::string();
      ++c.accesses;
    }
    if (rows->items.size() < static_cast<size_t>(q.count)) break;
  }
  std::vector<BreakGlassCount> out;
  for (auto& [k, v] : by) out.push_back(std::move(v));
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.accesses > b.accesses; });
  return out;
}

std::string break_glass_csv(const std::vector<BreakGlassCount>& counts) {
  std::string out = "organisation,person,name,issuer,accesses\r\n";
  for (const auto& g : counts)
    out += csv_field(g.organisation) + "," + csv_field(g.person) + "," + csv_field(g.name) + "," +
           csv_field(g.issuer) + "," + std::to_string(g.accesses) + "\r\n";
  return out;
}

Result<std::pair<std::string, std::string>> flow_period(std::string_view query, bool& csv, bool* by_day,
                                                        std::string* table) {
  std::optional<int64_t> from, to;
  csv = false;
  if (by_day) *by_day = false;
  if (table) *table = std::string(kFlowsTable);
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view pair = query.substr(pos, amp - pos);
    pos = amp + 1;
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    std::string name(pair.substr(0, eq));
    auto value = model::percent_decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1), true);
    if (!value) return make_error(Errc::invalid_input, name + ": " + value.error().message, name);
    if (name == "from" || name == "to") {
      auto t = instant_of(*value);
      if (!t)
        return make_error(Errc::invalid_input,
                          name + ": '" + *value + "' is not a date (YYYY-MM-DD) or an instant (YYYY-MM-DDThh:mm:ssZ)",
                          name);
      (name == "from" ? from : to) = *t;
    } else if (name == "format") {
      if (*value == "csv") csv = true;
      else if (*value != "json") return make_error(Errc::invalid_input, "format: csv or json", name);
    } else if (name == "by" && by_day) {
      if (*value != "day") return make_error(Errc::invalid_input, "by: day", name);
      *by_day = true;
    } else if (name == "table" && table) {
      if (*value != kFlowsTable && *value != kBreakGlassTable)
        return make_error(Errc::invalid_input, "table: flows or break-glass", name);
      *table = *value;
    } else {
      return make_error(Errc::invalid_input,
                        "'" + name + "' is not a parameter of /audit/flows (from, to, format, by" +
                            std::string(table ? ", table" : "") + ")",
                        name);
    }
  }
  if (!from) return make_error(Errc::invalid_input, "from: required (YYYY-MM-DD)", "from");
  if (!to) return make_error(Errc::invalid_input, "to: required (YYYY-MM-DD)", "to");
  if (*to <= *from) return make_error(Errc::invalid_input, "to: must be after from (the period is [from, to))", "to");
  if (*to - *from > kMaxSpanMs) return make_error(Errc::invalid_input, "to: the period is longer than 366 days", "to");
  return std::make_pair(clock::iso_ms(*from), clock::iso_ms(*to));
}

void AuditFlows::handle(net::Request req, net::Respond respond) {
  if (!policy_.allows_operation(req.principal, security::kTrailOperation)) {
    (void)writes_.record({audit::row(req.principal, "report", "/audit/flows", 403, req.audit_id())});
    return respond(
        refused(make_error(Errc::forbidden, "role '" + req.principal.role + "' may not read the data-flow reports")));
  }
  if (req.method != "GET") return respond(refused(make_error(Errc::method_not_allowed, "use GET")));
  if (req.path != "/audit/flows") return respond(refused(make_error(Errc::not_found, "no such report")));
  bool csv = false, by_day = false;
  std::string table;
  auto period = flow_period(req.query, csv, &by_day, &table);
  if (!period) return respond(refused(period.error()));
  if (csv && by_day) return respond(refused(make_error(Errc::invalid_input, "by: not with format=csv", "by")));
  // The JSON holds every table; the CSV form one table per file.
  if (!csv && table != kFlowsTable)
    return respond(refused(make_error(Errc::invalid_input, "table: only with format=csv (the JSON holds every table)",
                                      "table")));
  auto shared = std::make_shared<net::Respond>(std::move(respond));
  auto r = store_.run_read([this, shared, req = std::move(req), p = std::move(*period), csv, by_day, table] {
    if (csv && table == kBreakGlassTable) {
      auto glass = break_glass_of(store_, p.first, p.second);
      if (!glass) return (*shared)(refused(glass.error()));
      if (auto a = writes_.record({audit::row(req.principal, "report", "/audit/flows?table=break-glass", 200,
                                              req.audit_id())});
          !a)
        return (*shared)(refused(a.error()));
      auto resp = answer(200, break_glass_csv(*glass), "text/csv; charset=utf-8");
      resp.headers.emplace_back("Content-Disposition", "attachment; filename=\"break-glass.csv\"");
      return (*shared)(std::move(resp));
    }
    store::AuditSummaryQuery q;
    q.ts_from = p.first;
    q.ts_to = p.second;
    q.by_day = by_day;
    auto groups = store_.summarise_audit(q);
    if (!groups) return (*shared)(refused(groups.error()));
    // The report is itself an audited read of the trail.
    if (auto a = writes_.record({audit::row(req.principal, "report", "/audit/flows", 200, req.audit_id())});
        !a)
      return (*shared)(refused(a.error()));
    auto flows = flows_of(*groups);
    if (csv) {
      std::string out =
          "from_org,from_system,to_org,channel,topic,purpose,events,failures,retries,dead,delivered,"
          "latency_median_ms,latency_p99_ms\r\n";
      for (const auto& f : flows) {
        for (std::string_view v : {std::string_view(f.from_org), std::string_view(f.from_system),
                                   std::string_view(f.to_org), std::string_view(f.channel), std::string_view(f.topic),
                                   std::string_view(f.purpose)})
          out += csv_field(v) + ",";
        out += std::to_string(f.events) + "," + std::to_string(f.failures) + "," + std::to_string(f.retries) + "," +
               std::to_string(f.dead) + "," + std::to_string(f.delivered) + "," +
               (f.latency_median_ms < 0 ? "" : std::to_string(f.latency_median_ms)) + "," +
               (f.latency_p99_ms < 0 ? "" : std::to_string(f.latency_p99_ms)) + "\r\n";
      }
      auto resp = answer(200, std::move(out), "text/csv; charset=utf-8");
      resp.headers.emplace_back("Content-Disposition", "attachment; filename=\"flows.csv\"");
      return (*shared)(std::move(resp));
    }
    json::Buffer buf;
    json::Writer w(buf);
    w.StartObject();
    put(w, "from", p.first);
    put(w, "to", p.second);
    w.Key("flows");
    w.StartArray();
    for (const auto& f : flows) {
      w.StartObject();
      put(w, "from_org", f.from_org);
      put(w, "from_system", f.from_system);
      put(w, "to_org", f.to_org);
      put(w, "channel", f.channel);
      put(w, "topic", f.topic);
      put(w, "purpose", f.purpose);
      for (auto [k, v] : {std::pair<const char*, int64_t>{"events", f.events}, {"failures", f.failures},
                          {"retries", f.retries}, {"dead", f.dead}, {"delivered", f.delivered}}) {
        w.Key(k);
        w.Int64(v);
      }
      if (f.latency_median_ms >= 0) {
        w.Key("latency_median_ms");
        w.Int64(f.latency_median_ms);
        w.Key("latency_p99_ms");
        w.Int64(f.latency_p99_ms);
      }
      w.EndObject();
    }
    w.EndArray();
    if (by_day) {
      // Events per day (UTC) over the period, for the dashboard's chart: every
      // day of the period, 0 when nothing happened, so the series has no gaps.
      std::map<std::string, std::array<int64_t, 4>> days;  // events, failures, dead, delivered
      for (const auto& g : *groups) {
        auto& d = days[g.day];
        d[0] += g.events;
        if (g.outcome == "failure") d[1] += g.events;
        if (g.outcome == "dead") d[2] += g.events;
        if (g.action == "notify" && g.outcome == "success") d[3] += g.events;
      }
      w.Key("days");
      w.StartArray();
      auto from_ms = clock::parse_iso_ms(p.first), to_ms = clock::parse_iso_ms(p.second);
      for (int64_t t = from_ms.value_or(0) - from_ms.value_or(0) % 86400000; from_ms && to_ms && t < *to_ms;
           t += 86400000) {
        std::string day = clock::iso_ms(t).substr(0, 10);
        auto it = days.find(day);
        std::array<int64_t, 4> v = it == days.end() ? std::array<int64_t, 4>{0, 0, 0, 0} : it->second;
        w.StartObject();
        put(w, "day", day);
        for (auto [k, n] : {std::pair<const char*, int64_t>{"events", v[0]}, {"failures", v[1]}, {"dead", v[2]},
                            {"delivered", v[3]}}) {
          w.Key(k);
          w.Int64(n);
        }
        w.EndObject();
      }
      w.EndArray();
    }
    auto sg = safeguarding_of(*groups);
    w.Key("safeguarding");
    w.StartObject();
    w.Key("cpis_queries_by_unscheduled_care_site");
    w.StartArray();
    for (const auto& s : sg.cpis_queries) {
      w.StartObject();
      put(w, "site", s.site);
      w.Key("queries");
      w.Int64(s.queries);
      w.Key("found_plan");
      w.Int64(s.found_plan);
      w.EndObject();
    }
    w.EndArray();
    w.Key("disclosures_by_topic");
    w.StartArray();
    for (const auto& t : sg.disclosures) {
      w.StartObject();
      put(w, "topic", t.topic);
      w.Key("delivered");
      w.Int64(t.delivered);
      w.Key("retries");
      w.Int64(t.retries);
      w.Key("dead");
      w.Int64(t.dead);
      if (t.latency_median_ms >= 0) {
        w.Key("latency_median_ms");
        w.Int64(t.latency_median_ms);
        w.Key("latency_p99_ms");
        w.Int64(t.latency_p99_ms);
      }
      w.EndObject();
    }
    w.EndArray();
    auto glass = break_glass_of(store_, p.first, p.second);
    if (!glass) return (*shared)(refused(glass.error()));
    w.Key("break_glass_by_person");
    w.StartArray();
    for (const auto& g : *glass) {
      w.StartObject();
      put(w, "organisation", g.organisation);
      put(w, "person", g.person);
      put(w, "name", g.name);
      put(w, "issuer", g.issuer);
      w.Key("accesses");
      w.Int64(g.accesses);
      w.EndObject();
    }
    w.EndArray();
    // Figures the trail cannot give yet: said, not shown as 0.
    w.Key("not_counted");
    w.StartArray();
    for (auto [figure, why] : {std::pair<const char*, const char*>{
                                   "pregnancy_notifications_incomplete",
                                   "the gateway does not yet record whether a pregnancy notification was complete"},
                               {"lac_health_assessment_timeliness",
                                "the gateway does not yet record when a due LAC health assessment took place"}}) {
      w.StartObject();
      put(w, "figure", figure);
      put(w, "why", why);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    w.EndObject();
    (*shared)(answer(200, std::string(buf.GetString(), buf.GetSize()), "application/json; charset=utf-8"));
  });
  if (!r) (*shared)(refused(r.error()));
}

}  // namespace gw::admin
