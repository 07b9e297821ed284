#pragma once
// The web pages the gateway serves over its mutual-TLS HTTPS port (issue 16,
// docs/AUDIT.md "Dashboard and console"):
//
//   GET  /dashboard            commissioners and admins (operation "dashboard")
//   GET  /console              integration teams and admins (operation "console")
//   GET  /web/{file}           the pages' scripts and styles (either operation)
//   GET  /dashboard/api/status, /console/api/status
//                              quarantine counts by status, subscriptions and GP
//                              practice queues (pending, delivered, dead, oldest
//                              undelivered): counts and ids only, no patient data
//   GET  /console/api/messages?status=&adapter=&channel=&kind=&sender=&from=&to=&before=&_count=
//                              kept inbound messages and files, newest first,
//                              at most 200 a page (before= the last id seen)
//   GET  /console/api/messages/{id}
//                              one message: raw input, the ACK/answer, why it was
//                              quarantined and the FHIR versions it became, with
//                              what the viewer's role may not see withheld
//                              (security::Visibility); audited ("admin", HSYSADMIN)
//   POST /console/api/messages/{id}/replay
//                              the quarantine replay (ingest::IngestApi::replay_as)
//   POST /console/api/dead-letters/{queue}/replay
//                              dead letters of one subscription or GP practice
//                              queue ("gp-hl7:{ODS}") made pending again; audited
//
// The pages are static files (HTML, CSS, JavaScript modules) read once at
// start-up from the web directory (the profiles directory's sibling "web",
// installed as share/cpis-gateway/web). Every answer carries a CSP without
// inline script, frame-ancestors 'none', nosniff and Cache-Control: no-store.
// No patient identifier is ever put in a URL: messages are named by their
// opaque inbound id, and the filters are channels, senders and times.
#include <functional>
#include <map>
#include <string>

#include "gateway/events/subscriptions.h"
#include "gateway/ingest/ingest_api.h"
#include "gateway/net/http.h"
#include "gateway/security/policy.h"
#include "gateway/security/visibility.h"
#include "gateway/store/store.h"
#include "gateway/write/write_service.h"

namespace gw::admin {

inline constexpr std::string_view kDashboardOperation = "dashboard";
inline constexpr std::string_view kConsoleOperation = "console";

// The security headers every page and API answer of the console carries.
void add_page_headers(net::Response& r);

class WebConsole final : public net::Handler {
 public:
  // web_dir: where dashboard.html, console.html and their assets are; a
  // missing directory leaves the pages answering 404 saying so (the JSON
  // endpoints work regardless). subs may be null (subscriptions disabled).
  WebConsole(std::string web_dir, store::Store& store, write::WriteService& writes,
             const security::Visibility& visibility, ingest::IngestApi& ingest, events::Subscriptions* subs);
  void add_routes(net::Router& router);
  void handle(net::Request req, net::Respond respond) override;
  // Files loaded (for the start-up line and tests).
  size_t files() const { return files_.size(); }

 private:
  struct File {
    std::string body, content_type;
  };
  void page(const net::Request& req, const std::string& name, net::Respond respond);
  // backlog_for: the dashboard's caller, who also gets what is waiting to be
  // acknowledged (disclosure_backlog.h); the console's status has none.
  void status(net::Respond respond, const security::Principal* backlog_for = nullptr);
  void messages(net::Request req, net::Respond respond);
  void message(net::Request req, int64_t id, net::Respond respond);
  void replay_dead(net::Request req, const std::string& queue, net::Respond respond);

  std::string web_dir_;
  std::map<std::string, File> files_;
  store::Store& store_;
  write::WriteService& writes_;
  const security::Visibility& visibility_;
  const security::Policy& policy_;
  ingest::IngestApi& ingest_;
  events::Subscriptions* subs_;
};

}  // namespace gw::admin
