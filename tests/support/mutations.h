#pragma once
// Deterministic input mutations for the bounded fuzz tests that run in
// gw_tests (the libFuzzer targets of tests/fuzz/ run the real thing):
// byte flips, inserted "interesting" bytes, deletions, truncation and
// splices from another corpus entry, 1 to 8 edits per input.
// (The CASH/GUM and CAMHS fuzz tests predate this and keep their own loops.)
#include <chrono>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace gw::test {

std::string mutate(std::string s, const std::vector<std::string>& corpus, std::mt19937_64& rng,
                   std::string_view interesting);

// Feeds `one` mutations of the corpus (a fixed seed, so a failure
// reproduces) until max_runs or the time budget is spent; returns the runs.
int run_mutations(const std::vector<std::string>& corpus, uint64_t seed, std::string_view interesting,
                  const std::function<void(const std::string&)>& one, int max_runs = 5000,
                  std::chrono::milliseconds budget = std::chrono::seconds(5));

}  // namespace gw::test
