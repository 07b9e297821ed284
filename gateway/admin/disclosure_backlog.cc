#include "gateway/admin/disclosure_backlog.h"

#include <map>

#include "gateway/common/json.h"
#include "gateway/events/disclosure.h"
#include "gateway/events/escalation.h"
#include "gateway/model/cpis_plan.h"

namespace gw::admin {

namespace {

constexpr int kPage = 500;
constexpr int64_t kBound = 100000;  // disclosures waiting at once; beyond it the answer says truncated

std::vector<std::string> recipients(const json::Value& comm) {
  std::vector<std::string> out;
  const json::Value* r = json::member(comm, "recipient");
  if (!r || !r->IsArray()) return out;
  for (const auto& x : r->GetArray()) {
    const json::Value* id = json::member(x, "identifier");
    if (id && json::get_string(*id, "system").value_or("") == model::cpis::kOdsSystem)
      if (auto v = json::get_string(*id, "value")) out.emplace_back(*v);
  }
  return out;
}

std::string topic_of(const json::Value& comm) {
  const json::Value* cats = json::member(comm, "category");
  if (!cats || !cats->IsArray()) return {};
  for (const auto& c : cats->GetArray()) {
    const json::Value* codings = json::member(c, "coding");
    if (!codings || !codings->IsArray()) continue;
    for (const auto& k : codings->GetArray())
      if (json::get_string(k, "system").value_or("") == events::kDisclosureTopicSystem)
        return std::string(json::get_string(k, "code").value_or(""));
  }
  return {};
}

}  // namespace

Result<Backlog> disclosure_backlog(store::Store& store, const std::vector<std::string>& hidden_labels) {
  std::map<std::pair<std::string, std::string>, BacklogRow> by;
  Backlog out;
  store::SearchQuery q;
  q.type = "Communication";
  q.params.push_back(store::ParamConstraint{"status", {{"", "in-progress"}}});
  q.exclude_security = hidden_labels;
  q.count = kPage;
  q.want_total = false;
  for (int64_t seen = 0;; ) {
    q.offset = seen;
    auto page = store.search(q);
    if (!page) return page.error();
    for (const auto& r : page->items) {
      auto d = json::parse(r.body);
      if (!d || !d->IsObject()) continue;
      std::string topic = topic_of(*d);
      if (topic.empty()) continue;  // not a derived disclosure
      int stage = 0;
      auto timers = store.timers_of(std::string(events::kEscalationTimerKind), events::escalation_subject(r.id));
      if (!timers) return timers.error();
      for (const auto& t : *timers) {
        if (t.status != "fired") continue;
        if (t.key.ends_with(":1")) stage = std::max(stage, 1);
        if (t.key.ends_with(":2")) stage = 2;
      }
      for (const auto& org : recipients(*d)) {
        auto& row = by[{org, topic}];
        row.organisation = org;
        row.topic = topic;
        ++row.unacknowledged;
        if (stage >= 1) ++row.escalated;
        if (stage >= 2) ++row.escalated_to_nurse;
      }
      ++out.unacknowledged;
      if (stage >= 1) ++out.escalated;
      if (stage >= 2) ++out.escalated_to_nurse;
    }
    seen += static_cast<int64_t>(page->items.size());
    if (page->items.size() < static_cast<size_t>(kPage)) break;
    if (seen >= kBound) {
      out.truncated = true;
      break;
    }
  }
  for (auto& [k, v] : by) out.rows.push_back(std::move(v));
  return out;
}

}  // namespace gw::admin
