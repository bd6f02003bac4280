#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/breaker.hpp"
#include "core/error.hpp"
#include "core/outcome.hpp"
#include "core/request_record.hpp"

namespace ib {

/// What the request actor knows about one provider of its plan when it gets there (design §4):
/// whether the user has a key, the published breaker state, and the user's 429 cooldown.
struct provider_view {
  bool has_key = false;                         ///< the user has a key for this provider
  breaker_state state = breaker_state::closed;  ///< as published (open may read as half-open)
  steady_time retry_at{};                       ///< open: when a probe may go
  std::optional<steady_time> cooldown_until;    ///< the user's cooldown end, if any
};

/// What to do with one provider of the plan.
enum class step_kind : std::uint8_t {
  call,   ///< send the request
  probe,  ///< the breaker may let a probe through: ask its supervisor for the single slot
  skip,   ///< no attempt; `skip_reason` says why
};

/// The decision `next_step` made for one provider.
struct step {
  step_kind kind = step_kind::call;
  /// For skips: `skipped_no_key`, `skipped_cooldown` or `skipped_circuit_open`; else `success`.
  outcome skip_reason = outcome::success;
  /// For cooldown and open-circuit skips: when the provider may be usable again (the cooldown's
  /// end, or `retry_at`); the epoch otherwise.
  steady_time until{};
};

/// Decides the next step for one provider (pure). Order: no key, then the user's cooldown (still
/// running after `now`), then the breaker as `effective_state` reads it at `now` (closed: call;
/// open before `retry_at`: skip; half-open, or open past `retry_at`: probe).
step next_step(const provider_view& v, steady_time now) noexcept;

/// What the walk over a plan saw, for the final answer.
struct walk_summary {
  int keyed = 0;             ///< providers the user has a key for
  int attempted = 0;         ///< upstream calls made
  int unsupported = 0;       ///< calls the adapter refused before going upstream
  int skipped_open = 0;      ///< skipped for an open breaker
  int skipped_cooldown = 0;  ///< skipped for the user's 429 cooldown
  int rate_limited = 0;      ///< attempts the provider answered 429 in this request
  int quota_exhausted = 0;   ///< of those, 429s saying waiting will not help (no credit/quota)
  int key_rejected = 0;      ///< attempts answered 401/402/403: the user's key is unusable
  int timed_out = 0;         ///< attempts that ended in a connect, first-byte or total timeout
  /// The earliest `retry_at` of the open-circuit skips (and refused probes).
  std::optional<steady_time> soonest_open;
  std::optional<steady_time> soonest_cooldown;  ///< of cooldown skips and of 429s answered now
  bool deadline = false;                        ///< the request's deadline expired during the walk

  /// Accounts for a skip decided by `next_step`: a cooldown or open-circuit skip counts as keyed
  /// and moves `soonest_cooldown` / `soonest_open`; a no-key skip changes nothing.
  void skipped(const step& s) noexcept;

  /// Accounts for a failed attempt (call it besides `++attempted`): counts 429s (`rate_limited`,
  /// and `quota_exhausted` when `long_cooldown`), 401/402/403 (`key_rejected`) and the three
  /// timeouts (`timed_out`); other outcomes change nothing. `cooldown_until`: for a 429, when
  /// the user's cooldown for that provider ends (from its Retry-After, as the supervisor
  /// computes it); `long_cooldown`: the 429 said waiting will not help soon.
  void failed(outcome o, steady_time cooldown_until = {}, bool long_cooldown = false) noexcept;
};

/// The answer when every provider of the plan was tried or skipped (design §4).
struct exhausted_answer {
  errc code = errc::bad_gateway;  ///< 424, 429, 503, 400 (unsupported only), 504 or 502
  /// The envelope's `code`: `deadline`, `no_provider_key`, `rate_limited`,
  /// `insufficient_quota`, `circuit_open`, `unsupported_by_provider`, `provider_key_rejected`,
  /// `upstream_timeout` or `all_providers_failed`.
  std::string detail_code;
  bool no_retry = true;  ///< send `x-should-retry: false`
  /// Send `Retry-After` (whole seconds, rounded up, >= 1); set for the 429s and the 503.
  std::optional<std::int64_t> retry_after_s;
};

/// Picks the final error (design §4), so that the status tells the client's SDK what to do:
/// - the deadline → 504 `deadline`;
/// - no key for any provider → 424 `no_provider_key`;
/// - every provider with a key rate-limited (skipped for the user's 429 cooldown or answering
///   429 now; providers that cannot express the request aside) → 429 `rate_limited` with
///   `Retry-After` = the soonest end and no `x-should-retry: false` (the SDK retries after it);
///   when every 429 of this request said the quota or credit is exhausted and nothing was
///   merely cooling down → 429 `insufficient_quota` with `x-should-retry: false` (waiting for
///   the Retry-After will not help);
/// - nothing attempted, some breaker open → 503 `circuit_open` with the soonest of the probe
///   and cooldown times;
/// - nothing attempted upstream but some adapter refused the request (other providers may have
///   been skipped for health) → 400 `unsupported_by_provider`;
/// - every attempt rejected the user's key (401/402/403), nothing skipped for health → 424
///   `provider_key_rejected` (retrying cannot help; the user must replace a key);
/// - every attempt timed out, nothing skipped for health → 504 `upstream_timeout`;
/// - otherwise 502 `all_providers_failed`.
/// Every answer but the retriable 429 carries `x-should-retry: false`. `now` only turns the
/// soonest end into `Retry-After` seconds. Pure; the rules are checked in the order above.
exhausted_answer decide_exhausted(const walk_summary& w, steady_time now);

/// The `x-inferbridge-attempts` value: `openai=503;sarvam=no_key;anthropic=200` (one
/// `provider=status`, or `provider=reason` when the status is 0, per attempt, `;`-separated, in
/// order; empty for no attempts). Names and reasons are copied as they are.
std::string attempts_header(const std::vector<attempt_record>& attempts);

/// The record of one attempt (`latency_ms` in milliseconds; `upstream_status` 0 when no response
/// head arrived). The token it shows: its upstream status when the status decided the outcome,
/// else the reason (`reason_text`; a 2xx that still failed — a timeout after the head, a
/// truncated or malformed body — shows the reason).
attempt_record attempt_of(std::string_view provider, int upstream_status, outcome result,
                          std::int64_t latency_ms);

}  // namespace ib
