#include "gateway/security/visibility.h"

#include <algorithm>

#include "gateway/model/cpis_plan.h"
#include "gateway/model/resource_text.h"

namespace gw::security {

bool hidden_by_labels(std::string_view body, const std::vector<std::string>& hidden) {
  if (hidden.empty() || body.find("\"security\"") == std::string_view::npos) return false;
  auto doc = json::parse(body);
  if (!doc) return true;  // unreadable: fail closed
  for (const auto& label : model::security_labels(*doc))
    for (const auto& h : hidden)
      if (label == h) return true;
  return false;
}

bool keeps_hidden_labels(std::string_view stored_body, const json::Value& incoming,
                         const std::vector<std::string>& hidden) {
  auto stored = json::parse(stored_body);
  if (!stored) return false;
  auto now = model::security_labels(incoming);
  for (const auto& label : model::security_labels(*stored))
    if (std::find(hidden.begin(), hidden.end(), label) != hidden.end() &&
        std::find(now.begin(), now.end(), label) == now.end())
      return false;
  return true;
}

namespace {
bool any_of_in(const std::vector<std::string>& codes, const std::vector<std::string>& set) {
  for (const auto& c : codes)
    if (std::find(set.begin(), set.end(), c) != set.end()) return true;
  return false;
}
}  // namespace

bool existence_withheld(const LabelView& view, const std::vector<std::string>& codes) {
  if (any_of_in(codes, view.unspoken)) return true;
  bool restricted = std::find(codes.begin(), codes.end(), "R") != codes.end();
  return restricted && view.restricted_alone_unspoken && !any_of_in(codes, view.sensitivity_labels);
}

bool content_hidden(const LabelView& view, const std::vector<std::string>& codes) {
  return any_of_in(codes, view.hidden);
}

namespace {

// A break-glass record (safeguarding/break_glass.h): tagged break-glass|opened.
bool is_break_glass_record(const json::Value& d) {
  const json::Value* meta = json::member(d, "meta");
  const json::Value* tags = meta && meta->IsObject() ? json::member(*meta, "tag") : nullptr;
  if (!tags || !tags->IsArray()) return false;
  for (const auto& t : tags->GetArray())
    if (t.IsObject() && json::get_string(t, "system").value_or("") == kBreakGlassTagSystem) return true;
  return false;
}

// An agent of the record is this organisation (by ODS code).
bool acted_for(const json::Value& d, const std::string& ods) {
  const json::Value* agents = json::member(d, "agent");
  if (ods.empty() || !agents || !agents->IsArray()) return false;
  for (const auto& a : agents->GetArray()) {
    const json::Value* who = a.IsObject() ? json::member(a, "who") : nullptr;
    const json::Value* id = who && who->IsObject() ? json::member(*who, "identifier") : nullptr;
    if (id && id->IsObject() && json::get_string(*id, "system").value_or("") == model::cpis::kOdsSystem &&
        json::get_string(*id, "value").value_or("") == ods)
      return true;
  }
  return false;
}

}  // namespace

bool Visibility::hidden_from(const Principal& who, const store::StoredResource& r, std::string_view interaction) const {
  if (hidden_by_labels(r.body, policy_.hidden_labels(who))) return true;
  if (r.type == "AuditEvent" && !r.deleted && !may_read_access_record(who, r.body)) return true;
  auto scope = policy_.row_scope(who, r.type, interaction);
  if (!scope || r.body.empty()) return false;
  auto doc = json::parse(r.body);
  if (!doc) return true;  // unreadable: fail closed
  for (const auto& e : model::index_entries(r.type, *doc))
    if (e.param == *scope && e.value == who.ods) return false;
  return true;
}

bool Visibility::may_read_access_record(const Principal& who, const std::string& body) const {
  if (policy_.allows_operation(who, kTrailOperation)) return true;
  auto d = json::parse(body);
  if (d && is_break_glass_record(*d)) return acted_for(*d, who.ods);
  const json::Value* entities = d ? json::member(*d, "entity") : nullptr;
  if (!entities || !entities->IsArray()) return false;
  for (const auto& e : entities->GetArray()) {
    const json::Value* what = e.IsObject() ? json::member(e, "what") : nullptr;
    auto ref = what && what->IsObject() ? json::get_string(*what, "reference") : std::nullopt;
    if (!ref || ref->rfind("CareTeam/", 0) != 0) continue;
    auto plan = store_.read("CareTeam", std::string(ref->substr(9)));
    if (!plan) continue;
    auto p = json::parse(plan->body);
    if (p && model::cpis::plan_type_of(*p) && model::cpis::managing_ods(*p) == who.ods) return true;
  }
  return false;
}

}  // namespace gw::security
