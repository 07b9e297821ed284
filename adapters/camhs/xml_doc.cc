#include "adapters/camhs/xml_doc.h"

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/xmlerror.h>

#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>

namespace gw::adapters::camhs {
namespace {

// No document may pull anything from outside: every external entity, DTD or
// schema import is refused, process-wide (the gateway has no other libxml2 use).
xmlParserInputPtr refuse_external(const char*, const char*, xmlParserCtxtPtr ctxt) {
  if (ctxt) xmlCtxtReset(ctxt);
  return nullptr;
}

void init_libxml_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    xmlInitParser();
    xmlSetExternalEntityLoader(refuse_external);
  });
}

std::string trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.remove_suffix(1);
  return std::string(s);
}

long line_at(std::string_view raw, std::size_t offset) {
  long line = 1;
  for (std::size_t i = 0; i < offset && i < raw.size(); ++i)
    if (raw[i] == '\n') ++line;
  return line;
}

struct Collector {
  std::vector<XsdFinding>* out;
  std::size_t max;
  bool truncated = false;
};

const xmlNode* enclosing_record(const xmlNode* n) {
  for (; n != nullptr && n->type != XML_DOCUMENT_NODE; n = n->parent)
    if (n->type == XML_ELEMENT_NODE && local_name(n) == "Patient" && n->parent &&
        n->parent->type == XML_ELEMENT_NODE && local_name(n->parent) == "MHSExtract")
      return n;
  return nullptr;
}

void on_schema_error(void* user, xmlErrorPtr e) {
  auto* c = static_cast<Collector*>(user);
  if (e == nullptr || e->level == XML_ERR_WARNING) return;
  if (c->out->size() >= c->max) {
    c->truncated = true;
    return;
  }
  XsdFinding f;
  f.line = e->line;
  const xmlNode* n = static_cast<const xmlNode*>(e->node);
  if (n && n->type == XML_ATTRIBUTE_NODE) {
    f.attribute = reinterpret_cast<const char*>(n->name);
    n = n->parent;
  }
  if (n && n->type == XML_ELEMENT_NODE) {
    f.element = std::string(local_name(n));
    if (f.line <= 0) f.line = line_of(n);
  }
  f.record = enclosing_record(n);
  std::string raw = trim(e->message ? e->message : "schema validation failed");
  // Attribute findings come on the owner element; the message names the attribute.
  if (f.attribute.empty()) {
    if (auto p = raw.find("attribute '"); p != std::string::npos) {
      auto q = raw.find('\'', p + 11);
      if (q != std::string::npos) f.attribute = raw.substr(p + 11, q - p - 11);
    }
  }
  // Identity constraints (xs:unique) are about the document, not one record.
  if (raw.find("key-sequence") != std::string::npos) f.record = nullptr;
  f.message = redact_values(raw);
  c->out->push_back(std::move(f));
}

struct FirstError {
  bool set = false;
  long line = 0;
  std::string element, message;
};

void on_parse_error(void* user, xmlErrorPtr e) {
  auto* ctxt = static_cast<xmlParserCtxtPtr>(user);
  if (!ctxt || !e || e->level == XML_ERR_WARNING) return;
  auto* first = static_cast<FirstError*>(ctxt->_private);
  if (!first || first->set) return;
  first->set = true;
  first->line = e->line;
  first->element = ctxt->name ? reinterpret_cast<const char*>(ctxt->name) : "(document)";
  first->message = redact_values(trim(e->message ? e->message : "not well-formed"));
}

}  // namespace

std::string redact_values(std::string_view m) {
  std::string out;
  out.reserve(m.size());
  std::size_t i = 0;
  while (i < m.size()) {
    if (m[i] != '\'') {
      out += m[i++];
      continue;
    }
    std::size_t close = m.find('\'', i + 1);
    if (close == std::string_view::npos) {
      out.append(m.substr(i));
      break;
    }
    // The word before the quote says what is quoted.
    std::size_t end = i;
    while (end > 0 && m[end - 1] == ' ') --end;
    std::size_t start = end;
    while (start > 0 && m[start - 1] != ' ' && m[start - 1] != '(' && m[start - 1] != '[') --start;
    std::string_view word = m.substr(start, end - start);
    const bool name = word == "Element" || word == "element" || word == "attribute" || word == "facet" ||
                      word == "type" || word == "pattern" || word == "constraint" || word == "identity-constraint";
    if (name) out.append(m.substr(i, close - i + 1));
    else out += "'(value)'";
    i = close + 1;
  }
  return out;
}

Schema::~Schema() {
  if (schema_) xmlSchemaFree(schema_);
}

Result<std::shared_ptr<const Schema>> Schema::load(const std::string& xsd_path) {
  init_libxml_once();
  std::ifstream in(xsd_path, std::ios::binary);
  if (!in) return make_error(Errc::internal, "camhs.xsd: cannot be read from " + xsd_path);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  xmlSchemaParserCtxtPtr pc = xmlSchemaNewMemParserCtxt(text.data(), static_cast<int>(text.size()));
  if (!pc) return make_error(Errc::internal, "camhs.xsd: cannot create a schema parser");
  std::vector<XsdFinding> findings;
  Collector c{&findings, 20};
  xmlSchemaSetParserStructuredErrors(pc, on_schema_error, &c);
  xmlSchemaPtr s = xmlSchemaParse(pc);
  xmlSchemaFreeParserCtxt(pc);
  if (!s) {
    std::string why = findings.empty() ? "not a valid XML schema" : findings.front().message;
    return make_error(Errc::internal, "camhs.xsd: " + why);
  }
  std::shared_ptr<Schema> out(new Schema());
  out->schema_ = s;
  return std::shared_ptr<const Schema>(std::move(out));
}

