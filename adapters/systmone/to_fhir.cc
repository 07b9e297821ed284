// HL7 v2 (SystmOne dialect) -> FHIR R4 transaction Bundle. FORMAT.md beside
// this file documents every field read and what it becomes.
//
// Shape of the work: one pass over the message, writing JSON straight into a
// reused buffer with the RapidJSON Writer (no DOM, no per-field strings: field
// values are views into the message unless they carry escapes). Problems are
// reported into the IssueSink as they are met, with the HL7 location; when any
// error was reported the JSON is thrown away and an Error returned, because
// the caller answers AE and stores nothing.
#include <array>
#include <charconv>
#include <cstdio>
#include <list>
#include <random>

#include "adapters/systmone/systmone_adapter.h"
#include "gateway/common/json.h"
#include "gateway/hl7/er7.h"
#include "gateway/identity/nhs_number.h"

namespace gw::adapters::systmone {
namespace {

using hl7::Field;
using hl7::Segment;
using identity::kNhsNumberSystem;

constexpr std::string_view kVsExtension =
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus";
constexpr std::string_view kVsSystem = "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland";
constexpr std::string_view kSourceTime = "https://cpis-gateway.nhs.uk/StructureDefinition/source-message-time";
constexpr std::string_view kFamilyLink = "https://cpis-gateway.nhs.uk/Id/family-link";
constexpr std::string_view kOds = "https://fhir.nhs.uk/Id/ods-organization-code";
constexpr std::string_view kGmp = "https://fhir.hl7.org.uk/Id/gmp-number";
constexpr std::string_view kSct = "http://snomed.info/sct";
constexpr std::string_view kRel0063 = "http://terminology.hl7.org/CodeSystem/v2-0063";
constexpr std::string_view kV2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203";
constexpr std::string_view kActCode = "http://terminology.hl7.org/CodeSystem/v3-ActCode";

// A fresh random (version 4) UUID as "urn:uuid:...". The generator is per
// thread so the adapter stays lock-free; the uuids only need to be unique
// within one Bundle, the server assigns the real ids.
struct Urn {
  char text[46];
  std::string_view view() const { return {text, 45}; }
};

Urn fresh_urn() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t a = rng(), b = rng();
  a = (a & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;
  b = (b & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
  Urn u;
  std::snprintf(u.text, sizeof u.text, "urn:uuid:%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                static_cast<unsigned>((a >> 16) & 0xffff), static_cast<unsigned>(a & 0xffff),
                static_cast<unsigned>(b >> 48), static_cast<unsigned long long>(b & 0xffffffffffffULL));
  return u;
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

char upper_char(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c; }

// HL7 location of a field: "PID-3", "OBX[2]-3.1" (occurrence is 0-based here,
// 1-based in the text, and omitted for the first segment of that name).
std::string loc(std::string_view seg, std::size_t occurrence, int field, int component = 0) {
  std::string s(seg);
  if (occurrence > 0) s += "[" + std::to_string(occurrence + 1) + "]";
  s += "-" + std::to_string(field);
  if (component > 0) s += "." + std::to_string(component);
  return s;
}

// parse_ts quotes the value it rejects; issues must not repeat field values.
std::string reason_only(const std::string& m) {
  auto p = m.rfind("': ");
  return p == std::string::npos ? std::string("malformed") : m.substr(p + 3);
}

struct LocalId {
  std::string_view value, authority, type;
};

class Translator {
 public:
  Translator(const hl7::Message& msg, const CodeMaps& maps, IssueSink& issues, json::Writer& w)
      : msg_(msg), d_(msg.delimiters()), maps_(maps), issues_(issues), w_(w) {}

  Result<void> run();

 private:
  // --- text -------------------------------------------------------------
  // The value with its escapes resolved. Most fields have none, so this is
  // usually the raw view; otherwise the text lives in arena_ until the end.
  std::string_view text(Field f) {
    std::string_view r = f.raw();
    if (r.find(d_.escape) == std::string_view::npos) return r;
    arena_.push_back(hl7::unescape(r, d_));
    return arena_.back();
  }
  void str(std::string_view s) { w_.String(s.data(), static_cast<json::SizeType>(s.size())); }
  void key(std::string_view k) { w_.Key(k.data(), static_cast<json::SizeType>(k.size())); }
  void kv(std::string_view k, std::string_view v) {
    key(k);
    str(v);
  }
  void error(const char* code, std::string where, std::string message) {
    issues_.error(code, std::move(where), std::move(message));
    ++errors_;
  }
  void warning(const char* code, std::string where, std::string message) {
    issues_.warning(code, std::move(where), std::move(message));
  }

  // Date/time in FHIR form; a time without an offset takes MSH-7's offset,
  // or UTC when MSH-7 has none either (documented in FORMAT.md).
  std::optional<std::string> datetime(Field f, const std::string& where, bool date_only = false) {
    std::string_view v = f.component(1).raw();
    if (v.empty()) return std::nullopt;
    auto ts = hl7::parse_ts(v);
    if (!ts) {
      error("invalid", where, "not a valid HL7 date/time: " + reason_only(ts.error().message));
      return std::nullopt;
    }
    return date_only ? ts->to_fhir_date() : ts->to_fhir_datetime(offset_);
  }

  // --- pieces -----------------------------------------------------------
  bool read_header();
  bool read_patient_ids();
  void write_reference_identifier(std::string_view system, std::string_view value, std::string_view type,
                                  std::string_view display);
  void write_name(Field xpn);
  void write_patient(const Urn& self);
  void write_merge_old();
  void write_family_links();
  void write_encounter();
  void write_observation(const Segment& obx, std::size_t occurrence, const Segment& obr);
  void write_care_team(const Segment& zct, std::size_t occurrence);
  void write_consent(const Segment& zsc);
  void write_pregnancy(const Segment& zpn);
  void write_codeable(Field ce, const std::string& where, bool required);
  void write_conditional(std::string_view method, std::string_view type, std::string_view system,
                         std::string_view value);
  void write_subject(std::string_view k = "subject") {
    key(k);
    w_.StartObject();
    kv("reference", patient_urn_.view());
    w_.EndObject();
  }
  std::string_view patient_key() const { return nhs_.empty() ? local_key_value_ : std::string_view(nhs_); }

  const hl7::Message& msg_;
  const hl7::Delimiters& d_;
  const CodeMaps& maps_;
  IssueSink& issues_;
  json::Writer& w_;
  std::list<std::string> arena_;  // stable addresses; allocates nothing when unused
  int errors_ = 0;

  std::string_view type_, trigger_, control_id_, sender_;
  std::string event_;  // "ADT^A28"
  std::string msh_instant_;
  int offset_ = 0;
  Segment pid_;
  std::string nhs_;
  std::string_view verification_;
  std::array<LocalId, 8> locals_{};
  std::size_t local_count_ = 0;
  std::string local_key_system_;
  std::string_view local_key_value_;
  Urn patient_urn_{};
  Urn old_urn_{};
  bool merge_ = false;
  std::string old_nhs_;
  std::string old_local_system_;
  std::string_view old_local_value_;
  std::string encounter_urn_;
  std::string tmp_;
};

std::string local_system(std::string_view authority, std::string_view type) {
  std::string s;
  if (type == "MR") {
    s = "urn:cpis-gateway:mrn:";
    s += authority;
  } else {
    s = "urn:cpis-gateway:local-id:";
    s += authority;
    if (!type.empty() && type != "PI") {
      s += ':';
      s += type;
    }
  }
  return s;
}

bool Translator::read_header() {
  const Segment msh = msg_.msh();
  Field f4 = msh.field(4);
  sender_ = f4.component(1).empty() ? f4.raw() : f4.component(1).raw();
  if (sender_.empty()) error("required", "MSH-4", "sending facility (ODS code) is required");
  control_id_ = msh.field(10).raw();
  if (control_id_.empty()) error("required", "MSH-10", "message control id is required");
  event_.assign(type_);
  event_ += '^';
  event_ += trigger_;
  std::string_view t7 = msh.field(7).component(1).raw();
  if (t7.empty()) {
    error("required", "MSH-7", "message date/time is required");
    return true;
  }
  auto ts = hl7::parse_ts(t7);
  if (!ts) {
    error("invalid", "MSH-7", "not a valid HL7 date/time: " + reason_only(ts.error().message));
    return true;
  }
  if (ts->precision < hl7::Ts::Precision::minute) {
    error("invalid", "MSH-7", "message date/time must give at least the minute");
    return true;
  }
  offset_ = ts->offset_minutes.value_or(0);
  msh_instant_ = ts->to_fhir_datetime(0);
  return true;
}

// PID-3 (any repetition holds the NHS number, CX.4 NHS or CX.5 NH), PID-32
// verification status, local identifiers keyed by their assigning authority.
bool Translator::read_patient_ids() {
  Field pid3 = pid_.field(3);
  if (pid3.empty()) {
    error("required", "PID-3", "patient identifier list is required");
    return false;
  }
  std::string_view vs_from_cx;
  bool bad_nhs = false;
  for (std::size_t r = 0; r < pid3.repetition_count(); ++r) {
    Field cx = pid3.repetition(r);
    std::string_view value = cx.component(1).raw();
    std::string_view auth = cx.component(4).component(1).raw();
    std::string_view type = cx.component(5).raw();
    if (value.empty()) continue;
    bool is_nhs = type.starts_with("NH") || auth == "NHS";
    if (is_nhs) {
      // Vendor variant: NH{status:01}.
      if (auto p = type.find("{status:"); p != std::string_view::npos) {
        auto end = type.find('}', p);
        if (end != std::string_view::npos) vs_from_cx = type.substr(p + 8, end - p - 8);
      }
      auto n = identity::normalise_nhs_number(value);
      if (!n) {
        error("value", "PID-3", "NHS number is not valid: " + n.error().message);
        bad_nhs = true;
        continue;
      }
      if (!nhs_.empty() && nhs_ != *n) {
        error("value", "PID-3", "PID-3 carries two different NHS numbers");
        continue;
      }
      nhs_ = *n;
    } else if (local_count_ < locals_.size()) {
      if (auth.empty()) {
        warning("required", "PID-3", "a local identifier without an assigning authority (CX.4) was ignored");
        continue;
      }
      locals_[local_count_++] = LocalId{value, auth, type};
    }
  }
  std::string_view vs = pid_.field(32).component(1).raw();
  if (vs.empty()) vs = vs_from_cx;
  if (!vs.empty()) {
    std::string_view code = vs.starts_with("NSTS") ? vs.substr(4) : vs;
    if (maps_.verification_status().find(code) == maps_.verification_status().end()) {
      error("code-invalid", vs_from_cx.empty() || !pid_.field(32).empty() ? "PID-32" : "PID-3.5",
            "NHS number verification status must be NSTS01..NSTS08 (or 01..08)");
    } else {
      verification_ = code;
    }
  }
  if (nhs_.empty() && !bad_nhs) {
    if (local_count_ == 0) {
      error("required", "PID-3", "neither an NHS number nor a local identifier with its assigning authority");
      return false;
    }
    local_key_system_ = local_system(locals_[0].authority, locals_[0].type);
    local_key_value_ = locals_[0].value;
    warning("not-found", "PID-3", "no NHS number: kept as unmatched");
  }
  return true;
}

void Translator::write_conditional(std::string_view method, std::string_view type, std::string_view system,
                                   std::string_view value) {
  key("request");
  w_.StartObject();
  kv("method", method);
  tmp_.assign(type);
  tmp_ += "?identifier=";
  tmp_ += system;
  tmp_ += '|';
  tmp_ += value;
  kv("url", tmp_);
  w_.EndObject();
}

void Translator::write_reference_identifier(std::string_view system, std::string_view value, std::string_view type,
                                            std::string_view display) {
  w_.StartObject();
  kv("type", type);
  key("identifier");
  w_.StartObject();
  kv("system", system);
  kv("value", value);
  w_.EndObject();
  if (!display.empty()) kv("display", display);
  w_.EndObject();
}

// XPN FAMILY^Given^Middle^Suffix^Title.
void Translator::write_name(Field xpn) {
  w_.StartObject();
  kv("use", "official");
  if (!xpn.component(1).empty()) kv("family", text(xpn.component(1).component(1)));
  if (!xpn.component(2).empty() || !xpn.component(3).empty()) {
    key("given");
    w_.StartArray();
    if (!xpn.component(2).empty()) str(text(xpn.component(2)));
    if (!xpn.component(3).empty()) str(text(xpn.component(3)));
    w_.EndArray();
  }
  if (!xpn.component(5).empty()) {
    key("prefix");
    w_.StartArray();
    str(text(xpn.component(5)));
    w_.EndArray();
  }
  if (!xpn.component(4).empty()) {
    key("suffix");
    w_.StartArray();
    str(text(xpn.component(4)));
    w_.EndArray();
  }
  w_.EndObject();
}

std::string_view gender_of(std::string_view v) {
  if (v.size() != 1) return {};
  switch (upper_char(v[0])) {
    case 'M': return "male";
    case 'F': return "female";
    case 'U': return "unknown";
    case 'O': return "other";
    default: return {};
  }
}

void Translator::write_patient(const Urn& self) {
  w_.StartObject();
  kv("fullUrl", self.view());
  key("resource");
  w_.StartObject();
  kv("resourceType", "Patient");
  if (nhs_.empty()) {
    key("meta");
    w_.StartObject();
    key("tag");
    w_.StartArray();
    w_.StartObject();
    kv("system", "urn:cpis-gateway:match");
    kv("code", "unmatched");
    w_.EndObject();
    w_.EndArray();
    w_.EndObject();
  }
  if (!msh_instant_.empty()) {
    key("extension");
    w_.StartArray();
    w_.StartObject();
    kv("url", kSourceTime);
    kv("valueInstant", msh_instant_);
    w_.EndObject();
    w_.EndArray();
  }
  key("identifier");
  w_.StartArray();
  if (!nhs_.empty()) {
    w_.StartObject();
    if (!verification_.empty()) {
      key("extension");
      w_.StartArray();
      w_.StartObject();
      kv("url", kVsExtension);
      key("valueCodeableConcept");
      w_.StartObject();
      key("coding");
      w_.StartArray();
      w_.StartObject();
      kv("system", kVsSystem);
      kv("code", verification_);
      kv("display", maps_.verification_status().find(verification_)->second);
      w_.EndObject();
      w_.EndArray();
      w_.EndObject();
      w_.EndObject();
      w_.EndArray();
    }
    kv("system", kNhsNumberSystem);
    kv("value", nhs_);
    w_.EndObject();
  }
  for (std::size_t i = 0; i < local_count_; ++i) {
    const LocalId& l = locals_[i];
    w_.StartObject();
    if (!l.type.empty()) {
      key("type");
      w_.StartObject();
      key("coding");
      w_.StartArray();
      w_.StartObject();
      kv("system", kV2_0203);
      kv("code", l.type);
      w_.EndObject();
      w_.EndArray();
      w_.EndObject();
    }
    kv("system", local_system(l.authority, l.type));
    kv("value", text(Field(l.value, d_)));
    w_.EndObject();
  }
  w_.EndArray();
  key("active");
  w_.Bool(true);

  Field xpn = pid_.field(5);
  if (!xpn.empty()) {
    key("name");
    w_.StartArray();
    for (std::size_t r = 0; r < xpn.repetition_count(); ++r)
      if (!xpn.repetition(r).empty()) write_name(xpn.repetition(r));
    w_.EndArray();
  }

  Field xtn = pid_.field(13);
  if (!xtn.empty()) {
    key("telecom");
    w_.StartArray();
    for (std::size_t r = 0; r < xtn.repetition_count(); ++r) {
      Field t = xtn.repetition(r);
      std::string_view use = t.component(2).raw();
      bool email = use == "NET";
      std::string_view value = email && !t.component(4).empty() ? t.component(4).raw() : t.component(1).raw();
      if (value.empty()) continue;
      w_.StartObject();
      kv("system", email ? "email" : "phone");
      kv("value", text(Field(value, d_)));
      if (use == "PRN") kv("use", "home");
      else if (use == "PRS") kv("use", "mobile");
      else if (use == "WPN") kv("use", "work");
      w_.EndObject();
    }
    w_.EndArray();
  }

  std::string_view g = pid_.field(8).raw();
  if (!g.empty()) {
    std::string_view fg = gender_of(g);
    if (fg.empty()) error("code-invalid", "PID-8", "administrative sex must be M, F, U or O");
    else kv("gender", fg);
  }
  if (auto bd = datetime(pid_.field(7), "PID-7", true)) kv("birthDate", *bd);

  std::string_view dead = pid_.field(30).raw();
  if (!pid_.field(29).empty()) {
    if (auto dd = datetime(pid_.field(29), "PID-29")) kv("deceasedDateTime", *dd);
  } else if (dead == "Y" || dead == "N") {
    key("deceasedBoolean");
    w_.Bool(dead == "Y");
  } else if (!dead.empty()) {
    error("code-invalid", "PID-30", "death indicator must be Y or N");
  }

  Field xad = pid_.field(11);
  if (!xad.empty()) {
    key("address");
    w_.StartArray();
    for (std::size_t r = 0; r < xad.repetition_count(); ++r) {
      Field a = xad.repetition(r);
      if (a.empty()) continue;
      w_.StartObject();
      std::string_view type = a.component(7).raw();
      if (type == "H") kv("use", "home");
      else if (type == "O" || type == "B") kv("use", "work");
      else if (type == "C") kv("use", "temp");
      if (!a.component(1).empty() || !a.component(2).empty()) {
        key("line");
        w_.StartArray();
        if (!a.component(1).empty()) str(text(a.component(1).component(1)));
        if (!a.component(2).empty()) str(text(a.component(2)));
        w_.EndArray();
      }
      if (!a.component(3).empty()) kv("city", text(a.component(3)));
      if (!a.component(4).empty()) kv("district", text(a.component(4)));
      if (!a.component(5).empty()) kv("postalCode", text(a.component(5)));
      if (!a.component(6).empty()) kv("country", text(a.component(6)));
      w_.EndObject();
    }
    w_.EndArray();
  }

  Segment pd1 = msg_.segment("PD1");
  if (!pd1.empty() && (!pd1.field(3).empty() || !pd1.field(4).empty())) {
    key("generalPractitioner");
    w_.StartArray();
    Field practice = pd1.field(3);
    if (!practice.empty()) {
      // XON Name^^ODS^^^NHS^ODS; the older style puts the code in component 3 too.
      std::string_view ods = practice.component(3).raw();
      if (ods.empty()) error("required", "PD1-3.3", "registered practice needs its ODS code");
      else write_reference_identifier(kOds, ods, "Organization", text(practice.component(1)));
    }
    Field gp = pd1.field(4);
    if (!gp.empty() && !gp.component(1).empty()) {
      tmp_.clear();
      std::string_view prefix = gp.component(6).raw(), given = gp.component(3).raw(), family = gp.component(2).raw();
      for (std::string_view part : {prefix, given, family}) {
        if (part.empty()) continue;
        if (!tmp_.empty()) tmp_ += ' ';
        tmp_ += text(Field(part, d_));
      }
      std::string display = tmp_;
      write_reference_identifier(kGmp, gp.component(1).raw(), "Practitioner", display);
    }
    w_.EndArray();
  }

  if (merge_) {
    key("link");
    w_.StartArray();
    w_.StartObject();
    key("other");
    w_.StartObject();
    kv("reference", old_urn_.view());
    w_.EndObject();
    kv("type", "replaces");
    w_.EndObject();
    w_.EndArray();
  }
  w_.EndObject();  // resource
  if (nhs_.empty()) write_conditional("PUT", "Patient", local_key_system_, local_key_value_);
  else write_conditional("PUT", "Patient", kNhsNumberSystem, nhs_);
  w_.EndObject();
}

// A40: the merged-away record, made inactive and pointing at the survivor.
void Translator::write_merge_old() {
  w_.StartObject();
  kv("fullUrl", old_urn_.view());
  key("resource");
  w_.StartObject();
  kv("resourceType", "Patient");
  key("identifier");
  w_.StartArray();
  w_.StartObject();
  if (!old_nhs_.empty()) {
    kv("system", kNhsNumberSystem);
    kv("value", old_nhs_);
  } else {
    kv("system", old_local_system_);
    kv("value", old_local_value_);
  }
  w_.EndObject();
  w_.EndArray();
  key("active");
  w_.Bool(false);
  key("link");
  w_.StartArray();
  w_.StartObject();
  key("other");
  w_.StartObject();
  kv("reference", patient_urn_.view());
  w_.EndObject();
  kv("type", "replaced-by");
  w_.EndObject();
  w_.EndArray();
  w_.EndObject();
  if (!old_nhs_.empty()) write_conditional("PUT", "Patient", kNhsNumberSystem, old_nhs_);
  else write_conditional("PUT", "Patient", old_local_system_, old_local_value_);
  w_.EndObject();
}

// NK1 rows with the relative's NHS number (NK1-33) become one RelatedPerson
// per (child, parent) pair, keyed child-parent whichever record it came from,
// so the parent's CHD row and the child's MTH row land on the same resource.
void Translator::write_family_links() {
  std::size_t occurrence = 0;
  for (const Segment& s : msg_.all_segments()) {
    if (s.name() != "NK1") continue;
    const std::size_t n = occurrence++;
    Field rel = s.field(3).component(1);
    Field nk33 = s.field(33);
    std::string relative;
    for (std::size_t r = 0; r < nk33.repetition_count(); ++r) {
      Field cx = nk33.repetition(r);
      if (cx.component(1).empty()) continue;
      if (!(cx.component(5).raw().starts_with("NH") || cx.component(4).raw() == "NHS")) continue;
      auto nn = identity::normalise_nhs_number(cx.component(1).raw());
      if (!nn) {
        error("value", loc("NK1", n, 33), "relative's NHS number is not valid: " + nn.error().message);
        relative.clear();
        break;
      }
      relative = *nn;
      break;
    }
    if (relative.empty()) continue;  // next of kin without an NHS number: a contact, not a family link
    if (rel.empty()) {
      error("required", loc("NK1", n, 3), "relationship is required for a family link");
      continue;
    }
    std::string code_u;
    for (char c : rel.raw()) code_u += upper_char(c);
    auto it = maps_.relationships().find(code_u);
    if (it == maps_.relationships().end()) {
      error("code-invalid", loc("NK1", n, 3), "relationship is not a known HL7 table 0063 code");
      continue;
    }
    const Relationship& r = it->second;
    if (r.kind == Relationship::Kind::none) {
      warning("informational", loc("NK1", n, 3), "relationship is not a parent/carer link; no family link made");
      continue;
    }
    if (nhs_.empty()) {
      warning("not-found", loc("NK1", n, 33), "family link needs the subject's NHS number; not linked");
      continue;
    }
    const bool subject_is_child = r.kind == Relationship::Kind::parent;
    const std::string& child = subject_is_child ? nhs_ : relative;
    const std::string& parent = subject_is_child ? relative : nhs_;
    if (child == parent) {
      error("value", loc("NK1", n, 33), "relative's NHS number is the subject's own");
      continue;
    }
    std::string_view child_sees;
    std::string_view child_sees_display;
    if (subject_is_child) {
      child_sees = it->first;
      child_sees_display = r.display;
    } else {
      child_sees = r.child_sees.empty() ? maps_.parent_by_gender(gender_of(pid_.field(8).raw()).empty()
                                                                      ? std::string_view("unknown")
                                                                      : gender_of(pid_.field(8).raw()))
                                        : std::string_view(r.child_sees);
      child_sees_display = maps_.relationships().find(child_sees)->second.display;
    }

    Urn child_urn = patient_urn_;
    if (!subject_is_child) {
      // The child may not be known yet: create it if absent, never overwrite it.
      child_urn = fresh_urn();
      w_.StartObject();
      kv("fullUrl", child_urn.view());
      key("resource");
      w_.StartObject();
      kv("resourceType", "Patient");
      key("identifier");
      w_.StartArray();
      w_.StartObject();
      kv("system", kNhsNumberSystem);
      kv("value", child);
      w_.EndObject();
      w_.EndArray();
      if (!s.field(2).empty()) {
        key("name");
        w_.StartArray();
        write_name(s.field(2));
        w_.EndArray();
      }
      w_.EndObject();
      key("request");
      w_.StartObject();
      kv("method", "POST");
      kv("url", "Patient");
      tmp_.assign("identifier=");
      tmp_ += kNhsNumberSystem;
      tmp_ += '|';
      tmp_ += child;
      kv("ifNoneExist", tmp_);
      w_.EndObject();
      w_.EndObject();
    }

    std::string link = child + "-" + parent;
    Urn rp = fresh_urn();
    w_.StartObject();
    kv("fullUrl", rp.view());
    key("resource");
    w_.StartObject();
    kv("resourceType", "RelatedPerson");
    key("identifier");
    w_.StartArray();
    w_.StartObject();
    kv("system", kFamilyLink);
    kv("value", link);
    w_.EndObject();
    w_.StartObject();
    kv("system", kNhsNumberSystem);
    kv("value", parent);
    w_.EndObject();
    w_.EndArray();
    key("active");
    w_.Bool(true);
    key("patient");
    w_.StartObject();
    kv("reference", child_urn.view());
    w_.EndObject();
    key("relationship");
    w_.StartArray();
    w_.StartObject();
    key("coding");
    w_.StartArray();
    w_.StartObject();
    kv("system", kRel0063);
    kv("code", child_sees);
    kv("display", child_sees_display);
    w_.EndObject();
    w_.EndArray();
    w_.EndObject();
    w_.EndArray();
    // The parent's name is on this row when the subject is the child, on PID otherwise.
    Field parent_name = subject_is_child ? s.field(2) : pid_.field(5).repetition(0);
    if (!parent_name.empty()) {
      key("name");
      w_.StartArray();
      write_name(parent_name);
      w_.EndArray();
    }
    if (!subject_is_child) {
      std::string_view g = gender_of(pid_.field(8).raw());
      if (!g.empty()) kv("gender", g);
    }
    w_.EndObject();
    write_conditional("PUT", "RelatedPerson", kFamilyLink, link);
    w_.EndObject();
  }
}

// A CE/CWE code^text^system -> CodeableConcept: the SNOMED CT target first
// (from the code maps), then the coding as sent. Unknown coding systems and
// unmapped codes are kept as sent with a warning: losing a safeguarding
// entry because its code is local is worse than storing it uncoded.
void Translator::write_codeable(Field ce, const std::string& where, bool required) {
  std::string_view code = ce.component(1).raw();
  std::string_view display = text(ce.component(2));
  std::string_view sysname = ce.component(3).raw();
  if (code.empty()) {
    if (required) error("required", where + ".1", "a code is required");
    if (display.empty()) return;
    w_.StartObject();
    kv("text", display);
    w_.EndObject();
    return;
  }
  const CodeSource* src = maps_.source(sysname);
  if (src == nullptr) {
    if (!sysname.empty() && sysname.starts_with("HL7")) {
      // HL7 tables (HL70136 yes/no...) are not clinical concepts: kept as the v2 CodeSystem.
      std::string sys = "http://terminology.hl7.org/CodeSystem/v2-";
      sys += sysname.substr(3);
      w_.StartObject();
      key("coding");
      w_.StartArray();
      w_.StartObject();
      kv("system", sys);
      kv("code", code);
      if (!display.empty()) kv("display", display);
      w_.EndObject();
      w_.EndArray();
      w_.EndObject();
      return;
    }
    if (sysname.empty() && !required) {
      w_.StartObject();
      key("coding");
      w_.StartArray();
      w_.StartObject();
      kv("code", code);
      if (!display.empty()) kv("display", display);
      w_.EndObject();
      w_.EndArray();
      w_.EndObject();
      return;
    }
    src = maps_.local();
  }
  std::string_view lookup = code;
  std::string read2;
  if (src->id == "READ2") {
    // 5-byte Read v2 code, '.'-padded; a 7-character code carries a term id.
    if (code.size() == 7) lookup = code.substr(0, 5);
    else if (code.size() < 5) {
      read2.assign(code);
      read2.append(5 - code.size(), '.');
      lookup = read2;
    }
  }
  if (src->identity && !(all_digits(code) && code.size() >= 6 && code.size() <= 18)) {
    error("code-invalid", where + ".1", "a SNOMED CT concept id is 6 to 18 digits");
    return;
  }
  const Concept* target = nullptr;
  Concept identity_concept;
  if (auto it = src->map.find(lookup); it != src->map.end()) target = &it->second;
  else if (src->identity) {
    identity_concept.code.assign(code);
    identity_concept.display.assign(display);
    target = &identity_concept;
  }
  if (target == nullptr) {
    auto un = src->unmapped.find(lookup);
    std::string why = un == src->unmapped.end() ? std::string("not in profiles/codemaps")
                                                : "listed as unmapped: " + un->second;
    warning("code-unknown", where, src->id + " code has no SNOMED CT map (" + why + "); kept as sent");
  }
  std::string system = src->system;
  if (src->per_sender) {
    system += ':';
    system += sender_;
  }
  w_.StartObject();
  key("coding");
  w_.StartArray();
  if (target != nullptr) {
    w_.StartObject();
    kv("system", kSct);
    kv("code", target->code);
    if (!target->display.empty()) kv("display", target->display);
    w_.EndObject();
  }
  if (!src->identity) {
    w_.StartObject();
    kv("system", system);
    kv("code", lookup);
    if (!display.empty()) kv("display", display);
    w_.EndObject();
  }
  w_.EndArray();
  if (!display.empty()) kv("text", display);
  w_.EndObject();
}

void Translator::write_encounter() {
  Segment pv1 = msg_.segment("PV1");
  if (pv1.empty()) {
    error("required", "PV1", event_ + " needs a PV1 segment");
    return;
  }
  std::string_view cls = pv1.field(2).raw();
  std::string_view act, act_display;
  if (cls.empty()) error("required", "PV1-2", "patient class is required");
  else if (cls == "E") act = "EMER", act_display = "emergency";
  else if (cls == "I") act = "IMP", act_display = "inpatient encounter";
  else if (cls == "O") act = "AMB", act_display = "ambulatory";
  else error("code-invalid", "PV1-2", "patient class must be E, I or O");
  std::optional<std::string> start = datetime(pv1.field(44), "PV1-44");
  std::optional<std::string> end = datetime(pv1.field(45), "PV1-45");
  std::string_view status;
  if (trigger_ == "A01") status = "in-progress";
  else if (trigger_ == "A03") status = "finished";
  else if (trigger_ == "A04") status = cls == "E" ? "in-progress" : "arrived";
  else status = end ? "finished" : "in-progress";  // A08: the update says where the visit is
  if (act.empty()) return;

  std::string system, value;
  std::string_view visit = pv1.field(19).component(1).raw();
  if (!visit.empty()) {
    // CX.4 names the issuer when the visit number is not the sender's own.
    std::string_view issuer = pv1.field(19).component(4).component(1).raw();
    system = "urn:cpis-gateway:visit-number:";
    system += issuer.empty() ? sender_ : issuer;
    value = visit;
  } else {
    system = "urn:cpis-gateway:hl7:msh-4:";
    system += sender_;
    system += ":encounter";
    value = control_id_;
  }
  Urn u = fresh_urn();
  encounter_urn_.assign(u.view());
  w_.StartObject();
  kv("fullUrl", u.view());
  key("resource");
  w_.StartObject();
  kv("resourceType", "Encounter");
  key("identifier");
  w_.StartArray();
  w_.StartObject();
  kv("system", system);
  kv("value", value);
  w_.EndObject();
  w_.EndArray();
  kv("status", status);
  key("class");
  w_.StartObject();
  kv("system", kActCode);
  kv("code", act);
  kv("display", act_display);
  w_.EndObject();
  write_subject();
  if (start || end) {
    key("period");
    w_.StartObject();
    if (start) kv("start", *start);
    if (end) kv("end", *end);
    w_.EndObject();
  }
  // DG1-3: the reason for attendance (self-harm, overdose...).
  bool any_reason = false;
  std::size_t dg = 0;
  for (const Segment& s : msg_.all_segments()) {
    if (s.name() != "DG1") continue;
    const std::size_t n = dg++;
    if (s.field(3).empty()) {
      error("required", loc("DG1", n, 3), "diagnosis code is required");
      continue;
    }
    if (!any_reason) {
      key("reasonCode");
      w_.StartArray();
      any_reason = true;
    }
    write_codeable(s.field(3), loc("DG1", n, 3), true);
  }
  if (any_reason) w_.EndArray();
  // PV1-10 hospital service: IHA/RHA record a looked-after child's health
  // assessment (issue 15); other services are kept as the sender's local code.
  if (std::string_view svc = pv1.field(10).component(1).raw(); !svc.empty()) {
    key("type");
    w_.StartArray();
    w_.StartObject();
    key("coding");
    w_.StartArray();
    w_.StartObject();
    if (svc == "IHA" || svc == "RHA") {
      kv("system", "https://cpis-gateway.nhs.uk/CodeSystem/lac-health-assessment");
      kv("code", svc);
      kv("display", svc == "IHA" ? "Initial health assessment (looked-after child)"
                                 : "Review health assessment (looked-after child)");
    } else {
      tmp_ = "urn:cpis-gateway:local-code:";
      tmp_ += sender_;
      kv("system", tmp_);
      kv("code", svc);
    }
    w_.EndObject();
    w_.EndArray();
    w_.EndObject();
    w_.EndArray();
  }
  // PV1-3.4 the facility (the ED site), which routes to its paediatric liaison.
  if (std::string_view facility = pv1.field(3).component(4).component(1).raw(); !facility.empty()) {
    key("location");
    w_.StartArray();
    w_.StartObject();
    key("location");
    std::string where;
    for (int c : {1, 2, 3}) {
      std::string_view part = pv1.field(3).component(c).raw();
      if (!part.empty()) where += (where.empty() ? "" : " ") + std::string(part);
    }
    write_reference_identifier("https://fhir.nhs.uk/Id/ods-site-code", facility, "Location", where);
    w_.EndObject();
    w_.EndArray();
  }
  key("serviceProvider");
  write_reference_identifier(kOds, sender_, "Organization", {});
  w_.EndObject();
  write_conditional("PUT", "Encounter", system, value);
  w_.EndObject();
}

std::string_view obs_status(std::string_view s) {
  if (s.empty() || s == "F") return "final";
  if (s == "C") return "corrected";
  if (s == "P" || s == "S") return "preliminary";
  if (s == "R" || s == "I") return "registered";
  if (s == "D" || s == "W") return "entered-in-error";
  if (s == "X") return "cancelled";
  return {};
}

void Translator::write_observation(const Segment& obx, std::size_t n, const Segment& obr) {
  std::string where3 = loc("OBX", n, 3);
  if (obx.field(3).component(1).empty()) {
    error("required", where3 + ".1", "observation identifier (code) is required");
    return;
  }
  std::string_view st = obs_status(obx.field(11).raw());
  if (st.empty()) {
    error("code-invalid", loc("OBX", n, 11), "result status is not an HL7 table 0085 code");
    return;
  }
  std::string system, value;
  std::string_view obx21 = obx.field(21).component(1).raw();
  if (!obx21.empty()) {
    system = "urn:cpis-gateway:observation-id:";
    system += sender_;
    value = obx21;
  } else {
    system = "urn:cpis-gateway:hl7:msh-4:";
    system += sender_;
    system += ":obx";
    value = control_id_;
    value += '-';
    value += obx.field(1).raw().empty() ? std::to_string(n + 1) : std::string(obx.field(1).raw());
  }
  Urn u = fresh_urn();
  w_.StartObject();
  kv("fullUrl", u.view());
  key("resource");
  w_.StartObject();
  kv("resourceType", "Observation");
  key("identifier");
  w_.StartArray();
  w_.StartObject();
  kv("system", system);
  kv("value", value);
  w_.EndObject();
  w_.EndArray();
  kv("status", st);
  key("code");
  write_codeable(obx.field(3), where3, true);
  write_subject();
  if (!encounter_urn_.empty()) {
    key("encounter");
    w_.StartObject();
    kv("reference", encounter_urn_);
    w_.EndObject();
  }
  std::optional<std::string> eff = datetime(obx.field(14), loc("OBX", n, 14));
  if (!eff && !obr.empty()) eff = datetime(obr.field(7), "OBR-7");
  if (eff) kv("effectiveDateTime", *eff);
  else if (!msh_instant_.empty()) kv("effectiveDateTime", msh_instant_);

  std::string_view vt = obx.field(2).raw();
  Field v5 = obx.field(5);
  std::string where5 = loc("OBX", n, 5);
  if (!v5.empty()) {
    if (vt == "CE" || vt == "CWE" || vt == "CNE") {
      key("valueCodeableConcept");
      write_codeable(v5, where5, false);
    } else if (vt == "NM") {
      double x = 0;
      std::string_view num = v5.raw();
      auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), x);
      if (ec != std::errc() || p != num.data() + num.size()) {
        error("value", where5, "a numeric (NM) value is not a number");
      } else {
        key("valueQuantity");
        w_.StartObject();
        key("value");
        if (x == static_cast<double>(static_cast<int64_t>(x)) && x < 1e15 && x > -1e15)
          w_.Int64(static_cast<int64_t>(x));
        else
          w_.Double(x);
        if (!obx.field(6).component(1).empty()) kv("unit", text(obx.field(6).component(1)));
        w_.EndObject();
      }
    } else if (vt == "DT" || vt == "TS" || vt == "DTM") {
      if (auto dtv = datetime(v5, where5)) kv("valueDateTime", *dtv);
    } else {
      // ST, TX, FT and anything else: text, repetitions as lines.
      std::string joined;
      for (std::size_t r = 0; r < v5.repetition_count(); ++r) {
        if (r) joined += '\n';
        joined += hl7::unescape(v5.repetition(r).raw(), d_);
      }
      kv("valueString", joined);
    }
  }
  w_.EndObject();
  write_conditional("PUT", "Observation", system, value);
  w_.EndObject();
}

void Translator::write_care_team(const Segment& zct, std::size_t n) {
  std::string_view role = zct.field(1).raw();
  if (role.empty()) {
    error("required", loc("ZCT", n, 1), "care team role is required");
    return;
  }
  auto rit = maps_.care_team_roles().find(role);
  if (rit == maps_.care_team_roles().end()) {
    error("code-invalid", loc("ZCT", n, 1), "care team role is not one of profiles/adapters/systmone.json careTeamRoles");
    return;
  }
  std::string_view ods = zct.field(2).component(1).raw();
  if (ods.empty()) {
    error("required", loc("ZCT", n, 2), "care team ODS code is required");
    return;
  }
  auto start = datetime(zct.field(3), loc("ZCT", n, 3));
  auto end = datetime(zct.field(4), loc("ZCT", n, 4));
  std::string value(patient_key());
  value += '-';
  value += ods;
  value += '-';
  value += role;
  Urn u = fresh_urn();
  w_.StartObject();
  kv("fullUrl", u.view());
  key("resource");
  w_.StartObject();
  kv("resourceType", "CareTeam");
  key("identifier");
  w_.StartArray();
  w_.StartObject();
  kv("system", "https://cpis-gateway.nhs.uk/Id/care-team");
  kv("value", value);
  w_.EndObject();
  w_.EndArray();
  // Without a clock the adapter cannot tell a future end from a past one;
  // an end date means the membership is over or scheduled to be.
  kv("status", end ? "inactive" : "active");
  key("category");
  w_.StartArray();
  w_.StartObject();
  key("coding");
  w_.StartArray();
  w_.StartObject();
  kv("system", "https://cpis-gateway.nhs.uk/CodeSystem/care-team-category");
  kv("code", "caseload");
  kv("display", "Caseload (care team caring for the patient)");
  w_.EndObject();
  w_.EndArray();
  w_.EndObject();
  w_.EndArray();
  if (!zct.field(2).component(2).empty()) kv("name", text(zct.field(2).component(2)));
  write_subject();
  if (start || end) {
    key("period");
    w_.StartObject();
    if (start) kv("start", *start);
    if (end) kv("end", *end);
    w_.EndObject();
  }
  key("participant");
  w_.StartArray();
  w_.StartObject();
  key("role");
  w_.StartArray();
  w_.StartObject();
  key("coding");
  w_.StartArray();
  w_.StartObject();
  kv("system", "https://cpis-gateway.nhs.uk/CodeSystem/care-team-role");
  kv("code", rit->first);
  kv("display", rit->second);
  w_.EndObject();
  w_.EndArray();
  w_.EndObject();
  w_.EndArray();
  key("member");
  write_reference_identifier(kOds, ods, "Organization", text(zct.field(2).component(2)));
  w_.EndObject();
  w_.EndArray();
  w_.EndObject();
  write_conditional("PUT", "CareTeam", "https://cpis-gateway.nhs.uk/Id/care-team", value);
  w_.EndObject();
}

void Translator::write_consent(const Segment& zsc) {
  std::string_view flags[2] = {zsc.field(1).raw(), zsc.field(2).raw()};
  bool ok = true;
  for (int i = 0; i < 2; ++i) {
    if (flags[i].empty()) {
      error("required", loc("ZSC", 0, i + 1), "sharing consent flag is required (Y, N or U)");
      ok = false;
    } else if (flags[i] != "Y" && flags[i] != "N" && flags[i] != "U") {
      error("code-invalid", loc("ZSC", 0, i + 1), "sharing consent flag must be Y, N or U");
      ok = false;
    }
  }
  auto recorded = datetime(zsc.field(3), "ZSC-3");
  if (!ok) return;
  std::string value(patient_key());
  value += '-';
  value += sender_;
  Urn u = fresh_urn();
  w_.StartObject();
  kv("fullUrl", u.view());
  key("resource");
  w_.StartObject();
  kv("resourceType", "Consent");
  key("identifier");
  w_.StartArray();
  w_.StartObject();
  kv("system", "https://cpis-gateway.nhs.uk/Id/edsm-consent");
  kv("value", value);
  w_.EndObject();
  w_.EndArray();
  kv("status", "active");
  key("scope");
  w_.StartObject();
  key("coding");
  w_.StartArray();
  w_.StartObject();
  kv("system", "http://terminology.hl7.org/CodeSystem/consentscope");
  kv("code", "patient-privacy");
  w_.EndObject();
  w_.EndArray();
  w_.EndObject();
  key("category");
  w_.StartArray();
  w_.StartObject();
  key("coding");
  w_.StartArray();
  w_.StartObject();
  kv("system", "https://cpis-gateway.nhs.uk/CodeSystem/consent-category");
  kv("code", "edsm-record-sharing");
  kv("display", "SystmOne enhanced data sharing model consent");
  w_.EndObject();
  w_.EndArray();
  w_.EndObject();
  w_.EndArray();
  key("patient");
  w_.StartObject();
  kv("reference", patient_urn_.view());
  w_.EndObject();
  if (recorded) kv("dateTime", *recorded);
  key("organization");
  w_.StartArray();
  write_reference_identifier(kOds, sender_, "Organization", {});
  w_.EndArray();
  key("provision");
  w_.StartObject();
  // U (not asked / unknown) records no decision, so it adds no nested rule.
  bool any = flags[0] != "U" || flags[1] != "U";
  if (any) {
    key("provision");
    w_.StartArray();
    const char* actions[2] = {"share-out", "share-in"};
    for (int i = 0; i < 2; ++i) {
      if (flags[i] == "U") continue;
      w_.StartObject();
      kv("type", flags[i] == "Y" ? "permit" : "deny");
      key("action");
      w_.StartArray();
      w_.StartObject();
      key("coding");
      w_.StartArray();
      w_.StartObject();
      kv("system", "https://cpis-gateway.nhs.uk/CodeSystem/edsm-sharing");
      kv("code", actions[i]);
      w_.EndObject();
      w_.EndArray();
      w_.EndObject();
      w_.EndArray();
      w_.EndObject();
    }
    w_.EndArray();
  }
  w_.EndObject();
  w_.EndObject();
  write_conditional("PUT", "Consent", "https://cpis-gateway.nhs.uk/Id/edsm-consent", value);
  w_.EndObject();
}

// ZPN|EDD|gestation weeks|booking date|risk assessment done|social concerns:
// a pregnancy booking (issue 15): the booking itself as an EpisodeOfCare of
// service maternity managed by the sending midwifery service (MSH-4), and
// Observations for the EDD, the gestation, whether the booking risk
// assessment was done and the social-concerns answer, which the health
// visitor needs. A booking with parts missing is still mapped (with a warning
// per part): the pregnancy-notification flow tells the health visitor it is
// incomplete and the midwife what to send. Impossible values are errors.
void Translator::write_pregnancy(const Segment& zpn) {
  auto edd = datetime(zpn.field(1), "ZPN-1", true);
  auto booking = datetime(zpn.field(3), "ZPN-3", true);
  std::string_view weeks = zpn.field(2).raw();
  int w = -1;
  if (!weeks.empty()) {
    auto [p, ec] = std::from_chars(weeks.data(), weeks.data() + weeks.size(), w);
    if (ec != std::errc() || p != weeks.data() + weeks.size() || w < 0 || w > 45) {
      error("value", "ZPN-2", "gestation must be a whole number of weeks between 0 and 45");
      w = -1;
    }
  }
  std::string risk(zpn.field(4).raw());
  for (auto& c : risk) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (!risk.empty() && risk != "Y" && risk != "N") error("code-invalid", "ZPN-4", "risk assessment done must be Y or N");
  std::string concerns(text(zpn.field(5)));
  if (zpn.field(1).empty()) warning("required", "ZPN-1", "no estimated date of delivery: the notification is incomplete");
  if (zpn.field(3).empty()) warning("required", "ZPN-3", "no booking date: the notification is incomplete");
  if (risk.empty()) warning("required", "ZPN-4", "risk assessment not answered: the notification is incomplete");
  if (concerns.empty()) warning("required", "ZPN-5", "social concerns not answered: the notification is incomplete");
  if ((!zpn.field(1).empty() && !edd) || (!zpn.field(3).empty() && !booking)) return;  // errors said why
  // One booking per woman and booking date (the message id when the date is missing).
  std::string base(patient_key());
  base += '-';
  base += booking ? std::string_view(*booking) : control_id_;
  const std::string when = booking ? *booking : msh_instant_.substr(0, 10);
  constexpr std::string_view kBookingId = "https://cpis-gateway.nhs.uk/Id/pregnancy-booking";
  auto open = [&](std::string_view type, const std::string& id) {
    Urn u = fresh_urn();
    w_.StartObject();
    kv("fullUrl", u.view());
    key("resource");
    w_.StartObject();
    kv("resourceType", type);
    key("identifier");
    w_.StartArray();
    w_.StartObject();
    kv("system", kBookingId);
    kv("value", id);
    w_.EndObject();
    w_.EndArray();
  };
  auto close = [&](std::string_view type, const std::string& id) {
    w_.EndObject();
    write_conditional("PUT", type, kBookingId, id);
    w_.EndObject();
  };
  auto coding = [&](std::string_view system, std::string_view code, std::string_view display) {
    w_.StartObject();
    key("coding");
    w_.StartArray();
    w_.StartObject();
    kv("system", system);
    kv("code", code);
    kv("display", display);
    w_.EndObject();
    w_.EndArray();
    w_.EndObject();
  };
  {
    const std::string id = base + "-episode";
    open("EpisodeOfCare", id);
    kv("status", "active");
    key("type");
    w_.StartArray();
    coding("https://cpis-gateway.nhs.uk/CodeSystem/service", "maternity", "Maternity (pregnancy booking)");
    w_.EndArray();
    write_subject("patient");
    key("managingOrganization");
    write_reference_identifier(kOds, sender_, "Organization", {});
    if (booking) {
      key("period");
      w_.StartObject();
      kv("start", *booking);
      w_.EndObject();
    }
    close("EpisodeOfCare", id);
  }
  auto one = [&](std::string_view system, std::string_view code, std::string_view display, std::string_view suffix,
                 auto&& value) {
    const std::string id = base + "-" + std::string(suffix);
    open("Observation", id);
    kv("status", "final");
    key("code");
    coding(system, code, display);
    write_subject();
    kv("effectiveDateTime", when);
    value();
    close("Observation", id);
  };
  if (edd) one(kSct, maps_.edd().code, maps_.edd().display, "edd", [&] { kv("valueDateTime", *edd); });
  if (w >= 0) {
    one(kSct, maps_.gestation().code, maps_.gestation().display, "gestation", [&] {
      key("valueQuantity");
      w_.StartObject();
      key("value");
      w_.Int(w);
      kv("unit", "weeks");
      kv("system", "http://unitsofmeasure.org");
      kv("code", "wk");
      w_.EndObject();
    });
  }
  constexpr std::string_view kBooking = "https://cpis-gateway.nhs.uk/CodeSystem/maternity-booking";
  if (risk == "Y" || risk == "N")
    one(kBooking, "risk-assessment", "Booking risk assessment done", "risk-assessment", [&] {
      key("valueBoolean");
      w_.Bool(risk == "Y");
    });
  if (!concerns.empty())
    one(kBooking, "social-concerns", "Social concerns at booking", "social-concerns",
        [&] { kv("valueString", concerns); });
}

Result<void> Translator::run() {
  // Which message kinds are understood at all (anything else is AR).
  Field f9 = msg_.msh().field(9);
  type_ = f9.component(1).raw();
  trigger_ = f9.component(2).raw();
  if (type_.empty()) return make_error(Errc::invalid_input, "message type is missing", "MSH-9");
  static constexpr std::string_view kAdt[] = {"A01", "A03", "A04", "A08", "A28", "A31", "A40"};
  bool supported = false;
  if (type_ == "ADT") {
    for (auto t : kAdt) supported = supported || trigger_ == t;
  } else if (type_ == "ORU") {
    supported = trigger_ == "R01";
  }
  if (!supported) return make_error(Errc::unprocessable, "message type or trigger event is not supported", "MSH-9");
  std::string_view version = msg_.version();
  if (!(version == "2.3" || version == "2.3.1" || version == "2.4" || version == "2.5" || version == "2.5.1"))
    return make_error(Errc::unprocessable, "HL7 version must be 2.3 to 2.5.1", "MSH-12");

  read_header();
  pid_ = msg_.segment("PID");
  if (pid_.empty()) {
    error("required", "PID", event_ + " needs a PID segment");
    return make_error(Errc::unprocessable, "message has no PID segment", "PID");
  }
  if (!read_patient_ids()) return make_error(Errc::unprocessable, "patient cannot be identified", "PID-3");

  if (trigger_ == "A40") {
    Segment mrg = msg_.segment("MRG");
    if (mrg.empty()) {
      error("required", "MRG", "ADT^A40 needs an MRG segment naming the merged-away record");
    } else {
      Field m1 = mrg.field(1);
      for (std::size_t r = 0; r < m1.repetition_count(); ++r) {
        Field cx = m1.repetition(r);
        if (cx.component(1).empty()) continue;
        if (cx.component(5).raw().starts_with("NH") || cx.component(4).raw() == "NHS") {
          auto nn = identity::normalise_nhs_number(cx.component(1).raw());
          if (!nn) error("value", "MRG-1", "prior NHS number is not valid: " + nn.error().message);
          else old_nhs_ = *nn;
          break;
        }
        if (old_local_value_.empty() && !cx.component(4).empty()) {
          old_local_system_ = local_system(cx.component(4).component(1).raw(), cx.component(5).raw());
          old_local_value_ = cx.component(1).raw();
        }
      }
      if (old_nhs_.empty() && old_local_value_.empty() && errors_ == 0)
        error("required", "MRG-1", "prior patient identifier is required");
      if (!old_nhs_.empty() && old_nhs_ == nhs_) error("value", "MRG-1", "a record cannot be merged into itself");
      merge_ = !old_nhs_.empty() || !old_local_value_.empty();
    }
  }

  patient_urn_ = fresh_urn();
  if (merge_) old_urn_ = fresh_urn();

  w_.StartObject();
  kv("resourceType", "Bundle");
  key("meta");
  w_.StartObject();
  key("tag");
  w_.StartArray();
  w_.StartObject();
  kv("system", "urn:cpis-gateway:hl7-event");
  kv("code", event_);
  w_.EndObject();
  w_.EndArray();
  w_.EndObject();
  key("identifier");
  w_.StartObject();
  tmp_.assign("urn:cpis-gateway:hl7:msh-4:");
  tmp_ += sender_;
  kv("system", tmp_);
  kv("value", control_id_);
  w_.EndObject();
  kv("type", "transaction");
  if (!msh_instant_.empty()) kv("timestamp", msh_instant_);
  key("entry");
  w_.StartArray();
  write_patient(patient_urn_);
  if (merge_) write_merge_old();
  write_family_links();
  const bool visit = trigger_ == "A01" || trigger_ == "A03" || trigger_ == "A04" || trigger_ == "A08";
  if (visit) write_encounter();
  Segment obr = msg_.segment("OBR");
  std::size_t obx_n = 0, zct_n = 0, zsc_n = 0, zpn_n = 0;
  for (const Segment& s : msg_.all_segments()) {
    std::string_view name = s.name();
    if (name == "OBX") {
      write_observation(s, obx_n++, obr);
    } else if (name == "ZCT") {
      write_care_team(s, zct_n++);
    } else if (name == "ZSC") {
      if (zsc_n++ == 0) write_consent(s);
      else warning("informational", loc("ZSC", zsc_n - 1, 1), "only the first ZSC is read");
    } else if (name == "ZPN") {
      if (zpn_n++ == 0) write_pregnancy(s);
      else warning("informational", loc("ZPN", zpn_n - 1, 1), "only the first ZPN is read");
    } else if (name.size() == 3 && name[0] == 'Z') {
      // Unknown Z-segments stay in the stored raw message; nothing to map.
      warning("not-supported", std::string(name), "unknown Z-segment ignored");
    }
  }
  w_.EndArray();
  w_.EndObject();
  return {};
}

}  // namespace

Result<Bundle> hl7_to_fhir(std::string_view raw, const CodeMaps& maps, IssueSink& issues) {
  // Leading whitespace and MLLP leftovers are tolerated; anything else before MSH is not HL7.
  std::size_t start = raw.find_first_not_of(" \t\r\n\x0b");
  if (start == std::string_view::npos)
    return make_error(Errc::invalid_input, "empty message", "MSH");
  raw.remove_prefix(start);
  if (!raw.starts_with("MSH")) return make_error(Errc::invalid_input, "not an HL7 v2 message: it does not start with MSH", "MSH");
  // Separators first: a broken MSH-1/MSH-2 is a header problem, not a charset one.
  if (auto d = hl7::read_delimiters(raw); !d) return make_error(Errc::invalid_input, d.error().message, "MSH");
  thread_local std::string scratch;
  auto text = hl7::to_utf8(raw, scratch);
  if (!text) return make_error(Errc::invalid_input, text.error().message, "MSH-18");
  auto msg = hl7::Message::parse(*text);
  if (!msg) return make_error(Errc::invalid_input, msg.error().message, "MSH");

  thread_local json::Buffer buffer;
  buffer.Clear();
  json::Writer writer(buffer);
  Translator t(*msg, maps, issues, writer);
  const std::size_t errors_before = std::count_if(issues.issues().begin(), issues.issues().end(), [](const Issue& i) {
    return i.severity == Severity::error || i.severity == Severity::fatal;
  });
  auto ok = t.run();
  if (!ok) return ok.error();
  std::size_t errors_after = 0;
  const Issue* first = nullptr;
  std::size_t seen = 0;
  for (const auto& i : issues.issues()) {
    if (i.severity != Severity::error && i.severity != Severity::fatal) continue;
    if (seen++ >= errors_before && first == nullptr) first = &i;
    ++errors_after;
  }
  if (errors_after > errors_before) {
    return make_error(Errc::unprocessable,
                      "message has " + std::to_string(errors_after - errors_before) + " error(s); see the issues",
                      first->expression);
  }
  return Bundle{std::string(buffer.GetString(), buffer.GetSize())};
}

}  // namespace gw::adapters::systmone
