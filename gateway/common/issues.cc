#include "gateway/common/issues.h"

namespace gw {

const char* severity_name(Severity s) {
  switch (s) {
    case Severity::fatal: return "fatal";
    case Severity::error: return "error";
    case Severity::warning: return "warning";
    case Severity::information: return "information";
  }
  return "error";
}

namespace {
void write_issue(json::Writer& w, const Issue& i) {
  w.StartObject();
  w.Key("severity");
  w.String(severity_name(i.severity));
  w.Key("code");
  w.String(i.code.empty() ? "invalid" : i.code.c_str());
  if (!i.message.empty()) {
    w.Key("diagnostics");
    w.String(i.message.c_str(), static_cast<json::SizeType>(i.message.size()));
  }
  if (!i.expression.empty()) {
    w.Key("expression");
    w.StartArray();
    w.String(i.expression.c_str(), static_cast<json::SizeType>(i.expression.size()));
    w.EndArray();
  }
  w.EndObject();
}
}  // namespace

std::string operation_outcome(const std::vector<Issue>& issues) {
  json::Buffer buf;
  json::Writer w(buf);
  w.StartObject();
  w.Key("resourceType");
  w.String("OperationOutcome");
  w.Key("issue");
  w.StartArray();
  if (issues.empty()) {
    write_issue(w, Issue{Severity::information, "informational", "", "All OK"});
  }
  for (const auto& i : issues) write_issue(w, i);
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string operation_outcome(const Error& e) {
  Severity sev = http_status_for(e.code) >= 500 ? Severity::fatal : Severity::error;
  return operation_outcome(std::vector<Issue>{Issue{sev, fhir_issue_code_for(e.code), e.expression, e.message}});
}

std::string operation_outcome_coded(std::string_view issue_code, std::string_view coding_system,
                                    std::string_view coding_code, std::string_view diagnostics) {
  json::Buffer buf;
  json::Writer w(buf);
  auto s = [&](std::string_view v) { w.String(v.data(), static_cast<json::SizeType>(v.size())); };
  w.StartObject();
  w.Key("resourceType");
  s("OperationOutcome");
  w.Key("issue");
  w.StartArray();
  w.StartObject();
  w.Key("severity");
  s("error");
  w.Key("code");
  s(issue_code);
  w.Key("details");
  w.StartObject();
  w.Key("coding");
  w.StartArray();
  w.StartObject();
  w.Key("system");
  s(coding_system);
  w.Key("code");
  s(coding_code);
  w.EndObject();
  w.EndArray();
  w.EndObject();
  if (!diagnostics.empty()) {
    w.Key("diagnostics");
    s(diagnostics);
  }
  w.EndObject();
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

void write_issues(json::Writer& w, const std::vector<Issue>& issues) {
  auto put = [&w](const char* k, std::string_view v) {
    w.Key(k);
    w.String(v.data(), static_cast<json::SizeType>(v.size()));
  };
  w.StartArray();
  for (const auto& i : issues) {
    w.StartObject();
    put("severity", severity_name(i.severity));
    put("code", i.code);
    if (!i.expression.empty()) put("expression", i.expression);
    put("message", i.message);
    w.EndObject();
  }
  w.EndArray();
}

std::string issues_json(const std::vector<Issue>& issues) {
  json::Buffer buf;
  json::Writer w(buf);
  write_issues(w, issues);
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace gw
