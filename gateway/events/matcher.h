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
};

// Caseload over the Store (reads on the calling thread).
class StoreLookup final : public Lookup {
 public:
  explicit StoreLookup(store::Store& s) : store_(s) {}
  std::optional<json::Document> patient(const std::string& id) override;
  bool in_caseload(const std::string& patient_id, const std::string& ods) override;
  std::optional<json::Document> care_team(const std::string& id) override;
  std::optional<json::Document> version(const std::string& type, const std::string& id, int64_t version) override;

 private:
  store::Store& store_;
};

// True when the resource (or any Reference inside it) names this ODS code.
bool names_organisation(const json::Value& v, const std::string& ods);

// "Patient/<id>" the resource is about ("" when none).
std::string patient_ref_of(const std::string& type, const std::string& id, const json::Value& resource);

struct Decision {
  bool notify = false;
  std::string content;      // what this subscriber gets: empty | id-only | full-resource
  std::string patient_ref;  // for the audit
  std::string reason;       // why not (debug/metrics), never an identifier
};

Decision decide(const Topic& topic, const SubscriptionSpec& sub, const store::ChangeRow& change,
                const json::Value& resource, Lookup& lookup);

}  // namespace gw::events
