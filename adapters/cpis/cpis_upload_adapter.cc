#include "adapters/cpis/cpis_upload_adapter.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <map>
#include <optional>

#include "gateway/common/json.h"
#include "gateway/model/cpis_plan.h"
#include "gateway/model/resource_text.h"
#include "gateway/model/search_params.h"
#include "gateway/identity/nhs_number.h"

namespace gw::adapters::cpis {

namespace plan = gw::model::cpis;

namespace {

enum Column {
  kLocalChildId,
  kNhsNumber,
  kFamilyName,
  kGivenName,
  kDateOfBirth,
  kPlanType,
  kStartDate,
  kEndDate,
  kDeleteDate,
  kLaOds,
  kLaName,
  kOfficePhone,
  kEmergencyPhone,
  kLacLegalStatus,
  kColumns
};

struct ColumnSpec {
  std::string_view name;
  bool required;  // must be in the header (a value may still be optional)
};

constexpr std::array<ColumnSpec, kColumns> kSpec = {{
    {"LocalChildID", true},
    {"NHSNumber", true},
    {"FamilyName", false},
    {"GivenName", false},
    {"DateOfBirth", false},
    {"PlanType", true},
    {"StartDate", true},
    {"EndDate", true},
    {"DeleteDate", true},
    {"LAODS", true},
    {"LAName", false},
    {"OfficePhone", false},
    {"EmergencyPhone", true},
    {"LACLegalStatus", false},
}};

constexpr std::array<std::string_view, 4> kLacLegalStatuses = {"C1", "C2", "V2", "E1"};
constexpr std::size_t kMaxLocalIdLength = 64;

Error file_error(std::size_t row, const std::string& what) {
  return make_error(Errc::invalid_input, "row " + std::to_string(row) + ": " + what, "row " + std::to_string(row));
}

// header column index per Column, -1 when the optional column is absent.
using Layout = std::array<int, kColumns>;

Result<Layout> layout_of(const csv::CsvRecord& header) {
  Layout at;
  at.fill(-1);
  for (std::size_t i = 0; i < header.fields.size(); ++i) {
    std::string name = csv::trim(header.fields[i]);
    auto spec = std::find_if(kSpec.begin(), kSpec.end(), [&](const ColumnSpec& c) { return c.name == name; });
    if (spec == kSpec.end())
      return file_error(header.line, "unknown column '" + name.substr(0, 40) + "' (the columns are those of FORMAT.md)");
    auto c = static_cast<std::size_t>(spec - kSpec.begin());
    if (at[c] >= 0) return file_error(header.line, "column " + name + " appears twice");
    at[c] = static_cast<int>(i);
  }
  for (std::size_t c = 0; c < kColumns; ++c)
    if (kSpec[c].required && at[c] < 0)
      return file_error(header.line, "required column " + std::string(kSpec[c].name) + " is missing");
  return at;
}

// A telephone number as people write it: digits, spaces, + ( ) - and at least six digits.
bool plausible_phone(std::string_view s) {
  if (s.size() > 32) return false;
  std::size_t digits = 0;
  for (char c : s) {
    if (c >= '0' && c <= '9') ++digits;
    else if (c != ' ' && c != '+' && c != '(' && c != ')' && c != '-') return false;
  }
  return digits >= 6;
}

void put(json::Writer& w, const char* key, std::string_view v) {
  w.Key(key);
  w.String(v.data(), static_cast<json::SizeType>(v.size()));
}

void coding(json::Writer& w, std::string_view system, std::string_view code, std::string_view display = {}) {
  w.StartObject();
  put(w, "system", system);
  put(w, "code", code);
  if (!display.empty()) put(w, "display", display);
  w.EndObject();
}

// One row read and checked. Fields are trimmed; empty means absent.
class RowReader {
 public:
  RowReader(const csv::CsvRecord& rec, const Layout& at, const UploadContext& ctx) : rec_(rec), at_(at), ctx_(ctx) {}

