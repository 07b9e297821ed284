#pragma once
// Data-quality findings with the element path they concern. Validators and
// adapters report into an IssueSink; the HTTP layer turns it into an
// OperationOutcome, the HL7 layer into ERR segments.
#include <string>
#include <vector>

#include "gateway/common/json.h"
#include "gateway/common/result.h"

namespace gw {

enum class Severity { fatal, error, warning, information };

struct Issue {
  Severity severity = Severity::error;
  std::string code;        // FHIR issue-type code: "required", "value", "invalid", "code-invalid"...
  std::string expression;  // element path, e.g. "Patient.identifier[0].value"
  std::string message;     // what is wrong, never a patient identifier
};

class IssueSink {
 public:
  void add(Severity s, std::string code, std::string expression, std::string message) {
    issues_.push_back(Issue{s, std::move(code), std::move(expression), std::move(message)});
  }
  void error(std::string code, std::string expression, std::string message) {
    add(Severity::error, std::move(code), std::move(expression), std::move(message));
  }
  void warning(std::string code, std::string expression, std::string message) {
    add(Severity::warning, std::move(code), std::move(expression), std::move(message));
  }
  bool has_errors() const {
    for (const auto& i : issues_)
      if (i.severity == Severity::error || i.severity == Severity::fatal) return true;
    return false;
  }
  const std::vector<Issue>& issues() const { return issues_; }
  bool empty() const { return issues_.empty(); }

 private:
  std::vector<Issue> issues_;
};

const char* severity_name(Severity s);

// A JSON array of {severity, code, expression, message}: how issues are kept
// with a stored inbound message and answered to file senders.
std::string issues_json(const std::vector<Issue>& issues);
// Writes the same array into an open Writer.
void write_issues(json::Writer& w, const std::vector<Issue>& issues);

// OperationOutcome JSON text from a list of issues.
std::string operation_outcome(const std::vector<Issue>& issues);
// OperationOutcome for one Error (code mapped by fhir_issue_code_for).
std::string operation_outcome(const Error& e);
// OperationOutcome with one issue and a details.coding (for national error codes such as
// the CP-IS spine codes), severity error.
std::string operation_outcome_coded(std::string_view issue_code, std::string_view coding_system,
                                    std::string_view coding_code, std::string_view diagnostics);

}  // namespace gw
