// CSV rows -> FHIR entries. What may leave the service is decided here and
// documented in FORMAT.md: every resource but the safeguarding-concern Flag
// carries R + STD + SEX (+ HIV); the Flag carries none of the clinical detail.
#include <openssl/evp.h>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <set>

#include "adapters/cashgum/cashgum_adapter.h"
#include "gateway/common/json.h"
#include "gateway/identity/nhs_number.h"

namespace gw::adapters::cashgum {
namespace {

constexpr std::string_view kConfidentiality = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
constexpr std::string_view kActCode = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
constexpr std::string_view kOds = "https://fhir.nhs.uk/Id/ods-organization-code";
constexpr std::string_view kLocalId = "urn:cpis-gateway:local-id:";
constexpr std::string_view kIdBase = "https://cpis-gateway.nhs.uk/Id/";
constexpr std::string_view kExtBase = "https://cpis-gateway.nhs.uk/StructureDefinition/";

std::string upper_trim(std::string_view s) {
  auto b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return {};
  auto e = s.find_last_not_of(" \t");
  std::string out(s.substr(b, e - b + 1));
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string trim(std::string_view s) {
  auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  auto e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

struct Date {
  int y = 0, m = 0, d = 0;
  std::string iso() const {
    char b[16];
    std::snprintf(b, sizeof b, "%04d-%02d-%02d", y, m, d);
    return b;
  }
  bool operator<(const Date& o) const { return std::tie(y, m, d) < std::tie(o.y, o.m, o.d); }
};

// YYYY-MM-DD or DD/MM/YYYY, a real day of the Gregorian calendar.
std::optional<Date> parse_date(std::string_view s) {
  Date dt;
  auto num = [&](std::size_t pos, std::size_t n) {
    int v = 0;
    for (std::size_t i = pos; i < pos + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return -1;
      v = v * 10 + (s[i] - '0');
    }
    return v;
  };
  if (s.size() != 10) return std::nullopt;
  if (s[4] == '-' && s[7] == '-') dt = {num(0, 4), num(5, 2), num(8, 2)};
  else if (s[2] == '/' && s[5] == '/') dt = {num(6, 4), num(3, 2), num(0, 2)};
  else return std::nullopt;
  if (dt.y < 1900 || dt.m < 1 || dt.m > 12 || dt.d < 1) return std::nullopt;
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (dt.y % 4 == 0 && dt.y % 100 != 0) || dt.y % 400 == 0;
  int max = kDays[dt.m - 1] + (dt.m == 2 && leap ? 1 : 0);
  if (dt.d > max) return std::nullopt;
  return dt;
}

int age_at(const Date& dob, const Date& on) {
  int age = on.y - dob.y;
  if (on.m < dob.m || (on.m == dob.m && on.d < dob.d)) --age;
  return age;
}

std::string hex(const unsigned char* p, std::size_t n) {
  static const char* k = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    out += k[p[i] >> 4];
    out += k[p[i] & 15];
  }
  return out;
}

// SHA-256 over the parts, each followed by a 0x1F separator (no part can contain it).
void sha256(std::initializer_list<std::string_view> parts, unsigned char out[32]) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  for (auto p : parts) {
    EVP_DigestUpdate(ctx, p.data(), p.size());
    EVP_DigestUpdate(ctx, "\x1f", 1);
  }
  unsigned int n = 0;
  EVP_DigestFinal_ex(ctx, out, &n);
  EVP_MD_CTX_free(ctx);
}

std::string key_hash(std::initializer_list<std::string_view> parts) {
  unsigned char h[32];
  sha256(parts, h);
  return hex(h, 16);
}

// A name-based UUID (RFC 9562 version 8) from the conditional key: the same
// resource always gets the same fullUrl, so output is deterministic.
std::string urn_for(std::string_view type, std::string_view system, std::string_view value) {
  unsigned char h[32];
  sha256({type, system, value}, h);
  h[6] = static_cast<unsigned char>((h[6] & 0x0F) | 0x80);
  h[8] = static_cast<unsigned char>((h[8] & 0x3F) | 0x80);
  std::string x = hex(h, 16);
  return "urn:uuid:" + x.substr(0, 8) + "-" + x.substr(8, 4) + "-" + x.substr(12, 4) + "-" + x.substr(16, 4) + "-" +
         x.substr(20, 12);
}

// RFC 3986 unreserved characters stay; everything else is percent-encoded.
std::string url_encode(std::string_view s) {
  static const char* k = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == ':' || c == '/') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += k[c >> 4];
      out += k[c & 15];
    }
  }
  return out;
}