  UploadRecord read() {
    out_.row = rec_.line;
    out_.local_child_id = field(kLocalChildId);
    if (out_.local_child_id.size() > kMaxLocalIdLength) out_.local_child_id.resize(kMaxLocalIdLength);
    check_local_id();
    check_nhs_number();
    type_ = plan::plan_type_by_abbreviation(field(kPlanType));
    if (field(kPlanType).empty()) problem(kPlanType, "required", "PlanType is required (CPP, LAC or UCPP)");
    else if (!type_) problem(kPlanType, "code-invalid", "PlanType must be CPP, LAC or UCPP");
    check_dates();
    check_authority();
    check_phones();
    check_legal_status();
    out_.withdrawal = delete_.has_value();
    if (out_.accepted()) map();
    return std::move(out_);
  }

 private:
  std::string field(Column c) const {
    int i = at_[c];
    return i < 0 || static_cast<std::size_t>(i) >= rec_.fields.size() ? std::string() : csv::trim(rec_.fields[i]);
  }

  void problem(Column c, std::string code, std::string message) {
    out_.problems.push_back(Problem{std::string(kSpec[c].name), std::move(code), std::move(message)});
  }

  void check_local_id() {
    const std::string& id = out_.local_child_id;
    if (id.empty()) return problem(kLocalChildId, "required", "LocalChildID is required");
    if (field(kLocalChildId).size() > kMaxLocalIdLength)
      return problem(kLocalChildId, "value", "LocalChildID is longer than 64 characters");
    // '|' separates the parts of the plan identifier LAODS|LocalChildID|PlanType.
    bool printable = std::all_of(id.begin(), id.end(), [](char c) { return c >= 0x20 && c != 0x7f && c != '|'; });
    if (!printable) problem(kLocalChildId, "value", "LocalChildID must not contain '|' or control characters");
  }

  void check_nhs_number() {
    std::string raw = field(kNhsNumber);
    if (raw.empty()) return problem(kNhsNumber, "required", "NHSNumber is required");
    auto n = identity::normalise_nhs_number(raw);
    if (!n) return problem(kNhsNumber, "value", "invalid NHS number: " + n.error().message);
    out_.nhs_number = *n;
  }

  // Returns the date when the field holds a real YYYY-MM-DD day.
  std::optional<std::string> date(Column c, bool required) {
    std::string v = field(c);
    std::string name(kSpec[c].name);
    if (v.empty()) {
      if (required) problem(c, "required", name + " is required");
      return std::nullopt;
    }
    if (!plan::is_calendar_date(v)) {
      problem(c, "value", name + " must be a date written YYYY-MM-DD");
      return std::nullopt;
    }
    return v;
  }

  void check_dates() {
    start_ = date(kStartDate, true);
    end_ = date(kEndDate, false);
    delete_ = date(kDeleteDate, false);
    birth_ = date(kDateOfBirth, false);
    if (start_ && end_ && *end_ < *start_) problem(kEndDate, "value", "EndDate is before StartDate");
  }

  void check_authority() {
    std::string ods = field(kLaOds);
    if (ods.empty()) return problem(kLaOds, "required", "LAODS is required");
    if (!ctx_.sender_ods.empty() && ods != ctx_.sender_ods)
      problem(kLaOds, "forbidden",
              "LAODS is not the organisation of the sender's certificate: an authority uploads only its own plans");
  }

  void check_phones() {
    std::string emergency = field(kEmergencyPhone);
    if (emergency.empty())
      problem(kEmergencyPhone, "required", "EmergencyPhone (the emergency-duty, out-of-hours number) is required");
    else if (!plausible_phone(emergency))
      problem(kEmergencyPhone, "value", "EmergencyPhone is not a telephone number (digits, spaces, + ( ) -)");
    std::string office = field(kOfficePhone);
    if (!office.empty() && !plausible_phone(office))
      problem(kOfficePhone, "value", "OfficePhone is not a telephone number (digits, spaces, + ( ) -)");
  }

  void check_legal_status() {
    std::string s = field(kLacLegalStatus);
    if (s.empty()) return;
    if (type_ && type_->abbreviation != "LAC")
      return problem(kLacLegalStatus, "value", "LACLegalStatus is given only for a LAC plan");
    if (std::find(kLacLegalStatuses.begin(), kLacLegalStatuses.end(), s) == kLacLegalStatuses.end())
      problem(kLacLegalStatus, "code-invalid", "LACLegalStatus must be C1, C2, V2 or E1");
  }

