#pragma once
// Access policy as data (profiles/policy/access.json): deny by default; a
// rule grants a role (optionally only some ODS codes) a set of interactions on
// a set of resource types, or named operations ("metrics", "admin").
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/common/result.h"
#include "gateway/security/principal.h"

namespace gw::security {

class Policy {
 public:
  // Reads profiles_dir/policy/access.json. Errors name the file and the key.
  static Result<Policy> load(const std::string& profiles_dir);
  // From JSON text (tests).
  static Result<Policy> parse(std::string_view json_text);

  // interaction: "read", "vread", "history", "search", "create", "update", "delete".
  bool allows(const Principal& who, std::string_view resource_type, std::string_view interaction) const;
  // operation: "metrics", "admin"...
  bool allows_operation(const Principal& who, std::string_view operation) const;

  // Row scope of what a role may see of a type: nullopt when a grant without
  // a scope allows the interaction; otherwise the search-index parameter
  // (e.g. "recipient") that must name the caller's ODS code for a resource
  // to exist for it (a rule's "scope" key in access.json).
  std::optional<std::string> row_scope(const Principal& who, std::string_view resource_type,
                                       std::string_view interaction) const;

  // Sensitivity labels (meta.security codes such as STD, HIV, SEX, PSY, SUD)
  // that hide a resource from this caller: a resource carrying any of them is
  // not found, not counted and not sent. Data in access.json "sensitivity":
  // label -> the only roles that may see it. Labels not listed hide nothing.
  std::vector<std::string> hidden_labels(const Principal& who) const;
  // The system of every label code above (v3-ActCode).
  static constexpr std::string_view kSensitivitySystem = "http://terminology.hl7.org/CodeSystem/v3-ActCode";

  Policy();
  ~Policy();
  Policy(Policy&&) noexcept;
  Policy& operator=(Policy&&) noexcept;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace gw::security
