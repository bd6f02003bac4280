#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <rapidjson/document.h>

#include "core/error.hpp"
#include "core/json.hpp"
#include "core/outcome.hpp"
#include "core/request_record.hpp"

/// Helpers shared by the Anthropic request, response and stream translations. Private to
/// providers/anthropic*.cpp (and their tests).
namespace ib::providers::anthropic::detail {

/// The OpenAI `finish_reason` for an Anthropic `stop_reason` (providers.md §2.2).
std::string_view finish_reason(std::string_view stop_reason) noexcept;

/// The Anthropic `stop_reason` for an OpenAI `finish_reason`, the inverse of `finish_reason`
/// where one exists: `stop` -> `end_turn`, `length` -> `max_tokens`, `tool_calls` (and the
/// legacy `function_call`) -> `tool_use`, `content_filter` -> `refusal`; anything else
/// (`eos`, empty, provider-specific) -> `end_turn`. Used by the Messages API inbound
/// (providers/anthropic_inbound.cpp).
std::string_view stop_reason(std::string_view finish_reason) noexcept;

/// A tool id as Anthropic accepts it (`^[a-zA-Z0-9_-]+$`): a valid id unchanged, any other (and
/// any starting with `ibx_`) as `ibx_` + the hex of its bytes. Injective, so the ids of one
/// conversation still pair up. Used for `tool_use.id` both ways: OpenAI tool calls sent to
/// Anthropic, and tool calls of OpenAI-compatible providers returned to Anthropic clients.
std::string tool_id(std::string_view id);

/// Anthropic token counts. `input` excludes the cached tokens, which come separately.
struct token_tally {
  std::int64_t input = 0;
  std::int64_t output = 0;
  std::int64_t cache_read = 0;
  std::int64_t cache_creation = 0;

  /// Overwrites the counts present in an Anthropic `usage` object (absent ones stay as they
  /// are); counts that are not non-negative integers below 2^40 read as 0.
  void read(const rapidjson::Value& usage) noexcept;
  /// OpenAI semantics: the prompt includes the cached tokens (providers.md §2.2).
  ib::usage to_usage() const noexcept;
  /// Writes the OpenAI `usage` object: `{"prompt_tokens","completion_tokens","total_tokens",
  /// "prompt_tokens_details":{"cached_tokens"}}` (token counts).
  void write_json(json_writer& w) const;

  /// The inverse of `to_usage`: Anthropic counts from OpenAI-semantics usage (`input` = prompt
  /// minus the cached tokens, never negative; no cache creation is known).
  static token_tally from_usage(const ib::usage& u) noexcept;
  /// Writes Anthropic's `usage` object: `{"input_tokens","cache_creation_input_tokens",
  /// "cache_read_input_tokens","output_tokens"}` (token counts).
  void write_anthropic_json(json_writer& w) const;
};

/// The current Unix time in seconds.
std::int64_t now_unix() noexcept;

/// What an in-band stream `error` event of Anthropic error type `type` means for the attempt.
struct stream_error_class {
  outcome result;  ///< the failure class
  int status;      ///< the status it stands for
};

/// Overload and internal errors are the provider's trouble (fall back, count against the
/// breaker, as their HTTP statuses 529 and 500 would): `overloaded_error` → server_error 529,
/// `api_error` → server_error 500; any other type is a bad response, 502.
stream_error_class classify_stream_error(std::string_view type) noexcept;

/// A 400 (errc::invalid_request) about field `param`: the message is `"<param>: <what>"`.
ib::error invalid(std::string param, std::string_view what);

/// `base[i]`, the path of an array element in an error's `param` (`messages[3]`).
std::string index_path(std::string_view base, std::size_t i);

}  // namespace ib::providers::anthropic::detail
