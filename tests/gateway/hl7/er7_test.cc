#include "gateway/hl7/er7.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/support/fixtures.h"

namespace gw::hl7 {
namespace {

struct Sample {
  const char* file;
  const char* msh9;
  const char* msh10;
  std::vector<std::pair<std::string, std::string>> pid3;  // CX.1, CX.5 per repetition
};

TEST(Er7, EverySystmOneSampleParses) {
  const std::vector<Sample> samples = {
      {"adt_a04_ed_adult_overdose.hl7", "ADT^A04^ADT_A01", "ED-889211", {{"9990079196", "NH"}, {"M8812345", "MR"}}},
      {"adt_a28_child.hl7", "ADT^A28^ADT_A05", "S1-000101", {{"9990237573", "NH"}, {"700123", "PI"}}},
      {"adt_a28_parent.hl7", "ADT^A28^ADT_A05", "S1-000102", {{"9990079196", "NH"}, {"700045", "PI"}}},
      {"adt_a40_merge.hl7", "ADT^A40^ADT_A39", "S1-000301", {{"9990395950", "NH"}}},
      {"bad_nhs_checksum.hl7", "ADT^A28^ADT_A05", "S1-000302", {{"9219068409", "NH"}}},
      {"oru_r01_child_at_risk_ctv3.hl7", "ORU^R01^ORU_R01", "S1-000230", {{"9990316767", "NH"}}},
  };
  for (const auto& s : samples) {
    SCOPED_TRACE(s.file);
    std::string raw = test::fixture(std::string("systmone/") + s.file);
    auto text = to_utf8(raw);
    ASSERT_TRUE(text) << text.error().message;
    auto m = Message::parse(*text);
    ASSERT_TRUE(m) << m.error().message;
    Segment msh = m->msh();
    EXPECT_EQ(msh.name(), "MSH");
    EXPECT_EQ(msh.field(1).raw(), "|");
    EXPECT_EQ(msh.field(2).raw(), "^~\\&");
    EXPECT_EQ(msh.field(9).raw(), s.msh9);
    EXPECT_EQ(m->control_id(), s.msh10);
    EXPECT_EQ(m->version(), "2.4");
    EXPECT_EQ(msh.field(5).raw(), "ROUTE");
    Field pid3 = m->segment("PID").field(3);
    ASSERT_EQ(pid3.repetition_count(), s.pid3.size());
    for (std::size_t r = 0; r < s.pid3.size(); ++r) {
      EXPECT_EQ(pid3.repetition(r).component(1).raw(), s.pid3[r].first);
      EXPECT_EQ(pid3.repetition(r).component(5).raw(), s.pid3[r].second);
    }
  }
}

TEST(Er7, FieldsComponentsAndSegmentsUseHl7Numbering) {
  std::string raw = test::fixture("systmone/adt_a28_parent.hl7");
  auto m = Message::parse(raw);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->msh().field(3).raw(), "SYSTMONE");
  EXPECT_EQ(m->msh().field(9).component(2).raw(), "A28");
  EXPECT_EQ(m->msh().field(18).raw(), "UNICODE UTF-8");
  EXPECT_EQ(m->msh().field_count(), 18u);
  EXPECT_EQ(m->segment("PID").field(5).component(2).raw(), "Jade");
  EXPECT_EQ(m->segment("PID").field(32).raw(), "NSTS01");
  // Two NK1 rows; the second is Noah, with his NHS number in NK1-33.
  ASSERT_EQ(m->segments("NK1").size(), 2u);
  EXPECT_EQ(m->segment("NK1", 1).field(2).component(2).raw(), "Noah");
  EXPECT_EQ(m->segment("NK1", 1).field(33).component(1).raw(), "9990316767");
  EXPECT_EQ(m->segment("NK1", 1).index(), 6u);  // MSH EVN PID PD1 NK1 NK1
  // Absent things are empty, never an error or a crash.
  EXPECT_TRUE(m->segment("NK1", 2).empty());
  EXPECT_TRUE(m->segment("NK1", 2).field(3).component(1).empty());
  EXPECT_TRUE(m->segment("PID").field(99).empty());
  EXPECT_TRUE(m->segment("PID").field(5).component(9).empty());
  EXPECT_TRUE(m->segment("PID").field(0).empty());
}

TEST(Er7, SubcomponentsAndNull) {
  std::string raw = "MSH|^~\\&|A|B|C|D|20260101||ADT^A28|1|P|2.4\rPID|1||X&Y&Z^^^NHS^NH||\"\"\r";
  auto m = Message::parse(raw);
  ASSERT_TRUE(m);
  Field pid3 = m->segment("PID").field(3);
  EXPECT_EQ(pid3.subcomponent(1).raw(), "X");
  EXPECT_EQ(pid3.subcomponent(3).raw(), "Z");
  EXPECT_EQ(pid3.component(1).subcomponent(2).raw(), "Y");
  EXPECT_TRUE(pid3.subcomponent(4).empty());
  EXPECT_TRUE(m->segment("PID").field(5).is_null());
  EXPECT_FALSE(m->segment("PID").field(4).is_null());
}

TEST(Er7, CustomSeparators) {
  std::string raw = test::fixture("systmone/adt_a28_child.hl7");
  for (char& c : raw)
    if (c == '|') c = '#';
  // Components with '$' instead of '^' too: a parser that hard-codes '^' fails here.
  for (char& c : raw)
    if (c == '^') c = '$';
  auto m = Message::parse(raw);
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->delimiters().field, '#');
  EXPECT_EQ(m->delimiters().component, '$');
  EXPECT_EQ(m->msh().field(1).raw(), "#");
  EXPECT_EQ(m->msh().field(2).raw(), "$~\\&");
  EXPECT_EQ(m->msh().field(9).raw(), "ADT$A28$ADT_A05");
  EXPECT_EQ(m->msh().field(9).component(2).raw(), "A28");
  EXPECT_EQ(m->control_id(), "S1-000101");
  EXPECT_EQ(m->segment("PID").field(3).repetition(1).component(4).raw(), "RFR");
}

