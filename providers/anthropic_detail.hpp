#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <rapidjson/document.h>

#include "core/json.hpp"
#include "core/request_record.hpp"

/// Helpers shared by the Anthropic request, response and stream translations. Private to
/// providers/anthropic*.cpp (and their tests).
namespace ib::providers::anthropic::detail {

/// The OpenAI `finish_reason` for an Anthropic `stop_reason` (providers.md §2.2).
std::string_view finish_reason(std::string_view stop_reason) noexcept;

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
};

/// The current Unix time in seconds.
std::int64_t now_unix() noexcept;

}  // namespace ib::providers::anthropic::detail
