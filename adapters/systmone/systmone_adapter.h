#pragma once
// The SystmOne-like HL7 v2 adapter (formats/README.md §1a, FORMAT.md beside
// this file): one ER7 message -> a FHIR transaction Bundle, and FHIR -> ER7
// (ADT^A31, ADT^A08, ORU^R01) for the GP record. Pure: no I/O, no state
// after construction beyond the code maps, so one instance serves every thread.
#include <string>
#include <string_view>

#include "adapters/adapter.h"
#include "adapters/systmone/code_maps.h"

namespace gw::adapters::systmone {

// OBX-3 codes (local) of the local authority's numbers sent with a plan.
inline constexpr std::string_view kEmergencyDutyPhoneCode = "CPIS-EDT";
inline constexpr std::string_view kOfficeHoursPhoneCode = "CPIS-OHT";

class SystmOneAdapter final : public Adapter {
 public:
  // Loads profiles_dir/codemaps/*.json and profiles_dir/adapters/systmone.json;
  // the error names the file and the key when they are unusable.
  static Result<AdapterPtr> create(const std::string& profiles_dir);

  std::string_view format_id() const override { return "systmone"; }
  Result<Bundle> parse(std::string_view raw, IssueSink& issues) const override;
  Result<std::string> render(const Bundle& in, IssueSink& issues) const override;

  const CodeMaps& code_maps() const { return maps_; }

 private:
  explicit SystmOneAdapter(CodeMaps maps) : maps_(std::move(maps)) {}
  CodeMaps maps_;
};

// The two directions as plain functions (the adapter is a thin shell over them).
Result<Bundle> hl7_to_fhir(std::string_view raw, const CodeMaps& maps, IssueSink& issues);
Result<std::string> fhir_to_hl7(const Bundle& in, const CodeMaps& maps, IssueSink& issues);

}  // namespace gw::adapters::systmone
