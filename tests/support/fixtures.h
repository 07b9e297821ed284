#pragma once
// Fixture files (tests/fixtures/...) with {{name}} placeholders, and
// generators for test data that must be valid (NHS numbers).
#include <cstdint>
#include <map>
#include <string>

namespace gw::test {

// Reads tests/fixtures/<relative> and replaces each {{key}} with its value.
// Aborts the test run when the file is missing or a placeholder is left.
std::string fixture(const std::string& relative, const std::map<std::string, std::string>& vars = {});

// A valid NHS number (Modulus 11) different for each seed; the first digit is
// 9 so that it cannot collide with numbers issued to people.
std::string nhs_number_for(uint32_t seed);

}  // namespace gw::test
