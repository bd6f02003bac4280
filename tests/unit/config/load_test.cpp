#include "config/load.hpp"

#include <algorithm>
#include <cstdlib>
#include <iterator>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace ib::config {
namespace {

using std::chrono::milliseconds;

std::string tier_text(const tier& t) {
  std::string out;
  for (const auto& e : t.entries) {
    out += (out.empty() ? "" : " -> ") + e.provider + "/" + e.model;
  }
  return out;
}

std::vector<std::string> provider_names(const config& cfg) {
  std::vector<std::string> out;
  for (const auto& p : cfg.providers) {
    out.push_back(p.name);
  }
  return out;
}

/// Loads `json`, expecting success.
config load_ok(std::string_view json, const env_map& env = {}) {
  auto cfg = load(json, env);
  EXPECT_TRUE(cfg) << json << "\n  -> " << (cfg ? "" : cfg.error().message);
  return cfg ? std::move(*cfg) : config{};
}

/// Loads `json`, expecting a failure; returns its message.
std::string load_error(std::string_view json, const env_map& env = {}) {
  auto cfg = load(json, env);
  EXPECT_FALSE(cfg) << json;
  return cfg ? std::string{} : cfg.error().message;
}

// -- the shipped default ----------------------------------------------------------------------

TEST(LoadDefault, LoadsUnedited) {
  const auto cfg = load_default({});
  ASSERT_TRUE(cfg) << cfg.error().message;
  EXPECT_EQ(cfg->server.listen, "127.0.0.1:8080");
  EXPECT_EQ(cfg->server.host, "127.0.0.1");
  EXPECT_EQ(cfg->server.port, 8080);
  EXPECT_EQ(cfg->data_dir, "./data");
  EXPECT_EQ(cfg->signup, signup_mode::open);
  EXPECT_TRUE(cfg->master_keys.empty());
  EXPECT_EQ(cfg->limits_.max_body_bytes, 4194304u);
  EXPECT_EQ(cfg->limits_.request_timeout, milliseconds{120000});
  EXPECT_EQ(provider_names(*cfg), (std::vector<std::string>{"openai", "anthropic", "groq",
                                                            "deepseek", "together", "sarvam"}));
}

TEST(LoadDefault, ThreeTiersInOrder) {
  const auto cfg = load_default({});
  ASSERT_TRUE(cfg) << cfg.error().message;
  ASSERT_EQ(cfg->tiers.size(), 3u);
  EXPECT_EQ(cfg->tiers[0].name, "ib/cheap");
  EXPECT_EQ(cfg->tiers[1].name, "ib/balanced");
  EXPECT_EQ(cfg->tiers[2].name, "ib/premium");
  EXPECT_EQ(tier_text(cfg->tiers[0]),
            "groq/openai/gpt-oss-20b -> deepseek/deepseek-flash -> "
            "together/meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo -> sarvam/sarvam-30b -> "
            "openai/gpt-6-luna");
  EXPECT_EQ(tier_text(cfg->tiers[1]),
            "openai/gpt-6-luna -> sarvam/sarvam-105b -> anthropic/claude-haiku-4-5");
  EXPECT_EQ(tier_text(cfg->tiers[2]), "anthropic/claude-sonnet-4-6 -> openai/gpt-6.1-sol");
  EXPECT_EQ(cfg->find_tier("ib/balanced"), &cfg->tiers[1]);
}

TEST(LoadDefault, ProvidersAsDocumented) {
  const auto cfg = load_default({});
  ASSERT_TRUE(cfg) << cfg.error().message;
  struct expect {
    std::string_view name;
    protocol proto;
    std::string_view base_url;
    auth_style auth;
    std::string_view host;
    std::string_view path;
  };
  const expect table[] = {
      {"openai", protocol::openai, "https://api.openai.com/v1", auth_style::bearer,
       "api.openai.com", "/v1"},
      {"anthropic", protocol::anthropic, "https://api.anthropic.com/v1", auth_style::x_api_key,
       "api.anthropic.com", "/v1"},
      {"groq", protocol::openai, "https://api.groq.com/openai/v1", auth_style::bearer,
       "api.groq.com", "/openai/v1"},
      {"deepseek", protocol::openai, "https://api.deepseek.com/v1", auth_style::bearer,
       "api.deepseek.com", "/v1"},
      {"together", protocol::openai, "https://api.together.xyz/v1", auth_style::bearer,
       "api.together.xyz", "/v1"},
      {"sarvam", protocol::openai, "https://api.sarvam.ai/v1", auth_style::api_subscription_key,
       "api.sarvam.ai", "/v1"},
  };
  for (const auto& e : table) {
    const auto* p = cfg->find_provider(e.name);
    ASSERT_NE(p, nullptr) << e.name;
    EXPECT_EQ(p->proto, e.proto) << e.name;
    EXPECT_EQ(p->base_url, e.base_url) << e.name;
    EXPECT_EQ(p->auth, e.auth) << e.name;
    EXPECT_TRUE(p->endpoint.tls) << e.name;
    EXPECT_EQ(p->endpoint.host, e.host) << e.name;
    EXPECT_EQ(p->endpoint.port, 443) << e.name;
    EXPECT_EQ(p->endpoint.path, e.path) << e.name;
    EXPECT_EQ(p->timeouts_ms.connect, milliseconds{3000}) << e.name;
    EXPECT_EQ(p->timeouts_ms.first_byte, milliseconds{30000}) << e.name;
    EXPECT_EQ(p->timeouts_ms.total, milliseconds{120000}) << e.name;
    EXPECT_EQ(p->pool_size, 64) << e.name;
    EXPECT_EQ(p->dialect, e.name);
    EXPECT_FALSE(p->models.empty()) << e.name;
  }
  EXPECT_EQ(cfg->find_provider("anthropic")->anthropic_version, "2023-06-01");
  const auto& sarvam = cfg->find_provider("sarvam")->models;
  EXPECT_EQ(sarvam, (std::vector<std::string>{"sarvam-30b", "sarvam-105b"}));
  EXPECT_EQ(std::find(sarvam.begin(), sarvam.end(), "sarvam-m"), sarvam.end());
  EXPECT_EQ(cfg->find_provider("openai")->models,
            (std::vector<std::string>{"gpt-6-luna", "gpt-6.1-sol"}));
}

TEST(LoadDefault, NoRetiredOrRetiringDefaultModels) {
  // Checked 2026-11-30 (see the comments in config/default.json): each id below is retired, or
  // retires before 2027-01-15, and must not come back as a default.
  const auto cfg = load_default({});
  ASSERT_TRUE(cfg) << cfg.error().message;
  for (const std::string_view gone :
       {"gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-4.1-mini", "claude-sonnet-4-5",
        "claude-sonnet-4-5-20250929", "claude-opus-4-1", "llama-3.1-8b-instant",
        "llama-3.3-70b-versatile", "deepseek-chat", "deepseek-reasoner", "sarvam-m"}) {
    for (const auto& p : cfg->providers) {
      EXPECT_EQ(std::find(p.models.begin(), p.models.end(), gone), p.models.end())
          << p.name << ": " << gone;
    }
    for (const auto& t : cfg->tiers) {
      for (const auto& e : t.entries) {
        EXPECT_NE(e.model, gone) << t.name;
      }
    }
  }
}

TEST(LoadDefault, BreakerAndCooldownAsDesigned) {
  const auto cfg = load_default({});
  ASSERT_TRUE(cfg) << cfg.error().message;
  const breaker_config defaults;
  EXPECT_EQ(cfg->breaker.consecutive_failures, 5);
  EXPECT_EQ(cfg->breaker.window, 20);
  EXPECT_EQ(cfg->breaker.window_span, milliseconds{30000});
  EXPECT_EQ(cfg->breaker.failure_ratio, 0.5);
  EXPECT_EQ(cfg->breaker.min_requests, 10);
  EXPECT_EQ(cfg->breaker.cooldown, milliseconds{30000});
  EXPECT_EQ(cfg->breaker.max_cooldown, milliseconds{300000});
  EXPECT_EQ(cfg->breaker.probe_timeout, defaults.probe_timeout);
  EXPECT_EQ(cfg->cooldown.default_cooldown, milliseconds{10000});
  EXPECT_EQ(cfg->cooldown.max_cooldown, milliseconds{60000});
  EXPECT_EQ(cfg->request_log.max_age_days, 30);
  EXPECT_EQ(cfg->request_log.max_age_seconds(), 30 * 86'400);
  EXPECT_EQ(cfg->log.level, log_level::info);
  EXPECT_EQ(cfg->log.format, log_format::json);
  EXPECT_FALSE(cfg->metrics_public);
}

TEST(LoadDefault, EmptyObjectEqualsTheDefault) {
  const auto a = load_ok("{}");
  const auto b = load_default({});
  ASSERT_TRUE(b);
  EXPECT_EQ(provider_names(a), provider_names(*b));
  ASSERT_EQ(a.tiers.size(), b->tiers.size());
  for (std::size_t i = 0; i < a.tiers.size(); ++i) {
    EXPECT_EQ(tier_text(a.tiers[i]), tier_text(b->tiers[i]));
  }
}

TEST(LoadDefault, DescribeListsTheResolvedConfig) {
  const auto cfg = load_default({{"IB_MASTER_KEY", "a,b"}});
  ASSERT_TRUE(cfg) << cfg.error().message;
  const auto text = describe(*cfg);
  for (const std::string_view needle : {
           "127.0.0.1:8080",
           "./data",
           "signup:      open",
           "IB_MASTER_KEY (2 keys)",
           "openai: openai, https://api.openai.com/v1, auth bearer",
           "sarvam: openai, https://api.sarvam.ai/v1, auth api-subscription-key, models: "
           "sarvam-30b, sarvam-105b",
           "anthropic: anthropic, https://api.anthropic.com/v1",
           "ib/balanced: openai/gpt-6-luna -> sarvam/sarvam-105b -> anthropic/claude-haiku-4-5",
           "ib/premium: anthropic/claude-sonnet-4-6 -> openai/gpt-6.1-sol",
       }) {
    EXPECT_NE(text.find(needle), std::string::npos) << needle << "\n" << text;
  }
  // The tiers come in config order.
  EXPECT_LT(text.find("ib/cheap:"), text.find("ib/balanced:"));
  EXPECT_LT(text.find("ib/balanced:"), text.find("ib/premium:"));
  // Never a secret.
  EXPECT_EQ(text.find("a,b"), std::string::npos);
}

// -- environment --------------------------------------------------------------------------------

TEST(LoadEnv, Overrides) {
  const env_map env = {
      {"IB_LISTEN", "0.0.0.0:0"},
      {"IB_DATA_DIR", "/var/lib/inferbridge"},
      {"IB_MASTER_KEY", " k1 , ,k2,, k3 "},
      {"IB_ADMIN_TOKEN", "s3cret-token"},
      {"IB_OPENAI_BASE_URL", "http://127.0.0.1:9001/openai/v1"},
      {"IB_SARVAM_BASE_URL", "http://127.0.0.1:9001/sarvam/v1/"},
      {"IB_UNRELATED", "x"},
  };
  const auto cfg = load_ok(R"({"signup": "admin"})", env);
  EXPECT_EQ(cfg.server.host, "0.0.0.0");
  EXPECT_EQ(cfg.server.port, 0);
  EXPECT_EQ(cfg.server.listen, "0.0.0.0:0");
  EXPECT_EQ(cfg.data_dir, "/var/lib/inferbridge");
  EXPECT_EQ(cfg.master_keys, (std::vector<std::string>{"k1", "k2", "k3"}));
  EXPECT_EQ(cfg.admin_token, "s3cret-token");
  EXPECT_EQ(cfg.signup, signup_mode::admin);
  const auto* openai = cfg.find_provider("openai");
  ASSERT_NE(openai, nullptr);
  EXPECT_EQ(openai->base_url, "http://127.0.0.1:9001/openai/v1");
  EXPECT_FALSE(openai->endpoint.tls);
  EXPECT_EQ(openai->endpoint.host, "127.0.0.1");
  EXPECT_EQ(openai->endpoint.port, 9001);
  EXPECT_EQ(openai->endpoint.path, "/openai/v1");
  EXPECT_EQ(cfg.find_provider("sarvam")->endpoint.path, "/sarvam/v1");
  // Untouched providers keep their URL.
  EXPECT_EQ(cfg.find_provider("groq")->base_url, "https://api.groq.com/openai/v1");
}

TEST(LoadEnv, LogLevelOverridesTheConfig) {
  const auto json = R"({"log": {"level": "error", "format": "text"}})";
  EXPECT_EQ(load_ok(json).log.level, log_level::error);
  for (auto [text, level] : {std::pair{"debug", log_level::debug},
                             {"info", log_level::info},
                             {"warn", log_level::warn},
                             {"error", log_level::error}}) {
    const auto cfg = load_ok(json, {{"IB_LOG_LEVEL", text}});
    EXPECT_EQ(cfg.log.level, level) << text;
    EXPECT_EQ(cfg.log.format, log_format::text);  // only the level comes from the variable
  }
  EXPECT_EQ(load_ok(json, {{"IB_LOG_LEVEL", " "}}).log.level, log_level::error);  // unset
  EXPECT_EQ(load_error("{}", {{"IB_LOG_LEVEL", "loud"}}),
            R"(IB_LOG_LEVEL: expected "debug", "info", "warn" or "error")");
}

TEST(LoadStore, LmdbUnlessADatabaseUrlIsGiven) {
  const auto lmdb = load_ok("{}");
  EXPECT_EQ(lmdb.store.kind, store_kind::lmdb);
  EXPECT_EQ(lmdb.store.resync_interval, std::chrono::milliseconds(30'000));
  EXPECT_EQ(lmdb.store.timeout, std::chrono::milliseconds(3'000));
  EXPECT_EQ(lmdb.store.max_buffered_records, 100'000U);

  const std::string url = "postgresql://ib:secret@db.internal:5432/ib?sslmode=verify-full";
  const auto pg = load_ok("{}", {{"IB_DATABASE_URL", url}, {"IB_MASTER_KEY", "k"}});
  EXPECT_EQ(pg.store.kind, store_kind::postgres);
  EXPECT_EQ(pg.store.url, url);
  // describe() names the store but never prints the URL (it may hold a password).
  const auto text = describe(pg);
  EXPECT_NE(text.find("store:       postgres"), std::string::npos) << text;
  EXPECT_EQ(text.find("secret"), std::string::npos) << text;

  const auto file = load_ok(
      R"({"store": {"kind": "postgres", "url": "postgresql:///ib", "resync_interval_ms": 500,
                    "timeout_ms": 1500, "max_buffered_records": 7, "probe_lease_ms": 900}})",
      {{"IB_MASTER_KEY", "k"}});
  EXPECT_EQ(file.store.kind, store_kind::postgres);
  EXPECT_EQ(file.store.url, "postgresql:///ib");
  EXPECT_EQ(file.store.resync_interval, std::chrono::milliseconds(500));
  EXPECT_EQ(file.store.timeout, std::chrono::milliseconds(1500));
  EXPECT_EQ(file.store.max_buffered_records, 7U);
  EXPECT_EQ(file.store.probe_lease, std::chrono::milliseconds(900));
}

TEST(LoadStore, PostgresNeedsAUrlAndASharedMasterKey) {
  EXPECT_EQ(load_error(R"({"store": {"kind": "postgres"}})", {{"IB_MASTER_KEY", "k"}}),
            R"(store.url: required when "kind" is "postgres" (or set IB_DATABASE_URL))");
  EXPECT_NE(load_error("{}", {{"IB_DATABASE_URL", "postgresql:///ib"}}).find("IB_MASTER_KEY"),
            std::string::npos);
  EXPECT_EQ(load_error(R"({"store": {"kind": "sqlite"}})"),
            R"(store.kind: expected "lmdb" or "postgres")");
  EXPECT_NE(load_error(R"({"store": {"kinds": "lmdb"}})").find("store"), std::string::npos);
}

TEST(LoadPassthrough, BodyLimitDefaultsToOpenAIsAudioLimit) {
  EXPECT_EQ(load_ok("{}").limits_.max_passthrough_body_bytes, 25U * 1024 * 1024);
  EXPECT_EQ(load_ok(R"({"limits": {"max_passthrough_body_bytes": 1000}})")
                .limits_.max_passthrough_body_bytes,
            1000U);
  EXPECT_FALSE(load(R"({"limits": {"max_passthrough_body_bytes": 0}})", {}));
}

TEST(LoadHardening, LimitsRateLimitsAndTls) {
  const auto d = load_ok("{}");
  EXPECT_EQ(d.limits_.max_header_count, 100U);
  EXPECT_EQ(d.limits_.max_url_bytes, 8192U);
  EXPECT_EQ(d.limits_.max_messages, 2048U);
  EXPECT_EQ(d.limits_.max_connections, 4096U);
  EXPECT_EQ(d.limits_.max_inflight_per_user, 1024U);
  EXPECT_EQ(d.rate_limits.requests_per_minute, 0);
  EXPECT_EQ(d.rate_limits.tokens_per_minute, 0);
  EXPECT_EQ(d.rate_limits.signups_per_hour, 30);
  EXPECT_FALSE(d.tls.enabled());
  EXPECT_EQ(d.store.lmdb_map_size, std::size_t{1} << 32);

  const auto c = load_ok(R"({
    "limits": {"max_header_count": 10, "max_url_bytes": 100, "max_messages": 3,
               "max_connections": 7, "max_inflight_per_user": 0},
    "rate_limits": {"requests_per_minute": 60, "tokens_per_minute": 1000, "signups_per_hour": 0},
    "tls": {"cert_file": "/c.pem", "key_file": "/k.pem"},
    "store": {"lmdb_map_size_bytes": 1048576}})");
  EXPECT_EQ(c.limits_.max_header_count, 10U);
  EXPECT_EQ(c.limits_.max_url_bytes, 100U);
  EXPECT_EQ(c.limits_.max_messages, 3U);
  EXPECT_EQ(c.limits_.max_connections, 7U);
  EXPECT_EQ(c.limits_.max_inflight_per_user, 0U);
  EXPECT_EQ(c.rate_limits.requests_per_minute, 60);
  EXPECT_EQ(c.rate_limits.tokens_per_minute, 1000);
  EXPECT_EQ(c.rate_limits.signups_per_hour, 0);
  EXPECT_TRUE(c.tls.enabled());
  EXPECT_EQ(c.tls.cert_file, "/c.pem");
  EXPECT_EQ(c.tls.key_file, "/k.pem");
  EXPECT_EQ(c.store.lmdb_map_size, 1048576U);

  const auto e = load_ok("{}", {{"IB_TLS_CERT_FILE", "/a.pem"},
                                {"IB_TLS_KEY_FILE", "/b.pem"},
                                {"IB_SIGNUPS_PER_HOUR", "5"}});
  EXPECT_EQ(e.tls.cert_file, "/a.pem");
  EXPECT_EQ(e.tls.key_file, "/b.pem");
  EXPECT_EQ(e.rate_limits.signups_per_hour, 5);

  EXPECT_NE(load_error(R"({"tls": {"cert_file": "/c.pem"}})").find("tls: give both"),
            std::string::npos);
  EXPECT_NE(load_error("{}", {{"IB_SIGNUPS_PER_HOUR", "-1"}}).find("IB_SIGNUPS_PER_HOUR"),
            std::string::npos);
  EXPECT_NE(load_error(R"({"limits": {"max_connections": 0}})").find("limits.max_connections"),
            std::string::npos);
  EXPECT_NE(load_error(R"({"rate_limits": {"per_second": 1}})").find("rate_limits"),
            std::string::npos);
  EXPECT_NE(load_error(R"({"store": {"lmdb_map_size_bytes": 10}})").find("lmdb_map_size_bytes"),
            std::string::npos);
}

TEST(LoadSections, MaxAgeInSecondsReplacesDays) {
  const auto cfg = load_ok(R"({"request_log": {"max_age_days": 7, "max_age_s": 2}})");
  EXPECT_EQ(cfg.request_log.max_age_seconds(), 2);
  const auto text = describe(load_ok(R"({"log": {"level": "debug", "format": "text"}})"));
  EXPECT_NE(text.find("log:         debug, text on stdout"), std::string::npos) << text;
}

TEST(LoadEnv, IPv6ListenAndEmptyValues) {
  const auto cfg = load_ok("{}", {{"IB_LISTEN", "[::1]:9090"},
                                  {"IB_DATA_DIR", ""},
                                  {"IB_MASTER_KEY", " , "},
                                  {"IB_ADMIN_TOKEN", "  "}});
  EXPECT_EQ(cfg.server.host, "::1");
  EXPECT_EQ(cfg.server.port, 9090);
  EXPECT_EQ(cfg.data_dir, "./data");
  EXPECT_TRUE(cfg.master_keys.empty());
  EXPECT_TRUE(cfg.admin_token.empty());
}

TEST(LoadEnv, ProviderNamesBecomeVariableNames) {
  const auto cfg = load_ok(R"({
    "providers": { "my-llm.v2": { "base_url": "https://llm.example.com/v1" } },
    "tiers": { "fast": [ { "provider": "my-llm.v2", "model": "m" } ] }
  })",
                           {{"IB_MY_LLM_V2_BASE_URL", "http://127.0.0.1:7000/v1"}});
  EXPECT_EQ(cfg.providers.at(0).base_url, "http://127.0.0.1:7000/v1");
  EXPECT_EQ(cfg.providers.at(0).endpoint.port, 7000);
}

TEST(LoadEnv, ErrorsNameTheVariable) {
  EXPECT_EQ(load_error("{}", {{"IB_LISTEN", "nonsense"}}).rfind("IB_LISTEN: expected HOST:PORT", 0),
            0u);
  EXPECT_EQ(load_error("{}", {{"IB_GROQ_BASE_URL", "ftp://x"}}).rfind("IB_GROQ_BASE_URL: ", 0), 0u);
  EXPECT_NE(load_error(R"({"signup": "admin"})").find("IB_ADMIN_TOKEN"), std::string::npos);
  EXPECT_EQ(load_error(R"({"signup": "admin"})").rfind("signup: ", 0), 0u);
}

TEST(LoadEnv, CustomProviderBaseUrlMayComeFromTheEnvironment) {
  const auto json = R"({ "providers": { "local": { "models": ["x"] } },
                         "tiers": { "t": [ { "provider": "local", "model": "x" } ] } })";
  const auto msg = load_error(json);
  EXPECT_EQ(msg.rfind("providers.local.base_url: required", 0), 0u) << msg;
  EXPECT_NE(msg.find("IB_LOCAL_BASE_URL"), std::string::npos) << msg;
  const auto cfg = load_ok(json, {{"IB_LOCAL_BASE_URL", "http://127.0.0.1:1234"}});
  EXPECT_EQ(cfg.providers.at(0).endpoint.port, 1234);
}