  void map() {
    out_.plan_identifier = field(kLaOds) + "|" + out_.local_child_id + "|" + std::string(type_->abbreviation);
    out_.patient.full_url = "urn:uuid:" + model::new_uuid();
    out_.patient.json = patient_entry();
    out_.plan.full_url = "urn:uuid:" + model::new_uuid();
    out_.plan.json = plan_entry();
  }

  std::string patient_entry() const {
    json::Buffer buf;
    json::Writer w(buf);
    w.StartObject();
    put(w, "fullUrl", out_.patient.full_url);
    w.Key("resource");
    w.StartObject();
    put(w, "resourceType", "Patient");
    w.Key("identifier");
    w.StartArray();
    w.StartObject();
    put(w, "system", identity::kNhsNumberSystem);
    put(w, "value", out_.nhs_number);
    w.EndObject();
    w.EndArray();
    std::string family = field(kFamilyName), given = field(kGivenName);
    if (!family.empty() || !given.empty()) {
      w.Key("name");
      w.StartArray();
      w.StartObject();
      if (!family.empty()) put(w, "family", family);
      if (!given.empty()) {
        w.Key("given");
        w.StartArray();
        w.String(given.data(), static_cast<json::SizeType>(given.size()));
        w.EndArray();
      }
      w.EndObject();
      w.EndArray();
    }
    if (birth_) put(w, "birthDate", *birth_);
    w.EndObject();
    w.Key("request");
    w.StartObject();
    put(w, "method", "POST");
    put(w, "url", "Patient");
    // Conditional create: a Patient the gateway already holds is kept as it is.
    put(w, "ifNoneExist", "identifier=" + model::token_query_value(identity::kNhsNumberSystem, out_.nhs_number));
    w.EndObject();
    w.EndObject();
    return std::string(buf.GetString(), buf.GetSize());
  }

  std::string status() const {
    if (out_.withdrawal) return "entered-in-error";
    return end_ && *end_ <= ctx_.today ? "inactive" : "active";
  }

  void phone(json::Writer& w, std::string_view value, int rank, std::string_view purpose) const {
    w.StartObject();
    w.Key("extension");
    w.StartArray();
    w.StartObject();
    put(w, "url", plan::kContactPurposeUrl);
    put(w, "valueCode", purpose);
    w.EndObject();
    w.EndArray();
    put(w, "system", "phone");
    put(w, "value", value);
    put(w, "use", "work");
    w.Key("rank");
    w.Int(rank);
    w.EndObject();
  }

  std::string plan_entry() const {
    json::Buffer buf;
    json::Writer w(buf);
    w.StartObject();
    put(w, "fullUrl", out_.plan.full_url);
    w.Key("resource");
    w.StartObject();
    put(w, "resourceType", "CareTeam");
    std::string legal = field(kLacLegalStatus);
    if (!legal.empty()) {
      w.Key("extension");
      w.StartArray();
      w.StartObject();
      put(w, "url", plan::kLacLegalStatusUrl);
      put(w, "valueCode", legal);
      w.EndObject();
      w.EndArray();
    }
    w.Key("identifier");
    w.StartArray();
    w.StartObject();
    put(w, "system", plan::kPlanIdSystem);
    put(w, "value", out_.plan_identifier);
    w.EndObject();
    w.EndArray();
    put(w, "status", status());
    w.Key("category");
    w.StartArray();
    w.StartObject();
    w.Key("coding");
    w.StartArray();
    coding(w, plan::kSnomed, type_->snomed, type_->display);
    w.EndArray();
    w.EndObject();
    w.EndArray();
    w.Key("subject");
    w.StartObject();
    put(w, "reference", out_.patient.full_url);
    w.Key("identifier");
    w.StartObject();
    put(w, "system", identity::kNhsNumberSystem);
    put(w, "value", out_.nhs_number);
    w.EndObject();
    w.EndObject();
    w.Key("period");
    w.StartObject();
    put(w, "start", *start_);
    if (end_) put(w, "end", *end_);
    w.EndObject();
    w.Key("managingOrganization");
    w.StartArray();
    w.StartObject();
    w.Key("identifier");
    w.StartObject();
    put(w, "system", plan::kOdsSystem);
    put(w, "value", field(kLaOds));
    w.EndObject();
    if (std::string name = field(kLaName); !name.empty()) put(w, "display", name);
    w.EndObject();
    w.EndArray();
    w.Key("telecom");
    w.StartArray();
    phone(w, field(kEmergencyPhone), 1, "emergency-duty");
    if (std::string office = field(kOfficePhone); !office.empty()) phone(w, office, 2, "office-hours");
    w.EndArray();
    w.EndObject();
    w.Key("request");
    w.StartObject();
    put(w, "method", "PUT");
    // Conditional update on the plan identifier: uploading the plan again updates it.
    put(w, "url", "CareTeam?identifier=" + model::token_query_value(plan::kPlanIdSystem, out_.plan_identifier));
    w.EndObject();
    w.EndObject();
    return std::string(buf.GetString(), buf.GetSize());
  }

