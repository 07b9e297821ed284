#include "gateway/hl7/ack.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/support/fixtures.h"

namespace gw::hl7 {
namespace {

AckHeader fixed_header() {
  AckHeader h;
  h.control_id = "ACK0001";
  h.timestamp = "20261103091501+0000";
  return h;
}

TEST(Ack, AcceptSwapsSenderAndReceiver) {
  std::string raw = test::fixture("systmone/adt_a28_child.hl7");
  auto in = Message::parse(raw);
  ASSERT_TRUE(in);
  std::string ack = build_ack(*in, AckCode::AA, "", {}, fixed_header());
  auto m = Message::parse(ack);
  ASSERT_TRUE(m) << m.error().message;
  Segment msh = m->msh();
  EXPECT_EQ(msh.field(3).raw(), "ROUTE");
  EXPECT_EQ(msh.field(4).raw(), "CPISGW");
  EXPECT_EQ(msh.field(5).raw(), "SYSTMONE");
  EXPECT_EQ(msh.field(6).raw(), "RFR");
  EXPECT_EQ(msh.field(7).raw(), "20261103091501+0000");
  EXPECT_EQ(msh.field(9).raw(), "ACK^A28^ACK");
  EXPECT_EQ(msh.field(10).raw(), "ACK0001");
  EXPECT_EQ(msh.field(11).raw(), "P");
  EXPECT_EQ(msh.field(12).raw(), "2.4");
  EXPECT_EQ(m->segment("MSA").field(1).raw(), "AA");
  EXPECT_EQ(m->segment("MSA").field(2).raw(), "S1-000101");
  EXPECT_TRUE(m->segment("ERR").empty());
  EXPECT_EQ(m->all_segments().size(), 2u);
  EXPECT_EQ(ack.back(), '\r');
  EXPECT_EQ(ack.find('\n'), std::string::npos);
}

TEST(Ack, DefaultsGiveAFreshControlIdAndTimestamp) {
  std::string raw = test::fixture("systmone/adt_a40_merge.hl7");
  auto in = Message::parse(raw);
  ASSERT_TRUE(in);
  std::string a = build_ack(*in, AckCode::AA, "");
  std::string b = build_ack(*in, AckCode::AA, "");
  auto ma = Message::parse(a);
  auto mb = Message::parse(b);
  ASSERT_TRUE(ma && mb);
  EXPECT_EQ(ma->control_id().size(), 20u);
  EXPECT_NE(ma->control_id(), mb->control_id());
  EXPECT_NE(ma->control_id(), "S1-000301");
  auto ts = parse_ts(ma->msh().field(7).raw());
  ASSERT_TRUE(ts) << ts.error().message;
  EXPECT_EQ(*ts->offset_minutes, 0);
  EXPECT_EQ(ma->msh().field(9).raw(), "ACK^A40^ACK");
}

TEST(Ack, V24ErrorUsesEld) {
  std::string raw = test::fixture("systmone/bad_nhs_checksum.hl7");
  auto in = Message::parse(raw);
  ASSERT_TRUE(in);
  std::vector<AckError> errors = {
      {"PID", 1, 3, ErrorCode::data_type, "NHS number check digit is wrong"},
      {"PID", 1, 7, ErrorCode::data_type, "Birth date A&E ^ bad"},
  };
  std::string ack = build_ack(*in, AckCode::AE, "Invalid NHS number", errors, fixed_header());
  auto m = Message::parse(ack);
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->segment("MSA").field(1).raw(), "AE");
  EXPECT_EQ(m->segment("MSA").field(2).raw(), "S1-000302");
  EXPECT_EQ(m->segment("MSA").field(3).raw(), "Invalid NHS number");
  // v2.4: one ERR, one ERR-1 repetition per error.
  ASSERT_EQ(m->segments("ERR").size(), 1u);
  Field err1 = m->segment("ERR").field(1);
  ASSERT_EQ(err1.repetition_count(), 2u);
  Field first = err1.repetition(0);
  EXPECT_EQ(first.component(1).raw(), "PID");
  EXPECT_EQ(first.component(2).raw(), "1");
  EXPECT_EQ(first.component(3).raw(), "3");
  EXPECT_EQ(first.component(4).subcomponent(1).raw(), "102");
  EXPECT_EQ(first.component(4).subcomponent(2).raw(), "NHS number check digit is wrong");
  EXPECT_EQ(first.component(4).subcomponent(3).raw(), "HL70357");
  Field second = err1.repetition(1);
  EXPECT_EQ(second.component(3).raw(), "7");
  // Delimiters in the text are escaped, so they cannot shift the fields.
  EXPECT_EQ(unescape(second.component(4).subcomponent(2).raw(), m->delimiters()), "Birth date A&E ^ bad");
  EXPECT_TRUE(m->segment("ERR").field(2).empty());
}

TEST(Ack, V25ErrorUsesErlAndCode) {
  std::string raw = "MSH|^~\\&|EDIS|RFR|ROUTE|CPISGW|20261104023000+0000||ADT^A04^ADT_A01|ED-1|P|2.5.1\r"
                    "PID|1||123^^^NHS^NH\r";
  auto in = Message::parse(raw);
  ASSERT_TRUE(in);
  std::vector<AckError> errors = {
      {"PID", 1, 3, ErrorCode::required_field_missing, "No NHS number"},
      {"PID", 1, 7, ErrorCode::data_type, "Birth date 20260230 does not exist"},
  };
  std::string ack = build_ack(*in, AckCode::AE, "Rejected", errors, fixed_header());
  auto m = Message::parse(ack);
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->msh().field(12).raw(), "2.5.1");
  EXPECT_EQ(m->msh().field(9).raw(), "ACK^A04^ACK");
  auto errs = m->segments("ERR");
  ASSERT_EQ(errs.size(), 2u);
  EXPECT_TRUE(errs[0].field(1).empty());
  EXPECT_EQ(errs[0].field(2).raw(), "PID^1^3");
  EXPECT_EQ(errs[0].field(3).component(1).raw(), "101");
  EXPECT_EQ(errs[0].field(3).component(2).raw(), "Required field missing");
  EXPECT_EQ(errs[0].field(3).component(3).raw(), "HL70357");
  EXPECT_EQ(errs[0].field(4).raw(), "E");
  EXPECT_EQ(errs[0].field(8).raw(), "No NHS number");
  EXPECT_EQ(errs[1].field(2).raw(), "PID^1^7");
  EXPECT_EQ(errs[1].field(3).component(1).raw(), "102");
  EXPECT_EQ(errs[1].field(8).raw(), "Birth date 20260230 does not exist");
}

