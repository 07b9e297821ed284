#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/adapter.h"

namespace gw::adapters {

class Registry {
 public:
  Registry();
  void add(AdapterPtr a);
  const Adapter* find(std::string_view format_id) const;

 private:
  std::vector<AdapterPtr> adapters_;
};

// Adds every built-in format, each loading its tables from profiles_dir; the
// first adapter that cannot load stops start-up with its file and key.
Result<void> add_builtin_adapters(Registry& registry, const std::string& profiles_dir);
// A registry holding the built-in formats.
Result<std::unique_ptr<Registry>> make_registry(const std::string& profiles_dir);

}  // namespace gw::adapters
