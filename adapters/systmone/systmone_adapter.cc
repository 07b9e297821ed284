#include "adapters/systmone/systmone_adapter.h"

namespace gw::adapters::systmone {

Result<AdapterPtr> SystmOneAdapter::create(const std::string& profiles_dir) {
  auto maps = CodeMaps::load(profiles_dir);
  if (!maps) return maps.error();
  return AdapterPtr(new SystmOneAdapter(std::move(*maps)));
}

Result<Bundle> SystmOneAdapter::parse(std::string_view raw, IssueSink& issues) const {
  return hl7_to_fhir(raw, maps_, issues);
}

Result<std::string> SystmOneAdapter::render(const Bundle& in, IssueSink& issues) const {
  return fhir_to_hl7(in, maps_, issues);
}

}  // namespace gw::adapters::systmone
