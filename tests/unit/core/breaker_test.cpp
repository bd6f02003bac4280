#include "core/breaker.hpp"

#include <chrono>
#include <cstdint>
#include <iterator>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "tests/unit/core/breaker_support.hpp"

namespace ib {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

using namespace breaker_support;

// -- states and transitions --------------------------------------------------------------------

TEST(Breaker, DefaultsMatchDesign) {
  const breaker_config cfg;
  EXPECT_EQ(cfg.consecutive_failures, 5);
  EXPECT_EQ(cfg.window, 20);
  EXPECT_EQ(cfg.window_span, 30s);
  EXPECT_EQ(cfg.failure_ratio, 0.5);
  EXPECT_EQ(cfg.min_requests, 10);
  EXPECT_EQ(cfg.cooldown, 30s);
  EXPECT_EQ(cfg.max_cooldown, 5min);
  breaker b;
  EXPECT_EQ(b.state(t0), closed);
  EXPECT_EQ(b.current_cooldown(), 30s);
}

TEST(Breaker, StateNames) {
  EXPECT_EQ(to_string(closed), "closed");
  EXPECT_EQ(to_string(half_open), "half_open");
  EXPECT_EQ(to_string(open), "open");
}

TEST(Breaker, HouseStyleExample) {
  auto b = breaker{{.consecutive_failures = 2, .cooldown = 30s}};
  (void)b.record(outcome::server_error, t0);
  (void)b.record(outcome::server_error, t0);
  EXPECT_FALSE(b.admit(t0 + 29s));
  EXPECT_TRUE(b.admit(t0 + 30s));   // half-open: the one probe
  EXPECT_FALSE(b.admit(t0 + 30s));  // nobody else until it reports
}

TEST(Breaker, ClosedAdmitsEverything) {
  breaker b;
  for (int i = 0; i < 1000; ++i) {
    EXPECT_TRUE(b.admit(t0 + milliseconds{i}));
  }
}

TEST(Breaker, FullCycleReportsEveryTransition) {
  breaker b{{.consecutive_failures = 3, .cooldown = 10s}};
  EXPECT_FALSE(b.record(outcome::server_error, t0));
  EXPECT_FALSE(b.record(outcome::connect_error, t0 + 1s));
  EXPECT_EQ(b.consecutive_failures(), 2);
  EXPECT_TRUE(is(b.record(outcome::first_byte_timeout, t0 + 2s), closed, open));
  EXPECT_EQ(b.state(t0 + 2s), open);
  EXPECT_EQ(b.retry_at(), t0 + 12s);
  EXPECT_FALSE(b.admit(t0 + 11999ms));
  EXPECT_EQ(b.state(t0 + 11999ms), open);
  EXPECT_EQ(b.state(t0 + 12s), half_open);  // read-only: the cooldown has passed
  EXPECT_TRUE(b.admit(t0 + 12s));
  EXPECT_EQ(b.state(t0 + 12s), half_open);
  EXPECT_TRUE(is(b.record(outcome::reset, t0 + 13s), half_open, open));
  EXPECT_EQ(b.state(t0 + 13s), open);
  EXPECT_EQ(b.retry_at(), t0 + 13s + 20s);
  EXPECT_TRUE(b.admit(t0 + 33s));
  EXPECT_TRUE(is(b.record(outcome::success, t0 + 34s), half_open, closed));
  EXPECT_EQ(b.state(t0 + 34s), closed);
  EXPECT_EQ(b.consecutive_failures(), 0);
  EXPECT_EQ(b.current_cooldown(), 10s);
  EXPECT_TRUE(b.admit(t0 + 34s));
}

// -- consecutive rule ----------------------------------------------------------------------------

TEST(Breaker, ConsecutiveFailuresTrip) {
  breaker b;  // 5 in a row
  for (int i = 0; i < 4; ++i) {
    EXPECT_FALSE(b.record(outcome::server_error, t0 + milliseconds{i}));
  }
  EXPECT_EQ(b.state(t0), closed);
  EXPECT_TRUE(is(b.record(outcome::total_timeout, t0 + 4ms), closed, open));
}

TEST(Breaker, SuccessResetsTheStreak) {
  breaker b{{.min_requests = 1000}};  // the ratio rule out of the way
  for (int round = 0; round < 10; ++round) {
    for (int i = 0; i < 4; ++i) {
      EXPECT_FALSE(b.record(outcome::server_error, t0));
    }
    EXPECT_EQ(b.consecutive_failures(), 4);
    EXPECT_FALSE(b.record(outcome::success, t0));
    EXPECT_EQ(b.consecutive_failures(), 0);
  }
  EXPECT_EQ(b.state(t0), closed);
}

TEST(Breaker, NeutralOutcomesNeitherBreakNorExtendTheStreak) {
  breaker b{{.consecutive_failures = 3, .min_requests = 1000}};
  EXPECT_FALSE(b.record(outcome::server_error, t0));
  EXPECT_FALSE(b.record(outcome::server_error, t0));
  EXPECT_FALSE(b.record(outcome::rate_limited, t0));
  EXPECT_FALSE(b.record(outcome::key_rejected, t0));
  EXPECT_FALSE(b.record(outcome::cancelled, t0));
  EXPECT_EQ(b.consecutive_failures(), 2);
  EXPECT_TRUE(is(b.record(outcome::server_error, t0), closed, open));
}

TEST(Breaker, ClientAndRateLimitOutcomesNeverTrip) {
  breaker b{{.consecutive_failures = 1, .min_requests = 1}};
  for (int status : {400, 401, 402, 403, 404, 408, 409, 413, 422, 429, 499}) {
    for (int i = 0; i < 50; ++i) {
      EXPECT_FALSE(b.record(classify_status(status), t0)) << status;
    }
  }
  for (const auto o : {outcome::rate_limited, outcome::key_rejected, outcome::retryable_status,
                       outcome::provider_down, outcome::unsupported, outcome::deadline,
                       outcome::request_rejected, outcome::cancelled, outcome::skipped_no_key,
                       outcome::skipped_circuit_open, outcome::skipped_cooldown}) {
    EXPECT_FALSE(b.record(o, t0)) << reason_text(o);
  }
  EXPECT_EQ(b.state(t0), closed);
  EXPECT_EQ(b.consecutive_failures(), 0);
}

TEST(Breaker, EveryProviderSideFailureCounts) {
  for (const auto o :
       {outcome::server_error, outcome::connect_error, outcome::reset, outcome::connect_timeout,
        outcome::first_byte_timeout, outcome::total_timeout, outcome::bad_response}) {
    breaker b{{.consecutive_failures = 1}};
    EXPECT_TRUE(is(b.record(o, t0), closed, open)) << reason_text(o);
  }
}

// -- ratio rule ----------------------------------------------------------------------------------

/// Feeds `pattern` ('F' a server error, 'S' a success, 'N' a neutral 429) at `at`; returns the
/// 1-based position of the outcome that tripped the breaker, or 0.
int trips_at(breaker& b, std::string_view pattern, steady_time at) {
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const auto o = pattern[i] == 'F'   ? outcome::server_error
                   : pattern[i] == 'S' ? outcome::success
                                       : outcome::rate_limited;
    if (const auto t = b.record(o, at)) {
      EXPECT_EQ(t->from, closed);
      EXPECT_EQ(t->to, open);
      return static_cast<int>(i) + 1;
    }
  }
  return 0;
}

