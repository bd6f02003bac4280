#include "config/config.hpp"

#include <iterator>
#include <random>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

namespace ib::config {
namespace {

struct url_case {
  std::string_view text;
  bool tls;
  std::string_view host;
  std::uint16_t port;
  std::string_view path;
};

TEST(ParseUrl, Accepts) {
  const url_case cases[] = {
      {"https://api.openai.com/v1", true, "api.openai.com", 443, "/v1"},
      {"http://127.0.0.1/v1", false, "127.0.0.1", 80, "/v1"},
      {"http://127.0.0.1:9001/openai/v1", false, "127.0.0.1", 9001, "/openai/v1"},
      {"https://api.groq.com/openai/v1/", true, "api.groq.com", 443, "/openai/v1"},
      {"https://api.deepseek.com", true, "api.deepseek.com", 443, ""},
      {"https://api.deepseek.com/", true, "api.deepseek.com", 443, ""},
      {"https://api.deepseek.com//", true, "api.deepseek.com", 443, ""},
      {"HTTPS://API.Example.COM:8443/V1", true, "api.example.com", 8443, "/V1"},
      {"http://[::1]:9001/v1", false, "::1", 9001, "/v1"},
      {"https://[2001:db8::1]/v1", true, "2001:db8::1", 443, "/v1"},
      {"http://localhost:65535", false, "localhost", 65535, ""},
      {"http://mock_provider:80/x", false, "mock_provider", 80, "/x"},
  };
  for (const auto& c : cases) {
    const auto u = parse_url(c.text);
    ASSERT_TRUE(u) << c.text << ": " << u.error().message;
    EXPECT_EQ(u->tls, c.tls) << c.text;
    EXPECT_EQ(u->host, c.host) << c.text;
    EXPECT_EQ(u->port, c.port) << c.text;
    EXPECT_EQ(u->path, c.path) << c.text;
  }
}

TEST(ParseUrl, Rejects) {
  const std::string_view cases[] = {
      "",
      "api.openai.com/v1",                 // not absolute
      "ftp://example.com/v1",              // scheme
      "ws://example.com",                  // scheme
      "https://",                          // no host
      "https:///v1",                       // no host
      "https://:443/v1",                   // no host
      "https://user:pw@example.com/v1",    // userinfo
      "https://example.com/v1?key=1",      // query
      "https://example.com/v1#frag",       // fragment
      "https://example.com:0/v1",          // port 0
      "https://example.com:65536/v1",      // port range
      "https://example.com:99999999999/",  // port overflow
      "https://example.com:/v1",           // empty port
      "https://example.com:80a/v1",        // port digits
      "https://exa mple.com/v1",           // space
      "https://example.com/v 1",           // space in the path
      "https://[::1/v1",                   // unclosed IPv6
      "https://[zz::1]/v1",                // bad IPv6
      "https://[::1]x/v1",                 // junk after ]
      "https://999.1.1.1/v1",              // bad IPv4
      "https://1.2.3/v1",                  // bad IPv4
      "https://exa$mple.com/v1",           // bad host character
      "https://example..com/v1",           // empty label
  };
  for (const auto text : cases) {
    const auto u = parse_url(text);
    EXPECT_FALSE(u) << text;
    if (!u) {
      EXPECT_FALSE(u.error().message.empty()) << text;
    }
  }
}

TEST(ParseUrl, MessagesSayWhatIsWrong) {
  EXPECT_NE(parse_url("ftp://x.com").error().message.find("http"), std::string::npos);
  EXPECT_NE(parse_url("https://a:b@x.com").error().message.find("userinfo"), std::string::npos);
  EXPECT_NE(parse_url("https://x.com/?a=1").error().message.find("query"), std::string::npos);
  EXPECT_NE(parse_url("https:///v1").error().message.find("host"), std::string::npos);
}

TEST(ParseHostPort, AcceptsAndRejects) {
  struct hp_case {
    std::string_view text;
    std::string_view host;
    std::uint16_t port;
  };
  const hp_case good[] = {
      {"127.0.0.1:8080", "127.0.0.1", 8080}, {"0.0.0.0:0", "0.0.0.0", 0},
      {"localhost:9000", "localhost", 9000}, {"[::1]:8080", "::1", 8080},
      {"[::]:65535", "::", 65535},           {"gateway.internal:443", "gateway.internal", 443},
  };
  for (const auto& c : good) {
    const auto hp = parse_host_port(c.text);
    ASSERT_TRUE(hp) << c.text << ": " << hp.error().message;
    EXPECT_EQ(hp->host, c.host) << c.text;
    EXPECT_EQ(hp->port, c.port) << c.text;
  }
  for (const std::string_view bad :
       {"", "8080", ":8080", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1",
        "127.0.0.1:80x", "::1:8080", "[::1]", "[::1]8080", "256.0.0.1:80", "a b:80",
        "http://127.0.0.1:80", "[xyz]:80"}) {
    EXPECT_FALSE(parse_host_port(bad)) << bad;
  }
}

TEST(Config, EnumNames) {
  EXPECT_EQ(to_string(protocol::openai), "openai");
  EXPECT_EQ(to_string(protocol::anthropic), "anthropic");
  EXPECT_EQ(to_string(auth_style::bearer), "bearer");
  EXPECT_EQ(to_string(auth_style::x_api_key), "x-api-key");
  EXPECT_EQ(to_string(auth_style::api_subscription_key), "api-subscription-key");
}

TEST(Config, FindProviderAndTier) {
  config cfg;
  cfg.providers.push_back({.name = "openai"});
  cfg.providers.push_back({.name = "groq"});
  cfg.tiers.push_back({"ib/cheap", {{"groq", "llama-3.1-8b-instant"}}});
  ASSERT_NE(cfg.find_provider("groq"), nullptr);
  EXPECT_EQ(cfg.find_provider("groq")->name, "groq");
  EXPECT_EQ(cfg.find_provider("sarvam"), nullptr);
  EXPECT_EQ(cfg.find_provider(""), nullptr);
  ASSERT_NE(cfg.find_tier("ib/cheap"), nullptr);
  EXPECT_EQ(cfg.find_tier("ib/cheap")->entries.front().provider, "groq");
  EXPECT_EQ(cfg.find_tier("ib/premium"), nullptr);
}

TEST(Config, DefaultsMatchDesign) {
  const config cfg;
  EXPECT_EQ(cfg.server.listen, "127.0.0.1:8080");
  EXPECT_EQ(cfg.server.port, 8080);
  EXPECT_EQ(cfg.data_dir, "./data");
  EXPECT_EQ(cfg.signup, signup_mode::open);
  EXPECT_EQ(cfg.limits_.max_body_bytes, 4194304u);
  EXPECT_EQ(cfg.limits_.request_timeout, milliseconds{120000});
  EXPECT_EQ(cfg.limits_.max_json_depth, 64);
  EXPECT_EQ(cfg.cooldown.default_cooldown, milliseconds{10000});
  EXPECT_EQ(cfg.cooldown.max_cooldown, milliseconds{60000});
  EXPECT_FALSE(cfg.metrics_public);
}

TEST(ParseUrl, RandomBytesNeverCrash) {
  std::mt19937 rng{3};
  const std::string_view seeds[] = {"https://api.openai.com/v1", "http://[::1]:9001/openai/v1",
                                    "127.0.0.1:8080", "[::1]:0"};
  for (int i = 0; i < 20000; ++i) {
    std::string s{seeds[static_cast<std::size_t>(i) % std::size(seeds)]};
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits; ++e) {
      s[rng() % s.size()] = static_cast<char>(rng() % 256);
    }
    if (const auto u = parse_url(s)) {
      EXPECT_FALSE(u->host.empty()) << s;
      EXPECT_GT(u->port, 0) << s;
      EXPECT_TRUE(u->path.empty() || u->path.back() != '/') << s;
    }
    if (const auto hp = parse_host_port(s)) {
      EXPECT_FALSE(hp->host.empty()) << s;
    }
  }
}

}  // namespace
}  // namespace ib::config
