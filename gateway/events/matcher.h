#pragma once
// Decides whether one resource version is an event for one subscription:
// topic trigger, the subscription's filters, the subscriber's caseload, and
// the sensitivity labels that limit what the payload may carry.
#include <optional>
#include <string>

#include "gateway/common/json.h"
#include "gateway/events/subscription.h"
#include "gateway/events/topics.h"
#include "gateway/store/store.h"

namespace gw::events {

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
  // Id of the live Patient keyed on this (normalised) NHS number: resolves a
  // logical reference such as the sexual-health concern Flag's subject, which
  // names the child by NHS number only. Fakes without patients answer nullopt.
  virtual std::optional<std::string> patient_id_by_nhs_number(const std::string&) { return std::nullopt; }
};

// Caseload over the Store (reads on the calling thread).
class StoreLookup final : public Lookup {
 public:
  explicit StoreLookup(store::Store& s) : store_(s) {}
  std::optional<json::Document> patient(const std::string& id) override;
  bool in_caseload(const std::string& patient_id, const std::string& ods) override;
  std::optional<std::string> patient_id_by_nhs_number(const std::string& nhs) override;

 private:
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
};

Decision decide(const Topic& topic, const SubscriptionSpec& sub, const store::ChangeRow& change,
                const json::Value& resource, Lookup& lookup);

}  // namespace gw::events
