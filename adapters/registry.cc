// Explicit registration of the legacy-format adapters. Formats arrive with
// their own issues (systmone, cashgum, camhs, cpis_upload); none is
// registered yet, and POST /ingest/{adapter} answers 404 for every name.
#include "adapters/registry.h"

namespace gw::adapters {

Registry::Registry() = default;

const Adapter* Registry::find(std::string_view format_id) const {
  for (const auto& a : adapters_)
    if (a->format_id() == format_id) return a.get();
  return nullptr;
}

void Registry::add(AdapterPtr a) { adapters_.push_back(std::move(a)); }

}  // namespace gw::adapters
