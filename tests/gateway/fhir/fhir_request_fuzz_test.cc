// Runs the libFuzzer entry point of tests/fuzz/fhir_request_fuzz.cc over the
// FHIR fixtures with search queries, and mutations of them, for at most 5
// seconds. The target aborts on a broken invariant, which fails the test.
#define GW_FUZZ_NO_ENTRY
#include "tests/fuzz/fhir_request_fuzz.cc"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/support/mutations.h"

namespace gw::fuzz {
namespace {

TEST(FhirRequestFuzz, FixturesQueriesAndMutationsWithinFiveSeconds) {
  const char* queries[] = {
      "identifier=https://fhir.nhs.uk/Id/nhs-number%7C9990237573",
      "patient:identifier=https://fhir.nhs.uk/Id/nhs-number|9990237573&_count=5",
      "_id=a,b&_lastUpdated=ge2026-01-01&_lastUpdated=lt2026-12-31T10:00:00Z",
      "identifier=a\\|b%7Cc\\,d&_include=Observation:patient&_revinclude=Encounter:subject",
      "subject=Patient/1&_offset=20&_count=0",
  };
  std::vector<std::string> corpus;
  size_t q = 0;
  for (const auto& e : std::filesystem::directory_iterator(GW_SOURCE_DIR "/tests/fixtures/fhir")) {
    std::ifstream in(e.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    corpus.push_back(std::string(queries[q++ % std::size(queries)]) + "\n" + ss.str());
  }
  corpus.push_back(std::string(200, '[') + "\n" + std::string(5000, '[') + std::string(5000, ']'));
  ASSERT_GE(corpus.size(), 5u);
  for (const auto& c : corpus) fhir_request_one_input(reinterpret_cast<const uint8_t*>(c.data()), c.size());
  const char kInteresting[] = "{}[]\",:|\\%&=?\n\0\xEF\x80\xFF 9";
  const std::string interesting(kInteresting, sizeof kInteresting - 1);  // the NUL inside included
  int runs = test::run_mutations(corpus, 20261207, interesting, [](const std::string& s) {
    fhir_request_one_input(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  });  // fixed seed: a failure reproduces
  EXPECT_GE(runs, 200) << "too few mutated inputs ran in 5 s";
}

}  // namespace
}  // namespace gw::fuzz