// The columns the mapping reads; -1 when the file has no such column.
struct ColumnIndex {
  int record_type = -1, clinic = -1, patient = -1, nhs = -1, dob = -1, age = -1, gender = -1, la = -1, date = -1,
      activity = -1, outcome = -1, cse = -1, referred = -1, referral_date = -1, practitioner = -1, method = -1,
      status = -1, emergency = -1;
};

// A small writer over gw::json::Writer for one entry.
class Out {
 public:
  Out() : w_(buf_) {}
  void obj() { w_.StartObject(); }
  void end() { w_.EndObject(); }
  void arr() { w_.StartArray(); }
  void end_arr() { w_.EndArray(); }
  void key(std::string_view k) { w_.Key(k.data(), static_cast<json::SizeType>(k.size())); }
  void str(std::string_view v) { w_.String(v.data(), static_cast<json::SizeType>(v.size())); }
  void kv(std::string_view k, std::string_view v) {
    key(k);
    str(v);
  }
  void kb(std::string_view k, bool v) {
    key(k);
    w_.Bool(v);
  }
  void coding(std::string_view system, std::string_view code, std::string_view display) {
    obj();
    kv("system", system);
    kv("code", code);
    if (!display.empty()) kv("display", display);
    end();
  }
  void concept_(std::string_view system, std::string_view code, std::string_view display) {
    obj();
    key("coding");
    arr();
    coding(system, code, display);
    end_arr();
    end();
  }
  void ref_identifier(std::string_view type, std::string_view system, std::string_view value) {
    obj();
    kv("type", type);
    key("identifier");
    obj();
    kv("system", system);
    kv("value", value);
    end();
    end();
  }
  void ref(std::string_view urn) {
    obj();
    kv("reference", urn);
    end();
  }
  std::string take() { return std::string(buf_.GetString(), buf_.GetSize()); }

 private:
  json::Buffer buf_;
  json::Writer w_;
};

struct Row {
  std::size_t n = 0;
  std::string record_type, clinic, patient, nhs, gender, la, activity, outcome, referred, practitioner, method, status,
      emergency;
  std::vector<std::string> cse;
  std::optional<Date> dob, date, referral_date;
  std::optional<int> age;
  const Activity* act = nullptr;
  std::string act_system;
};

class Mapper {
 public:
  Mapper(const Tables& t, FileKind kind, const ColumnIndex& c) : t_(t), kind_(kind), c_(c) {}

  RowResult map(const csv::CsvRecord& rec, std::size_t header_size) {
    RowResult out;
    out.row = rec.line;
    res_ = &out;
    row_ = Row{};
    row_.n = rec.line;
    if (rec.fields.size() != header_size) {
      error("structure", "", "has " + std::to_string(rec.fields.size()) + " fields but the header has " +
                                 std::to_string(header_size));
      out.status = RowStatus::rejected;
      return out;
    }
    read(rec);
    bool bad = std::any_of(out.issues.begin(), out.issues.end(),
                           [](const Issue& i) { return i.severity == Severity::error || i.severity == Severity::fatal; });
    if (bad) {
      out.status = RowStatus::rejected;
      return out;
    }
    out.status = row_.nhs.empty() ? RowStatus::unmatched : RowStatus::accepted;
    if (row_.nhs.empty())
      add(Severity::information, "not-found", "NHSNumber", "no valid NHS number: kept as unmatched, keyed on ClinicID+PatientID");
    emit();
    return out;
  }

 private:
  void add(Severity s, std::string code, std::string_view column, std::string msg) {
    std::string expr = "row " + std::to_string(row_.n);
    if (!column.empty()) {
      expr += '.';
      expr += column;
    }
    std::string text = expr + ": " + msg;
    res_->issues.push_back(Issue{s, std::move(code), std::move(expr), std::move(text)});
  }
  void error(std::string code, std::string_view column, std::string msg) {
    add(Severity::error, std::move(code), column, std::move(msg));
  }
  void warning(std::string code, std::string_view column, std::string msg) {
    add(Severity::warning, std::move(code), column, std::move(msg));
  }

  static std::string field(const csv::CsvRecord& r, int i) { return i < 0 ? std::string() : trim(r.fields[i]); }

  std::optional<Date> date_field(const csv::CsvRecord& r, int i, std::string_view column, bool required) {
    std::string v = field(r, i);
    if (v.empty()) {
      if (required) error("required", column, "is required");
      return std::nullopt;
    }
    auto d = parse_date(v);
    if (!d) error("value", column, "is not a real date in the form YYYY-MM-DD or DD/MM/YYYY");
    return d;
  }

