#pragma once
// Looked-after children's health assessments (issue 15 part 4; CPIS.md
// section 4): from a LAC plan CareTeam and the assessments recorded for the
// child (an Encounter or Observation coded IHA or RHA), the assessments due,
// overdue and completed, and the timers that tell the LAC health team when
// the next one is due soon and when it is overdue (docs/TIMERS.md).
// The initial assessment is due initialWorkingDays working days after the
// plan starts; each review reviewMonthsUnder5 / reviewMonthsFrom5 months after
// the last completed assessment (by the child's age on that day), while the
// plan lasts.
#include <optional>
#include <string>
#include <vector>

#include "gateway/common/json.h"
#include "gateway/events/matcher.h"
#include "gateway/events/relations.h"
#include "gateway/store/store.h"

namespace gw::events {

inline constexpr std::string_view kLacTimerKind = "lac-health-assessment";

struct Assessment {
  std::string kind;        // "IHA" | "RHA"
  std::string due;         // YYYY-MM-DD
  std::string completed;   // YYYY-MM-DD, "" while open
  std::string evidence;    // "Encounter/<id>" that completed it
  std::string status;      // "completed" | "due" | "overdue"
};

struct LacSchedule {
  std::string plan_id, patient_id, authority, start;
  bool active = false;              // the plan is a LAC plan, not withdrawn, not ended
  std::vector<Assessment> assessments;
  std::string error;                // the calendar refused a date: said loudly, nothing guessed
};

// Nullopt when `plan` is not a LAC plan CareTeam.
std::optional<LacSchedule> lac_schedule(const std::string& plan_id, const json::Value& plan, Lookup& lookup,
                                        const FlowContext& ctx);

// The timers of the open assessment (due soon, overdue), keyed so that each
// fires once: an empty set once it is completed or the plan ends.
store::TimerSet lac_timers(const LacSchedule& s, const FlowContext& ctx);

// Lines a LAC health team reads about the schedule.
std::vector<std::string> lac_lines(const LacSchedule& s);

// True when the resource records a health assessment (IHA/RHA completion codes).
bool records_assessment(const json::Value& r, const FlowContext& ctx);

}  // namespace gw::events