TEST(LoadEnv, ProcessEnvCopiesOnlyIbVariables) {
  ASSERT_EQ(::setenv("IB_TEST_PROCESS_ENV", "a=b", 1), 0);
  ASSERT_EQ(::setenv("NOT_IB_TEST_PROCESS_ENV", "x", 1), 0);
  const auto env = process_env();
  ::unsetenv("IB_TEST_PROCESS_ENV");
  ::unsetenv("NOT_IB_TEST_PROCESS_ENV");
  ASSERT_EQ(env.count("IB_TEST_PROCESS_ENV"), 1u);
  EXPECT_EQ(env.at("IB_TEST_PROCESS_ENV"), "a=b");
  EXPECT_EQ(env.count("NOT_IB_TEST_PROCESS_ENV"), 0u);
  for (const auto& [name, value] : env) {
    EXPECT_EQ(name.rfind("IB_", 0), 0u) << name;
  }
}

// -- syntax
// ----------------------------------------------------------------------------------------

TEST(LoadSyntax, CommentsAndTrailingCommas) {
  const auto cfg = load_ok(R"(
    // a line comment
    {
      /* a block
         comment */
      "listen": "127.0.0.1:9000", // after a value
      "limits": { "max_body_bytes": 1024, },
      "providers": {
        "groq": { "models": ["llama-3.1-8b-instant",], },
      },
      "tiers": { "ib/cheap": [ { "provider": "groq", "model": "llama-3.1-8b-instant", }, ], },
    }
  )");
  EXPECT_EQ(cfg.server.port, 9000);
  EXPECT_EQ(cfg.limits_.max_body_bytes, 1024u);
  ASSERT_EQ(cfg.providers.size(), 1u);
  EXPECT_EQ(cfg.providers[0].models, (std::vector<std::string>{"llama-3.1-8b-instant"}));
}

