#pragma once
// The person behind each access, as data (profiles/policy/users.json): which
// national RBAC job roles may act through a system of each role, which
// interactions need a person (a verified user token), which systems people
// sit at, and what a break-glass reason must be. Loaded with the access
// policy (Policy::users()).
#include <string>
#include <string_view>
#include <vector>

#include "gateway/common/result.h"
#include "gateway/security/principal.h"

namespace gw::security {

// Operations that may need a person (users.json personRequired "operation").
inline constexpr std::string_view kCpisUnscheduledQuery = "cpis-unscheduled-query";
inline constexpr std::string_view kChronologyOperation = "chronology";

struct UserRules {
  struct JobRole {
    std::string code, display;
    std::vector<std::string> roles;  // gateway roles (certificate OU=) it may act through
  };
  struct Requirement {
    std::string operation;                  // "" or a named operation
    std::vector<std::string> resources;     // resource types (with interactions)
    std::vector<std::string> interactions;
    bool user_facing_only = false;          // only when the caller's system is user-facing
  };
  struct Systems {
    std::vector<std::string> roles, systems;  // "*" = any
  };
  std::vector<JobRole> job_roles;
  std::vector<Requirement> required;
  std::vector<Systems> user_facing;
  size_t min_reason = 20, max_reason = 500;

  // Reads profiles_dir/policy/users.json; errors name the file and the key.
  static Result<UserRules> load(const std::string& profiles_dir);
  static Result<UserRules> parse(std::string_view json_text);

  const JobRole* job_role(std::string_view code) const;
  // People sit at this system (certificate OU= and CN= in userFacingSystems).
  bool user_facing_system(const Principal& who) const;
  // A person must be named for this operation / this interaction on this type.
  bool person_required_for(const Principal& who, std::string_view operation) const;
  bool person_required_for(const Principal& who, std::string_view resource_type, std::string_view interaction) const;
};

}  // namespace gw::security
