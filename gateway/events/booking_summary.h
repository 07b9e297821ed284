#pragma once
// A pregnancy booking as the flows read it (an EpisodeOfCare of service
// maternity and the woman's booking observations), its completeness by the
// rules in profiles/area/flow-rules.json, and what the shared record already
// holds that the booking risk assessment must consider (recommendation 4.5):
// CP-IS plans on her (unborn child) or her children, safeguarding concerns
// about her children, and her relapse-prevention plan as indicators only.
// Sexual-health content never appears; PSY/SUD content only as the
// indicators a relapse disclosure carries (disclosure.h).
#include <optional>
#include <string>
#include <vector>

#include "gateway/common/json.h"
#include "gateway/events/matcher.h"
#include "gateway/events/relations.h"

namespace gw::events {

struct Booking {
  std::string episode_id;
  std::string woman;          // Patient id
  std::string service;        // ODS of the booking midwifery service (managingOrganization)
  std::string booking_date;   // period.start
  std::string edd, gestation_weeks;
  std::string risk_assessment;   // "yes" | "no" | "" (not answered)
  std::string social_concerns;   // the answer, "" when not answered
  bool has_gp = false, has_postcode = false;
};

// The booking a change is about: the maternity EpisodeOfCare itself, or the
// woman's newest active one for a booking Observation (EDD, risk assessment,
// social concerns). Nullopt otherwise.
std::optional<Booking> booking_of(const std::string& type, const std::string& id, const json::Value& focus,
                                  Lookup& lookup);
std::optional<Booking> booking_for_episode(const json::Value& episode, const std::string& id, Lookup& lookup);

// The labels of what is missing, in the order of the rules ("" = complete).
std::vector<std::string> booking_missing(const Booking& b, Lookup& lookup, const FlowContext& ctx);
// The booking itself, as lines a health visitor reads.
std::vector<std::string> booking_lines(const Booking& b);
// What the shared record holds about her and her children (rec. 4.5).
std::vector<std::string> booking_summary_lines(const std::string& woman, Lookup& lookup, const FlowContext& ctx);

}  // namespace gw::events
