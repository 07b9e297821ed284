#pragma once
// Helpers for subscription tests: a backport-IG Subscription body, and
// reading the notification Bundles a HookReceiver recorded.
#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "gateway/events/subscriptions.h"
#include "tests/support/hook_receiver.h"

namespace gw::test {

// Subscription engine timings for tests: retries within a second, polls every
// `poll`, `workers` delivery workers (16 is the engine's default).
events::SubscriptionsOptions fast_subscriptions(int workers, std::chrono::milliseconds poll);

struct SubscriptionArgs {
  std::string topic = "patient-change";
  std::string endpoint{};
  std::string content = "id-only";
  std::vector<std::string> filters{};  // backport-filter-criteria strings
  std::vector<std::string> headers{};  // "Name: value"
  int64_t heartbeat_s = 0;
  int64_t max_count = 0;
  std::string status = "requested";
  std::string channel_type = "rest-hook";
  std::string payload = "application/fhir+json";
};
std::string subscription_json(const SubscriptionArgs& a);

// What a notification said (parsed from a recorded POST body).
struct Seen {
  std::string type;    // handshake | heartbeat | event-notification
  std::string status;
  std::string subscription;  // reference
  int64_t events_since_start = -1;
  std::vector<int64_t> numbers;
  std::vector<std::string> focus;  // references of notification-event.focus
  size_t entries = 0;              // Bundle.entry count
  bool ok = false;                 // parsed and shaped as the IG says (see `why`)
  std::string why;
};
Seen read_notification(const std::string& body);

// The event numbers of every event-notification in order of arrival.
std::vector<int64_t> event_numbers(const std::vector<ReceivedPost>& posts, const std::string& path = "");
size_t count_type(const std::vector<ReceivedPost>& posts, const std::string& type, const std::string& path = "");

}  // namespace gw::test
