#include "core/tier_plan.hpp"

#include <gtest/gtest.h>

#include "core/request_record.hpp"

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

// Issue 12, example 3: the final answer must not hide a rate limit.
TEST(TierPlan, EveryKeyedProviderRateLimitedNowOrBeforeIs429) {
  // One provider with a key, answering 429 with Retry-After: 7 in this very request.
  walk_summary one;
  one.keyed = 1;
  one.attempted = 1;
  one.failed(outcome::rate_limited, t0 + 7s);
  auto a = decide_exhausted(one, t0);
  EXPECT_EQ(a.code, errc::rate_limited);
  EXPECT_EQ(http_status(a.code), 429);
  EXPECT_EQ(a.detail_code, "rate_limited");
  EXPECT_FALSE(a.no_retry);
  EXPECT_EQ(a.retry_after_s, 7);

  // One answering 429 now, one skipped for an earlier 429: the soonest end.
  walk_summary mixed;
  mixed.keyed = 1;
  mixed.attempted = 1;
  mixed.failed(outcome::rate_limited, t0 + 9s);
  mixed.skipped({step_kind::skip, outcome::skipped_cooldown, t0 + 4s});
  a = decide_exhausted(mixed, t0);
  EXPECT_EQ(a.code, errc::rate_limited);
  EXPECT_EQ(a.retry_after_s, 4);

  // A provider that cannot express the request does not stand in the way.
  walk_summary with_unsupported = one;
  with_unsupported.keyed = 2;
  with_unsupported.unsupported = 1;
  EXPECT_EQ(decide_exhausted(with_unsupported, t0).code, errc::rate_limited);
}

TEST(TierPlan, ExhaustedQuotaIs429ThatTheSdkMustNotRetry) {
  walk_summary w;
  w.keyed = 1;
  w.attempted = 1;
  w.failed(outcome::rate_limited, t0 + 60s, /*long_cooldown=*/true);
  auto a = decide_exhausted(w, t0);
  EXPECT_EQ(a.code, errc::rate_limited);
  EXPECT_EQ(a.detail_code, "insufficient_quota");
  EXPECT_TRUE(a.no_retry);
  // With another provider merely rate limited, waiting can help: retriable.
  w.keyed = 2;
  w.attempted = 2;
  w.failed(outcome::rate_limited, t0 + 3s);
  a = decide_exhausted(w, t0);
  EXPECT_EQ(a.detail_code, "rate_limited");
  EXPECT_FALSE(a.no_retry);
  EXPECT_EQ(a.retry_after_s, 3);
}

TEST(TierPlan, RateLimitBesideAnotherFailureIs502) {
  walk_summary w;
  w.keyed = 2;
  w.attempted = 2;
  w.failed(outcome::rate_limited, t0 + 7s);
  w.failed(outcome::server_error);
  auto a = decide_exhausted(w, t0);
  EXPECT_EQ(a.code, errc::bad_gateway);
  EXPECT_EQ(a.detail_code, "all_providers_failed");
  EXPECT_TRUE(a.no_retry);
  // Beside an open breaker: 502 too (an attempt was made), not 429.
  walk_summary o;
  o.keyed = 1;
  o.attempted = 1;
  o.failed(outcome::rate_limited, t0 + 7s);
  o.skipped({step_kind::skip, outcome::skipped_circuit_open, t0 + 20s});
  EXPECT_EQ(decide_exhausted(o, t0).code, errc::bad_gateway);
}

TEST(TierPlan, EveryKeyRejectedIs424AndEveryTimeoutIs504) {
  walk_summary keys;
  keys.keyed = 2;
  keys.attempted = 2;
  keys.failed(outcome::key_rejected);
  keys.failed(outcome::key_rejected);
  auto a = decide_exhausted(keys, t0);
  EXPECT_EQ(http_status(a.code), 424);
  EXPECT_EQ(a.detail_code, "provider_key_rejected");
  EXPECT_TRUE(a.no_retry);
  keys.failed(outcome::server_error);
  keys.attempted = 3;
  keys.keyed = 3;
  EXPECT_EQ(decide_exhausted(keys, t0).code, errc::bad_gateway);

  walk_summary slow;
  slow.keyed = 2;
  slow.attempted = 2;
  slow.failed(outcome::first_byte_timeout);
  slow.failed(outcome::connect_timeout);
  a = decide_exhausted(slow, t0);
  EXPECT_EQ(http_status(a.code), 504);
  EXPECT_EQ(a.detail_code, "upstream_timeout");
  EXPECT_TRUE(a.no_retry);
  slow.failed(outcome::reset);
  slow.attempted = 3;
  slow.keyed = 3;
  EXPECT_EQ(decide_exhausted(slow, t0).code, errc::bad_gateway);
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
  EXPECT_EQ(to_envelope(error{errc::bad_gateway, "x"}, {a[0], a[1]}),
            R"({"error":{"message":"x","type":"upstream_error","param":null,"code":null,)"
            R"("inferbridge_attempts":[{"provider":"openai","status":503,"latency_ms":12},)"
            R"({"provider":"groq","reason":"connect_error","latency_ms":1}]}})");
}

}  // namespace
}  // namespace ib