TEST(Breaker, RatioTripsAtExactlyMinRequestsAndHalf) {
  breaker b;  // window 20, min 10, ratio 0.5
  // Nine outcomes, four failures, no streak; the tenth is a failure: 5/10 = 0.5.
  EXPECT_EQ(trips_at(b, "SFSFSFSFS", t0), 0);
  EXPECT_EQ(b.consecutive_failures(), 0);
  EXPECT_EQ(trips_at(b, "F", t0), 1);
}

TEST(Breaker, RatioBelowMinRequestsDoesNotTrip) {
  breaker b;
  // 5/9 is above the ratio, but nine outcomes are fewer than min_requests.
  EXPECT_EQ(trips_at(b, "FSFSFSFSF", t0), 0);
  // A success makes ten outcomes at 5/10: a success never trips.
  EXPECT_EQ(trips_at(b, "S", t0), 0);
  EXPECT_EQ(b.state(t0), closed);
  // The next failure does (6/11).
  EXPECT_EQ(trips_at(b, "F", t0), 1);
}

TEST(Breaker, RatioBelowHalfDoesNotTrip) {
  breaker b;
  // 20 outcomes, 9 failures, the last one a failure: 0.45.
  EXPECT_EQ(trips_at(b, "SSSFSFSFSFSFSFSFSFSF", t0), 0);
  EXPECT_EQ(b.state(t0), closed);
}

