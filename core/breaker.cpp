#include "core/breaker.hpp"

#include <algorithm>
#include <string>

#include "core/http_date.hpp"
#include "core/text.hpp"

namespace ib {

using std::chrono::milliseconds;

std::string_view to_string(breaker_state s) noexcept {
  switch (s) {
    case breaker_state::closed:
      return "closed";
    case breaker_state::half_open:
      return "half_open";
    case breaker_state::open:
      return "open";
  }
  return "unknown";
}

// -- breaker ----------------------------------------------------------------------------------

breaker::breaker(breaker_config cfg)
    : cfg_(cfg), cooldown_(std::min(cfg.cooldown, cfg.max_cooldown)) {
  // nop
}

bool breaker::admit(steady_time now) {
  switch (state_) {
    case breaker_state::closed:
      return true;
    case breaker_state::open:
      if (now < open_until_) {
        return false;
      }
      state_ = breaker_state::half_open;
      probe_out_ = true;
      probe_started_ = now;
      return true;
    case breaker_state::half_open:
      // A probe that never reported (its request died silently) must not wedge the breaker in
      // half-open forever: after probe_timeout another request may probe.
      if (probe_out_ && now - probe_started_ < cfg_.probe_timeout) {
        return false;
      }
      probe_out_ = true;
      probe_started_ = now;
      return true;
  }
  return false;
}

std::optional<breaker_transition> breaker::record(outcome o, steady_time now) {
  const bool failure = counts_against_breaker(o);
  const bool success = o == outcome::success;
  switch (state_) {
    case breaker_state::closed: {
      if (!failure && !success) {
        return std::nullopt;  // neutral: not the provider's fault, not evidence of health either
      }
      consecutive_ = failure ? consecutive_ + 1 : 0;
      window_.push_back({now, failure});
      if (failure) {
        ++window_failures_;
      }
      prune(now);
      const bool streak =
          cfg_.consecutive_failures > 0 && consecutive_ >= cfg_.consecutive_failures;
      const auto n = static_cast<int>(window_.size());
      const bool ratio = failure && cfg_.window > 0 && n >= std::max(cfg_.min_requests, 1)
                         && static_cast<double>(window_failures_) / n >= cfg_.failure_ratio;
      if (streak || ratio) {
        trip(now);
        return breaker_transition{breaker_state::closed, breaker_state::open};
      }
      return std::nullopt;
    }
    case breaker_state::open:
      // Late results of requests admitted before the trip: a failure must not re-trip (nor
      // double the cooldown), and a success does not prove the provider healthy again; only the
      // half-open probe decides.
      return std::nullopt;
    case breaker_state::half_open:
      if (!probe_out_) {
        return std::nullopt;  // no probe is out: this is a late result from before the trip
      }
      if (success) {
        close();
        return breaker_transition{breaker_state::half_open, breaker_state::closed};
      }
      if (failure) {
        trip(now);
        return breaker_transition{breaker_state::half_open, breaker_state::open};
      }
      probe_out_ = false;  // neutral: the probe proved nothing; let another request probe
      return std::nullopt;
  }
  return std::nullopt;
}

std::optional<breaker_transition> breaker::record(outcome o, steady_time now,
                                                  steady_time admitted_at) {
  // A result of a request admitted before the current regime began (before the last trip, or
  // before the breaker closed again, or before the probe now out) says nothing about it.
  if (admitted_at < regime_start_
      || (state_ == breaker_state::half_open && probe_out_ && admitted_at < probe_started_)) {
    return std::nullopt;
  }
  return record(o, now);
}

breaker_state breaker::state(steady_time now) const {
  return effective_state(state_, open_until_, now);
}

void breaker::trip(steady_time now) {
  state_ = breaker_state::open;
  open_until_ = now + cooldown_;
  regime_start_ = now;
  // The next trip can only be a re-trip from half-open, which doubles the open period.
  cooldown_ = std::min(cooldown_ * 2, cfg_.max_cooldown);
  probe_out_ = false;
  consecutive_ = 0;
  window_.clear();
  window_failures_ = 0;
}

void breaker::adopt_open(steady_time retry_at, std::chrono::milliseconds next_cooldown,
                         steady_time now) {
  state_ = breaker_state::open;
  open_until_ = retry_at;
  regime_start_ = now;
  cooldown_ = std::clamp(next_cooldown, std::chrono::milliseconds{1}, cfg_.max_cooldown);
  probe_out_ = false;
  consecutive_ = 0;
  window_.clear();
  window_failures_ = 0;
}

void breaker::adopt_closed(steady_time now) {
  probe_started_ = now;  // close() starts the new regime there
  close();
}

void breaker::close() {
  state_ = breaker_state::closed;
  regime_start_ = probe_started_;
  cooldown_ = std::min(cfg_.cooldown, cfg_.max_cooldown);
  probe_out_ = false;
  consecutive_ = 0;
  window_.clear();
  window_failures_ = 0;
}

void breaker::prune(steady_time now) {
  const auto drop_front = [this] {
    if (window_.front().failure) {
      --window_failures_;
    }
    window_.pop_front();
  };
  while (!window_.empty() && now - window_.front().at > cfg_.window_span) {
    drop_front();
  }
  const auto cap = static_cast<std::size_t>(std::max(cfg_.window, 0));
  while (window_.size() > cap) {
    drop_front();
  }
}

// -- Retry-After ------------------------------------------------------------------------------

namespace {

// About 31 700 years: far beyond any cap, and clear of overflow in the arithmetic below.
constexpr std::int64_t max_ms = 1'000'000'000'000'000;

/// HTTP's optional whitespace (RFC 9110 §5.6.3).
constexpr std::string_view ows = " \t";

/// `1*DIGIT [ "." *DIGIT ]` or `"." 1*DIGIT` in units of 10^`scale` ms, rounded up to whole ms.
/// Integer arithmetic keeps "0.25" s at exactly 250 ms; huge values saturate at `max_ms`.
std::optional<milliseconds> parse_decimal(std::string_view s, int scale) {
  std::int64_t ms = 0;
  std::size_t i = 0;
  std::size_t digits = 0;
  for (; i < s.size() && is_ascii_digit(s[i]); ++i, ++digits) {
    ms = std::min<std::int64_t>(ms * 10 + (s[i] - '0'), max_ms);
  }
  for (int k = 0; k < scale; ++k) {
    ms = std::min<std::int64_t>(ms * 10, max_ms);
  }
  if (i < s.size() && s[i] == '.') {
    bool rest = false;  // a non-zero digit below one millisecond
    int place = scale;
    for (++i; i < s.size() && is_ascii_digit(s[i]); ++i, ++digits) {
      const int d = s[i] - '0';
      if (place > 0) {
        std::int64_t unit = 1;
        for (int k = 1; k < place; ++k) {
          unit *= 10;
        }
        ms = std::min<std::int64_t>(ms + d * unit, max_ms);
        --place;
      } else if (d != 0) {
        rest = true;
      }
    }
    if (rest) {
      ms = std::min<std::int64_t>(ms + 1, max_ms);
    }
  }
  if (digits == 0 || i != s.size()) {
    return std::nullopt;
  }
  return milliseconds{ms};
}

}  // namespace

std::optional<milliseconds> parse_retry_after(std::string_view retry_after,
                                              std::string_view retry_after_ms,
                                              std::int64_t now_unix_ms) {
  // As the OpenAI SDKs do: `retry-after-ms` first, and an unusable one falls through.
  if (auto ms = parse_decimal(trim(retry_after_ms, ows), 0)) {
    return ms;
  }
  const auto text = trim(retry_after, ows);
  if (text.empty()) {
    return std::nullopt;
  }
  if (is_ascii_digit(text.front()) || text.front() == '.') {
    return parse_decimal(text, 3);
  }
  const auto now_s = std::chrono::floor<std::chrono::seconds>(milliseconds{now_unix_ms});
  if (const auto at = parse_http_date(text, now_s.count())) {
    return milliseconds{std::max<std::int64_t>(*at * 1000 - now_unix_ms, 0)};
  }
  return std::nullopt;
}

milliseconds cooldown_for(std::optional<milliseconds> parsed, const cooldown_config& cfg) {
  const milliseconds d = parsed && *parsed > milliseconds::zero() ? *parsed : cfg.default_cooldown;
  return std::min(d, cfg.max_cooldown);
}

// -- cooldown_table ---------------------------------------------------------------------------

void cooldown_table::start(std::string_view user, milliseconds d, steady_time now) {
  const steady_time end = now + d;
  auto [it, inserted] = until_.try_emplace(std::string{user}, end);
  if (!inserted && it->second < end) {
    it->second = end;
  }
}

std::optional<steady_time> cooldown_table::until(std::string_view user, steady_time now) const {
  const auto it = until_.find(std::string{user});
  if (it == until_.end() || it->second <= now) {
    return std::nullopt;
  }
  return it->second;
}

bool cooldown_table::prune(steady_time now) {
  return std::erase_if(until_, [now](const auto& kv) { return kv.second <= now; }) > 0;
}

}  // namespace ib
