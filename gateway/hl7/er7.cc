#include "gateway/hl7/er7.h"

#include <array>
#include <cstdio>

namespace gw::hl7 {
namespace {

// The n-th (0-based) piece of `s` split on `sep`; empty when there are fewer.
std::string_view piece(std::string_view s, char sep, std::size_t n) {
  std::size_t start = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::size_t p = s.find(sep, start);
    if (p == std::string_view::npos) return {};
    start = p + 1;
  }
  std::size_t end = s.find(sep, start);
  return s.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
}

std::size_t count_pieces(std::string_view s, char sep) {
  if (s.empty()) return 0;
  std::size_t n = 1;
  for (char c : s)
    if (c == sep) ++n;
  return n;
}

bool is_header_name(std::string_view n) { return n == "MSH" || n == "FHS" || n == "BHS"; }

bool valid_segment_name(std::string_view n) {
  if (n.size() != 3) return false;
  if (n[0] < 'A' || n[0] > 'Z') return false;
  for (char c : n.substr(1))
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) return false;
  return true;
}

// Lines of `raw` split on \r, \n or \r\n, blank ones skipped, calling f(line).
template <class F>
void for_each_line(std::string_view raw, F&& f) {
  std::size_t i = 0;
  while (i < raw.size()) {
    std::size_t e = raw.find_first_of("\r\n", i);
    if (e == std::string_view::npos) e = raw.size();
    if (e > i) f(raw.substr(i, e - i));
    i = e + 1;
  }
}

std::string_view strip_bom(std::string_view raw) {
  if (raw.substr(0, 3) == "\xEF\xBB\xBF") raw.remove_prefix(3);
  while (!raw.empty() && (raw.front() == '\r' || raw.front() == '\n')) raw.remove_prefix(1);
  return raw;
}

std::string describe(char c) {
  if (c >= 0x21 && c <= 0x7E) return std::string("'") + c + "'";
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02X", static_cast<unsigned char>(c));
  return buf;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// ISO 8859-15 differs from 8859-1 in eight positions (the euro sign among them).
uint32_t latin9_code_point(unsigned char b) {
  switch (b) {
    case 0xA4: return 0x20AC;
    case 0xA6: return 0x0160;
    case 0xA8: return 0x0161;
    case 0xB4: return 0x017D;
    case 0xB8: return 0x017E;
    case 0xBC: return 0x0152;
    case 0xBD: return 0x0153;
    case 0xBE: return 0x0178;
    default: return b;
  }
}

std::string latin_to_utf8(std::string_view raw, bool latin9) {
  std::string out;
  out.reserve(raw.size() + raw.size() / 8);
  for (char ch : raw) {
    auto b = static_cast<unsigned char>(ch);
    append_utf8(out, latin9 ? latin9_code_point(b) : b);
  }
  return out;
}

bool has_high_bytes(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) >= 0x80) return true;
  return false;
}

