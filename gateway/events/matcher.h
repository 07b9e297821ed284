#pragma once
// Decides whether one resource version is an event for one subscription:
// topic trigger, the subscription's filters, the subscriber's caseload, and
// the sensitivity labels that limit what the payload may carry.
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "gateway/common/json.h"
#include "gateway/events/subscription.h"
#include "gateway/events/topics.h"
#include "gateway/store/store.h"

namespace gw::events {

struct FlowContext;

// The facts a decision needs beyond the focus resource (store-backed in the
// gateway, fakes in tests).
class Lookup {
 public:
  virtual ~Lookup() = default;
  // The current Patient resource, or nullopt.
  virtual std::optional<json::Document> patient(const std::string& id) = 0;
  // Caseload: the Patient's generalPractitioner/managingOrganization, or a
  // CareTeam or EpisodeOfCare about the Patient, names this ODS code.
  virtual bool in_caseload(const std::string& patient_id, const std::string& ods) = 0;
  // The current CareTeam resource (a CP-IS plan names its local authority), or nullopt.
  // (Default: none, for fakes that do not need plans.)
  virtual std::optional<json::Document> care_team(const std::string& id) {
    (void)id;
    return std::nullopt;
  }
  // One stored version of a resource (the one before a change, for routes
  // that depend on what changed), or nullopt.
  virtual std::optional<json::Document> version(const std::string& type, const std::string& id, int64_t version) {
    (void)type, (void)id, (void)version;
    return std::nullopt;
  }
  // The children linked to this parent by family links (RelatedPerson with
  // the parent's NHS number as identifier and patient = the child; both the
  // systmone NK1 and the camhs Dependant mappings write that same resource),
  // as Patient ids. Defaults: no facts (fakes that do not need them).
  virtual std::vector<std::string> linked_children(const std::string&) { return {}; }
  // An estimated date of delivery that has not passed is recorded for her.
  virtual bool pregnant(const std::string&) { return false; }
  // This organisation holds the young person's open CAMHS referral
  // (EpisodeOfCare of service camhs) or is a member of an active CareTeam
  // about them.
  virtual bool holds_camhs_care(const std::string&, const std::string&) { return false; }
  // Any current resource (a disclosure's contact details), or nullopt.
  virtual std::optional<json::Document> resource(const std::string&, const std::string&) { return std::nullopt; }
  // Id of the live Patient keyed on this (normalised) NHS number: resolves a
  // logical reference such as the sexual-health concern Flag's subject, which
  // names the child by NHS number only. Fakes without patients answer nullopt.
  virtual std::optional<std::string> patient_id_by_nhs_number(const std::string&) { return std::nullopt; }
  // The current resources of a type about a Patient (subject/patient), for
  // the facts of the relations route (relations.h). Fakes: none.
  virtual std::vector<json::Document> about(const std::string& type, const std::string& patient_id) {
    (void)type, (void)patient_id;
    return {};
  }
  // The area's tables and the date for the relations route; nullptr: that
  // route hears nothing (fakes, engines started without them).
  virtual const struct FlowContext* flows() { return nullptr; }
  // True the first time a key is claimed in this lookup's life (one fan-out
  // pass): a disclosure derived twice in one pass (a booking and its
  // observations in one message) is made once. Fakes: always true.
  virtual bool claim_once(const std::string& key) {
    (void)key;
    return true;
  }
  // Live ids of `type` carrying identifier system|value (a disclosure already
  // made with the same content). Fakes: none.
  virtual std::vector<std::string> ids_by_identifier(const std::string& type, const std::string& system,
                                                     const std::string& value) {
    (void)type, (void)system, (void)value;
    return {};
  }
};

// Caseload over the Store (reads on the calling thread). Lives for one
// fan-out pass, so the family links of a parent are read once for all the
// subscriptions deciding on the same change.
class StoreLookup final : public Lookup {
 public:
  explicit StoreLookup(store::Store& s, const FlowContext* flows = nullptr) : flows_(flows), store_(s) {}
  std::optional<json::Document> patient(const std::string& id) override;
  bool in_caseload(const std::string& patient_id, const std::string& ods) override;
  std::optional<json::Document> care_team(const std::string& id) override;
  std::optional<json::Document> version(const std::string& type, const std::string& id, int64_t version) override;
  std::vector<std::string> linked_children(const std::string& parent_id) override;
  bool pregnant(const std::string& patient_id) override;
  bool holds_camhs_care(const std::string& patient_id, const std::string& ods) override;
  std::optional<json::Document> resource(const std::string& type, const std::string& id) override;
  std::optional<std::string> patient_id_by_nhs_number(const std::string& nhs) override;
  std::vector<json::Document> about(const std::string& type, const std::string& patient_id) override;
  const FlowContext* flows() override { return flows_; }
  bool claim_once(const std::string& key) override { return claimed_.insert(key).second; }
  std::vector<std::string> ids_by_identifier(const std::string& type, const std::string& system,
                                             const std::string& value) override;

 private:
  const FlowContext* flows_ = nullptr;
  std::set<std::string> claimed_;
  std::vector<store::StoredResource> about_patient(const char* type, const std::string& patient_id);
  std::vector<std::string> read_linked_children(const std::string& parent_id);
  std::map<std::string, std::vector<std::string>> children_;  // parent id -> linked children (this pass)
  store::Store& store_;
};

// True when the resource (or any Reference inside it) names this ODS code.
bool names_organisation(const json::Value& v, const std::string& ods);

// "Patient/<id>" the resource is about ("" when none).
std::string patient_ref_of(const std::string& type, const std::string& id, const json::Value& resource);

// True when the resource's disclosable-to extension lists this audience code.
bool disclosable_to(const json::Value& resource, std::string_view audience);

struct Decision {
  bool notify = false;
  std::string content;      // what this subscriber gets: empty | id-only | full-resource
  std::string patient_ref;  // for the audit
  std::string reason;       // why not (debug/metrics), never an identifier
  // The topic's payload is a disclosure for this subscriber (a derived
  // Communication instead of the focus).
  bool disclose = false;
  // Patient ids this subscriber is told about (routes that decide it: the
  // linked children in its care; the young person for tier4-discharge).
  std::vector<std::string> concerned;
  // Midwifery: cares for the parent while she is pregnant (the unborn child).
  bool pregnancy = false;
  // The relations route: the relationship that made this subscriber a receiver.
  std::string relation{};
};

Decision decide(const Topic& topic, const SubscriptionSpec& sub, const store::ChangeRow& change,
                const json::Value& resource, Lookup& lookup);

}  // namespace gw::events
