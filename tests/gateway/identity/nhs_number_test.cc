#include "gateway/identity/nhs_number.h"

#include <gtest/gtest.h>

using gw::identity::normalise_nhs_number;

TEST(NhsNumber, AcceptsValidAndNormalises) {
  auto n = normalise_nhs_number("943 476-5919");
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(*n, "9434765919");
  EXPECT_TRUE(gw::identity::is_valid_nhs_number("9434765919"));
}

TEST(NhsNumber, ReportsWhyWithoutEchoingTheNumber) {
  auto bad = normalise_nhs_number("9434765918");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().message, "check digit is 8 but the Modulus 11 calculation gives 9");
  EXPECT_EQ(bad.error().code, gw::Errc::unprocessable);

  // 0,0,0,0,0,0,0,2,3: 2*3 + 3*2 = 12, 12 mod 11 = 1, 11 - 1 = 10.
  EXPECT_EQ(gw::identity::nhs_check_digit("000000023"), 10);
  auto ten = normalise_nhs_number("0000000230");
  ASSERT_FALSE(ten.has_value());
  EXPECT_EQ(ten.error().message,
            "the Modulus 11 calculation gives 10, so no valid NHS number has these first nine digits");

  auto short_one = normalise_nhs_number("12345");
  ASSERT_FALSE(short_one.has_value());
  EXPECT_NE(short_one.error().message.find("has 5"), std::string::npos);
  EXPECT_EQ(short_one.error().message.find("12345"), std::string::npos);
}