TEST(Er7, FiveEncodingCharactersFromV27) {
  auto m = Message::parse("MSH|^~\\&#|A|B|C|D|20260101||ADT^A28|9|P|2.7\rPID|1\r");
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->delimiters().truncation, '#');
  EXPECT_EQ(m->msh().field(2).raw(), "^~\\&#");
  EXPECT_EQ(m->msh().field(3).raw(), "A");
  EXPECT_EQ(m->control_id(), "9");
  EXPECT_EQ(m->delimiters().encoding_characters(), "^~\\&#");
}

TEST(Er7, LineEndingsLfAndCrLfAndTrailingBlankLines) {
  std::string cr = "MSH|^~\\&|A|B|C|D|20260101||ADT^A28|7|P|2.4\rEVN|A28\rPID|1||123^^^NHS^NH\r";
  for (std::string eol : {"\n", "\r\n"}) {
    std::string raw = cr;
    for (std::size_t p; (p = raw.find('\r')) != std::string::npos && eol == "\n";) raw[p] = '\n';
    if (eol == "\r\n") {
      raw.clear();
      for (char c : cr) raw += c == '\r' ? std::string("\r\n") : std::string(1, c);
    }
    raw += eol + eol;
    auto m = Message::parse(raw);
    ASSERT_TRUE(m) << m.error().message;
    ASSERT_EQ(m->all_segments().size(), 3u);
    EXPECT_EQ(m->control_id(), "7");
    EXPECT_EQ(m->segment("PID").field(3).component(1).raw(), "123");
    // No line-ending byte leaks into the last field of a segment.
    EXPECT_EQ(m->msh().field(12).raw(), "2.4");
  }
}

