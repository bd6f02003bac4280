// The registry exposes every metric of metrics/names.hpp (design.md §7) with the right type and
// labels, and counts what its writers report.
#include "metrics/registry.hpp"

#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "metrics/names.hpp"

namespace ib::metrics {
namespace {

request_record sample_record() {
  request_record r;
  r.id = "req_1";
  r.user_id = "usr_1";
  r.tier = "ib/balanced";
  r.model = "ib/balanced";
  r.provider = "sarvam";
  r.upstream_model = "sarvam-105b";
  r.attempts = {{"openai", 503, {}, 4}, {"groq", 0, "no_key", 0}, {"sarvam", 200, {}, 9}};
  r.status = 200;
  r.latency_ms = 15;
  r.ttfb_ms = 15;
  r.tokens = usage{10, 5, 15, 0};
  return r;
}

/// A registry that every writer has written to once.
std::string exposition_after_one_of_each(registry& reg) {
  reg.observe_request(sample_record());
  reg.observe_attempt("openai", outcome::server_error, 0.004);
  reg.observe_attempt("sarvam", outcome::success, 0.009);
  reg.set_circuit_state("openai", breaker_state::open);
  reg.inflight_add(1);
  return reg.serialize();
}

TEST(MetricNames, FollowPrometheusConventions) {
  for (const auto& m : names::all) {
    EXPECT_TRUE(m.name.starts_with("inferbridge_")) << m.name;
    if (m.type == "counter") {
      EXPECT_TRUE(m.name.ends_with("_total")) << m.name;
    }
    if (m.type == "histogram") {
      EXPECT_TRUE(m.name.ends_with("_seconds")) << m.name;
    }
    EXPECT_FALSE(m.help.empty()) << m.name;
    for (std::string_view forbidden : {"user", "email", "key"}) {
      EXPECT_EQ(m.labels.find(forbidden), std::string_view::npos) << m.name;
    }
  }
}

TEST(Registry, ExposesEveryNamedMetricWithItsType) {
  registry reg;
  const auto text = exposition_after_one_of_each(reg);
  for (const auto& m : names::all) {
    EXPECT_NE(text.find("# TYPE " + std::string(m.name) + " " + std::string(m.type)),
              std::string::npos)
        << m.name << "\n"
        << text;
  }
}

TEST(Registry, CountsWhatItsWritersReport) {
  registry reg;
  const auto text = exposition_after_one_of_each(reg);
  for (
      std::string_view series : {
          R"(inferbridge_requests_total{code="200",provider="sarvam",tier="ib/balanced"} 1)",
          R"(inferbridge_fallbacks_total{from_provider="openai",reason="503",tier="ib/balanced"} 1)",
          R"(inferbridge_tokens_total{kind="prompt",provider="sarvam"} 10)",
          R"(inferbridge_tokens_total{kind="completion",provider="sarvam"} 5)",
          R"(inferbridge_upstream_attempts_total{outcome="server_error",provider="openai"} 1)",
          R"(inferbridge_upstream_attempts_total{outcome="success",provider="sarvam"} 1)",
          R"(inferbridge_circuit_state{provider="openai"} 2)",
          "inferbridge_inflight_requests 1",
      }) {
    EXPECT_NE(text.find(series), std::string::npos) << series << "\n" << text;
  }
  // A skip (groq=no_key) is not a fallback.
  EXPECT_EQ(text.find(R"(from_provider="groq")"), std::string::npos) << text;
}

TEST(Registry, ConcurrentWritersLoseNothing) {
  registry reg;
  constexpr int threads = 4;
  constexpr int each = 2000;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&reg] {
      for (int i = 0; i < each; ++i) {
        reg.observe_attempt("openai", outcome::success, 0.001);
        reg.inflight_add(1);
        reg.inflight_add(-1);
      }
    });
  }
  for (auto& th : pool) {
    th.join();
  }
  const auto text = reg.serialize();
  EXPECT_NE(
      text.find(R"(inferbridge_upstream_attempts_total{outcome="success",provider="openai"} 8000)"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("inferbridge_inflight_requests 0"), std::string::npos) << text;
}

}  // namespace
}  // namespace ib::metrics
