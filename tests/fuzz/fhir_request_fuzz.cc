// libFuzzer target for the HTTP/FHIR request path behind the listener:
// the JSON body parse (with its nesting bound), profile validation of the
// resource, and search-parameter parsing of the query. Build and run with
// tests/fuzz/run.sh (or: build-fuzz/bin/fhir_request_fuzz -max_total_time=60 CORPUS).
// The same entry point runs in gw_tests (tests/gateway/fhir/fhir_request_fuzz_test.cc)
// over the FHIR fixtures and mutations of them for a bounded time.
//
// Input: the first line is the query string (as after '?'), the rest the body.
// Invariants, beyond not crashing or hanging: every error and issue says
// something and names where; a lenient search never fails where a strict one
// succeeds; an identifier token read from a query reads back the same after
// token_query_value() escapes it again.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "gateway/common/issues.h"
#include "gateway/common/json.h"
#include "gateway/model/search_params.h"
#include "gateway/write/validation.h"

namespace gw::fuzz {

inline void fhir_check(bool ok) {
  if (!ok) std::abort();
}

inline const write::Validator& fhir_validator() {
  static const write::Validator v = [] {
    const char* dir = std::getenv("GW_PROFILES_DIR");
    auto r = write::Validator::load(dir ? dir : GW_SOURCE_DIR "/profiles");
    if (!r) std::abort();
    return std::move(*r);
  }();
  return v;
}

inline void fhir_search_round_trip(const model::TokenValue& t) {
  std::string q = "identifier=" + model::token_query_value(t.system, t.value);
  auto again = model::parse_search("Patient", q, true);
  fhir_check(again.has_value());
  fhir_check(again->identifier.size() == 1 && again->identifier[0].size() == 1);
  const auto& back = again->identifier[0][0];
  fhir_check(back.value == t.value);
  fhir_check(!t.has_system || back.system == t.system);
}

inline int fhir_request_one_input(const uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  size_t nl = input.find('\n');
  std::string_view query = input.substr(0, nl);
  std::string_view body = nl == std::string_view::npos ? std::string_view() : input.substr(nl + 1);

  auto doc = json::parse(body);
  if (!doc) {
    fhir_check(doc.error().code == Errc::invalid_input && !doc.error().message.empty());
  } else if (doc->IsObject()) {
    std::string type(json::get_string(*doc, "resourceType").value_or("Patient"));
    IssueSink sink;
    fhir_validator().validate(*doc, sink);
    for (const auto& i : sink.issues()) fhir_check(!i.message.empty() && !i.code.empty());
    (void)json::to_string(*doc);
    for (bool strict : {true, false}) {
      auto s = model::parse_search(type, query, strict);
      if (!s) {
        fhir_check(!s.error().message.empty());
        continue;
      }
      fhir_check(s->count >= 0 && s->offset >= 0);
    }
  }

  auto strict = model::parse_search("Patient", query, true);
  auto lenient = model::parse_search("Patient", query, false);
  if (strict) fhir_check(lenient.has_value());
  if (!lenient) {
    fhir_check(lenient.error().code == Errc::invalid_input && !lenient.error().message.empty());
    return 0;
  }
  for (const auto& group : lenient->identifier)
    for (const auto& t : group) fhir_search_round_trip(t);
  for (const auto& group : lenient->patient_identifier)
    for (const auto& t : group) fhir_search_round_trip(t);
  return 0;
}

}  // namespace gw::fuzz

#ifndef GW_FUZZ_NO_ENTRY
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  return gw::fuzz::fhir_request_one_input(data, size);
}
#endif
