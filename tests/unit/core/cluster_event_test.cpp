#include "core/cluster_event.hpp"

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <random>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

namespace ib {
namespace {

using namespace std::string_literals;

/// `s` with its non-printable bytes as \xNN, for failure messages.
std::string show(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c < 0x20 || c >= 0x7f) {
      constexpr char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// -- round trip -----------------------------------------------------------------------------------

struct round_trip_case {
  cluster_event event;
  std::string payload;
};

const std::string name200(200, 'n');

TEST(ClusterEvent, RoundTripTable) {
  const round_trip_case cases[] = {
      {key_event{"node-a", "usr_1"}, "k node-a usr_1"},
      {key_event{"n", "u"}, "k n u"},
      {key_event{name200, name200}, "k " + name200 + " " + name200},
      {key_event{"nœud-é", "usr_ü"}, "k nœud-é usr_ü"},  // bytes above 0x7f are fine
      {key_event{"a!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", "0"},
       "k a!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ 0"},
      {breaker_event{"node-a", "openai", breaker_state::open, 1764487663000, 60000},
       "b node-a openai open 1764487663000 60000"},
      {breaker_event{"node-b", "groq", breaker_state::closed, 0, 0}, "b node-b groq closed 0 0"},
      {breaker_event{"n", "p", breaker_state::open, 0, 1}, "b n p open 0 1"},
      {breaker_event{"n", "p", breaker_state::open, 999999999999999999, 999999999999999999},
       "b n p open 999999999999999999 999999999999999999"},  // 18 digits
      {breaker_event{name200, name200, breaker_state::open, 1, 2},
       "b " + name200 + " " + name200 + " open 1 2"},
      {cooldown_event{"node-c", "anthropic", "usr_9", 1764487663123},
       "c node-c anthropic usr_9 1764487663123"},
      {cooldown_event{"n", "p", "u", 0}, "c n p u 0"},
      {cooldown_event{name200, name200, name200, 999999999999999999},
       "c " + name200 + " " + name200 + " " + name200 + " 999999999999999999"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(encode(c.event), c.payload);
    const auto r = decode(c.payload);
    ASSERT_TRUE(r) << show(c.payload) << ": " << r.error().message;
    EXPECT_TRUE(*r == c.event) << show(c.payload);
    EXPECT_EQ(r->index(), c.event.index()) << show(c.payload);
    EXPECT_EQ(encode(*r), c.payload);
    EXPECT_EQ(node_of(*r), node_of(c.event));
  }
}

TEST(ClusterEvent, NodeOfEveryKind) {
  EXPECT_EQ(node_of(key_event{"a", "u"}), "a");
  EXPECT_EQ(node_of(breaker_event{"b", "p", breaker_state::open, 1, 2}), "b");
  EXPECT_EQ(node_of(cooldown_event{"c", "p", "u", 3}), "c");
}

// -- malformed input ------------------------------------------------------------------------------

struct malformed_case {
  std::string payload;
  std::string_view why;
};

TEST(ClusterEvent, MalformedIsRejected) {
  const std::string name201(201, 'n');
  const malformed_case cases[] = {
      // the kind
      {"", "empty"},
      {" ", "a lone space"},
      {"x n u", "unknown kind"},
      {"K n u", "kinds are lower case"},
      {"kk n u", "a two-letter kind"},
      {"key n u", "a word for a kind"},
      {" k n u", "a leading space"},
      {"\0 n u"s, "a NUL kind"},
      {"k\tn u", "a tab after the kind"},
      // missing, extra and empty fields
      {"k", "no fields"},
      {"k ", "an empty field"},
      {"k n", "one field of two"},
      {"k n u x", "an extra field"},
      {"k n u x y z a b c d e f g h", "many extra fields"},
      {"k  u", "an empty node (a double space)"},
      {"k n  u", "a double space"},
      {"k n u ", "a trailing space"},
      {"k n u  ", "two trailing spaces"},
      {"b n p open 1", "a breaker event missing a time"},
      {"b n p open", "a breaker event without times"},
      {"b n p", "a breaker event without a state"},
      {"b n p open 1 2 3", "a breaker event with an extra field"},
      {"b n p open 1 2 ", "a breaker event with a trailing space"},
      {"b n p open  1 2", "a breaker event with a double space"},
      {"b n  open 1 2", "a breaker event with an empty provider"},
      {"c n p u", "a cooldown event without a time"},
      {"c n p 5", "a cooldown event missing a name"},
      {"c n p u 5 6", "a cooldown event with an extra field"},
      {"c n p u 5 ", "a cooldown event with a trailing space"},
      {"c n p  5", "a cooldown event with an empty user"},
      {"k n b n p open 1 2", "two events in one"},
      // names
      {"k n\x01 u", "a control byte in the node"},
      {"k n u\x1f", "a control byte in the user"},
      {"k n\x7f u", "DEL in the node"},
      {"k n\0x u"s, "NUL in the node"},
      {"k n u\n", "a trailing newline"},
      {"k n u\r\n", "a trailing CRLF"},
      {"k n\tx u", "a tab in the node"},
      {"k " + name201 + " u", "a node of 201 bytes"},
      {"k n " + name201, "a user of 201 bytes"},
      {"b " + name201 + " p open 1 2", "a breaker node of 201 bytes"},
      {"b n " + name201 + " open 1 2", "a provider of 201 bytes"},
      {"c n p " + name201 + " 1", "a cooldown user of 201 bytes"},
      {"b n p\x01 open 1 2", "a control byte in the provider"},
      {"c n p u\x02 1", "a control byte in the cooldown user"},
      // the breaker state
      {"b n p half_open 1 2", "half_open is never published"},
      {"b n p OPEN 1 2", "states are lower case"},
      {"b n p opened 1 2", "a state that starts like open"},
      {"b n p ope 1 2", "a prefix of open"},
      {"b n p close 1 2", "a prefix of closed"},
      {"b n p 2 1 2", "a state as a number"},
      {"b n p open\x01 1 2", "a control byte after the state"},
      // times
      {"b n p open -1 2", "a negative retry time"},
      {"b n p open 1 -2", "a negative next cooldown"},
      {"c n p u -5", "a negative cooldown end"},
      {"b n p open 1x 2", "a retry time with a suffix"},
      {"b n p open x1 2", "a retry time with a prefix"},
      {"b n p open 0x10 2", "hexadecimal"},
      {"b n p open +1 2", "a plus sign"},
      {"b n p open 1.5 2", "a fraction"},
      {"b n p open 1e3 2", "an exponent"},
      {"b n p open 1 two", "a word for a time"},
      {"c n p u soon", "a word for a cooldown end"},
      {"c n p u 1,5", "a comma"},
      {"b n p open 9223372036854775808 2", "int64 max + 1"},
      {"b n p open 1 18446744073709551616", "uint64 max + 1"},
      {"b n p open 99999999999999999999999999 2", "far too many digits"},
      {"c n p u 10000000000000000000", "a cooldown end that overflows int64"},
      {"b n p open 1000000000000000000 2", "19 digits"},
      {"b n p closed 1 2 3", "closed with an extra field"},
  };
  for (const auto& c : cases) {
    const auto r = decode(c.payload);
    if (r) {
      ADD_FAILURE() << c.why << ": '" << show(c.payload) << "' decoded as '" << show(encode(*r))
                    << "'";
      continue;
    }
    EXPECT_EQ(r.error().code, errc::invalid_request) << c.why;
    EXPECT_EQ(r.error().message.rfind("cluster event: ", 0), 0u)
        << c.why << ": " << r.error().message;
  }
}

TEST(ClusterEvent, NumbersMustBeCanonical) {
  // `decode` reads payloads made by `encode`, which writes neither leading zeros nor "-0": such
  // a payload is not one of its payloads, and accepting it breaks decode/encode round trips.
  const malformed_case cases[] = {
      {"b n p open 01 2", "a leading zero in the retry time"},
      {"b n p open 1 007", "leading zeros in the next cooldown"},
      {"b n p open 00 2", "zero written twice"},
      {"c n p u 0001764487663123", "leading zeros in the cooldown end"},
      {"b n p open -0 2", "minus zero"},
      {"c n p u -0", "minus zero as a cooldown end"},
  };
  for (const auto& c : cases) {
    const auto r = decode(c.payload);
    EXPECT_FALSE(r) << c.why << ": '" << c.payload << "' decoded as '" << (r ? encode(*r) : ""s)
                    << "'";
  }
}

// -- random input ---------------------------------------------------------------------------------

TEST(ClusterEvent, RandomBytesNeverCrashAndDecodesReencode) {
  std::mt19937 rng{20261130};
  const std::string seeds[] = {
      "k node-a usr_1",           "b node-a openai open 1764487663000 60000",
      "b node-b groq closed 0 0", "c node-c anthropic usr_9 1764487663123",
      "k " + name200 + " u",
  };
  // Bytes that matter to the grammar, and then any byte.
  const char interesting[] = {' ', '0',  '1',    '9',    '-',    '+',    'k',  'b', 'c',
                              'o', '\0', '\x1f', '\x7f', '\x80', '\xff', '\t', '\n'};
  int decoded = 0;
  int mismatches = 0;
  std::string first_mismatch;
  for (int i = 0; i < 20000; ++i) {
    std::string s = seeds[static_cast<std::size_t>(i) % std::size(seeds)];
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const char c = rng() % 2 == 0 ? interesting[rng() % std::size(interesting)]
                                    : static_cast<char>(rng() % 256);
      const auto at = s.empty() ? 0 : rng() % (s.size() + 1);
      switch (rng() % 5) {
        case 0:  // replace
          if (at < s.size()) {
            s[at] = c;
          }
          break;
        case 1:  // insert
          s.insert(s.begin() + static_cast<std::ptrdiff_t>(at), c);
          break;
        case 2:  // delete
          if (at < s.size()) {
            s.erase(at, 1);
          }
          break;
        case 3:  // truncate
          s.resize(at);
          break;
        case 4:  // duplicate a piece
          s.insert(at, s.substr(rng() % (s.size() + 1), rng() % 8));
          break;
      }
    }
    if (i % 10 == 0) {  // now and then, bytes with no structure at all
      s.resize(rng() % 24);
      for (auto& c : s) {
        c = static_cast<char>(rng() % 256);
      }
    }
    const auto r = decode(s);
    if (r) {
      ++decoded;
      if (encode(*r) != s && ++mismatches == 1) {
        first_mismatch = "'" + show(s) + "' re-encodes as '" + show(encode(*r)) + "'";
      }
      EXPECT_FALSE(node_of(*r).empty());
    } else {
      EXPECT_EQ(r.error().code, errc::invalid_request) << show(s);
    }
  }
  EXPECT_EQ(mismatches, 0) << "first: " << first_mismatch;
  // The mutations must leave some valid payloads, or the loop tests only the rejections.
  EXPECT_GT(decoded, 500);
}

}  // namespace
}  // namespace ib
