#pragma once
// FHIR search parameter parsing. Built in: _id, identifier (system|value),
// patient, subject (references),
// patient:identifier and subject:identifier (chained on the Patient's
// identifier), _lastUpdated (prefixes eq ge gt le lt sa eb), _count, the
// paging cursor _offset, and _include / _revinclude over patient|subject. Each repetition of a parameter ANDs; commas within
// one value OR. Unknown parameters: 400 under Prefer: handling=strict,
// otherwise ignored, left out of the self link and reported in an
// OperationOutcome entry. With a SearchParamTable (profiles/search/) also the
// declared parameters with their type's modifiers and prefixes, _sort,
// _summary=count, _elements and _total.
#include <string>
#include <string_view>
#include <vector>

#include "gateway/common/result.h"
#include "gateway/model/search_decl.h"

namespace gw::model {

struct TokenValue {
  std::string system;       // decoded; empty with has_system = "|value" (no system)
  bool has_system = false;  // "system|value" or "|value" was given
  std::string value;
};

struct DateBound {
  std::string prefix;  // ge gt le lt sa eb (eq is expanded to ge + lt of the precision)
  std::string value;   // ISO 8601 instant "YYYY-MM-DDThh:mm:ss.sssZ" (UTC, full precision)
};

// _include=<Type>:<param>[:Patient] / _revinclude=<Type>:<param>: the
// reference params the index keeps (patient, subject) point at Patients only.
struct IncludeParam {
  std::string source_type;  // the type holding the reference
  std::string param;        // "patient" | "subject"
};

// One occurrence of a declared parameter (occurrences AND; the values of one
// occurrence OR).
struct DateTerm {
  std::string prefix;     // eq ne lt gt le ge sa eb ap
  std::string low, high;  // the search value's instants [low, high) (ap: widened)
};

struct ParamTerm {
  const ParamDecl* decl = nullptr;
  // "" | exact | contains (string) | not | text (token) | identifier |
  // a target type (reference) | missing
  std::string modifier;
  std::vector<TokenValue> tokens;    // token values; reference:identifier values
  std::vector<std::string> strings;  // string: folded (default, contains) or as written (exact);
                                     // token:text: folded; reference: "Type/id" alternatives
  std::vector<DateTerm> dates;
  bool missing = false;              // :missing=true
};

struct SortKey {
  std::string param;  // "_id", "_lastUpdated" or a declared parameter
  bool descending = false;
};

struct SearchRequest {
  std::vector<std::string> ids;                               // _id (OR)
  std::vector<std::vector<TokenValue>> identifier;            // each inner list ORs
  std::vector<std::vector<std::string>> patient_refs;         // "Patient/<id>"
  std::vector<std::vector<std::string>> subject_refs;         // "Patient/<id>"
  std::vector<std::vector<TokenValue>> patient_identifier;    // chained
  std::vector<std::vector<TokenValue>> subject_identifier;    // chained
  std::vector<DateBound> last_updated;
  std::vector<IncludeParam> includes;     // _include: Patients the matches refer to
  std::vector<IncludeParam> revincludes;  // _revinclude: resources referring to the matched Patients
  int count = 20;
  int64_t offset = 0;
  std::vector<std::string> ignored;  // names of unknown parameters that were ignored (lenient)
  std::vector<ParamTerm> terms;      // declared parameters
  std::vector<SortKey> sort;
  bool summary_count = false;        // _summary=count: the total only
  std::vector<std::string> elements; // _elements: top-level elements to keep
  std::string total;                 // _total: "" | none | estimate | accurate
  // The query as applied: the raw pairs that were understood, in order (what
  // the self link echoes; an ignored parameter is not in it).
  std::string applied_query;
};

// query: the raw query string (percent-encoded). Errors are Errc::invalid_input
// naming the parameter in Error::expression.
Result<SearchRequest> parse_search(std::string_view type, std::string_view query, bool strict);
// With the declared parameters of `table` as well.
Result<SearchRequest> parse_search(const SearchParamTable& table, std::string_view type, std::string_view query,
                                   bool strict);

// Built-in parameter names for this type, in CapabilityStatement order.
std::vector<std::string> supported_search_params(std::string_view type);
// The search-result parameters every search takes (_sort, _count, _summary,
// _elements, _total).
const std::vector<std::string>& result_params();

// The value of a token parameter for system|value as it goes in a query
// string: FHIR search escaping (\| \, \$ \\) then percent-encoding, so
// parse_search reads back exactly system and value.
std::string token_query_value(std::string_view system, std::string_view value);

// Percent-decoding ('+' is a space in a query); invalid escapes are an error.
Result<std::string> percent_decode(std::string_view s, bool plus_is_space);

}  // namespace gw::model
