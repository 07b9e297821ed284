#include "gateway/audit/trail_search.h"

#include <algorithm>
#include <charconv>
#include <optional>
#include <vector>

#include "gateway/audit/balp.h"
#include "gateway/model/bundle.h"
#include "gateway/model/search_params.h"

namespace gw::audit {

namespace {

Error invalid(const std::string& param, std::string message) {
  return make_error(Errc::invalid_input, std::move(message), param);
}

// "a,b,c" (a literal comma escaped as "\,") into its values, decoded.
Result<std::vector<std::string>> values_of(const std::string& param, std::string_view raw) {
  std::vector<std::string> out;
  std::string cur;
  auto flush = [&]() -> Result<void> {
    auto d = model::percent_decode(cur, true);
    if (!d) return invalid(param, param + ": " + d.error().message);
    if (d->empty()) return invalid(param, param + ": a value is required");
    out.push_back(std::move(*d));
    cur.clear();
    return {};
  };
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '\\' && i + 1 < raw.size() && raw[i + 1] == ',') {
      cur.append("%2C");
      ++i;
    } else if (raw[i] == ',') {
      if (auto r = flush(); !r) return r.error();
    } else {
      cur.push_back(raw[i]);
    }
  }
  if (auto r = flush(); !r) return r.error();
  return out;
}

// A token's code: what follows "system|" when a system is given.
std::string code_of(const std::string& v) {
  auto bar = v.find('|');
  return bar == std::string::npos ? v : v.substr(bar + 1);
}

Result<int64_t> non_negative(const std::string& param, std::string_view raw) {
  int64_t n = 0;
  auto [p, ec] = std::from_chars(raw.data(), raw.data() + raw.size(), n);
  if (ec != std::errc() || p != raw.data() + raw.size() || n < 0)
    return invalid(param, param + ": '" + std::string(raw) + "' is not a non-negative integer");
  return n;
}

void replace_param(std::string& query, std::string_view name, const std::string& value) {
  std::string out;
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    if (amp == std::string::npos) amp = query.size();
    std::string_view pair(query.data() + pos, amp - pos);
    auto eq = pair.find('=');
    std::string_view key = pair.substr(0, eq);
    if (!pair.empty() && key != name) {
      if (!out.empty()) out.push_back('&');
      out.append(pair);
    }
    pos = amp + 1;
  }
  if (!out.empty()) out.push_back('&');
  out.append(std::string(name) + "=" + value);
  query = std::move(out);
}

}  // namespace