TEST(Ack, KeepsTheInboundSeparators) {
  std::string raw = "MSH#$~\\&#EDIS#RFR#ROUTE#CPISGW#20261104023000##ADT$A08#X9#P#2.4\rPID#1\r";
  auto in = Message::parse(raw);
  ASSERT_TRUE(in) << in.error().message;
  std::vector<AckError> errors = {{"PID", 1, 3, ErrorCode::required_field_missing, "a#b$c"}};
  std::string ack = build_ack(*in, AckCode::AE, "x#y", errors, fixed_header());
  EXPECT_EQ(ack.substr(0, 9), "MSH#$~\\&#");
  auto m = Message::parse(ack);
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->msh().field(9).raw(), "ACK$A08$ACK");
  EXPECT_EQ(m->segment("MSA").field(2).raw(), "X9");
  EXPECT_EQ(unescape(m->segment("MSA").field(3).raw(), m->delimiters()), "x#y");
  Field eld = m->segment("ERR").field(1);
  EXPECT_EQ(eld.component(4).subcomponent(1).raw(), "101");
  EXPECT_EQ(unescape(eld.component(4).subcomponent(2).raw(), m->delimiters()), "a#b$c");
}

TEST(Ack, MessageLevelErrorHasNoFieldInLocation) {
  std::string raw = "MSH|^~\\&|A|B|C|D|20260101||ADT^A99|Z1|P|2.5\r";
  auto in = Message::parse(raw);
  ASSERT_TRUE(in);
  std::vector<AckError> errors = {{"MSH", 1, 9, ErrorCode::unsupported_message_type, "ADT^A99 not supported"},
                                  {"", 1, 0, ErrorCode::application_internal, "store down"}};
  std::string ack = build_ack(*in, AckCode::AR, "", errors, fixed_header());
  auto m = Message::parse(ack);
  ASSERT_TRUE(m);
  auto errs = m->segments("ERR");
  ASSERT_EQ(errs.size(), 2u);
  EXPECT_EQ(errs[0].field(2).raw(), "MSH^1^9");
  EXPECT_EQ(errs[0].field(3).component(1).raw(), "200");
  EXPECT_EQ(unescape(errs[0].field(8).raw(), m->delimiters()), "ADT^A99 not supported");
  EXPECT_TRUE(errs[1].field(2).empty());
  EXPECT_EQ(errs[1].field(3).component(1).raw(), "207");
  EXPECT_TRUE(m->segment("MSA").field(3).empty());
}

TEST(Ack, RejectForUnparseableInput) {
  AckHeader h = fixed_header();
  h.sending_facility = "RFR01";
  std::string ack = build_reject("Not an HL7 message", h);
  auto m = Message::parse(ack);
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->msh().field(3).raw(), "CPISGW");
  EXPECT_EQ(m->msh().field(4).raw(), "RFR01");
  EXPECT_EQ(m->msh().field(9).raw(), "ACK");
  EXPECT_EQ(m->control_id(), "ACK0001");
  EXPECT_EQ(m->version(), "2.4");
  EXPECT_EQ(m->segment("MSA").field(1).raw(), "AR");
  EXPECT_TRUE(m->segment("MSA").field(2).empty());
  EXPECT_EQ(m->segment("MSA").field(3).raw(), "Not an HL7 message");
}

TEST(Ack, NonAsciiTextIsNotSentRaw) {
  std::string raw = "MSH|^~\\&|A|B|C|D|20260101||ADT^A28|Q|P|2.4\r";
  auto in = Message::parse(raw);
  ASSERT_TRUE(in);
  std::string ack = build_ack(*in, AckCode::AE, "Zo\xC3\xAB\nline", {}, fixed_header());
  for (char c : ack) EXPECT_LT(static_cast<unsigned char>(c), 0x80);
  auto m = Message::parse(ack);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->all_segments().size(), 2u);
  EXPECT_EQ(unescape(m->segment("MSA").field(3).raw(), m->delimiters()), "Zo??\nline");
}

}  // namespace
}  // namespace gw::hl7
