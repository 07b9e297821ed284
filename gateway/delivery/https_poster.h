#pragma once
// A synchronous HTTPS/1.1 POST client for rest-hook delivery: mutual TLS
// (the gateway presents its server certificate), the endpoint's certificate
// verified against the configured CA and its name, keep-alive, a deadline
// on every operation. One poster per subscription, used by one worker at a
// time; Beast stays in the .cc.
#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gateway/common/result.h"

namespace boost::asio::ssl {
class context;
}

namespace gw::delivery {

struct Url {
  std::string host;
  std::string port = "443";
  std::string target = "/";
};
// https://host[:port][/path] only.
Result<Url> parse_https_url(std::string_view url);

struct PostOutcome {
  int status = 0;          // HTTP status
  std::string body_head;   // first bytes of the answer (for the error text)
};

class HttpsPoster {
 public:
  explicit HttpsPoster(boost::asio::ssl::context& ctx);
  ~HttpsPoster();
  // timeout bounds connect + TLS + write + read together.
  Result<PostOutcome> post(const Url& url, const std::string& body,
                           const std::vector<std::pair<std::string, std::string>>& headers,
                           std::chrono::milliseconds timeout);
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gw::delivery
