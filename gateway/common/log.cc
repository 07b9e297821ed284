#include "gateway/common/log.h"

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace gw::log {
namespace {
std::atomic<Level> g_level{Level::info};
thread_local std::string t_request_id;
std::mutex g_mu;

void append_value(std::string& out, std::string_view v) {
  bool quote = v.empty();
  for (char c : v) {
    if (c == ' ' || c == '"' || c == '=' || c == '\n' || c == '\r' || c == '\t') quote = true;
  }
  if (!quote) {
    out.append(v);
    return;
  }
  out.push_back('"');
  for (char c : v) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (c == '\n' || c == '\r') {
      out.append("\\n");
      continue;
    }
    out.push_back(c);
  }
  out.push_back('"');
}

const char* name(Level l) {
  switch (l) {
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warn: return "warn";
    case Level::error: return "error";
  }
  return "info";
}
}  // namespace

void set_level(Level l) { g_level.store(l); }
Level level() { return g_level.load(); }

void write(Level l, std::string_view event, std::initializer_list<Field> fields) {
  if (l < g_level.load()) return;
  using namespace std::chrono;
  auto now = system_clock::now();
  std::time_t t = system_clock::to_time_t(now);
  auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char ts[96];
  std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  std::string line;
  line.reserve(128);
  line.append("ts=").append(ts).append(" level=").append(name(l)).append(" event=");
  append_value(line, event);
  bool has_request_id = false;
  for (const auto& f : fields) {
    has_request_id = has_request_id || f.key == "request_id";
    line.push_back(' ');
    line.append(f.key).push_back('=');
    append_value(line, f.value);
  }
  if (!has_request_id && !t_request_id.empty()) line.append(" request_id=").append(t_request_id);
  line.push_back('\n');
  std::lock_guard lock(g_mu);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

RequestScope::RequestScope(std::string_view request_id) : previous_(std::move(t_request_id)) {
  t_request_id.assign(request_id);
}
RequestScope::~RequestScope() { t_request_id = std::move(previous_); }
const std::string& current_request_id() { return t_request_id; }

void name_thread(const char* name) { pthread_setname_np(pthread_self(), name); }

}  // namespace gw::log
