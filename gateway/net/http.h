#pragma once
// The seam between the listeners and the features: plain request/response
// values and a route table. Handlers never see Beast types, so feature code
// compiles fast and can be tested without sockets.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gateway/security/principal.h"

namespace gw::net {

struct Request {
  std::string method;  // "GET", "POST"...
  std::string target;  // as received, e.g. "/fhir/Patient?identifier=a%7Cb"
  std::string path;    // percent-decoded path without the query, e.g. "/fhir/Patient"
  std::string query;   // raw query string after '?', not decoded
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  security::Principal principal;
  uint64_t conn_id = 0;
  uint64_t req_id = 0;
  // X-Request-ID (the client's, or minted): returned with the answer, in the
  // request's log lines and in the audit rows it leaves.
  std::string request_id;
  std::string remote;  // peer address
  std::string base_url;  // "https://host:port", from the Host header (for Location, fullUrl)

  // The id the audit rows carry: the X-Request-ID, or the per-process
  // counter for a request that did not come through a listener.
  std::string audit_id() const { return request_id.empty() ? std::to_string(req_id) : request_id; }

  std::optional<std::string_view> header(std::string_view lower_name) const {
    for (const auto& [k, v] : headers)
      if (k == lower_name) return std::string_view(v);
    return std::nullopt;
  }
};

struct Response {
  int status = 200;
  std::string content_type = "application/fhir+json; charset=utf-8";
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers (ETag, Location...)
  std::string body;
  std::string route;  // metrics label, e.g. "fhir_read"; low cardinality, no ids
};

// Called exactly once, from any thread; the session posts back to its strand.
using Respond = std::function<void(Response)>;

class Handler {
 public:
  virtual ~Handler() = default;
  virtual void handle(Request req, Respond respond) = 0;
};

// Longest-prefix route table, filled once at start-up by main.
class Router {
 public:
  // prefix "/fhir" matches "/fhir" and "/fhir/..." but not "/fhirx".
  void add(std::string prefix, Handler* h) { routes_.emplace_back(std::move(prefix), h); }
  Handler* find(std::string_view path) const {
    Handler* best = nullptr;
    size_t best_len = 0;
    for (const auto& [p, h] : routes_) {
      if (path.size() < p.size() || path.compare(0, p.size(), p) != 0) continue;
      if (path.size() > p.size() && path[p.size()] != '/' && p != "/") continue;
      if (p.size() >= best_len) {
        best = h;
        best_len = p.size();
      }
    }
    return best;
  }

 private:
  std::vector<std::pair<std::string, Handler*>> routes_;
};

}  // namespace gw::net
