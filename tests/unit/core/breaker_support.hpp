#pragma once

// What the breaker's unit tests share: a fake clock, short names for the states, and helpers.

#include <chrono>
#include <optional>

#include <gtest/gtest.h>

#include "core/breaker.hpp"

namespace ib::breaker_support {

using namespace std::chrono_literals;

/// A fake clock: a fixed base plus offsets; nothing here reads the real time.
inline const steady_time t0 = steady_time{} + 1000h;

inline constexpr auto closed = breaker_state::closed;
inline constexpr auto open = breaker_state::open;
inline constexpr auto half_open = breaker_state::half_open;

/// True when `t` is the transition `from` -> `to`.
inline bool is(const std::optional<breaker_transition>& t, breaker_state from, breaker_state to) {
  return t && t->from == from && t->to == to;
}

/// Trips `b` at `at` with consecutive failures (the config must trip within 100).
inline void trip(breaker& b, steady_time at) {
  for (int i = 0; i < 100 && b.state(at) == closed; ++i) {
    ASSERT_TRUE(b.admit(at));
    (void)b.record(outcome::server_error, at, at);
  }
  ASSERT_EQ(b.state(at), open);
}

}  // namespace ib::breaker_support
