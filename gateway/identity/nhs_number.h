#pragma once
// NHS number: 10 digits, Modulus 11 check digit (weights 10..2 on digits 1-9;
// check = 11 - (sum mod 11); 11 -> 0; 10 -> the number is invalid).
#include <string>
#include <string_view>

#include "gateway/common/result.h"

namespace gw::identity {

inline constexpr std::string_view kNhsNumberSystem = "https://fhir.nhs.uk/Id/nhs-number";

// Strips spaces and dashes, checks the shape and the check digit, and returns
// the normalised 10 digits. The error message says exactly what failed, e.g.
// "check digit is 3 but the Modulus 11 calculation gives 7", or
// "the Modulus 11 calculation gives 10, so no valid NHS number has these first nine digits".
// It never repeats the number itself (no patient identifier in errors that may be logged).
Result<std::string> normalise_nhs_number(std::string_view input);

bool is_valid_nhs_number(std::string_view input);

// The check digit for nine digits: 0..9, or 10 when no valid number exists.
int nhs_check_digit(std::string_view first_nine);

}  // namespace gw::identity
