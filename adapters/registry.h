#pragma once
#include <memory>
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

}  // namespace gw::adapters
