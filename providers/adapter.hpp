#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "core/outcome.hpp"
#include "core/request_record.hpp"
#include "core/result.hpp"
#include "providers/chat_request.hpp"

namespace ib::providers {

// -- requests -------------------------------------------------------------------------------------

/// What the upstream client sends: a POST to `target` on the provider's host.
struct upstream_request {
  std::string target;  ///< request target: the base URL's path + `/chat/completions` or `/messages`
  /// Auth + protocol headers only; names are static strings.
  std::vector<std::pair<std::string_view, std::string>> headers;
  std::string body;  ///< JSON
};

/// Builds the upstream request for provider `p` from the client's request. Headers are built
/// fresh (never forwarded from the client): `content-type: application/json`, `accept`, the auth
/// header of `p.auth`, and `anthropic-version` for Anthropic. For OpenAI-compatible providers the
/// body is the client's body with top-level members patched (`model` replaced; dialect-specific
/// fields dropped or renamed; `stream_options.include_usage` forced on for streams where the
/// dialect supports it), and rebuilt only when a nested rewrite is needed (developer role, message
/// names, reasoning_content). For Anthropic the body is translated (providers.md §2.1).
/// Fails with errc::invalid_request (message safe for a client) when the request cannot be
/// expressed for this provider (e.g. `n>1` for Anthropic): the caller records `unsupported`.
result<upstream_request> encode_request(const config::provider_config& p, const chat_request& req,
                                        std::string_view upstream_model, std::string_view api_key);

// -- non-streamed responses -----------------------------------------------------------------------

/// The raw upstream answer as the HTTP client received it.
struct upstream_response {
  int status = 0;                 ///< the HTTP status
  std::string_view content_type;  ///< the `content-type` header, as sent
  std::string_view body;          ///< the whole decoded body (the caller owns the bytes)
};

/// What an upstream answer means for the request.
struct decoded_response {
  outcome result = outcome::bad_response;  ///< success, or the failure class (provider-aware)
  int status = 502;  ///< the status for the client should this answer be final
  std::string body;  ///< success: the `chat.completion` JSON; failure: the OpenAI error envelope
  /// Success whose body is the upstream body unchanged: `body` is left empty and the caller, who
  /// owns the upstream bytes, hands them on (no copy).
  bool body_is_input = false;
  std::string model;                ///< the upstream model that answered (success), else empty
  std::optional<ib::usage> tokens;  ///< usage the provider reported (success), if any
  /// For 429s whose body says waiting will not help soon (Sarvam `insufficient_quota_error`,
  /// OpenAI `insufficient_quota`): the caller should use the maximum cooldown.
  bool long_cooldown = false;
};

/// Interprets a non-streamed upstream response. 2xx: validates it is a chat completion (a JSON
/// object with a non-empty `choices` array and no `error` member; otherwise `bad_response`),
/// passes an OpenAI body through unchanged unless the dialect needs a fix (e.g. Together's
/// `finish_reason: "eos"`), or translates an Anthropic message. Non-2xx: classifies the status
/// (design §4 plus provider quirks such as Groq 498, Sarvam's 403 bad key) and maps the
/// provider's own error shape (or a non-JSON page) into the OpenAI envelope. Never throws.
decoded_response decode_response(const config::provider_config& p, const chat_request& req,
                                 std::string_view upstream_model, const upstream_response& res);

// -- streamed responses ---------------------------------------------------------------------------

/// An in-band stream failure (an `error` event or object, a truncated stream, an unparseable
/// event).
struct stream_failure {
  outcome result = outcome::bad_response;  ///< the failure class (decides fallback, breaker)
  int status = 502;      ///< the status for the client if the stream has not started yet
  std::string envelope;  ///< the OpenAI error envelope `{"error":{...}}` (`ib::envelope`)
};

/// What one `feed` produced.
struct stream_output {
  std::string client_bytes;  ///< OpenAI `chat.completion.chunk` SSE to forward, in order
  bool payload = false;      ///< a payload event arrived (not a comment, ping or blank keep-alive)
  /// Sticky: some event emitted so far carries content, a tool call, or a finish reason (the
  /// commit point of design §4; role-only chunks do not commit).
  bool content = false;
  bool done = false;  ///< the stream ended cleanly; `client_bytes` ends with `data: [DONE]\n\n`
  std::optional<stream_failure> failure;  ///< set once; nothing is emitted after it
  std::optional<ib::usage> tokens;        ///< set when usage became known
  std::string model;                      ///< the upstream model, once known
};

/// Translates one streamed upstream response into OpenAI chunks (providers.md §0, §1, §2.3, §3).
/// One per attempt; not thread-safe; pure (no I/O). Usage: the client's usage chunk (only if the
/// client asked with `include_usage`) is built from whatever usage the provider sent.
class stream_translator {
 public:
  virtual ~stream_translator() = default;
  /// Feeds decoded body bytes (split anywhere); appends to `out`.
  virtual void feed(std::string_view bytes, stream_output& out) = 0;
  /// The upstream closed the body. If no terminal event was seen this sets a `failure`
  /// (a silent truncation is never success).
  virtual void finish(stream_output& out) = 0;
};

/// The translator for `p`'s protocol (OpenAI-style with `p`'s dialect, or Anthropic), for one
/// attempt of `req` against `upstream_model`. Its chunks are written with `ib::json_writer`.
std::unique_ptr<stream_translator> make_stream_translator(const config::provider_config& p,
                                                          const chat_request& req,
                                                          std::string_view upstream_model);

/// The `data: {"error":...}` event sent to a client whose stream has already started.
std::string stream_error_event(const stream_failure& f);

}  // namespace ib::providers
