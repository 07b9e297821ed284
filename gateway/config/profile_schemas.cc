#include "gateway/config/profile_schemas.h"

#include <algorithm>
#include <filesystem>
#include <vector>

#include "gateway/common/json_schema.h"

namespace gw::config {

namespace {

// Which schema checks which files (a folder's *.json, or one file).
struct Checked {
  const char* schema;
  const char* path;
  bool folder;
};
constexpr Checked kChecked[] = {
    {"access.schema.json", "policy/access.json", false},
    {"topic.schema.json", "topics", true},
    {"rules.schema.json", "rules", true},
    {"search.schema.json", "search/params.json", false},
};

}  // namespace

Result<void> check_profile_files(const std::string& profiles_dir) {
  namespace fs = std::filesystem;
  std::vector<std::string> problems;
  for (const auto& c : kChecked) {
    std::string schema_file = profiles_dir + "/schemas/" + c.schema;
    auto schema = json::Schema::load(schema_file);
    if (!schema) return schema.error();
    std::vector<std::string> files;
    fs::path target = fs::path(profiles_dir) / c.path;
    std::error_code ec;
    if (c.folder) {
      for (const auto& e : fs::directory_iterator(target, ec))
        if (e.path().extension() == ".json") files.push_back(e.path().string());
      if (ec) problems.push_back("cannot list " + target.string() + ": " + ec.message());
      std::sort(files.begin(), files.end());
    } else {
      files.push_back(target.string());
    }
    for (const auto& f : files) {
      if (auto r = json::validate_file(f, *schema); !r) problems.push_back(r.error().message);
    }
  }
  if (problems.empty()) return {};
  std::string msg = "profile files do not match their schemas (profiles/schemas/):";
  for (const auto& p : problems) msg += "\n" + p;
  return make_error(Errc::invalid_input, msg);
}

}  // namespace gw::config
