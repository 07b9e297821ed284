#pragma once
// One plain-HTTP/1.1 request to 127.0.0.1 (no TLS, no client certificate):
// what a load-balancer probe or a Prometheus scraper does to the operations
// listener. Beast stays in the .cc.
#include <chrono>
#include <cstdint>
#include <string_view>

#include "gateway/common/result.h"
#include "tests/support/https_client.h"

namespace gw::test {

Result<ClientResponse> plain_http_request(uint16_t port, std::string_view method, std::string_view target,
                                          std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace gw::test