TEST(Breaker, NeutralOutcomesStayOutOfTheWindow) {
  breaker b;
  // Were the 429s outcomes, 5/19 would not trip; they are not, so 5/10 does.
  EXPECT_EQ(trips_at(b, "SFSFSFSFNNNNNNNNNSF", t0), 19);
}

TEST(Breaker, RatioNeedsMinRequests) {
  breaker b{{.consecutive_failures = 100, .min_requests = 10}};
  // Failures in a row: 100 %, but only the tenth reaches min_requests.
  EXPECT_EQ(trips_at(b, "FFFFFFFFFFFF", t0), 10);
}

TEST(Breaker, OldSamplesOutsideWindowSpanExpire) {
  breaker b;  // span 30 s
  EXPECT_EQ(trips_at(b, "SFSFSFSFS", t0), 0);
  // 30 s later the old samples are exactly at the edge and still count: 5/10.
  breaker edge = b;
  EXPECT_EQ(trips_at(edge, "F", t0 + 30s), 1);
  // Just past 30 s they have expired: one failure alone is below min_requests.
  EXPECT_EQ(trips_at(b, "F", t0 + 30001ms), 0);
  EXPECT_EQ(b.state(t0 + 30001ms), closed);
  // ... and so are the next eight (9 outcomes).
  EXPECT_EQ(trips_at(b, "FSFSFSFS", t0 + 30001ms), 0);
}

TEST(Breaker, WindowKeepsOnlyTheLastOutcomes) {
  breaker b{{.consecutive_failures = 100}};  // window 20
  // Twenty successes, then failures: over the last 20 outcomes the tenth failure makes 10/20.
  // (Were all outcomes kept, 10/30 would not trip.)
  EXPECT_EQ(trips_at(b, "SSSSSSSSSSSSSSSSSSSS", t0), 0);
  EXPECT_EQ(trips_at(b, "FFFFFFFFFFFF", t0), 10);
}

TEST(Breaker, WindowCapDropsOldFailures) {
  breaker b{{.consecutive_failures = 100, .window = 10, .min_requests = 10}};
  // Four failures, then successes: once the failures leave the last ten outcomes, four new
  // failures (4/10) do not trip, and the fifth (5/10) does.
  EXPECT_EQ(trips_at(b, "FFFFSSSSSSSSSS", t0), 0);
  EXPECT_EQ(trips_at(b, "FFFF", t0), 0);
  EXPECT_EQ(trips_at(b, "F", t0), 1);
}

// -- cooldown
// --------------------------------------------------------------------------------------

TEST(Breaker, CooldownDoublesOnEachRetripUpToTheCap) {
  breaker b;  // 30 s, cap 300 s
  trip(b, t0);
  steady_time now = t0;
  EXPECT_EQ(b.retry_at() - now, 30s);
  for (const auto expected : {60s, 120s, 240s, 300s, 300s}) {
    now = b.retry_at();
    ASSERT_TRUE(b.admit(now));
    EXPECT_TRUE(is(b.record(outcome::server_error, now), half_open, open));
    EXPECT_EQ(b.retry_at() - now, expected);
  }
  // A probe success resets the cooldown.
  now = b.retry_at();
  ASSERT_TRUE(b.admit(now));
  EXPECT_TRUE(is(b.record(outcome::success, now), half_open, closed));
  EXPECT_EQ(b.current_cooldown(), 30s);
  trip(b, now);
  EXPECT_EQ(b.retry_at() - now, 30s);
}

TEST(Breaker, CurrentCooldownIsTheNextTripsPeriod) {
  breaker b;
  EXPECT_EQ(b.current_cooldown(), 30s);
  trip(b, t0);
  EXPECT_EQ(b.current_cooldown(), 60s);
}

