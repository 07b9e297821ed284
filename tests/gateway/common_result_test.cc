#include <gtest/gtest.h>

#include "gateway/common/issues.h"
#include "gateway/common/json.h"

TEST(Result, ErrcMapsToHttpStatus) {
  EXPECT_EQ(gw::http_status_for(gw::Errc::version_conflict), 412);
  EXPECT_EQ(gw::http_status_for(gw::Errc::unprocessable), 422);
}

TEST(Json, ParseRejectsTrailingGarbage) {
  EXPECT_FALSE(gw::json::parse("{} x").has_value());
  EXPECT_TRUE(gw::json::parse(" {\"a\":1} ").has_value());
}

TEST(Issues, OperationOutcomeCarriesExpression) {
  gw::IssueSink s;
  s.error("required", "Patient.gender", "missing");
  auto oo = gw::operation_outcome(s.issues());
  EXPECT_NE(oo.find("\"expression\":[\"Patient.gender\"]"), std::string::npos);
}