TEST(Er7, ParseErrorsSayWhatAndWhere) {
  auto not_msh = Message::parse("PID|1||123\r");
  ASSERT_FALSE(not_msh);
  EXPECT_EQ(not_msh.error().code, Errc::invalid_input);
  EXPECT_NE(not_msh.error().message.find("MSH"), std::string::npos);

  auto batch = Message::parse("FHS|^~\\&|A\rMSH|^~\\&|A\r");
  ASSERT_FALSE(batch);
  EXPECT_NE(batch.error().message.find("split_batch"), std::string::npos);

  auto short_msh = Message::parse("MSH|^~");
  ASSERT_FALSE(short_msh);
  EXPECT_NE(short_msh.error().message.find("too short"), std::string::npos);
  EXPECT_EQ(short_msh.error().expression, "MSH-2");

  auto three_enc = Message::parse("MSH|^~\\|A|B\r");
  ASSERT_FALSE(three_enc);
  EXPECT_EQ(three_enc.error().expression, "MSH-2");

  auto dup = Message::parse("MSH|^~\\^|A|B\r");
  ASSERT_FALSE(dup);
  EXPECT_NE(dup.error().message.find("used twice"), std::string::npos);
  EXPECT_EQ(dup.error().expression, "MSH-2");

  // The field separator inside MSH-2 ends MSH-2 early, so it shows as too few characters.
  auto dup_field = Message::parse("MSH|^~\\||A|B\r");
  ASSERT_FALSE(dup_field);
  EXPECT_EQ(dup_field.error().expression, "MSH-2");
  EXPECT_NE(dup_field.error().message.find("found 3"), std::string::npos);

  auto bad_seg = Message::parse("MSH|^~\\&|A\rPID|1\rp i|x\r");
  ASSERT_FALSE(bad_seg);
  EXPECT_EQ(bad_seg.error().expression, "segment 3");

  auto two = Message::parse("MSH|^~\\&|A\rPID|1\rMSH|^~\\&|B\r");
  ASSERT_FALSE(two);
  EXPECT_EQ(two.error().expression, "segment 3");
}

TEST(Er7, UnescapeEverySequence) {
  Delimiters d;
  EXPECT_EQ(unescape("a\\F\\b", d), "a|b");
  EXPECT_EQ(unescape("a\\S\\b", d), "a^b");
  EXPECT_EQ(unescape("A\\T\\E", d), "A&E");
  EXPECT_EQ(unescape("a\\R\\b", d), "a~b");
  EXPECT_EQ(unescape("C:\\E\\dir", d), "C:\\dir");
  EXPECT_EQ(unescape("\\X5A6F\\\\XC3AB\\", d), "Zo\xC3\xAB");
  EXPECT_EQ(unescape("line1\\.br\\line2", d), "line1\nline2");
  EXPECT_EQ(unescape("\\H\\bold\\N\\ text", d), "bold text");
  // Unknown, malformed and unterminated sequences survive as sent.
  EXPECT_EQ(unescape("\\Zabc\\", d), "\\Zabc\\");
  EXPECT_EQ(unescape("\\.sp\\", d), "\\.sp\\");
  EXPECT_EQ(unescape("\\X4\\", d), "\\X4\\");
  EXPECT_EQ(unescape("\\XZZ\\", d), "\\XZZ\\");
  EXPECT_EQ(unescape("tail \\F", d), "tail \\F");
  EXPECT_EQ(unescape("plain", d), "plain");
}

TEST(Er7, UnescapeUsesTheMessageSeparators) {
  Delimiters d;
  d.field = '#';
  d.escape = '!';
  EXPECT_EQ(unescape("a!F!b!E!", d), "a#b!");
  EXPECT_EQ(unescape("a\\F\\b", d), "a\\F\\b");
}

TEST(Er7, SampleFreeTextUnescapes) {
  std::string raw = test::fixture("systmone/oru_r01_child_at_risk_ctv3.hl7");
  auto m = Message::parse(raw);
  ASSERT_TRUE(m);
  std::string text = unescape(m->segment("OBX", 1).field(5).raw(), m->delimiters());
  EXPECT_EQ(text, "Case conference 04/11: plan agreed & core group set\nNamed SW: J. Smith");
}

TEST(Er7, EscapeRoundTrips) {
  Delimiters d;
  std::string text = "A&E | x^y ~ C:\\ \nnext\r\nlast\rcr";
  std::string esc = escape(text, d);
  EXPECT_EQ(esc.find_first_of("|^~&\r\n"), std::string::npos);
  EXPECT_EQ(unescape(esc, d), "A&E | x^y ~ C:\\ \nnext\nlast\rcr");
}

