#pragma once
// libxml2 behind a small seam: the compiled XSD, a hardened document read
// (no network, no DTD, no entity expansion, size limit) and XSD validation
// whose findings are attributed to the Patient record they occur in.
#include <libxml/tree.h>
#include <libxml/xmlschemas.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/common/result.h"

namespace gw::adapters::camhs {

inline constexpr std::string_view kNamespace = "urn:cpis-gateway:camhs:1";

struct DocFree {
  void operator()(xmlDoc* d) const { xmlFreeDoc(d); }
};
using DocPtr = std::unique_ptr<xmlDoc, DocFree>;

// The compiled schema: read-only after load, shared by every thread (each
// validation makes its own context).
class Schema {
 public:
  static Result<std::shared_ptr<const Schema>> load(const std::string& xsd_path);
  ~Schema();
  Schema(const Schema&) = delete;
  Schema& operator=(const Schema&) = delete;
  xmlSchemaPtr get() const { return schema_; }

 private:
  Schema() = default;
  xmlSchemaPtr schema_ = nullptr;
};

// Parses raw XML safely. Errors (never a field value in the message):
// too_large over max_bytes; invalid_input for a DOCTYPE/entity declaration,
// a document that is not well-formed ("line N, element 'X': ...") or a root
// that is not {urn:cpis-gateway:camhs:1}MHSExtract.
Result<DocPtr> read_document(std::string_view raw, std::size_t max_bytes);

struct XsdFinding {
  long line = 0;
  std::string element;     // local name of the element (the owner for an attribute)
  std::string attribute;   // empty unless the finding is about an attribute
  std::string message;     // libxml2's message with values redacted
  const xmlNode* record = nullptr;  // the enclosing Patient element, or nullptr (document level)
};

// Every XSD finding (at most max_findings; *truncated says when more existed).
std::vector<XsdFinding> validate(const Schema& schema, xmlDoc* doc, std::size_t max_findings, bool* truncated);

// Helpers over the DOM. attr() returns a view into the document ("" when absent).
std::string_view attr(const xmlNode* n, const char* name);
bool has_attr(const xmlNode* n, const char* name);
std::string_view local_name(const xmlNode* n);
bool is_element(const xmlNode* n, std::string_view name);
std::string text_of(const xmlNode* n);  // concatenated text content
long line_of(const xmlNode* n);

// libxml2 messages quote the offending value; keep element, attribute, type
// and facet names, replace every other quoted token. Public for the tests.
std::string redact_values(std::string_view message);

}  // namespace gw::adapters::camhs
