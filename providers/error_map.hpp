#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <rapidjson/document.h>

#include "core/error.hpp"
#include "core/outcome.hpp"
#include "providers/adapter.hpp"
#include "providers/dialect.hpp"

/// Provider error bodies -> the OpenAI error envelope, shared by both protocols. Pure: no I/O.
namespace ib::providers {

/// Longest upstream error message copied into an envelope (bytes; cut at a UTF-8 boundary).
inline constexpr std::size_t max_error_message_bytes = 1024;

/// The OpenAI error envelope: `ib::envelope` (core/error.hpp), the gateway's one producer.
using ib::envelope;

/// The fields of a provider's error, whichever shape it came in.
struct error_fields {
  /// Cut to `max_error_message_bytes`; may hold invalid UTF-8 (the envelope's writer fixes it).
  std::string message;
  std::string type;   ///< e.g. `invalid_request_error`; the `code` when no type was sent
  std::string param;  ///< the offending field, or empty
  std::string code;   ///< e.g. `context_length_exceeded`; a numeric code as decimal text
};

/// Reads the error out of a parsed error body or in-band error object. Accepts
/// `{"error":{"message","type","param","code"}}` (OpenAI, Groq, DeepSeek, Together; also
/// Anthropic's `{"type":"error","error":{"type","message"}}`), `{"error":"text"}` and
/// `{"message","type"}` (Together), `{"detail":"text"}`. A missing `type` takes the `code`
/// (Sarvam sends only `code`); a numeric `code` is written as text; the message is cut to
/// `max_error_message_bytes`. nullopt when `v` is not an object or none of these fields exist.
std::optional<error_fields> read_error_fields(const rapidjson::Value& v);

/// `read_error_fields` over raw text; nullopt for non-JSON (HTML pages, empty bodies...).
std::optional<error_fields> parse_error_body(std::string_view body);

/// What an upstream error means for the request, with its client-facing envelope.
struct mapped_error {
  outcome result = outcome::server_error;
  int status = 502;            ///< the upstream status when it is an HTTP error status, else 502
  std::string envelope;        ///< the OpenAI error envelope
  bool long_cooldown = false;  ///< a 429 that waiting will not fix soon (no credit left)
};

/// Maps a non-2xx answer of an OpenAI-style provider: the status is classified with `d`'s rules
/// (Groq 498/499, DeepSeek 402, Sarvam 403...) and the body mapped with `read_error_fields`. A
/// body that is not JSON (or has no error fields) becomes "<provider> returned HTTP <status>"
/// with type `upstream_error`. A type-less error gets one from the status.
mapped_error map_openai_style_error(const dialect& d, std::string_view provider, int status,
                                    std::string_view content_type, std::string_view body);

/// `map_openai_style_error` with the generic rules only (design §4's `classify_status`): for
/// protocols without a dialect, e.g. Anthropic.
mapped_error map_error(std::string_view provider, int status, std::string_view content_type,
                       std::string_view body);

/// The envelope type used when an error body names none: by status (`invalid_request_error`,
/// `authentication_error`, `permission_error`, `rate_limit_error`, else `upstream_error`).
std::string_view default_error_type(int status) noexcept;

/// A 2xx answer that is not a usable completion: outcome bad_response, status 502 and the
/// envelope "upstream returned an invalid response" (type `upstream_error`).
mapped_error invalid_response();

/// `e` as a failed `decoded_response` (no model, no usage).
decoded_response to_decoded(mapped_error e);

/// `e` as an in-band `stream_failure`.
stream_failure to_stream_failure(mapped_error e);

}  // namespace ib::providers
