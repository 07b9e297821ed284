// libFuzzer target for the CP-IS upload adapter. Build with
//   cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DGW_BUILD_FUZZ=ON
//   cmake --build build-fuzz -j2 --target cpis_upload_fuzz
//   build-fuzz/bin/cpis_upload_fuzz -max_total_time=60 tests/fixtures/cpis
// The same entry point runs in gw_tests (tests/adapters/cpis/cpis_upload_fuzz_test.cc)
// over the fixtures and mutations of them for a bounded time. Invariants,
// beyond not crashing: an accepted record has both entries as JSON (a
// conditional create and a conditional update); a rejected one has none; the
// answer is JSON with one issue per record plus the summary and never holds
// an NHS number the file carried.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "adapters/cpis/cpis_upload_adapter.h"
#include "gateway/common/json.h"

namespace gw::fuzz {

inline void cpis_check(bool ok) {
  if (!ok) std::abort();
}

inline int cpis_upload_one_input(const uint8_t* data, std::size_t size) {
  using namespace adapters::cpis;
  static const auto adapter = std::move(*CpisUploadAdapter::create());
  const auto& a = static_cast<const CpisUploadAdapter&>(*adapter);
  std::string_view raw(reinterpret_cast<const char*>(data), size);
  auto r = a.parse_records(raw, UploadContext{"LA372", "2026-11-27"});
  if (!r) return 0;
  for (const auto& rec : r->records) {
    if (!rec.accepted()) {
      cpis_check(rec.patient.json.empty() && rec.plan.json.empty());
      continue;
    }
    auto p = json::parse(rec.patient.json);
    auto c = json::parse(rec.plan.json);
    cpis_check(p.has_value() && c.has_value());
    cpis_check(json::get_string((*p)["request"], "method").value_or("") == "POST");
    cpis_check(json::get_string((*c)["request"], "method").value_or("") == "PUT");
  }
  std::string answer = CpisUploadAdapter::outcome(r->records, Totals{});
  auto oo = json::parse(answer);
  cpis_check(oo.has_value() && (*oo)["issue"].Size() == r->records.size() + 1);
  // The answer names each record by the authority's own LocalChildID (CPIS.md
  // section 1), so a number the file itself put in a LocalChildID may appear;
  // no NHS number may appear otherwise.
  auto echoed = [&](const std::string& nhs) {
    for (const auto& other : r->records)
      if (other.local_child_id.find(nhs) != std::string::npos) return true;
    return false;
  };
  for (const auto& rec : r->records)
    cpis_check(rec.nhs_number.empty() || echoed(rec.nhs_number) || answer.find(rec.nhs_number) == std::string::npos);
  cpis_check(json::parse(CpisUploadAdapter::bundle_of(r->records).json).has_value());
  return 0;
}

}  // namespace gw::fuzz

#ifndef GW_FUZZ_NO_ENTRY
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  return gw::fuzz::cpis_upload_one_input(data, size);
}
#endif
