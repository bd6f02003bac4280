#include "storage/fernet.hpp"

#include <algorithm>
#include <array>
#include <ctime>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <rapidjson/document.h>

#include "tests/unit/storage/test_support.hpp"

namespace ib::storage {
namespace {

constexpr std::string_view b64_chars =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=";

rapidjson::Document load_vectors() {
  std::ifstream in{std::string{IB_TEST_DATA_DIR} + "/fernet_vectors.json"};
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  rapidjson::Document d;
  // The length-bounded Parse: the NUL-terminated one's SSE2 scan reads past the buffer's end.
  d.Parse(text.data(), text.size());
  if (d.HasParseError() || !d.IsObject()) {
    throw std::runtime_error("fernet_vectors.json: cannot parse");
  }
  return d;
}

std::string str(const rapidjson::Value& obj, const char* name) {
  return {obj[name].GetString(), obj[name].GetStringLength()};
}

fernet_key key_of(const rapidjson::Value& v) {
  auto k = parse_fernet_key(str(v, "secret"));
  if (!k) {
    throw std::runtime_error("vector key does not parse");
  }
  return *k;
}

// Test-side url-safe base64 through OpenSSL's standard-alphabet codec, to edit raw tokens.
std::vector<std::uint8_t> b64_decode(std::string text) {
  std::replace(text.begin(), text.end(), '-', '+');
  std::replace(text.begin(), text.end(), '_', '/');
  std::vector<std::uint8_t> out(text.size() / 4 * 3 + 3);
  const int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  EXPECT_GE(n, 0);
  out.resize(static_cast<std::size_t>(std::max(n, 0)));
  const auto pad = static_cast<std::size_t>(std::count(text.end() - 2, text.end(), '='));
  out.resize(out.size() - pad);
  return out;
}

std::string b64_encode(const std::vector<std::uint8_t>& raw) {
  std::string out(raw.size() / 3 * 4 + 8, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), raw.data(),
                                static_cast<int>(raw.size()));
  out.resize(static_cast<std::size_t>(n));
  std::replace(out.begin(), out.end(), '+', '-');
  std::replace(out.begin(), out.end(), '/', '_');
  return out;
}

constexpr std::array<std::uint8_t, 16> fixed_iv{0, 1, 2,  3,  4,  5,  6,  7,
                                                8, 9, 10, 11, 12, 13, 14, 15};
constexpr std::int64_t t0 = 1'700'000'000;

// -- the spec's vectors -----------------------------------------------------------------------

TEST(FernetVectors, GenerateProducesTheExactToken) {
  const auto d = load_vectors();
  ASSERT_GT(d["generate"].Size(), 0U);
  for (const auto& v : d["generate"].GetArray()) {
    std::array<std::uint8_t, 16> iv{};
    ASSERT_EQ(v["iv"].Size(), 16U);
    for (rapidjson::SizeType i = 0; i < 16; ++i) {
      iv[i] = static_cast<std::uint8_t>(v["iv"][i].GetUint());
    }
    EXPECT_EQ(fernet_encrypt(key_of(v), str(v, "src"), iv, v["now_unix"].GetInt64()),
              str(v, "token"));
  }
}

TEST(FernetVectors, VerifyDecrypts) {
  const auto d = load_vectors();
  ASSERT_GT(d["verify"].Size(), 0U);
  for (const auto& v : d["verify"].GetArray()) {
    auto plain = fernet_decrypt(key_of(v), str(v, "token"), v["now_unix"].GetInt64(),
                                v["ttl_sec"].GetInt64());
    ASSERT_TRUE(plain) << plain.error().message;
    EXPECT_EQ(*plain, str(v, "src"));
  }
}

TEST(FernetVectors, InvalidTokensAreRejected) {
  const auto d = load_vectors();
  ASSERT_GT(d["invalid"].Size(), 0U);
  for (const auto& v : d["invalid"].GetArray()) {
    SCOPED_TRACE(str(v, "desc"));
    auto plain = fernet_decrypt(key_of(v), str(v, "token"), v["now_unix"].GetInt64(),
                                v["ttl_sec"].GetInt64());
    ASSERT_FALSE(plain);
    EXPECT_EQ(plain.error().code, errc::crypto);
  }
}

// -- keys -------------------------------------------------------------------------------------

TEST(FernetKey, EncodeParseRoundTrip) {
  const fernet_key k = generate_fernet_key();
  const std::string text = encode_fernet_key(k);
  EXPECT_EQ(text.size(), 44U);
  EXPECT_EQ(text.back(), '=');
  auto back = parse_fernet_key(text);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->signing, k.signing);
  EXPECT_EQ(back->encryption, k.encryption);
  EXPECT_TRUE(parse_fernet_key("  " + text + "\n"));
}

TEST(FernetKey, GeneratedKeysDiffer) {
  EXPECT_NE(encode_fernet_key(generate_fernet_key()), encode_fernet_key(generate_fernet_key()));
}