TEST(LoadSyntax, ParseErrorsGiveLineAndColumn) {
  const auto msg = load_error("{\n  \"listen\": \"x:1\"\n  \"data_dir\": \"d\"\n}");
  EXPECT_EQ(msg.rfind("config: invalid JSON at line 3", 0), 0u) << msg;
  EXPECT_EQ(load_error("[]"), "config: expected a JSON object");
  EXPECT_EQ(load_error("").rfind("config: invalid JSON", 0), 0u);
  EXPECT_EQ(load_error("{} {}").rfind("config: invalid JSON", 0), 0u);
  EXPECT_EQ(load_error("{\"data_dir\": \"\xff\"}").rfind("config: invalid JSON", 0), 0u);
}

TEST(LoadSyntax, DeepNestingDoesNotRecurse) {
  std::string deep = "{\"limits\": ";
  for (int i = 0; i < 100000; ++i) {
    deep += '[';
  }
  const auto msg = load_error(deep);
  EXPECT_EQ(msg.rfind("config: invalid JSON", 0), 0u) << msg.substr(0, 100);
  std::string closed = "{\"limits\": ";
  closed.append(50000, '[');
  closed.append(50000, ']');
  closed += '}';
  EXPECT_EQ(load_error(closed), "limits: expected an object");
}

