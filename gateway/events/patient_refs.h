#pragma once
// References that travel (UK Core): a Reference to a Patient in what the
// gateway sends also carries the NHS number as its identifier, so the
// receiving system matches the child without calling the gateway back to
// learn who Patient/<gateway id> is.
//
// Only the references that say whom the resource is about (its top-level
// subject, patient, beneficiary) are given one: whoever receives the
// resource is entitled to know whom it concerns, not the NHS number of every
// other person it happens to mention (a Patient's link.other, say).
#include <string>

#include "gateway/common/json.h"
#include "gateway/events/matcher.h"

namespace gw::events {

// Adds identifier {system: NHS number, value} to each such reference to
// "Patient/<id>" (relative or absolute) that has no identifier yet and whose
// Patient has an NHS number. Returns how many references it changed.
int identify_subjects(json::Value& resource, json::Allocator& a, Lookup& lookup);

// The same on a resource's text (as served); the text is returned unchanged
// when nothing was added or it does not parse.
std::string identify_subjects_text(const std::string& served, Lookup& lookup);

}  // namespace gw::events