  void read(const csv::CsvRecord& r) {
    Row& x = row_;
    if (kind_ == FileKind::gumcad) {
      x.record_type = upper_trim(field(r, c_.record_type));
      if (x.record_type.empty()) error("required", "RecordType", "is required (ATTENDANCE or RISK)");
      else if (x.record_type != "ATTENDANCE" && x.record_type != "RISK")
        error("code-invalid", "RecordType", "must be ATTENDANCE or RISK");
    }
    x.clinic = upper_trim(field(r, c_.clinic));
    if (x.clinic.empty()) error("required", "ClinicID", "is required (the clinic's ODS site code)");
    else if (x.clinic.size() < 3 || x.clinic.size() > 8 ||
             !std::all_of(x.clinic.begin(), x.clinic.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)); }))
      error("value", "ClinicID", "is not an ODS code (3 to 8 letters and digits)");
    x.patient = field(r, c_.patient);
    if (x.patient.empty()) error("required", "PatientID", "is required");
    else if (x.patient.size() > 20) error("value", "PatientID", "is longer than 20 characters");
    else if (std::any_of(x.patient.begin(), x.patient.end(),
                         [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == '|' || c == 0x7F; }))
      error("value", "PatientID", "contains a control character or '|'");

    std::string nhs = field(r, c_.nhs);
    if (!nhs.empty()) {
      auto n = identity::normalise_nhs_number(nhs);
      if (n) x.nhs = *n;
      else warning("value", "NHSNumber", "is not a valid NHS number (" + n.error().message +
                                              "): the row is kept as unmatched, keyed on ClinicID+PatientID");
    }
    x.dob = date_field(r, c_.dob, "DateOfBirth", false);
    x.date = date_field(r, c_.date, "AttendanceDate", true);
    x.referral_date = date_field(r, c_.referral_date, "ReferralDate", false);
    if (x.dob && x.date && *x.date < *x.dob) error("value", "DateOfBirth", "is after AttendanceDate");

    std::string age = field(r, c_.age);
    if (!age.empty()) {
      if (!all_digits(age) || age.size() > 3 || std::stoi(age) > 130) error("value", "Age", "is not a whole number of years (0-130)");
      else x.age = std::stoi(age);
    }
    if (x.dob && x.date && x.age && std::abs(age_at(*x.dob, *x.date) - *x.age) > 1)
      warning("value", "Age", "does not agree with DateOfBirth at AttendanceDate: DateOfBirth is used");

    std::string g = upper_trim(field(r, c_.gender));
    if (!g.empty()) {
      auto it = t_.gender.find(g);
      if (it == t_.gender.end()) error("code-invalid", "Gender", "must be 1, 2, 3, 4, Z or X");
      else x.gender = it->second;
    }
    x.la = upper_trim(field(r, c_.la));
    if (!x.la.empty() && (x.la.size() != 9 || std::string_view("EWSN").find(x.la[0]) == std::string_view::npos ||
                          !all_digits(std::string_view(x.la).substr(1)))) {
      warning("value", "LA", "is not an ONS local authority code (E08000018): left out");
      x.la.clear();
    }
    x.practitioner = field(r, c_.practitioner);
    if (x.practitioner.size() > 200) {
      warning("value", "Practitioner", "is longer than 200 characters: left out");
      x.practitioner.clear();
    }

    if (kind_ == FileKind::srhad) {
      read_contraception(r);
      return;
    }
    if (x.record_type == "ATTENDANCE") read_activity(r);
    else if (x.record_type == "RISK") read_risk(r);
  }

  void read_activity(const csv::CsvRecord& r) {
    Row& x = row_;
    x.activity = upper_trim(field(r, c_.activity));
    if (x.activity.empty()) {
      error("required", "ActivityCode", "is required on ATTENDANCE rows (a SHHAPT code or a SNOMED CT id)");
      return;
    }
    if (auto it = t_.shhapt.find(x.activity); it != t_.shhapt.end()) {
      x.act = &it->second;
      x.act_system = t_.system("shhapt");
    } else if (all_digits(x.activity) && x.activity.size() >= 6 && x.activity.size() <= 18) {
      static const Activity kUnlisted{"", false};
      auto s = t_.snomed.find(x.activity);
      x.act = s == t_.snomed.end() ? &kUnlisted : &s->second;
      x.act_system = t_.system("snomed");
    } else {
      error("code-invalid", "ActivityCode", "is neither a SHHAPT code of profiles/adapters/cashgum.json nor a SNOMED CT id");
    }
  }

  void read_risk(const csv::CsvRecord& r) {
    Row& x = row_;
    x.outcome = upper_trim(field(r, c_.outcome));
    if (x.outcome.empty()) error("required", "RiskOutcome", "is required on RISK rows");
    else if (!t_.risk_outcomes.count(x.outcome))
      error("code-invalid", "RiskOutcome", "must be NO_CONCERN, CONCERN_ADVICE, CONCERN_REFERRED or CSE_RISK");
    std::string cse = field(r, c_.cse);
    std::size_t pos = 0;
    int i = 0;
    bool unknown = false;
    while (pos <= cse.size() && !cse.empty()) {
      std::size_t semi = cse.find(';', pos);
      std::string code = upper_trim(std::string_view(cse).substr(pos, semi == std::string::npos ? std::string::npos : semi - pos));
      if (!code.empty()) {
        if (t_.cse_indicators.count(code)) {
          if (std::find(x.cse.begin(), x.cse.end(), code) == x.cse.end()) x.cse.push_back(code);
        } else {
          unknown = true;
        }
      }
      ++i;
      if (semi == std::string::npos) break;
      pos = semi + 1;
    }
    if (unknown)
      warning("code-unknown", "CSEIndicators",
              "has a code not in profiles/adapters/cashgum.json: left out (never disclosed); the known codes are kept");
    x.referred = upper_trim(field(r, c_.referred));
    if (!x.referred.empty() && !t_.referred_to.count(x.referred))
      error("code-invalid", "ReferredTo", "must be SOCIAL_CARE, CSE_TEAM, POLICE or NONE");
  }

  void read_contraception(const csv::CsvRecord& r) {
    Row& x = row_;
    x.method = upper_trim(field(r, c_.method));
    if (x.method.empty()) error("required", "ContraceptiveMethod", "is required");
    else if (!t_.contraceptive_methods.count(x.method) && !(all_digits(x.method) && x.method.size() >= 6 && x.method.size() <= 18))
      error("code-invalid", "ContraceptiveMethod", "is neither a method of profiles/adapters/cashgum.json nor a SNOMED CT id");
    x.status = upper_trim(field(r, c_.status));
    if (x.status.empty()) error("required", "MethodStatus", "is required (NEW, CHANGE or CONTINUE)");
    else if (!t_.method_status.count(x.status)) error("code-invalid", "MethodStatus", "must be NEW, CHANGE or CONTINUE");
    x.emergency = upper_trim(field(r, c_.emergency));
    if (!x.emergency.empty() && x.emergency != "Y" && x.emergency != "N")
      error("code-invalid", "EmergencyContraception", "must be Y or N");
  }

  // ---- emit ----

  void labels(Out& o, bool hiv) {
    o.key("security");
    o.arr();
    o.coding(kConfidentiality, "R", "restricted");
    o.coding(kActCode, "STD", "sexually transmitted disease information sensitivity");
    o.coding(kActCode, "SEX", "sexuality and reproductive health information sensitivity");
    if (hiv) o.coding(kActCode, "HIV", "HIV/AIDS information sensitivity");
    o.end_arr();
  }

  void begin_entry(Out& o, const std::string& urn, std::string_view type) {
    o.obj();
    o.kv("fullUrl", urn);
    o.key("resource");
    o.obj();
    o.kv("resourceType", type);
  }

  void end_entry(Out& o, std::string_view type, std::string_view system, std::string_view value) {
    o.end();  // resource
    o.key("request");
    o.obj();
    o.kv("method", "PUT");
    std::string url(type);
    url += "?identifier=";
    url += url_encode(system);
    url += '|';
    url += url_encode(value);
    o.kv("url", url);
    o.end();
    o.end();
  }

  void identifier(Out& o, std::string_view system, std::string_view value) {
    o.key("identifier");
    o.arr();
    o.obj();
    o.kv("system", system);
    o.kv("value", value);
    o.end();
    o.end_arr();
  }

  void push(std::string urn, std::string json) { res_->entries.push_back(Entry{std::move(urn), std::move(json)}); }

  void emit() {
    const Row& x = row_;
    const std::string date = x.date->iso();
    std::string local_system = std::string(kLocalId) + x.clinic;
    std::string patient_urn = urn_for("Patient", local_system, x.patient);
    emit_patient(patient_urn, local_system);

    std::string kind = kind_ == FileKind::gumcad ? "GUM" : "SRH";
    std::string enc_system = std::string(kIdBase) + "cashgum-attendance";
    std::string enc_value = key_hash({kind, x.clinic, x.patient, date});
    std::string enc_urn = urn_for("Encounter", enc_system, enc_value);
    emit_encounter(enc_urn, enc_system, enc_value, patient_urn, kind, date);

    if (kind_ == FileKind::srhad) emit_contraception(patient_urn, enc_urn, date);
    else if (x.record_type == "ATTENDANCE") emit_activity(patient_urn, enc_urn, date);
    else emit_risk(patient_urn, enc_urn, date);
  }

  void emit_patient(const std::string& urn, const std::string& local_system) {
    const Row& x = row_;
    Out o;
    begin_entry(o, urn, "Patient");
    o.key("meta");
    o.obj();
    labels(o, false);
    if (x.nhs.empty()) {
      o.key("tag");
      o.arr();
      o.coding("urn:cpis-gateway:match", "unmatched", "");
      o.end_arr();
    }
    o.end();
    identifier(o, local_system, x.patient);
    if (!x.gender.empty()) o.kv("gender", x.gender);
    if (x.dob) o.kv("birthDate", x.dob->iso());
    if (!x.la.empty()) {
      o.key("address");
      o.arr();
      o.obj();
      o.kv("use", "home");
      o.kv("district", x.la);
      o.end();
      o.end_arr();
    }
    if (!x.nhs.empty()) {
      // The NHS number links to the shared Patient instead of sitting on this
      // one: one Patient per NHS number (DESIGN.md), and this one is labelled.
      o.key("link");
      o.arr();
      o.obj();
      o.key("other");
      o.ref_identifier("Patient", identity::kNhsNumberSystem, x.nhs);
      o.kv("type", "seealso");
      o.end();
      o.end_arr();
    }
    end_entry(o, "Patient", local_system, x.patient);
    push(urn, o.take());
  }

  void emit_encounter(const std::string& urn, const std::string& system, const std::string& value,
                      const std::string& patient, const std::string& kind, const std::string& date) {
    Out o;
    begin_entry(o, urn, "Encounter");
    o.key("meta");
    o.obj();
    labels(o, false);
    o.end();
    identifier(o, system, value);
    o.kv("status", "finished");
    o.key("class");
    o.coding(kActCode, "AMB", "ambulatory");
    o.key("type");
    o.arr();
    if (kind == "GUM") o.concept_(t_.local_system, "GUM-ATTENDANCE", "Sexual health clinic attendance");
    else o.concept_(t_.local_system, "SRH-ATTENDANCE", "Contraception clinic attendance");
    o.end_arr();
    o.key("subject");
    o.ref(patient);
    o.key("period");
    o.obj();
    o.kv("start", date);
    o.kv("end", date);
    o.end();
    o.key("serviceProvider");
    o.ref_identifier("Organization", kOds, row_.clinic);
    end_entry(o, "Encounter", system, value);
    push(urn, o.take());
  }

  void observation_common(Out& o, const std::string& patient, const std::string& enc, const std::string& date) {
    o.key("subject");
    o.ref(patient);
    o.key("encounter");
    o.ref(enc);
    o.kv("effectiveDateTime", date);
    o.key("performer");
    o.arr();
    o.ref_identifier("Organization", kOds, row_.clinic);
    if (!row_.practitioner.empty()) {
      o.obj();
      o.kv("display", row_.practitioner);
      o.end();
    }
    o.end_arr();
  }

  void category(Out& o, std::string_view code) {
    o.key("category");
    o.arr();
    o.concept_("http://terminology.hl7.org/CodeSystem/observation-category", code, "");
    o.end_arr();
  }

  void emit_activity(const std::string& patient, const std::string& enc, const std::string& date) {
    const Row& x = row_;
    std::string system = std::string(kIdBase) + "cashgum-activity";
    std::string value = key_hash({x.clinic, x.patient, date, x.act_system, x.activity});
    std::string urn = urn_for("Observation", system, value);
    Out o;
    begin_entry(o, urn, "Observation");
    o.key("meta");
    o.obj();
    labels(o, x.act->hiv);
    o.end();
    identifier(o, system, value);
    o.kv("status", "final");
    category(o, t_.activity_category);
    o.key("code");
    o.concept_(x.act_system, x.activity, x.act->display);
    observation_common(o, patient, enc, date);
    end_entry(o, "Observation", system, value);
    push(urn, o.take());
  }

  void component_code(Out& o, std::string_view system, std::string_view code, std::string_view display) {
    o.key("code");
    o.concept_(system, code, display);
  }

  void emit_risk(const std::string& patient, const std::string& enc, const std::string& date) {
    const Row& x = row_;
    const RiskOutcome& outcome = t_.risk_outcomes.find(x.outcome)->second;
    std::string system = std::string(kIdBase) + "cashgum-risk-assessment";
    std::string value = key_hash({x.clinic, x.patient, date});
    std::string urn = urn_for("Observation", system, value);
    Out o;
    begin_entry(o, urn, "Observation");
    o.key("meta");
    o.obj();
    labels(o, false);
    o.end();
    identifier(o, system, value);
    o.kv("status", "final");
    category(o, "survey");
    o.key("code");
    o.concept_(t_.local_system, t_.risk_assessment.code, t_.risk_assessment.display);
    observation_common(o, patient, enc, date);
    o.key("valueCodeableConcept");
    o.concept_(t_.system("riskOutcome"), x.outcome, outcome.display);
    if (!x.cse.empty() || !x.referred.empty() || x.referral_date) {
      o.key("component");
      o.arr();
      for (const auto& c : x.cse) {
        o.obj();
        component_code(o, t_.system("cseIndicator"), c, t_.cse_indicators.find(c)->second);
        o.kb("valueBoolean", true);
        o.end();
      }
      if (!x.referred.empty()) {
        o.obj();
        component_code(o, t_.local_system, "REFERRED-TO", "Referred to");
        o.key("valueCodeableConcept");
        o.concept_(t_.system("referredTo"), x.referred, t_.referred_to.find(x.referred)->second.display);
        o.end();
      }
      if (x.referral_date) {
        o.obj();
        component_code(o, t_.local_system, "REFERRAL-DATE", "Referral date");
        o.kv("valueDateTime", x.referral_date->iso());
        o.end();
      }
      o.end_arr();
    }
    end_entry(o, "Observation", system, value);
    push(urn, o.take());
    if (outcome.concern) emit_concern(outcome, date);
  }

  // The disclosable part: the concern, the CSE indicators, the date, the
  // clinic's ODS code and contact, the referral. Nothing else of the row.
  void emit_concern(const RiskOutcome& outcome, const std::string& date) {
    const Row& x = row_;
    std::optional<int> age;
    if (x.dob) age = age_at(*x.dob, *x.date);
    else if (x.age) age = x.age;
    if (!age) {
      warning("incomplete", "Age",
              "neither DateOfBirth nor Age: the age is unknown, so no safeguarding concern is made disclosable; send one "
              "and post the row again");
      return;
    }
    if (*age >= t_.adult_age) return;
    std::string system = std::string(kIdBase) + "cashgum-safeguarding-concern";
    std::string value = key_hash({x.clinic, x.patient, date});
    std::string urn = urn_for("Flag", system, value);
    std::vector<std::string> to = t_.concern_disclose_to;
    if (!x.referred.empty())
      for (const auto& r : t_.referred_to.find(x.referred)->second.disclose_to)
        if (std::find(to.begin(), to.end(), r) == to.end()) to.push_back(r);
    Out o;
    begin_entry(o, urn, "Flag");
    o.key("meta");
    o.obj();
    o.key("tag");
    o.arr();
    o.coding("urn:cpis-gateway:disclosure", "safeguarding-concern", "Safeguarding concern: may be disclosed");
    o.end_arr();
    o.end();
    o.key("extension");
    o.arr();
    for (const auto& r : to) {
      o.obj();
      o.kv("url", std::string(kExtBase) + "disclosable-to");
      o.kv("valueCode", r);
      o.end();
    }
    for (const auto& c : x.cse) {
      if (t_.cse_not_disclosed.count(c)) continue;
      o.obj();
      o.kv("url", std::string(kExtBase) + "cse-indicator");
      o.key("valueCoding");
      o.coding(t_.system("cseIndicator"), c, t_.cse_indicators.find(c)->second);
      o.end();
    }
    if (!x.referred.empty()) {
      o.obj();
      o.kv("url", std::string(kExtBase) + "safeguarding-referred-to");
      o.key("valueCoding");
      o.coding(t_.system("referredTo"), x.referred, t_.referred_to.find(x.referred)->second.display);
      o.end();
    }
    if (std::find(to.begin(), to.end(), "local-authority") != to.end()) {
      // Referred to social care: which authority — the one of the LA column
      // (ONS code) through profiles/area/services.json — so it is told even
      // when the child has no CP-IS plan. The ONS code itself stays behind.
      auto la = x.la.empty() ? t_.authority_by_ons.end() : t_.authority_by_ons.find(x.la);
      if (la == t_.authority_by_ons.end()) {
        warning("incomplete", "LA",
                x.la.empty() ? "no LA code: the concern reaches an authority only through a CP-IS plan"
                             : "no authority for this ONS code in profiles/area/services.json (authorityByOnsCode): "
                               "the concern reaches an authority only through a CP-IS plan");
      } else {
        o.obj();
        o.kv("url", std::string(kExtBase) + "referred-to-authority");
        o.key("valueReference");
        o.ref_identifier("Organization", kOds, la->second);
        o.end();
      }
    }
    if (x.referral_date) {
      o.obj();
      o.kv("url", std::string(kExtBase) + "safeguarding-referral-date");
      o.kv("valueDate", x.referral_date->iso());
      o.end();
    }
    if (!x.practitioner.empty()) {
      o.obj();
      o.kv("url", std::string(kExtBase) + "concern-contact");
      o.kv("valueString", x.practitioner);
      o.end();
    }
    o.end_arr();
    identifier(o, system, value);
    o.kv("status", "active");
    o.key("category");
    o.arr();
    o.concept_(t_.concern_category.system, t_.concern_category.code, t_.concern_category.display);
    o.end_arr();
    o.key("code");
    o.obj();
    o.key("coding");
    o.arr();
    o.coding(t_.concern_code.system, t_.concern_code.code, t_.concern_code.display);
    o.coding(t_.system("riskOutcome"), x.outcome, outcome.display);
    o.end_arr();
    o.end();
    o.key("subject");
    if (!x.nhs.empty()) o.ref_identifier("Patient", identity::kNhsNumberSystem, x.nhs);
    else o.ref_identifier("Patient", std::string(kLocalId) + x.clinic, x.patient);
    o.key("period");
    o.obj();
    o.kv("start", date);
    o.end();
    o.key("author");
    o.ref_identifier("Organization", kOds, x.clinic);
    end_entry(o, "Flag", system, value);
    push(urn, o.take());
    res_->concern = true;
  }

  void emit_contraception(const std::string& patient, const std::string& enc, const std::string& date) {
    const Row& x = row_;
    std::string system = std::string(kIdBase) + "cashgum-contraception";
    std::string value = key_hash({x.clinic, x.patient, date, x.method});
    std::string urn = urn_for("Observation", system, value);
    Out o;
    begin_entry(o, urn, "Observation");
    o.key("meta");
    o.obj();
    labels(o, false);
    o.end();
    identifier(o, system, value);
    o.kv("status", "final");
    category(o, "procedure");
    o.key("code");
    o.concept_(t_.local_system, t_.contraception.code, t_.contraception.display);
    observation_common(o, patient, enc, date);
    o.key("valueCodeableConcept");
    auto m = t_.contraceptive_methods.find(x.method);
    if (m != t_.contraceptive_methods.end()) o.concept_(t_.system("contraceptiveMethod"), x.method, m->second);
    else o.concept_(t_.system("snomed"), x.method, "");
    o.key("component");
    o.arr();
    o.obj();
    component_code(o, t_.local_system, "METHOD-STATUS", "Method status");
    o.key("valueCodeableConcept");
    o.concept_(t_.system("methodStatus"), x.status, t_.method_status.find(x.status)->second);
    o.end();
    if (!x.emergency.empty()) {
      o.obj();
      component_code(o, t_.local_system, "EMERGENCY-CONTRACEPTION", "Emergency contraception");
      o.kb("valueBoolean", x.emergency == "Y");
      o.end();
    }
    o.end_arr();
    end_entry(o, "Observation", system, value);
    push(urn, o.take());
  }

  const Tables& t_;
  FileKind kind_;
  const ColumnIndex& c_;
  RowResult* res_ = nullptr;
  Row row_;
};

