#include "gateway/events/relations.h"

#include "gateway/events/disclosure.h"
#include "gateway/events/flows/flow.h"
#include "gateway/events/flows/flow_kit.h"
#include "gateway/identity/nhs_number.h"

namespace gw::events {

namespace {

const flows::Flow* flow_of(std::string_view topic_name) {
  if (topic_name == "adult-attendance-with-children") return flows::ed_adult_flow();
  if (topic_name == "child-ed-attendance") return flows::ed_child_flow();
  if (topic_name == "pregnancy-notification") return flows::pregnancy_flow();
  if (topic_name == "lac-health-assessment-due") return flows::lac_flow();
  return nullptr;
}

}  // namespace

bool is_flow(std::string_view topic_name) { return flow_of(topic_name) != nullptr; }

bool is_relation(std::string_view name) {
  for (const char* t : {"adult-attendance-with-children", "child-ed-attendance", "pregnancy-notification",
                        "lac-health-assessment-due"})
    for (auto r : flow_of(t)->relations())
      if (r == name) return true;
  return false;
}

bool relations_allow(const Topic& topic, const SubscriptionSpec& sub, const store::ChangeRow& change,
                     const json::Value& resource, const std::string& patient_id, Lookup& lookup, Decision& d) {
  (void)patient_id;
  const flows::Flow* flow = flow_of(topic.name);
  const FlowContext* ctx = lookup.flows();
  auto rel = topic.receivers.find(sub.owner.role);
  if (!flow || !ctx || !ctx->area || rel == topic.receivers.end() || sub.owner.ods.empty()) {
    d.reason = "relation";
    return false;
  }
  if (!flow->qualifies(change, resource, lookup, *ctx)) {
    d.reason = "not-an-event";
    return false;
  }
  if (!flow->receives(rel->second, sub.owner.ods, change, resource, lookup, *ctx, d)) {
    d.reason = "relation";
    return false;
  }
  d.relation = rel->second;
  return true;
}

bool referred_authority_is(const json::Value& resource, const std::string& ods) {
  const json::Value* exts = json::member(resource, "extension");
  if (ods.empty() || !exts || !exts->IsArray()) return false;
  for (const auto& e : exts->GetArray()) {
    if (json::get_string(e, "url").value_or("") != "https://cpis-gateway.nhs.uk/StructureDefinition/referred-to-authority")
      continue;
    if (flows::ods_of(json::member(e, "valueReference")) == ods) return true;
  }
  return false;
}

namespace {

constexpr std::string_view kRelapsePlan = "https://cpis-gateway.nhs.uk/CodeSystem/care-plan-category|relapse-prevention";

// The parent a family link names (its NHS-number identifier) and the child.
std::optional<std::pair<std::string, std::string>> link_ends(const json::Value& link, Lookup& lookup) {
  if (json::get_bool(link, "active") == false) return std::nullopt;
  std::string child = flows::patient_id_of(link);
  const json::Value* ids = json::member(link, "identifier");
  if (child.empty() || !ids || !ids->IsArray()) return std::nullopt;
  for (const auto& i : ids->GetArray()) {
    if (flows::str(i, "system") != identity::kNhsNumberSystem) continue;
    auto nhs = identity::normalise_nhs_number(flows::str(i, "value"));
    if (!nhs) continue;
    if (auto parent = lookup.patient_id_by_nhs_number(*nhs); parent && *parent != child)
      return std::make_pair(*parent, child);
  }
  return std::nullopt;
}

}  // namespace

std::optional<NewLinkDisclosure> new_family_link_disclosure(const json::Value& link, const std::string& link_ts,
                                                            Lookup& lookup) {
  auto ends = link_ends(link, lookup);
  if (!ends) return std::nullopt;
  NewLinkDisclosure out{{}, ends->first, ends->second};
  for (const auto& plan : lookup.about("CarePlan", ends->first)) {
    if (flows::str(plan, "status") != "active" || !flows::coded(plan, kRelapsePlan)) continue;
    const json::Value* meta = json::member(plan, "meta");
    if (!meta || flows::str(*meta, "lastUpdated") >= link_ts) continue;
    if (auto lines = shareable_lines("CarePlan", plan, lookup))
      out.lines.insert(out.lines.end(), lines->begin(), lines->end());
  }
  if (out.lines.empty()) return std::nullopt;
  out.lines.push_back("A child in your care has been newly linked to this parent by a family link");
  return out;
}

bool new_family_link_allows(const SubscriptionSpec& sub, const store::ChangeRow& change, const json::Value& link,
                            Lookup& lookup, Decision& d) {
  auto ends = link_ends(link, lookup);
  if (!ends || !new_family_link_disclosure(link, change.ts, lookup) || !lookup.in_caseload(ends->second, sub.owner.ods)) {
    d.reason = "caseload";
    return false;
  }
  d.patient_ref = "Patient/" + ends->first;
  d.concerned = {ends->second};
  return true;
}

std::optional<FlowDisclosure> flow_disclosure(const Topic& topic, const store::ChangeRow& change,
                                              const json::Value& focus, const Decision& d, Lookup& lookup) {
  const flows::Flow* flow = flow_of(topic.name);
  const FlowContext* ctx = lookup.flows();
  if (!flow || !ctx || !ctx->area) return std::nullopt;
  return flow->disclose(change, focus, d, lookup, *ctx);
}

}  // namespace gw::events