bool is_leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int days_in_month(int y, int m) {
  static constexpr std::array<int, 12> kDays{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : kDays[m - 1];
}

bool all_digits(std::string_view s) {
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

int to_int(std::string_view s) {
  int v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}

Error ts_error(std::string_view s, std::string why) {
  return make_error(Errc::invalid_input, "invalid HL7 timestamp '" + std::string(s) + "': " + why);
}

// Callers pass 0-99 only (range-checked fields).
std::string two(int v) { return {static_cast<char>('0' + v / 10 % 10), static_cast<char>('0' + v % 10)}; }

std::string offset_text(int minutes) {
  char sign = minutes < 0 ? '-' : '+';
  int a = minutes < 0 ? -minutes : minutes;
  return std::string(1, sign) + two(a / 60) + ":" + two(a % 60);
}

}  // namespace

std::string Delimiters::encoding_characters() const {
  std::string s{component, repetition, escape, subcomponent};
  if (truncation != '\0') s += truncation;
  return s;
}

// ---- Field ----

std::size_t Field::repetition_count() const {
  if (literal_) return raw_.empty() ? 0 : 1;
  return count_pieces(raw_, d_.repetition);
}

Field Field::repetition(std::size_t r) const {
  if (literal_) return r == 0 ? *this : Field{};
  return Field(piece(raw_, d_.repetition, r), d_);
}

Field Field::component(std::size_t c) const {
  if (c == 0) return {};
  if (literal_) return c == 1 ? *this : Field{};
  std::string_view first = piece(raw_, d_.repetition, 0);
  return Field(piece(first, d_.component, c - 1), d_);
}

Field Field::subcomponent(std::size_t s) const {
  if (s == 0) return {};
  if (literal_) return s == 1 ? *this : Field{};
  std::string_view first = piece(piece(raw_, d_.repetition, 0), d_.component, 0);
  return Field(piece(first, d_.subcomponent, s - 1), d_);
}

// ---- Segment ----

std::string_view Segment::name() const {
  return raw_.substr(0, std::min(raw_.find(d_.field), raw_.size()));
}

bool Segment::is_header() const { return is_header_name(name()); }

Field Segment::field(std::size_t i) const {
  if (i == 0 || raw_.empty()) return {};
  if (is_header()) {
    // "MSH|^~\&|APP": the first separator is MSH-1 itself, so the piece after
    // it is MSH-2 and everything after is one behind normal segments.
    if (i == 1) return Field(raw_.substr(3, 1), d_, true);
    if (i == 2) return Field(piece(raw_, d_.field, 1), d_, true);
    return Field(piece(raw_, d_.field, i - 1), d_);
  }
  return Field(piece(raw_, d_.field, i), d_);
}

std::size_t Segment::field_count() const {
  std::size_t seps = count_pieces(raw_, d_.field) - 1;
  return is_header() ? seps + 1 : seps;
}

// ---- Message ----

Result<Delimiters> read_delimiters(std::string_view raw) {
  std::string_view head = raw.substr(0, 3);
  if (!is_header_name(head))
    return make_error(Errc::invalid_input, "message does not start with MSH (or FHS/BHS for a batch)",
                      "segment 1");
  if (raw.size() < 8)
    return make_error(Errc::invalid_input,
                      std::string(head) + " is too short to hold the field separator and encoding characters",
                      std::string(head) + "-2");
  Delimiters d;
  d.field = raw[3];
  std::string_view rest = raw.substr(4);
  std::size_t end = rest.find_first_of(std::string{d.field, '\r', '\n'});
  std::string_view enc = rest.substr(0, end);
  if (enc.size() != 4 && enc.size() != 5)
    return make_error(Errc::invalid_input,
                      std::string(head) + "-2 must hold 4 encoding characters (5 from v2.7), found " +
                          std::to_string(enc.size()),
                      std::string(head) + "-2");
  d.component = enc[0];
  d.repetition = enc[1];
  d.escape = enc[2];
  d.subcomponent = enc[3];
  if (enc.size() == 5) d.truncation = enc[4];

  std::string all{d.field};
  all += enc;
  for (std::size_t i = 0; i < all.size(); ++i) {
    char c = all[i];
    bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (alnum || c == '\r' || c == '\n' || c == ' ')
      return make_error(Errc::invalid_input, "separator " + describe(c) + " is not allowed",
                        std::string(head) + (i == 0 ? "-1" : "-2"));
    for (std::size_t j = 0; j < i; ++j)
      if (all[j] == c)
        return make_error(Errc::invalid_input, "separator " + describe(c) + " is used twice",
                          std::string(head) + (i == 0 ? "-1" : "-2"));
  }
  return d;
}

Result<Message> Message::parse(std::string_view raw) {
  raw = strip_bom(raw);
  if (raw.substr(0, 3) != "MSH") {
    if (raw.substr(0, 3) == "FHS" || raw.substr(0, 3) == "BHS")
      return make_error(Errc::invalid_input, "input is a batch (starts with " + std::string(raw.substr(0, 3)) +
                                                 "); split it with split_batch first",
                        "segment 1");
    return make_error(Errc::invalid_input, "message does not start with MSH", "segment 1");
  }
  auto d = read_delimiters(raw);
  if (!d) return d.error();

  Message m;
  m.d_ = *d;
  std::optional<Error> err;
  for_each_line(raw, [&](std::string_view line) {
    if (err) return;
    std::size_t n = m.segments_.size() + 1;
    std::string_view name = line.substr(0, std::min(line.find(m.d_.field), line.size()));
    if (!valid_segment_name(name)) {
      err = make_error(Errc::invalid_input,
                       "segment " + std::to_string(n) + " has an invalid name (3 characters A-Z/0-9 expected)",
                       "segment " + std::to_string(n));
      return;
    }
    if (n > kMaxSegments) {
      // A bound on the work one message can cause: lookups by segment name
      // walk the list, and no real ADT or ORU comes near this many.
      err = make_error(Errc::invalid_input,
                       "message has more than " + std::to_string(kMaxSegments) + " segments",
                       "segment " + std::to_string(n));
      return;
    }
    if (n > 1 && is_header_name(name)) {
      err = make_error(Errc::invalid_input,
                       "segment " + std::to_string(n) + " is a second " + std::string(name) +
                           ": more than one message; split it with split_batch",
                       "segment " + std::to_string(n));
      return;
    }
    m.segments_.emplace_back(line, m.d_, n);
  });
  if (err) return *err;
  return m;
}

Segment Message::segment(std::string_view name, std::size_t n) const {
  for (const auto& s : segments_)
    if (s.name() == name && n-- == 0) return s;
  return {};
}

std::vector<Segment> Message::segments(std::string_view name) const {
  std::vector<Segment> out;
  for (const auto& s : segments_)
    if (s.name() == name) out.push_back(s);
  return out;
}

// ---- escapes ----

std::string unescape(std::string_view raw, const Delimiters& d) {
  std::string out;
  out.reserve(raw.size());
  std::size_t i = 0;
  while (i < raw.size()) {
    char c = raw[i];
    if (c != d.escape) {
      out += c;
      ++i;
      continue;
    }
    std::size_t close = raw.find(d.escape, i + 1);
    if (close == std::string_view::npos) {  // unterminated: keep the rest as sent
      out.append(raw.substr(i));
      break;
    }
    std::string_view body = raw.substr(i + 1, close - i - 1);
    std::string_view whole = raw.substr(i, close - i + 1);
    i = close + 1;
    if (body == "F") out += d.field;
    else if (body == "S") out += d.component;
    else if (body == "T") out += d.subcomponent;
    else if (body == "R") out += d.repetition;
    else if (body == "E") out += d.escape;
    else if (body == ".br") out += '\n';
    else if (body == "H" || body == "N") {
    } else if (body.size() >= 3 && body[0] == 'X' && (body.size() - 1) % 2 == 0) {
      std::string bytes;
      bool ok = true;
      for (std::size_t k = 1; k < body.size(); k += 2) {
        int hi = hex_value(body[k]), lo = hex_value(body[k + 1]);
        if (hi < 0 || lo < 0) {
          ok = false;
          break;
        }
        bytes += static_cast<char>(hi * 16 + lo);
      }
      out += ok ? bytes : std::string(whole);
    } else {
      out.append(whole);
    }
  }
  return out;
}

std::string escape(std::string_view text, const Delimiters& d) {
  std::string out;
  out.reserve(text.size());
  auto esc = [&](std::string_view code) {
    out += d.escape;
    out += code;
    out += d.escape;
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == d.escape) esc("E");
    else if (c == d.field) esc("F");
    else if (c == d.component) esc("S");
    else if (c == d.subcomponent) esc("T");
    else if (c == d.repetition) esc("R");
    else if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
      esc(".br");
      ++i;
    } else if (c == '\n') esc(".br");
    else if (c == '\r') esc("X0D");
    else out += c;
  }
  return out;
}

