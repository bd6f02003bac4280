#pragma once

#include <cstdint>
#include <string_view>

namespace ib {

/// What one upstream attempt (or skip) came to: the fallback table of design §4 as data. The
/// order matters: `counts_against_breaker` and `is_skip` test ranges of it.
enum class outcome : std::uint8_t {
  success = 0,  ///< a complete answer (2xx, or a stream that ended cleanly)
  // -- provider-side failures: fall back and count against the provider's breaker -----------
  server_error,        ///< 5xx, Anthropic 529, Groq 498
  connect_error,       ///< connection refused, DNS, TLS handshake
  reset,               ///< connection reset or closed before a complete response
  connect_timeout,     ///< no connection within the provider's connect timeout
  first_byte_timeout,  ///< no payload byte within the provider's first-byte timeout
  total_timeout,       ///< the provider's total timeout (or the stream's idle timeout) expired
  bad_response,        ///< unparseable or truncated response, a 200 carrying an error
  // -- failures that never count against the breaker; all but `deadline` fall back -----------
  rate_limited,      ///< 429: also starts the (user, provider) cooldown
  key_rejected,      ///< 401, 402, 403: the user's key for this provider is unusable
  retryable_status,  ///< 408, 409, 499 and other statuses that are not the request's fault
  provider_down,     ///< the provider actor died while the call was in flight
  unsupported,       ///< the request cannot be expressed in this provider's protocol
  deadline,          ///< the request's overall deadline expired: no fallback, the walk answers 504
  // -- the request itself is at fault: no fallback, the status goes back to the client ------
  request_rejected,  ///< 400, 404, 413, 422
  // -- the client went away ------------------------------------------------------------------
  cancelled,  ///< the client disconnected: no fallback, nothing is answered
  // -- skips (no attempt was made) -----------------------------------------------------------
  skipped_no_key,        ///< the user has no key for this provider
  skipped_circuit_open,  ///< the provider's breaker is open (or its probe slot was taken)
  skipped_cooldown,      ///< the user is in a 429 cooldown for this provider
};

/// True when `o` is a provider-side failure that the breaker counts (design §5): `server_error`
/// through `bad_response`.
constexpr bool counts_against_breaker(outcome o) noexcept {
  return o >= outcome::server_error && o <= outcome::bad_response;
}

/// True when the request actor should try the next provider after `o`: every outcome except
/// `success`, `request_rejected`, `cancelled` and `deadline` (design §4).
constexpr bool falls_back(outcome o) noexcept {
  return o != outcome::success && o != outcome::request_rejected && o != outcome::cancelled
         && o != outcome::deadline;
}

/// True for the three skip outcomes (no upstream call was made).
constexpr bool is_skip(outcome o) noexcept {
  return o >= outcome::skipped_no_key;
}

/// Classifies an upstream HTTP status with the generic rules of design §4: 2xx → `success`;
/// 400, 404, 413, 422 → `request_rejected`; 401, 402, 403 → `key_rejected`; 429 →
/// `rate_limited`; 498 (Groq), 529 (Anthropic) and every 5xx → `server_error`; any other 4xx →
/// `retryable_status`; anything else (1xx, 3xx, out of range) → `bad_response`. Provider
/// adapters refine this for their own statuses (providers.md) before the request actor sees it.
outcome classify_status(int status) noexcept;

/// The token used in `x-inferbridge-attempts` and request records for an attempt that has no
/// status: the value's name (`connect_error`, `reset`, ...), except `ok` for `success` and
/// `no_key`, `circuit_open`, `cooldown` for the skips; `unknown` for a value outside the enum.
std::string_view reason_text(outcome o) noexcept;

}  // namespace ib
