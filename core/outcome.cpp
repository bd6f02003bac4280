#include "core/outcome.hpp"

namespace ib {

outcome classify_status(int status) noexcept {
  if (status >= 200 && status < 300) {
    return outcome::success;
  }
  switch (status) {
    case 400:
    case 404:
    case 413:
    case 422:
      return outcome::request_rejected;
    case 401:
    case 402:
    case 403:
      return outcome::key_rejected;
    case 429:
      return outcome::rate_limited;
    case 498:  // Groq flex capacity exceeded: the provider is short of capacity
    case 529:  // Anthropic overloaded
      return outcome::server_error;
    default:
      break;
  }
  if (status >= 500 && status < 600) {
    return outcome::server_error;
  }
  if (status >= 400 && status < 500) {
    return outcome::retryable_status;
  }
  return outcome::bad_response;
}

std::string_view reason_text(outcome o) noexcept {
  switch (o) {
    case outcome::success:
      return "ok";
    case outcome::server_error:
      return "server_error";
    case outcome::connect_error:
      return "connect_error";
    case outcome::reset:
      return "reset";
    case outcome::connect_timeout:
      return "connect_timeout";
    case outcome::first_byte_timeout:
      return "first_byte_timeout";
    case outcome::total_timeout:
      return "total_timeout";
    case outcome::bad_response:
      return "bad_response";
    case outcome::rate_limited:
      return "rate_limited";
    case outcome::key_rejected:
      return "key_rejected";
    case outcome::retryable_status:
      return "retryable_status";
    case outcome::provider_down:
      return "provider_down";
    case outcome::unsupported:
      return "unsupported";
    case outcome::deadline:
      return "deadline";
    case outcome::request_rejected:
      return "request_rejected";
    case outcome::cancelled:
      return "cancelled";
    case outcome::skipped_no_key:
      return "no_key";
    case outcome::skipped_circuit_open:
      return "circuit_open";
    case outcome::skipped_cooldown:
      return "cooldown";
  }
  return "unknown";
}

}  // namespace ib