TEST(Er7, Latin1NameBecomesUtf8) {
  std::string raw = "MSH|^~\\&|A|B|C|D|20260101||ADT^A28|1|P|2.4|||||GBR|8859/1\rPID|1||1^^^NHS^NH||SMITH^Zo\xEB\r";
  auto text = to_utf8(raw);
  ASSERT_TRUE(text) << text.error().message;
  auto m = Message::parse(*text);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->segment("PID").field(5).component(2).raw(), "Zo\xC3\xAB");
}

TEST(Er7, Latin9EuroSign) {
  std::string raw = "MSH|^~\\&|A|B|C|D|20260101||ADT^A28|1|P|2.4|||||GBR|8859/15\rNTE|1||\xA4\x35\r";
  auto text = to_utf8(raw);
  ASSERT_TRUE(text);
  EXPECT_NE(text->find("\xE2\x82\xAC" "5"), std::string::npos);
}

TEST(Er7, Utf8ConversionOnlyCopiesWhenNeeded) {
  std::string ascii = "MSH|^~\\&|A|B|C|D|20260101||ADT^A28|1|P|2.4|||||GBR|8859/1\rPID|1\r";
  std::string scratch;
  auto v = to_utf8(ascii, scratch);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->data(), ascii.data());
  std::string latin = "MSH|^~\\&|A|B|C|D|20260101||ADT^A28|1|P|2.4|||||GBR|8859/1\rPID|1||||\xE9\r";
  auto w = to_utf8(latin, scratch);
  ASSERT_TRUE(w);
  EXPECT_EQ(w->data(), scratch.data());
}

TEST(Er7, InvalidUtf8IsRefusedWhenDeclared) {
  std::string raw = "MSH|^~\\&|A|B|C|D|20260101||ADT^A28|1|P|2.4|||||GBR|UNICODE UTF-8\rPID|1||||Zo\xEB\r";
  auto text = to_utf8(raw);
  ASSERT_FALSE(text);
  EXPECT_EQ(text.error().code, Errc::invalid_input);
  EXPECT_EQ(text.error().expression, "MSH-18");
  EXPECT_NE(text.error().message.find("MSH-18"), std::string::npos);

  std::string good = "MSH|^~\\&|A|B|C|D|20260101||ADT^A28|1|P|2.4|||||GBR|UTF-8\rPID|1||||Zo\xC3\xAB\r";
  EXPECT_TRUE(to_utf8(good));
}

TEST(Er7, UndeclaredCharsetIsLenient) {
  std::string utf8 = "MSH|^~\\&|A|B|C|D|20260101||ADT^A28|1|P|2.4\rPID|1||||Zo\xC3\xAB\r";
  EXPECT_EQ(*to_utf8(utf8), utf8);
  std::string latin = "MSH|^~\\&|A|B|C|D|20260101||ADT^A28|1|P|2.4\rPID|1||||Zo\xEB\r";
  auto t = to_utf8(latin);
  ASSERT_TRUE(t);
  EXPECT_NE(t->find("Zo\xC3\xAB"), std::string::npos);
}

TEST(Er7, UnsupportedCharsetIsNamed) {
  auto t = to_utf8("MSH|^~\\&|A|B|C|D|20260101||ADT^A28|1|P|2.4|||||GBR|ISO IR87\rPID|1\r");
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().expression, "MSH-18");
}

TEST(Er7, Utf8Validation) {
  EXPECT_TRUE(is_valid_utf8("plain \xC3\xAB \xE2\x82\xAC \xF0\x9F\x98\x80"));
  EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(is_valid_utf8("\xE2\x82"));          // truncated
  EXPECT_FALSE(is_valid_utf8("\x80"));              // lone continuation
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // > U+10FFFF
}

