// Explicit registration of the legacy-format adapters (no static-initialiser
// tricks: what is registered is what this file says). Formats arrive with
// their own issues.
#include "adapters/registry.h"

#include "adapters/cashgum/cashgum_adapter.h"
#include "adapters/camhs/camhs_adapter.h"
#include "adapters/cpis/cpis_upload_adapter.h"
#include "adapters/systmone/systmone_adapter.h"

namespace gw::adapters {

Registry::Registry() = default;

const Adapter* Registry::find(std::string_view format_id) const {
  for (const auto& a : adapters_)
    if (a->format_id() == format_id) return a.get();
  return nullptr;
}

void Registry::add(AdapterPtr a) { adapters_.push_back(std::move(a)); }

Result<void> add_builtin_adapters(Registry& registry, const std::string& profiles_dir) {
  auto s1 = systmone::SystmOneAdapter::create(profiles_dir);
  if (!s1) return s1.error();
  registry.add(std::move(*s1));
  auto cg = cashgum::CashGumAdapter::create(profiles_dir);
  if (!cg) return cg.error();
  registry.add(std::move(*cg));
  auto camhs = camhs::CamhsAdapter::create(profiles_dir);
  if (!camhs) return camhs.error();
  registry.add(std::move(*camhs));
  auto cpis = cpis::CpisUploadAdapter::create();
  if (!cpis) return cpis.error();
  registry.add(std::move(*cpis));
  return {};
}

Result<std::unique_ptr<Registry>> make_registry(const std::string& profiles_dir) {
  auto r = std::make_unique<Registry>();
  auto ok = add_builtin_adapters(*r, profiles_dir);
  if (!ok) return ok.error();
  return r;
}

}  // namespace gw::adapters
