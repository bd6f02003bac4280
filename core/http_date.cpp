#include "core/http_date.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cstddef>

#include "core/text.hpp"

namespace ib {

namespace {

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
    while (pos_ < s_.size() && n < max_digits && is_ascii_digit(s_[pos_])) {
      v = v * 10 + (s_[pos_] - '0');
      ++pos_;
      ++n;
    }
    if (n < min_digits || (pos_ < s_.size() && is_ascii_digit(s_[pos_]))) {
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

/// The fields as written; not yet checked against the calendar.
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

/// The proleptic Gregorian year (UTC) in which `unix_s` falls.
std::int64_t year_of(std::int64_t unix_s) {
  using namespace std::chrono;
  const year_month_day date{floor<days>(sys_seconds{seconds{unix_s}})};
  return static_cast<int>(date.year());
}

// RFC 850: `Sunday, 06-Nov-94 08:49:37 GMT`.
std::optional<civil_time> parse_rfc850(std::string_view s, std::int64_t now_unix_s) {
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
  const std::int64_t now_year = year_of(now_unix_s);
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

}  // namespace

std::optional<std::int64_t> parse_http_date(std::string_view text, std::int64_t now_unix_s) {
  using namespace std::chrono;
  auto t = parse_imf_fixdate(text);
  if (!t) {
    t = parse_rfc850(text, now_unix_s);
  }
  if (!t) {
    t = parse_asctime(text);
  }
  // year_month_day holds years in [-32767, 32767]; only an RFC 850 year next to an absurd `now`
  // can fall outside.
  if (!t || t->year < static_cast<int>(year::min()) || t->year > static_cast<int>(year::max())) {
    return std::nullopt;
  }
  const year_month_day date{year{static_cast<int>(t->year)}, month{static_cast<unsigned>(t->month)},
                            day{static_cast<unsigned>(t->day)}};
  if (!date.ok() || t->hour > 23 || t->minute > 59 || t->second > 60) {
    return std::nullopt;
  }
  const sys_seconds at = sys_days{date} + hours{t->hour} + minutes{t->minute}
                         + seconds{std::min(t->second, 59)};  // a leap second rounds down
  return at.time_since_epoch().count();
}

}  // namespace ib
