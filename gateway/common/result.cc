#include "gateway/common/result.h"

#include <stdexcept>

namespace gw {
namespace {
class Category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "cpis-gateway"; }
  std::string message(int ev) const override {
    switch (static_cast<Errc>(ev)) {
      case Errc::ok: return "ok";
      case Errc::invalid_input: return "invalid input";
      case Errc::unprocessable: return "unprocessable";
      case Errc::not_found: return "not found";
      case Errc::gone: return "gone";
      case Errc::conflict: return "conflict";
      case Errc::version_conflict: return "version conflict";
      case Errc::method_not_allowed: return "method not allowed";
      case Errc::unsupported_media: return "unsupported media type";
      case Errc::not_acceptable: return "not acceptable";
      case Errc::too_large: return "too large";
      case Errc::forbidden: return "forbidden";
      case Errc::unauthenticated: return "unauthenticated";
      case Errc::unavailable: return "unavailable";
      case Errc::timeout: return "timeout";
      case Errc::store_failure: return "store failure";
      case Errc::internal: return "internal error";
    }
    return "unknown";
  }
};
}  // namespace

const boost::system::error_category& gw_category() noexcept {
  static const Category c;
  return c;
}

void throw_exception_from_error(const Error& e, const boost::source_location&) {
  throw std::runtime_error(e.message);
}

int http_status_for(Errc e) noexcept {
  switch (e) {
    case Errc::ok: return 200;
    case Errc::invalid_input: return 400;
    case Errc::unprocessable: return 422;
    case Errc::not_found: return 404;
    case Errc::gone: return 410;
    case Errc::conflict: return 409;
    case Errc::version_conflict: return 412;
    case Errc::method_not_allowed: return 405;
    case Errc::unsupported_media: return 415;
    case Errc::not_acceptable: return 406;
    case Errc::too_large: return 413;
    case Errc::forbidden: return 403;
    case Errc::unauthenticated: return 401;
    case Errc::unavailable: return 503;
    case Errc::timeout: return 504;
    case Errc::store_failure: return 500;
    case Errc::internal: return 500;
  }
  return 500;
}

const char* fhir_issue_code_for(Errc e) noexcept {
  switch (e) {
    case Errc::invalid_input: return "invalid";
    case Errc::unprocessable: return "processing";
    case Errc::not_found: return "not-found";
    case Errc::gone: return "deleted";
    case Errc::conflict: return "duplicate";
    case Errc::version_conflict: return "conflict";
    case Errc::method_not_allowed: return "not-supported";
    case Errc::unsupported_media: return "not-supported";
    case Errc::not_acceptable: return "not-supported";
    case Errc::too_large: return "too-costly";
    case Errc::forbidden: return "forbidden";
    case Errc::unauthenticated: return "login";
    case Errc::unavailable: return "transient";
    case Errc::timeout: return "timeout";
    case Errc::store_failure: return "exception";
    case Errc::internal: return "exception";
    case Errc::ok: return "informational";
  }
  return "exception";
}

}  // namespace gw
