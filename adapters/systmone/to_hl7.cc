// FHIR -> HL7 v2.4 ER7 in the SystmOne dialect, for sending what the gateway
// knows (demographics, visits, CP-IS plans) into the GP record. What is
// written, field by field, is in FORMAT.md ("Rendering").
#include <chrono>
#include <cstdio>
#include <random>

#include "adapters/systmone/systmone_adapter.h"
#include "gateway/common/json.h"
#include "gateway/model/cpis_plan.h"
#include "gateway/hl7/er7.h"
#include "gateway/identity/nhs_number.h"

namespace gw::adapters::systmone {
namespace {

using json::Value;

const Value* arr(const Value& v, std::string_view k) {
  const Value* a = json::member(v, k);
  return a != nullptr && a->IsArray() ? a : nullptr;
}

std::string_view sget(const Value& v, std::string_view k) { return json::get_string(v, k).value_or(""); }

// FHIR date/dateTime -> HL7 TS: "2026-11-04T02:25:00+00:00" -> "20261104022500+0000".
std::string to_ts(std::string_view f) {
  std::string out;
  std::size_t i = 0;
  for (; i < f.size(); ++i) {
    char c = f[i];
    if (c >= '0' && c <= '9') out += c;
    else if (c == '-' && i < 10) continue;  // date separators
    else if (c == 'T' || c == ':') continue;
    else break;
  }
  if (i < f.size() && f[i] == '.') {
    out += '.';
    for (++i; i < f.size() && f[i] >= '0' && f[i] <= '9'; ++i) out += f[i];
  }
  if (i < f.size()) {
    if (f[i] == 'Z') out += "+0000";
    else if (f[i] == '+' || f[i] == '-') {
      out += f[i];
      for (++i; i < f.size(); ++i)
        if (f[i] != ':') out += f[i];
    }
  }
  return out;
}

std::string now_ts() {
  auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d%H%M%S+0000", &tm);
  return buf;
}

// MSH-10: 20 characters (the v2.3.1 limit), unique per message.
std::string fresh_control_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[24];
  std::snprintf(buf, sizeof buf, "CPIS%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

struct Out {
  hl7::Delimiters d;
  std::string s;
  std::string esc(std::string_view t) const { return hl7::escape(t, d); }
  void seg(const std::string& text) {
    s += text;
    s += '\r';
  }
};

// The Patient's facts as PID (+ PD1) segments.
void write_pid(Out& o, const Value& p, const CodeMaps& maps, IssueSink& issues) {
  std::string pid3, vs;
  if (const Value* ids = arr(p, "identifier")) {
    for (const auto& id : ids->GetArray()) {
      std::string_view sys = sget(id, "system"), val = sget(id, "value");
      if (val.empty()) continue;
      std::string rep;
      if (sys == identity::kNhsNumberSystem) {
        rep = o.esc(val) + "^^^NHS^NH";
        for (const Value* ext = arr(id, "extension"); ext != nullptr; ext = nullptr)
          for (const auto& e : ext->GetArray()) {
            const Value* cc = json::member(e, "valueCodeableConcept");
            const Value* coding = cc ? arr(*cc, "coding") : nullptr;
            if (coding && !coding->Empty()) {
              std::string_view code = sget((*coding)[0], "code");
              if (maps.verification_status().count(code)) vs = "NSTS" + std::string(code);
            }
          }
      } else if (sys.starts_with("urn:cpis-gateway:local-id:")) {
        std::string_view rest = sys.substr(26);
        std::string_view type = "PI";
        if (auto c = rest.find(':'); c != std::string_view::npos) type = rest.substr(c + 1), rest = rest.substr(0, c);
        rep = o.esc(val) + "^^^" + o.esc(rest) + "^" + o.esc(type);
      } else if (sys.starts_with("urn:cpis-gateway:mrn:")) {
        rep = o.esc(val) + "^^^" + o.esc(sys.substr(21)) + "^MR";
      } else {
        continue;  // other identifier systems have no place in this dialect
      }
      if (!pid3.empty()) pid3 += '~';
      pid3 += rep;
    }
  }
  if (pid3.empty()) issues.warning("required", "Patient.identifier", "no NHS number or local identifier to send");

  std::string pid5;
  if (const Value* names = arr(p, "name")) {
    for (const auto& n : names->GetArray()) {
      std::string given, middle, prefix, suffix;
      if (const Value* g = arr(n, "given")) {
        if (g->Size() > 0 && (*g)[0].IsString()) given = o.esc(json::as_view((*g)[0]));
        if (g->Size() > 1 && (*g)[1].IsString()) middle = o.esc(json::as_view((*g)[1]));
      }
      if (const Value* pr = arr(n, "prefix"); pr && pr->Size() > 0 && (*pr)[0].IsString())
        prefix = o.esc(json::as_view((*pr)[0]));
      if (const Value* sf = arr(n, "suffix"); sf && sf->Size() > 0 && (*sf)[0].IsString())
        suffix = o.esc(json::as_view((*sf)[0]));
      if (!pid5.empty()) pid5 += '~';
      pid5 += o.esc(sget(n, "family")) + "^" + given + "^" + middle + "^" + suffix + "^" + prefix;
    }
  }
  std::string_view g = sget(p, "gender");
  std::string pid8 = g == "male" ? "M" : g == "female" ? "F" : g == "other" ? "O" : g == "unknown" ? "U" : "";
  std::string pid7 = to_ts(sget(p, "birthDate"));

  std::string pid11;
  if (const Value* as = arr(p, "address")) {
    for (const auto& a : as->GetArray()) {
      std::string l1, l2;
      if (const Value* lines = arr(a, "line")) {
        if (lines->Size() > 0 && (*lines)[0].IsString()) l1 = o.esc(json::as_view((*lines)[0]));
        if (lines->Size() > 1 && (*lines)[1].IsString()) l2 = o.esc(json::as_view((*lines)[1]));
      }
      std::string_view use = sget(a, "use");
      std::string type = use == "home" ? "H" : use == "work" ? "O" : use == "temp" ? "C" : "";
      if (!pid11.empty()) pid11 += '~';
      pid11 += l1 + "^" + l2 + "^" + o.esc(sget(a, "city")) + "^" + o.esc(sget(a, "district")) + "^" +
               o.esc(sget(a, "postalCode")) + "^" + o.esc(sget(a, "country")) + "^" + type;
    }
  }
  std::string pid13;
  if (const Value* ts = arr(p, "telecom")) {
    for (const auto& t : ts->GetArray()) {
      std::string_view sys = sget(t, "system"), use = sget(t, "use"), val = sget(t, "value");
      if (val.empty()) continue;
      std::string rep;
      if (sys == "email") rep = "^NET^Internet^" + o.esc(val);
      else if (sys == "phone") rep = o.esc(val) + "^" + (use == "mobile" ? "PRS" : use == "work" ? "WPN" : "PRN");
      else continue;
      if (!pid13.empty()) pid13 += '~';
      pid13 += rep;
    }
  }
  std::string pid29, pid30;
  if (auto dd = json::get_string(p, "deceasedDateTime")) pid29 = to_ts(*dd), pid30 = "Y";
  else if (auto db = json::get_bool(p, "deceasedBoolean")) pid30 = *db ? "Y" : "N";

  // PID-1..PID-32, empty fields kept so that positions match the spec.
  std::string f[33];
  f[1] = "1";
  f[3] = pid3;
  f[5] = pid5;
  f[7] = pid7;
  f[8] = pid8;
  f[11] = pid11;
  f[13] = pid13;
  f[29] = pid29;
  f[30] = pid30;
  f[32] = vs;
  int last = 32;
  while (last > 1 && f[last].empty()) --last;
  std::string seg = "PID";
  for (int i = 1; i <= last; ++i) seg += "|" + f[i];
  o.seg(seg);

  std::string pd13, pd14;
  if (const Value* gps = arr(p, "generalPractitioner")) {
    for (const auto& r : gps->GetArray()) {
      const Value* id = json::member(r, "identifier");
      if (id == nullptr) continue;
      std::string_view sys = sget(*id, "system"), val = sget(*id, "value");
      if (sys == "https://fhir.nhs.uk/Id/ods-organization-code" && pd13.empty())
        pd13 = o.esc(sget(r, "display")) + "^^" + o.esc(val) + "^^^NHS^ODS";
      else if (sys == "https://fhir.hl7.org.uk/Id/gmp-number" && pd14.empty())
        pd14 = o.esc(val) + (sget(r, "display").empty() ? "" : "^" + o.esc(sget(r, "display")));
    }
  }
  if (!pd13.empty() || !pd14.empty()) o.seg("PD1|||" + pd13 + (pd14.empty() ? "" : "|" + pd14));
}

// A CP-IS plan: a Flag, CarePlan or CareTeam carrying one of the plan codes.
const Value* plan_code(const Value& r, const CodeMaps& maps) {
  auto scan = [&](const Value* cc) -> const Value* {
    const Value* coding = cc ? arr(*cc, "coding") : nullptr;
    if (coding == nullptr) return nullptr;
    for (const auto& c : coding->GetArray())
      if (sget(c, "system") == "http://snomed.info/sct" && maps.cpis_plans().count(sget(c, "code"))) return &c;
    return nullptr;
  };
  if (const Value* c = scan(json::member(r, "code"))) return c;
  if (const Value* cats = arr(r, "category"))
    for (const auto& cat : cats->GetArray())
      if (const Value* c = scan(&cat)) return c;
  return nullptr;
}

// The local authority's numbers on a plan CareTeam (CPIS.md section 1), as
// OBX|n|TN| rows after the plan row: the practice needs them to act on the
// plan out of hours. Purpose from the contact-purpose extension, else rank.
void write_la_phones(Out& o, const Value& plan, std::string_view result_status) {
  const Value* telecom = arr(plan, "telecom");
  if (telecom == nullptr) return;
  std::string emergency, office;
  for (const auto& t : telecom->GetArray()) {
    if (sget(t, "system") != "phone" || sget(t, "value").empty()) continue;
    std::string_view purpose;
    if (const Value* exts = arr(t, "extension"))
      for (const auto& e : exts->GetArray())
        if (sget(e, "url") == model::cpis::kContactPurposeUrl) purpose = sget(e, "valueCode");
    if (purpose.empty()) {
      auto rank = json::get_int(t, "rank");
      purpose = rank && *rank == 1 ? "emergency-duty" : rank && *rank == 2 ? "office-hours" : "";
    }
    std::string& slot = purpose == "emergency-duty" ? emergency : office;
    if (slot.empty() && !purpose.empty()) slot = o.esc(sget(t, "value"));
  }
  int n = 1;
  auto row = [&](const std::string& number, std::string_view code, std::string_view text) {
    if (number.empty()) return;
    o.seg("OBX|" + std::to_string(++n) + "|TN|" + std::string(code) + "^" + std::string(text) + "^LOCAL||" + number +
          "||||||" + std::string(result_status));
  };
  row(emergency, kEmergencyDutyPhoneCode, "Local authority emergency duty telephone");
  row(office, kOfficeHoursPhoneCode, "Local authority office hours telephone");
}

}  // namespace

Result<std::string> fhir_to_hl7(const Bundle& in, const CodeMaps& maps, IssueSink& issues) {
  auto doc = json::parse(in.json);
  if (!doc) return make_error(Errc::invalid_input, doc.error().message, "Bundle");
  const Value* entries = arr(*doc, "entry");
  if (sget(*doc, "resourceType") != "Bundle" || entries == nullptr)
    return make_error(Errc::invalid_input, "a Bundle with entries is required", "Bundle.entry");
  const Value* patient = nullptr;
  const Value* encounter = nullptr;
  const Value* plan = nullptr;
  const Value* plan_coding = nullptr;
  for (const auto& e : entries->GetArray()) {
    const Value* r = json::member(e, "resource");
    if (r == nullptr) continue;
    std::string_view type = sget(*r, "resourceType");
    if (type == "Patient" && patient == nullptr) patient = r;
    else if (type == "Encounter" && encounter == nullptr) encounter = r;
    else if ((type == "Flag" || type == "CarePlan" || type == "CareTeam") && plan == nullptr) {
      if (const Value* c = plan_code(*r, maps)) plan = r, plan_coding = c;
    }
  }
  if (patient == nullptr)
    return make_error(Errc::unprocessable, "the Bundle has no Patient to send", "Bundle.entry");

  Out o;
  std::string kind = plan ? "ORU^R01^ORU_R01" : encounter ? "ADT^A08^ADT_A01" : "ADT^A31^ADT_A05";
  std::string trigger = plan ? "R01" : encounter ? "A08" : "A31";
  std::string practice;
  if (const Value* gps = arr(*patient, "generalPractitioner"))
    for (const auto& r : gps->GetArray())
      if (const Value* id = json::member(r, "identifier"))
        if (sget(*id, "system") == "https://fhir.nhs.uk/Id/ods-organization-code" && practice.empty())
          practice = o.esc(sget(*id, "value"));
  const std::string now = now_ts();
  o.seg("MSH|^~\\&|CPIS-GATEWAY|CPISGW|SYSTMONE|" + practice + "|" + now + "||" + kind + "|" + fresh_control_id() +
        "|P|2.4|||||GBR|UNICODE UTF-8");
  if (!plan) o.seg("EVN|" + trigger + "|" + now);
  write_pid(o, *patient, maps, issues);

  if (encounter && !plan) {
    std::string_view cls = json::member(*encounter, "class") ? sget(*json::member(*encounter, "class"), "code") : "";
    std::string pv12 = cls == "EMER" ? "E" : cls == "IMP" ? "I" : cls == "AMB" ? "O" : "";
    if (pv12.empty()) {
      issues.error("code-invalid", "Encounter.class", "class must be EMER, IMP or AMB to be sent as PV1-2");
      return make_error(Errc::unprocessable, "Encounter class cannot be sent", "Encounter.class");
    }
    std::string visit;
    if (const Value* ids = arr(*encounter, "identifier"))
      for (const auto& id : ids->GetArray())
        if (sget(id, "system").starts_with("urn:cpis-gateway:visit-number:"))
          visit = o.esc(sget(id, "value")) + "^^^" + o.esc(sget(id, "system").substr(30));
    std::string start, end;
    if (const Value* per = json::member(*encounter, "period")) {
      start = to_ts(sget(*per, "start"));
      end = to_ts(sget(*per, "end"));
    }
    std::string f[46];
    f[1] = "1";
    f[2] = pv12;
    f[19] = visit;
    f[44] = start;
    f[45] = end;
    int last = 45;
    while (last > 2 && f[last].empty()) --last;
    std::string seg = "PV1";
    for (int i = 1; i <= last; ++i) seg += "|" + f[i];
    o.seg(seg);
  }

  if (plan) {
    std::string_view code = sget(*plan_coding, "code");
    std::string display(sget(*plan_coding, "display"));
    if (display.empty()) display = maps.cpis_plans().find(code)->second;
    std::string start, end;
    if (const Value* per = json::member(*plan, "period")) {
      start = to_ts(sget(*per, "start"));
      end = to_ts(sget(*per, "end"));
    }
    // The responsible local authority: Flag.author, CareTeam.managingOrganization, CarePlan.author.
    const Value* la = json::member(*plan, "author");
    if (la == nullptr)
      if (const Value* mo = arr(*plan, "managingOrganization"); mo && !mo->Empty()) la = &(*mo)[0];
    std::string obx15;
    if (la != nullptr) {
      const Value* id = json::member(*la, "identifier");
      std::string_view ods = id ? sget(*id, "value") : "";
      if (!ods.empty()) obx15 = o.esc(ods) + "^" + o.esc(sget(*la, "display")) + "^ODS";
    }
    std::string_view status = sget(*plan, "status");
    // A plan whose end date is still ahead is active (CPIS.md section 1):
    // the status says so; only without a status does the end date decide.
    bool active = status == "active" || (status.empty() && end.empty());
    // Withdrawn (entered in error): the practice deletes what it filed.
    std::string_view result_status = status == "entered-in-error" ? "W" : "F";
    std::string plan_id;
    if (const Value* ids = arr(*plan, "identifier"); ids && !ids->Empty()) plan_id = o.esc(sget((*ids)[0], "value"));
    o.seg("OBR|1||" + plan_id + "|CPIS^Child protection information sharing^LOCAL|||" + (start.empty() ? now : start));
    o.seg("OBX|1|CE|" + o.esc(code) + "^" + o.esc(display) + "^SCT||" + (active ? "Y^Yes^HL70136" : "N^No^HL70136") +
          "||||||" + std::string(result_status) + "|" + end + "||" + start + "|" + obx15);
    write_la_phones(o, *plan, result_status);
  }
  return std::move(o.s);
}

}  // namespace gw::adapters::systmone