// -- replacing providers and tiers ---------------------------------------------------------------

TEST(LoadReplace, ProvidersAndTiersReplaceTheDefaults) {
  const auto cfg = load_ok(R"({
    "providers": {
      "groq": { "models": ["llama-3.1-8b-instant"] },
      "openai": { "base_url": "http://127.0.0.1:9001/openai/v1", "pool_size": 2,
                  "timeouts_ms": { "first_byte": 500 } }
    },
    "tiers": {
      "fast": [ { "provider": "openai", "model": "mock-ok" },
                { "provider": "groq", "model": "llama-3.1-8b-instant" } ],
      "ib/x": [ { "provider": "groq", "model": "m" } ]
    }
  })");
  EXPECT_EQ(provider_names(cfg), (std::vector<std::string>{"groq", "openai"}));
  const auto* groq = cfg.find_provider("groq");
  EXPECT_EQ(groq->base_url, "https://api.groq.com/openai/v1");  // known-name default
  EXPECT_EQ(groq->auth, auth_style::bearer);
  const auto* openai = cfg.find_provider("openai");
  EXPECT_EQ(openai->pool_size, 2);
  EXPECT_EQ(openai->timeouts_ms.first_byte, milliseconds{500});
  EXPECT_EQ(openai->timeouts_ms.connect, milliseconds{3000});
  EXPECT_TRUE(openai->models.empty());
  ASSERT_EQ(cfg.tiers.size(), 2u);
  EXPECT_EQ(cfg.tiers[0].name, "fast");
  EXPECT_EQ(tier_text(cfg.tiers[0]), "openai/mock-ok -> groq/llama-3.1-8b-instant");
  EXPECT_EQ(cfg.tiers[1].name, "ib/x");
  EXPECT_EQ(cfg.find_tier("ib/cheap"), nullptr);
}

