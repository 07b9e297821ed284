#pragma once
// Order statistics for the load generators in tests/bench/.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <thread>
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

struct RunResult {
  double rps = 0, p50_ms = 0, p99_ms = 0;
  uint64_t ok = 0, errors = 0;
};

// The timed window every connection-per-thread load generator shares: the
// worker threads connect, wait_for_start(), then loop until stopping(),
// recording each good answer's latency (or an error); time() opens the
// window after the workers had 200 ms to connect, closes it after `seconds`,
// joins them and summarises what they recorded.
class LoadRun {
 public:
  explicit LoadRun(int workers) : lat_(static_cast<size_t>(workers)) {}
  void wait_for_start() const {
    while (!go_.load()) std::this_thread::yield();
  }
  bool stopping() const { return stop_.load(); }
  void record(int worker, double ms) { lat_[static_cast<size_t>(worker)].push_back(ms); }
  void error() { ++errors_; }

  RunResult time(std::vector<std::thread>& workers, int seconds) {
    using Clock = std::chrono::steady_clock;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    auto start = Clock::now();
    go_ = true;
    std::this_thread::sleep_for(std::chrono::seconds(seconds));
    stop_ = true;
    for (auto& t : workers) t.join();
    double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    std::vector<double> all;
    for (auto& l : lat_) all.insert(all.end(), l.begin(), l.end());
    RunResult r;
    r.ok = all.size();
    r.errors = errors_.load();
    r.rps = static_cast<double>(all.size()) / elapsed;
    r.p50_ms = percentile(all, 0.5);
    r.p99_ms = percentile(all, 0.99);
    return r;
  }

 private:
  std::vector<std::vector<double>> lat_;  // one vector per worker: no lock on the hot path
  std::atomic<uint64_t> errors_{0};
  std::atomic<bool> go_{false}, stop_{false};
};

}  // namespace gw::test