TEST(Breaker, CooldownAboveCapIsCapped) {
  breaker b{{.consecutive_failures = 1, .cooldown = 10min, .max_cooldown = 1min}};
  (void)b.record(outcome::server_error, t0);
  EXPECT_EQ(b.retry_at() - t0, 1min);
}

TEST(Breaker, CloseClearsWindowAndStreak) {
  breaker b;
  trip(b, t0);
  ASSERT_TRUE(b.admit(t0 + 30s));
  EXPECT_TRUE(is(b.record(outcome::success, t0 + 30s), half_open, closed));
  // A fresh start: four failures do not trip, and neither do nine outcomes at any ratio.
  for (int i = 0; i < 4; ++i) {
    EXPECT_FALSE(b.record(outcome::server_error, t0 + 31s));
  }
  EXPECT_EQ(b.state(t0 + 31s), closed);
}

// -- half-open
// -------------------------------------------------------------------------------------

TEST(Breaker, HalfOpenAdmitsExactlyOneProbe) {
  breaker b;
  trip(b, t0);
  int admitted = 0;
  for (int i = 0; i < 1000; ++i) {
    admitted += b.admit(t0 + 30s + milliseconds{i}) ? 1 : 0;
  }
  EXPECT_EQ(admitted, 1);
  EXPECT_EQ(b.state(t0 + 31s), half_open);
}

TEST(Breaker, NeutralProbeOutcomeReleasesTheSlot) {
  breaker b;
  trip(b, t0);
  ASSERT_TRUE(b.admit(t0 + 30s));
  EXPECT_FALSE(b.admit(t0 + 30s));
  for (const auto o : {outcome::rate_limited, outcome::key_rejected, outcome::cancelled,
                       outcome::request_rejected, outcome::deadline}) {
    EXPECT_FALSE(b.record(o, t0 + 31s)) << reason_text(o);
    EXPECT_EQ(b.state(t0 + 31s), half_open);
    EXPECT_TRUE(b.admit(t0 + 31s)) << reason_text(o);
    EXPECT_FALSE(b.admit(t0 + 31s)) << reason_text(o);
  }
  EXPECT_TRUE(is(b.record(outcome::success, t0 + 32s), half_open, closed));
}

TEST(Breaker, LostProbeTimesOut) {
  breaker b{{.probe_timeout = 130s}};
  trip(b, t0);
  const auto probe = t0 + 30s;
  ASSERT_TRUE(b.admit(probe));
  EXPECT_FALSE(b.admit(probe + 129999ms));
  EXPECT_TRUE(b.admit(probe + 130s));  // presumed lost: a second probe
  EXPECT_FALSE(b.admit(probe + 130s));
  EXPECT_FALSE(b.admit(probe + 259999ms));
  EXPECT_TRUE(is(b.record(outcome::success, probe + 131s), half_open, closed));
}

TEST(Breaker, HalfOpenWithoutProbeIgnoresStragglers) {
  breaker b;
  trip(b, t0);
  ASSERT_TRUE(b.admit(t0 + 30s));
  EXPECT_FALSE(b.record(outcome::cancelled, t0 + 30s));  // slot released, nobody probing
  EXPECT_FALSE(b.record(outcome::server_error, t0 + 31s));
  EXPECT_FALSE(b.record(outcome::success, t0 + 31s));
  EXPECT_EQ(b.state(t0 + 31s), half_open);
  EXPECT_TRUE(b.admit(t0 + 31s));
}

// -- late outcomes
// ---------------------------------------------------------------------------------

TEST(Breaker, LateOutcomesWhileOpenAreIgnored) {
  breaker b;
  trip(b, t0);
  const auto until = b.retry_at();
  const auto next = b.current_cooldown();
  for (int i = 0; i < 50; ++i) {
    EXPECT_FALSE(b.record(outcome::server_error, t0 + 1s));
  }
  EXPECT_FALSE(b.record(outcome::success, t0 + 2s));
  EXPECT_FALSE(b.record(outcome::rate_limited, t0 + 2s));
  EXPECT_EQ(b.state(t0 + 2s), open);
  EXPECT_EQ(b.retry_at(), until);
  EXPECT_EQ(b.current_cooldown(), next);
  // Also after the cooldown, before anyone probes.
  EXPECT_FALSE(b.record(outcome::success, t0 + 40s));
  EXPECT_FALSE(b.record(outcome::server_error, t0 + 40s));
  EXPECT_EQ(b.state(t0 + 40s), half_open);
  EXPECT_TRUE(b.admit(t0 + 40s));
}

