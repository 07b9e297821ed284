#pragma once
// The SystmOne adapter's data: code maps (profiles/codemaps/*.json) and its
// tables (profiles/adapters/systmone.json). Loaded once and checked up front,
// so that a typo in a table stops start-up instead of mis-coding messages.
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/common/result.h"

namespace gw::adapters::systmone {

struct Concept {
  std::string code;
  std::string display;
};

// One source coding system (Read v2, CTV3, SNOMED CT, local).
struct CodeSource {
  std::string id;          // "READ2"
  std::string system;      // FHIR Coding.system of the code as sent
  bool identity = false;   // SNOMED CT: the code is its own target
  bool per_sender = false; // local codes: system gets ":<MSH-4>" appended
  std::map<std::string, Concept, std::less<>> map;          // source code -> SNOMED CT
  std::map<std::string, std::string, std::less<>> unmapped;  // source code -> reason
};

struct Relationship {
  enum class Kind { parent, child, none };
  Kind kind = Kind::none;
  std::string display;
  std::string child_sees;  // for child rows: the code the child's side gets; empty = by gender
};

class CodeMaps {
 public:
  // Reads profiles_dir/codemaps/*.json and profiles_dir/adapters/systmone.json.
  // Errors name the file and the key.
  static Result<CodeMaps> load(const std::string& profiles_dir);

  // The source for a CE.3 coding-system name (case-insensitive); nullptr when unknown.
  const CodeSource* source(std::string_view name) const;
  const CodeSource* local() const { return local_; }
  const CodeSource* snomed() const { return snomed_; }

  const std::map<std::string, std::string, std::less<>>& verification_status() const { return verification_; }
  const std::map<std::string, std::string, std::less<>>& care_team_roles() const { return roles_; }
  const std::map<std::string, Relationship, std::less<>>& relationships() const { return relationships_; }
  // "female" -> "MTH" ...
  std::string_view parent_by_gender(std::string_view gender) const;
  const std::map<std::string, std::string, std::less<>>& cpis_plans() const { return plans_; }
  const Concept& edd() const { return edd_; }
  const Concept& gestation() const { return gestation_; }

  CodeMaps() = default;
  CodeMaps(CodeMaps&& o) noexcept;
  CodeMaps& operator=(CodeMaps&&) = delete;
  CodeMaps(const CodeMaps&) = delete;

 private:
  void relink();

  std::vector<CodeSource> sources_;
  std::map<std::string, std::size_t, std::less<>> names_;  // upper-case name -> index in sources_
  const CodeSource* local_ = nullptr;
  const CodeSource* snomed_ = nullptr;
  std::map<std::string, std::string, std::less<>> verification_;
  std::map<std::string, std::string, std::less<>> roles_;
  std::map<std::string, Relationship, std::less<>> relationships_;
  std::map<std::string, std::string, std::less<>> by_gender_;
  std::map<std::string, std::string, std::less<>> plans_;
  Concept edd_, gestation_;
};

}  // namespace gw::adapters::systmone
