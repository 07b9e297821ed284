#pragma once
// The index keys of one resource version, as both stores keep them on the
// current row: sorted, without duplicates and without the security labels
// (each store keeps those its own way), encoded as one blob, so that an
// update rewrites only the index rows that changed — usually none.
#include <string>
#include <string_view>
#include <vector>

#include "gateway/store/store.h"

namespace gw::store {

//
// One row answers two names: FHIR's `patient` parameter is the `subject`
// reference when that is a Patient, so model::index_entries gives both names
// the same value. Only the `subject` key is kept; a search on `patient` reads
// the rows of both names (stored_params), so it answers as before with one
// index row fewer per resource about a patient.
std::vector<IndexEntry> index_keys(const std::vector<IndexEntry>& index);
// The names a search on `param` reads: {"patient", "subject"} for "patient",
// else {param}.
std::vector<std::string> stored_params(const std::string& param);
// Whether a key stored under `stored` answers a search on `param`.
bool answers(std::string_view stored, std::string_view param);
// Leaves out the `patient` keys that repeat a `subject` key (same system and
// value): what index_keys keeps. `keys` sorted as index_keys makes them;
// answers whether it removed any. (The version 9 / 4 upgrades use it on
// stored key lists.)
bool drop_patient_duplicates(std::vector<IndexEntry>& keys);
std::string encode_keys(const std::vector<IndexEntry>& keys);
std::vector<IndexEntry> decode_keys(std::string_view blob);
// The entries of `after` that `before` lacks (both sorted as index_keys makes them).
std::vector<IndexEntry> keys_minus(const std::vector<IndexEntry>& after, const std::vector<IndexEntry>& before);

}  // namespace gw::store
