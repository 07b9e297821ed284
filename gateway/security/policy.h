#pragma once
// Access policy as data (profiles/policy/access.json): deny by default; a
// rule grants a role (optionally only some ODS codes) a set of interactions on
// a set of resource types, or named operations ("metrics", "admin").
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/common/json.h"
#include "gateway/common/result.h"
#include "gateway/security/principal.h"
#include "gateway/security/user_rules.h"

namespace gw::security {

// True when resource[element] is present and every occurrence (a Reference,
// or an array of them) identifies the organisation `ods` by its ODS code
// identifier: content the caller's organisation alone is responsible for.
bool names_only(const json::Value& resource, std::string_view element, std::string_view ods);

// What a conditional grant asks of the content it covers (access.json
// "ownOrganisation", "exceptCodes").
struct WriteCondition {
  std::string own_organisation;           // "": none; else names_only(resource, this, caller's ODS)
  std::vector<std::string> except_codes;  // "system|code": none may be in the resource's code or category
  // The content meets this condition for this caller.
  bool met_by(const json::Value& resource, const Principal& who) const;
  // Why content does not, for people ("whose managingOrganization is its own organisation...").
  std::string describe() const;
};

// What a notification may reveal of labelled content to one principal
// (access.json "sensitivity" and "notifications").
struct LabelView {
  std::vector<std::string> hidden;    // labels whose content it may not see (hidden_labels)
  std::vector<std::string> unspoken;  // of those, the labels whose very existence is withheld
  // Confidentiality R on content carrying none of the sensitivity labels
  // withholds its existence too (notifications.restrictedAlone).
  bool restricted_alone_unspoken = false;
  std::vector<std::string> sensitivity_labels;  // every label the sensitivity table names
};

class Policy {
 public:
  // Reads profiles_dir/policy/access.json and its sibling users.json (the
  // person behind each access). Errors name the file and the key.
  static Result<Policy> load(const std::string& profiles_dir);
  // From JSON text (tests); no interaction then needs a person.
  static Result<Policy> parse(std::string_view json_text);

  // users.json: job roles, which interactions need a person, user-facing
  // systems, break-glass reasons.
  const UserRules& users() const;
  // Replaces the rules (tests); every job role's roles must be known roles.
  Result<void> set_users(UserRules rules);

  // interaction: "read", "vread", "history", "search", "create", "update", "delete".
  bool allows(const Principal& who, std::string_view resource_type, std::string_view interaction) const;
  // What a write that allows() grants still requires of the content: empty
  // when some grant for it is unconditional; otherwise the conditions of the
  // grants that allow it, one of which the content written and, for an
  // update, the content it replaces must meet. Callers of allows() for
  // create/update must check these too.
  std::vector<WriteCondition> write_conditions(const Principal& who, std::string_view resource_type,
                                               std::string_view interaction) const;

  // Types only the gateway writes ("gateway_written" in access.json, e.g.
  // AuditEvent): create, update and delete are refused to every role.
  bool gateway_written(std::string_view resource_type) const;
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
  // The same for notifications: which hidden labels withhold even the fact
  // that something changed ("notifications" in access.json).
  LabelView label_view(const Principal& who) const;
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
