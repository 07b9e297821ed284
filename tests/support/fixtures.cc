#include "tests/support/fixtures.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "gateway/identity/nhs_number.h"

namespace gw::test {

std::string fixture(const std::string& relative, const std::map<std::string, std::string>& vars) {
  std::string path = std::string(GW_SOURCE_DIR) + "/tests/fixtures/" + relative;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    ADD_FAILURE() << "missing fixture " << path;
    return {};
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  for (const auto& [k, v] : vars) {
    std::string key = "{{" + k + "}}";
    for (size_t pos; (pos = text.find(key)) != std::string::npos;) text.replace(pos, key.size(), v);
  }
  if (text.find("{{") != std::string::npos) ADD_FAILURE() << "unfilled placeholder in " << relative;
  return text;
}

std::string nhs_number_for(uint32_t seed) {
  // Each seed owns 16 candidates, so different seeds never give the same number.
  for (uint32_t k = 0;; ++k) {
    char nine[10];
    std::snprintf(nine, sizeof nine, "9%08u", (seed * 16u + k) % 100000000u);
    int check = identity::nhs_check_digit(nine);
    if (check <= 9) return std::string(nine) + static_cast<char>('0' + check);
  }
}

}  // namespace gw::test
