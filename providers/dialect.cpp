#include "providers/dialect.hpp"

#include <algorithm>
#include <array>

namespace ib::providers {

namespace {

using namespace std::string_view_literals;

// -- field lists ----------------------------------------------------------------------------------

/// Fields only OpenAI understands; other upstreams 400 on some of them or ignore them.
constexpr std::array openai_only_fields{
    "store"sv, "metadata"sv,         "service_tier"sv,      "prediction"sv, "modalities"sv,
    "audio"sv, "prompt_cache_key"sv, "safety_identifier"sv, "verbosity"sv,  "web_search_options"sv,
};

/// DeepSeek and Sarvam do not document `parallel_tool_calls`.
constexpr std::array openai_only_and_parallel_fields{
    "store"sv,
    "metadata"sv,
    "service_tier"sv,
    "prediction"sv,
    "modalities"sv,
    "audio"sv,
    "prompt_cache_key"sv,
    "safety_identifier"sv,
    "verbosity"sv,
    "web_search_options"sv,
    "parallel_tool_calls"sv,
};

constexpr std::array groq_rejected{"logprobs"sv, "logit_bias"sv, "top_logprobs"sv};
constexpr std::array deepseek_rejected{"logprobs"sv, "top_logprobs"sv};

constexpr std::array quota_codes{"insufficient_quota"sv, "insufficient_quota_error"sv};

// -- status rules ---------------------------------------------------------------------------------

constexpr std::array groq_rules{
    status_rule{498, outcome::server_error},      // flex tier capacity exceeded
    status_rule{499, outcome::retryable_status},  // request cancelled upstream
};
constexpr std::array deepseek_rules{
    status_rule{402, outcome::key_rejected},  // Insufficient Balance: the key is unusable
};
constexpr std::array sarvam_rules{
    status_rule{403, outcome::key_rejected, "invalid_api_key_error"sv},  // a bad key is a 403
    status_rule{429, outcome::rate_limited, "insufficient_quota_error"sv},
};

// -- the table ------------------------------------------------------------------------------------

constexpr dialect openai_dialect{
    .name = "openai",
    .passthrough = true,
    .force_include_usage = true,
    .status_rules = {},
    .long_cooldown_codes = quota_codes,
};

constexpr dialect groq_dialect{
    .name = "groq",
    .developer_to_system = true,
    .max_completion_to_max_tokens = true,
    .strip_message_names = true,
    .require_single_choice = true,
    .map_finish_reason = true,
    .force_include_usage = true,
    .drop = openai_only_fields,
    .reject = groq_rejected,
    .status_rules = groq_rules,
    .long_cooldown_codes = quota_codes,
};

constexpr dialect deepseek_dialect{
    .name = "deepseek",
    .developer_to_system = true,
    .max_completion_to_max_tokens = true,
    .strip_reasoning_content = true,
    .map_finish_reason = true,
    .force_include_usage = true,
    .drop = openai_only_and_parallel_fields,
    .reject = deepseek_rejected,
    .status_rules = deepseek_rules,
    .long_cooldown_codes = quota_codes,
};

constexpr dialect together_dialect{
    .name = "together",
    .developer_to_system = true,
    .max_completion_to_max_tokens = true,
    .map_finish_reason = true,
    .force_include_usage = true,
    .drop = openai_only_fields,
    .long_cooldown_codes = quota_codes,
};

constexpr dialect sarvam_dialect{
    .name = "sarvam",
    .developer_to_system = true,
    .max_completion_to_max_tokens = true,
    .map_finish_reason = true,
    .send_stream_options = false,  // support unknown: usage is taken from whatever arrives
    .drop = openai_only_and_parallel_fields,
    .status_rules = sarvam_rules,
    .long_cooldown_codes = quota_codes,
};

/// Any other OpenAI-compatible server: the common rewrites, and the client's own stream_options.
constexpr dialect generic_dialect{
    .name = "generic",
    .developer_to_system = true,
    .max_completion_to_max_tokens = true,
    .map_finish_reason = true,
    .drop = openai_only_fields,
    .long_cooldown_codes = quota_codes,
};

constexpr std::array<const dialect*, 5> known{&openai_dialect, &groq_dialect, &deepseek_dialect,
                                              &together_dialect, &sarvam_dialect};

bool contains(std::span<const std::string_view> list, std::string_view s) noexcept {
  return std::find(list.begin(), list.end(), s) != list.end();
}

}  // namespace

const dialect& find_dialect(std::string_view name) noexcept {
  for (const dialect* d : known) {
    if (d->name == name) {
      return *d;
    }
  }
  return generic_dialect;
}

const dialect& dialect_for(const config::provider_config& p) noexcept {
  return find_dialect(p.dialect.empty() ? std::string_view(p.name) : std::string_view(p.dialect));
}

bool drops_field(const dialect& d, std::string_view field) noexcept {
  return contains(d.drop, field);
}

bool rejects_field(const dialect& d, std::string_view field) noexcept {
  return contains(d.reject, field);
}

std::optional<std::string_view> map_finish_reason(const dialect& d,
                                                  std::string_view reason) noexcept {
  if (!d.map_finish_reason) {
    return std::nullopt;
  }
  if (reason == "stop" || reason == "length" || reason == "tool_calls" || reason == "content_filter"
      || reason == "function_call") {
    return std::nullopt;
  }
  if (reason == "insufficient_system_resource") {
    return "length";
  }
  return "stop";  // `eos`, `error`, `""` and anything unknown
}

outcome classify(const dialect& d, int status, std::string_view type,
                 std::string_view code) noexcept {
  for (const status_rule& r : d.status_rules) {
    if (r.status == status && (r.code.empty() || r.code == code || r.code == type)) {
      return r.result;
    }
  }
  return classify_status(status);
}

bool is_long_cooldown(const dialect& d, int status, std::string_view type,
                      std::string_view code) noexcept {
  return status == 429
         && ((!code.empty() && contains(d.long_cooldown_codes, code))
             || (!type.empty() && contains(d.long_cooldown_codes, type)));
}

}  // namespace ib::providers
