#pragma once
// Order statistics for the load generators in tests/bench/.
#include <algorithm>
#include <cstddef>
#include <vector>

namespace gw::test {

// The p-quantile (0..1) of v by nearest rank below; 0 for an empty v.
// Reorders v (nth_element), which is why it takes it by reference.
inline double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  size_t k = static_cast<size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
  return v[k];
}

inline double median(std::vector<double> v) { return percentile(v, 0.5); }

}  // namespace gw::test
