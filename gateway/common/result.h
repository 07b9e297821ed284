#pragma once
// The project's one error type: every fallible call on the request or message
// path returns Result<T>; exceptions are for start-up configuration and tests.
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>
#include <string>
#include <system_error>

namespace gw {

enum class Errc {
  ok = 0,
  invalid_input,      // the caller sent something malformed (400)
  unprocessable,      // well-formed but fails a business/profile rule (422)
  not_found,          // 404
  gone,               // deleted (410)
  conflict,           // 409: e.g. duplicate on a unique key
  version_conflict,   // 412: If-Match did not match, or conditional matched >1
  method_not_allowed, // 405
  unsupported_media,  // 415
  not_acceptable,     // 406: no representation the Accept header allows
  too_large,          // 413
  forbidden,          // 403: policy said no
  unauthenticated,    // 401
  unavailable,        // 503: queue full, shutting down
  timeout,            // 504
  store_failure,      // 500: the store failed (disk, corrupt)
  internal,           // 500: a bug
};

const boost::system::error_category& gw_category() noexcept;

inline boost::system::error_code make_error_code(Errc e) noexcept {
  return {static_cast<int>(e), gw_category()};
}

// An error with the context a sender needs: what went wrong and where.
struct Error {
  Errc code = Errc::internal;
  std::string message;     // human-readable, never a patient identifier
  std::string expression;  // FHIRPath-like element path, may be empty
};

template <class T>
using Result = boost::system::result<T, Error>;

inline Error make_error(Errc c, std::string msg, std::string expr = {}) {
  return Error{c, std::move(msg), std::move(expr)};
}

// boost::system::result needs to know how to throw an Error from .value().
[[noreturn]] void throw_exception_from_error(const Error& e, const boost::source_location& loc);

int http_status_for(Errc e) noexcept;  // the one Errc -> HTTP status mapping
const char* fhir_issue_code_for(Errc e) noexcept;  // OperationOutcome.issue.code

}  // namespace gw

namespace boost::system {
template <>
struct is_error_code_enum<gw::Errc> : std::true_type {};
}  // namespace boost::system