struct Known {
  std::string_view name;
  int ColumnIndex::*slot;
};

const Known kKnown[] = {
    {"RecordType", &ColumnIndex::record_type},     {"ClinicID", &ColumnIndex::clinic},
    {"PatientID", &ColumnIndex::patient},          {"NHSNumber", &ColumnIndex::nhs},
    {"DateOfBirth", &ColumnIndex::dob},            {"Age", &ColumnIndex::age},
    {"Gender", &ColumnIndex::gender},              {"LA", &ColumnIndex::la},
    {"AttendanceDate", &ColumnIndex::date},        {"ActivityCode", &ColumnIndex::activity},
    {"RiskOutcome", &ColumnIndex::outcome},        {"CSEIndicators", &ColumnIndex::cse},
    {"ReferredTo", &ColumnIndex::referred},        {"ReferralDate", &ColumnIndex::referral_date},
    {"Practitioner", &ColumnIndex::practitioner},  {"ContraceptiveMethod", &ColumnIndex::method},
    {"MethodStatus", &ColumnIndex::status},        {"EmergencyContraception", &ColumnIndex::emergency},
};

}  // namespace

const char* row_status_name(RowStatus s) {
  switch (s) {
    case RowStatus::accepted: return "accepted";
    case RowStatus::rejected: return "rejected";
    case RowStatus::unmatched: return "unmatched";
  }
  return "?";
}

