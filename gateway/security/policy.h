#pragma once
// Access policy as data (profiles/policy/access.json): deny by default; a
// rule grants a role (optionally only some ODS codes) a set of interactions on
// a set of resource types, or named operations ("metrics", "admin").
#include <memory>
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
  // Types only the gateway writes ("gateway_written" in access.json, e.g.
  // AuditEvent): create, update and delete are refused to every role.
  bool gateway_written(std::string_view resource_type) const;
  // operation: "metrics", "admin"...
  bool allows_operation(const Principal& who, std::string_view operation) const;

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