  const csv::CsvRecord& rec_;
  const Layout& at_;
  const UploadContext& ctx_;
  UploadRecord out_;
  const plan::PlanType* type_ = nullptr;
  std::optional<std::string> start_, end_, delete_, birth_;
};

void write_issue(json::Writer& w, const char* severity, std::string_view code, std::string_view response_code,
                 std::string_view response_display, const std::vector<std::string>& expressions,
                 const std::string& diagnostics) {
  w.StartObject();
  put(w, "severity", severity);
  put(w, "code", code);
  if (!response_code.empty()) {
    w.Key("details");
    w.StartObject();
    w.Key("coding");
    w.StartArray();
    coding(w, kResponseSystem, response_code, response_display);
    w.EndArray();
    w.EndObject();
  }
  put(w, "diagnostics", diagnostics);
  if (!expressions.empty()) {
    w.Key("expression");
    w.StartArray();
    for (const auto& e : expressions) w.String(e.data(), static_cast<json::SizeType>(e.size()));
    w.EndArray();
  }
  w.EndObject();
}

std::string record_label(const UploadRecord& r) {
  return "row " + std::to_string(r.row) + ", LocalChildID " + (r.local_child_id.empty() ? "(none)" : r.local_child_id);
}

std::string percent(std::size_t n, std::size_t of) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %%", of ? 100.0 * static_cast<double>(n) / static_cast<double>(of) : 0.0);
  return buf;
}

// A plan (LAODS|LocalChildID|PlanType) sent twice in one file: both rows
// would be conditional updates of one identifier in one transaction, and
// each would create its own CareTeam. The first row stands.
void reject_repeated_plans(std::vector<UploadRecord>& records) {
  std::map<std::string, std::size_t> first_row;
  for (auto& r : records) {
    if (!r.accepted()) continue;
    auto [it, fresh] = first_row.emplace(r.plan_identifier, r.row);
    if (fresh) continue;
    r.problems.push_back(Problem{"", "duplicate",
                                 "the same LocalChildID and PlanType are on row " + std::to_string(it->second) +
                                     ": send each plan once per file"});
    r.patient = {};
    r.plan = {};
  }
}

}  // namespace

Result<AdapterPtr> CpisUploadAdapter::create() { return AdapterPtr(new CpisUploadAdapter()); }

Result<UploadParse> CpisUploadAdapter::parse_records(std::string_view raw, const UploadContext& ctx) const {
  auto file = csv::read_csv(raw);
  if (!file) return file.error();
  if (file->records.empty()) return make_error(Errc::invalid_input, "the file is empty: no header row");
  auto layout = layout_of(file->records[0]);
  if (!layout) return layout.error();
  if (file->records.size() < 2) return file_error(file->records[0].line, "the file has a header but no plan rows");
  UploadParse out;
  out.encoding = file->encoding;
  const std::size_t width = file->records[0].fields.size();
  for (std::size_t i = 1; i < file->records.size(); ++i) {
    const csv::CsvRecord& rec = file->records[i];
    if (rec.fields.size() != width) {
      UploadRecord bad;
      bad.row = rec.line;
      int id_at = (*layout)[kLocalChildId];
      if (static_cast<std::size_t>(id_at) < rec.fields.size()) bad.local_child_id = csv::trim(rec.fields[id_at]);
      bad.problems.push_back(Problem{"", "structure",
                                     "the row has " + std::to_string(rec.fields.size()) + " fields, the header " +
                                         std::to_string(width)});
      out.records.push_back(std::move(bad));
      continue;
    }
    out.records.push_back(RowReader(rec, *layout, ctx).read());
  }
  reject_repeated_plans(out.records);
  return out;
}

