#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/outcome.hpp"

namespace ib {

/// The monotonic instant every health decision is made at; callers pass it (`now`), nothing in
/// core/ reads a clock.
using steady_time = std::chrono::steady_clock::time_point;

/// Breaker settings (design §5); the initialisers are the documented defaults. Durations are in
/// milliseconds. Plain data: `config::load` validates it, the breaker takes it as given.
struct breaker_config {
  /// Trip after this many failures in a row (while closed); <= 0 turns the streak rule off.
  int consecutive_failures = 5;
  /// Rolling window: at most this many outcomes (successes and failures); <= 0 turns the ratio
  /// rule off.
  int window = 20;
  std::chrono::milliseconds window_span{30'000};  ///< ... none older than this (ms)
  /// Trip when failures / outcomes in the window >= this (0..1), checked on each failure.
  double failure_ratio = 0.5;
  int min_requests = 10;  ///< the ratio rule needs at least this many outcomes (at least 1)
  /// The first open period (ms), and the one again after the breaker closes.
  std::chrono::milliseconds cooldown{30'000};
  std::chrono::milliseconds max_cooldown{300'000};  ///< cap of the doubling open period (ms)
  /// A half-open probe that reports nothing within this time is presumed lost (the request
  /// died without telling): another probe may then go. Set it above the provider's total timeout.
  std::chrono::milliseconds probe_timeout{130'000};
};

/// The breaker's state (design §5). The numbers are the `inferbridge_circuit_state` gauge values.
enum class breaker_state : std::uint8_t {
  closed = 0,     ///< requests flow; failures are counted
  half_open = 1,  ///< the cooldown has passed: one probe at a time may go
  open = 2,       ///< requests are refused until `retry_at`
};

/// The state a breaker published as `published`, with probes allowed from `retry_at`, is in at
/// `now`: an open breaker whose cooldown has passed reads as half-open (design §5). The one
/// copy of that rule, for the breaker itself and every reader of its published snapshot.
constexpr breaker_state effective_state(breaker_state published, steady_time retry_at,
                                        steady_time now) noexcept {
  return published == breaker_state::open && now >= retry_at ? breaker_state::half_open : published;
}

/// `closed`, `half_open` or `open` (for logs and the `/readyz` body); `unknown` for a value
/// outside the enum.
std::string_view to_string(breaker_state s) noexcept;

/// A transition, returned so the owner can log it and publish a new snapshot.
struct breaker_transition {
  breaker_state from;  ///< the state before (as stored, so `open` even past its cooldown)
  breaker_state to;    ///< the state after
};

/// Per-provider circuit breaker: a plain state machine; `now` is always an argument.
///
/// closed --(N consecutive failures | ratio over window)--> open --(cooldown)--> half_open
/// half_open --(probe success)--> closed; half_open --(probe failure)--> open (cooldown doubles,
/// capped). In half-open exactly one request is admitted at a time.
///
/// Not thread-safe: one owner (the provider's health supervisor actor, design §2) calls it and
/// publishes what it decides as a snapshot. Never fails and never throws.
class breaker {
 public:
  /// A closed breaker; its first cooldown is `min(cfg.cooldown, cfg.max_cooldown)`.
  explicit breaker(breaker_config cfg = {});

  /// Asks to send one request now. Closed: true. Open before the cooldown ends: false. Open after
  /// the cooldown (or half-open with no probe out): moves to half-open, marks the probe as taken
  /// and returns true. Half-open with a probe out: false, unless that probe has been out for
  /// `probe_timeout` (presumed lost: this request becomes the probe and true is returned).
  bool admit(steady_time now);

  /// Reports the outcome of an admitted request. Only `counts_against_breaker` outcomes count as
  /// failures; `success` counts as a success; any other outcome (429, 401, cancelled...) is
  /// neutral: it does not enter the window, and if it was the half-open probe, the probe slot is
  /// released so that another request may probe. Closed: the outcome enters the window and may
  /// trip the breaker. Open: every result is ignored (late results of requests admitted before
  /// the trip). Half-open: ignored unless a probe is out; then success closes and failure
  /// re-opens with the doubled cooldown. Returns the transition, if one happened.
  std::optional<breaker_transition> record(outcome o, steady_time now);

  /// As `record(o, now)`, for a request admitted at `admitted_at`: a result of a request admitted
  /// before the current regime began (before the last trip or close, or before the probe that is
  /// now out) is ignored, so that slow stragglers can neither re-open a freshly closed breaker
  /// nor be taken for the probe's answer.
  std::optional<breaker_transition> record(outcome o, steady_time now, steady_time admitted_at);

  /// Another node opened this provider's breaker (design §10): open until `retry_at`, with
  /// `next_cooldown` (ms) as the open period of the next re-trip. Any probe of this breaker is
  /// forgotten and results of requests admitted before `now` are ignored from here on.
  void adopt_open(steady_time retry_at, std::chrono::milliseconds next_cooldown, steady_time now);

  /// Another node's probe succeeded: closes as a local successful probe would (window cleared,
  /// cooldown reset); results of requests admitted before `now` are ignored.
  void adopt_closed(steady_time now);

  /// The state as of `now` (an open breaker whose cooldown has passed reads as half-open).
  breaker_state state(steady_time now) const;

  /// When an open breaker will let a probe through (meaningful while open; the epoch before the
  /// first trip).
  steady_time retry_at() const noexcept { return open_until_; }

  /// The cooldown the next trip will use (doubles on each re-trip, capped; reset on close).
  std::chrono::milliseconds current_cooldown() const noexcept { return cooldown_; }

  /// Failures in a row while closed (reset by a success, a trip or a close).
  int consecutive_failures() const noexcept { return consecutive_; }

  /// The settings given to the constructor.
  const breaker_config& config() const noexcept { return cfg_; }

 private:
  void trip(steady_time now);
  void close();
  void prune(steady_time now);

  breaker_config cfg_;
  breaker_state state_ = breaker_state::closed;
  int consecutive_ = 0;
  struct sample {
    steady_time at;
    bool failure;
  };
  std::deque<sample> window_;
  int window_failures_ = 0;                        ///< failures among `window_`
  steady_time regime_start_ = steady_time::min();  ///< the last trip or close
  steady_time open_until_{};
  std::chrono::milliseconds cooldown_;
  bool probe_out_ = false;
  steady_time probe_started_{};
};

/// Retry-After handling for 429 (design §5): default 10 s, cap 60 s.
struct cooldown_config {
  /// Used when the 429 gave no usable, positive Retry-After (ms).
  std::chrono::milliseconds default_cooldown{10'000};
  std::chrono::milliseconds max_cooldown{60'000};  ///< no cooldown is longer (ms)
};

/// Parses `retry-after-ms` (milliseconds, may be fractional; the OpenAI SDKs' header, read first
/// as they do) or else `retry-after` (delta seconds, possibly fractional, or an HTTP date as
/// `parse_http_date` in core/http_date.hpp reads it, RFC 9110 §10.2.3). Both values are trimmed
/// of spaces and tabs; fractions are rounded up to whole milliseconds, and huge values saturate
/// near 10^15 ms instead of overflowing. `now_unix_ms` is the wall clock in Unix milliseconds,
/// used for HTTP dates only; a date in the past gives 0 ms. An unusable `retry-after-ms` falls
/// through to `retry-after`. Returns nullopt when both are absent, negative or unparseable.
/// Pure; any bytes are safe input.
std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view retry_after,
                                                           std::string_view retry_after_ms,
                                                           std::int64_t now_unix_ms);

/// The cooldown to apply (ms): the parsed value when present and positive, else the default;
/// never above the cap.
std::chrono::milliseconds cooldown_for(std::optional<std::chrono::milliseconds> parsed,
                                       const cooldown_config& cfg);

/// Per-(user, provider) cooldowns after 429s, for one provider (design §5), keyed by user id.
/// Expired entries are pruned lazily. Not thread-safe: the provider's health supervisor owns it
/// and publishes a copy of `entries()` in its snapshot.
class cooldown_table {
 public:
  /// Puts `user` into cooldown until `now + d` (extends, never shortens, an existing one).
  void start(std::string_view user, std::chrono::milliseconds d, steady_time now);
  /// The end of `user`'s cooldown if it is still running at `now` (an end at or before `now` has
  /// expired).
  std::optional<steady_time> until(std::string_view user, steady_time now) const;
  /// Drops entries that ended at or before `now`; returns true if any were dropped.
  bool prune(steady_time now);
  /// The number of entries, expired ones not yet pruned included.
  std::size_t size() const noexcept { return until_.size(); }
  /// Every entry (user id → cooldown end), expired ones not yet pruned included.
  const std::unordered_map<std::string, steady_time>& entries() const noexcept { return until_; }

 private:
  std::unordered_map<std::string, steady_time> until_;
};

}  // namespace ib
