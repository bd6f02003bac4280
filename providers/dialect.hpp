#pragma once

#include <optional>
#include <span>
#include <string_view>

#include "config/config.hpp"
#include "core/outcome.hpp"

namespace ib::providers {

/// A provider-specific status rule: `status` (and, when `code` is set, an error body whose `code`
/// or `type` equals it) is classified as `result` instead of the generic design §4 rule.
struct status_rule {
  int status = 0;
  outcome result = outcome::server_error;
  std::string_view code = {};
};

/// The quirks of one OpenAI-compatible upstream (providers.md §3), as data. `openai` is the
/// pass-through dialect: no rewrites at all.
struct dialect {
  std::string_view name;
  bool passthrough = false;  ///< forward what is not rewritten as sent (even stream_options)
  bool developer_to_system = false;           ///< rewrite `developer` messages as `system`
  bool max_completion_to_max_tokens = false;  ///< rename `max_completion_tokens` (if no max_tokens)
  bool strip_message_names = false;           ///< drop `messages[].name`
  bool strip_reasoning_content = false;       ///< drop `messages[].reasoning_content`
  /// A tool call whose arguments never arrived (`""`) is sent to the client as `"{}"`, as OpenAI
  /// itself sends it: the SDKs JSON.parse the joined arguments, and `""` throws.
  bool empty_tool_arguments_as_object = false;
  bool require_single_choice = false;  ///< `n` other than 1 is unsupported
  bool map_finish_reason = false;      ///< normalise `finish_reason` (eos -> stop, ...)
  bool force_include_usage = false;  ///< streams: send `stream_options.include_usage:true` upstream
  bool send_stream_options = true;   ///< false: `stream_options` is never sent upstream
  std::span<const std::string_view> drop;    ///< top-level fields removed silently
  std::span<const std::string_view> reject;  ///< top-level fields refused unless null or false
  std::span<const status_rule> status_rules;
  /// A 429 whose error `code` or `type` is one of these means "no credit": long cooldown.
  std::span<const std::string_view> long_cooldown_codes;
};

/// The dialect called `name` (`openai`, `groq`, `deepseek`, `together`, `sarvam`), or the
/// `generic` one for any other name.
const dialect& find_dialect(std::string_view name) noexcept;

/// The dialect of `p`: `p.dialect`, or `p.name` when that is empty.
const dialect& dialect_for(const config::provider_config& p) noexcept;

/// True when top-level field `field` is dropped silently for `d`.
bool drops_field(const dialect& d, std::string_view field) noexcept;

/// True when a non-null, non-false top-level `field` makes the request unsupported for `d`.
bool rejects_field(const dialect& d, std::string_view field) noexcept;

/// The OpenAI `finish_reason` to send instead of `reason`, or nullopt to keep it (always
/// nullopt when `d` does not map finish reasons). Unknown values, `error` and `""` become
/// `stop`; `eos` becomes `stop`; `insufficient_system_resource` becomes `length`.
std::optional<std::string_view> map_finish_reason(const dialect& d,
                                                  std::string_view reason) noexcept;

/// Classifies an upstream error status for `d`: its status rules first (matched against the
/// error body's `code`/`type` when a rule names one), then `classify_status`.
outcome classify(const dialect& d, int status, std::string_view type,
                 std::string_view code) noexcept;

/// True when a 429 with this error `type`/`code` means the key has no credit left.
bool is_long_cooldown(const dialect& d, int status, std::string_view type,
                      std::string_view code) noexcept;

}  // namespace ib::providers
