#pragma once
// Reading the files an operator edits (profiles, policy tables, the keys
// beside them): the whole text, or an error naming the file; and loading one
// through its parser with every error the parser gives prefixed by the
// file's path, so start-up says which file to fix.
#include <string>
#include <string_view>
#include <utility>

#include "gateway/common/result.h"

namespace gw {

// The file's bytes; an invalid_input error "cannot read PATH" otherwise.
Result<std::string> read_text_file(const std::string& path);

// parse(text) -> Result<T>, with "PATH: " before any error it returns.
template <typename Parse>
auto load_text_file(const std::string& path, Parse&& parse) -> decltype(parse(std::string_view{})) {
  auto text = read_text_file(path);
  if (!text) return text.error();
  auto parsed = std::forward<Parse>(parse)(std::string_view(*text));
  if (!parsed) {
    Error e = parsed.error();
    e.message = path + ": " + e.message;
    return e;
  }
  return parsed;
}

}  // namespace gw
