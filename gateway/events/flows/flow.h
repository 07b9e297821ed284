#pragma once
// One safeguarding flow of the relations route (relations.h), looked up by
// its topic's name: whether a change is an event of it, who receives it
// under which relationship, and what leaves for each receiver.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/events/relations.h"

namespace gw::events::flows {

class Flow {
 public:
  virtual ~Flow() = default;
  virtual std::vector<std::string_view> relations() const = 0;
  // The change is an event of this flow (an ED attendance of a child...).
  virtual bool qualifies(const store::ChangeRow& change, const json::Value& focus, Lookup& lookup,
                         const FlowContext& ctx) const = 0;
  // `ods` stands in `relation` to this event; adds who it is told about to d.concerned.
  virtual bool receives(std::string_view relation, const std::string& ods, const store::ChangeRow& change,
                        const json::Value& focus, Lookup& lookup, const FlowContext& ctx, Decision& d) const = 0;
  // What leaves for the receiver d describes (d.relation "" = an unrestricted
  // subscriber, who is told what every receiver is).
  virtual std::optional<FlowDisclosure> disclose(const store::ChangeRow& change, const json::Value& focus,
                                                 const Decision& d, Lookup& lookup, const FlowContext& ctx) const = 0;
};

const Flow* ed_adult_flow();
const Flow* ed_child_flow();
const Flow* pregnancy_flow();
const Flow* lac_flow();

}  // namespace gw::events::flows
