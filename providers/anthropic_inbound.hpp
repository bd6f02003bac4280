#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "core/error.hpp"
#include "core/request_record.hpp"
#include "core/result.hpp"
#include "providers/adapter.hpp"
#include "providers/chat_request.hpp"

/// Anthropic's Messages API inbound (`POST /v1/messages`, `/v1/messages/count_tokens`): passed
/// through to Anthropic byte for byte (only `model` is replaced), translated to and from chat
/// completions for OpenAI-compatible providers. Pure: no I/O.
///
/// References (checked 2026-11-30): platform.claude.com/docs/api/messages (request fields,
/// content blocks, `stop_reason`, `usage`), docs .../build-with-claude/streaming (event
/// sequence), .../api/errors (error shape and types), .../api/messages/count_tokens, and the
/// `@anthropic-ai/sdk` 1.14 client (it sends `Authorization: Bearer` and `anthropic-version:
/// 2026-10-21`, raises `APIError` on `event: error`, and picks its error class by status).
/// The chat form follows providers.md §2.1/§2.2 read in the other direction, sharing its tables
/// (providers/anthropic_detail.hpp: `finish_reason`/`stop_reason`, `tool_id`, `token_tally`).
namespace ib::providers::anthropic_inbound {

/// What the translation back needs from the request, and the client's protocol headers.
struct request_facts {
  std::string anthropic_version;  ///< the client's `anthropic-version` (empty: the provider's)
  std::string anthropic_beta;     ///< the client's `anthropic-beta` (empty: none)
  /// Non-empty when the request uses what only Anthropic serves (server tools such as
  /// `web_search_*`, `mcp_servers`, `container`, structured `output_format`, document or
  /// container blocks without a chat equivalent, images inside `tool_result`): a client-safe
  /// sentence saying what and why. The chat form then leaves those parts out, and a provider
  /// other than Anthropic should refuse the attempt as unsupported (adapter.cpp, as it does for
  /// `responses::request_facts::openai_only`).
  std::string anthropic_only;
};

/// Parses a Messages request: `api` = messages, `native_body`/`native_members` = the client's
/// body, `body`/`members` = its chat-completions translation (OpenAI field names; with
/// `"stream":true,"stream_options":{"include_usage":true}` when streaming). Validates as the
/// Messages API does: `model` a non-empty string; `max_tokens` an integer >= 1 (required);
/// `messages` a non-empty array of `{role: "user"|"assistant", content: string | blocks}`;
/// `system` a string or text blocks; `stop_sequences` strings; `temperature`/`top_p` numbers
/// from 0 to 1, `top_k` a non-negative integer; `tools[]` with `name` and an object
/// `input_schema` (or a server tool `type`); `tool_choice.type` auto|any|tool|none (`name`
/// for tool); `metadata` an object. Anthropic-only fields (`thinking`, `cache_control`,
/// `metadata`, `top_k`, `service_tier`, ...) are left out of the chat form. Errors:
/// errc::invalid_request with `param` naming the field (e.g. `messages[1].content[0].source`).
result<chat_request> parse_request(std::string body, const parse_limits& limits,
                                   std::string anthropic_version, std::string anthropic_beta);

/// Parses a count_tokens request (`api` = count_tokens; `model` and a non-empty `messages`
/// required; `body` = `native_body`, no chat form: served by Anthropic only).
result<chat_request> parse_count_tokens(std::string body, const parse_limits& limits,
                                        std::string anthropic_version, std::string anthropic_beta);

/// The native upstream request (`/messages` or `/messages/count_tokens` under `p`'s base path),
/// the body being the client's with only the value of `model` replaced; headers: content-type,
/// accept, `p`'s auth header, the client's `anthropic-version` (else `p.anthropic_version`) and
/// its `anthropic-beta` when it sent one.
result<upstream_request> encode_native(const config::provider_config& p, const chat_request& req,
                                       std::string_view upstream_model, std::string_view api_key);

/// A native non-streamed answer. 2xx: a `message` object (or count_tokens' `{"input_tokens"}`)
/// passes through unchanged (`body_is_input`), with usage read from `usage` (messages only:
/// counting tokens consumes none); anything else is bad_response. Non-2xx: classified with the
/// generic rules (`map_error`), the body being Anthropic's own error (when it is one, up to
/// 64 KiB) or else the OpenAI envelope `map_error` wrote.
decoded_response decode_native(const config::provider_config& p, const chat_request& req,
                               std::string_view upstream_model, const upstream_response& res);

/// A native stream: Anthropic's events pass through byte for byte, event by event. Commit
/// (`content`) at the first text or tool input, a `tool_use` block start, a stop reason or
/// `message_stop` (as providers/anthropic_stream.cpp commits); `done` at `message_stop`;
/// `event: error` is a failure (overloaded_error and api_error: server_error with 529/500;
/// others bad_response 502; its body is kept, and not forwarded: the request actor ends the
/// stream with `stream_error_event`); a stream that ends before `message_stop`, an event
/// before `message_start` or unparseable data is bad_response. Usage: `message_start`'s,
/// then `message_delta`'s (cumulative).
std::unique_ptr<stream_translator> make_native_translator(const config::provider_config& p,
                                                          const chat_request& req,
                                                          std::string_view upstream_model);

/// A `chat.completion` (JSON text) as an Anthropic `message`: `{"id":"msg_…","type":"message",
/// "role":"assistant","model","content":[text and tool_use blocks],"stop_reason",
/// "stop_sequence":null,"usage":{"input_tokens","cache_creation_input_tokens",
/// "cache_read_input_tokens","output_tokens"}}`. Tool calls become `tool_use` blocks (id made
/// valid for Anthropic with `detail::tool_id`; `input` = the parsed arguments, `{}` when they
/// are not a JSON object); a refusal becomes text with `stop_reason` `refusal`. OpenAI does
/// not say whether a stop sequence ended the text, so `stop_sequence` is always null and such
/// an end reads `end_turn`.
std::string from_chat_completion(const chat_request& req, std::string_view chat_completion);

/// Wraps `chat` so that its chat chunks become Anthropic's event sequence: `message_start`
/// (usage 0: OpenAI reports usage at the end), per text run and per tool call a
/// `content_block_start`, `content_block_delta`s (`text_delta`, `input_json_delta`) and a
/// `content_block_stop`, then `message_delta` (`stop_reason`, full usage) and `message_stop`,
/// each as `event: <type>\ndata: {…}\n\n`. Reasoning deltas are left out (a thinking block
/// needs Anthropic's signature). `content`, `failure`, `tokens`, `model` and `payload` are
/// the inner translator's; `done` is set with `message_stop`.
std::unique_ptr<stream_translator> wrap_chat_translator(const chat_request& req,
                                                        std::unique_ptr<stream_translator> chat);

/// Anthropic's error `type` for an HTTP status: 400 invalid_request_error, 401
/// authentication_error, 402 billing_error, 403 permission_error, 404 not_found_error, 413
/// request_too_large, 429 rate_limit_error, 500 and 502 api_error, 503 and 529
/// overloaded_error, 504 timeout_error; other 4xx invalid_request_error, other 5xx api_error.
/// 502 (a provider failed or answered badly) is api_error, "an unexpected error"; 503 (no
/// provider can take the request now: circuits open, all overloaded) is overloaded_error, the
/// type Anthropic gives "temporarily unable, retry later". The SDK picks its class by status.
std::string_view error_type(int status) noexcept;

/// Anthropic's error body for `err`: `{"type":"error","error":{"type","message"}}` (the type by
/// the status of `err.code`), with `"inferbridge_attempts":[{"provider","status"|"reason",
/// "latency_ms"}]` as the last member of `error` when `attempts` is given.
std::string error_body(const error& err, const std::vector<attempt_record>* attempts);

/// `body` in Anthropic's error shape for HTTP `status`: an Anthropic error body is returned as
/// it is; an OpenAI envelope keeps its message and `inferbridge_attempts` (its type is used
/// when it is one of Anthropic's and the status has no type of its own); anything else gets a
/// message naming the status.
std::string error_from_envelope(std::string body, int status);

/// Anthropic's `event: error` (`data:` one line of `error_from_envelope(f.envelope, f.status)`)
/// that ends a started stream; the SDK raises `APIError` on it.
std::string stream_error_event(const stream_failure& f);

}  // namespace ib::providers::anthropic_inbound
