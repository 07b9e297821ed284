#pragma once
// Streaming JSON for the resources the gateway writes field by field (the
// CP-IS access AuditEvent, the BALP rendering of the audit trail): one
// Writer into one buffer, with the FHIR shapes that recur (Coding,
// CodeableConcept) as calls.
#include <string>
#include <string_view>

#include "gateway/common/json.h"

namespace gw::json {

struct Out {
  Buffer buf;
  Writer w{buf};
  void s(std::string_view v) { w.String(v.data(), static_cast<SizeType>(v.size())); }
  void kv(const char* k, std::string_view v) {
    w.Key(k);
    s(v);
  }
  void coding(std::string_view system, std::string_view code, std::string_view display = {}) {
    w.StartObject();
    kv("system", system);
    kv("code", code);
    if (!display.empty()) kv("display", display);
    w.EndObject();
  }
  void codeable(std::string_view system, std::string_view code, std::string_view display = {}) {
    w.StartObject();
    w.Key("coding");
    w.StartArray();
    coding(system, code, display);
    w.EndArray();
    w.EndObject();
  }
  void raw(const Value& v) { v.Accept(w); }
  std::string text() const { return std::string(buf.GetString(), buf.GetSize()); }
};

}  // namespace gw::json