// ---- character sets ----

bool is_valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      ++i;
      continue;
    }
    std::size_t len;
    uint32_t cp;
    if (b >= 0xC2 && b <= 0xDF) len = 2, cp = b & 0x1F;
    else if (b >= 0xE0 && b <= 0xEF) len = 3, cp = b & 0x0F;
    else if (b >= 0xF0 && b <= 0xF4) len = 4, cp = b & 0x07;
    else return false;  // continuation byte first, overlong C0/C1, or > U+10FFFF lead
    if (i + len > s.size()) return false;
    for (std::size_t k = 1; k < len; ++k) {
      auto c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return false;
    if (cp >= 0xD800 && cp <= 0xDFFF) return false;
    i += len;
  }
  return true;
}

Result<std::string_view> to_utf8(std::string_view raw, std::string& scratch) {
  std::string_view text = strip_bom(raw);
  auto d = read_delimiters(text);
  if (!d) return d.error();
  std::string_view header = text.substr(0, text.find_first_of("\r\n"));
  // Only the first repetition names the message's default character set;
  // later ones list alternates switched to by escapes we do not support.
  Segment msh(header, *d, 1);
  std::string_view charset = msh.field(18).repetition(0).raw();

  if (charset.empty() || charset == "ASCII") {
    if (!has_high_bytes(text) || is_valid_utf8(text)) return raw;
    scratch = latin_to_utf8(raw, false);
    return std::string_view(scratch);
  }
  if (charset == "8859/1" || charset == "8859/15") {
    if (!has_high_bytes(raw)) return raw;
    scratch = latin_to_utf8(raw, charset == "8859/15");
    return std::string_view(scratch);
  }
  if (charset == "UNICODE UTF-8" || charset == "UTF-8") {
    if (!is_valid_utf8(raw))
      return make_error(Errc::invalid_input, "message is not valid UTF-8 although MSH-18 declares it", "MSH-18");
    return raw;
  }
  return make_error(Errc::invalid_input, "MSH-18 character set '" + std::string(charset) + "' is not supported",
                    "MSH-18");
}