TEST(LoadReplace, OpenAiReasoningModelsAreBuiltInAndReplaceable) {
  auto cfg = load_ok(R"({
    "providers": { "openai": {}, "groq": {} },
    "tiers": { "t": [ { "provider": "openai", "model": "gpt-6-luna" } ] }
  })");
  EXPECT_EQ(cfg.find_provider("openai")->reasoning_models,
            (std::vector<std::string>{"gpt-6", "gpt-5", "o1", "o3", "o4"}));
  EXPECT_TRUE(cfg.find_provider("groq")->reasoning_models.empty());
  cfg = load_ok(R"({
    "providers": { "openai": { "reasoning_models": ["gpt-7"] } },
    "tiers": { "t": [ { "provider": "openai", "model": "gpt-7-x" } ] }
  })");
  EXPECT_EQ(cfg.find_provider("openai")->reasoning_models, (std::vector<std::string>{"gpt-7"}));
}

TEST(LoadReplace, KnownNamesGiveProtocolAuthAndUrl) {
  const auto cfg = load_ok(R"({
    "providers": { "anthropic": {}, "sarvam": {}, "together": {}, "deepseek": {} },
    "tiers": { "t": [ { "provider": "anthropic", "model": "claude-haiku-4-5" } ] }
  })");
  const auto* a = cfg.find_provider("anthropic");
  EXPECT_EQ(a->proto, protocol::anthropic);
  EXPECT_EQ(a->auth, auth_style::x_api_key);
  EXPECT_EQ(a->base_url, "https://api.anthropic.com/v1");
  EXPECT_EQ(cfg.find_provider("sarvam")->auth, auth_style::api_subscription_key);
  EXPECT_EQ(cfg.find_provider("together")->base_url, "https://api.together.xyz/v1");
  EXPECT_EQ(cfg.find_provider("deepseek")->base_url, "https://api.deepseek.com/v1");
}

