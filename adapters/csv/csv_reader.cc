#include "adapters/csv/csv_reader.h"

#include <csv.h>

#include <cstdint>
#include <memory>

namespace gw::adapters::csv {
namespace {

// Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int n = 0;
    uint32_t cp = 0, min = 0;
    if ((c & 0xE0) == 0xC0) n = 1, cp = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0) n = 2, cp = c & 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0) n = 3, cp = c & 0x07, min = 0x10000;
    else return false;
    if (end - p <= n) return false;
    for (int i = 1; i <= n; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    p += n + 1;
  }
  return true;
}

// Windows-1252 0x80..0x9F; 0 marks the five undefined bytes.
constexpr uint16_t kCp1252[32] = {0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
                                  0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0,      0x017D, 0,
                                  0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
                                  0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178};

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

struct ParseState {
  CsvFile* file = nullptr;
  std::vector<std::string> fields;
  std::size_t start = 0;
  bool pending = false;
};

void on_field(void* s, std::size_t len, void* data) {
  auto* st = static_cast<ParseState*>(data);
  std::string f;
  f.reserve(len);
  const char* p = static_cast<const char*>(s);
  // A line break inside a quoted field is kept as LF, so CRLF and LF files read the same.
  for (std::size_t i = 0; i < len; ++i) {
    if (p[i] == '\r' && i + 1 < len && p[i + 1] == '\n') continue;
    f += p[i];
  }
  st->fields.push_back(std::move(f));
}

void on_record(int, void* data) {
  auto* st = static_cast<ParseState*>(data);
  st->file->records.push_back(CsvRecord{st->start, std::move(st->fields)});
  st->fields.clear();
  st->pending = false;
}

struct ParserDeleter {
  void operator()(csv_parser* p) const {
    csv_free(p);
    delete p;
  }
};

Error at_line(std::size_t line, const std::string& what) {
  return make_error(Errc::invalid_input, "row " + std::to_string(line) + ": " + what, "row " + std::to_string(line));
}

}  // namespace

std::string to_utf8(std::string_view raw, Encoding& detected, bool& had_bom) {
  had_bom = raw.size() >= 3 && raw.substr(0, 3) == "\xEF\xBB\xBF";
  if (had_bom) raw.remove_prefix(3);
  if (valid_utf8(raw)) {
    detected = Encoding::utf8;
    return std::string(raw);
  }
  detected = Encoding::windows1252;
  std::string out;
  out.reserve(raw.size() + raw.size() / 8);
  for (unsigned char c : raw) {
    if (c < 0x80) out += static_cast<char>(c);
    else if (c < 0xA0) append_utf8(out, kCp1252[c - 0x80] ? kCp1252[c - 0x80] : 0xFFFD);
    else append_utf8(out, c);
  }
  return out;
}

std::string trim(std::string_view field) {
  auto b = field.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  auto e = field.find_last_not_of(" \t\r\n");
  return std::string(field.substr(b, e - b + 1));
}

Result<CsvFile> read_csv(std::string_view raw) {
  if (raw.find('\0') != std::string_view::npos)
    return make_error(Errc::invalid_input, "not a CSV text file: it contains NUL bytes (binary content)");
  CsvFile file;
  std::string text = to_utf8(raw, file.encoding, file.had_bom);

  std::unique_ptr<csv_parser, ParserDeleter> p(new csv_parser);
  if (csv_init(p.get(), CSV_STRICT | CSV_STRICT_FINI) != 0) {
    delete p.release();
    return make_error(Errc::internal, "CSV parser could not be initialised");
  }
  ParseState st;
  st.file = &file;
  std::string_view rest(text);
  std::size_t line = 0;
  while (!rest.empty()) {
    ++line;
    std::size_t nl = rest.find('\n');
    std::string_view chunk = nl == std::string_view::npos ? rest : rest.substr(0, nl + 1);
    rest.remove_prefix(chunk.size());
    if (!st.pending && chunk.find_first_not_of(" \t\r\n") != std::string_view::npos) {
      st.start = line;
      st.pending = true;
    }
    std::size_t n = csv_parse(p.get(), chunk.data(), chunk.size(), on_field, on_record, &st);
    if (n != chunk.size()) {
      if (csv_error(p.get()) == CSV_EPARSE)
        return at_line(st.start, "not valid CSV (RFC 4180) at line " + std::to_string(line) +
                                     ": a quote inside an unquoted field, or text after a closing quote");
      return make_error(Errc::too_large, "CSV parser ran out of memory");
    }
  }
  if (csv_fini(p.get(), on_field, on_record, &st) != 0)
    return at_line(st.start, "unterminated quoted field: the closing quote is missing");
  return file;
}

}  // namespace gw::adapters::csv
