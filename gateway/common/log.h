#pragma once
// Structured logs: one line per event, key=value pairs, to stderr.
// Never log a message body or a patient identifier: the audit trail is where
// "who saw whom" lives. Values are quoted when they contain spaces or quotes.
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace gw::log {

enum class Level { debug = 0, info, warn, error };

void set_level(Level l);
Level level();

struct Field {
  std::string_view key;
  std::string value;
  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const char* v) : key(k), value(v) {}
  Field(std::string_view k, const std::string& v) : key(k), value(v) {}
  Field(std::string_view k, int64_t v) : key(k), value(std::to_string(v)) {}
  Field(std::string_view k, uint64_t v) : key(k), value(std::to_string(v)) {}
  Field(std::string_view k, int v) : key(k), value(std::to_string(v)) {}
  Field(std::string_view k, unsigned v) : key(k), value(std::to_string(v)) {}
  Field(std::string_view k, double v) : key(k), value(std::to_string(v)) {}
};

void write(Level l, std::string_view event, std::initializer_list<Field> fields);

inline void info(std::string_view event, std::initializer_list<Field> f = {}) { write(Level::info, event, f); }
inline void warn(std::string_view event, std::initializer_list<Field> f = {}) { write(Level::warn, event, f); }
inline void error(std::string_view event, std::initializer_list<Field> f = {}) { write(Level::error, event, f); }
inline void debug(std::string_view event, std::initializer_list<Field> f = {}) {
  if (level() <= Level::debug) write(Level::debug, event, f);
}

// While one is alive on a thread, every line that thread writes carries
// request_id=<id>: the lines of a request's handling, whatever layer writes
// them. Scopes nest (the inner one wins until it ends).
class RequestScope {
 public:
  explicit RequestScope(std::string_view request_id);
  ~RequestScope();
  RequestScope(const RequestScope&) = delete;
  RequestScope& operator=(const RequestScope&) = delete;

 private:
  std::string previous_;
};
// The id of the innermost live scope on this thread ("" outside one).
const std::string& current_request_id();

// Names the calling thread (at most 15 characters) so that top, perf and a
// core dump say which part of the gateway a thread is: gw-writer, gw-net...
void name_thread(const char* name);

}  // namespace gw::log
