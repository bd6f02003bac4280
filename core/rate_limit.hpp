#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

/// Abuse control at the API (issue 18): token buckets per user (requests and tokens per minute,
/// chat requests in flight) and per client address (sign-ups per hour). Time is an argument:
/// nothing here reads a clock. The hot path is one mutex of 64, a hash lookup and a few
/// arithmetic operations, never an actor round trip.
namespace ib {

using rate_clock = std::chrono::steady_clock;
using rate_time = rate_clock::time_point;

/// A token bucket refilled continuously: `capacity` tokens per `period`, holding at most
/// `capacity`. Starts full. `charge` may take it below zero (a debt paid back by the refill).
class token_bucket {
 public:
  token_bucket() = default;
  token_bucket(double capacity, std::chrono::nanoseconds period, rate_time now) noexcept;

  /// Whether the bucket holds at least `n` tokens at `now`.
  bool holds(double n, rate_time now) const noexcept;
  /// Takes `n` tokens if the bucket holds at least `n` (after refilling to `now`).
  bool take(double n, rate_time now) noexcept;
  /// Takes `n` tokens unconditionally: the level may go negative.
  void charge(double n, rate_time now) noexcept;
  /// The level at `now` (may be negative).
  double level(rate_time now) const noexcept;
  /// How long until the bucket holds `n` tokens (zero if it does already; `n` above the
  /// capacity is treated as the capacity).
  std::chrono::nanoseconds time_until(double n, rate_time now) const noexcept;
  /// How long until the bucket is full again (OpenAI's "resets to its initial state").
  std::chrono::nanoseconds time_until_full(rate_time now) const noexcept {
    return time_until(capacity_, now);
  }
  /// Whether it is full at `now` (an idle bucket that can be forgotten).
  bool is_full(rate_time now) const noexcept { return holds(capacity_, now); }
  double capacity() const noexcept { return capacity_; }
  /// Changes the capacity and the rate (same `period`), keeping the level (at most the new
  /// capacity).
  void resize(double capacity, std::chrono::nanoseconds period, rate_time now) noexcept;

 private:
  void refill(rate_time now) noexcept;

  double capacity_ = 0;
  double per_ns_ = 0;  ///< refill rate, tokens per nanosecond
  double level_ = 0;
  rate_time at_{};  ///< when `level_` was computed
};

/// OpenAI's duration text for `x-ratelimit-reset-*` (Go's `time.Duration` format, as in the
/// rate-limits guide: `6m0s`, `1s`, `120ms`, `1.5s`, `1h2m3s`): below one second whole
/// milliseconds (rounded up, `0s` for zero or less), else hours, minutes and seconds with up to
/// three decimals (rounded up to the millisecond).
std::string format_reset(std::chrono::nanoseconds d);

/// `Retry-After` in whole seconds for a wait of `d`: rounded up, at least 1.
std::int64_t retry_after_seconds(std::chrono::nanoseconds d) noexcept;

/// The per-user limits in force (plain data; 0 turns a limit off).
struct user_limits {
  std::int64_t requests_per_minute = 0;  ///< chat requests per user per minute
  std::int64_t tokens_per_minute = 0;    ///< prompt + completion tokens per user per minute
  std::size_t max_inflight = 0;          ///< chat requests of one user in flight at once

  /// Whether any limit is on (if none is, nothing is tracked at all).
  bool any() const noexcept {
    return requests_per_minute > 0 || tokens_per_minute > 0 || max_inflight > 0;
  }
};

/// What a bucket looked like when a request was admitted or refused: the `x-ratelimit-*` trio.
struct bucket_view {
  std::int64_t limit = 0;             ///< the capacity (the per-minute figure)
  std::int64_t remaining = 0;         ///< whole tokens left (never negative)
  std::chrono::nanoseconds reset{0};  ///< until the bucket is full again
};

/// Why a request was refused (`none`: admitted).
enum class refusal : std::uint8_t {
  none,
  inflight,  ///< `max_inflight` of the user's requests are in flight
  requests,  ///< the requests-per-minute bucket is empty
  tokens,    ///< the tokens-per-minute bucket is empty or in debt
};

class user_limiter;

/// One admitted request's hold on its user's limits (move-only): its in-flight slot until
/// `finish` (which also charges the tokens it used) or its destruction (which charges none).
class limit_ticket {
 public:
  limit_ticket() = default;
  limit_ticket(limit_ticket&& other) noexcept
      : owner_(std::exchange(other.owner_, nullptr)),
        shard_(other.shard_),
        entry_(std::exchange(other.entry_, nullptr)) {}
  limit_ticket& operator=(limit_ticket&& other) noexcept;
  limit_ticket(const limit_ticket&) = delete;
  limit_ticket& operator=(const limit_ticket&) = delete;
  ~limit_ticket() { finish(0, rate_time{}); }

