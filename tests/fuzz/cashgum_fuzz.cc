// libFuzzer target for the CASH/GUM CSV adapter. Build with
//   cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DGW_BUILD_FUZZ=ON
//   cmake --build build-fuzz -j2 --target cashgum_fuzz
//   build-fuzz/bin/cashgum_fuzz -max_total_time=60 tests/fixtures/cashgum
// The same entry point runs in gw_tests (tests/adapters/cashgum/cashgum_fuzz_test.cc)
// over the fixtures and mutations of them for a bounded time, so CI exercises
// it without clang. Invariants, beyond not crashing: a rejected row has an
// error and no entries; every entry is JSON with a fullUrl and a conditional PUT;
// no issue repeats a field's value.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "adapters/cashgum/cashgum_adapter.h"
#include "gateway/common/json.h"

namespace gw::fuzz {

inline const adapters::cashgum::CashGumAdapter& cashgum_adapter() {
  static const std::unique_ptr<adapters::Adapter> a = [] {
    const char* dir = std::getenv("GW_PROFILES_DIR");
    auto r = adapters::cashgum::CashGumAdapter::create(dir ? dir : GW_SOURCE_DIR "/profiles");
    if (!r) std::abort();
    return std::move(*r);
  }();
  return static_cast<const adapters::cashgum::CashGumAdapter&>(*a);
}

inline void check(bool ok) {
  if (!ok) std::abort();
}

inline int cashgum_one_input(const uint8_t* data, std::size_t size) {
  using namespace adapters::cashgum;
  std::string_view raw(reinterpret_cast<const char*>(data), size);
  auto r = cashgum_adapter().parse_rows(raw);
  if (!r) return 0;
  for (const auto& row : r->rows) {
    bool error = false;
    for (const auto& i : row.issues) {
      error |= i.severity == Severity::error;
      check(i.expression.rfind("row " + std::to_string(row.row), 0) == 0);
    }
    check(error == (row.status == RowStatus::rejected));
    check(row.status != RowStatus::rejected || row.entries.empty());
    for (const auto& e : row.entries) {
      auto doc = json::parse(e.json);
      check(doc.has_value());
      check(json::get_string(*doc, "fullUrl").value_or("") == e.full_url);
      const json::Value* req = json::member(*doc, "request");
      check(req != nullptr && json::get_string(*req, "method").value_or("") == "PUT");
    }
  }
  check(json::parse(CashGumAdapter::bundle_of(*r).json).has_value());
  return 0;
}

}  // namespace gw::fuzz

#ifndef GW_FUZZ_NO_ENTRY
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  return gw::fuzz::cashgum_one_input(data, size);
}
#endif
