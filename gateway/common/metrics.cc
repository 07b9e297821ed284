#include "gateway/common/metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>

namespace gw::metrics {

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), buckets_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0);
}

void Histogram::observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_micros_.fetch_add(static_cast<uint64_t>(std::llround(v * 1e6)), std::memory_order_relaxed);
}

std::vector<uint64_t> Histogram::cumulative() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  uint64_t acc = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    acc += buckets_[i].load(std::memory_order_relaxed);
    out[i] = acc;
  }
  return out;
}

double Histogram::sum() const { return static_cast<double>(sum_micros_.load()) / 1e6; }
uint64_t Histogram::count() const { return count_.load(); }

std::vector<double> latency_buckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

Counter& Registry::counter(const std::string& name, const std::string& help, const std::string& labels) {
  std::lock_guard lock(mu_);
  auto& f = families_[name];
  f.help = help;
  f.type = "counter";
  auto& c = f.counters[labels];
  if (!c) c = std::make_unique<Counter>();
  return *c;
}

Gauge& Registry::gauge(const std::string& name, const std::string& help, const std::string& labels) {
  std::lock_guard lock(mu_);
  auto& f = families_[name];
  f.help = help;
  f.type = "gauge";
  auto& g = f.gauges[labels];
  if (!g) g = std::make_unique<Gauge>();
  return *g;
}

Histogram& Registry::histogram(const std::string& name, const std::string& help, std::vector<double> bounds,
                               const std::string& labels) {
  std::lock_guard lock(mu_);
  auto& f = families_[name];
  f.help = help;
  f.type = "histogram";
  auto& h = f.histograms[labels];
  if (!h) h = std::make_unique<Histogram>(std::move(bounds));
  return *h;
}

namespace {
// The shortest text that reads back as the same double, in %g style (fixed
// unless the exponent is below -4 or large): a bound configured
// as 0.00025 is printed le="0.00025", not le="0.00025000000000000001".
std::string fmt_double(double d) {
  if (std::isinf(d)) return d > 0 ? "+Inf" : "-Inf";
  if (std::isnan(d)) return "NaN";
  char b[64];
  auto [end, ec] = std::to_chars(b, b + sizeof b, d, std::chars_format::general);
  if (ec != std::errc()) return "NaN";
  return std::string(b, end);
}

// The process_* series every Prometheus client library exports (same names
// and meaning), read from /proc/self on each scrape.
void render_process(std::string& out) {
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  auto series = [&](const char* name, const char* type, const char* help, double v) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " +
           fmt_double(v) + "\n";
  };
  std::ifstream stat_file("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  // Fields after the command name, which is in parentheses and may hold spaces.
  size_t close = stat.rfind(')');
  if (close != std::string::npos && ticks > 0) {
    std::istringstream in(stat.substr(close + 2));
    std::vector<std::string> f;  // f[0] is field 3 (state)
    for (std::string x; in >> x;) f.push_back(x);
    auto field = [&](size_t n) { return n >= 3 && n - 3 < f.size() ? std::strtod(f[n - 3].c_str(), nullptr) : 0.0; };
    series("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.",
           (field(14) + field(15)) / ticks);
    series("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", field(24) * page);
    series("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", field(23));
    series("process_threads", "gauge", "Number of OS threads in the process.", field(20));
    double btime = 0;
    std::ifstream proc_stat("/proc/stat");
    for (std::string line; std::getline(proc_stat, line);)
      if (line.rfind("btime ", 0) == 0) btime = std::strtod(line.c_str() + 6, nullptr);
    if (btime > 0)
      series("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.",
             btime + field(22) / ticks);
  }
  if (DIR* d = opendir("/proc/self/fd")) {
    double n = 0;
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.') ++n;
    closedir(d);
    series("process_open_fds", "gauge", "Number of open file descriptors.", n - 1);  // less the one reading it
  }
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
    series("process_max_fds", "gauge", "Maximum number of open file descriptors.", static_cast<double>(rl.rlim_cur));
}

std::string with_labels(const std::string& name, const std::string& labels, const std::string& extra = "") {
  std::string l = labels;
  if (!extra.empty()) l = l.empty() ? extra : l + "," + extra;
  return l.empty() ? name : name + "{" + l + "}";
}
}  // namespace

std::string Registry::render() const {
  std::lock_guard lock(mu_);
  std::string out;
  for (const auto& [name, f] : families_) {
    out += "# HELP " + name + " " + f.help + "\n# TYPE " + name + " " + f.type + "\n";
    for (const auto& [l, c] : f.counters) out += with_labels(name, l) + " " + std::to_string(c->value()) + "\n";
    for (const auto& [l, g] : f.gauges) out += with_labels(name, l) + " " + std::to_string(g->value()) + "\n";
    for (const auto& [l, h] : f.histograms) {
      auto cum = h->cumulative();
      auto b = h->bounds();
      for (size_t i = 0; i < b.size(); ++i)
        out += with_labels(name + "_bucket", l, "le=\"" + fmt_double(b[i]) + "\"") + " " + std::to_string(cum[i]) + "\n";
      out += with_labels(name + "_bucket", l, "le=\"+Inf\"") + " " + std::to_string(cum.back()) + "\n";
      out += with_labels(name + "_sum", l) + " " + fmt_double(h->sum()) + "\n";
      out += with_labels(name + "_count", l) + " " + std::to_string(h->count()) + "\n";
    }
  }
  render_process(out);
  out += "# HELP cpis_gateway_build_info The version of this binary (always 1).\n"
         "# TYPE cpis_gateway_build_info gauge\n"
         "cpis_gateway_build_info{version=\"" GW_VERSION "\"} 1\n";
  return out;
}

}  // namespace gw::metrics
