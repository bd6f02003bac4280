#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace ib::providers {

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
