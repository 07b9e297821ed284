#pragma once
// Deterministic input mutations for the bounded fuzz tests that run in
// gw_tests (the libFuzzer targets of tests/fuzz/ run the real thing):
// byte flips, inserted "interesting" bytes, deletions, truncation and
// splices from another corpus entry, 1 to 8 edits per input.
// (The CASH/GUM and CAMHS fuzz tests predate this and keep their own loops.)
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace gw::test {

std::string mutate(std::string s, const std::vector<std::string>& corpus, std::mt19937_64& rng,
                   std::string_view interesting);

}  // namespace gw::test
