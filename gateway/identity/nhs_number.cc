#include "gateway/identity/nhs_number.h"

namespace gw::identity {

int nhs_check_digit(std::string_view first_nine) {
  int sum = 0;
  for (size_t i = 0; i < 9 && i < first_nine.size(); ++i) sum += (first_nine[i] - '0') * static_cast<int>(10 - i);
  int check = 11 - (sum % 11);
  return check == 11 ? 0 : check;
}

Result<std::string> normalise_nhs_number(std::string_view input) {
  std::string digits;
  digits.reserve(10);
  for (char c : input) {
    if (c == ' ' || c == '-') continue;
    // Say what kind of character is wrong, never which: the input is a patient identifier.
    if (c < '0' || c > '9') return make_error(Errc::unprocessable, "an NHS number may contain only digits, spaces and dashes");
    digits.push_back(c);
  }
  if (digits.size() != 10) {
    return make_error(Errc::unprocessable,
                      "an NHS number has 10 digits, this one has " + std::to_string(digits.size()));
  }
  int check = nhs_check_digit(std::string_view(digits).substr(0, 9));
  if (check == 10) {
    return make_error(Errc::unprocessable,
                      "the Modulus 11 calculation gives 10, so no valid NHS number has these first nine digits");
  }
  int given = digits[9] - '0';
  if (given != check) {
    return make_error(Errc::unprocessable, "check digit is " + std::to_string(given) +
                                               " but the Modulus 11 calculation gives " + std::to_string(check));
  }
  return digits;
}

bool is_valid_nhs_number(std::string_view input) { return normalise_nhs_number(input).has_value(); }

}  // namespace gw::identity
