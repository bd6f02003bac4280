#include "core/rate_limit.hpp"

#include <algorithm>
#include <cmath>
#include <functional>

namespace ib {

using std::chrono::nanoseconds;

namespace {

/// Levels are doubles: a bucket refilled for exactly `time_until(n)` may read n - 1e-12. A
/// billionth of a token is far below anything counted.
constexpr double slack = 1e-9;

}  // namespace

// -- token_bucket ---------------------------------------------------------------------------------

token_bucket::token_bucket(double capacity, nanoseconds period, rate_time now) noexcept
    : capacity_(capacity),
      per_ns_(period.count() > 0 ? capacity / static_cast<double>(period.count()) : 0),
      level_(capacity),
      at_(now) {}

void token_bucket::refill(rate_time now) noexcept {
  level_ = level(now);
  // Callers read the clock before taking the lock: an earlier `now` arriving later must not move
  // the bucket back in time (the refill it would repeat is already counted).
  at_ = std::max(at_, now);
}

double token_bucket::level(rate_time now) const noexcept {
  if (now <= at_) {
    return level_;
  }
  auto elapsed = static_cast<double>((now - at_).count());
  return std::min(capacity_, level_ + elapsed * per_ns_);
}

bool token_bucket::holds(double n, rate_time now) const noexcept {
  return level(now) + slack >= n;
}

bool token_bucket::take(double n, rate_time now) noexcept {
  refill(now);
  if (level_ + slack < n) {
    return false;
  }
  level_ -= n;
  return true;
}

void token_bucket::charge(double n, rate_time now) noexcept {
  refill(now);
  level_ -= n;
}

nanoseconds token_bucket::time_until(double n, rate_time now) const noexcept {
  n = std::min(n, capacity_);
  auto l = level(now);
  if (l + slack >= n || per_ns_ <= 0) {
    return nanoseconds{0};
  }
  return nanoseconds{static_cast<std::int64_t>(std::ceil((n - l) / per_ns_))};
}

void token_bucket::resize(double capacity, nanoseconds period, rate_time now) noexcept {
  refill(now);
  capacity_ = capacity;
  per_ns_ = period.count() > 0 ? capacity / static_cast<double>(period.count()) : 0;
  level_ = std::min(level_, capacity_);
}

// -- text -----------------------------------------------------------------------------------------

std::string format_reset(nanoseconds d) {
  if (d.count() <= 0) {
    return "0s";
  }
  // Whole milliseconds, rounded up: a client that waits this long finds the bucket full.
  const std::int64_t ms = (d.count() + 999'999) / 1'000'000;
  if (ms < 1000) {
    return std::to_string(ms) + "ms";
  }
  std::string out;
  const auto hours = ms / 3'600'000;
  const auto minutes = ms / 60'000 % 60;
  const auto sec_ms = ms % 60'000;
  if (hours > 0) {
    out += std::to_string(hours) + "h";
  }
  if (hours > 0 || minutes > 0) {
    out += std::to_string(minutes) + "m";
  }
  out += std::to_string(sec_ms / 1000);
  if (auto frac = sec_ms % 1000; frac != 0) {
    std::string digits = std::to_string(frac);
    digits.insert(0, 3 - digits.size(), '0');
    while (digits.back() == '0') {
      digits.pop_back();
    }
    out += "." + digits;
  }
  out += "s";
  return out;
}

std::int64_t retry_after_seconds(nanoseconds d) noexcept {
  constexpr std::int64_t second = 1'000'000'000;
  return std::max<std::int64_t>(1, (d.count() + second - 1) / second);
}

std::vector<std::pair<std::string_view, std::string>> rate_limit_headers(const admission& a) {
  std::vector<std::pair<std::string_view, std::string>> h;
  if (a.has_requests) {
    h.emplace_back("x-ratelimit-limit-requests", std::to_string(a.requests.limit));
    h.emplace_back("x-ratelimit-remaining-requests", std::to_string(a.requests.remaining));
    h.emplace_back("x-ratelimit-reset-requests", format_reset(a.requests.reset));
  }
  if (a.has_tokens) {
    h.emplace_back("x-ratelimit-limit-tokens", std::to_string(a.tokens.limit));
    h.emplace_back("x-ratelimit-remaining-tokens", std::to_string(a.tokens.remaining));
    h.emplace_back("x-ratelimit-reset-tokens", format_reset(a.tokens.reset));
  }
  return h;
}

// -- user_limiter ---------------------------------------------------------------------------------

namespace {

constexpr nanoseconds minute = std::chrono::minutes(1);
constexpr std::size_t first_prune = 64;  ///< a shard is swept once it holds this many users

struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

bucket_view view_of(const token_bucket& b, std::int64_t limit, rate_time now) {
  bucket_view v;
  v.limit = limit;
  v.remaining = std::max<std::int64_t>(0, static_cast<std::int64_t>(std::floor(b.level(now))));
  v.reset = b.time_until_full(now);
  return v;
}

/// Brings `b` to `per_minute` (created full on first use, resized when the limit changed).
void configure(token_bucket& b, std::int64_t per_minute, rate_time now) {
  const auto capacity = static_cast<double>(per_minute);
  if (b.capacity() == 0) {
    b = token_bucket(capacity, minute, now);
  } else if (b.capacity() != capacity) {
    b.resize(capacity, minute, now);
  }
}

}  // namespace

struct limit_ticket::entry {
  token_bucket requests;
  token_bucket tokens;
  std::size_t inflight = 0;

  bool is_idle(rate_time now) const noexcept {
    return inflight == 0 && (requests.capacity() == 0 || requests.is_full(now))
           && (tokens.capacity() == 0 || tokens.is_full(now));
  }
};

struct user_limiter::shard {
  std::mutex mutex;
  // Node-based: an entry's address is stable while it is in the map, which it is as long as a
  // ticket holds it (an entry with requests in flight is never forgotten).
  std::unordered_map<std::string, limit_ticket::entry, string_hash, std::equal_to<>> users;
  std::size_t next_prune = first_prune;
};

user_limiter::user_limiter() : shards_(std::make_unique<std::array<shard, shard_count>>()) {}

user_limiter::~user_limiter() = default;

admission user_limiter::admit(std::string_view user, const user_limits& limits, rate_time now) {
  admission a;
  const auto index = string_hash{}(user) % shard_count;
  auto& sh = (*shards_)[index];
  std::lock_guard lock{sh.mutex};
  auto it = sh.users.find(user);
  if (it == sh.users.end()) {
    if (sh.users.size() >= sh.next_prune) {
      std::erase_if(sh.users, [now](const auto& kv) { return kv.second.is_idle(now); });
      sh.next_prune = std::max(first_prune, 2 * sh.users.size());
    }
    it = sh.users.emplace(std::string(user), limit_ticket::entry{}).first;
  }
  auto& e = it->second;
  auto refuse = [&a](refusal why, nanoseconds wait) {
    if (a.refused == refusal::none) {
      a.refused = why;
    }
    a.retry_after = std::max(a.retry_after, wait);
  };
  if (limits.requests_per_minute > 0) {
    configure(e.requests, limits.requests_per_minute, now);
    a.has_requests = true;
    if (!e.requests.holds(1, now)) {
      refuse(refusal::requests, e.requests.time_until(1, now));
    }
  }
  if (limits.tokens_per_minute > 0) {
    configure(e.tokens, limits.tokens_per_minute, now);
    a.has_tokens = true;
    // The tokens a request will use are known only after it: it needs a bucket out of debt.
    if (!e.tokens.holds(1, now)) {
      refuse(refusal::tokens, e.tokens.time_until(1, now));
    }
  }
  if (limits.max_inflight > 0 && e.inflight >= limits.max_inflight) {
    // When a slot frees is unknown: OpenAI's SDKs retry after the Retry-After we send (1 s).
    refuse(refusal::inflight, std::chrono::seconds(1));
  }
  if (a.refused == refusal::none) {
    if (a.has_requests) {
      e.requests.take(1, now);
    }
    ++e.inflight;
    a.ticket = limit_ticket(this, index, &e);
  }
  if (a.has_requests) {
    a.requests = view_of(e.requests, limits.requests_per_minute, now);
  }
  if (a.has_tokens) {
    a.tokens = view_of(e.tokens, limits.tokens_per_minute, now);
  }
  return a;
}

void user_limiter::release(std::size_t index, limit_ticket::entry* e, std::int64_t tokens,
                           rate_time now) noexcept {
  auto& sh = (*shards_)[index];
  std::lock_guard lock{sh.mutex};
  if (tokens > 0 && e->tokens.capacity() > 0) {
    e->tokens.charge(static_cast<double>(tokens), now);
  }
  if (e->inflight > 0) {
    --e->inflight;
  }
}

std::size_t user_limiter::inflight(std::string_view user) const {
  auto& sh = (*shards_)[string_hash{}(user) % shard_count];
  std::lock_guard lock{sh.mutex};
  auto it = sh.users.find(user);
  return it == sh.users.end() ? 0 : it->second.inflight;
}

std::size_t user_limiter::tracked() const {
  std::size_t n = 0;
  for (auto& sh : *shards_) {
    std::lock_guard lock{sh.mutex};
    n += sh.users.size();
  }
  return n;
}

// -- limit_ticket ---------------------------------------------------------------------------------

limit_ticket& limit_ticket::operator=(limit_ticket&& other) noexcept {
  if (this != &other) {
    finish(0, rate_time{});
    owner_ = std::exchange(other.owner_, nullptr);
    shard_ = other.shard_;
    entry_ = std::exchange(other.entry_, nullptr);
  }
  return *this;
}

void limit_ticket::finish(std::int64_t tokens, rate_time now) noexcept {
  if (entry_ == nullptr) {
    return;
  }
  owner_->release(shard_, std::exchange(entry_, nullptr), tokens, now);
  owner_ = nullptr;
}

// -- keyed_limiter --------------------------------------------------------------------------------

std::pair<bool, nanoseconds> keyed_limiter::take(std::string_view key, std::int64_t per_hour,
                                                 rate_time now) {
  if (per_hour <= 0) {
    return {true, nanoseconds{0}};
  }
  const auto capacity = static_cast<double>(per_hour);
  std::lock_guard lock{mutex_};
  auto it = buckets_.find(std::string(key));
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_keys_) {
      prune(now);
    }
    it = buckets_.emplace(std::string(key), token_bucket(capacity, std::chrono::hours(1), now))
             .first;
  } else if (it->second.capacity() != capacity) {
    it->second.resize(capacity, std::chrono::hours(1), now);
  }
  if (it->second.take(1, now)) {
    return {true, nanoseconds{0}};
  }
  return {false, it->second.time_until(1, now)};
}

void keyed_limiter::prune(rate_time now) {
  std::erase_if(buckets_, [now](const auto& kv) { return kv.second.is_full(now); });
  while (!buckets_.empty() && buckets_.size() >= max_keys_) {
    buckets_.erase(buckets_.begin());
  }
}

std::size_t keyed_limiter::tracked() const {
  std::lock_guard lock{mutex_};
  return buckets_.size();
}

}  // namespace ib
