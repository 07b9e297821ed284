#pragma once
// The CAMHS / adult mental health / substance misuse XML adapter
// (formats/README.md §3, FORMAT.md beside this file): one MHSDS-shaped
// extract -> a FHIR transaction Bundle, and FHIR -> the same XML for the
// notifications the CAMHS system receives (a Tier 4 discharge). Pure: no I/O
// after construction; the compiled XSD and the tables are read-only, so one
// instance serves every thread.
#include <memory>
#include <string>
#include <string_view>

#include "adapters/adapter.h"
#include "adapters/camhs/tables.h"
#include "adapters/camhs/xml_doc.h"

namespace gw::adapters::camhs {

class CamhsAdapter final : public Adapter {
 public:
  // Loads profiles_dir/adapters/camhs.json and profiles_dir/xsd/camhs.xsd;
  // the error names the file and the key when they are unusable.
  static Result<AdapterPtr> create(const std::string& profiles_dir);

  std::string_view format_id() const override { return "camhs"; }
  // A Bundle when the document is well-formed, has the right root and a valid
  // header, and at least one record (or none at all) was accepted; rejected
  // records are error issues named Patient[LocalPatientID=...]. See FORMAT.md.
  Result<Bundle> parse(std::string_view raw, IssueSink& issues) const override;
  Result<std::string> render(const Bundle& in, IssueSink& issues) const override;

  const Tables& tables() const { return tables_; }

 private:
  CamhsAdapter(Tables t, std::shared_ptr<const Schema> s) : tables_(std::move(t)), schema_(std::move(s)) {}
  Tables tables_;
  std::shared_ptr<const Schema> schema_;
};

// The two directions as plain functions (the adapter is a thin shell over them).
Result<Bundle> xml_to_fhir(std::string_view raw, const Tables& tables, const Schema& schema, IssueSink& issues);
Result<std::string> fhir_to_xml(const Bundle& in, const Tables& tables, const Schema& schema, IssueSink& issues);

}  // namespace gw::adapters::camhs
