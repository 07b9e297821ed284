#pragma once
// What a caller may know exists: the sensitivity labels its role may not see
// (policy "sensitivity"), the CP-IS access records of other authorities, and
// the row scope of a type (policy "scope", e.g. a disclosure is its
// recipient's alone). Every read path asks here, so that a resource hidden
// from a caller is "not found" to it everywhere: reads, searches, includes,
// transaction answers, conditional writes.
#include <string>
#include <string_view>
#include <vector>

#include "gateway/common/json.h"
#include "gateway/security/policy.h"
#include "gateway/store/store.h"

namespace gw::security {

// True when the stored resource text carries one of the `hidden` labels (see
// Policy::hidden_labels); an unreadable body counts as hidden.
bool hidden_by_labels(std::string_view body, const std::vector<std::string>& hidden);

// Every hidden label the stored version carries is also on the incoming
// resource: a feed that cannot read what it replaces may still resend it,
// but never strip the labels that keep it from others.
bool keeps_hidden_labels(std::string_view stored_body, const json::Value& incoming,
                         const std::vector<std::string>& hidden);

// Notifications (LabelView): whether a change carrying these label codes may
// not even be announced to the viewer, and whether its content is hidden
// from it (then it goes id-only, or as the topic's derived disclosure).
bool existence_withheld(const LabelView& view, const std::vector<std::string>& codes);
bool content_hidden(const LabelView& view, const std::vector<std::string>& codes);

// The policy operation whose holders read the whole audit trail (CP-IS
// access records of every authority included).
inline constexpr std::string_view kTrailOperation = "audit-trail";
// The tag system of break-glass records (safeguarding/break_glass.h): one is
// readable by the organisation that broke the glass (its Caldicott guardian).
inline constexpr std::string_view kBreakGlassTagSystem = "https://cpis-gateway.nhs.uk/CodeSystem/break-glass";

class Visibility {
 public:
  Visibility(const Policy& policy, store::Store& store) : policy_(policy), store_(store) {}

  // As if it did not exist for `who`: labelled content its role may not see,
  // an access record (AuditEvent) about another authority's plans, or a row
  // outside its scope. Reads the store: call on a store reader thread.
  bool hidden_from(const Principal& who, const store::StoredResource& r, std::string_view interaction) const;

  // Whether `who` may read this stored AuditEvent: the whole trail's roles
  // (operation audit-trail) any; anyone else (a local authority following its
  // cpis-access notification) only a record naming a plan its organisation
  // manages, or a break-glass record of its own organisation's people.
  // Reads the plans: call on a store reader thread.
  bool may_read_access_record(const Principal& who, const std::string& body) const;

  const Policy& policy() const { return policy_; }

 private:
  const Policy& policy_;
  store::Store& store_;
};

}  // namespace gw::security
