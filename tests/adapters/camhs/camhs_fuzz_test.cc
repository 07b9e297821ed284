// Runs the libFuzzer entry point of tests/fuzz/camhs_fuzz.cc in every CI run:
// the fixtures, then deterministic mutations of them (byte flips, truncation,
// duplicated and deleted spans, inserted XML syntax) for at most 5 seconds.
#define GW_FUZZ_NO_ENTRY_POINT
#include "../../fuzz/camhs_fuzz.cc"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

namespace {

namespace fs = std::filesystem;

TEST(CamhsFuzz, FixturesAndMutationsNeverCrash) {
  std::vector<std::string> corpus;
  for (const char* dir : {"/tests/fixtures/camhs", "/tests/fixtures/camhs/broken"})
    for (const auto& e : fs::directory_iterator(std::string(GW_SOURCE_DIR) + dir))
      if (e.path().extension() == ".xml") {
        std::ifstream in(e.path(), std::ios::binary);
        std::stringstream ss;
        ss << in.rdbuf();
        corpus.push_back(ss.str());
      }
  ASSERT_GE(corpus.size(), 15u);
  for (const auto& c : corpus) gw::fuzz::camhs_one_input(reinterpret_cast<const uint8_t*>(c.data()), c.size());
  static const char* kTokens[] = {"<", ">", "/>", "</Patient>", "<Patient LocalPatientID=\"X\">", "&amp;", "&#0;",
                                  "\"", "'", "<![CDATA[", "]]>", "<!--", "-->", "\xff\xfe", "\xc3", "=",
                                  "<Indicator Seq=\"1\" Text=\"t\"/>", "xmlns:a=\"u\"", "<?pi?>", "&lt;"};
  std::mt19937 rng(12345);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  int runs = 0;
  while (std::chrono::steady_clock::now() < deadline && runs < 20000) {
    std::string s = corpus[rng() % corpus.size()];
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < edits && !s.empty(); ++k) {
      std::size_t pos = rng() % s.size();
      switch (rng() % 5) {
        case 0: s[pos] = static_cast<char>(rng()); break;
        case 1: s.resize(pos); break;
        case 2: s.erase(pos, 1 + rng() % 32); break;
        case 3: s.insert(pos, s.substr(rng() % s.size(), 1 + rng() % 64)); break;
        default: s.insert(pos, kTokens[rng() % (sizeof kTokens / sizeof *kTokens)]); break;
      }
    }
    gw::fuzz::camhs_one_input(reinterpret_cast<const uint8_t*>(s.data()), s.size());
    ++runs;
  }
  EXPECT_GT(runs, 100) << "the fuzz loop must actually run";
}

}  // namespace
