#pragma once
// Coverage gaps (issue 17 part 2, docs/COVERAGE.md): who is meant to be
// looking after each child the gateway knows to be at risk, and where nobody
// is known. Eight kinds of gap, found by scanning what the store holds:
//   plan-no-health-visitor-or-school-nurse  a child with a CP-IS plan in scope
//       (CPP or LAC; CPIS.md section 1) and no health visitor (under 5) or
//       school nurse (5 to 18) on an active care team;
//   plan-no-gp-practice                     the same child with no registered practice;
//   lac-no-health-team                      an active LAC plan, no LAC health team on
//       the child's care teams and none serving the authority (services.json);
//   lac-assessment-overdue                  an active LAC plan whose open health
//       assessment is overdue (lac_assessments.h);
//   relapse-plan-child-no-caring-service    a child linked to a parent with an active
//       relapse-prevention plan, and no caring service known for the child;
//   ed-children-not-identified              an adult whose ED safeguarding
//       questionnaire said children are at home, and no child linked to them;
//   unborn-plan-no-midwifery                a pregnant woman with an unborn-child
//       protection plan (UCPP, held against her) still open, and no maternity
//       service known (no active maternity episode, no midwife on a care team);
//   unborn-plan-no-gp-practice              the same woman (plan in scope) with no
//       registered practice.
// Each line names the person by reference only ("Patient/<id>"), the gap and
// the feeds that would have told us, never clinical content. What the
// viewer's role may not see of labelled records (policy "sensitivity") is
// counted without a line; what it may not even know exists is not counted.
// The scan pages through the store, keeps only the asked window of lines,
// and stops at a time budget.
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/common/result.h"
#include "gateway/events/dispatcher.h"
#include "gateway/events/relations.h"
#include "gateway/events/topics.h"
#include "gateway/security/policy.h"
#include "gateway/store/store.h"

namespace gw::events {

inline constexpr std::string_view kCoverageTimerKind = "coverage-gaps";
inline constexpr std::string_view kCoverageTimerSubject = "coverage-gaps";
inline constexpr std::string_view kCoverageTopic = "coverage-gaps";
inline constexpr std::string_view kCoverageRulesFile = "reports/coverage.json";

// In report and summary order.
inline constexpr std::string_view kGapKinds[] = {
    "plan-no-health-visitor-or-school-nurse", "plan-no-gp-practice", "lac-no-health-team", "lac-assessment-overdue",
    "relapse-plan-child-no-caring-service",   "ed-children-not-identified", "unborn-plan-no-midwifery",
    "unborn-plan-no-gp-practice"};
// What a kind means, for people (the summary, the docs).
std::string_view gap_title(std::string_view kind);

// A feed is heard from through the kept legacy messages of its adapters
// (the inbound store), and through the FHIR REST writes its writers make
// (the audit trail: every committed create or update over REST leaves a row
// naming the writer's role and the resource type). Either may be empty.
struct CoverageFeed {
  std::string name, display;
  std::vector<std::string> adapters, kinds;  // kinds empty: any message of the adapters
  std::vector<std::string> rest_roles, rest_resources;  // REST writers: certificate roles, resource types
};

// profiles/reports/coverage.json.
struct CoverageRules {
  std::vector<std::string> hv_roles{"HV"}, sn_roles{"SN"}, gp_roles{"GP"}, lac_roles{"LAC"}, mw_roles{"MW"};
  int hv_to_age = 5, sn_from_age = 5, sn_to_age = 19;
  int ed_window_days = 365;
  std::vector<CoverageFeed> feeds;
  std::map<std::string, std::vector<std::string>, std::less<>> gap_feeds;  // kind -> feed names
  int weekday = 1;         // 0 Sunday ... 6 Saturday
  int minute_of_day = 420; // local time of day
  std::string time_zone = "Europe/London";

  static Result<CoverageRules> load(const std::string& profiles_dir);
  static Result<CoverageRules> parse(std::string_view text, const std::string& source);
  const CoverageFeed* feed(std::string_view name) const;
};

// UTC offset of Europe/London at `t` (UK summer time: from 01:00 UTC on the
// last Sunday of March to 01:00 UTC on the last Sunday of October), or 0 for UTC.
std::chrono::minutes utc_offset(const CoverageRules& rules, std::chrono::system_clock::time_point t);
// The first weekly summary time strictly after `after`, as
// YYYY-MM-DDTHH:MM:SSZ (the timer's due) and its local date (the key).
struct WeeklyDue {
  std::string due_utc, local_date;
};
WeeklyDue next_weekly_due(const CoverageRules& rules, std::chrono::system_clock::time_point after);

struct GapLine {
  std::string kind;
  std::string patient;  // "Patient/<id>"
  std::string detail;   // what is missing, never clinical content
};

struct GapCount {
  std::string kind;
  int64_t listed = 0;    // lines the viewer may see
  int64_t withheld = 0;  // counted, no line: a record behind it is labelled beyond the viewer's role
};

struct FeedSeen {
  std::string name, display;
  std::string last_heard;  // the newest kept message or audited REST write, "" when none
  std::string last_message{}, last_rest{};  // each source apart, "" when none
};

struct CoverageQuery {
  security::LabelView view;    // what the viewer may know of labelled records
  std::string today;           // YYYY-MM-DD
  std::string only_kind;       // lines of this kind only ("" = all); counts are always all
  int64_t offset = 0;          // lines skipped
  int64_t count = 1000;        // lines kept at most
  bool want_lines = true;      // false: counts only (the weekly summary)
  std::chrono::milliseconds budget{120000};
};

struct CoverageReport {
  std::string today;
  std::vector<GapCount> counts;  // one per kGapKinds, in that order
  int64_t total_lines = 0;       // lines of the selected kind(s) before offset/count
  std::vector<GapLine> lines;    // the window [offset, offset + count)
  std::vector<FeedSeen> feeds;   // every feed of the rules
  int64_t plans_scanned = 0, care_plans_scanned = 0, questionnaires_scanned = 0;
};

// Reads on the calling thread (a store reader). Errc::unavailable when the
// scan runs past the budget.
Result<CoverageReport> find_coverage_gaps(store::Store& store, const FlowContext& ctx, const CoverageRules& rules,
                                          const CoverageQuery& q);

// The feeds that would have told us of a gap, by name, as "a; b".
std::string feeds_of(const CoverageRules& rules, std::string_view kind);
// Their last-heard times in the same order ("never" for none), as "a; b".
std::string last_heard_of(const CoverageReport& report, const CoverageRules& rules, std::string_view kind);

// ---- the weekly summary (topic coverage-gaps, docs/TIMERS.md) -------------------

// The schedule the timers engine keeps: the pending weekly timer, or the next
// one when none is pending (never within six days of the last one fired, so a
// changed day in profiles/ does not send two in one week). Nullopt: nothing to
// change (a pending one is due at the profile's time already).
std::optional<store::TimerSet> weekly_schedule(store::Store& store, const CoverageRules& rules,
                                               std::chrono::system_clock::time_point now);

// Fires weekly timer `t`: for every active subscription on the topic, a
// Communication with the counts per gap kind (the subscriber's view of
// labelled records; no patient identifier) and its event and audit row, with
// the next week's timer, in `unit`. Returns the subscriptions with events.
Result<std::vector<std::string>> fire_weekly_summary(store::Store& store, const Topics& topics, SubscriptionSet& subs,
                                                     const FlowContext& ctx, const store::TimerRow& t,
                                                     std::chrono::system_clock::time_point now,
                                                     store::UnitOfWork& unit);

}  // namespace gw::events