TEST(FernetKey, MalformedKeysAreRejected) {
  const std::string good = "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=";
  ASSERT_TRUE(parse_fernet_key(good));
  for (const std::string& bad : std::vector<std::string>{
           std::string{},
           good.substr(0, 43),                              // no padding
           good.substr(0, 40) + "====",                     // wrong length
           "cw/0x689RpI+jtRR7oE8h/eQsKImvJapLeSbXpwF4e4=",  // standard alphabet
           "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e5=",  // non-zero unused bits
           good + good,
           "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=x",
           "cw_0x689 RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=",
       }) {
    auto k = parse_fernet_key(bad);
    ASSERT_FALSE(k) << bad;
    EXPECT_EQ(k.error().message.find(bad.empty() ? std::string{"\x01"} : bad), std::string::npos);
  }
}

// -- tokens -----------------------------------------------------------------------------------

TEST(Fernet, RoundTripsPlaintextsOfEverySize) {
  const fernet_key k = generate_fernet_key();
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  std::string plain;
  for (int n = 0; n <= 100; ++n) {
    auto token = fernet_encrypt(k, plain);
    auto back = fernet_decrypt(k, token, now, 3600);
    ASSERT_TRUE(back) << n << ": " << back.error().message;
    EXPECT_EQ(*back, plain);
    plain.push_back(static_cast<char>(n * 37));  // includes NUL and bytes >= 0x80
  }
}

TEST(Fernet, RandomIvsMakeDistinctTokens) {
  const fernet_key k = generate_fernet_key();
  EXPECT_NE(fernet_encrypt(k, "same"), fernet_encrypt(k, "same"));
}

TEST(Fernet, WrongKeyIsRejected) {
  const auto token = fernet_encrypt(generate_fernet_key(), "secret", fixed_iv, t0);
  auto back = fernet_decrypt(generate_fernet_key(), token, t0);
  ASSERT_FALSE(back);
  EXPECT_EQ(back.error().code, errc::crypto);
  EXPECT_EQ(back.error().message.find("secret"), std::string::npos);
}

TEST(Fernet, EveryBitFlipIsRejected) {
  const fernet_key k = generate_fernet_key();
  const auto token = fernet_encrypt(k, "sk-proj-abcdef", fixed_iv, t0);
  const auto raw = b64_decode(token);
  ASSERT_EQ(b64_encode(raw), token);
  for (std::size_t i = 0; i < raw.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      auto tampered = raw;
      tampered[i] ^= static_cast<std::uint8_t>(1U << bit);
      EXPECT_FALSE(fernet_decrypt(k, b64_encode(tampered), t0)) << "byte " << i << " bit " << bit;
    }
  }
}

TEST(Fernet, EveryCharacterChangeIsRejected) {
  const fernet_key k = generate_fernet_key();
  const auto token = fernet_encrypt(k, "sk-proj-abcdef", fixed_iv, t0);
  for (std::size_t i = 0; i < token.size(); ++i) {
    for (char c : b64_chars) {
      if (c == token[i]) {
        continue;
      }
      auto tampered = token;
      tampered[i] = c;
      EXPECT_FALSE(fernet_decrypt(k, tampered, t0)) << "position " << i << " -> " << c;
    }
  }
  EXPECT_FALSE(fernet_decrypt(k, token.substr(0, token.size() - 4), t0));
  EXPECT_FALSE(fernet_decrypt(k, token + "AAAA", t0));
  EXPECT_FALSE(fernet_decrypt(k, token.substr(0, token.size() - 1), t0));
  EXPECT_FALSE(fernet_decrypt(k, "", t0));
}

TEST(Fernet, TtlBoundaries) {
  const fernet_key k = generate_fernet_key();
  const auto token = fernet_encrypt(k, "x", fixed_iv, t0);
  EXPECT_TRUE(fernet_decrypt(k, token, t0 + 60, 60));
  EXPECT_FALSE(fernet_decrypt(k, token, t0 + 61, 60));
  EXPECT_TRUE(fernet_decrypt(k, token, t0 + 1'000'000));  // without a ttl, age does not matter
}

TEST(Fernet, ClockSkewBoundaries) {
  const fernet_key k = generate_fernet_key();
  const auto token = fernet_encrypt(k, "x", fixed_iv, t0);
  const std::int64_t ttl = 3600;
  EXPECT_TRUE(fernet_decrypt(k, token, t0 - 60, ttl));
  EXPECT_FALSE(fernet_decrypt(k, token, t0 - 61, ttl));
  EXPECT_TRUE(fernet_decrypt(k, token, t0 - 61, ttl, 61));
  // Without a TTL the timestamp is not checked, as in Python's cryptography: a stored key written
  // on a clock an hour ahead of ours still decrypts.
  EXPECT_TRUE(fernet_decrypt(k, token, t0 - 3600));
  fernet_keyring ring({k});
  EXPECT_TRUE(ring.decrypt(fernet_encrypt(k, "x", fixed_iv, std::time(nullptr) + 3600)));
}

