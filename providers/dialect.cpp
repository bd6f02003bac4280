#include "providers/dialect.hpp"

#include <algorithm>
#include <array>

namespace ib::providers {

namespace {

using namespace std::string_view_literals;

// Every rule below carries the date it was last checked against the provider's public
// documentation and the source. The doc corpora read on 2026-11-30 are stored copies that may be
// older than that date; providers.md (dated 2026-11-30) is the freshest reference
// and wins where they disagree. "Unconfirmed" means neither confirmed the rule: it is kept as it
// was.

// -- field lists ----------------------------------------------------------------------------------

/// Fields only OpenAI understands; other upstreams 400 on some of them or ignore them.
// checked 2026-11-30: providers.md §3 ("strips ... OpenAI-only fields (store, metadata,
// service_tier, prediction, modalities, audio, prompt_cache_key, ...)"); Groq's 400 on `store`
// seen in github.com/fanenr/chatbot#21. safety_identifier, verbosity, web_search_options:
// unconfirmed per provider (newer OpenAI-only fields; dropping them is the safe side).
constexpr std::array openai_only_fields{
    "store"sv, "metadata"sv,         "service_tier"sv,      "prediction"sv, "modalities"sv,
    "audio"sv, "prompt_cache_key"sv, "safety_identifier"sv, "verbosity"sv,  "web_search_options"sv,
};

/// DeepSeek and Sarvam do not document `parallel_tool_calls`.
// checked 2026-11-30: still absent from the parameter lists read (api-docs.deepseek.com
// guides/thinking_mode; docs.sarvam.ai api-reference-docs/chat/chat-completions); that they reject
// it is unconfirmed, so it is dropped rather than refused.
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

// checked 2026-11-30: console.groq.com/docs/openai "Currently Unsupported OpenAI Features":
// logprobs, logit_bias, top_logprobs and messages[].name give a 400; N must be 1.
constexpr std::array groq_rejected{"logprobs"sv, "logit_bias"sv, "top_logprobs"sv};
// checked 2026-11-30: providers.md §3 (DeepSeek thinking mode: logprobs/top_logprobs -> 400).
// api-docs.deepseek.com guides/thinking_mode says temperature/penalties are accepted and ignored,
// so they are not refused.
constexpr std::array deepseek_rejected{"logprobs"sv, "top_logprobs"sv};

// checked 2026-11-30: OpenAI `insufficient_quota` (providers.md §1); Sarvam
// `insufficient_quota_error` (providers.md §3, docs.sarvam.ai errors-troubleshooting).
constexpr std::array quota_codes{"insufficient_quota"sv, "insufficient_quota_error"sv};

// -- status rules ---------------------------------------------------------------------------------

// checked 2026-11-30: providers.md §3 (console.groq.com/docs/errors): 498 flex capacity exceeded,
// 499 request cancelled. Not re-confirmed in the stored Groq pages.
constexpr std::array groq_rules{
    status_rule{498, outcome::server_error},      // flex tier capacity exceeded
    status_rule{499, outcome::retryable_status},  // request cancelled upstream
};
// checked 2026-11-30: providers.md §3 (api-docs.deepseek.com error_codes): 402 Insufficient
// Balance.
constexpr std::array deepseek_rules{
    status_rule{402, outcome::key_rejected},  // Insufficient Balance: the key is unusable
};
// checked 2026-11-30: providers.md §3 (docs.sarvam.ai errors-troubleshooting): a bad key is 403
// invalid_api_key_error; 429 insufficient_quota_error means no credit.
constexpr std::array sarvam_rules{
    status_rule{403, outcome::key_rejected, "invalid_api_key_error"sv},  // a bad key is a 403
    status_rule{429, outcome::rate_limited, "insufficient_quota_error"sv},
};

// -- the table ------------------------------------------------------------------------------------

// `reasoning_content` on assistant turns, per provider (checked 2026-11-30):
// * DeepSeek REQUIRES it back, unchanged, on every assistant turn that made tool calls (400
//   without), and ignores it elsewhere: api-docs.deepseek.com guides/thinking_mode; providers.md
//   §3.
// * Groq REJECTS it: 400 "'messages.N' : for 'role:assistant' ... property 'reasoning_content' is
//   unsupported" (github.com/tashfeenahmed/freellmapi#1070, 2026-08-30; janhq/jan#8136,
//   2026-05). Groq's docs (console.groq.com/docs/openai) do not list it; the strict schema does.
// * OpenAI: its Chat Completions schema defines no such field (openai/openai-agents-js#1669); a
//   rejection is unconfirmed. The pass-through dialect forwards what the client sent.
// * Together, Sarvam: unconfirmed either way; forwarded unchanged (Sarvam's v2 reference says
//   other OpenAI-compatible fields "may be forwarded to the model", docs.sarvam.ai chat v2).

constexpr dialect openai_dialect{
    .name = "openai",
    .passthrough = true,
    .force_include_usage = true,
    .status_rules = {},
    .long_cooldown_codes = quota_codes,
};

// developer -> system, max_completion_tokens -> max_tokens for every non-OpenAI upstream:
// checked 2026-11-30: providers.md §3 ("Every OpenAI-compatible adapter ..."); Groq accepts both
// names but the rename is harmless. finish_reason map: providers.md §2.2/§3 (eos, "",
// insufficient_system_resource). force_include_usage: providers.md §3 (Groq/DeepSeek/Together
// send usage on the last chunk with include_usage); unconfirmed in the stored provider pages.
constexpr dialect groq_dialect{
    .name = "groq",
    .developer_to_system = true,
    .max_completion_to_max_tokens = true,
    .strip_message_names = true,      // checked 2026-11-30: console.groq.com/docs/openai
    .strip_reasoning_content = true,  // checked 2026-11-30: see above (Groq 400s on it)
    .empty_tool_arguments_as_object = true,
    .require_single_choice = true,  // checked 2026-11-30: console.groq.com/docs/openai (N == 1)
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
    // checked 2026-11-30: api-docs.deepseek.com guides/thinking_mode; providers.md §3. The old
    // deepseek-reasoner rule (sending it back -> 400) is superseded: it is required on tool-call
    // turns, so it is never stripped.
    .strip_reasoning_content = false,
    .empty_tool_arguments_as_object = true,
    .map_finish_reason = true,
    .force_include_usage = true,
    .drop = openai_only_and_parallel_fields,
    .reject = deepseek_rejected,
    .status_rules = deepseek_rules,
    .long_cooldown_codes = quota_codes,
};

constexpr dialect together_dialect{
    .name = "together",
    .developer_to_system = true,  // checked 2026-11-30: providers.md §1 ([ptk] together-ai)
    .max_completion_to_max_tokens = true,
    .empty_tool_arguments_as_object = true,
    .map_finish_reason = true,  // checked 2026-11-30: providers.md §3 (eos, error, "")
    .force_include_usage = true,
    .drop = openai_only_fields,
    .long_cooldown_codes = quota_codes,
};

constexpr dialect sarvam_dialect{
    .name = "sarvam",
    .developer_to_system = true,
    .max_completion_to_max_tokens = true,
    .empty_tool_arguments_as_object = true,
    .map_finish_reason = true,
    // checked 2026-11-30: stream_options support is still undocumented (docs.sarvam.ai chat
    // completions reference); usage is taken from whatever arrives.
    .send_stream_options = false,
    .drop = openai_only_and_parallel_fields,
    .status_rules = sarvam_rules,
    .long_cooldown_codes = quota_codes,
};

/// Any other OpenAI-compatible server: the common rewrites, and the client's own stream_options.
constexpr dialect generic_dialect{
    .name = "generic",
    .developer_to_system = true,
    .max_completion_to_max_tokens = true,
    .empty_tool_arguments_as_object = true,
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
