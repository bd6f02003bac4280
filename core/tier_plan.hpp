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
  bool has_key = false;
  breaker_state state = breaker_state::closed;
  steady_time retry_at{};                     ///< open: when a probe may go
  std::optional<steady_time> cooldown_until;  ///< the user's cooldown end, if any
};

/// What to do with one provider of the plan.
enum class step_kind : std::uint8_t {
  call,   ///< send the request
  probe,  ///< the breaker may let a probe through: ask its supervisor for the single slot
  skip,   ///< no attempt; `skip_reason` says why
};

struct step {
  step_kind kind = step_kind::call;
  outcome skip_reason =
      outcome::success;  ///< skipped_no_key, skipped_cooldown, skipped_circuit_open
  steady_time until{};   ///< for skips: when the provider may be usable again
};

/// Decides the next step for one provider (pure). Order: no key, then the user's cooldown, then
/// the breaker (closed: call; open before `retry_at`: skip; otherwise: probe).
step next_step(const provider_view& v, steady_time now) noexcept;

/// What the walk over a plan saw, for the final answer.
struct walk_summary {
  int keyed = 0;             ///< providers the user has a key for
  int attempted = 0;         ///< upstream calls made
  int unsupported = 0;       ///< calls the adapter refused before going upstream
  int skipped_open = 0;      ///< skipped for an open breaker
  int skipped_cooldown = 0;  ///< skipped for the user's 429 cooldown
  std::optional<steady_time> soonest_open;
  std::optional<steady_time> soonest_cooldown;
  bool deadline = false;  ///< the request's deadline expired during the walk

  /// Accounts for a skip decided by `next_step`.
  void skipped(const step& s) noexcept;
};

/// The answer when every provider of the plan was tried or skipped (design §4).
struct exhausted_answer {
  errc code = errc::bad_gateway;              ///< 424, 429, 503, 400 (unsupported only), 504 or 502
  std::string detail_code;                    ///< the envelope's `code`
  bool no_retry = true;                       ///< send `x-should-retry: false`
  std::optional<std::int64_t> retry_after_s;  ///< send `Retry-After` (whole seconds, >= 1)
};

/// Picks the final error: no key for any provider → 424 `no_provider_key`; nothing attempted and
/// every keyed provider cooling down → 429 `rate_limited` with the soonest cooldown end (the SDK
/// may retry after it); nothing attempted, some breaker open → 503 `circuit_open` with the soonest
/// of the probe and cooldown times; only adapter refusals → 400; the deadline → 504; otherwise
/// 502 `all_providers_failed`.
exhausted_answer decide_exhausted(const walk_summary& w, steady_time now);

/// The `x-inferbridge-attempts` value: `openai=503;sarvam=no_key;anthropic=200`.
std::string attempts_header(const std::vector<attempt_record>& attempts);

/// Appends the `inferbridge_attempts` JSON array: `[{"provider","status"|"reason","latency_ms"}]`.
void append_attempts_json(std::string& out, const std::vector<attempt_record>& attempts);

/// The token an attempt shows: its upstream status when the status decided the outcome, else
/// the reason (a 2xx that still failed — a timeout after the head, a truncated or malformed
/// body — shows the reason).
attempt_record attempt_of(std::string_view provider, int upstream_status, outcome result,
                          std::int64_t latency_ms);

}  // namespace ib