TEST(LoadReplace, CustomProviderDefaultsFollowProtocol) {
  const auto cfg = load_ok(R"({
    "providers": {
      "claude-proxy": { "protocol": "anthropic", "base_url": "https://proxy.example.com/v1",
                        "anthropic_version": "2024-01-01", "dialect": "anthropic" },
      "vllm": { "base_url": "http://10.0.0.5:8000/v1", "auth": "api_subscription_key" }
    },
    "tiers": { "t": [ { "provider": "vllm", "model": "m" } ] }
  })");
  const auto* proxy = cfg.find_provider("claude-proxy");
  EXPECT_EQ(proxy->auth, auth_style::x_api_key);
  EXPECT_EQ(proxy->anthropic_version, "2024-01-01");
  EXPECT_EQ(proxy->dialect, "anthropic");
  const auto* vllm = cfg.find_provider("vllm");
  EXPECT_EQ(vllm->proto, protocol::openai);
  EXPECT_EQ(vllm->auth, auth_style::api_subscription_key);
  EXPECT_EQ(vllm->dialect, "vllm");
}

TEST(LoadReplace, OnlyProvidersGivenKeepsDefaultTiersForThoseProviders) {
  const auto cfg = load_ok(R"({ "providers": { "openai": {}, "anthropic": {} } })");
  ASSERT_EQ(cfg.tiers.size(), 3u);
  EXPECT_EQ(tier_text(cfg.tiers[0]), "openai/gpt-6-luna");
  EXPECT_EQ(tier_text(cfg.tiers[1]), "openai/gpt-6-luna -> anthropic/claude-haiku-4-5");
  EXPECT_EQ(tier_text(cfg.tiers[2]), "anthropic/claude-sonnet-4-6 -> openai/gpt-6.1-sol");
  const auto groq_only = load_ok(R"({ "providers": { "groq": {} } })");
  ASSERT_EQ(groq_only.tiers.size(), 1u);
  EXPECT_EQ(groq_only.tiers[0].name, "ib/cheap");
}

TEST(LoadReplace, OnlyTiersGivenUsesDefaultProviders) {
  const auto cfg =
      load_ok(R"({ "tiers": { "mine": [ { "provider": "sarvam", "model": "sarvam-30b" } ] } })");
  EXPECT_EQ(cfg.providers.size(), 6u);
  ASSERT_EQ(cfg.tiers.size(), 1u);
  EXPECT_EQ(cfg.tiers[0].name, "mine");
}

TEST(LoadSections, ScalarsAndSections) {
  const auto cfg = load_ok(R"({
    "listen": "[::1]:0",
    "data_dir": "/srv/inferbridge",
    "limits": { "max_body_bytes": 100, "request_timeout_ms": 5000, "max_json_depth": 8,
                "max_header_bytes": 4096, "client_read_timeout_ms": 1000,
                "client_idle_timeout_ms": 2000, "max_upstream_body_bytes": 1000000 },
    "server": { "io_threads": 2, "actor_threads": 0 },
    "breaker": { "consecutive_failures": 2, "window": 4, "window_ms": 1000, "failure_ratio": 1,
                 "min_requests": 4, "cooldown_ms": 100, "max_cooldown_ms": 400,
                 "probe_timeout_ms": 50 },
    "cooldown": { "default_ms": 5, "max_ms": 6 },
    "request_log": { "max_age_days": 7, "max_records_per_user": 3 },
    "log": { "level": "warn", "format": "text" },
    "metrics": { "public": true }
  })");
  EXPECT_EQ(cfg.server.host, "::1");
  EXPECT_EQ(cfg.server.port, 0);
  EXPECT_EQ(cfg.data_dir, "/srv/inferbridge");
  EXPECT_EQ(cfg.limits_.max_body_bytes, 100u);
  EXPECT_EQ(cfg.limits_.request_timeout, milliseconds{5000});
  EXPECT_EQ(cfg.limits_.max_json_depth, 8);
  EXPECT_EQ(cfg.limits_.max_header_bytes, 4096u);
  EXPECT_EQ(cfg.limits_.client_read_timeout, milliseconds{1000});
  EXPECT_EQ(cfg.limits_.client_idle_timeout, milliseconds{2000});
  EXPECT_EQ(cfg.limits_.max_upstream_body_bytes, 1000000u);
  EXPECT_EQ(cfg.server.io_threads, 2);
  EXPECT_EQ(cfg.server.actor_threads, 0);
  EXPECT_EQ(cfg.breaker.consecutive_failures, 2);
  EXPECT_EQ(cfg.breaker.window, 4);
  EXPECT_EQ(cfg.breaker.window_span, milliseconds{1000});
  EXPECT_EQ(cfg.breaker.failure_ratio, 1.0);
  EXPECT_EQ(cfg.breaker.min_requests, 4);
  EXPECT_EQ(cfg.breaker.cooldown, milliseconds{100});
  EXPECT_EQ(cfg.breaker.max_cooldown, milliseconds{400});
  EXPECT_EQ(cfg.breaker.probe_timeout, milliseconds{50});
  EXPECT_EQ(cfg.cooldown.default_cooldown, milliseconds{5});
  EXPECT_EQ(cfg.cooldown.max_cooldown, milliseconds{6});
  EXPECT_EQ(cfg.request_log.max_age_days, 7);
  EXPECT_EQ(cfg.request_log.max_records_per_user, 3);
  EXPECT_EQ(cfg.request_log.max_age_seconds(), 7 * 86'400);
  EXPECT_EQ(cfg.log.level, log_level::warn);
  EXPECT_EQ(cfg.log.format, log_format::text);
  EXPECT_TRUE(cfg.metrics_public);
  // Fields not given keep their defaults.
  const auto partial = load_ok(R"({ "breaker": { "cooldown_ms": 1000 } })");
  EXPECT_EQ(partial.breaker.cooldown, milliseconds{1000});
  EXPECT_EQ(partial.breaker.consecutive_failures, 5);
  EXPECT_EQ(partial.limits_.max_body_bytes, 4194304u);
}