TEST(Breaker, AdmissionTimeFiltersStragglers) {
  breaker b;
  const auto early = t0;  // admitted while closed
  trip(b, t0 + 1s);
  ASSERT_TRUE(b.admit(t0 + 31s));
  // A straggler from before the trip is not the probe's answer.
  EXPECT_FALSE(b.record(outcome::server_error, t0 + 32s, early));
  EXPECT_FALSE(b.record(outcome::success, t0 + 32s, early));
  EXPECT_EQ(b.state(t0 + 32s), half_open);
  EXPECT_FALSE(b.admit(t0 + 32s));  // the probe is still out
  EXPECT_TRUE(is(b.record(outcome::success, t0 + 33s, t0 + 31s), half_open, closed));
  // After the close, stragglers from before the trip cannot re-open it.
  for (int i = 0; i < 10; ++i) {
    EXPECT_FALSE(b.record(outcome::server_error, t0 + 34s, early));
  }
  EXPECT_EQ(b.state(t0 + 34s), closed);
  EXPECT_EQ(b.consecutive_failures(), 0);
  // Requests admitted after the close count as usual.
  for (int i = 0; i < 4; ++i) {
    EXPECT_FALSE(b.record(outcome::server_error, t0 + 35s, t0 + 34s));
  }
  EXPECT_TRUE(is(b.record(outcome::server_error, t0 + 35s, t0 + 34s), closed, open));
}

TEST(Breaker, AdmissionTimeLostProbeAnswersLate) {
  breaker b{{.probe_timeout = 10s}};
  trip(b, t0);
  ASSERT_TRUE(b.admit(t0 + 30s));  // the first probe, later presumed lost
  ASSERT_TRUE(b.admit(t0 + 40s));  // the second
  EXPECT_FALSE(b.record(outcome::server_error, t0 + 41s, t0 + 30s));
  EXPECT_EQ(b.state(t0 + 41s), half_open);
  EXPECT_TRUE(is(b.record(outcome::server_error, t0 + 42s, t0 + 40s), half_open, open));
}

// -- Retry-After
// -----------------------------------------------------------------------------------

// Wed, 21 Oct 2015 07:28:00 GMT
constexpr std::int64_t oct21_2015_ms = 1445412480000;

struct retry_case {
  std::string_view retry_after;
  std::string_view retry_after_ms;
  std::optional<milliseconds> expected;
};

TEST(RetryAfter, ParseTable) {
  const auto now = oct21_2015_ms;
  const retry_case cases[] = {
      {"7", "", 7000ms},
      {" 7 ", "", 7000ms},
      {"0", "", 0ms},
      {"1.5", "", 1500ms},
      {"0.25", "", 250ms},
      {"3600", "", 3600s},
      {"", "1500", 1500ms},
      {"", "12.5", 13ms},        // fractional milliseconds round up
      {"7", "250", 250ms},       // the ms header wins
      {"7", "garbage", 7000ms},  // ... unless unusable
      {"7", "-5", 7000ms},
      {"Wed, 21 Oct 2015 07:28:30 GMT", "", 30s},
      {"Wed, 21 Oct 2015 08:28:00 GMT", "", 1h},
      {"Wed, 21 Oct 2015 07:27:00 GMT", "", 0ms},  // in the past
      {"Thu, 01 Jan 1970 00:00:00 GMT", "", 0ms},
      {"Wednesday, 21-Oct-15 07:28:10 GMT", "", 10s},  // RFC 850
      {"Wed Oct 21 07:28:20 2015", "", 20s},           // asctime
      {"Sat Oct  3 07:28:00 2015", "", 0ms},
      {"", "", std::nullopt},
      {"  ", "", std::nullopt},
      {"soon", "", std::nullopt},
      {"-1", "", std::nullopt},
      {"-0.5", "", std::nullopt},
      {"+5", "", std::nullopt},
      {"5s", "", std::nullopt},
      {"1e3", "", std::nullopt},
      {"1.2.3", "", std::nullopt},
      {".", "", std::nullopt},
      {"", "-100", std::nullopt},
      {"Wed, 21 Oct 2015 07:28:00", "", std::nullopt},      // no zone
      {"Wed, 32 Oct 2015 07:28:00 GMT", "", std::nullopt},  // no such day
      {"Wed, 29 Feb 2015 07:28:00 GMT", "", std::nullopt},  // not a leap year
      {"Wed, 21 Foo 2015 07:28:00 GMT", "", std::nullopt},
      {"Wed, 21 Oct 2015 25:28:00 GMT", "", std::nullopt},
      {"Wed, 21 Oct 2015 07:28:00 GMT trailing", "", std::nullopt},
      {"Xyz, 21 Oct 2015 07:28:00 GMT", "", std::nullopt},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(parse_retry_after(c.retry_after, c.retry_after_ms, now), c.expected)
        << "retry-after '" << c.retry_after << "', retry-after-ms '" << c.retry_after_ms << "'";
  }
}

