#include "gateway/admin/coverage_report.h"

#include <charconv>

#include "gateway/admin/audit_flows.h"
#include "gateway/audit/audit_rows.h"
#include "gateway/common/clock.h"
#include "gateway/common/issues.h"
#include "gateway/common/json.h"
#include "gateway/model/search_params.h"

namespace gw::admin {

namespace {

constexpr const char* kRoute = "reports_coverage";
constexpr std::string_view kPath = "/reports/coverage";

net::Response answer(int status, std::string body, std::string content_type) {
  net::Response r;
  r.status = status;
  r.content_type = std::move(content_type);
  r.body = std::move(body);
  r.route = kRoute;
  // Patient references: never for shared caches.
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

net::Response refused(const Error& e) {
  return answer(http_status_for(e.code), operation_outcome(e), "application/fhir+json; charset=utf-8");
}

void put(json::Writer& w, const char* k, std::string_view v) {
  w.Key(k);
  w.String(v.data(), static_cast<json::SizeType>(v.size()));
}

std::optional<int64_t> whole_number(std::string_view v) {
  int64_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || p != v.data() + v.size() || v.empty()) return std::nullopt;
  return n;
}

std::vector<std::string> split(const std::string& joined) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= joined.size() && !joined.empty()) {
    size_t semi = joined.find("; ", pos);
    out.push_back(joined.substr(pos, semi == std::string::npos ? std::string::npos : semi - pos));
    if (semi == std::string::npos) break;
    pos = semi + 2;
  }
  return out;
}

}  // namespace

Result<CoverageParams> coverage_params(std::string_view query, std::string_view accept) {
  CoverageParams p;
  p.csv = accept.find("text/csv") != std::string_view::npos;
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
    if (name == "format" || name == "_format") {
      if (*value == "csv" || *value == "text/csv") p.csv = true;
      else if (*value == "json" || *value == "application/json") p.csv = false;
      else return make_error(Errc::invalid_input, name + ": csv or json", name);
    } else if (name == "gap") {
      if (std::find(std::begin(events::kGapKinds), std::end(events::kGapKinds), *value) == std::end(events::kGapKinds)) {
        std::string kinds;
        for (auto k : events::kGapKinds) kinds += (kinds.empty() ? "" : ", ") + std::string(k);
        return make_error(Errc::invalid_input, "gap: '" + *value + "' is not a gap kind (" + kinds + ")", name);
      }
      p.gap = *value;
    } else if (name == "_count") {
      auto n = whole_number(*value);
      if (!n || *n < 1 || *n > kCoverageMaxCount)
        return make_error(Errc::invalid_input,
                          "_count: a whole number from 1 to " + std::to_string(kCoverageMaxCount) + " (lines per answer)",
                          name);
      p.count = *n;
    } else if (name == "_offset") {
      auto n = whole_number(*value);
      if (!n || *n < 0) return make_error(Errc::invalid_input, "_offset: a whole number, 0 or more", name);
      p.offset = *n;
    } else {
      return make_error(Errc::invalid_input,
                        "'" + name + "' is not a parameter of /reports/coverage (format, gap, _count, _offset)", name);
    }
  }
  return p;
}

