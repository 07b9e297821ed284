#pragma once
// The CAMHS adapter's data (profiles/adapters/camhs.json): code tables, labels
// per resource kind and limits. Loaded once and checked up front, so that a
// typo in a table stops start-up instead of mislabelling mental-health data.
#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/common/result.h"

namespace gw::adapters::camhs {

struct TeamType {
  std::string service;  // gateway service code: camhs | adult-mental-health | substance-misuse
  std::string display;
  std::string label;    // v3-ActCode PSY | SUD
};

struct LabelRule {
  bool service = false;     // carries the record's PSY/SUD labels
  bool restricted = false;  // carries confidentiality R
};

struct IndicatorCode {
  std::string display;
  std::string plan_status;  // normalised for the CP-IS cross-check
};

struct AttendCode {
  std::string display;
  std::string status;  // Encounter.status
};

struct Coded {
  std::string code;
  std::string display;
};

using Table = std::map<std::string, std::string, std::less<>>;

struct Tables {
  std::size_t max_document_bytes = 64u << 20;
  std::size_t max_issues = 500;
  std::map<std::string, TeamType, std::less<>> team_types;  // by first letter of TeamType
  std::string default_label = "PSY";
  std::map<std::string, LabelRule, std::less<>> labels;     // by resource kind
  Table verification_status, gender, referral_source, priority, care_plan_type, discharge_destination,
      relationships;
  std::map<std::string, IndicatorCode, std::less<>> cpp, lac_status, young_carer;
  std::map<std::string, AttendCode, std::less<>> attend_status;
  std::vector<std::string> tier4_values;
  std::map<std::string, Coded, std::less<>> parent_by_gender;
  Coded foster_child_sees;

  // Reads profiles_dir/adapters/camhs.json; errors name the file and the key.
  static Result<Tables> load(const std::string& profiles_dir);

  const LabelRule& label(std::string_view kind) const;  // kind must exist (checked at load)
  const TeamType* team_type(std::string_view code) const;
  bool is_tier4(std::string_view tier) const;
};

}  // namespace gw::adapters::camhs
