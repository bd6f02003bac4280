#include "core/tier_plan.hpp"

#include <algorithm>

namespace ib {

namespace {

void keep_soonest(std::optional<steady_time>& slot, steady_time t) {
  slot = slot ? std::min(*slot, t) : t;
}

}  // namespace

step next_step(const provider_view& v, steady_time now) noexcept {
  if (!v.has_key) {
    return {step_kind::skip, outcome::skipped_no_key, {}};
  }
  if (v.cooldown_until && *v.cooldown_until > now) {
    return {step_kind::skip, outcome::skipped_cooldown, *v.cooldown_until};
  }
  switch (effective_state(v.state, v.retry_at, now)) {
    case breaker_state::closed:
      return {step_kind::call, outcome::success, {}};
    case breaker_state::open:
      return {step_kind::skip, outcome::skipped_circuit_open, v.retry_at};
    case breaker_state::half_open:
      break;
  }
  return {step_kind::probe, outcome::success, {}};
}

void walk_summary::skipped(const step& s) noexcept {
  switch (s.skip_reason) {
    case outcome::skipped_cooldown:
      ++keyed;
      ++skipped_cooldown;
      keep_soonest(soonest_cooldown, s.until);
      break;
    case outcome::skipped_circuit_open:
      ++keyed;
      ++skipped_open;
      keep_soonest(soonest_open, s.until);
      break;
    default:
      break;
  }
}

void walk_summary::failed(outcome o, steady_time cooldown_until, bool long_cooldown) noexcept {
  switch (o) {
    case outcome::rate_limited:
      ++rate_limited;
      if (long_cooldown) {
        ++quota_exhausted;
      }
      keep_soonest(soonest_cooldown, cooldown_until);
      break;
    case outcome::key_rejected:
      ++key_rejected;
      break;
    case outcome::connect_timeout:
    case outcome::first_byte_timeout:
    case outcome::total_timeout:
      ++timed_out;
      break;
    default:
      break;
  }
}

exhausted_answer decide_exhausted(const walk_summary& w, steady_time now) {
  auto seconds_until = [now](steady_time t) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t - now).count();
    return std::max<std::int64_t>(1, (std::max<std::int64_t>(0, ms) + 999) / 1000);
  };
  if (w.deadline) {
    return {errc::gateway_timeout, "deadline", true, std::nullopt};
  }
  if (w.keyed == 0) {
    return {errc::no_provider_key, "no_provider_key", true, std::nullopt};
  }
  const int limited = w.skipped_cooldown + w.rate_limited;
  if (limited > 0 && limited + w.unsupported == w.keyed && w.soonest_cooldown) {
    auto after = seconds_until(*w.soonest_cooldown);
    if (w.skipped_cooldown == 0 && w.quota_exhausted == w.rate_limited) {
      return {errc::rate_limited, "insufficient_quota", true, after};
    }
    // The SDK should retry after the cooldown: no x-should-retry: false here.
    return {errc::rate_limited, "rate_limited", false, after};
  }
  if (w.attempted == 0 && w.unsupported == 0) {
    auto soonest = w.soonest_open.value_or(now);
    if (w.soonest_cooldown) {
      soonest = std::min(soonest, *w.soonest_cooldown);
    }
    return {errc::unavailable, "circuit_open", true, seconds_until(soonest)};
  }
  if (w.attempted == 0) {
    return {errc::invalid_request, "unsupported_by_provider", true, std::nullopt};
  }
  const bool health_skips = w.skipped_open > 0 || w.skipped_cooldown > 0;
  if (!health_skips && w.key_rejected == w.attempted) {
    return {errc::no_provider_key, "provider_key_rejected", true, std::nullopt};
  }
  if (!health_skips && w.timed_out == w.attempted) {
    return {errc::gateway_timeout, "upstream_timeout", true, std::nullopt};
  }
  return {errc::bad_gateway, "all_providers_failed", true, std::nullopt};
}

std::string attempts_header(const std::vector<attempt_record>& attempts) {
  std::string out;
  for (const auto& a : attempts) {
    if (!out.empty()) {
      out.push_back(';');
    }
    out += a.provider;
    out.push_back('=');
    if (a.status != 0) {
      out += std::to_string(a.status);
    } else {
      out += a.reason;
    }
  }
  return out;
}

attempt_record attempt_of(std::string_view provider, int upstream_status, outcome result,
                          std::int64_t latency_ms) {
  bool ok_status = upstream_status >= 200 && upstream_status < 300;
  int shown =
      (upstream_status == 0 || (ok_status && result != outcome::success)) ? 0 : upstream_status;
  return attempt_record{std::string(provider), shown,
                        shown == 0 ? std::string(reason_text(result)) : std::string{}, latency_ms};
}

}  // namespace ib
