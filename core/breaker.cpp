#include "core/breaker.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <string>

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
  if (state_ == breaker_state::open && now >= open_until_) {
    return breaker_state::half_open;
  }
  return state_;
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

constexpr std::int64_t ms_per_day = 86'400'000;
// About 31 700 years: far beyond any cap, and clear of overflow in the arithmetic below.
constexpr std::int64_t max_ms = 1'000'000'000'000'000;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

/// `1*DIGIT [ "." *DIGIT ]` or `"." 1*DIGIT` in units of 10^`scale` ms, rounded up to whole ms.
/// Integer arithmetic keeps "0.25" s at exactly 250 ms; huge values saturate at `max_ms`.
std::optional<milliseconds> parse_decimal(std::string_view s, int scale) {
  std::int64_t ms = 0;
  std::size_t i = 0;
  std::size_t digits = 0;
  for (; i < s.size() && is_digit(s[i]); ++i, ++digits) {
    ms = std::min<std::int64_t>(ms * 10 + (s[i] - '0'), max_ms);
  }
  for (int k = 0; k < scale; ++k) {
    ms = std::min<std::int64_t>(ms * 10, max_ms);
  }
  if (i < s.size() && s[i] == '.') {
    bool rest = false;  // a non-zero digit below one millisecond
    int place = scale;
    for (++i; i < s.size() && is_digit(s[i]); ++i, ++digits) {
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

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
std::int64_t days_from_civil(std::int64_t y, int m, int d) {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy =
      (153 * static_cast<unsigned>(m > 2 ? m - 3 : m + 9) + 2) / 5 + static_cast<unsigned>(d) - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

std::int64_t year_of_unix_ms(std::int64_t unix_ms) {
  // Inverse of days_from_civil, year only.
  const std::int64_t z = unix_ms / ms_per_day + 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const std::int64_t y = static_cast<std::int64_t>(yoe) + era * 400;
  return mp >= 10 ? y + 1 : y;
}

bool is_leap(std::int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int days_in_month(std::int64_t y, int m) {
  static constexpr std::array<int, 12> days{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : days[static_cast<std::size_t>(m - 1)];
}

/// A cursor over an HTTP date; each method consumes a token or reports failure.
class date_scanner {
 public:
  explicit date_scanner(std::string_view s) : s_(s) {}

  bool done() const { return pos_ == s_.size(); }

  bool literal(std::string_view lit) {
    if (s_.substr(pos_, lit.size()) != lit) {
      return false;
    }
    pos_ += lit.size();
    return true;
  }

  bool spaces() {  // one or more
    const auto start = pos_;
    while (pos_ < s_.size() && s_[pos_] == ' ') {
      ++pos_;
    }
    return pos_ > start;
  }

  /// Exactly `min_digits`..`max_digits` digits.
  std::optional<int> number(std::size_t min_digits, std::size_t max_digits) {
    int v = 0;
    std::size_t n = 0;
    while (pos_ < s_.size() && n < max_digits && is_digit(s_[pos_])) {
      v = v * 10 + (s_[pos_] - '0');
      ++pos_;
      ++n;
    }
    if (n < min_digits || (pos_ < s_.size() && is_digit(s_[pos_]))) {
      return std::nullopt;
    }
    return v;
  }

  std::string_view word() {
    const auto start = pos_;
    while (pos_ < s_.size() && std::isalpha(static_cast<unsigned char>(s_[pos_])) != 0) {
      ++pos_;
    }
    return s_.substr(start, pos_ - start);
  }

 private:
  std::string_view s_;
  std::size_t pos_ = 0;
};

constexpr std::array<std::string_view, 12> month_names{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
constexpr std::array<std::string_view, 7> short_days{"Mon", "Tue", "Wed", "Thu",
                                                     "Fri", "Sat", "Sun"};
constexpr std::array<std::string_view, 7> long_days{"Monday", "Tuesday",  "Wednesday", "Thursday",
                                                    "Friday", "Saturday", "Sunday"};

template <std::size_t N>
bool one_of(std::string_view w, const std::array<std::string_view, N>& names) {
  return std::find(names.begin(), names.end(), w) != names.end();
}

std::optional<int> month_of(std::string_view w) {
  for (std::size_t i = 0; i < month_names.size(); ++i) {
    if (month_names[i] == w) {
      return static_cast<int>(i) + 1;
    }
  }
  return std::nullopt;
}

struct civil_time {
  std::int64_t year = 0;
  int month = 0;
  int day = 0;
  int hour = 0;
  int minute = 0;
  int second = 0;
};

bool read_clock(date_scanner& in, civil_time& t) {
  const auto h = in.number(2, 2);
  if (!h || !in.literal(":")) {
    return false;
  }
  const auto m = in.number(2, 2);
  if (!m || !in.literal(":")) {
    return false;
  }
  const auto s = in.number(2, 2);
  if (!s) {
    return false;
  }
  t.hour = *h;
  t.minute = *m;
  t.second = *s;
  return true;
}

// IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
std::optional<civil_time> parse_imf_fixdate(std::string_view s) {
  date_scanner in{s};
  civil_time t;
  if (!one_of(in.word(), short_days) || !in.literal(", ")) {
    return std::nullopt;
  }
  const auto day = in.number(2, 2);
  if (!day || !in.literal(" ")) {
    return std::nullopt;
  }
  const auto month = month_of(in.word());
  if (!month || !in.literal(" ")) {
    return std::nullopt;
  }
  const auto year = in.number(4, 4);
  if (!year || !in.literal(" ") || !read_clock(in, t) || !in.literal(" GMT") || !in.done()) {
    return std::nullopt;
  }
  t.year = *year;
  t.month = *month;
  t.day = *day;
  return t;
}

// RFC 850: `Sunday, 06-Nov-94 08:49:37 GMT`.
std::optional<civil_time> parse_rfc850(std::string_view s, std::int64_t now_unix_ms) {
  date_scanner in{s};
  civil_time t;
  if (!one_of(in.word(), long_days) || !in.literal(", ")) {
    return std::nullopt;
  }
  const auto day = in.number(2, 2);
  if (!day || !in.literal("-")) {
    return std::nullopt;
  }
  const auto month = month_of(in.word());
  if (!month || !in.literal("-")) {
    return std::nullopt;
  }
  const auto yy = in.number(2, 2);
  if (!yy || !in.literal(" ") || !read_clock(in, t) || !in.literal(" GMT") || !in.done()) {
    return std::nullopt;
  }
  // RFC 9110 §5.6.7: a two-digit year more than 50 years in the future means the most recent
  // past year with those digits.
  const std::int64_t now_year = year_of_unix_ms(now_unix_ms);
  std::int64_t year = now_year - now_year % 100 + *yy;
  if (year > now_year + 50) {
    year -= 100;
  }
  t.year = year;
  t.month = *month;
  t.day = *day;
  return t;
}

// asctime: `Sun Nov  6 08:49:37 1994`.
std::optional<civil_time> parse_asctime(std::string_view s) {
  date_scanner in{s};
  civil_time t;
  if (!one_of(in.word(), short_days) || !in.literal(" ")) {
    return std::nullopt;
  }
  const auto month = month_of(in.word());
  if (!month || !in.spaces()) {
    return std::nullopt;
  }
  const auto day = in.number(1, 2);
  if (!day || !in.literal(" ") || !read_clock(in, t) || !in.literal(" ")) {
    return std::nullopt;
  }
  const auto year = in.number(4, 4);
  if (!year || !in.done()) {
    return std::nullopt;
  }
  t.year = *year;
  t.month = *month;
  t.day = *day;
  return t;
}

std::optional<std::int64_t> http_date_unix_ms(std::string_view s, std::int64_t now_unix_ms) {
  auto t = parse_imf_fixdate(s);
  if (!t) {
    t = parse_rfc850(s, now_unix_ms);
  }
  if (!t) {
    t = parse_asctime(s);
  }
  if (!t || t->month < 1 || t->month > 12 || t->day < 1 || t->day > days_in_month(t->year, t->month)
      || t->hour > 23 || t->minute > 59 || t->second > 60) {
    return std::nullopt;
  }
  const std::int64_t seconds =
      t->hour * 3600 + t->minute * 60 + std::min(t->second, 59);  // a leap second rounds down
  return days_from_civil(t->year, t->month, t->day) * ms_per_day + seconds * 1000;
}

}  // namespace

std::optional<milliseconds> parse_retry_after(std::string_view retry_after,
                                              std::string_view retry_after_ms,
                                              std::int64_t now_unix_ms) {
  // As the OpenAI SDKs do: `retry-after-ms` first, and an unusable one falls through.
  if (auto ms = parse_decimal(trim(retry_after_ms), 0)) {
    return ms;
  }
  const auto text = trim(retry_after);
  if (text.empty()) {
    return std::nullopt;
  }
  if (is_digit(text.front()) || text.front() == '.') {
    return parse_decimal(text, 3);
  }
  if (const auto at = http_date_unix_ms(text, now_unix_ms)) {
    return milliseconds{std::max<std::int64_t>(*at - now_unix_ms, 0)};
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