std::string batch_of(const std::string& bts, const std::string& fts, const std::string& eol = "\r") {
  return "FHS|^~\\&|SYSTMONE|RFR||CPISGW|20261103||||F1" + eol + "BHS|^~\\&|SYSTMONE|RFR||CPISGW|20261103" + eol +
         "MSH|^~\\&|SYSTMONE|RFR|ROUTE|CPISGW|20261103||ADT^A28^ADT_A05|M1|P|2.4" + eol + "PID|1||1^^^NHS^NH" + eol +
         "MSH|^~\\&|SYSTMONE|RFR|ROUTE|CPISGW|20261103||ADT^A31^ADT_A05|M2|P|2.4" + eol + "PID|1||2^^^NHS^NH" + eol +
         "BTS|" + bts + eol + "FTS|" + fts + eol;
}

TEST(Er7, BatchWithCorrectCounts) {
  for (std::string eol : {"\r", "\n", "\r\n"}) {
    std::string file = batch_of("2", "1", eol);
    auto msgs = split_batch(file);
    ASSERT_TRUE(msgs) << msgs.error().message;
    ASSERT_EQ(msgs->size(), 2u);
    std::vector<std::string> ids;
    for (auto v : *msgs) {
      auto m = Message::parse(v);
      ASSERT_TRUE(m) << m.error().message;
      ASSERT_EQ(m->all_segments().size(), 2u);  // MSH and PID, no batch segments
      ids.emplace_back(m->control_id());
    }
    EXPECT_EQ(ids, (std::vector<std::string>{"M1", "M2"}));
  }
}

TEST(Er7, BatchWithWrongCountsIsRefused) {
  auto bad_bts = split_batch(batch_of("3", "1"));
  ASSERT_FALSE(bad_bts);
  EXPECT_NE(bad_bts.error().message.find("BTS-1 says 3"), std::string::npos);
  EXPECT_EQ(bad_bts.error().expression, "segment 7");

  auto bad_fts = split_batch(batch_of("2", "2"));
  ASSERT_FALSE(bad_fts);
  EXPECT_NE(bad_fts.error().message.find("FTS-1"), std::string::npos);

  auto junk = split_batch(batch_of("two", "1"));
  EXPECT_FALSE(junk);
}

TEST(Er7, BatchOfBareMessagesAndStructureErrors) {
  std::string bare = test::fixture("systmone/adt_a28_child.hl7") + test::fixture("systmone/adt_a40_merge.hl7");
  auto msgs = split_batch(bare);
  ASSERT_TRUE(msgs);
  ASSERT_EQ(msgs->size(), 2u);
  EXPECT_EQ(Message::parse((*msgs)[1])->control_id(), "S1-000301");

  EXPECT_FALSE(split_batch("PID|1\rMSH|^~\\&|A\r"));
  EXPECT_FALSE(split_batch("FHS|^~\\&\rPID|1\r"));
  EXPECT_FALSE(split_batch("MSH|^~\\&|A\rBTS|1\r"));
  // Trailers are optional.
  auto no_trailer = split_batch("FHS|^~\\&\rBHS|^~\\&\rMSH|^~\\&|A\rPID|1\r");
  ASSERT_TRUE(no_trailer);
  EXPECT_EQ(no_trailer->size(), 1u);
}

TEST(Er7, TimestampsWithPrecisionAndOffset) {
  auto t = parse_ts("20261104023000+0000");
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(t->precision, Ts::Precision::second);
  EXPECT_EQ(t->to_fhir_datetime(), "2026-11-04T02:30:00+00:00");
  EXPECT_EQ(t->to_fhir_date(), "2026-11-04");

  auto neg = parse_ts("198908181126-0530");
  ASSERT_TRUE(neg);
  EXPECT_EQ(*neg->offset_minutes, -330);
  EXPECT_EQ(neg->precision, Ts::Precision::minute);
  EXPECT_EQ(neg->to_fhir_datetime(), "1989-08-18T11:26:00-05:30");

  auto frac = parse_ts("20240229235959.1234+0100");
  ASSERT_TRUE(frac);
  EXPECT_EQ(frac->precision, Ts::Precision::fraction);
  EXPECT_EQ(frac->to_fhir_datetime(), "2024-02-29T23:59:59.1234+01:00");

  auto local = parse_ts("202606011200");
  ASSERT_TRUE(local);
  EXPECT_FALSE(local->offset_minutes);
  EXPECT_EQ(local->to_fhir_datetime(), "2026-06-01");
  EXPECT_EQ(local->to_fhir_datetime(60), "2026-06-01T12:00:00+01:00");

  EXPECT_EQ(parse_ts("2019")->to_fhir_date(), "2019");
  EXPECT_EQ(parse_ts("201905")->to_fhir_datetime(), "2019-05");
  EXPECT_EQ(parse_ts("20190506")->to_fhir_datetime(), "2019-05-06");
  EXPECT_EQ(parse_ts("2019050613")->precision, Ts::Precision::hour);
}