Result<std::string> to_utf8(std::string_view raw) {
  std::string scratch;
  auto r = to_utf8(raw, scratch);
  if (!r) return r.error();
  if (r->data() == scratch.data()) return scratch;
  return std::string(*r);
}

// ---- batches ----

Result<std::vector<std::string_view>> split_batch(std::string_view file) {
  file = strip_bom(file);
  std::string_view head = file.substr(0, 3);
  if (head != "MSH" && head != "FHS" && head != "BHS")
    return make_error(Errc::invalid_input, "batch does not start with FHS, BHS or MSH", "segment 1");
  auto d = read_delimiters(file);
  if (!d) return d.error();

  std::vector<std::string_view> messages;
  const char* msg_begin = nullptr;
  const char* msg_end = nullptr;
  bool in_file = false, in_batch = false;
  std::size_t batch_messages = 0, batches = 0, n = 0;
  std::optional<Error> err;

  auto close_message = [&] {
    if (msg_begin) messages.emplace_back(msg_begin, static_cast<std::size_t>(msg_end - msg_begin));
    msg_begin = msg_end = nullptr;
  };
  auto fail = [&](std::string what) {
    err = make_error(Errc::invalid_input, what + " (segment " + std::to_string(n) + ")",
                     "segment " + std::to_string(n));
  };
  auto check_count = [&](std::string_view line, const char* seg, std::size_t actual, const char* what) {
    std::string_view count = piece(line, d->field, 1);
    if (count.empty()) return;
    if (!all_digits(count) || to_int(count) != static_cast<int>(actual))
      fail(std::string(seg) + "-1 says " + std::string(count) + " " + what + " but " + std::to_string(actual) +
           " were found");
  };

  for_each_line(file, [&](std::string_view line) {
    if (err) return;
    ++n;
    std::string_view name = line.substr(0, 3);
    if (name == "FHS") {
      close_message();
      if (n != 1) return fail("FHS must be the first segment of the file");
      in_file = true;
    } else if (name == "BHS") {
      close_message();
      if (in_batch) return fail("BHS inside a batch that has no BTS");
      in_batch = true;
      batch_messages = 0;
      ++batches;
    } else if (name == "BTS") {
      close_message();
      if (!in_batch) return fail("BTS without a BHS");
      check_count(line, "BTS", batch_messages, "messages");
      in_batch = false;
    } else if (name == "FTS") {
      close_message();
      if (!in_file) return fail("FTS without an FHS");
      if (in_batch) return fail("FTS before the batch's BTS");
      check_count(line, "FTS", batches, "batches");
      in_file = false;
    } else if (name == "MSH") {
      close_message();
      msg_begin = line.data();
      msg_end = line.data() + line.size();
      ++batch_messages;
    } else {
      if (!msg_begin) return fail("segment " + std::string(name) + " outside a message");
      msg_end = line.data() + line.size();
    }
  });
  if (err) return *err;
  close_message();
  return messages;
}

