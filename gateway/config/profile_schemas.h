#pragma once
// Start-up check of the profile files an operator edits against the schemas
// in profiles/schemas/: the access policy, every topic and every rules file.
// Unknown keys, unknown roles and unknown sensitivity labels are refused with
// file, line and column, every problem of every file in one error, before
// anything is loaded (the loaders then check what the data means).
#include <string>

#include "gateway/common/result.h"

namespace gw::config {

Result<void> check_profile_files(const std::string& profiles_dir);

}  // namespace gw::config
