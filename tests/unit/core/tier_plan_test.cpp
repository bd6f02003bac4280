#include "core/tier_plan.hpp"

#include <gtest/gtest.h>

namespace ib {
namespace {

using namespace std::chrono_literals;

const steady_time t0 = steady_time{} + 1000s;

provider_view keyed(breaker_state s = breaker_state::closed) {
  provider_view v;
  v.has_key = true;
  v.state = s;
  return v;
}

TEST(TierPlan, NoKeySkipsBeforeAnythingElse) {
  provider_view v;
  v.state = breaker_state::open;
  v.retry_at = t0 + 10s;
  v.cooldown_until = t0 + 5s;
  auto s = next_step(v, t0);
  EXPECT_EQ(s.kind, step_kind::skip);
  EXPECT_EQ(s.skip_reason, outcome::skipped_no_key);
}

TEST(TierPlan, CooldownSkipsOnlyWhileItRuns) {
  auto v = keyed();
  v.cooldown_until = t0 + 5s;
  auto s = next_step(v, t0);
  EXPECT_EQ(s.skip_reason, outcome::skipped_cooldown);
  EXPECT_EQ(s.until, t0 + 5s);
  EXPECT_EQ(next_step(v, t0 + 5s).kind, step_kind::call);
}

TEST(TierPlan, BreakerStates) {
  EXPECT_EQ(next_step(keyed(), t0).kind, step_kind::call);
  auto open = keyed(breaker_state::open);
  open.retry_at = t0 + 30s;
  auto s = next_step(open, t0);
  EXPECT_EQ(s.kind, step_kind::skip);
  EXPECT_EQ(s.skip_reason, outcome::skipped_circuit_open);
  EXPECT_EQ(s.until, t0 + 30s);
  EXPECT_EQ(next_step(open, t0 + 30s).kind, step_kind::probe);
  EXPECT_EQ(next_step(keyed(breaker_state::half_open), t0).kind, step_kind::probe);
}

TEST(TierPlan, NoKeyForAnyProviderIs424) {
  walk_summary w;
  auto a = decide_exhausted(w, t0);
  EXPECT_EQ(a.code, errc::no_provider_key);
  EXPECT_EQ(http_status(a.code), 424);
  EXPECT_TRUE(a.no_retry);
}

TEST(TierPlan, AllCoolingDownIs429WithTheSoonestEndAndRetriable) {
  walk_summary w;
  w.skipped({step_kind::skip, outcome::skipped_cooldown, t0 + 7s});
  w.skipped({step_kind::skip, outcome::skipped_cooldown, t0 + 2500ms});
  auto a = decide_exhausted(w, t0);
  EXPECT_EQ(a.code, errc::rate_limited);
  EXPECT_FALSE(a.no_retry);
  EXPECT_EQ(a.retry_after_s, 3);
}

TEST(TierPlan, AnyOpenCircuitWithoutAttemptsIs503) {
  walk_summary w;
  w.skipped({step_kind::skip, outcome::skipped_circuit_open, t0 + 20s});
  w.skipped({step_kind::skip, outcome::skipped_cooldown, t0 + 4s});
  auto a = decide_exhausted(w, t0);
  EXPECT_EQ(a.code, errc::unavailable);
  EXPECT_EQ(a.detail_code, "circuit_open");
  EXPECT_TRUE(a.no_retry);
  EXPECT_EQ(a.retry_after_s, 4);
  walk_summary late;
  late.skipped({step_kind::skip, outcome::skipped_circuit_open, t0 - 1s});
  EXPECT_EQ(decide_exhausted(late, t0).retry_after_s, 1);  // never 0
}

TEST(TierPlan, FailedAttemptsAre502UnsupportedOnly400DeadlineIs504) {
  walk_summary w;
  w.keyed = 2;
  w.attempted = 1;
  w.skipped({step_kind::skip, outcome::skipped_circuit_open, t0 + 1s});
  EXPECT_EQ(decide_exhausted(w, t0).code, errc::bad_gateway);
  walk_summary u;
  u.keyed = 1;
  u.unsupported = 1;
  EXPECT_EQ(decide_exhausted(u, t0).code, errc::invalid_request);
  w.deadline = true;
  EXPECT_EQ(decide_exhausted(w, t0).code, errc::gateway_timeout);
}

TEST(TierPlan, AttemptTokens) {
  std::vector<attempt_record> a{
      attempt_of("openai", 503, outcome::server_error, 12),
      attempt_of("groq", 0, outcome::connect_error, 1),
      attempt_of("together", 200, outcome::first_byte_timeout, 300),
      attempt_of("deepseek", 200, outcome::bad_response, 5),
      attempt_of("sarvam", 200, outcome::success, 40),
      {"anthropic", 0, "no_key", 0},
  };
  EXPECT_EQ(attempts_header(a),
            "openai=503;groq=connect_error;together=first_byte_timeout;deepseek=bad_response;"
            "sarvam=200;anthropic=no_key");
  std::string json;
  append_attempts_json(json, {a[0], a[1]});
  EXPECT_EQ(json, R"([{"provider":"openai","status":503,"latency_ms":12},)"
                  R"({"provider":"groq","reason":"connect_error","latency_ms":1}])");
}

}  // namespace
}  // namespace ib