  /// Frees the in-flight slot and charges `tokens` to the user's token bucket at `now` (the
  /// level may go negative: the user's next request then waits). Idempotent: only the first
  /// call counts.
  void finish(std::int64_t tokens, rate_time now) noexcept;
  /// Whether it still holds a slot.
  explicit operator bool() const noexcept { return entry_ != nullptr; }

 private:
  friend class user_limiter;
  struct entry;
  limit_ticket(user_limiter* owner, std::size_t shard, entry* e) noexcept
      : owner_(owner), shard_(shard), entry_(e) {}

  user_limiter* owner_ = nullptr;
  std::size_t shard_ = 0;
  entry* entry_ = nullptr;
};

/// The outcome of `user_limiter::admit`.
struct admission {
  refusal refused = refusal::none;
  /// A refusal: how long until a retry can succeed (for `inflight`, unknown: 1 s).
  std::chrono::nanoseconds retry_after{0};
  bool has_requests = false;  ///< the requests limit is on: `requests` is set
  bool has_tokens = false;    ///< the tokens limit is on: `tokens` is set
  bucket_view requests;       ///< after this request was counted (if admitted)
  bucket_view tokens;
  limit_ticket ticket;  ///< admitted: the in-flight slot, to `finish` when the answer is complete
};

/// The `x-ratelimit-*` response headers of `a` (OpenAI's names; only the limits that are on), in
/// the order requests then tokens: limit, remaining, reset. Names are static strings.
/// Checked 2026-11-30 against OpenAI's rate-limits guide, "Rate limits in headers" (the copy of
/// platform.openai.com/docs/guides/rate-limits dated 2026-06-26): `x-ratelimit-limit-requests`
/// (60), `-limit-tokens` (150000), `-remaining-requests` (59), `-remaining-tokens` (149984),
/// `-reset-requests` (`1s`) and `-reset-tokens` (`6m0s`), a reset being "the time until the rate
/// limit resets to its initial state"; live API answers also show `12ms`-style values.
std::vector<std::pair<std::string_view, std::string>> rate_limit_headers(const admission& a);

/// Per-user limits: the requests and tokens buckets and the in-flight count of every user seen,
/// in 64 shards each behind its own mutex. Thread-safe. Memory is bounded by the users active
/// recently: a user with nothing in flight and full buckets is forgotten when its shard grows.
class user_limiter {
 public:
  user_limiter();
  ~user_limiter();
  user_limiter(const user_limiter&) = delete;
  user_limiter& operator=(const user_limiter&) = delete;

  /// Admits one request of `user` under `limits` at `now`, or says why not. All checks happen
  /// before anything is counted: a refused request takes no request token and no slot. Admitted,
  /// it counts one request and holds one in-flight slot (the ticket). The ticket must not
  /// outlive this limiter.
  admission admit(std::string_view user, const user_limits& limits, rate_time now);

  /// The user's requests in flight now.
  std::size_t inflight(std::string_view user) const;
  /// Users tracked now (across shards).
  std::size_t tracked() const;

 private:
  friend class limit_ticket;
  struct shard;
  void release(std::size_t shard, limit_ticket::entry* e, std::int64_t tokens,
               rate_time now) noexcept;

  static constexpr std::size_t shard_count = 64;
  std::unique_ptr<std::array<shard, shard_count>> shards_;
};

/// A token bucket per key (a client address): `per_hour` events per hour each. Thread-safe, one
/// mutex (for rare events such as sign-ups). At most `max_keys` keys are kept: keys whose bucket
/// is full again are forgotten first; if none is, an arbitrary one is dropped (that address gets a
/// fresh bucket: the bound on memory wins over exactness under a flood of addresses).
class keyed_limiter {
 public:
  explicit keyed_limiter(std::size_t max_keys = 65'536) : max_keys_(max_keys) {}

  /// Takes one event for `key` at `now` from a bucket of `per_hour` per hour; on refusal, how
  /// long until one is available. `per_hour` <= 0 admits everything and tracks nothing.
  std::pair<bool, std::chrono::nanoseconds> take(std::string_view key, std::int64_t per_hour,
                                                 rate_time now);
  /// Keys tracked now.
  std::size_t tracked() const;

 private:
  void prune(rate_time now);

  mutable std::mutex mutex_;
  std::size_t max_keys_;
  std::unordered_map<std::string, token_bucket> buckets_;
};

}  // namespace ib
