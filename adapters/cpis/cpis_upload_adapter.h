#pragma once
// The CP-IS upload from a local authority (formats/README.md §4, FORMAT.md
// beside this file): one CSV file, one row per plan -> a conditional create
// of the Patient (by NHS number) and a conditional update of the plan
// CareTeam (by identifier LAODS|LocalChildID|PlanType, so uploading a plan
// again updates it), following the plan model of gateway/model/cpis_plan.h.
// Pure: no I/O; "today" and the sender's ODS code come in an UploadContext.
//
//   parse_records(raw, ctx) -> Result<UploadParse>
//     An error only for a file-level problem (binary content, broken CSV,
//     no data rows, a missing, unknown or repeated column); nothing is mapped.
//     Otherwise one UploadRecord per data row, in file order, accepted (with
//     its entries) or rejected (with every problem found).
//
//   outcome(records, totals) -> OperationOutcome JSON: the answer to the
//     local authority, one issue per record (CPR06 / CPR07) and a summary.
//
// Problem messages never repeat a field's value (no NHS number, no name).
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/adapter.h"
#include "adapters/csv/csv_reader.h"

namespace gw::adapters::cpis {

// The CP-IS upload record response codes (DMS vocabulary CP-ISUploadRecordResponse).
inline constexpr std::string_view kResponseSystem = "urn:oid:2.16.840.1.113883.2.1.3.2.4.17.473";
inline constexpr std::string_view kAccepted = "CPR06";
inline constexpr std::string_view kRejected = "CPR07";

struct UploadContext {
  std::string sender_ods;  // the certificate's O=; empty: LAODS is not checked (the plain Adapter interface)
  std::string today;       // YYYY-MM-DD: whether an end date has passed (status inactive)
};

struct Problem {
  std::string column;   // "" when about the row as a whole
  std::string code;     // FHIR issue type: required | value | code-invalid | forbidden | not-found | structure | duplicate
  std::string message;  // never a field's value
};

struct Entry {
  std::string full_url;  // urn:uuid:...
  std::string json;      // the Bundle.entry object, compact JSON
};

struct UploadRecord {
  std::size_t row = 0;         // line of the file where the record begins (the header is row 1)
  std::string local_child_id;  // named in the answer (the NHS number never is)
  std::vector<Problem> problems;
  bool accepted() const { return problems.empty(); }

  // Set when the fields could be read (for the ingest pipeline's store checks):
  std::string nhs_number;       // normalised; for the match rate only, never written to any answer or log
  std::string plan_identifier;  // LAODS|LocalChildID|PlanType
  bool withdrawal = false;      // DeleteDate given: the plan is entered-in-error
  Entry patient;                // conditional create by NHS number
  Entry plan;                   // conditional update by plan identifier
};

struct UploadParse {
  csv::Encoding encoding = csv::Encoding::utf8;
  std::vector<UploadRecord> records;
};

struct Totals {
  std::size_t known_nhs_numbers = 0;  // records whose NHS number the gateway held before the upload
  bool duplicate = false;             // the same file was already accepted from this sender
};

class CpisUploadAdapter final : public Adapter {
 public:
  static Result<AdapterPtr> create();

  std::string_view format_id() const override { return "cpis-upload"; }
  // Every row not rejected, with today's date and no sender check.
  Result<Bundle> parse(std::string_view raw, IssueSink& issues) const override;
  // Inbound only (Errc::unprocessable).
  Result<std::string> render(const Bundle& in, IssueSink& issues) const override;

  Result<UploadParse> parse_records(std::string_view raw, const UploadContext& ctx) const;

  // The transaction Bundle of the accepted records; a Patient named by
  // several rows is created once (its first row's entry).
  static Bundle bundle_of(const std::vector<UploadRecord>& records);

  // The answer: one issue per record, then the summary (totals and match rate).
  static std::string outcome(const std::vector<UploadRecord>& records, const Totals& totals);
};

}  // namespace gw::adapters::cpis
