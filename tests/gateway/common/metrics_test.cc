// /metrics text: bucket bounds printed as configured, the process_* series
// every Prometheus client exports, and the build-info series.
#include "gateway/common/metrics.h"

#include <gtest/gtest.h>

#include <ctime>
#include <regex>
#include <string>

namespace gw::metrics {
namespace {

// The value of an unlabelled series, or -1 when it is not in the text.
double value_of(const std::string& text, const std::string& name) {
  std::smatch m;
  if (!std::regex_search(text, m, std::regex("\n" + name + " ([0-9.e+-]+)\n"))) return -1;
  return std::stod(m[1].str());
}

TEST(Metrics, BucketBoundsArePrintedAsWritten) {
  Registry r;
  r.histogram("gw_test_seconds", "test", latency_buckets()).observe(0.0003);
  r.histogram("gw_test_units", "test", {1e-7, 0.1, 0.2, 0.3, 1000000}).observe(0.15);
  std::string text = r.render();
  for (const char* le : {"0.0001", "0.00025", "0.0005", "0.0025", "0.025", "0.25", "2.5", "1", "10"})
    EXPECT_NE(text.find("gw_test_seconds_bucket{le=\"" + std::string(le) + "\"}"), std::string::npos) << le << "\n" << text;
  for (const char* le : {"0.1", "0.2", "0.3", "1e-07", "1e+06"})
    EXPECT_NE(text.find("gw_test_units_bucket{le=\"" + std::string(le) + "\"}"), std::string::npos) << le << "\n" << text;
  EXPECT_EQ(text.find("000000000"), std::string::npos) << text;
  EXPECT_NE(text.find("gw_test_seconds_bucket{le=\"0.0005\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("gw_test_seconds_sum 0.0003\n"), std::string::npos) << text;
}

TEST(Metrics, ProcessAndBuildInfoSeries) {
  Registry r;
  std::string text = r.render();
  EXPECT_NE(text.find("# TYPE process_cpu_seconds_total counter\n"), std::string::npos) << text;
  EXPECT_GE(value_of(text, "process_cpu_seconds_total"), 0) << text;
  EXPECT_GT(value_of(text, "process_resident_memory_bytes"), 1e5) << text;
  EXPECT_GT(value_of(text, "process_virtual_memory_bytes"), value_of(text, "process_resident_memory_bytes")) << text;
  EXPECT_GE(value_of(text, "process_open_fds"), 3) << text;  // at least stdin, stdout, stderr
  EXPECT_GT(value_of(text, "process_max_fds"), value_of(text, "process_open_fds")) << text;
  EXPECT_GE(value_of(text, "process_threads"), 1) << text;
  double start = value_of(text, "process_start_time_seconds");
  double now = static_cast<double>(std::time(nullptr));
  EXPECT_LE(start, now + 1) << text;
  EXPECT_GT(start, now - 24 * 3600) << "a test process started over a day ago?\n" << text;
  EXPECT_NE(text.find("# TYPE cpis_gateway_build_info gauge\ncpis_gateway_build_info{version=\"" GW_VERSION "\"} 1\n"),
            std::string::npos)
      << text;
}

}  // namespace
}  // namespace gw::metrics
