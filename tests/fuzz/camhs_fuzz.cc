// libFuzzer target for the CAMHS XML adapter: any byte string must give a
// Bundle or an Error, never a crash, a hang or a leak, and a Bundle must be
// JSON. Build with clang -fsanitize=fuzzer,address (no fuzz build in CMake
// yet); tests/adapters/camhs/camhs_fuzz_test.cc runs the same entry point over
// the fixtures and mutations of them for a bounded time in every CI run.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string_view>

#include "adapters/camhs/camhs_adapter.h"
#include "gateway/common/json.h"

#ifndef GW_SOURCE_DIR
#define GW_SOURCE_DIR "."
#endif

namespace gw::fuzz {

inline int camhs_one_input(const uint8_t* data, std::size_t size) {
  static const adapters::AdapterPtr adapter = [] {
    auto a = adapters::camhs::CamhsAdapter::create(GW_SOURCE_DIR "/profiles");
    if (!a) std::abort();
    return std::move(*a);
  }();
  IssueSink issues;
  auto b = adapter->parse(std::string_view(reinterpret_cast<const char*>(data), size), issues);
  if (b && !json::parse(b->json)) std::abort();
  if (b) {
    IssueSink r;
    (void)adapter->render(*b, r);
  }
  return 0;
}

}  // namespace gw::fuzz

#ifndef GW_FUZZ_NO_ENTRY_POINT
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  return gw::fuzz::camhs_one_input(data, size);
}
#endif
