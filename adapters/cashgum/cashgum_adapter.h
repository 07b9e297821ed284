#pragma once
// The CASH/GUM sexual-health CSV adapter (formats/README.md §2, FORMAT.md
// beside this file): one CSV file (GUMCAD-style activity or SRHAD-style
// contraception, told apart by the header) -> FHIR. Pure: no I/O, no state
// after construction beyond the tables, so one instance serves every thread.
//
// Two entry points over the same translation:
//
//   parse_rows(raw) -> Result<CsvParseResult>
//     An error only for a file-level problem (binary content, broken CSV
//     syntax, no data rows, an unknown or missing required column, a column
//     named twice); then nothing is mapped. Otherwise one RowResult per data
//     record, in file order: its row number (the line of the file where the
//     record begins; the header is row 1, so the first data row of a plain
//     file is row 2, as a spreadsheet shows it), its status, its issues
//     (expression "row <n>.<Column>" or "row <n>"; messages never repeat a
//     field's value) and, unless rejected, its Bundle entries.
//       rejected  - at least one error issue; no entries.
//       unmatched - mapped, but no valid NHS number: keyed on ClinicID+PatientID.
//       accepted  - mapped, with a valid NHS number.
//
//   parse(raw, issues) -> Result<Bundle>   (the Adapter interface)
//     The transaction Bundle of every row not rejected (entries of the same
//     resource, e.g. a Patient on several rows, appear once: the first row
//     wins), with every row's issues and the file's issues in `issues`.
//     Row errors are severity error: a caller that refuses anything with
//     errors gets all-or-nothing; the ingest route should use parse_rows to
//     accept a file partially and say so per row.
//
// Every entry is a conditional PUT on a deterministic identifier, and its
// fullUrl a urn:uuid derived from that identifier, so the same file gives
// byte-identical output and re-posting it changes nothing.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/adapter.h"
#include "adapters/csv/csv_reader.h"
#include "adapters/cashgum/tables.h"
#include "gateway/common/issues.h"

namespace gw::adapters::cashgum {

enum class FileKind { gumcad, srhad };
enum class RowStatus { accepted, rejected, unmatched };
const char* row_status_name(RowStatus s);

struct Entry {
  std::string full_url;  // "urn:uuid:..." (deterministic)
  std::string json;      // the Bundle.entry object, compact JSON
};

struct RowResult {
  std::size_t row = 0;
  RowStatus status = RowStatus::rejected;
  std::vector<Issue> issues;
  std::vector<Entry> entries;
  bool concern = false;  // one entry is the disclosable safeguarding-concern Flag
};

struct CsvParseResult {
  FileKind kind = FileKind::gumcad;
  csv::Encoding encoding = csv::Encoding::utf8;
  std::vector<Issue> file_issues;  // warnings about the file as a whole (ignored columns, encoding)
  std::vector<RowResult> rows;

  std::size_t count(RowStatus s) const;
};

class CashGumAdapter final : public Adapter {
 public:
  // Loads profiles_dir/adapters/cashgum.json; the error names the file and key.
  static Result<AdapterPtr> create(const std::string& profiles_dir);

  std::string_view format_id() const override { return "cashgum"; }
  Result<Bundle> parse(std::string_view raw, IssueSink& issues) const override;
  // Inbound only: nothing is ever sent back to a clinic as CSV (Errc::unprocessable).
  Result<std::string> render(const Bundle& in, IssueSink& issues) const override;

  Result<CsvParseResult> parse_rows(std::string_view raw) const;
  // The transaction Bundle of the rows not rejected, each resource once.
  static Bundle bundle_of(const CsvParseResult& result);

  const Tables& tables() const { return tables_; }

 private:
  explicit CashGumAdapter(Tables t) : tables_(std::move(t)) {}
  Tables tables_;
};

}  // namespace gw::adapters::cashgum
