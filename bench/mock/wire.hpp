#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bench/mock/behaviour.hpp"

namespace ib::mock {

// -- providers ---------------------------------------------------------------------------------

/// The six upstream personalities the mock speaks: the shipped providers of
/// config/default.json, each served under `/<name>` + the path of its shipped `base_url` (see
/// `match_provider` in server.cpp; tests/e2e/lib/stack.mjs derives the same paths). A provider
/// the mock does not emulate can use the plain OpenAI wire under `/openai/v1`.
enum class provider : std::uint8_t { openai, anthropic, groq, deepseek, together, sarvam };

/// How many `provider` values there are (the size of per-provider tables).
inline constexpr std::size_t provider_count = 6;

/// Every `provider`, in enum order.
inline constexpr std::array<provider, provider_count> all_providers = {
    provider::openai,   provider::anthropic, provider::groq,
    provider::deepseek, provider::together,  provider::sarvam};

/// The lower-case name used in paths, scripts and stats (`openai`, `groq`, ...).
std::string_view name(provider p);

/// The provider called `text`, if any.
std::optional<provider> provider_named(std::string_view text);

// -- JSON text ---------------------------------------------------------------------------------

/// Appends `text` as a JSON string literal; invalid UTF-8 becomes U+FFFD so the output stays valid.
void append_json_string(std::string& out, std::string_view text);

// -- requests ----------------------------------------------------------------------------------

/// Which API of the provider a request calls (the path after the provider's prefix; see
/// `api_of` in server.cpp).
enum class api_kind : std::uint8_t {
  chat,                  // chat completions, or Anthropic's /messages
  responses,             // OpenAI /responses
  embeddings,            // OpenAI-style /embeddings
  moderations,           // OpenAI /moderations
  audio_transcriptions,  // OpenAI /audio/transcriptions (multipart)
  audio_speech,          // OpenAI /audio/speech (binary answer)
  count_tokens,          // Anthropic /messages/count_tokens
};

/// The parts of a chat request the mock reacts to.
struct chat_request {
  api_kind api = api_kind::chat;
  bool parsed = false;  // the body was a JSON object
  std::optional<std::string> model;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage (OpenAI dialects)
  std::string user_text;       // the last user message's text parts, joined
  std::string first_tool;      // the first tool's name when `tools` is a non-empty array
  int prompt_tokens = 1;
  std::string invalid;    // why the provider would answer 400; empty when it would not
  bool sampling = false;  // anthropic: temperature, top_p or top_k present
};

/// Parses `body` as `p` would. Never fails: problems end up in `invalid`.
chat_request parse_chat_request(provider p, std::string_view body);

/// Parses the body of a request to API `api` (`content_type` as sent: multipart for audio).
/// Never fails: problems end up in `invalid`. Chat goes to `parse_chat_request`; the others to
/// the parsers below, one file each (bench/mock/responses.cpp, openai_extra.cpp,
/// anthropic_extra.cpp).
chat_request parse_api_request(provider p, api_kind api, std::string_view content_type,
                               std::string_view body);
chat_request parse_responses_request(std::string_view body);
chat_request parse_openai_extra_request(api_kind api, std::string_view content_type,
                                        std::string_view body);
chat_request parse_count_tokens_request(std::string_view body);

// -- errors ------------------------------------------------------------------------------------

/// One error in provider-neutral terms; `render_error` turns it into the provider's own shape.
struct error_spec {
  int status = 500;
  std::string type;  // OpenAI `type`, Anthropic `error.type`; Sarvam uses `code` only
  std::string code;  // empty renders as null (or is left out where the provider does)
  std::string message;
};

/// A response body with its content type (empty content type: send none).
struct body_text {
  std::string content_type;
  std::string body;
};

/// The error a provider typically sends with `status` (model only fills messages).
error_spec default_error(provider p, int status, std::string_view model);

/// A request-level 400 (`invalid_request_error`) with `message`.
error_spec bad_request(provider p, std::string message);

/// The provider's answer to a missing or rejected key (`why` is "missing" or "invalid").
error_spec auth_error(provider p, std::string_view why, std::string_view key);

/// The provider's answer to a key whose account has no credit left.
error_spec quota_error(provider p);

/// `e` in `p`'s own error shape; `n` feeds request ids where the shape has one.
body_text render_error(provider p, const error_spec& e, std::uint64_t n);

/// A Cloudflare-like HTML error page for `status`.
std::string html_error_page(int status, std::uint64_t n);

// -- happy path --------------------------------------------------------------------------------

/// Everything that shapes one reply: who answers, what was asked and how to behave.
struct reply_context {
  provider who = provider::openai;
  std::uint64_t n = 0;  // reply number: ids are `mock-<n>`
  std::string model;    // as echoed in the reply
  const chat_request* req = nullptr;
  const behaviour* how = nullptr;
};

/// The model id a reply carries: `mock-*` ids as sent, others as a dated snapshot.
std::string resolved_model(std::string_view requested);

/// The complete non-stream success body (the content type is JSON except where
/// `reply_content_type` says otherwise).
std::string reply_body(const reply_context& x);

/// The content type of `reply_body` for `x`: `application/json` except for binary answers
/// (audio speech).
std::string reply_content_type(const reply_context& x);

/// Per-API bodies and streams (one file each; see `parse_api_request`).
std::string responses_reply_body(const reply_context& x);
std::vector<struct sse_event> responses_reply_events(const reply_context& x);
struct sse_event responses_inband_error_event(const reply_context& x);
std::string openai_extra_reply_body(const reply_context& x);
std::string openai_extra_content_type(const reply_context& x);
std::string count_tokens_reply_body(const reply_context& x);

/// Where an SSE event sits in the stream: faults are placed relative to these.
enum class event_role : std::uint8_t {
  head,      // role chunk, message_start, content_block_start, ping
  content,   // carries text, reasoning or tool-call arguments
  tail,      // finish_reason / usage chunks, content_block_stop, message_delta
  terminal,  // `[DONE]` or message_stop
};

/// One SSE event before framing: an optional `event:` name and its `data:` payload.
struct sse_event {
  std::string name;
  std::string data;
  event_role role = event_role::head;
};

/// The complete success stream, in order.
std::vector<sse_event> reply_events(const reply_context& x);

/// The in-band error event `p` sends mid-stream.
sse_event inband_error_event(const reply_context& x);

/// A data event that is not valid JSON, shaped like the provider's content events.
sse_event malformed_event(const reply_context& x);

/// The bytes a stream sends to keep a connection alive (DeepSeek comment, Anthropic ping).
std::string_view keepalive_bytes(provider p);

/// Frames `e` as SSE text: `event:` line, `data:` line(s), blank line.
std::string frame_event(const sse_event& e, bool crlf, bool multiline_data);

/// The provider's `GET …/models` body.
std::string models_body(provider p);

// -- headers -----------------------------------------------------------------------------------

/// Appends the provider's usual response headers (request id, rate limits) as `Name: value\r\n`.
void append_provider_headers(std::string& out, provider p, std::uint64_t n, int status);

/// `now + secs` as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
std::string http_date_in(int secs);

}  // namespace ib::mock