std::size_t CsvParseResult::count(RowStatus s) const {
  return static_cast<std::size_t>(std::count_if(rows.begin(), rows.end(), [s](const RowResult& r) { return r.status == s; }));
}

Result<CsvParseResult> CashGumAdapter::parse_rows(std::string_view raw) const {
  auto csv = csv::read_csv(raw);
  if (!csv) return csv.error();
  if (csv->records.empty()) return make_error(Errc::invalid_input, "empty file: no header row");
  CsvParseResult out;
  out.encoding = csv->encoding;
  const csv::CsvRecord& header = csv->records[0];
  std::vector<std::string> names;
  for (const auto& h : header.fields) names.push_back(upper_trim(h));
  auto find = [&](std::string_view name) -> int {
    std::string u = upper_trim(name);
    auto it = std::find(names.begin(), names.end(), u);
    return it == names.end() ? -1 : static_cast<int>(it - names.begin());
  };
  out.kind = find("ContraceptiveMethod") >= 0 ? FileKind::srhad : FileKind::gumcad;
  const Columns& cols = out.kind == FileKind::gumcad ? tables_.gumcad : tables_.srhad;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (!names[i].empty() && std::find(names.begin() + static_cast<long>(i) + 1, names.end(), names[i]) != names.end())
      return make_error(Errc::invalid_input, "row 1: the header names column " + trim(header.fields[i]) + " twice", "row 1");
  }
  for (const auto& req : cols.required)
    if (find(req) < 0)
      return make_error(Errc::invalid_input, "row 1: missing required column " + req, "row 1." + req);
  ColumnIndex idx;
  std::vector<bool> used(names.size(), false);
  auto claim = [&](const std::string& name) {
    for (const auto& k : kKnown) {
      if (upper_trim(k.name) != upper_trim(name)) continue;
      int i = find(name);
      idx.*(k.slot) = i;
      if (i >= 0) used[static_cast<std::size_t>(i)] = true;
    }
  };
  for (const auto& c : cols.required) claim(c);
  for (const auto& c : cols.optional) claim(c);
  std::string ignored;
  for (std::size_t i = 0; i < names.size(); ++i)
    if (!used[i]) ignored += (ignored.empty() ? "" : ", ") + trim(header.fields[i]);
  if (!ignored.empty())
    out.file_issues.push_back(Issue{Severity::information, "informational", "row 1",
                                    "row 1: columns not used by this file kind are ignored: " + ignored});
  if (csv->encoding == csv::Encoding::windows1252)
    out.file_issues.push_back(Issue{Severity::information, "informational", "",
                                    "the file is not UTF-8: read as Windows-1252"});
  if (csv->records.size() == 1) return make_error(Errc::invalid_input, "the file has a header but no data rows", "row 2");

  Mapper m(tables_, out.kind, idx);
  out.rows.reserve(csv->records.size() - 1);
  for (std::size_t i = 1; i < csv->records.size(); ++i) out.rows.push_back(m.map(csv->records[i], header.fields.size()));
  return out;
}

