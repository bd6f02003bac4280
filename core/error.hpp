#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ib {

/// Error codes of InferBridge; each maps to one HTTP status (see `http_status`).
enum class errc : std::uint8_t {
  none = 0,              // CAF reads code 0 as "no error"
  invalid_request,       // 400
  unauthorized,          // 401
  forbidden,             // 403
  not_found,             // 404
  method_not_allowed,    // 405
  conflict,              // 409
  payload_too_large,     // 413
  unprocessable,         // 422
  no_provider_key,       // 424
  rate_limited,          // 429
  internal,              // 500
  storage,               // 500: the store failed (LMDB, disk)
  crypto,                // 500: encryption / decryption failed
  bad_gateway,           // 502
  unavailable,           // 503
  gateway_timeout,       // 504
  insufficient_storage,  // 507: the store is full (LMDB's map size reached); reads still work
};

/// A failure that is safe to show a client: never a key, never a prompt.
struct error {
  errc code = errc::none;  ///< decides the HTTP status and the envelope's `type`
  std::string message;     ///< for the client; any bytes (the envelope writes valid UTF-8)
  /// Optional OpenAI `param` (the offending field) and `code` strings of the envelope.
  std::string param = {};
  std::string detail_code = {};  ///< the envelope's `code` (e.g. `context_length_exceeded`)
};

/// The HTTP status that `code` is answered with.
int http_status(errc code) noexcept;

/// The OpenAI envelope's `type` for `code` (e.g. `invalid_request_error`).
std::string_view error_type(errc code) noexcept;

class json_writer;

/// The OpenAI error envelope, the one producer of it in the gateway:
/// `{"error":{"message":"...","type":"...","param":null,"code":null}}` (an empty `param` or
/// `code` is written as null). Written with `json_writer` (core/json.hpp), so always valid
/// JSON: bytes of `message` that are not UTF-8 (an upstream's) become U+FFFD.
std::string envelope(std::string_view message, std::string_view type, std::string_view param = {},
                     std::string_view code = {});

/// `envelope` for `err`, with the type of its code (`error_type`).
std::string to_envelope(const error& err);

/// Writes the members of the envelope's `error` object for `err` (`message`, `type`, `param`,
/// `code`, as `envelope` does) into `w`, which must be inside an object: for a producer that
/// adds members of its own (see `to_envelope` in core/request_record.hpp).
void write_error_members(json_writer& w, const error& err);

}  // namespace ib