Result<store::AuditQuery> parse_trail_query(std::string_view query, int max_count) {
  store::AuditQuery q;
  q.count = std::min(20, max_count);
  // type and subtype AND together: each collected apart, intersected at the end.
  std::optional<std::vector<std::string>> of_type, of_subtype;
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view pair = query.substr(pos, amp - pos);
    pos = amp + 1;
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    std::string name(pair.substr(0, eq));
    std::string_view raw = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    if (name == "_count") {
      auto n = non_negative(name, raw);
      if (!n) return n.error();
      q.count = static_cast<int>(std::min<int64_t>(*n, max_count));
      continue;
    }
    if (name == "_offset") {
      auto n = non_negative(name, raw);
      if (!n) return n.error();
      q.offset = *n;
      continue;
    }
    if (name == "_format") continue;
    if (name == "date") {
      // The REST API's date grammar and prefixes, read by its own parser.
      auto sr = model::parse_search("Patient", "_lastUpdated=" + std::string(raw), true);
      if (!sr) {
        std::string msg = sr.error().message;
        if (msg.rfind("_lastUpdated", 0) == 0) msg = "date" + msg.substr(12);
        return invalid("date", msg);
      }
      for (const auto& b : sr->last_updated) {
        if (b.prefix == "ge") q.ts_ge = q.ts_ge ? std::max(*q.ts_ge, b.value) : b.value;
        else if (b.prefix == "lt") q.ts_lt = q.ts_lt ? std::min(*q.ts_lt, b.value) : b.value;
      }
      continue;
    }
    auto vals = values_of(name, raw);
    if (!vals) return vals.error();
    if (name == "agent") {
      for (auto& v : *vals) {
        std::string c = code_of(v);
        if (c.rfind("Organization/", 0) == 0) c = c.substr(13);
        q.agents.push_back(std::move(c));
      }
    } else if (name == "agent-role") {
      for (auto& v : *vals) q.roles.push_back(code_of(v));
    } else if (name == "entity") {
      for (auto& v : *vals) q.entities.push_back(std::move(v));
    } else if (name == "patient") {
      for (auto& v : *vals) q.patients.push_back(v.rfind("Patient/", 0) == 0 ? v : "Patient/" + v);
    } else if (name == "type") {
      for (auto& v : *vals) {
        auto actions = actions_of_type(code_of(v));
        if (actions.empty()) return invalid(name, "type: '" + code_of(v) + "' is not an event type of this trail");
        if (!of_type) of_type.emplace();
        of_type->insert(of_type->end(), actions.begin(), actions.end());
      }
    } else if (name == "subtype") {
      for (auto& v : *vals) {
        auto a = action_of_subtype(code_of(v));
        if (!a) return invalid(name, "subtype: '" + code_of(v) + "' is not an event subtype of this trail");
        if (!of_subtype) of_subtype.emplace();
        of_subtype->push_back(*a);
      }
    } else if (name == "outcome") {
      for (auto& v : *vals) {
        auto o = outcome_of_code(code_of(v));
        if (!o) return invalid(name, "outcome: '" + code_of(v) + "' is not 0, 4, 8 or 12");
        q.outcomes.push_back(*o);
      }
    } else if (name == "source") {
      for (auto& v : *vals) q.channels.push_back(code_of(v));
    } else if (name == "purpose") {
      for (auto& v : *vals) q.purposes.push_back(code_of(v));
    } else {
      return invalid(name, "'" + name + "' is not a search parameter of the audit trail (date, agent, agent-role, "
                                          "entity, patient, type, subtype, outcome, source, purpose, _count, _offset)");
    }
  }
  if (of_type && of_subtype) {
    for (const auto& a : *of_subtype)
      if (std::find(of_type->begin(), of_type->end(), a) != of_type->end()) q.actions.push_back(a);
    // Nothing can match both: an action no row has.
    if (q.actions.empty()) q.actions.push_back("");
  } else if (of_type) {
    q.actions = std::move(*of_type);
  } else if (of_subtype) {
    q.actions = std::move(*of_subtype);
  }
  if (q.ts_ge && q.ts_lt && *q.ts_ge >= *q.ts_lt)
    return invalid("date", "date: the range is empty (its start is not before its end)");
  return q;
}

std::string trail_bundle(const std::string& base, std::string_view query, const store::AuditPage& page, int count,
                         int64_t offset) {
  std::string self(query);
  std::string out = "{\"resourceType\":\"Bundle\",\"type\":\"searchset\"";
  if (page.total) out += ",\"total\":" + std::to_string(*page.total);
  out += ",\"link\":[{\"relation\":\"self\",\"url\":" +
         model::quoted(base + "/AuditEvent" + (self.empty() ? "" : "?" + self)) + "}";
  bool more = page.total ? offset + static_cast<int64_t>(page.items.size()) < *page.total
                         : count > 0 && static_cast<int>(page.items.size()) == count;
  if (more && count > 0) {
    std::string next = self;
    replace_param(next, "_offset", std::to_string(offset + count));
    replace_param(next, "_count", std::to_string(count));
    out += ",{\"relation\":\"next\",\"url\":" + model::quoted(base + "/AuditEvent?" + next) + "}";
  }
  out += "],\"entry\":[";
  bool first = true;
  for (const auto& r : page.items) {
    if (!first) out.push_back(',');
    first = false;
    out += "{\"fullUrl\":" + model::quoted(base + "/AuditEvent/" + trail_id(r.seq)) + ",\"resource\":";
    out += balp_event(r);
    out += ",\"search\":{\"mode\":\"match\"}}";
  }
  out += "]}";
  return out;
}

}  // namespace gw::audit
