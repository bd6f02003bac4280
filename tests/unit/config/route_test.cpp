// Model resolution (design §4): a tier's plan, a direct provider/model, or 404 model_not_found.
#include "config/route.hpp"

#include <gtest/gtest.h>

#include "config/load.hpp"
#include "core/error.hpp"

namespace ib::config {
namespace {

config sample() {
  auto cfg = load(R"({
    "providers": { "openai": {}, "groq": {}, "anthropic": {} },
    "tiers": {
      "ib/balanced": [ { "provider": "openai", "model": "gpt-x" },
                       { "provider": "anthropic", "model": "claude-x" } ],
      "fast": [ { "provider": "groq", "model": "openai/gpt-oss-20b" } ]
    }
  })",
                  {});
  EXPECT_TRUE(cfg) << (cfg ? "" : cfg.error().message);
  return cfg ? std::move(*cfg) : config{};
}

TEST(Route, ATierGivesItsPlan) {
  const auto cfg = sample();
  auto r = resolve_route(cfg, "ib/balanced");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->tier, "ib/balanced");
  ASSERT_EQ(r->plan.size(), 2u);
  EXPECT_EQ(r->plan[0].provider, "openai");
  EXPECT_EQ(r->plan[1].model, "claude-x");
}

TEST(Route, ProviderSlashModelGoesToThatProviderAlone) {
  const auto cfg = sample();
  struct row {
    const char* model;
    const char* provider;
    const char* upstream;
  };
  for (const auto& [model, provider, upstream] :
       {row{"groq/llama-3.1-8b-instant", "groq", "llama-3.1-8b-instant"},
        row{"groq/openai/gpt-oss-120b", "groq", "openai/gpt-oss-120b"},
        row{"anthropic/claude-haiku-4-5", "anthropic", "claude-haiku-4-5"}}) {
    auto r = resolve_route(cfg, model);
    ASSERT_TRUE(r) << model;
    EXPECT_EQ(r->tier, "") << model;
    ASSERT_EQ(r->plan.size(), 1u);
    EXPECT_EQ(r->plan[0].provider, provider);
    EXPECT_EQ(r->plan[0].model, upstream);
  }
}

TEST(Route, AnythingElseIsModelNotFoundNamingTheChoices) {
  const auto cfg = sample();
  for (const char* model :
       {"gpt-4o", "ib/unknown", "sarvam/sarvam-105b", "openai/", "/gpt-4o", ""}) {
    auto r = resolve_route(cfg, model);
    ASSERT_FALSE(r) << model;
    EXPECT_EQ(r.error().code, errc::not_found);
    EXPECT_EQ(http_status(r.error().code), 404);
    EXPECT_EQ(r.error().param, "model");
    EXPECT_EQ(r.error().detail_code, "model_not_found");
    EXPECT_NE(r.error().message.find("Use a tier (ib/balanced, fast)"), std::string::npos)
        << r.error().message;
    EXPECT_NE(r.error().message.find("one of: openai, groq, anthropic."), std::string::npos)
        << r.error().message;
  }
}

// -- embeddings: one model, never a tier
// -----------------------------------------------------------

config embedding_sample() {
  auto cfg = load(R"({
    "providers": { "openai": {}, "together": {}, "anthropic": {} },
    "tiers": { "ib/balanced": [ { "provider": "openai", "model": "gpt-x" } ] },
    "embedding_models": {
      "bge-large": [ { "provider": "together", "model": "BAAI/bge-large-en-v1.5" },
                     { "provider": "openai", "model": "BAAI/bge-large-en-v1.5" } ]
    }
  })",
                  {});
  EXPECT_TRUE(cfg) << (cfg ? "" : cfg.error().message);
  return cfg ? std::move(*cfg) : config{};
}

TEST(EmbeddingRoute, AConfiguredNameGivesEntriesOfTheSameModel) {
  const auto cfg = embedding_sample();
  auto r = resolve_embedding_route(cfg, "bge-large");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->tier, "bge-large");
  ASSERT_EQ(r->plan.size(), 2u);
  EXPECT_EQ(r->plan[0].provider, "together");
  EXPECT_EQ(r->plan[1].provider, "openai");
}

TEST(EmbeddingRoute, ProviderSlashModelGoesToThatProviderAlone) {
  const auto cfg = embedding_sample();
  auto r = resolve_embedding_route(cfg, "openai/text-embedding-3-small");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->tier, "");
  ASSERT_EQ(r->plan.size(), 1u);
  EXPECT_EQ(r->plan[0].model, "text-embedding-3-small");
}

TEST(EmbeddingRoute, AChatTierIsRefusedWithTheReason) {
  const auto cfg = embedding_sample();
  auto r = resolve_embedding_route(cfg, "ib/balanced");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::invalid_request);
  EXPECT_EQ(r.error().param, "model");
  EXPECT_NE(r.error().message.find("not comparable"), std::string::npos) << r.error().message;
}

TEST(EmbeddingRoute, AnUnknownNameIsModelNotFound) {
  const auto cfg = embedding_sample();
  for (const char* name : {"text-embedding-9", "nobody/model", "openai/", ""}) {
    auto r = resolve_embedding_route(cfg, name);
    ASSERT_FALSE(r) << name;
    EXPECT_EQ(r.error().code, errc::not_found) << name;
    EXPECT_EQ(r.error().detail_code, "model_not_found") << name;
  }
}

TEST(EmbeddingRoute, TheShippedDefaultNamesOpenAIsModels) {
  auto cfg = load("{}", {});
  ASSERT_TRUE(cfg);
  auto r = resolve_embedding_route(*cfg, "text-embedding-3-small");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->plan.size(), 1u);
  EXPECT_EQ(r->plan[0].provider, "openai");
}

TEST(EmbeddingRoute, EntriesMustNameKnownProviders) {
  auto cfg = load(R"({"providers": {"openai": {}},
                      "embedding_models": {"m": [{"provider": "nobody", "model": "x"}]}})",
                  {});
  ASSERT_FALSE(cfg);
  EXPECT_NE(cfg.error().message.find("embedding_models.m[0].provider"), std::string::npos)
      << cfg.error().message;
}

}  // namespace
}  // namespace ib::config
