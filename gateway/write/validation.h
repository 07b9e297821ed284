#pragma once
// Profile validation driven by data: one rules file per resource type in
// profiles/rules/<Type>.json (required elements, cardinality, allowed codes,
// identifier systems, NHS number check, and stricter profiles for resources
// carrying a given code, such as the CP-IS plan CareTeam). The rule language is documented in
// profiles/README.md; adding a rule is a data change, not a code change.
#include <memory>
#include <string>
#include <vector>

#include "gateway/common/issues.h"
#include "gateway/common/json.h"
#include "gateway/common/result.h"
#include "gateway/model/search_decl.h"

namespace gw::write {

class Validator {
 public:
  // Reads every profiles_dir/rules/*.json. Errors name the file and the key.
  static Result<Validator> load(const std::string& profiles_dir);

  // Reports every problem found (not only the first) with its element path,
  // rooted at the resource type ("Patient.identifier[0].value").
  void validate(const json::Value& resource, IssueSink& sink) const;

  // The resource types that have a rules file: the types the server supports.
  bool supports(std::string_view type) const;
  const std::vector<std::string>& resource_types() const;  // sorted
  // The search parameters declared in profiles/search/params.json, indexed
  // on every write of their type.
  const model::SearchParamTable& search_params() const;

  Validator();
  ~Validator();
  Validator(Validator&&) noexcept;
  Validator& operator=(Validator&&) noexcept;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace gw::write
