#pragma once
// JSON Schema checks for the files an operator edits (access policy, topics,
// profile rules, later the config file), through RapidJSON's own validator
// (draft 4) behind the one JSON facade. Problems carry the file's line and
// column, and every problem is reported at once, so an operator fixes a file
// in one pass instead of one restart per typo.
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gateway/common/result.h"

namespace gw::json {

struct SchemaProblem {
  std::string pointer;  // JSON pointer of the offending value ("" = the whole document)
  size_t line = 0;      // 1-based position of the value, or of the key that names it
  size_t column = 0;
  std::string message;  // "unknown key 'x'", "'nurse' is not one of: gp, camhs, ..."
  std::string keyword;  // the schema keyword that failed ("additionalProperties", "enum", ...); "" for bad JSON
};

class Schema {
 public:
  // Reads and compiles a schema file; the error names the file.
  static Result<Schema> load(const std::string& schema_file);
  // From text; `name` is used in error messages.
  static Result<Schema> parse(std::string_view schema_text, const std::string& name);

  // Every problem of `text` against this schema, in the order found; empty
  // when the text conforms. Text that is not JSON is one problem at the
  // position of the parse error. At most `max_problems` are reported.
  std::vector<SchemaProblem> problems(std::string_view text, size_t max_problems = 100) const;

  Schema(Schema&&) noexcept;
  Schema& operator=(Schema&&) noexcept;
  ~Schema();

 private:
  Schema();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Where the value at `pointer` starts in `text` (valid JSON), as 1-based
// {line, column}; for an object member, where its key starts (what an
// operator looks for). {0, 0} when the text has no such value.
std::pair<size_t, size_t> position_of(std::string_view text, const std::string& pointer);
// 1-based {line, column} of a byte offset.
std::pair<size_t, size_t> line_column_of(std::string_view text, size_t offset);

// Reads `file` and checks it against `schema`. The error lists every
// problem, one per line, as "FILE:LINE:COLUMN: MESSAGE (at POINTER)".
Result<void> validate_file(const std::string& file, const Schema& schema);

// The same for text already read (`name` stands for the file in messages).
Result<void> validate_text(std::string_view text, const std::string& name, const Schema& schema);

}  // namespace gw::json