Result<DocPtr> read_document(std::string_view raw, std::size_t max_bytes) {
  init_libxml_once();
  if (raw.size() > max_bytes)
    return make_error(Errc::too_large, "document is " + std::to_string(raw.size()) + " bytes; the limit is " +
                                           std::to_string(max_bytes), "MHSExtract");
  if (raw.empty()) return make_error(Errc::invalid_input, "line 1: empty document", "MHSExtract");
  // DTDs are refused before libxml2 sees them: no entity of any kind is
  // declared, expanded or fetched (XXE, billion laughs).
  for (std::string_view bad : {std::string_view("<!DOCTYPE"), std::string_view("<!ENTITY")}) {
    if (auto p = raw.find(bad); p != std::string_view::npos)
      return make_error(Errc::invalid_input,
                        "line " + std::to_string(line_at(raw, p)) +
                            ": a DOCTYPE or ENTITY declaration is not allowed (DTDs and entities are refused)",
                        "DOCTYPE");
  }
  xmlParserCtxtPtr ctxt = xmlNewParserCtxt();
  if (!ctxt) return make_error(Errc::internal, "cannot create an XML parser");
  // The first error is the one the sender needs (libxml2 goes on and the last
  // one is usually "premature end of data").
  FirstError first;
  ctxt->_private = &first;
  ctxt->sax->serror = on_parse_error;
  const int options = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA |
                      XML_PARSE_BIG_LINES | XML_PARSE_NOBLANKS;
  xmlDocPtr d = xmlCtxtReadMemory(ctxt, raw.data(), static_cast<int>(raw.size()), "extract.xml", nullptr, options);
  if (!d || !ctxt->wellFormed) {
    const xmlError* e = xmlCtxtGetLastError(ctxt);
    long line = first.set ? first.line : e ? e->line : 0;
    std::string element = first.set ? first.element : ctxt->name ? reinterpret_cast<const char*>(ctxt->name) : "(document)";
    std::string why = first.set ? first.message : e && e->message ? redact_values(trim(e->message)) : "not well-formed";
    if (d) xmlFreeDoc(d);
    xmlFreeParserCtxt(ctxt);
    return make_error(Errc::invalid_input,
                      "line " + std::to_string(line) + ", element '" + element + "': not well-formed XML: " + why,
                      element);
  }
  xmlFreeParserCtxt(ctxt);
  DocPtr doc(d);
  if (doc->intSubset || doc->extSubset)
    return make_error(Errc::invalid_input, "a DOCTYPE is not allowed (DTDs and entities are refused)", "DOCTYPE");
  const xmlNode* root = xmlDocGetRootElement(doc.get());
  if (!root || local_name(root) != "MHSExtract" || !root->ns ||
      std::string_view(reinterpret_cast<const char*>(root->ns->href)) != kNamespace) {
    std::string name = root ? std::string(local_name(root)) : "(none)";
    return make_error(Errc::invalid_input,
                      "line " + std::to_string(root ? line_of(root) : 0) + ", element '" + name +
                          "': the root element must be MHSExtract in namespace " + std::string(kNamespace),
                      name);
  }
  return doc;
}

std::vector<XsdFinding> validate(const Schema& schema, xmlDoc* doc, std::size_t max_findings, bool* truncated) {
  std::vector<XsdFinding> out;
  Collector c{&out, max_findings};
  xmlSchemaValidCtxtPtr v = xmlSchemaNewValidCtxt(schema.get());
  if (!v) {
    out.push_back(XsdFinding{0, "MHSExtract", "", "cannot create a schema validation context", nullptr});
    return out;
  }
  xmlSchemaSetValidStructuredErrors(v, on_schema_error, &c);
  int rc = xmlSchemaValidateDoc(v, doc);
  xmlSchemaFreeValidCtxt(v);
  if (rc != 0 && out.empty())
    out.push_back(XsdFinding{0, "MHSExtract", "", "the document is not valid against the schema", nullptr});
  if (truncated) *truncated = c.truncated;
  return out;
}

std::string_view attr(const xmlNode* n, const char* name) {
  for (const xmlAttr* a = n->properties; a; a = a->next) {
    if (a->ns != nullptr || std::strcmp(reinterpret_cast<const char*>(a->name), name) != 0) continue;
    if (a->children && a->children->type == XML_TEXT_NODE && a->children->next == nullptr && a->children->content)
      return reinterpret_cast<const char*>(a->children->content);
    return {};
  }
  return {};
}

bool has_attr(const xmlNode* n, const char* name) {
  for (const xmlAttr* a = n->properties; a; a = a->next)
    if (a->ns == nullptr && std::strcmp(reinterpret_cast<const char*>(a->name), name) == 0) return true;
  return false;
}

std::string_view local_name(const xmlNode* n) {
  return n && n->name ? std::string_view(reinterpret_cast<const char*>(n->name)) : std::string_view();
}

bool is_element(const xmlNode* n, std::string_view name) {
  return n && n->type == XML_ELEMENT_NODE && local_name(n) == name;
}

std::string text_of(const xmlNode* n) {
  std::string out;
  for (const xmlNode* c = n->children; c; c = c->next)
    if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) && c->content)
      out += reinterpret_cast<const char*>(c->content);
  return out;
}

long line_of(const xmlNode* n) { return n ? xmlGetLineNo(n) : 0; }

}  // namespace gw::adapters::camhs
