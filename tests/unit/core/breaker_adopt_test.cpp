#include <chrono>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "core/breaker.hpp"
#include "tests/unit/core/breaker_support.hpp"

namespace ib {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

using namespace breaker_support;

/// The state a breaker is in before it adopts another node's decision.
enum class start { closed_fresh, closed_with_failures, open, half_open_idle, half_open_probing };

std::string_view name(start s) {
  switch (s) {
    case start::closed_fresh:
      return "closed_fresh";
    case start::closed_with_failures:
      return "closed_with_failures";
    case start::open:
      return "open";
    case start::half_open_idle:
      return "half_open_idle";
    case start::half_open_probing:
      return "half_open_probing";
  }
  return "?";
}

constexpr start all_starts[] = {start::closed_fresh, start::closed_with_failures, start::open,
                                start::half_open_idle, start::half_open_probing};

/// A breaker with `cfg` (by default 5 in a row, cooldown 30 s, cap 300 s) brought into `s` by
/// local events between t0 and t0 + 31 s; the adopt in the tests happens at t0 + 40 s.
breaker make(start s, breaker_config cfg = {}) {
  breaker b{cfg};
  switch (s) {
    case start::closed_fresh:
      break;
    case start::closed_with_failures:
      for (int i = 0; i + 1 < cfg.consecutive_failures; ++i) {
        (void)b.record(outcome::server_error, t0, t0);
      }
      EXPECT_EQ(b.consecutive_failures(), cfg.consecutive_failures - 1);
      EXPECT_GT(b.consecutive_failures(), 0);
      break;
    case start::open:
      trip(b, t0 + 30s);  // open until t0 + 60 s
      break;
    case start::half_open_idle:
      trip(b, t0);
      EXPECT_TRUE(b.admit(t0 + 30s));
      (void)b.record(outcome::cancelled, t0 + 31s, t0 + 30s);  // the slot released
      break;
    case start::half_open_probing:
      trip(b, t0);
      EXPECT_TRUE(b.admit(t0 + 30s));  // the probe is out
      break;
  }
  return b;
}

const steady_time adopt_at = t0 + 40s;

// -- adopt_open -----------------------------------------------------------------------------------

TEST(BreakerAdopt, OpenRefusesUntilRetryAtThenAdmitsOneProbe) {
  for (const auto s : all_starts) {
    for (const milliseconds wait : std::initializer_list<milliseconds>{1ms, 5s, 45s, 10min}) {
      breaker b = make(s);
      const auto retry = adopt_at + wait;
      b.adopt_open(retry, 60s, adopt_at);
      EXPECT_EQ(b.state(adopt_at), open) << name(s);
      EXPECT_EQ(b.retry_at(), retry) << name(s);
      EXPECT_EQ(b.current_cooldown(), 60s) << name(s);
      EXPECT_EQ(b.consecutive_failures(), 0) << name(s);
      EXPECT_FALSE(b.admit(adopt_at)) << name(s);
      EXPECT_FALSE(b.admit(retry - 1ms)) << name(s) << " wait " << wait.count();
      EXPECT_EQ(b.state(retry - 1ms), open) << name(s);
      EXPECT_EQ(b.state(retry), half_open) << name(s);
      int admitted = 0;
      for (int i = 0; i < 1000; ++i) {
        admitted += b.admit(retry + milliseconds{i}) ? 1 : 0;
      }
      EXPECT_EQ(admitted, 1) << name(s) << " wait " << wait.count();
    }
  }
}

TEST(BreakerAdopt, OpenWithRetryAtInThePastAdmitsOneProbeAtOnce) {
  for (const auto s : all_starts) {
    breaker b = make(s);
    b.adopt_open(adopt_at - 1s, 60s, adopt_at);
    EXPECT_EQ(b.state(adopt_at), half_open) << name(s);
    EXPECT_TRUE(b.admit(adopt_at)) << name(s);
    EXPECT_FALSE(b.admit(adopt_at + 1s)) << name(s);
  }
}

struct retrip_case {
  milliseconds next_cooldown;              ///< given to adopt_open
  std::vector<milliseconds> open_periods;  ///< of the following failed probes, in order
};

TEST(BreakerAdopt, FailedProbeReopensWithNextCooldownThenDoubles) {
  const retrip_case cases[] = {
      {45s, {45s, 90s, 180s, 300s, 300s}},
      {1s, {1s, 2s, 4s, 8s, 16s}},
      {30s, {30s, 60s, 120s, 240s, 300s}},
      {200s, {200s, 300s, 300s}},
      {300s, {300s, 300s}},
      {10min, {300s, 300s}},  // above max_cooldown: clamped
  };
  for (const auto& c : cases) {
    breaker b;  // cap 300 s
    b.adopt_open(adopt_at + 10s, c.next_cooldown, adopt_at);
    steady_time now = b.retry_at();
    for (const auto expected : c.open_periods) {
      ASSERT_TRUE(b.admit(now)) << c.next_cooldown.count();
      EXPECT_TRUE(is(b.record(outcome::server_error, now + 1s, now), half_open, open))
          << c.next_cooldown.count();
      EXPECT_EQ(b.retry_at() - (now + 1s), expected) << c.next_cooldown.count();
      now = b.retry_at();
    }
  }
}

TEST(BreakerAdopt, SuccessfulProbeAfterAdoptOpenCloses) {
  breaker b;
  b.adopt_open(adopt_at + 10s, 200s, adopt_at);
  ASSERT_TRUE(b.admit(adopt_at + 10s));
  EXPECT_TRUE(is(b.record(outcome::success, adopt_at + 11s, adopt_at + 10s), half_open, closed));
  EXPECT_EQ(b.state(adopt_at + 11s), closed);
  EXPECT_EQ(b.current_cooldown(), 30s);  // back to cfg.cooldown, not 200 s
}

TEST(BreakerAdopt, NextCooldownIsClampedToMaxCooldown) {
  const breaker_config cfg{.cooldown = 10s, .max_cooldown = 1min};
  for (const milliseconds next : std::initializer_list<milliseconds>{61s, 10min, 24h}) {
    breaker b{cfg};
    b.adopt_open(adopt_at + 1s, next, adopt_at);
    EXPECT_EQ(b.current_cooldown(), 1min) << next.count();
    EXPECT_EQ(b.retry_at(), adopt_at + 1s) << next.count();  // retry_at itself is taken as given
    ASSERT_TRUE(b.admit(adopt_at + 1s));
    EXPECT_TRUE(is(b.record(outcome::server_error, adopt_at + 2s, adopt_at + 1s), half_open, open));
    EXPECT_EQ(b.retry_at() - (adopt_at + 2s), 1min) << next.count();
  }
}

TEST(BreakerAdopt, NonPositiveNextCooldownStillGivesAnOpenPeriod) {
  for (const milliseconds next : std::initializer_list<milliseconds>{0ms, -5s}) {
    breaker b;
    b.adopt_open(adopt_at + 1s, next, adopt_at);
    EXPECT_GT(b.current_cooldown(), 0ms) << next.count();
    ASSERT_TRUE(b.admit(adopt_at + 1s));
    (void)b.record(outcome::server_error, adopt_at + 2s, adopt_at + 1s);
    EXPECT_EQ(b.state(adopt_at + 2s), open) << next.count();
  }
}

TEST(BreakerAdopt, OpenWhileProbingForgetsTheProbe) {
  breaker b = make(start::half_open_probing);  // probe admitted at t0 + 30 s
  const auto old_probe = t0 + 30s;
  b.adopt_open(adopt_at + 20s, 60s, adopt_at);
  // The old probe's answer, before the new retry time: ignored, the breaker stays open.
  EXPECT_FALSE(b.record(outcome::success, adopt_at + 1s, old_probe));
  EXPECT_FALSE(b.record(outcome::server_error, adopt_at + 1s, old_probe));
  EXPECT_EQ(b.state(adopt_at + 1s), open);
  EXPECT_EQ(b.retry_at(), adopt_at + 20s);
  EXPECT_FALSE(b.admit(adopt_at + 1s));
  // After it: a new probe goes (the old one no longer holds the slot) ...
  ASSERT_TRUE(b.admit(adopt_at + 20s));
  EXPECT_FALSE(b.admit(adopt_at + 20s));
  // ... and the old probe's late answer is not taken for the new probe's.
  EXPECT_FALSE(b.record(outcome::success, adopt_at + 21s, old_probe));
  EXPECT_FALSE(b.record(outcome::server_error, adopt_at + 21s, old_probe));
  EXPECT_EQ(b.state(adopt_at + 21s), half_open);
  EXPECT_FALSE(b.admit(adopt_at + 21s));
  EXPECT_TRUE(is(b.record(outcome::server_error, adopt_at + 22s, adopt_at + 20s), half_open, open));
  EXPECT_EQ(b.retry_at(), adopt_at + 22s + 60s);
}

// -- adopt_closed ---------------------------------------------------------------------------------

TEST(BreakerAdopt, ClosedCloses) {
  for (const auto s : all_starts) {
    breaker b = make(s);
    b.adopt_closed(adopt_at);
    EXPECT_EQ(b.state(adopt_at), closed) << name(s);
    EXPECT_TRUE(b.admit(adopt_at)) << name(s);
    EXPECT_TRUE(b.admit(adopt_at)) << name(s);  // no probe limit any more
    EXPECT_EQ(b.consecutive_failures(), 0) << name(s);
    EXPECT_EQ(b.current_cooldown(), 30s) << name(s);
    // The streak starts afresh: four failures do not trip, the fifth does.
    for (int i = 0; i < 4; ++i) {
      EXPECT_FALSE(b.record(outcome::server_error, adopt_at + 1s, adopt_at)) << name(s);
    }
    EXPECT_TRUE(is(b.record(outcome::server_error, adopt_at + 1s, adopt_at), closed, open))
        << name(s);
    EXPECT_EQ(b.retry_at(), adopt_at + 1s + 30s) << name(s);  // the reset cooldown
  }
}

TEST(BreakerAdopt, ClosedClearsTheWindow) {
  // Streak rule off: only the ratio rule (window 20, 10 outcomes, 0.5) can trip.
  breaker b{{.consecutive_failures = 0}};
  for (int i = 0; i < 9; ++i) {
    EXPECT_FALSE(b.record(outcome::server_error, t0, t0));
  }
  b.adopt_closed(adopt_at);
  // Were the nine failures still in the window, this one would make 10/10.
  EXPECT_FALSE(b.record(outcome::server_error, adopt_at, adopt_at));
  EXPECT_EQ(b.state(adopt_at), closed);
  // Nine more make ten outcomes, all failures: now it trips.
  for (int i = 0; i < 8; ++i) {
    EXPECT_FALSE(b.record(outcome::server_error, adopt_at, adopt_at));
  }
  EXPECT_TRUE(is(b.record(outcome::server_error, adopt_at, adopt_at), closed, open));
}

TEST(BreakerAdopt, ClosedResetsAnAdoptedCooldown) {
  breaker b{{.cooldown = 10s}};
  b.adopt_open(adopt_at, 250s, adopt_at - 1s);
  EXPECT_EQ(b.current_cooldown(), 250s);
  b.adopt_closed(adopt_at);
  EXPECT_EQ(b.current_cooldown(), 10s);
  trip(b, adopt_at + 1s);
  EXPECT_EQ(b.retry_at() - (adopt_at + 1s), 10s);
}

// -- results of requests admitted before the adopt -----------------------------------------------

enum class adopt { open, closed };

TEST(BreakerAdopt, ResultsAdmittedBeforeTheAdoptChangeNothing) {
  const outcome outcomes[] = {outcome::server_error, outcome::reset, outcome::success,
                              outcome::rate_limited, outcome::cancelled};
  for (const auto s : all_starts) {
    for (const auto a : {adopt::open, adopt::closed}) {
      for (const auto o : outcomes) {
        // Two in a row trip: a counted failure shows in the streak (or trips).
        breaker b = make(s, {.consecutive_failures = 2, .min_requests = 1000});
        const auto admitted = adopt_at - 1ms;
        if (a == adopt::open) {
          b.adopt_open(adopt_at + 10s, 60s, adopt_at);
        } else {
          b.adopt_closed(adopt_at);
        }
        const auto state = b.state(adopt_at);
        const auto until = b.retry_at();
        const auto cooldown = b.current_cooldown();
        const auto streak = b.consecutive_failures();
        const auto label = [&] {
          return std::string{name(s)} + (a == adopt::open ? " adopt_open " : " adopt_closed ")
                 + std::string{reason_text(o)};
        };
        // Right after the adopt, and (for adopt_open) once half-open with a new probe out.
        EXPECT_FALSE(b.record(o, adopt_at + 1s, admitted)) << label();
        EXPECT_EQ(b.state(adopt_at + 1s), state) << label();
        EXPECT_EQ(b.retry_at(), until) << label();
        EXPECT_EQ(b.current_cooldown(), cooldown) << label();
        EXPECT_EQ(b.consecutive_failures(), streak) << label();
        if (a == adopt::open) {
          ASSERT_TRUE(b.admit(adopt_at + 10s)) << label();
          EXPECT_FALSE(b.record(o, adopt_at + 11s, admitted)) << label();
          EXPECT_EQ(b.state(adopt_at + 11s), half_open) << label();
          EXPECT_FALSE(b.admit(adopt_at + 11s)) << label();  // the new probe is still out
        } else {
          EXPECT_TRUE(b.admit(adopt_at + 1s)) << label();
        }
      }
    }
  }
}

TEST(BreakerAdopt, ResultsAdmittedAtOrAfterAdoptClosedCount) {
  for (const auto at : {adopt_at, adopt_at + 1ms, adopt_at + 5s}) {
    breaker b{{.consecutive_failures = 1}};
    trip(b, t0);
    b.adopt_closed(adopt_at);
    EXPECT_TRUE(is(b.record(outcome::server_error, at + 1s, at), closed, open));
  }
}

}  // namespace
}  // namespace ib