Bundle CpisUploadAdapter::bundle_of(const std::vector<UploadRecord>& records) {
  // Rows about one person share its first row's Patient entry.
  std::map<std::string, std::string> patient_url;
  std::string out = R"({"resourceType":"Bundle","type":"transaction","entry":[)";
  bool first = true;
  auto add = [&](const std::string& entry) {
    if (!first) out += ',';
    first = false;
    out += entry;
  };
  for (const auto& r : records) {
    if (!r.accepted()) continue;
    auto [it, fresh] = patient_url.emplace(r.nhs_number, r.patient.full_url);
    if (fresh) {
      add(r.patient.json);
      add(r.plan.json);
    } else {
      std::string plan = r.plan.json;
      std::string mine = "\"reference\":\"" + r.patient.full_url + "\"";
      plan.replace(plan.find(mine), mine.size(), "\"reference\":\"" + it->second + "\"");
      add(plan);
    }
  }
  out += "]}";
  return Bundle{std::move(out)};
}

Result<Bundle> CpisUploadAdapter::parse(std::string_view raw, IssueSink& issues) const {
  auto parsed = parse_records(raw, UploadContext{"", plan::utc_today()});
  if (!parsed) return parsed.error();
  for (const auto& r : parsed->records)
    for (const auto& p : r.problems)
      issues.error(p.code, "row " + std::to_string(r.row) + (p.column.empty() ? "" : "." + p.column), p.message);
  return bundle_of(parsed->records);
}

Result<std::string> CpisUploadAdapter::render(const Bundle&, IssueSink&) const {
  return make_error(Errc::unprocessable, "the CP-IS upload is inbound only: nothing is sent back as an upload file");
}

std::string CpisUploadAdapter::outcome(const std::vector<UploadRecord>& records, const Totals& totals) {
  json::Buffer buf;
  json::Writer w(buf);
  w.StartObject();
  put(w, "resourceType", "OperationOutcome");
  w.Key("issue");
  w.StartArray();
  std::size_t accepted = 0;
  for (const auto& r : records) {
    std::string row = "row " + std::to_string(r.row);
    if (r.accepted()) {
      ++accepted;
      std::string what = r.withdrawal ? "plan withdrawn" : "plan accepted";
      write_issue(w, "information", "informational", kAccepted, "Successful record upload", {row},
                  record_label(r) + ": " + what);
      continue;
    }
    // Every problem of the record in this one issue: its paths, and its reasons in order.
    std::string reasons;
    std::vector<std::string> paths;
    for (const auto& p : r.problems) {
      reasons += (reasons.empty() ? "" : "; ") + p.message;
      std::string path = p.column.empty() ? row : row + "." + p.column;
      if (std::find(paths.begin(), paths.end(), path) == paths.end()) paths.push_back(std::move(path));
    }
    write_issue(w, "error", r.problems.front().code, kRejected, "Unsuccessful record upload", paths,
                record_label(r) + ": rejected: " + reasons);
  }
  std::size_t n = records.size();
  std::string summary = std::to_string(n) + " records: " + std::to_string(accepted) + " accepted (CPR06), " +
                        std::to_string(n - accepted) + " rejected (CPR07). NHS numbers already known to the gateway: " +
                        std::to_string(totals.known_nhs_numbers) + " of " + std::to_string(n) + " (" +
                        percent(totals.known_nhs_numbers, n) + ")";
  if (n && totals.known_nhs_numbers * 100 < n * 95)
    summary += ", below the 95 % CP-IS expects: check the NHS numbers against PDS";
  summary += ".";
  if (totals.duplicate) summary += " This file was already accepted from this sender; nothing changed.";
  write_issue(w, "information", "informational", "", "", {}, summary);
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace gw::adapters::cpis
