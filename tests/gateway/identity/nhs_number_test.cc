#include "gateway/identity/nhs_number.h"

#include <gtest/gtest.h>

#include <string>

namespace gw::identity {
namespace {

// The message must never repeat the number (errors may be logged).
void expect_error(std::string_view input, std::string_view message_part) {
  auto r = normalise_nhs_number(input);
  ASSERT_FALSE(r.has_value()) << "accepted: " << input;
  EXPECT_EQ(r.error().code, Errc::unprocessable);
  EXPECT_NE(r.error().message.find(message_part), std::string::npos) << r.error().message;
  std::string digits;
  for (char c : input)
    if (c >= '0' && c <= '9') digits.push_back(c);
  if (digits.size() >= 4) {
    EXPECT_EQ(r.error().message.find(digits), std::string::npos) << r.error().message;
  }
  EXPECT_FALSE(is_valid_nhs_number(input));
}

TEST(NhsNumber, KnownValidNumbers) {
  for (const char* n : {"9434765919", "9434765870", "4010232137"}) {
    auto r = normalise_nhs_number(n);
    ASSERT_TRUE(r.has_value()) << n << ": " << r.error().message;
    EXPECT_EQ(*r, n);
    EXPECT_TRUE(is_valid_nhs_number(n));
  }
}

TEST(NhsNumber, CheckDigitOfKnownNumbers) {
  EXPECT_EQ(nhs_check_digit("943476591"), 9);
  EXPECT_EQ(nhs_check_digit("401023213"), 7);
}

TEST(NhsNumber, SpacesAndDashesAreStripped) {
  EXPECT_EQ(normalise_nhs_number("943 476 5919").value(), "9434765919");
  EXPECT_EQ(normalise_nhs_number("943-476-5919").value(), "9434765919");
  EXPECT_EQ(normalise_nhs_number(" 943 - 476-5919 ").value(), "9434765919");
}

TEST(NhsNumber, RemainderZeroGivesCheckDigitZero) {
  // 9*10+4*9+3*8+4*7+7*6+6*5+5*4+8*3+7*2 = 308 = 28*11, so 11 - 0 = 11, written as 0.
  EXPECT_EQ(nhs_check_digit("943476587"), 0);
  EXPECT_TRUE(is_valid_nhs_number("9434765870"));
  expect_error("9434765871", "check digit is 1 but the Modulus 11 calculation gives 0");
}

TEST(NhsNumber, RemainderOneMeansNoValidNumber) {
  // 1*10+2*9+3*8+4*7+5*6+6*5+7*4+8*3+9*2 = 210 = 19*11 + 1, so 11 - 1 = 10.
  EXPECT_EQ(nhs_check_digit("123456789"), 10);
  for (char last = '0'; last <= '9'; ++last) {
    expect_error(std::string("123456789") + last,
                 "the Modulus 11 calculation gives 10, so no valid NHS number has these first nine digits");
  }
}

TEST(NhsNumber, WrongCheckDigitNamesBothDigits) {
  expect_error("9434765913", "check digit is 3 but the Modulus 11 calculation gives 9");
  expect_error("4010232130", "check digit is 0 but the Modulus 11 calculation gives 7");
}

TEST(NhsNumber, WrongLengthSaysHowManyDigits) {
  expect_error("943476591", "found 9");
  expect_error("94347659190", "found 11");
  expect_error("943 476 591", "found 9");
}

TEST(NhsNumber, OtherCharactersAreRejected) {
  expect_error("943476591X", "must contain only digits, spaces and dashes");
  expect_error("943.476.5919", "must contain only digits, spaces and dashes");
  expect_error("943\t476\t5919", "must contain only digits, spaces and dashes");
  expect_error("９434765919", "must contain only digits, spaces and dashes");  // full-width digit
}

TEST(NhsNumber, EmptyIsRejected) {
  expect_error("", "empty");
  expect_error(" - ", "empty");
}

// Decision: every repdigit passes Modulus 11 (for digit d the sum is 54d, and
// 11 - (54d mod 11) = d), and legacy systems use them as "unknown". They are
// refused so that placeholders never become one shared Patient.
TEST(NhsNumber, RepdigitPlaceholdersAreRejectedThoughArithmeticallyValid) {
  for (char d = '0'; d <= '9'; ++d) {
    std::string n(10, d);
    EXPECT_EQ(nhs_check_digit(std::string_view(n).substr(0, 9)), d - '0') << n;
    auto r = normalise_nhs_number(n);
    ASSERT_FALSE(r.has_value()) << n;
    EXPECT_NE(r.error().message.find("placeholder"), std::string::npos);
  }
}

TEST(NhsNumber, CheckDigitOfMalformedInputIsInvalid) {
  EXPECT_EQ(nhs_check_digit("12345678"), 10);
  EXPECT_EQ(nhs_check_digit("94347659A"), 10);
}

}  // namespace
}  // namespace gw::identity
