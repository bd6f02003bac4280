#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "core/result.hpp"
#include "providers/adapter.hpp"
#include "providers/chat_request.hpp"

/// The OpenAI Responses API (`POST /v1/responses`): forwarded natively to OpenAI, translated to
/// and from chat completions for every other provider. Pure: no I/O.
/// Reference: platform.openai.com/docs/api-reference/responses (request body, the Response
/// object, streaming events), and the `openai` npm SDK 6.49's `responses` types, ResponseStream
/// and ResponseAccumulator (checked 2026-11-30).
namespace ib::providers::responses {

/// What the translation back to a Response needs from the request (echoed fields).
struct request_facts {
  /// Non-empty when only OpenAI can serve the request (server-side state such as
  /// `previous_response_id` or `conversation`, built-in tools, ...): the 400 message for a
  /// provider that would need a translation (why, and what to do instead).
  std::string openai_only;
  /// The request member `openai_only` is about (`previous_response_id`, `tools[0].type`, ...).
  std::string openai_only_param;

  // The client's values echoed in a translated Response, as compact JSON written by
  // `ib::json_writer` (so always valid); empty when the request did not set them (the Response
  // then carries OpenAI's defaults).
  std::string instructions;         ///< string, or array of input items
  std::string tools;                ///< the client's `tools` array, in the Responses shape
  std::string tool_choice;          ///< default `"auto"`
  std::string temperature;          ///< default `1.0`
  std::string top_p;                ///< default `1.0`
  std::string max_output_tokens;    ///< default `null`
  std::string parallel_tool_calls;  ///< default `true`
  std::string metadata;             ///< default `{}`
  std::string text;                 ///< default `{"format":{"type":"text"}}`
  std::string user;                 ///< default `null`
  std::string reasoning;            ///< default `{"effort":null,"summary":null}`
};

/// Parses a Responses request: `api` = responses, `native_body`/`native_members` = the client's
/// body; `body`/`members` = its chat-completions translation (empty when `openai_only`).
///
/// Accepted for translation: `input` as a string or an array of items (messages with role
/// user/assistant/system/developer and content a string or parts `input_text`, `output_text`,
/// `refusal`, `input_image` with an `image_url`; `function_call` {call_id, name, arguments};
/// `function_call_output` {call_id, output}; `reasoning` items are dropped), `instructions`
/// (the first system message), function `tools` (flattened shape) and `tool_choice`,
/// `max_output_tokens` (→ `max_completion_tokens`), `temperature`, `top_p`,
/// `parallel_tool_calls`, `text.format` (→ `response_format`), `user`, `stream` (→ with
/// `stream_options.include_usage`). `store` and `metadata` are not sent on (nothing is kept).
/// What only OpenAI can do (`previous_response_id`, `conversation`, `background`, `prompt`,
/// built-in tools, `item_reference` and built-in tool items, `include` of built-in tool
/// results, file inputs) sets `request_facts::openai_only` instead of failing.
/// errc::invalid_request (OpenAI envelope, `param` set) for a malformed body.
result<chat_request> parse_request(std::string body, const parse_limits& limits);

/// Whether `p` serves the Responses API natively (OpenAI itself).
bool native_for(const config::provider_config& p) noexcept;

/// The native upstream request: `<base path>/responses`, `model` patched.
result<upstream_request> encode_native(const config::provider_config& p, const chat_request& req,
                                       std::string_view upstream_model, std::string_view api_key);

/// A native non-streamed answer: a 2xx Response object (`"object":"response"`) passes through
/// (usage from `input_tokens`/`output_tokens`, `model` read); a `"status":"failed"` one is a
/// server error; anything else a bad response. Errors are mapped into the OpenAI envelope as
/// for chat.
decoded_response decode_native(const config::provider_config& p, const chat_request& req,
                               std::string_view upstream_model, const upstream_response& res);

/// A native stream: events pass through byte for byte. `content` is set by the first
/// `response.output_text.delta`, `response.refusal.delta`,
/// `response.function_call_arguments.delta`, `output_item.added` of a function call, or the
/// terminal event; `done` by `response.completed` / `response.incomplete` (usage from its
/// response). `response.failed`, an `error` event, an unparseable event or a stream without a
/// terminal event are failures (not passed on; the caller ends the stream with
/// `stream_error_event`).
std::unique_ptr<stream_translator> make_native_translator(const config::provider_config& p,
                                                          const chat_request& req,
                                                          std::string_view upstream_model);

/// A `chat.completion` (JSON text) as a Response object (`"store": false`): a `message` item
/// (output_text and/or refusal parts) and one `function_call` item per tool call; `status`
/// `incomplete` with `incomplete_details.reason` `max_output_tokens` (finish_reason `length`)
/// or `content_filter`; usage in the Responses shape. Unparseable input gives an empty
/// completed Response.
std::string from_chat_completion(const chat_request& req, std::string_view chat_completion);

/// Wraps `chat`, a chat-chunk translator of this attempt, so that its output becomes the
/// Responses event sequence (each `event: <type>\ndata: {...}\n\n`, `sequence_number` from 0):
/// response.created and response.in_progress at the first chunk; per output item
/// output_item.added, content_part.added, output_text.delta… (refusal.delta…),
/// output_text.done, content_part.done, output_item.done, or for a tool call
/// function_call_arguments.delta… / .done; then response.completed (response.incomplete for
/// finish_reason `length`/`content_filter`) with the whole Response and usage. `content`,
/// `done`, `failure`, `tokens` and `model` are the inner translator's.
std::unique_ptr<stream_translator> wrap_chat_translator(const chat_request& req,
                                                        std::unique_ptr<stream_translator> chat);

/// The Responses `error` event that ends a started stream: `event: error` with
/// `{"type":"error","code","message","param","error":{...}}`; the `error` member (the OpenAI
/// envelope's object) is what makes openai-node raise an APIError from the stream.
std::string stream_error_event(const stream_failure& f);

}  // namespace ib::providers::responses
