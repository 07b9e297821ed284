#include "tests/support/mutations.h"

namespace gw::test {

std::string mutate(std::string s, const std::vector<std::string>& corpus, std::mt19937_64& rng,
                   std::string_view interesting) {
  int edits = 1 + static_cast<int>(rng() % 8);
  for (int k = 0; k < edits; ++k) {
    std::size_t pos = s.empty() ? 0 : rng() % s.size();
    switch (rng() % 5) {
      case 0:
        if (!s.empty()) s[pos] = static_cast<char>(rng());
        break;
      case 1:
        if (!interesting.empty()) s.insert(pos, 1, interesting[rng() % interesting.size()]);
        break;
      case 2:
        if (!s.empty()) s.erase(pos, 1 + rng() % 8);
        break;
      case 3:
        s.resize(pos);
        break;
      default: {
        const std::string& o = corpus[rng() % corpus.size()];
        if (!o.empty()) s.insert(pos, o.substr(rng() % o.size(), 1 + rng() % 80));
        break;
      }
    }
  }
  return s;
}

int run_mutations(const std::vector<std::string>& corpus, uint64_t seed, std::string_view interesting,
                  const std::function<void(const std::string&)>& one, int max_runs, std::chrono::milliseconds budget) {
  std::mt19937_64 rng(seed);
  auto start = std::chrono::steady_clock::now();
  int runs = 0;
  while (runs < max_runs && std::chrono::steady_clock::now() - start < budget) {
    one(mutate(corpus[rng() % corpus.size()], corpus, rng, interesting));
    ++runs;
  }
  return runs;
}

}  // namespace gw::test