void CoverageReportApi::handle(net::Request req, net::Respond respond) {
  if (!policy_.allows_operation(req.principal, kCoverageOperation)) {
    (void)writes_.record({audit::row(req.principal, "report", std::string(kPath), 403, req.audit_id())});
    return respond(
        refused(make_error(Errc::forbidden, "role '" + req.principal.role + "' may not read the coverage report")));
  }
  if (req.method != "GET") return respond(refused(make_error(Errc::method_not_allowed, "use GET")));
  if (req.path != kPath) return respond(refused(make_error(Errc::not_found, "no such report")));
  auto params = coverage_params(req.query, req.header("accept").value_or(""));
  if (!params) return respond(refused(params.error()));
  if (!flows_ || !flows_->coverage || !flows_->area)
    return respond(refused(make_error(Errc::unavailable, "the coverage rules (profiles/reports/coverage.json) are not loaded")));
  auto shared = std::make_shared<net::Respond>(std::move(respond));
  auto r = store_.run_read([this, shared, req = std::move(req), p = *params] {
    const events::CoverageRules& rules = *flows_->coverage;
    events::CoverageQuery q;
    q.view = policy_.label_view(req.principal);
    q.only_kind = p.gap;
    q.offset = p.offset;
    q.count = p.count;
    auto rep = events::find_coverage_gaps(store_, *flows_, rules, q);
    if (!rep) return (*shared)(refused(rep.error()));
    // The report is itself audited: who read which window of it. The lines
    // name people by reference only; the row says how many.
    auto detail = "coverage report: " + std::to_string(rep->lines.size()) + " lines listed (offset " +
                  std::to_string(p.offset) + (p.gap.empty() ? "" : ", gap " + p.gap) + ")";
    if (auto a = writes_.record(
            {audit::row(req.principal, "report", std::string(kPath), 200, req.audit_id(), "", std::move(detail))});
        !a)
      return (*shared)(refused(a.error()));
    const bool last_page = p.offset + p.count >= rep->total_lines;
    if (p.csv) {
      std::string out = "gap,patient,detail,feeds,last_heard\r\n";
      auto row = [&](std::string_view gap, std::string_view patient, std::string_view detail) {
        out += csv_field(gap) + "," + csv_field(patient) + "," + csv_field(detail) + "," +
               csv_field(events::feeds_of(rules, gap)) + "," + csv_field(events::last_heard_of(*rep, rules, gap)) +
               "\r\n";
      };
      for (const auto& l : rep->lines) row(l.kind, l.patient, l.detail);
      // Counted without a line: said once, on the last page.
      if (last_page)
        for (const auto& c : rep->counts)
          if (c.withheld > 0 && (p.gap.empty() || p.gap == c.kind))
            row(c.kind, "",
                std::to_string(c.withheld) +
                    " not listed: a record behind them carries a sensitivity label your role may not see");
      auto resp = answer(200, std::move(out), "text/csv; charset=utf-8");
      resp.headers.emplace_back("Content-Disposition", "attachment; filename=\"coverage.csv\"");
      resp.headers.emplace_back("X-Total-Count", std::to_string(rep->total_lines));
      return (*shared)(std::move(resp));
    }
    json::Buffer buf;
    json::Writer w(buf);
    w.StartObject();
    put(w, "today", rep->today);
    put(w, "generated", clock::iso_ms(clock::now_ms()));
    put(w, "identifiers", "Patient references only (docs/COVERAGE.md); never NHS numbers or clinical content");
    w.Key("gaps");
    w.StartArray();
    for (const auto& c : rep->counts) {
      w.StartObject();
      put(w, "gap", c.kind);
      put(w, "title", events::gap_title(c.kind));
      w.Key("listed");
      w.Int64(c.listed);
      w.Key("withheld");
      w.Int64(c.withheld);
      w.Key("feeds");
      w.StartArray();
      for (const auto& f : split(events::feeds_of(rules, c.kind))) w.String(f.c_str());
      w.EndArray();
      w.EndObject();
    }
    w.EndArray();
    w.Key("feeds");
    w.StartArray();
    for (const auto& f : rep->feeds) {
      w.StartObject();
      put(w, "feed", f.name);
      put(w, "display", f.display);
      // The newest of both, and each source apart: a kept legacy message
      // (inbound store), a committed FHIR REST write (the audit trail).
      for (auto [key, when] : {std::pair{"last_heard", &f.last_heard}, std::pair{"last_message", &f.last_message},
                               std::pair{"last_rest_write", &f.last_rest}}) {
        w.Key(key);
        if (when->empty()) w.Null();
        else w.String(when->c_str());
      }
      w.EndObject();
    }
    w.EndArray();
    w.Key("total");
    w.Int64(rep->total_lines);
    w.Key("offset");
    w.Int64(p.offset);
    w.Key("count");
    w.Int64(p.count);
    if (!last_page) {
      std::string next = std::string(kPath) + "?_offset=" + std::to_string(p.offset + p.count) +
                         "&_count=" + std::to_string(p.count) + (p.gap.empty() ? "" : "&gap=" + p.gap);
      put(w, "next", next);
    }
    w.Key("lines");
    w.StartArray();
    for (const auto& l : rep->lines) {
      w.StartObject();
      put(w, "gap", l.kind);
      put(w, "patient", l.patient);
      put(w, "detail", l.detail);
      put(w, "feeds", events::feeds_of(rules, l.kind));
      put(w, "last_heard", events::last_heard_of(*rep, rules, l.kind));
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    (*shared)(answer(200, std::string(buf.GetString(), buf.GetSize()), "application/json; charset=utf-8"));
  });
  if (!r) (*shared)(refused(r.error()));
}

}  // namespace gw::admin