// -- validation: every error names its field -----------------------------------------------------

struct error_case {
  std::string_view json;
  std::string_view message;  ///< the whole message, or its beginning when it ends with '*'
};

TEST(LoadValidation, ErrorsNameTheField) {
  const error_case cases[] = {
      // unknown fields
      {R"({"lissen": "x"})", R"(lissen: unknown field (did you mean "listen"?))"},
      {R"({"colour": 1})", "colour: unknown field"},
      {R"({"limits": {"max_body_byte": 1}})",
       R"(limits.max_body_byte: unknown field (did you mean "max_body_bytes"?))"},
      {R"({"providers": {"openai": {"timeout_ms": {}}}})",
       R"(providers.openai.timeout_ms: unknown field (did you mean "timeouts_ms"?))"},
      {R"({"providers": {"openai": {"timeouts_ms": {"conect": 1}}}})",
       R"(providers.openai.timeouts_ms.conect: unknown field (did you mean "connect"?))"},
      {R"({"tiers": {"t": [{"provider": "openai", "model": "m", "weight": 2}]}})",
       "tiers.t[0].weight: unknown field"},
      {R"({"listen": "x", "listen": "y"})", "listen: duplicate field"},
      {R"({"server": {"listen": "127.0.0.1:1"}})", "server.listen: unknown field"},
      // listen and scalars
      {R"({"listen": "localhost"})", "listen: expected HOST:PORT*"},
      {R"({"listen": "127.0.0.1:70000"})", "listen: expected HOST:PORT*"},
      {R"({"listen": 8080})", "listen: expected HOST:PORT*"},
      {R"({"data_dir": ""})", "data_dir: expected a non-empty string"},
      {R"({"data_dir": 3})", "data_dir: expected a non-empty string"},
      {R"({"signup": "closed"})", R"(signup: expected "open" or "admin")"},
      {R"({"metrics": {"public": "yes"}})", "metrics.public: expected true or false"},
      {R"({"metrics": true})", "metrics: expected an object"},
      // limits and server
      {R"({"limits": {"max_body_bytes": 0}})",
       "limits.max_body_bytes: expected a positive integer"},
      {R"({"limits": {"request_timeout_ms": -5}})",
       "limits.request_timeout_ms: expected a positive integer"},
      {R"({"limits": {"max_json_depth": 1.5}})",
       "limits.max_json_depth: expected a positive integer"},
      {R"({"limits": {"max_json_depth": 100000}})",
       "limits.max_json_depth: expected an integer from 1 to 10000"},
      {R"({"server": {"io_threads": -1}})", "server.io_threads: expected a non-negative integer"},
      // providers
      {R"({"providers": {"openai": {"timeouts_ms": {"connect": 0}}}})",
       "providers.openai.timeouts_ms.connect: expected a positive integer"},
      {R"({"providers": {"openai": {"timeouts_ms": {"first_byte": "30s"}}}})",
       "providers.openai.timeouts_ms.first_byte: expected a positive integer"},
      {R"({"providers": {"openai": {"timeouts_ms": {"total": 99999999999}}}})",
       "providers.openai.timeouts_ms.total: expected an integer from 1 to 2147483647"},
      {R"({"providers": {"openai": {"pool_size": 0}}})",
       "providers.openai.pool_size: expected an integer from 1 to 10000"},
      {R"({"providers": {"openai": {"pool_size": 10001}}})",
       "providers.openai.pool_size: expected an integer from 1 to 10000"},
      {R"({"providers": {"openai": {"protocol": "grpc"}}})",
       R"(providers.openai.protocol: expected "openai" or "anthropic")"},
      {R"({"providers": {"openai": {"auth": "basic"}}})",
       R"(providers.openai.auth: expected "bearer", "x-api-key" or "api-subscription-key")"},
      {R"({"providers": {"openai": {"base_url": "ftp://api.openai.com/v1"}}})",
       "providers.openai.base_url: expected an absolute http:// or https:// URL"},
      {R"({"providers": {"openai": {"base_url": "https://api.openai.com/v1?x=1"}}})",
       "providers.openai.base_url: expected a URL without a query or fragment"},
      {R"({"providers": {"openai": {"base_url": ""}}})",
       "providers.openai.base_url: expected a non-empty string"},
      {R"({"providers": {"openai": {"models": "gpt-4o"}}})",
       "providers.openai.models: expected an array of model ids"},
      {R"({"providers": {"openai": {"models": ["a", 1]}}})",
       "providers.openai.models[1]: expected a non-empty string"},
      {R"({"providers": {"openai": {"models": ["a", "a"]}}})",
       R"(providers.openai.models[1]: duplicate model "a")"},
      {R"({"providers": {"openai": {"anthropic_version": ""}}})",
       "providers.openai.anthropic_version: expected a non-empty string"},
      {R"({"providers": {"openai": 1}})", "providers.openai: expected an object"},
      {R"({"providers": []})", "providers: expected an object*"},
      {R"({"providers": {}})", "providers: expected at least one provider"},
      {R"({"providers": {"OpenAI": {}}})", "providers.OpenAI: expected a provider name*"},
      {R"({"providers": {"a/b": {"base_url": "http://x"}}})",
       "providers.a/b: expected a provider name*"},
      {R"({"providers": {"openai": {}, "openai": {}}})", "providers.openai: defined twice"},
      {R"({"providers": {"my-x": {"base_url": "http://x"}, "my_x": {"base_url": "http://y"}}})",
       "providers.my_x: shares the variable IB_MY_X_BASE_URL*"},
      {R"({"providers": {"custom": {}}})", "providers.custom.base_url: required*"},
      // tiers
      {R"({"tiers": {"ib/balanced": [{"provider": "openai", "model": "a"}, {"provider": "foo", "model": "b"}]}})",
       R"(tiers.ib/balanced[1].provider: unknown provider "foo")"},
      {R"({"tiers": {"t": []}})", "tiers.t: expected a non-empty array*"},
      {R"({"tiers": {"t": {}}})", "tiers.t: expected a non-empty array*"},
      {R"({"tiers": {"my tier": [{"provider": "openai", "model": "m"}]}})",
       "tiers.my tier: expected a non-empty tier name without spaces"},
      {R"({"tiers": {"": [{"provider": "openai", "model": "m"}]}})",
       R"(tiers."": expected a non-empty tier name without spaces)"},
      {R"({"tiers": {"t": [{"provider": "openai"}]}})", "tiers.t[0].model: required"},
      {R"({"tiers": {"t": [{"model": "m"}]}})", "tiers.t[0].provider: required"},
      {R"({"tiers": {"t": [{"provider": "openai", "model": ""}]}})",
       "tiers.t[0].model: expected a non-empty string"},
      {R"({"tiers": {"t": ["openai/gpt-4o"]}})", "tiers.t[0]: expected an object"},
      {R"({"tiers": {"openai/fast": [{"provider": "openai", "model": "m"}]}})",
       "tiers.openai/fast: a tier name must not start with a provider name*"},
      {R"({"tiers": {"t": [{"provider": "openai", "model": "m"}], "t": [{"provider": "openai", "model": "m"}]}})",
       "tiers.t: defined twice"},
      {R"({"tiers": 1})", "tiers: expected an object*"},
      // breaker and cooldown
      {R"({"breaker": {"failure_ratio": 0}})",
       "breaker.failure_ratio: expected a number above 0 and at most 1"},
      {R"({"breaker": {"failure_ratio": 1.5}})",
       "breaker.failure_ratio: expected a number above 0 and at most 1"},
      {R"({"breaker": {"failure_ratio": "half"}})",
       "breaker.failure_ratio: expected a number above 0 and at most 1"},
      {R"({"breaker": {"consecutive_failures": 0}})",
       "breaker.consecutive_failures: expected a positive integer"},
      {R"({"breaker": {"window_ms": 0}})", "breaker.window_ms: expected a positive integer"},
      {R"({"breaker": {"probe_timeout_ms": 0}})",
       "breaker.probe_timeout_ms: expected a positive integer"},
      {R"({"breaker": {"min_requests": 30}})",
       "breaker.min_requests: must not exceed breaker.window (20)"},
      {R"({"breaker": {"window": 5}})",
       "breaker.window: must be at least breaker.min_requests (10)"},
      {R"({"breaker": {"cooldown_ms": 400000}})",
       "breaker.cooldown_ms: must not exceed breaker.max_cooldown_ms (300000)"},
      {R"({"breaker": {"max_cooldown_ms": 1000}})",
       "breaker.max_cooldown_ms: must be at least breaker.cooldown_ms (30000)"},
      {R"({"cooldown": {"default_ms": 0}})", "cooldown.default_ms: expected a positive integer"},
      {R"({"cooldown": {"max_ms": 1}})",
       "cooldown.max_ms: must be at least cooldown.default_ms (10000)"},
      {R"({"cooldown": {"default_ms": 70000}})",
       "cooldown.default_ms: must not exceed cooldown.max_ms (60000)"},
      {R"({"request_log": {"max_age_days": 0}})",
       "request_log.max_age_days: expected a positive integer"},
      {R"({"request_log": {"keep": 1}})", "request_log.keep: unknown field"},
      {R"({"request_log": {"max_age_s": 0}})",
       "request_log.max_age_s: expected a positive integer"},
      {R"({"log": {"level": "verbose"}})",
       R"(log.level: expected "debug", "info", "warn" or "error")"},
      {R"({"log": {"format": "logfmt"}})", R"(log.format: expected "json" or "text")"},
      {R"({"log": {"file": "x"}})", "log.file: unknown field"},
  };
  for (const auto& c : cases) {
    // A config that gives only `providers` keeps the default tiers that fit them, so each case
    // fails on its own field.
    std::string expected{c.message};
    const auto msg = load_error(c.json);
    if (!expected.empty() && expected.back() == '*') {
      expected.pop_back();
      EXPECT_EQ(msg.substr(0, expected.size()), expected) << c.json;
    } else {
      EXPECT_EQ(msg, expected) << c.json;
    }
  }
}

