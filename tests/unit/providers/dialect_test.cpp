#include "providers/dialect.hpp"

#include <gtest/gtest.h>

#include "config/load.hpp"

namespace ib::providers {
namespace {

TEST(Dialect, LookupByDialectThenName) {
  EXPECT_EQ(find_dialect("groq").name, "groq");
  EXPECT_EQ(find_dialect("deepseek").name, "deepseek");
  EXPECT_EQ(find_dialect("together").name, "together");
  EXPECT_EQ(find_dialect("sarvam").name, "sarvam");
  EXPECT_EQ(find_dialect("openai").name, "openai");
  EXPECT_EQ(find_dialect("my-vllm").name, "generic");
  EXPECT_EQ(find_dialect("").name, "generic");

  config::provider_config p;
  p.name = "groq";
  EXPECT_EQ(dialect_for(p).name, "groq");
  p.dialect = "together";
  EXPECT_EQ(dialect_for(p).name, "together");
  p.name = "local";
  p.dialect.clear();
  EXPECT_EQ(dialect_for(p).name, "generic");
}

TEST(Dialect, OpenAiPassesEverythingThrough) {
  const dialect& d = find_dialect("openai");
  EXPECT_TRUE(d.passthrough);
  EXPECT_FALSE(d.developer_to_system);
  EXPECT_FALSE(d.max_completion_to_max_tokens);
  EXPECT_FALSE(d.map_finish_reason);
  EXPECT_TRUE(d.force_include_usage);
  EXPECT_FALSE(drops_field(d, "store"));
  EXPECT_FALSE(rejects_field(d, "logprobs"));
  EXPECT_FALSE(map_finish_reason(d, "eos").has_value());
}

TEST(Dialect, EveryOtherDialectRewritesTheCommonFields) {
  for (const char* name : {"groq", "deepseek", "together", "sarvam", "generic"}) {
    SCOPED_TRACE(name);
    const dialect& d = find_dialect(name);
    EXPECT_FALSE(d.passthrough);
    EXPECT_TRUE(d.developer_to_system);
    EXPECT_TRUE(d.max_completion_to_max_tokens);
    EXPECT_TRUE(d.map_finish_reason);
    for (const char* f : {"store", "metadata", "service_tier", "prediction", "modalities", "audio",
                          "prompt_cache_key", "safety_identifier"}) {
      EXPECT_TRUE(drops_field(d, f)) << f;
    }
    EXPECT_FALSE(drops_field(d, "temperature"));
    EXPECT_FALSE(drops_field(d, "tools"));
  }
}

TEST(Dialect, ProviderSpecificRules) {
  const dialect& groq = find_dialect("groq");
  EXPECT_TRUE(groq.strip_message_names);
  EXPECT_TRUE(groq.strip_reasoning_content);  // Groq 400s on it (checked 2026-11-30)
  EXPECT_TRUE(groq.require_single_choice);
  EXPECT_TRUE(rejects_field(groq, "logprobs"));
  EXPECT_TRUE(rejects_field(groq, "logit_bias"));
  EXPECT_TRUE(rejects_field(groq, "top_logprobs"));
  EXPECT_FALSE(drops_field(groq, "parallel_tool_calls"));

  const dialect& deepseek = find_dialect("deepseek");
  // Thinking mode requires reasoning_content back on tool-call turns (checked 2026-11-30).
  EXPECT_FALSE(deepseek.strip_reasoning_content);
  EXPECT_FALSE(deepseek.strip_message_names);
  EXPECT_TRUE(rejects_field(deepseek, "logprobs"));
  EXPECT_TRUE(rejects_field(deepseek, "top_logprobs"));
  EXPECT_FALSE(rejects_field(deepseek, "logit_bias"));
  EXPECT_TRUE(drops_field(deepseek, "parallel_tool_calls"));

  const dialect& sarvam = find_dialect("sarvam");
  EXPECT_FALSE(sarvam.send_stream_options);
  EXPECT_FALSE(sarvam.force_include_usage);

  for (const char* name : {"openai", "groq", "deepseek", "together"}) {
    EXPECT_TRUE(find_dialect(name).force_include_usage) << name;
  }
}

TEST(Dialect, ReasoningContentIsStrippedOnlyWhereItIsRejected) {
  for (const char* kept : {"openai", "deepseek", "together", "sarvam", "generic"}) {
    EXPECT_FALSE(find_dialect(kept).strip_reasoning_content) << kept;
  }
  EXPECT_TRUE(find_dialect("groq").strip_reasoning_content);
}

TEST(Dialect, EmptyToolArgumentsBecomeAnObjectExceptForOpenAi) {
  EXPECT_FALSE(find_dialect("openai").empty_tool_arguments_as_object);
  for (const char* name : {"groq", "deepseek", "together", "sarvam", "generic"}) {
    EXPECT_TRUE(find_dialect(name).empty_tool_arguments_as_object) << name;
  }
}

TEST(Dialect, FinishReasonMap) {
  const dialect& d = find_dialect("together");
  EXPECT_EQ(map_finish_reason(d, "eos"), "stop");
  EXPECT_EQ(map_finish_reason(d, "insufficient_system_resource"), "length");
  EXPECT_EQ(map_finish_reason(d, "error"), "stop");
  EXPECT_EQ(map_finish_reason(d, ""), "stop");
  EXPECT_EQ(map_finish_reason(d, "whatever"), "stop");
  for (const char* kept : {"stop", "length", "tool_calls", "content_filter", "function_call"}) {
    EXPECT_FALSE(map_finish_reason(d, kept).has_value()) << kept;
  }
}

TEST(Dialect, StatusQuirks) {
  const dialect& groq = find_dialect("groq");
  EXPECT_EQ(classify(groq, 498, "", ""), outcome::server_error);
  EXPECT_EQ(classify(groq, 499, "", ""), outcome::retryable_status);
  EXPECT_EQ(classify(groq, 400, "invalid_request_error", "tool_use_failed"),
            outcome::request_rejected);
  EXPECT_EQ(classify(groq, 429, "tokens", "rate_limit_exceeded"), outcome::rate_limited);

  const dialect& deepseek = find_dialect("deepseek");
  EXPECT_EQ(classify(deepseek, 402, "unknown_error", ""), outcome::key_rejected);
  EXPECT_EQ(classify(deepseek, 503, "", ""), outcome::server_error);
  EXPECT_EQ(classify(deepseek, 422, "", ""), outcome::request_rejected);

  const dialect& sarvam = find_dialect("sarvam");
  EXPECT_EQ(classify(sarvam, 403, "invalid_api_key_error", "invalid_api_key_error"),
            outcome::key_rejected);
  EXPECT_EQ(classify(sarvam, 429, "", "insufficient_quota_error"), outcome::rate_limited);

  const dialect& openai = find_dialect("openai");
  for (int s : {400, 404, 413, 422}) {
    EXPECT_EQ(classify(openai, s, "", ""), outcome::request_rejected) << s;
  }
  for (int s : {401, 402, 403}) {
    EXPECT_EQ(classify(openai, s, "", ""), outcome::key_rejected) << s;
  }
  for (int s : {408, 409}) {
    EXPECT_EQ(classify(openai, s, "", ""), outcome::retryable_status) << s;
  }
  for (int s : {500, 502, 503, 504, 529}) {
    EXPECT_EQ(classify(openai, s, "", ""), outcome::server_error) << s;
  }
}

TEST(Dialect, LongCooldown) {
  EXPECT_TRUE(
      is_long_cooldown(find_dialect("openai"), 429, "insufficient_quota", "insufficient_quota"));
  EXPECT_TRUE(is_long_cooldown(find_dialect("sarvam"), 429, "", "insufficient_quota_error"));
  EXPECT_FALSE(is_long_cooldown(find_dialect("openai"), 429, "requests", "rate_limit_exceeded"));
  EXPECT_FALSE(is_long_cooldown(find_dialect("openai"), 400, "insufficient_quota", ""));
  EXPECT_FALSE(is_long_cooldown(find_dialect("groq"), 429, "", ""));
}

// -- the provider list lives in config/default.json; the quirks here -----------------------------

TEST(DialectNewcomer, AConfiguredProviderWithoutARowGetsTheGenericDialect) {
  auto cfg = config::load(R"({ "providers": { "acme": { "base_url": "https://api.acme.example/v1",
                                                       "models": ["acme-1"] } } })",
                          {});
  ASSERT_TRUE(cfg) << cfg.error().message;
  const dialect& d = dialect_for(*cfg->find_provider("acme"));
  EXPECT_EQ(d.name, "generic");
  EXPECT_TRUE(d.developer_to_system);
  EXPECT_TRUE(drops_field(d, "store"));
}

TEST(DialectNewcomer, AConfigMayNameARowForAnyProvider) {
  auto cfg = config::load(R"({ "providers": { "acme": { "base_url": "https://api.acme.example/v1",
                                                       "dialect": "groq" } } })",
                          {});
  ASSERT_TRUE(cfg) << cfg.error().message;
  EXPECT_EQ(dialect_for(*cfg->find_provider("acme")).name, "groq");
}

TEST(DialectNewcomer, EveryShippedOpenAiProviderHasItsRow) {
  // Shipping a provider is its entry in config/default.json plus its row here (or
  // `"dialect": "generic"` in its entry when it has no quirks).
  auto cfg = config::load_default({});
  ASSERT_TRUE(cfg) << cfg.error().message;
  for (const auto& p : cfg->providers) {
    if (p.proto == config::protocol::openai) {
      EXPECT_EQ(dialect_for(p).name, p.dialect) << p.name << " has no row in providers/dialect.cpp";
    }
  }
}

}  // namespace
}  // namespace ib::providers
