#pragma once
// The Subscription endpoints in front of the generic REST API: create and
// update are checked (topic, filters, channel, payload, authorisation) and
// normalised (status requested, owner from the certificate) before RestApi
// stores them; $status and $events answer from the event store; topics are
// readable as Basic resources and advertised in the CapabilityStatement.
// Everything else about /fhir/Subscription is RestApi's.
#include <memory>
#include <string>

#include "gateway/events/subscriptions.h"
#include "gateway/fhir/rest.h"
#include "gateway/write/write_service.h"
#include "gateway/net/http.h"
#include "gateway/security/policy.h"

namespace gw::fhir {

class SubscriptionApi final : public net::Handler {
 public:
  // Reads of /fhir/Subscription beyond the owner's gate are the REST API's;
  // every create and update is checked here and written by `writes`.
  SubscriptionApi(RestApi& rest, write::WriteService& writes, events::Subscriptions& subs,
                  std::string public_base_url);
  // Routes this handler wants: /fhir/Subscription, /fhir/Basic, /fhir/metadata, /admin/subscriptions.
  void add_routes(net::Router& router);
  void handle(net::Request req, net::Respond respond) override;

 private:
  void write(net::Request req, net::Respond respond);
  void remove(net::Request req, net::Respond respond, const std::string& id);
  void owner_gate(net::Request req, net::Respond respond, const std::string& id, bool then_write);
  void status(net::Request req, net::Respond respond, const std::string& id);
  void events(net::Request req, net::Respond respond, const std::string& id);
  void topics(net::Request req, net::Respond respond, const std::string& name);
  void admin(net::Request req, net::Respond respond);
  std::string base(const net::Request& req) const;

  RestApi& rest_;
  write::WriteService& writes_;
  events::Subscriptions& subs_;
  const security::Policy& policy_;
  std::string public_base_url_;
};

}  // namespace gw::fhir
