#pragma once
// What a person opens only on a legitimate relationship with the child it is
// about, or with a break-glass reason (issue 17 part 3), as data:
// profiles/policy/relationships.json. The operation "chronology", and reads
// (read, vread, history, search) of resource types — optionally only those
// carrying a code (a CareTeam coded as a CP-IS plan) — with the elements
// whose organisation has a relationship by being named there (a
// disclosure's recipient). safeguarding/break_glass.h applies it.
#include <string>
#include <string_view>
#include <vector>

#include "gateway/common/json.h"
#include "gateway/common/result.h"

namespace gw::security {

struct RelationshipRule {
  std::string operation;                // "" or a named operation ("chronology")
  std::vector<std::string> resources;   // resource types (with interactions)
  std::vector<std::string> interactions;
  std::vector<std::string> codes;       // system|code in code or category: only such resources; empty = any
  std::vector<std::string> related_by;  // elements whose organisation (ODS identifier) is itself a relationship
};

class Relationships {
 public:
  // Reads profiles_dir/policy/relationships.json; errors name the file and the key.
  static Result<Relationships> load(const std::string& profiles_dir);
  static Result<Relationships> parse(std::string_view json_text);

  // A person opens this operation only on a relationship (or break-glass).
  bool required_for(std::string_view operation) const;
  // The rule gating this interaction on this type, if any (a type-level
  // answer: gates() says whether a given resource of it is gated).
  const RelationshipRule* rule(std::string_view resource_type, std::string_view interaction) const;
  static bool gates(const RelationshipRule& rule, const json::Value& resource);

  const std::vector<RelationshipRule>& rules() const { return rules_; }

 private:
  std::vector<RelationshipRule> rules_;
};

// Any coding in the resource's code or category (a CodeableConcept or an
// array of them) equal to "system|code".
bool carries_code(const json::Value& resource, std::string_view system_code);
// Some occurrence of resource[element] (a Reference, or an array of them)
// identifies the organisation `ods` by its ODS code identifier.
bool names_any(const json::Value& resource, std::string_view element, std::string_view ods);
// Whether `ref` is a Reference whose identifier is this ODS code.
bool is_ods_reference(const json::Value& ref, std::string_view ods);

}  // namespace gw::security
