#pragma once
// The local area's data that routes the safeguarding flows (issue 15):
// which health-visiting team serves a GP practice, which LAC health team
// serves a local authority, which organisation an ED site belongs to and who
// its paediatric liaison is, which authority an ONS code names — and the
// rules of the flows kept as data (booking completeness, ED reasons and the
// frequent-attender threshold, LAC assessment intervals), with the working-day
// calendar. Loaded once at start-up from profiles/area/*.json; a bad file
// stops start-up naming the file and key. docs/FLOWS.md says which table to
// edit for a real area.
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/area/working_days.h"
#include "gateway/common/result.h"

namespace gw::area {

struct Team {
  std::string ods, name;
};

struct EdSite {
  std::string trust;                            // the organisation the site belongs to
  std::vector<std::string> paediatric_liaison;  // ODS codes of its paediatric liaison service(s)
};

// One check of a pregnancy booking's completeness (kinds in kCompletenessChecks).
struct CompletenessRule {
  std::string check;  // "registered-gp", "address-postcode", "edd", "booking-date", "risk-assessment", "social-concerns"
  std::string label;  // what the midwife is asked to send
};

struct ReasonCategory {
  std::string category;            // "self-harm", "overdose"...
  std::string display;
  std::vector<std::string> codes;  // "system|code"
};

struct PregnancyRules {
  std::vector<CompletenessRule> completeness;
  int repeat_assessment_weeks = 28;
  std::vector<std::string> repeat_assessment_codes;  // "system|code" of a repeat social risk assessment
};

struct EdRules {
  int adult_age = 18;
  std::vector<ReasonCategory> reasons;
  std::string children_question;         // OBX-3 code of "children at home" (any local system)
  std::vector<std::string> children_yes; // answers that mean yes
  int frequent_attendances = 3;          // frequent attender: this many attendances...
  int frequent_months = 12;              // ...within this many months (the one reported included)
  int dates_shown = 3;                   // dates of the last attendances given to liaison
};

struct LacRules {
  int initial_working_days = 20;
  int review_months_under5 = 6;
  int review_months_from5 = 12;
  int due_soon_working_days = 5;
  // "IHA" / "RHA" -> "system|code" that record an assessment as done.
  std::map<std::string, std::vector<std::string>> completion_codes;
};

// Issue 17: how long a receiver has to acknowledge a disclosure
// (flow-rules.json "acknowledgement"), in working days per topic.
struct AcknowledgementRules {
  std::map<std::string, int, std::less<>> first_working_days;  // topic name -> working days
  int second_working_days = 2;                                 // after the first deadline
};

// When a disclosure sent at `sent` escalates: the end (midnight
// Europe/London) of the n-th working day after the day it was sent, and of
// the second deadline's working day after that. ISO 8601 UTC.
struct EscalationDeadlines {
  std::string first, second;
};

inline constexpr std::string_view kServicesFile = "area/services.json";
inline constexpr std::string_view kRulesFile = "area/flow-rules.json";

// profiles_dir/area/services.json authorityByOnsCode alone (ONS district
// code -> the authority's ODS code), for the CASH/GUM adapter, which names
// the authority a concern is referred to (the file carries only the ONS code).
Result<std::map<std::string, std::string, std::less<>>> load_authority_by_ons(const std::string& profiles_dir);

class Area {
 public:
  // profiles_dir/area/services.json, area/flow-rules.json and the calendar
  // (which must cover `today` and next year).
  static Result<std::shared_ptr<const Area>> load(const std::string& profiles_dir, Date today);
  static Result<Area> parse(std::string_view services_json, std::string_view rules_json, WorkingDays calendar,
                            const std::string& services_source = std::string(kServicesFile),
                            const std::string& rules_source = std::string(kRulesFile));

  std::optional<Team> health_visiting_for_practice(std::string_view practice_ods) const;
  const Team& health_visiting_single_point_of_access() const { return hv_spoa_; }
  std::optional<std::string> lac_health_for_authority(std::string_view authority_ods) const;
  std::optional<std::string> authority_for_ons(std::string_view ons_code) const;
  const EdSite* ed_site(std::string_view ods) const;

  const PregnancyRules& pregnancy() const { return pregnancy_; }
  const EdRules& ed() const { return ed_; }
  const LacRules& lac() const { return lac_; }
  const AcknowledgementRules& acknowledgement() const { return ack_; }
  // The commissioner's designated nurse (services.json designatedNurse);
  // nullopt when the area names none (then nothing escalates a second time).
  const std::optional<Team>& designated_nurse() const { return designated_nurse_; }
  const WorkingDays& calendar() const { return calendar_; }
  // nullopt: the topic is not escalated; an error: the calendar does not
  // cover a day the count passes over, or `sent` is not an instant.
  Result<std::optional<EscalationDeadlines>> escalation_deadlines(std::string_view topic, std::string_view sent) const;

 private:
  std::map<std::string, Team, std::less<>> hv_by_practice_;
  Team hv_spoa_;
  std::map<std::string, std::string, std::less<>> lac_by_authority_;
  std::map<std::string, std::string, std::less<>> authority_by_ons_;
  std::map<std::string, EdSite, std::less<>> ed_sites_;
  PregnancyRules pregnancy_;
  EdRules ed_;
  LacRules lac_;
  AcknowledgementRules ack_;
  std::optional<Team> designated_nurse_;
  WorkingDays calendar_;
};

}  // namespace gw::area
