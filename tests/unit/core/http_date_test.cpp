#include "core/http_date.hpp"

#include <cstdint>
#include <iterator>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

namespace ib {
namespace {

// Wed, 21 Oct 2015 07:28:00 GMT: the wall clock of most cases below.
constexpr std::int64_t oct21_2015 = 1445412480;
// Sun, 06 Nov 1994 08:49:37 GMT: RFC 9110's example.
constexpr std::int64_t nov6_1994 = 784111777;

struct date_case {
  std::string_view text;
  std::optional<std::int64_t> expected;
};

TEST(HttpDate, ValidForms) {
  const date_case cases[] = {
      {"Sun, 06 Nov 1994 08:49:37 GMT", nov6_1994},         // IMF-fixdate
      {"Sunday, 06-Nov-94 08:49:37 GMT", nov6_1994},        // RFC 850
      {"Sun Nov  6 08:49:37 1994", nov6_1994},              // asctime, day padded with a space
      {"Sun Nov 06 08:49:37 1994", nov6_1994},              // ... or with a zero
      {"Wed, 21 Oct 2015 07:28:00 GMT", oct21_2015},        //
      {"Wed Oct 21 07:28:00 2015", oct21_2015},             //
      {"Thu, 01 Jan 1970 00:00:00 GMT", 0},                 // the epoch
      {"Wed, 31 Dec 1969 23:59:59 GMT", -1},                // before it
      {"Sat, 01 Jan 2000 00:00:00 GMT", 946684800},         //
      {"Fri, 31 Dec 1999 23:59:59 GMT", 946684799},         //
      {"Fri, 31 Dec 9999 23:59:59 GMT", 253402300799},      // the largest four-digit year
      {"Sat, 01 Jan 0000 00:00:00 GMT", -62167219200},      // the smallest (proleptic)
      {"Sun, 06 Nov 1994 08:49:60 GMT", nov6_1994 + 22},    // leap second: read as :59
      {"Sunday, 06-Nov-94 08:49:60 GMT", nov6_1994 + 22},   //
      {"Sun Nov  6 08:49:60 1994", nov6_1994 + 22},         //
      {"Mon, 06 Nov 1994 08:49:37 GMT", nov6_1994},         // the day name is not checked...
      {"Friday, 06-Nov-94 08:49:37 GMT", nov6_1994},        // ... in any form
      {"Tue Nov  6 08:49:37 1994", nov6_1994},              //
      {"Sun, 06 Nov 1994 00:00:00 GMT", nov6_1994 - 31777}  // midnight
  };
  for (const auto& c : cases) {
    EXPECT_EQ(parse_http_date(c.text, oct21_2015), c.expected) << "'" << c.text << "'";
  }
}

TEST(HttpDate, InvalidInputs) {
  const std::string_view cases[] = {
      "",
      " ",
      "soon",
      "1445412480",
      "Sun, 06 Nov 1994 08:49:37",       // no zone
      "Sun, 06 Nov 1994 08:49:37 UTC",   // only GMT
      "Sun, 06 Nov 1994 08:49:37 GMT ",  // the caller trims; we do not
      " Sun, 06 Nov 1994 08:49:37 GMT",  //
      "Sun, 06 Nov 1994 08:49:37 GMT trailing",
      "sun, 06 nov 1994 08:49:37 gmt",       // names are case-sensitive
      "Sun, 6 Nov 1994 08:49:37 GMT",        // IMF-fixdate: two-digit day
      "Sun, 06 Nov 94 08:49:37 GMT",         // ... four-digit year
      "Sun, 06 Nov 19940 08:49:37 GMT",      //
      "Sun,  06 Nov 1994 08:49:37 GMT",      // ... single spaces
      "Sun, 06 November 1994 08:49:37 GMT",  // ... short month names
      "Sunday, 06 Nov 1994 08:49:37 GMT",    // ... short day names
      "Sun, 06-Nov-94 08:49:37 GMT",         // RFC 850: long day names
      "Sunday, 06-Nov-1994 08:49:37 GMT",    // ... two-digit year
      "Sun Nov 6 08:49:37 94",               // asctime: four-digit year
      "Sun Nov  6 08:49:37 1994 GMT",        // ... no zone
      "Xyz, 06 Nov 1994 08:49:37 GMT",       // no such day name
      "Sun, 06 Foo 1994 08:49:37 GMT",       // no such month
      "Sun, 00 Nov 1994 08:49:37 GMT",       // no day 0
      "Sun, 31 Nov 1994 08:49:37 GMT",       // November has 30 days
      "Sun, 32 Oct 1994 08:49:37 GMT",       //
      "Sun, 06 Nov 1994 24:00:00 GMT",       // hour 24
      "Sun, 06 Nov 1994 08:60:37 GMT",       // minute 60
      "Sun, 06 Nov 1994 08:49:61 GMT",       // second 61
      "Sun, 06 Nov 1994 8:49:37 GMT",        // two-digit fields
      "Sun, 06 Nov 1994 08:49 GMT",          //
      "Sun, 06 Nov 1994 08-49-37 GMT",       //
      "Sun, 06 Nov -994 08:49:37 GMT",       //
  };
  for (const auto text : cases) {
    EXPECT_EQ(parse_http_date(text, oct21_2015), std::nullopt) << "'" << text << "'";
  }
}

TEST(HttpDate, LeapYears) {
  // Divisible by 4: leap; by 100: not; by 400: leap again.
  EXPECT_EQ(parse_http_date("Thu, 29 Feb 2024 00:00:00 GMT", oct21_2015), 1709164800);
  EXPECT_EQ(parse_http_date("Tue, 29 Feb 2000 12:00:00 GMT", oct21_2015), 951825600);
  EXPECT_EQ(parse_http_date("Tue, 29 Feb 1600 00:00:00 GMT", oct21_2015), -11670998400);
  EXPECT_EQ(parse_http_date("Sun, 29 Feb 2015 00:00:00 GMT", oct21_2015), std::nullopt);
  EXPECT_EQ(parse_http_date("Thu, 29 Feb 1900 00:00:00 GMT", oct21_2015), std::nullopt);
  EXPECT_EQ(parse_http_date("Mon, 29 Feb 2100 00:00:00 GMT", oct21_2015), std::nullopt);
  EXPECT_EQ(parse_http_date("Thu, 30 Feb 2024 00:00:00 GMT", oct21_2015), std::nullopt);
  EXPECT_EQ(parse_http_date("Thursday, 29-Feb-24 00:00:00 GMT", oct21_2015), 1709164800);
  EXPECT_EQ(parse_http_date("Thu Feb 29 00:00:00 2024", oct21_2015), 1709164800);
  EXPECT_EQ(parse_http_date("Sun Feb 29 00:00:00 2015", oct21_2015), std::nullopt);
  // The day after a leap day.
  EXPECT_EQ(parse_http_date("Fri, 01 Mar 2024 00:00:00 GMT", oct21_2015), 1709164800 + 86400);
}

TEST(HttpDate, Rfc850TwoDigitYearsFollowTheClock) {
  // RFC 9110 §5.6.7: more than 50 years in the future means the past century.
  EXPECT_EQ(parse_http_date("Sunday, 06-Nov-65 08:49:37 GMT", oct21_2015), 3024722977);  // 2065
  EXPECT_EQ(parse_http_date("Sunday, 06-Nov-66 08:49:37 GMT", oct21_2015), -99501023);   // 1966
  EXPECT_EQ(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT", oct21_2015), nov6_1994);
  // Seen from 2050, "94" is 2094.
  EXPECT_EQ(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT", 2524608000), 3939871777);
  // The clock's year is that of its UTC day, also before the epoch.
  EXPECT_EQ(parse_http_date("Wednesday, 31-Dec-69 23:59:59 GMT", -1), -1);
  // An absurd clock does not crash (the sanitizers watch), whatever year it yields.
  (void)parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT", INT64_MAX);
  (void)parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT", INT64_MIN);
}

TEST(HttpDate, RandomBytesNeverCrash) {
  std::mt19937 rng{4321};
  const std::string_view seeds[] = {"Sun, 06 Nov 1994 08:49:37 GMT",
                                    "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994",
                                    "Thu, 29 Feb 2024 00:00:00 GMT"};
  const std::int64_t clocks[] = {oct21_2015, 0, -1, INT64_MAX, INT64_MIN};
  for (int i = 0; i < 20000; ++i) {
    std::string s{seeds[static_cast<std::size_t>(i) % std::size(seeds)]};
    const int edits = static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !s.empty(); ++e) {
      s[rng() % s.size()] = static_cast<char>(rng() % 256);
    }
    if (i % 3 == 0) {
      s.resize(rng() % 40);
      for (auto& c : s) {
        c = static_cast<char>(rng() % 256);
      }
    }
    const auto now = clocks[static_cast<std::size_t>(i) % std::size(clocks)];
    const auto at = parse_http_date(s, now);
    if (at && now == oct21_2015) {
      // Four-digit years, or two digits within a century of 2015.
      EXPECT_GE(*at, -62167219200) << s;
      EXPECT_LE(*at, 253402300799) << s;
    }
  }
}

}  // namespace
}  // namespace ib