Bundle CashGumAdapter::bundle_of(const CsvParseResult& result) {
  std::string json = R"({"resourceType":"Bundle","type":"transaction")";
  std::set<std::string_view> seen;
  bool first = true;
  std::size_t n = 0;
  for (const auto& r : result.rows) {
    if (r.status == RowStatus::rejected) continue;
    for (const auto& e : r.entries) {
      if (!seen.insert(e.full_url).second) continue;
      json += first ? R"(,"entry":[)" : ",";
      first = false;
      json += e.json;
      ++n;
    }
  }
  if (!first) json += ']';
  json += '}';
  return Bundle{std::move(json), n};
}

Result<Bundle> CashGumAdapter::parse(std::string_view raw, IssueSink& issues) const {
  auto r = parse_rows(raw);
  if (!r) return r.error();
  for (const auto& i : r->file_issues) issues.add(i.severity, i.code, i.expression, i.message);
  for (const auto& row : r->rows)
    for (const auto& i : row.issues) issues.add(i.severity, i.code, i.expression, i.message);
  return bundle_of(*r);
}

Result<std::string> CashGumAdapter::render(const Bundle&, IssueSink&) const {
  return make_error(Errc::unprocessable, "cashgum is an inbound-only format: nothing is rendered back to a clinic");
}

Result<AdapterPtr> CashGumAdapter::create(const std::string& profiles_dir) {
  auto t = Tables::load(profiles_dir);
  if (!t) return t.error();
  return AdapterPtr(new CashGumAdapter(std::move(*t)));
}

}  // namespace gw::adapters::cashgum
