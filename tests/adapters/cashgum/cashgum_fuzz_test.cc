// Runs the libFuzzer entry point of tests/fuzz/cashgum_fuzz.cc over every
// fixture and a few thousand mutations of them (byte flips, inserted quotes,
// commas, line breaks, NULs and high bytes, truncations, spliced rows), for at
// most 5 seconds. The target aborts on a broken invariant, which fails the test.
#define GW_FUZZ_NO_ENTRY
#include "tests/fuzz/cashgum_fuzz.cc"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <vector>

namespace gw::fuzz {
namespace {

TEST(CashGumFuzz, FixturesAndMutationsWithinFiveSeconds) {
  namespace fs = std::filesystem;
  std::vector<std::string> corpus;
  for (const auto& e : fs::directory_iterator(GW_SOURCE_DIR "/tests/fixtures/cashgum")) {
    if (e.path().extension() != ".csv") continue;
    std::ifstream in(e.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    corpus.push_back(ss.str());
  }
  ASSERT_FALSE(corpus.empty());
  std::sort(corpus.begin(), corpus.end());
  for (const auto& c : corpus) cashgum_one_input(reinterpret_cast<const uint8_t*>(c.data()), c.size());

  std::mt19937_64 rng(20261102);  // fixed seed: a failure reproduces
  const char kInteresting[] = {'"', ',', '\r', '\n', ';', '\0', '\xEF', '\xBB', '\xBF', '\x80', '\xFF', '/', '-', '9', ' '};
  auto start = std::chrono::steady_clock::now();
  int runs = 0;
  while (runs < 5000 && std::chrono::steady_clock::now() - start < std::chrono::seconds(5)) {
    std::string s = corpus[rng() % corpus.size()];
    int edits = 1 + static_cast<int>(rng() % 8);
    for (int k = 0; k < edits; ++k) {
      std::size_t pos = s.empty() ? 0 : rng() % s.size();
      switch (rng() % 5) {
        case 0: if (!s.empty()) s[pos] = static_cast<char>(rng()); break;
        case 1: s.insert(pos, 1, kInteresting[rng() % sizeof kInteresting]); break;
        case 2: if (!s.empty()) s.erase(pos, 1 + rng() % 8); break;
        case 3: s.resize(pos); break;
        case 4: {
          const std::string& o = corpus[rng() % corpus.size()];
          if (!o.empty()) {
            std::size_t from = rng() % o.size();
            s.insert(pos, o.substr(from, 1 + rng() % 80));
          }
          break;
        }
      }
    }
    cashgum_one_input(reinterpret_cast<const uint8_t*>(s.data()), s.size());
    ++runs;
  }
  EXPECT_GE(runs, 500) << "too few mutated inputs ran in 5 s";
  RecordProperty("mutated_inputs", runs);
}

}  // namespace
}  // namespace gw::fuzz