TEST(RetryAfter, LeapDayAndHugeValuesDoNotOverflow) {
  // Thu, 29 Feb 2024 00:00:00 GMT = 1709164800 s.
  EXPECT_EQ(parse_retry_after("Thu, 29 Feb 2024 00:00:10 GMT", "", 1709164800000), 10s);
  const auto huge = parse_retry_after("99999999999999999999999999", "", 0);
  ASSERT_TRUE(huge);
  EXPECT_GT(*huge, 24h);
  EXPECT_EQ(cooldown_for(huge, {}), 60s);
  EXPECT_EQ(parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", "", 0).has_value(), true);
}

TEST(RetryAfter, CooldownFor) {
  const cooldown_config cfg;  // default 10 s, cap 60 s
  EXPECT_EQ(cfg.default_cooldown, 10s);
  EXPECT_EQ(cfg.max_cooldown, 60s);
  EXPECT_EQ(cooldown_for(7s, cfg), 7s);
  EXPECT_EQ(cooldown_for(1500ms, cfg), 1500ms);
  EXPECT_EQ(cooldown_for(3600s, cfg), 60s);         // huge: capped
  EXPECT_EQ(cooldown_for(std::nullopt, cfg), 10s);  // absent: default
  EXPECT_EQ(cooldown_for(0ms, cfg), 10s);           // zero (or a past date): default
  EXPECT_EQ(cooldown_for(60s, cfg), 60s);
  EXPECT_EQ(cooldown_for(parse_retry_after("3600", "", 0), cfg), 60s);
  EXPECT_EQ(cooldown_for(parse_retry_after("", "", 0), cfg), 10s);
  EXPECT_EQ(cooldown_for(parse_retry_after("7", "", 0), cfg), 7s);
  const cooldown_config odd{.default_cooldown = 90s, .max_cooldown = 60s};
  EXPECT_EQ(cooldown_for(std::nullopt, odd), 60s);  // never above the cap
}

// -- cooldown_table ----------------------------------------------------------------------------

TEST(CooldownTable, UsersAreIsolated) {
  cooldown_table t;
  t.start("usr_a", 10s, t0);
  EXPECT_EQ(t.until("usr_a", t0), t0 + 10s);
  EXPECT_EQ(t.until("usr_b", t0), std::nullopt);
  t.start("usr_b", 3s, t0 + 1s);
  EXPECT_EQ(t.until("usr_a", t0 + 2s), t0 + 10s);
  EXPECT_EQ(t.until("usr_b", t0 + 2s), t0 + 4s);
  EXPECT_EQ(t.size(), 2u);
}

TEST(CooldownTable, ExtendsButNeverShortens) {
  cooldown_table t;
  t.start("usr_a", 10s, t0);
  t.start("usr_a", 2s, t0 + 1s);  // would end at t0 + 3 s: ignored
  EXPECT_EQ(t.until("usr_a", t0 + 5s), t0 + 10s);
  t.start("usr_a", 20s, t0 + 5s);  // ends later: extends
  EXPECT_EQ(t.until("usr_a", t0 + 5s), t0 + 25s);
  EXPECT_EQ(t.size(), 1u);
}

TEST(CooldownTable, ExpiresAndPrunes) {
  cooldown_table t;
  t.start("usr_a", 10s, t0);
  t.start("usr_b", 60s, t0);
  EXPECT_EQ(t.until("usr_a", t0 + 9999ms), t0 + 10s);
  EXPECT_EQ(t.until("usr_a", t0 + 10s), std::nullopt);  // the end itself is free again
  EXPECT_EQ(t.size(), 2u);                              // pruned lazily
  EXPECT_FALSE(t.prune(t0 + 5s));
  EXPECT_TRUE(t.prune(t0 + 10s));
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(t.entries().count("usr_b"), 1u);
  // An expired entry is replaced, even by a shorter cooldown.
  t.start("usr_b", 1s, t0 + 100s);
  EXPECT_EQ(t.until("usr_b", t0 + 100s), t0 + 101s);
}

}  // namespace
}  // namespace ib

