// Newcomer check (docs/where-things-go.md, "An OpenAI-compatible provider"): a provider the
// gateway does not ship, configured through the config alone, is routed to like any other; and
// the shipped providers are the entries of config/default.json, with no second list in code.
#include <algorithm>
#include <string>

#include <gtest/gtest.h>

#include "config/load.hpp"
#include "config/route.hpp"

namespace ib::config {
namespace {

constexpr std::string_view acme_config = R"({
  "providers": {
    "openai": { "models": ["gpt-6-luna"] },
    "acme": { "base_url": "https://api.acme.example/v1", "models": ["acme-1", "acme-2"] }
  },
  "tiers": {
    "ib/acme-first": [ { "provider": "acme", "model": "acme-1" },
                       { "provider": "openai", "model": "gpt-6-luna" } ]
  }
})";

TEST(ProviderNewcomer, AConfiguredProviderGetsOpenAiDefaults) {
  auto cfg = load(acme_config, {});
  ASSERT_TRUE(cfg) << cfg.error().message;
  const auto* acme = cfg->find_provider("acme");
  ASSERT_NE(acme, nullptr);
  EXPECT_EQ(acme->proto, protocol::openai);
  EXPECT_EQ(acme->auth, auth_style::bearer);
  EXPECT_EQ(acme->dialect, "acme");  // no row in the dialect table: the generic dialect
  EXPECT_EQ(acme->endpoint.host, "api.acme.example");
  EXPECT_EQ(acme->endpoint.path, "/v1");
  EXPECT_TRUE(acme->endpoint.tls);
  EXPECT_EQ(acme->models, (std::vector<std::string>{"acme-1", "acme-2"}));
  EXPECT_TRUE(acme->reasoning_models.empty());
}

TEST(ProviderNewcomer, ItIsRoutedToDirectlyAndThroughATier) {
  auto cfg = load(acme_config, {});
  ASSERT_TRUE(cfg) << cfg.error().message;
  auto direct = resolve_route(*cfg, "acme/acme-2");
  ASSERT_TRUE(direct) << direct.error().message;
  EXPECT_EQ(direct->tier, "");
  ASSERT_EQ(direct->plan.size(), 1u);
  EXPECT_EQ(direct->plan[0].provider, "acme");
  EXPECT_EQ(direct->plan[0].model, "acme-2");
  auto tier = resolve_route(*cfg, "ib/acme-first");
  ASSERT_TRUE(tier) << tier.error().message;
  ASSERT_EQ(tier->plan.size(), 2u);
  EXPECT_EQ(tier->plan[0].provider, "acme");
  EXPECT_EQ(tier->plan[1].provider, "openai");
}

TEST(ProviderNewcomer, ItsBaseUrlComesFromTheEnvironmentToo) {
  auto cfg = load(R"({ "providers": { "acme": { "models": ["acme-1"] } } })",
                  {{"IB_ACME_BASE_URL", "http://127.0.0.1:9001/acme/v1"}});
  ASSERT_TRUE(cfg) << cfg.error().message;
  const auto* acme = cfg->find_provider("acme");
  EXPECT_FALSE(acme->endpoint.tls);
  EXPECT_EQ(acme->endpoint.port, 9001);
  EXPECT_TRUE(cfg->tiers.empty());  // the default tiers name none of its providers
}

TEST(ProviderNewcomer, WithoutABaseUrlTheErrorNamesTheShippedProviders) {
  auto cfg = load(R"({ "providers": { "acme": {} } })", {});
  ASSERT_FALSE(cfg);
  EXPECT_EQ(cfg.error().message,
            "providers.acme.base_url: required for a provider that is not one of openai, "
            "anthropic, groq, deepseek, together, sarvam (or set IB_ACME_BASE_URL)");
}

TEST(ProviderNewcomer, TheShippedProvidersAreTheEntriesOfDefaultJson) {
  // Every provider of the shipped default may be named with just its models: there is no
  // second list of names in code.
  auto shipped = load_default({});
  ASSERT_TRUE(shipped) << shipped.error().message;
  for (const auto& p : shipped->providers) {
    const std::string text = R"({ "providers": { ")" + p.name + R"(": {} } })";
    auto cfg = load(text, {});
    ASSERT_TRUE(cfg) << p.name << ": " << cfg.error().message;
    const auto& got = cfg->providers.front();
    EXPECT_EQ(got.base_url, p.base_url) << p.name;
    EXPECT_EQ(got.proto, p.proto) << p.name;
    EXPECT_EQ(got.auth, p.auth) << p.name;
    EXPECT_EQ(got.anthropic_version, p.anthropic_version) << p.name;
    EXPECT_EQ(got.dialect, p.dialect) << p.name;
    EXPECT_EQ(got.reasoning_models, p.reasoning_models) << p.name;
    EXPECT_TRUE(got.models.empty()) << p.name << ": models are the user's to list";
  }
}

}  // namespace
}  // namespace ib::config
