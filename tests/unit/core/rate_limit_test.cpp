#include "core/rate_limit.hpp"

#include <atomic>
#include <chrono>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace ib {
namespace {

using namespace std::chrono_literals;
using std::chrono::nanoseconds;

const rate_time t0 = rate_time{} + 1000h;

// -- token_bucket ---------------------------------------------------------------------------------

TEST(TokenBucket, StartsFullAndRefillsContinuously) {
  token_bucket b(60, 1min, t0);  // one per second
  EXPECT_DOUBLE_EQ(b.level(t0), 60);
  for (int i = 0; i < 60; ++i) {
    ASSERT_TRUE(b.take(1, t0)) << i;
  }
  EXPECT_FALSE(b.take(1, t0));
  EXPECT_EQ(b.time_until(1, t0), 1s);
  EXPECT_FALSE(b.take(1, t0 + 999ms));
  EXPECT_TRUE(b.take(1, t0 + 1s));
  EXPECT_NEAR(b.level(t0 + 1500ms), 0.5, 1e-9);
  // Never above the capacity, however long it idles.
  EXPECT_DOUBLE_EQ(b.level(t0 + 24h), 60);
  EXPECT_TRUE(b.is_full(t0 + 24h));
}

TEST(TokenBucket, ChargeGoesIntoDebtAndTheDebtIsWaitedOut) {
  token_bucket b(100, 1min, t0);
  b.charge(250, t0);  // an answer larger than the whole bucket
  EXPECT_DOUBLE_EQ(b.level(t0), -150);
  // 151 tokens at 100/min: 90.6 s until one token is back.
  EXPECT_EQ(b.time_until(1, t0), nanoseconds(90'600'000'000));
  EXPECT_EQ(b.time_until_full(t0), 150s);
  EXPECT_FALSE(b.take(1, t0 + 90s));
  EXPECT_TRUE(b.take(1, t0 + 91s));
}

TEST(TokenBucket, AnEarlierNowDoesNotRewindTheBucket) {
  token_bucket b(60, 1min, t0);
  ASSERT_TRUE(b.take(60, t0 + 10s));
  // Another thread read the clock before this one but took the lock after it.
  EXPECT_FALSE(b.take(1, t0 + 5s));
  EXPECT_DOUBLE_EQ(b.level(t0 + 10s), 0);
  EXPECT_NEAR(b.level(t0 + 11s), 1, 1e-9);
}

TEST(TokenBucket, ResizeKeepsTheLevelWithinTheNewCapacity) {
  token_bucket b(10, 1min, t0);
  b.resize(4, 1min, t0);
  EXPECT_DOUBLE_EQ(b.level(t0), 4);
  b.resize(8, 1min, t0);
  EXPECT_DOUBLE_EQ(b.level(t0), 4);
  EXPECT_EQ(b.time_until_full(t0), 30s);
}

// -- text -----------------------------------------------------------------------------------------

TEST(RateLimitText, ResetInOpenAIsDurationFormat) {
  EXPECT_EQ(format_reset(0ns), "0s");
  EXPECT_EQ(format_reset(-5s), "0s");
  EXPECT_EQ(format_reset(1ns), "1ms");  // rounded up: waiting this long is always enough
  EXPECT_EQ(format_reset(12ms), "12ms");
  EXPECT_EQ(format_reset(120ms), "120ms");
  EXPECT_EQ(format_reset(999ms), "999ms");
  EXPECT_EQ(format_reset(1s), "1s");
  EXPECT_EQ(format_reset(1500ms), "1.5s");
  EXPECT_EQ(format_reset(2050ms), "2.05s");
  EXPECT_EQ(format_reset(17'001ms), "17.001s");
  EXPECT_EQ(format_reset(60s), "1m0s");
  EXPECT_EQ(format_reset(6min), "6m0s");  // the guide's example
  EXPECT_EQ(format_reset(61s + 250ms), "1m1.25s");
  EXPECT_EQ(format_reset(1h), "1h0m0s");
  EXPECT_EQ(format_reset(1h + 2min + 3s), "1h2m3s");
}

TEST(RateLimitText, RetryAfterIsWholeSecondsRoundedUpAtLeastOne) {
  EXPECT_EQ(retry_after_seconds(0ns), 1);
  EXPECT_EQ(retry_after_seconds(1ns), 1);
  EXPECT_EQ(retry_after_seconds(1s), 1);
  EXPECT_EQ(retry_after_seconds(1s + 1ns), 2);
  EXPECT_EQ(retry_after_seconds(20s), 20);
  EXPECT_EQ(retry_after_seconds(90'600ms), 91);
}

TEST(RateLimitText, HeadersInOpenAIsNamesOnlyForTheLimitsOn) {
  user_limiter l;
  auto a = l.admit("u", {.requests_per_minute = 3, .tokens_per_minute = 1000}, t0);
  ASSERT_EQ(a.refused, refusal::none);
  auto h = rate_limit_headers(a);
  ASSERT_EQ(h.size(), 6u);
  EXPECT_EQ(h[0], (std::pair<std::string_view, std::string>{"x-ratelimit-limit-requests", "3"}));
  EXPECT_EQ(h[1].first, "x-ratelimit-remaining-requests");
  EXPECT_EQ(h[1].second, "2");
  EXPECT_EQ(h[2].first, "x-ratelimit-reset-requests");
  EXPECT_EQ(h[2].second, "20s");  // one request back at 3/min
  EXPECT_EQ(h[3].second, "1000");
  EXPECT_EQ(h[4].first, "x-ratelimit-remaining-tokens");
  EXPECT_EQ(h[4].second, "1000");
  EXPECT_EQ(h[5].first, "x-ratelimit-reset-tokens");
  EXPECT_EQ(h[5].second, "0s");

  auto only_inflight = l.admit("v", {.max_inflight = 2}, t0);
  EXPECT_TRUE(rate_limit_headers(only_inflight).empty());
}

// -- user_limiter ---------------------------------------------------------------------------------

TEST(UserLimiter, RequestsPerMinuteRefusesThenRecovers) {
  user_limiter l;
  const user_limits lim{.requests_per_minute = 3};
  for (int i = 0; i < 3; ++i) {
    auto a = l.admit("u", lim, t0);
    ASSERT_EQ(a.refused, refusal::none) << i;
    EXPECT_EQ(a.requests.remaining, 2 - i);
  }
  auto a = l.admit("u", lim, t0);
  EXPECT_EQ(a.refused, refusal::requests);
  EXPECT_EQ(a.retry_after, 20s);
  EXPECT_FALSE(a.ticket);
  EXPECT_EQ(a.requests.remaining, 0);
  EXPECT_EQ(a.requests.reset, 60s);
  // Another user is not affected.
  EXPECT_EQ(l.admit("w", lim, t0).refused, refusal::none);
  EXPECT_EQ(l.admit("u", lim, t0 + 19s).refused, refusal::requests);
  EXPECT_EQ(l.admit("u", lim, t0 + 20s).refused, refusal::none);
}

TEST(UserLimiter, TokensAreChargedAfterTheAnswerAndTheNextRequestWaits) {
  user_limiter l;
  const user_limits lim{.tokens_per_minute = 600};  // 10 per second
  auto a = l.admit("u", lim, t0);
  ASSERT_EQ(a.refused, refusal::none);
  // A second request may start while the first runs: its tokens are not known yet.
  auto b = l.admit("u", lim, t0);
  ASSERT_EQ(b.refused, refusal::none);
  a.ticket.finish(500, t0 + 1s);
  b.ticket.finish(200, t0 + 1s);  // the bucket is now in debt: 600 - 700 = -100
  auto c = l.admit("u", lim, t0 + 1s);
  EXPECT_EQ(c.refused, refusal::tokens);
  EXPECT_EQ(c.retry_after, 10100ms);  // 101 tokens at 10/s
  EXPECT_EQ(c.tokens.remaining, 0);
  EXPECT_EQ(c.tokens.reset, 70s);
  EXPECT_EQ(l.admit("u", lim, t0 + 11s).refused, refusal::tokens);
  EXPECT_EQ(l.admit("u", lim, t0 + 1s + 10100ms).refused, refusal::none);
}

TEST(UserLimiter, ARefusedRequestTakesNothing) {
  user_limiter l;
  const user_limits lim{.requests_per_minute = 60, .max_inflight = 1};
  auto a = l.admit("u", lim, t0);
  ASSERT_EQ(a.refused, refusal::none);
  EXPECT_EQ(a.requests.remaining, 59);
  auto b = l.admit("u", lim, t0);
  EXPECT_EQ(b.refused, refusal::inflight);
  EXPECT_EQ(b.retry_after, 1s);
  EXPECT_EQ(b.requests.remaining, 59);  // no request token taken
  EXPECT_EQ(l.inflight("u"), 1u);
}

TEST(UserLimiter, InflightSlotsAreHeldUntilFinishedOrDropped) {
  user_limiter l;
  const user_limits lim{.max_inflight = 2};
  auto a = l.admit("u", lim, t0);
  auto b = l.admit("u", lim, t0);
  ASSERT_TRUE(a.ticket);
  ASSERT_TRUE(b.ticket);
  EXPECT_EQ(l.admit("u", lim, t0).refused, refusal::inflight);
  EXPECT_EQ(l.inflight("u"), 2u);
  a.ticket.finish(0, t0);
  a.ticket.finish(0, t0);  // idempotent
  EXPECT_EQ(l.inflight("u"), 1u);
  {
    limit_ticket moved = std::move(b.ticket);
    EXPECT_FALSE(b.ticket);
    EXPECT_EQ(l.inflight("u"), 1u);
  }  // dropped without finishing (a request that died): the slot is freed all the same
  EXPECT_EQ(l.inflight("u"), 0u);
  EXPECT_EQ(l.admit("u", lim, t0).refused, refusal::none);
}

TEST(UserLimiter, InflightCountIsExactUnderConcurrency) {
  user_limiter l;
  const user_limits lim{.requests_per_minute = 1'000'000, .max_inflight = 4};
  constexpr int threads = 8;
  constexpr int rounds = 5000;
  std::atomic<int> over{0};
  std::atomic<int> admitted{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      std::mt19937 rng(t);
      std::vector<limit_ticket> held;
      for (int i = 0; i < rounds; ++i) {
        auto a = l.admit("shared", lim, t0 + std::chrono::microseconds(i));
        if (a.ticket) {
          ++admitted;
          if (l.inflight("shared") > lim.max_inflight) {
            ++over;
          }
          held.push_back(std::move(a.ticket));
        }
        // Finish (success), drop (cancel, failure) in any order.
        while (!held.empty() && rng() % 2 == 0) {
          if (rng() % 2 == 0) {
            held.back().finish(3, t0);
          }
          held.pop_back();
        }
      }
    });
  }
  for (auto& th : pool) {
    th.join();
  }
  EXPECT_GT(admitted.load(), 0);
  EXPECT_EQ(over.load(), 0);
  EXPECT_EQ(l.inflight("shared"), 0u);
}

TEST(UserLimiter, IdleUsersAreForgotten) {
  user_limiter l;
  const user_limits lim{.requests_per_minute = 10};
  for (int i = 0; i < 20'000; ++i) {
    (void)l.admit("user" + std::to_string(i), lim, t0 + std::chrono::seconds(i));
  }
  // Every user's bucket is full again 6 s after its request: only recent users are kept.
  EXPECT_LT(l.tracked(), 64u * 64u * 2u);
  // A user with a request in flight is never forgotten.
  auto held = l.admit("busy", {.max_inflight = 1}, t0 + 200'000s);
  ASSERT_TRUE(held.ticket);
  for (int i = 0; i < 20'000; ++i) {
    (void)l.admit("later" + std::to_string(i), lim, t0 + 300'000s + std::chrono::seconds(i));
  }
  EXPECT_EQ(l.inflight("busy"), 1u);
  EXPECT_EQ(l.admit("busy", {.max_inflight = 1}, t0 + 500'000s).refused, refusal::inflight);
}

// -- keyed_limiter --------------------------------------------------------------------------------

TEST(KeyedLimiter, PerKeyPerHour) {
  keyed_limiter l;
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(l.take("10.0.0.1", 3, t0).first) << i;
  }
  auto [ok, wait] = l.take("10.0.0.1", 3, t0);
  EXPECT_FALSE(ok);
  EXPECT_EQ(wait, 20min);
  EXPECT_TRUE(l.take("10.0.0.2", 3, t0).first);
  EXPECT_TRUE(l.take("10.0.0.1", 3, t0 + 20min).first);
  // 0: off, nothing tracked.
  keyed_limiter off;
  for (int i = 0; i < 100; ++i) {
    EXPECT_TRUE(off.take("10.0.0.1", 0, t0).first);
  }
  EXPECT_EQ(off.tracked(), 0u);
}

TEST(KeyedLimiter, MemoryIsBounded) {
  keyed_limiter l(100);
  for (int i = 0; i < 10'000; ++i) {
    (void)l.take("addr" + std::to_string(i), 5, t0);  // none full again: the flood case
  }
  EXPECT_LE(l.tracked(), 100u);
  // Addresses whose bucket refilled go first.
  keyed_limiter m(100);
  for (int i = 0; i < 99; ++i) {
    (void)m.take("old" + std::to_string(i), 5, t0);
  }
  (void)m.take("recent", 5, t0 + 2h);
  (void)m.take("recent", 5, t0 + 2h);
  (void)m.take("new", 5, t0 + 2h);  // the map is full: the 99 refilled addresses go
  EXPECT_EQ(m.tracked(), 2u);
}

}  // namespace
}  // namespace ib