TEST(Fernet, ExtremeTimestampsAreHandled) {
  const fernet_key k = generate_fernet_key();
  // A negative time is written as a huge unsigned timestamp: far in the future.
  EXPECT_FALSE(fernet_decrypt(k, fernet_encrypt(k, "x", fixed_iv, -1), t0, 60));
  const auto max = std::numeric_limits<std::int64_t>::max();
  EXPECT_FALSE(fernet_decrypt(k, fernet_encrypt(k, "x", fixed_iv, max), t0, 60));
  EXPECT_TRUE(fernet_decrypt(k, fernet_encrypt(k, "x", fixed_iv, max), max, max));
  EXPECT_TRUE(fernet_decrypt(k, fernet_encrypt(k, "x", fixed_iv, 0), t0, max));
  EXPECT_FALSE(fernet_decrypt(k, fernet_encrypt(k, "x", fixed_iv, t0), max, 1));
}

TEST(Fernet, CurrentTimeTokenIsFresh) {
  const fernet_key k = generate_fernet_key();
  const auto token = fernet_encrypt(k, "now");
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  EXPECT_TRUE(fernet_decrypt(k, token, now, 60));
}

// -- interop with Python's cryptography.fernet, both ways -------------------------------------

constexpr const char* py_decrypt = R"(import os, sys
from cryptography.fernet import Fernet
f = Fernet(os.environb[b"IB_TEST_KEY"])
sys.stdout.buffer.write(f.decrypt(os.environb[b"IB_TEST_TOKEN"], ttl=3600)))";

constexpr const char* py_encrypt = R"(import os, sys
from cryptography.fernet import Fernet
k = os.environb.get(b"IB_TEST_KEY") or Fernet.generate_key()
sys.stdout.buffer.write(k + b"\n" + Fernet(k).encrypt(os.environb[b"IB_TEST_PLAIN"])))";

TEST(FernetInterop, PythonDecryptsOurTokens) {
  const fernet_key k = generate_fernet_key();
  for (const std::string& plain :
       std::vector<std::string>{"sk-proj-abcdefghijklmnopqrstuvwxyz0123456789", "x",
                                "gsk_\xc3\xbc\xe2\x80\xa6 \"quoted\"", std::string(1000, 'k')}) {
    auto res = test::run_python(py_decrypt, {{"IB_TEST_KEY", encode_fernet_key(k)},
                                             {"IB_TEST_TOKEN", fernet_encrypt(k, plain)}});
    ASSERT_EQ(res.exit_code, 0) << "python3 with cryptography is required for this test";
    EXPECT_EQ(res.out, plain);
  }
}

TEST(FernetInterop, WeDecryptPythonTokens) {
  const std::string plain = "sk-ant-api03-\xc3\xa9t\xc3\xa9";
  for (bool python_key : {true, false}) {
    SCOPED_TRACE(python_key ? "key from Fernet.generate_key()" : "our key");
    std::vector<std::pair<std::string, std::string>> env{{"IB_TEST_PLAIN", plain}};
    if (!python_key) {
      env.emplace_back("IB_TEST_KEY", encode_fernet_key(generate_fernet_key()));
    }
    auto res = test::run_python(py_encrypt, env);
    ASSERT_EQ(res.exit_code, 0) << "python3 with cryptography is required for this test";
    const auto nl = res.out.find('\n');
    ASSERT_NE(nl, std::string::npos);
    auto key = parse_fernet_key(res.out.substr(0, nl));
    ASSERT_TRUE(key);
    const auto now = static_cast<std::int64_t>(std::time(nullptr));
    auto back = fernet_decrypt(*key, res.out.substr(nl + 1), now, 3600);
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(*back, plain);
    fernet_keyring ring{{generate_fernet_key(), *key}};
    EXPECT_EQ(ring.key_index(res.out.substr(nl + 1)), 1U);
  }
}

// -- keyring ----------------------------------------------------------------------------------

TEST(FernetKeyring, EncryptsWithTheFirstDecryptsWithAny) {
  const fernet_key old_key = generate_fernet_key();
  const fernet_key new_key = generate_fernet_key();
  const fernet_keyring before{{old_key}};
  const fernet_keyring after{{new_key, old_key}};
  const auto old_token = before.encrypt("sk-old");
  auto back = after.decrypt(old_token);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, "sk-old");
  EXPECT_EQ(after.key_index(old_token), 1U);

  const auto new_token = after.encrypt("sk-new");
  EXPECT_EQ(after.key_index(new_token), 0U);
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  EXPECT_TRUE(fernet_decrypt(new_key, new_token, now));
  EXPECT_FALSE(before.decrypt(new_token));
  EXPECT_FALSE(before.key_index(new_token));
}

TEST(FernetKeyring, UnknownAndMalformedTokensAreRejected) {
  const fernet_keyring ring{{generate_fernet_key(), generate_fernet_key()}};
  const auto foreign = fernet_encrypt(generate_fernet_key(), "x");
  auto r = ring.decrypt(foreign);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::crypto);
  EXPECT_FALSE(ring.key_index(foreign));
  EXPECT_FALSE(ring.decrypt("not a token"));
  EXPECT_FALSE(ring.key_index("not a token"));
}

TEST(FernetKeyring, NeedsAKey) {
  EXPECT_THROW(fernet_keyring{std::vector<fernet_key>{}}, std::invalid_argument);
}

}  // namespace
}  // namespace ib::storage
