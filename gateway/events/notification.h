#pragma once
// The notification Bundle of the R5 Backport IG for R4
// (backport-subscription-notification-r4): type history, entry[0] a
// Parameters SubscriptionStatus mirroring GET .../Subscription/{id}/$status,
// then one entry per event focus (id-only: fullUrl + request; full-resource:
// with the resource; empty: none).
#include <cstdint>
#include <string>
#include <vector>

namespace gw::events {

struct NotificationEvent {
  int64_t number = 0;
  std::string timestamp;      // when the change was committed (ISO 8601)
  std::string focus_type, focus_id;
  int64_t focus_version = 0;
  std::string interaction;    // create | update | delete
  std::string resource_json;  // the version as served, for full-resource ("" otherwise)
};

struct Notification {
  std::string base;             // "https://host:port/fhir"
  std::string subscription_id;
  std::string topic_url;
  std::string status;           // the subscription's status as the notification reports it
  std::string type;             // handshake | heartbeat | event-notification | query-status | query-event
  int64_t events_since_start = 0;
  std::string content;          // empty | id-only | full-resource
  std::vector<NotificationEvent> events;
  std::string error_text;       // reported as Parameters.error when set
};

// A Bundle (as JSON text) or, for $status, just the Parameters.
std::string notification_bundle(const Notification& n);
std::string status_parameters(const Notification& n);

}  // namespace gw::events