namespace ib {
namespace {

// -- random input
// ----------------------------------------------------------------------------------

TEST(RetryAfter, RandomBytesNeverCrash) {
  std::mt19937 rng{1234};
  const std::string_view seeds[] = {"Wed, 21 Oct 2015 07:28:00 GMT",
                                    "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994",
                                    "1.5", "12.25"};
  for (int i = 0; i < 20000; ++i) {
    std::string s{seeds[static_cast<std::size_t>(i) % std::size(seeds)]};
    const int edits = static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !s.empty(); ++e) {
      s[rng() % s.size()] = static_cast<char>(rng() % 256);
    }
    if (i % 3 == 0) {
      s.resize(rng() % 40);
      for (auto& c : s) {
        c = static_cast<char>(rng() % 256);
      }
    }
    const auto a = parse_retry_after(s, "", 1445412480000);
    const auto b = parse_retry_after("", s, 1445412480000);
    if (a) {
      EXPECT_GE(a->count(), 0) << s;
    }
    if (b) {
      EXPECT_GE(b->count(), 0) << s;
    }
    EXPECT_LE(cooldown_for(a, {}), 60s);
  }
}

TEST(Breaker, RandomOperationsKeepInvariants) {
  const breaker_config cfg{.consecutive_failures = 3,
                           .window = 8,
                           .window_span = 5s,
                           .min_requests = 4,
                           .cooldown = 2s,
                           .max_cooldown = 16s,
                           .probe_timeout = 3s};
  std::mt19937 rng{42};
  breaker b{cfg};
  steady_time now = t0;
  const outcome outcomes[] = {outcome::success, outcome::server_error, outcome::reset,
                              outcome::rate_limited, outcome::cancelled};
  bool probe_out = false;     // a half-open probe that has not reported ...
  steady_time probe_since{};  // ... admitted then
  for (int i = 0; i < 100000; ++i) {
    now += milliseconds{rng() % 700};
    const auto before = b.state(now);
    if (rng() % 2 == 0) {
      const bool admitted = b.admit(now);
      if (before == open) {
        EXPECT_FALSE(admitted);
      }
      if (before == closed) {
        EXPECT_TRUE(admitted);
      }
      if (before == half_open && admitted) {
        // Only one probe at a time, unless the previous one is presumed lost.
        EXPECT_TRUE(!probe_out || now - probe_since >= cfg.probe_timeout);
        probe_out = true;
        probe_since = now;
      }
      if (before == half_open && !admitted) {
        EXPECT_TRUE(probe_out);
      }
    } else {
      const auto o = outcomes[rng() % std::size(outcomes)];
      const auto t = b.record(o, now);
      if (t) {
        EXPECT_NE(t->from, t->to);
        EXPECT_EQ(t->from, before);
        EXPECT_EQ(b.state(now), t->to);
        if (t->to == open) {
          EXPECT_GE(b.retry_at() - now, cfg.cooldown);
          EXPECT_LE(b.retry_at() - now, cfg.max_cooldown);
          EXPECT_TRUE(counts_against_breaker(o));
        }
        if (t->to == closed) {
          EXPECT_EQ(o, outcome::success);
        }
      } else {
        EXPECT_EQ(b.state(now), before);
      }
      if (before == half_open) {
        probe_out = false;  // the probe reported: it closed, re-opened or released the slot
      }
    }
    EXPECT_GE(b.current_cooldown(), cfg.cooldown);
    EXPECT_LE(b.current_cooldown(), cfg.max_cooldown);
  }
}

}  // namespace
}  // namespace ib
