#include "gateway/common/text_file.h"

#include <fstream>
#include <sstream>

namespace gw {

Result<std::string> read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(Errc::invalid_input, "cannot read " + path);
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return make_error(Errc::invalid_input, "cannot read " + path);
  return text.str();
}

}  // namespace gw
