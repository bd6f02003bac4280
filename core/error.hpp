#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ib {

/// Error codes of InferBridge; each maps to one HTTP status (see `http_status`).
enum class errc : std::uint8_t {
  none = 0,            // CAF reads code 0 as "no error"
  invalid_request,     // 400
  unauthorized,        // 401
  forbidden,           // 403
  not_found,           // 404
  method_not_allowed,  // 405
  conflict,            // 409
  payload_too_large,   // 413
  unprocessable,       // 422
  no_provider_key,     // 424
  rate_limited,        // 429
  internal,            // 500
  storage,             // 500: the store failed (LMDB, disk)
  crypto,              // 500: encryption / decryption failed
  bad_gateway,         // 502
  unavailable,         // 503
  gateway_timeout,     // 504
};

/// A failure that is safe to show a client: never a key, never a prompt.
struct error {
  errc code = errc::none;
  std::string message;
  /// Optional OpenAI `param` (the offending field) and `code` strings of the envelope.
  std::string param = {};
  std::string detail_code = {};
};

/// The HTTP status that `code` is answered with.
int http_status(errc code) noexcept;

/// The OpenAI envelope's `type` for `code` (e.g. `invalid_request_error`).
std::string_view error_type(errc code) noexcept;

/// The OpenAI error envelope, the one producer of it in the gateway:
/// `{"error":{"message":"...","type":"...","param":null,"code":null}}` (an empty `param` or
/// `code` is written as null). Always valid JSON (see `append_json_string`).
std::string envelope(std::string_view message, std::string_view type, std::string_view param = {},
                     std::string_view code = {});

/// `envelope` for `err`, with the type of its code (`error_type`).
std::string to_envelope(const error& err);

/// Appends the envelope without its two closing braces, so that a caller may add members of
/// its own to the `error` object (e.g. `inferbridge_attempts`) and then close it with `}}`.
void open_envelope(std::string& out, std::string_view message, std::string_view type,
                   std::string_view param, std::string_view code);

/// Appends `text` to `out` as a JSON string literal (quoted and escaped). Bytes that are not
/// well-formed UTF-8 (RFC 3629: overlong forms, surrogates, code points past U+10FFFF, cut
/// sequences, stray continuation bytes) are written as U+FFFD, one per byte, so the result is
/// always valid JSON text (RFC 8259 §8.1) whatever bytes an upstream sent.
void append_json_string(std::string& out, std::string_view text);

}  // namespace ib