// ---- timestamps ----

Result<Ts> parse_ts(std::string_view s) {
  Ts t;
  std::string_view body = s;
  std::size_t sign = s.find_first_of("+-");
  if (sign != std::string_view::npos) {
    std::string_view z = s.substr(sign + 1);
    if (z.size() != 4 || !all_digits(z)) return ts_error(s, "time-zone offset must be +/-HHMM");
    int hh = to_int(z.substr(0, 2)), mm = to_int(z.substr(2, 2));
    if (hh > 14 || mm > 59) return ts_error(s, "time-zone offset out of range");
    t.offset_minutes = (s[sign] == '-' ? -1 : 1) * (hh * 60 + mm);
    body = s.substr(0, sign);
  }
  std::string_view digits = body.substr(0, body.find('.'));
  if (!all_digits(digits)) return ts_error(s, "non-digit characters");
  static constexpr std::array<std::size_t, 6> kLengths{4, 6, 8, 10, 12, 14};
  std::size_t which = 0;
  while (which < kLengths.size() && kLengths[which] != digits.size()) ++which;
  if (which == kLengths.size()) return ts_error(s, "length must be 4, 6, 8, 10, 12 or 14 digits before any fraction");
  t.precision = static_cast<Ts::Precision>(which);

  t.year = to_int(digits.substr(0, 4));
  if (t.year < 1) return ts_error(s, "year 0000");
  if (digits.size() >= 6) {
    t.month = to_int(digits.substr(4, 2));
    if (t.month < 1 || t.month > 12) return ts_error(s, "month " + std::to_string(t.month) + " is not 1-12");
  }
  if (digits.size() >= 8) {
    t.day = to_int(digits.substr(6, 2));
    int max = days_in_month(t.year, t.month);
    if (t.day < 1 || t.day > max)
      return ts_error(s, "day " + std::to_string(t.day) + " does not exist in " + std::to_string(t.year) + "-" +
                             two(t.month) + " (" + std::to_string(max) + " days)");
  }
  if (digits.size() >= 10) {
    t.hour = to_int(digits.substr(8, 2));
    if (t.hour > 23) return ts_error(s, "hour " + std::to_string(t.hour) + " is not 0-23");
  }
  if (digits.size() >= 12) {
    t.minute = to_int(digits.substr(10, 2));
    if (t.minute > 59) return ts_error(s, "minute " + std::to_string(t.minute) + " is not 0-59");
  }
  if (digits.size() >= 14) {
    t.second = to_int(digits.substr(12, 2));
    if (t.second > 59) return ts_error(s, "second " + std::to_string(t.second) + " is not 0-59");
  }
  if (digits.size() < body.size()) {
    std::string_view frac = body.substr(digits.size() + 1);
    if (digits.size() != 14) return ts_error(s, "a fraction needs seconds before it");
    if (frac.empty() || frac.size() > 4 || !all_digits(frac)) return ts_error(s, "fraction must be 1-4 digits");
    t.fraction = std::string(frac);
    t.precision = Ts::Precision::fraction;
  }
  return t;
}

std::string Ts::to_fhir_date() const {
  std::string out = std::to_string(year);
  while (out.size() < 4) out.insert(out.begin(), '0');
  if (precision >= Precision::month) out += "-" + two(month);
  if (precision >= Precision::day) out += "-" + two(day);
  return out;
}

std::string Ts::to_fhir_datetime() const {
  if (precision <= Precision::day || !offset_minutes) return to_fhir_date();
  return to_fhir_datetime(*offset_minutes);
}

std::string Ts::to_fhir_datetime(int assumed_offset_minutes) const {
  if (precision <= Precision::day) return to_fhir_date();
  std::string out = to_fhir_date() + "T" + two(hour) + ":" + two(minute) + ":" + two(second);
  if (!fraction.empty()) out += "." + fraction;
  out += offset_text(offset_minutes.value_or(assumed_offset_minutes));
  return out;
}

}  // namespace gw::hl7
