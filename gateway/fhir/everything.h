#pragma once
// Patient/$everything (FHIR R4 Patient-everything): the Patient and every
// resource whose patient (or subject) reference is it, paged as one list.
// The caller's hidden labels are applied in SQL to every part, so the total
// counts only what the caller may see, and only types it may search are
// followed.
#include <string>
#include <vector>

#include "gateway/common/result.h"
#include "gateway/fhir/include.h"
#include "gateway/store/store.h"

namespace gw::fhir {

// types: the server's resource types (those with a patient search param are
// used). Errc::not_found when the Patient does not exist, is deleted or is
// hidden from the caller.
Result<store::SearchPage> patient_everything(store::Store& store, const std::vector<std::string>& types,
                                             const std::string& patient_id, const IncludeContext& ctx, int count,
                                             int64_t offset);

}  // namespace gw::fhir
