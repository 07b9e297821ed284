#include "gateway/identity/nhs_number.h"

#include <string>

namespace gw::identity {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

int nhs_check_digit(std::string_view first_nine) {
  // Anything but nine digits has no valid completion; answering 10 keeps a
  // misuse on the "invalid" side rather than inventing a check digit.
  if (first_nine.size() != 9) return 10;
  int sum = 0;
  for (size_t i = 0; i < 9; ++i) {
    if (!is_digit(first_nine[i])) return 10;
    sum += (first_nine[i] - '0') * static_cast<int>(10 - i);
  }
  int check = 11 - (sum % 11);
  return check == 11 ? 0 : check;
}

Result<std::string> normalise_nhs_number(std::string_view input) {
  std::string digits;
  digits.reserve(10);
  for (char c : input) {
    if (c == ' ' || c == '-') continue;
    // The offending character is not quoted: it would be part of a patient identifier.
    if (!is_digit(c)) {
      return make_error(Errc::unprocessable, "NHS number must contain only digits, spaces and dashes");
    }
    digits.push_back(c);
  }
  if (digits.empty()) return make_error(Errc::unprocessable, "NHS number is empty");
  if (digits.size() != 10) {
    return make_error(Errc::unprocessable,
                      "NHS number must have 10 digits, found " + std::to_string(digits.size()));
  }
  int expected = nhs_check_digit(std::string_view(digits).substr(0, 9));
  if (expected == 10) {
    return make_error(Errc::unprocessable,
                      "the Modulus 11 calculation gives 10, so no valid NHS number has these first nine digits");
  }
  int given = digits[9] - '0';
  if (given != expected) {
    return make_error(Errc::unprocessable, "check digit is " + std::to_string(given) +
                                               " but the Modulus 11 calculation gives " + std::to_string(expected));
  }
  // Every repdigit (0000000000 ... 9999999999) passes Modulus 11, and legacy
  // systems use them as "unknown" placeholders. Accepting one would merge
  // unrelated children into one Patient (one Patient per NHS number), so they
  // are refused even though the arithmetic holds.
  if (digits.find_first_not_of(digits[0]) == std::string::npos) {
    return make_error(Errc::unprocessable,
                      "NHS number has all ten digits the same, which is a placeholder, not an issued number");
  }
  return digits;
}

bool is_valid_nhs_number(std::string_view input) { return normalise_nhs_number(input).has_value(); }

}  // namespace gw::identity
