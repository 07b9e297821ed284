#pragma once
// GET /fhir/Patient/{id}/$chronology (issue 15 part 5; recommendations 2.4,
// 3.19, 4.10): one timeline of the significant events the gateway knows
// about a child, from every source, newest first — CP-IS plans starting and
// ending, ED attendances, safeguarding concerns, Tier 4 spells, relapse
// plans and indicators of the child's parents, the mother's pregnancy
// booking while the child was unborn, LAC health assessments, merges of the
// NHS number, and the disclosures the caller's organisation received about
// the child. A Bundle (collection) whose first entry is a List (code
// chronology); each entry references what the caller may read, or is a
// display-only summary where profiles/operations/chronology.json allows one
// for its role, or is left out. Every label is honoured through
// security::Visibility.
#include <map>
#include <string>
#include <vector>

#include "gateway/area/area.h"
#include "gateway/common/result.h"
#include "gateway/security/principal.h"
#include "gateway/security/visibility.h"
#include "gateway/store/store.h"

namespace gw::safeguarding {

struct ChronologyRules {
  struct Summary {
    std::string text;
    std::vector<std::string> roles;
  };
  std::map<std::string, Summary> summaries;  // category -> who gets a display-only summary
  // Labels whose content is never summarised: not even that it exists
  // (sexual-health content, DESIGN.md "Sensitive data").
  std::vector<std::string> never_summarised;
  // Reads profiles_dir/operations/chronology.json (errors name the file and key).
  static Result<ChronologyRules> load(const std::string& profiles_dir);
};

struct ChronologyEntry {
  std::string date;      // ISO date or dateTime
  std::string category;  // cpis-plan-start, ed-attendance...
  std::string text;      // what happened, no clinical detail
  std::string source;    // ODS code of the organisation or system it came from ("" when unknown)
  std::string reference; // "Type/id" the caller may read, "" for a display-only summary
};

struct ChronologyResult {
  std::string bundle;      // the answer
  size_t entries = 0;
  size_t summarised = 0;   // display-only
  size_t withheld = 0;     // left out for this caller
};

// Reads on the calling thread (a store reader). Errc::not_found when the
// child is unknown or hidden from the caller.
Result<ChronologyResult> chronology(store::Store& store, const security::Visibility& visibility,
                                    const security::Principal& who, const std::string& patient_id,
                                    const ChronologyRules& rules, const area::Area& area, const std::string& base);

}  // namespace gw::safeguarding
