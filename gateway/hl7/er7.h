#pragma once
// HL7 v2 ER7 ("pipe and hat") message views. Parsing copies nothing: a Message
// is a list of Segment views into the caller's buffer, and every accessor
// returns a view of the raw (still escaped) text. The buffer passed to
// Message::parse must therefore outlive the Message and every view taken from
// it. Text that needs its escapes resolved goes through unescape().
//
// Numbering follows HL7 notation so that code reads like the spec: fields,
// components and sub-components are 1-based (PID-3.1 is
// field(3).component(1)); occurrences (which PID, which repetition of PID-3)
// are 0-based indexes like any C++ container.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "gateway/common/result.h"

namespace gw::hl7 {

// The separators a message declares in MSH-1 and MSH-2.
struct Delimiters {
  char field = '|';
  char component = '^';
  char repetition = '~';
  char escape = '\\';
  char subcomponent = '&';
  char truncation = '\0';  // v2.7+ only; '\0' when MSH-2 has 4 characters

  // The MSH-2 text these delimiters are written as.
  std::string encoding_characters() const;
};

// A field, repetition, component or sub-component: a view plus the
// delimiters needed to split it further. Splitting a value that has no
// further level simply yields the whole value for index 1 and empty after.
class Field {
 public:
  Field() = default;
  Field(std::string_view raw, const Delimiters& d, bool literal = false)
      : raw_(raw), d_(d), literal_(literal) {}

  std::string_view raw() const { return raw_; }
  bool empty() const { return raw_.empty(); }
  // The HL7 null value "" (an explicit instruction to delete), distinct from empty.
  bool is_null() const { return raw_ == "\"\""; }

  std::size_t repetition_count() const;
  Field repetition(std::size_t r) const;  // 0-based
  // component/subcomponent apply to the first repetition (and first component),
  // as HL7 receivers do when a repeating field is read as a single value.
  Field component(std::size_t c) const;     // 1-based
  Field subcomponent(std::size_t s) const;  // 1-based

  friend bool operator==(const Field& f, std::string_view s) { return f.raw_ == s; }

 private:
  std::string_view raw_;
  Delimiters d_{};
  // MSH-1 and MSH-2 hold the separators themselves and must never be split.
  bool literal_ = false;
};

class Segment {
 public:
  Segment() = default;
  Segment(std::string_view raw, const Delimiters& d, std::size_t index)
      : raw_(raw), d_(d), index_(index) {}

  std::string_view raw() const { return raw_; }
  std::string_view name() const;
  bool empty() const { return raw_.empty(); }
  // Position of the segment in its message, 1-based, for error locations.
  std::size_t index() const { return index_; }
  // HL7 numbering: for MSH (and FHS/BHS) field(1) is the field separator and
  // field(2) the encoding characters, so MSH-9 is field(9) as in the spec.
  Field field(std::size_t i) const;
  // Number of the last field present (MSH counts MSH-1).
  std::size_t field_count() const;

 private:
  bool is_header() const;

  std::string_view raw_;
  Delimiters d_{};
  std::size_t index_ = 0;
};

class Message {
 public:
  // More segments than this make a message invalid (the error names the
  // first one over): a bound on the work one message can cause.
  static constexpr std::size_t kMaxSegments = 10'000;
  // `raw` must be UTF-8 (see to_utf8) and must outlive the Message.
  // Segments may end in \r, \n or \r\n; blank lines are skipped.
  static Result<Message> parse(std::string_view raw);
  // Parsing a temporary std::string would leave every view dangling at the
  // end of the statement; refuse it at compile time.
  template <class S>
    requires std::is_same_v<S, std::string>
  static Result<Message> parse(S&& temporary) = delete;

  const Delimiters& delimiters() const { return d_; }
  const std::vector<Segment>& all_segments() const { return segments_; }
  // The n-th (0-based) segment with this name; an empty Segment when absent.
  Segment segment(std::string_view name, std::size_t n = 0) const;
  std::vector<Segment> segments(std::string_view name) const;
  // Shorthands for what every caller needs.
  Segment msh() const { return segments_.front(); }
  std::string_view control_id() const { return msh().field(10).raw(); }
  std::string_view version() const { return msh().field(12).component(1).raw(); }

 private:
  Message() = default;
  Delimiters d_{};
  std::vector<Segment> segments_;
};

// Reads the separators from a header segment (MSH, FHS or BHS) at the start of `raw`.
Result<Delimiters> read_delimiters(std::string_view raw);

// Resolves escape sequences: \F\ \S\ \T\ \R\ \E\, \Xhh..\ (bytes), \.br\ (a
// line break), \H\ and \N\ (highlighting, dropped). Anything else, including a
// malformed \X..\ or an unterminated escape, is kept verbatim: losing text a
// clinician typed is worse than showing an odd sequence.
std::string unescape(std::string_view raw, const Delimiters& d);
// The reverse, for text we write into a message: delimiters become escapes,
// line breaks \.br\, a lone CR \X0D\ (a raw CR would end the segment).
std::string escape(std::string_view text, const Delimiters& d);

// The message in UTF-8, according to MSH-18: empty/ASCII (lenient: valid UTF-8
// is kept, anything else read as 8859/1, since undeclared feeds are in
// practice one or the other), 8859/1, 8859/15, UNICODE UTF-8 / UTF-8
// (validated). When the text is usable as is, the result is a view of `raw`;
// otherwise the converted text is written to `scratch` and the result views
// it. Done once per message, before Message::parse.
Result<std::string_view> to_utf8(std::string_view raw, std::string& scratch);
// Convenience form that always returns a copy.
Result<std::string> to_utf8(std::string_view raw);
bool is_valid_utf8(std::string_view s);

// Splits a batch file (FHS/BHS ... BTS/FTS, or bare MSH messages back to back)
// into its messages, each a view of `file`. BTS-1 and FTS-1, when present,
// must equal the number of messages / batches found. Missing trailers are
// accepted (many senders omit them), but there is then nothing to check.
Result<std::vector<std::string_view>> split_batch(std::string_view file);

// An HL7 DTM/TS value: YYYY[MM[DD[HH[MM[SS[.S{1,4}]]]]]][+/-ZZZZ].
struct Ts {
  enum class Precision { year, month, day, hour, minute, second, fraction };
  int year = 0;
  int month = 0;   // 1-12 when precision >= month
  int day = 0;     // 1-31 when precision >= day
  int hour = 0;
  int minute = 0;
  int second = 0;
  std::string fraction;  // the 1-4 digits after the point, as sent
  Precision precision = Precision::year;
  std::optional<int> offset_minutes;  // east of UTC; absent = sender's local time

  // FHIR date: YYYY, YYYY-MM or YYYY-MM-DD (a time part is dropped).
  std::string to_fhir_date() const;
  // FHIR dateTime. FHIR forbids a time without an offset, and guessing the
  // sender's offset is wrong for half the UK year, so a value with a time
  // but no offset is reduced to its date; use the overload to supply one.
  std::string to_fhir_datetime() const;
  std::string to_fhir_datetime(int assumed_offset_minutes) const;
};

// Parses component 1 of a TS (or a DTM). Every part is range-checked,
// including the day against the month and leap years.
Result<Ts> parse_ts(std::string_view s);

}  // namespace gw::hl7
