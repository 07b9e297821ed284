// The SystmOne adapter end to end (charset, ER7, mapping to FHIR JSON) on
// arbitrary input: it may refuse, never crash.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "adapters/registry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static std::unique_ptr<gw::adapters::Registry> registry = [] {
    auto r = gw::adapters::make_registry(std::string(GW_SOURCE_DIR) + "/profiles");
    if (!r) std::abort();
    return std::move(*r);
  }();
  const gw::adapters::Adapter* a = registry->find("systmone");
  gw::IssueSink issues;
  (void)a->parse(std::string_view(reinterpret_cast<const char*>(data), size), issues);
  return 0;
}
