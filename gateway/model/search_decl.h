#pragma once
// Search parameters as data: the declarations of profiles/search/params.json
// (name, type, paths) and the index rows they extract from a resource. The
// same table drives indexing (write path), parsing (model/search_params.h)
// and the CapabilityStatement, so what is listed is what works.
//
// How each type's values sit in the store's index (store::IndexEntry):
//   string     value = folded text + '\x1f' + the text as written; system
//              the member it came from in a HumanName or Address ("family",
//              "given", "postalCode"...) or "" for a plain string:
//              a prefix of the folded text is one range seek; :exact compares
//              the whole row; the sort order is the folded text's.
//   token      system = the coding's system (or ""), value = the code; with
//              "text": true also rows "<name>:text" holding the folded
//              display/text (as a string row) for :text.
//   date       value = the lowest instant the value covers, system = the
//              instant just after its highest (both "YYYY-MM-DDThh:mm:ss.sssZ",
//              UTC, so they sort and compare as text): a partial date or a
//              Period is the interval it stands for.
//   reference  literal references as (system "", value "Type/id"); a
//              logical reference (Reference.identifier) as (its system, its
//              value), which is what :identifier matches.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/common/json.h"
#include "gateway/common/result.h"
#include "gateway/store/store.h"

namespace gw::model {

enum class ParamType { string, token, date, reference };
const char* param_type_name(ParamType t);

struct ParamDecl {
  std::string name;
  ParamType type = ParamType::token;
  std::vector<std::string> paths;    // dotted, from the resource root; OR
  std::vector<std::string> targets;  // reference: the types it may point to
  bool text = false;                 // token: also index display/text for :text
  // token on a code element (Patient.gender): the code system R4 binds it to,
  // indexed as its system so that system|code finds it as well as code.
  std::string code_system;
  std::string doc;
  // Searched in the rows of another string parameter instead of rows of its
  // own: "family" within "name" matches name's rows whose system is
  // "family" (the last step of its path). Costs no index row on write.
  std::string within;
  std::string within_key;
};

class SearchParamTable {
 public:
  // profiles_dir/search/params.json; errors name the file and the entry.
  static Result<SearchParamTable> load(const std::string& profiles_dir);
  static Result<SearchParamTable> parse(std::string_view json_text, const std::string& file);

  const ParamDecl* find(std::string_view type, std::string_view name) const;
  std::vector<const ParamDecl*> of(std::string_view type) const;

  // The declared index rows of a resource (the built-in ones are
  // model::index_entries').
  void extract(std::string_view type, const json::Value& resource, std::vector<store::IndexEntry>& out) const;

 private:
  struct TypeParams {
    std::string type;
    std::vector<ParamDecl> params;
  };
  std::vector<TypeParams> types_;
};

// Case- and accent-insensitive form of a string (FHIR string search): Latin
// letters with diacritics become their base letter, letters lower-case,
// runs of white space one space.
std::string fold_text(std::string_view s);

// The separator between the folded and the written form in a string row.
inline constexpr char kFoldSeparator = '\x1f';

// A date, dateTime or instant at its precision as the instants [low, high)
// it covers, formatted for the index; nullopt when it is not one.
struct InstantRange {
  std::string low, high;
};
std::optional<InstantRange> date_range(std::string_view value);
// The same as milliseconds since the epoch (UTC), and back.
struct MsRange {
  int64_t low, high;
};
std::optional<MsRange> date_range_ms(std::string_view value);
std::optional<std::string> format_instant(int64_t ms);

// The lowest and just-past-highest instants the index can hold.
inline constexpr std::string_view kMinInstant = "0001-01-01T00:00:00.000Z";
inline constexpr std::string_view kMaxInstant = "9999-12-31T23:59:59.999Z";

}  // namespace gw::model
