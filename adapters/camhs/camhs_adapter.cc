#include "adapters/camhs/camhs_adapter.h"

namespace gw::adapters::camhs {

Result<AdapterPtr> CamhsAdapter::create(const std::string& profiles_dir) {
  auto t = Tables::load(profiles_dir);
  if (!t) return t.error();
  auto s = Schema::load(profiles_dir + "/xsd/camhs.xsd");
  if (!s) return s.error();
  return AdapterPtr(new CamhsAdapter(std::move(*t), std::move(*s)));
}

Result<Bundle> CamhsAdapter::parse(std::string_view raw, IssueSink& issues) const {
  return xml_to_fhir(raw, tables_, *schema_, issues);
}

Result<std::string> CamhsAdapter::render(const Bundle& in, IssueSink& issues) const {
  return fhir_to_xml(in, tables_, *schema_, issues);
}

}  // namespace gw::adapters::camhs
