#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace ib::providers {

/// The API a client called: which request, response, stream and error shapes it speaks. The
/// gateway's own form is chat completions: a request of another API is translated to it for
/// providers that do not speak that API natively, and forwarded (with `model` patched) to those
/// that do (providers/front.hpp).
enum class client_api : std::uint8_t {
  chat_completions,  ///< POST /v1/chat/completions (OpenAI)
  responses,         ///< POST /v1/responses (OpenAI Responses API; native: OpenAI)
  messages,          ///< POST /v1/messages (Anthropic Messages API; native: Anthropic)
  count_tokens,      ///< POST /v1/messages/count_tokens (Anthropic only; no chat form)
  embeddings,        ///< POST /v1/embeddings (OpenAI-compatible providers; no chat form)
};

/// The API's name as in metrics and logs: `chat_completions`, `responses`, `messages`,
/// `count_tokens`, `embeddings`.
std::string_view to_string(client_api api) noexcept;

namespace responses {
struct request_facts;  // providers/responses.hpp
}
namespace anthropic_inbound {
struct request_facts;  // providers/anthropic_inbound.hpp
}

/// Byte offsets of one top-level member of the client's JSON object: `"key": value`.
/// Offsets (not views) so that the owning string may move.
struct member_span {
  std::uint32_t begin = 0;        ///< the opening quote of the key
  std::uint32_t key_begin = 0;    ///< first byte of the key text (inside the quotes, raw/escaped)
  std::uint32_t key_end = 0;      ///< one past the last byte of the key text
  std::uint32_t value_begin = 0;  ///< first byte of the value
  std::uint32_t value_end = 0;    ///< one past the last byte of the value
};

/// A client's chat-completions request, parsed once. The raw body is kept so that an
/// OpenAI-compatible upstream body is produced by patching top-level members rather than
/// rebuilding the document.
struct chat_request {
  std::string body;                  ///< the client's JSON, exactly as received
  std::string model;                 ///< the client's `model` (a tier or `provider/model`)
  bool stream = false;               ///< `stream` was true
  bool include_usage = false;        ///< `stream_options.include_usage` was true
  std::vector<member_span> members;  ///< top-level members in document order

  // -- facts for adapters, gathered in the same pass ---------------------------------------------
  bool has_developer_messages = false;  ///< a message with role `developer`
  bool has_message_names = false;       ///< a message with a `name` member
  bool has_reasoning_content = false;   ///< a message with a `reasoning_content` member
  bool has_tools = false;               ///< a non-empty `tools` array
  std::int64_t n = 1;                   ///< `n` when it is an integer, else 1

  // -- the client's API, when it is not chat completions ------------------------------------------
  client_api api = client_api::chat_completions;
  /// The client's own body and its top-level members (responses, messages, count_tokens,
  /// embeddings): sent, with `model` patched, to a provider that speaks the API natively. For
  /// responses and messages, `body`/`members` above then hold the chat-completions translation
  /// used for every other provider; for count_tokens and embeddings they are the same as these.
  std::string native_body;
  std::vector<member_span> native_members;
  /// What the Responses translation needs beyond the chat form (responses only).
  std::shared_ptr<const responses::request_facts> responses_facts;
  /// What the Messages translation needs beyond the chat form (messages and count_tokens).
  std::shared_ptr<const anthropic_inbound::request_facts> messages_facts;

  /// The (raw, still escaped) key text of `m`.
  std::string_view key(const member_span& m) const noexcept {
    return std::string_view(body).substr(m.key_begin, m.key_end - m.key_begin);
  }
  /// The raw JSON text of `m`'s value.
  std::string_view raw_value(const member_span& m) const noexcept {
    return std::string_view(body).substr(m.value_begin, m.value_end - m.value_begin);
  }
  /// The raw JSON text of the value of top-level member `key`, if present (last one wins).
  std::optional<std::string_view> raw_value(std::string_view key) const noexcept;
};

/// Bounds on a client body that `parse_chat_request` enforces.
struct parse_limits {
  int max_depth = 64;               ///< deepest nesting of arrays and objects accepted
  std::size_t max_messages = 2048;  ///< most entries of `messages` accepted (0: no limit)
  /// Whether `messages` must be present (chat completions). False indexes any API's body:
  /// `model` is still required, `messages` is validated only when present.
  bool require_messages = true;
};

/// The text of a raw (still escaped) JSON key such as `chat_request::key()` returns: `raw` itself
/// when it holds no escape, else the decoded text, written to `scratch`. Malformed escapes
/// (impossible in a body `parse_chat_request` accepted) decode as U+FFFD.
std::string_view unescape_key(std::string_view raw, std::string& scratch);

/// Validates and indexes a chat-completions body in one pass, without recursion (nesting deeper
/// than `max_depth` is refused before any recursion could happen). Errors (errc::invalid_request,
/// with `param` set where a field is at fault): not JSON; not an object; depth exceeded;
/// `model` missing or not a non-empty string; `messages` missing or not a non-empty array of
/// objects each with a string `role`, or holding more than `max_messages` entries (found at the
/// entry one past the limit, in the same pass); `stream` not a boolean; `stream_options` not an
/// object; `stream_options.include_usage` not a boolean (for the optional fields, null counts as
/// absent). A body of 4 GiB or more is errc::payload_too_large.
result<chat_request> parse_chat_request(std::string body, const parse_limits& limits = {});

/// True when `text` nests arrays/objects deeper than `max_depth` (strings are skipped correctly;
/// malformed input is not diagnosed here). Linear, no recursion.
bool exceeds_depth(std::string_view text, int max_depth) noexcept;

}  // namespace ib::providers
