#pragma once
// The CASH/GUM adapter's data (profiles/adapters/cashgum.json): required and
// optional columns per file kind, code tables, which activity codes are
// HIV-related, which risk outcomes are concerns and to whom a concern may go.
// Loaded once and checked up front: a typo stops start-up naming file and key.
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/common/result.h"

namespace gw::adapters::cashgum {

struct Code {
  std::string code;
  std::string display;
};

struct Activity {
  std::string display;
  bool hiv = false;
};

struct RiskOutcome {
  std::string display;
  bool concern = false;
};

struct Referral {
  std::string display;
  std::vector<std::string> disclose_to;  // gateway roles, e.g. "local-authority"
};

struct Coding {
  std::string system, code, display;
};

struct Columns {
  std::vector<std::string> required, optional;
};

struct Tables {
  // Reads profiles_dir/adapters/cashgum.json; errors name the file and the key.
  static Result<Tables> load(const std::string& profiles_dir);

  Columns gumcad, srhad;
  std::map<std::string, std::string, std::less<>> systems;  // "shhapt" -> uri
  std::map<std::string, std::string, std::less<>> gender;   // "1" -> "male"
  std::map<std::string, Activity, std::less<>> shhapt;      // upper-case code
  std::map<std::string, Activity, std::less<>> snomed;
  std::string local_system;
  std::string activity_category;
  Code risk_assessment, contraception;
  std::map<std::string, RiskOutcome, std::less<>> risk_outcomes;
  std::map<std::string, std::string, std::less<>> cse_indicators;
  // Indicator codes that are clinical detail: never copied into the concern (code -> reason).
  std::map<std::string, std::string, std::less<>> cse_not_disclosed;
  std::map<std::string, Referral, std::less<>> referred_to;
  // ONS district code -> ODS code of its authority (profiles/area/services.json):
  // which authority a concern referred to social care goes to.
  std::map<std::string, std::string, std::less<>> authority_by_ons;
  int adult_age = 18;
  Coding concern_code, concern_category;
  std::vector<std::string> concern_disclose_to;
  std::map<std::string, std::string, std::less<>> contraceptive_methods;
  std::map<std::string, std::string, std::less<>> method_status;

  const std::string& system(std::string_view name) const;  // asserts the name was loaded
};

}  // namespace gw::adapters::cashgum