TEST(LoadValidation, ErrorsCarryTheFieldAsParam) {
  auto cfg = load(R"({"limits": {"max_body_bytes": 0}})", {});
  ASSERT_FALSE(cfg);
  EXPECT_EQ(cfg.error().code, errc::invalid_request);
  EXPECT_EQ(cfg.error().param, "limits.max_body_bytes");
}

// -- random input
// ----------------------------------------------------------------------------------

TEST(LoadRandom, MutatedDefaultNeverCrashes) {
  std::mt19937 rng{7};
  const std::string base{default_json()};
  const std::string_view junk[] = {"{",  "}",       "[",    "]",     ",",    ":",
                                   "\"", "0",       "-1",   "1e999", "null", "//",
                                   "/*", "\\u0000", "true", "\xff",  " "};
  int loaded = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string s = base;
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits; ++e) {
      const auto at = rng() % s.size();
      switch (rng() % 3) {
        case 0:
          s[at] = static_cast<char>(rng() % 256);
          break;
        case 1:
          s.erase(at, 1 + rng() % 8);
          break;
        default:
          s.insert(at, junk[rng() % std::size(junk)]);
          break;
      }
    }
    const auto cfg = load(s, {});
    if (cfg) {
      ++loaded;  // a harmless edit (inside a comment, a model id...) still loads
    } else {
      EXPECT_FALSE(cfg.error().message.empty());
    }
  }
  EXPECT_GT(loaded, 0);
}

TEST(LoadRandom, RandomBytesNeverCrash) {
  std::mt19937 rng{11};
  for (int i = 0; i < 3000; ++i) {
    std::string s(rng() % 64, '\0');
    for (auto& c : s) {
      c = static_cast<char>(rng() % 256);
    }
    if (i % 2 == 0 && !s.empty()) {
      s.front() = '{';
    }
    (void)load(s, {{"IB_LISTEN", s}, {"IB_OPENAI_BASE_URL", s}});
  }
}

}  // namespace
}  // namespace ib::config
