#pragma once
// RFC 4180 reading for the CSV adapters (CASH/GUM, CP-IS upload), over
// libcsv (Debian libcsv-dev, LGPL-2.1+, linked dynamically) in strict mode: quoted fields with commas,
// doubled quotes and line breaks, CRLF or LF. Around it, what libcsv does not
// do: the text encoding (a UTF-8 byte-order mark is dropped; valid UTF-8 is
// kept; anything else is read as Windows-1252 and converted to UTF-8) and the
// line number where each record begins, which is what users are told.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/common/result.h"

namespace gw::adapters::csv {

enum class Encoding { utf8, windows1252 };

struct CsvRecord {
  std::size_t line = 0;             // 1-based line of the file where the record begins
  std::vector<std::string> fields;  // UTF-8, unquoted
};

struct CsvFile {
  Encoding encoding = Encoding::utf8;
  bool had_bom = false;
  std::vector<CsvRecord> records;  // records[0] is the header; blank lines are not records
};

// Converts raw bytes to UTF-8 text (BOM dropped). Never fails: every byte
// sequence is either UTF-8 or Windows-1252 (its five undefined bytes become U+FFFD).
std::string to_utf8(std::string_view raw, Encoding& detected, bool& had_bom);

// The field without leading and trailing blanks (spaces, tabs, line breaks).
std::string trim(std::string_view field);

// Reads a whole file. File-level errors (Errc::invalid_input) say which line:
// binary content (a NUL byte), an unterminated quoted field, a quote in the
// middle of an unquoted field or text after a closing quote.
Result<CsvFile> read_csv(std::string_view raw);

}  // namespace gw::adapters::csv
