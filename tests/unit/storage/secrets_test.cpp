#include "storage/secrets.hpp"

#include <map>
#include <set>

#include <gtest/gtest.h>

namespace ib::storage {
namespace {

bool all_base62(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))) {
      return false;
    }
  }
  return true;
}

std::string hex(const sha256_digest& d) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (auto b : d) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 0xf]);
  }
  return out;
}

TEST(Secrets, RandomBase62HasTheLengthAndAlphabet) {
  for (std::size_t n : {0, 1, 24, 32, 63, 64, 65, 1000}) {
    const auto s = random_base62(n);
    EXPECT_EQ(s.size(), n);
    EXPECT_TRUE(all_base62(s)) << s;
  }
}

TEST(Secrets, RandomBase62IsRoughlyUniform) {
  // 62,000 draws: each symbol expects 1,000 (sd ~31); the bounds sit ~10 sd out, so a correct
  // generator never fails, while modulo bias or a missing symbol would.
  const auto s = random_base62(62'000);
  std::map<char, int> counts;
  for (char c : s) {
    ++counts[c];
  }
  EXPECT_EQ(counts.size(), 62U);
  for (const auto& [c, n] : counts) {
    EXPECT_GT(n, 700) << c;
    EXPECT_LT(n, 1300) << c;
  }
}

TEST(Secrets, GatewayKeysHaveTheShapeAndDiffer) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const auto k = new_gateway_key();
    ASSERT_EQ(k.size(), 35U);
    ASSERT_TRUE(k.starts_with("ib_"));
    ASSERT_TRUE(is_gateway_key_shape(k)) << k;
    seen.insert(k);
  }
  EXPECT_EQ(seen.size(), 1000U);
}

TEST(Secrets, GatewayKeyShapeRejectsOthers) {
  const std::string good = "ib_" + std::string(32, 'a');
  EXPECT_TRUE(is_gateway_key_shape(good));
  EXPECT_FALSE(is_gateway_key_shape(""));
  EXPECT_FALSE(is_gateway_key_shape("ib_"));
  EXPECT_FALSE(is_gateway_key_shape(good.substr(0, 34)));
  EXPECT_FALSE(is_gateway_key_shape(good + "a"));
  EXPECT_FALSE(is_gateway_key_shape("sk_" + std::string(32, 'a')));
  EXPECT_FALSE(is_gateway_key_shape("IB_" + std::string(32, 'a')));
  EXPECT_FALSE(is_gateway_key_shape("ib_" + std::string(31, 'a') + "-"));
  EXPECT_FALSE(is_gateway_key_shape("ib_" + std::string(31, 'a') + "_"));
  EXPECT_FALSE(is_gateway_key_shape("ib_" + std::string(31, 'a') + std::string(1, '\0')));
  EXPECT_FALSE(is_gateway_key_shape("ib_" + std::string(31, 'a') + "\xc3"));
}

TEST(Secrets, NewIdHasThePrefixAnd24Base62) {
  const auto id = new_id("usr_");
  ASSERT_EQ(id.size(), 28U);
  EXPECT_TRUE(id.starts_with("usr_"));
  EXPECT_TRUE(all_base62(id.substr(4)));
  EXPECT_NE(new_id("usr_"), id);
  EXPECT_EQ(new_id("req_").substr(0, 4), "req_");
}

TEST(Secrets, Sha256MatchesKnownVectors) {
  EXPECT_EQ(hex(sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(hex(sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hex(sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_NE(sha256(std::string_view{"a\0b", 3}), sha256("a"));
}

TEST(Secrets, KeyHintShowsPrefixAndLastFour) {
  EXPECT_EQ(key_hint("sk-proj-abcdefghijklmnopqrstuvwxyz0123456789wxyz"), "sk-\u2026wxyz");
  EXPECT_EQ(key_hint("gsk_abcdefghijklmnopqrstuvwxyz0123wxyz"), "gsk_\u2026wxyz");
  EXPECT_EQ(key_hint("sk-ant-api03-abcdefghijklmnopqrstuvwxyzwxyz"), "sk-\u2026wxyz");
  // No separator within the first 8 characters: no prefix.
  EXPECT_EQ(key_hint("abcdefghijklmnop-qrstuvwxyzwxyz"), "\u2026wxyz");
  EXPECT_EQ(key_hint("0123456789abcdef0123456789abcdefwxyz"), "\u2026wxyz");
  // The longest prefix allowed is 8 characters.
  EXPECT_EQ(key_hint("abcdefg-hijklmnopqrstuvwxyz"), "abcdefg-\u2026wxyz");
}

TEST(Secrets, KeyHintRevealsLittleOfShortKeys) {
  // 12 characters: the prefix would leave too little hidden, so only the last four show.
  EXPECT_EQ(key_hint("sk-abcdewxyz"), "\u2026wxyz");
  EXPECT_EQ(key_hint("sk-abcdefghwxyz"), "sk-\u2026wxyz");
  EXPECT_EQ(key_hint("sk-abcdefgwxyz"), "\u2026wxyz");
  // Under 12 characters: the ellipsis and at most the last two.
  EXPECT_EQ(key_hint("sk-abcdwxyz"), "\u2026yz");
  EXPECT_EQ(key_hint("abcdefgh"), "\u2026gh");
  EXPECT_EQ(key_hint("abcdefg"), "\u2026g");
  EXPECT_EQ(key_hint("abcd"), "\u2026d");
  EXPECT_EQ(key_hint("abc"), "\u2026");
  EXPECT_EQ(key_hint(""), "\u2026");
}

TEST(Secrets, KeyHintNeverEchoesNonPrintableBytes) {
  EXPECT_EQ(key_hint("sk-abcdefghijklmnopqrstuvwxyz\xc3\xa9"), "\u2026");
  EXPECT_EQ(key_hint(std::string{"sk-abcdefghijklmnop\nqrstuvwxyz"}), "\u2026");
}

TEST(Secrets, KeyHintNeverRevealsMoreThanPrefixAndFour) {
  const std::string key = "sk-proj-" + random_base62(40);
  const auto hint = key_hint(key);
  const std::string ellipsis = "\u2026";
  ASSERT_NE(hint.find(ellipsis), std::string::npos);
  const auto visible = hint.size() - ellipsis.size();
  EXPECT_LE(visible, 3U + 4U);
  for (std::size_t n = 0; n + 12 < key.size(); ++n) {
    EXPECT_EQ(key_hint(key.substr(0, n)).find(key.substr(8, 8)), std::string::npos);
  }
}

}  // namespace
}  // namespace ib::storage