TEST(Er7, LeapDaysAndImpossibleDates) {
  EXPECT_TRUE(parse_ts("20240229"));
  EXPECT_TRUE(parse_ts("20000229"));
  EXPECT_FALSE(parse_ts("19000229"));
  EXPECT_FALSE(parse_ts("20230229"));
  auto feb30 = parse_ts("20260230");
  ASSERT_FALSE(feb30);
  EXPECT_EQ(feb30.error().code, Errc::invalid_input);
  EXPECT_NE(feb30.error().message.find("day 30 does not exist in 2026-02"), std::string::npos);
  EXPECT_FALSE(parse_ts("20260431"));
  EXPECT_FALSE(parse_ts("20261301"));
  EXPECT_FALSE(parse_ts("20260001"));
  EXPECT_FALSE(parse_ts("20260100"));
  EXPECT_FALSE(parse_ts("202601012400"));
  EXPECT_FALSE(parse_ts("202601012360"));
  EXPECT_FALSE(parse_ts("20260101235960"));
  EXPECT_FALSE(parse_ts("2026010"));
  EXPECT_FALSE(parse_ts("2026-01-01"));
  EXPECT_FALSE(parse_ts("20260101+01"));
  EXPECT_FALSE(parse_ts("20260101+2400"));
  EXPECT_FALSE(parse_ts("202601011200.5"));
  EXPECT_FALSE(parse_ts("20260101120000.12345"));
  EXPECT_FALSE(parse_ts(""));
}

// Not a replacement for the fuzz target, but catches an out-of-range view on
// every build: mutated samples must give a value or an error, never a crash.
TEST(Er7, MutatedInputNeverCrashes) {
  std::string base = test::fixture("systmone/adt_a28_parent.hl7");
  uint32_t state = 12345;
  auto next = [&] { return state = state * 1664525u + 1013904223u; };
  const std::string specials = "|^~\\&\r\n\x0B\x1C\xFF";
  for (int iter = 0; iter < 3000; ++iter) {
    std::string raw = base.substr(0, next() % (base.size() + 1));
    for (int k = next() % 6; k > 0 && !raw.empty(); --k) raw[next() % raw.size()] = specials[next() % specials.size()];
    std::string scratch;
    auto text = to_utf8(raw, scratch);
    auto m = Message::parse(text ? *text : std::string_view(raw));
    if (m) {
      for (const auto& seg : m->all_segments())
        for (std::size_t f = 0; f <= seg.field_count() + 1; ++f) {
          Field v = seg.field(f);
          for (std::size_t r = 0; r <= v.repetition_count(); ++r) {
            (void)v.repetition(r).component(3).subcomponent(2).raw();
          }
          (void)unescape(v.raw(), m->delimiters());
        }
    }
    (void)split_batch(raw);
    (void)parse_ts(raw.substr(0, next() % 24));
  }
}

TEST(Er7, BatchMessagesAreViewsOfTheFile) {
  std::string file = batch_of("2", "1");
  auto msgs = split_batch(file);
  ASSERT_TRUE(msgs);
  for (auto v : *msgs) {
    EXPECT_GE(v.data(), file.data());
    EXPECT_LE(v.data() + v.size(), file.data() + file.size());
    EXPECT_EQ(v.substr(0, 3), "MSH");
    EXPECT_NE(v.back(), '\r');
  }
}

}  // namespace
}  // namespace gw::hl7
