// The one JSON string escaper: whatever bytes it is given (an upstream error message, a cut
// sequence), what it writes is valid UTF-8 and valid JSON.
#include <cstdint>
#include <random>
#include <string>
#include <string_view>

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include "core/error.hpp"
#include "core/json.hpp"

namespace ib {
namespace {

std::string as_json(std::string_view text) {
  std::string out;
  json_writer(out).string(text);
  return out;
}

/// Parses `json` as a strict client would: UTF-8 validated.
::testing::AssertionResult strict_json(const std::string& json) {
  rapidjson::Document d;
  d.Parse<rapidjson::kParseValidateEncodingFlag>(json.data(), json.size());
  if (d.HasParseError()) {
    return ::testing::AssertionFailure()
           << rapidjson::GetParseError_En(d.GetParseError()) << " at " << d.GetErrorOffset();
  }
  return ::testing::AssertionSuccess();
}

const std::string fffd = "\xEF\xBF\xBD";

TEST(JsonString, EscapesQuotesBackslashesAndControls) {
  EXPECT_EQ(as_json("a\"b\\c\nd\re\tf"), R"("a\"b\\c\nd\re\tf")");
  // RapidJSON's writer spells \u escapes with upper-case hex, and \b and \f short: the same
  // string to any JSON parser as the old hand escaper's lower-case `\u001f` and `\u0008`.
  EXPECT_EQ(as_json(std::string_view("\x01\x1f\x00", 3)), R"("\u0001\u001F\u0000")");
  EXPECT_EQ(as_json("\b\f"), R"("\b\f")");
  EXPECT_EQ(as_json(""), R"("")");
  EXPECT_EQ(as_json("\x7f"), "\"\x7f\"");
}

TEST(JsonString, WellFormedUtf8IsCopied) {
  for (std::string_view s : {"नमस्ते", "😀 ok", "\xC2\x80", "\xDF\xBF", "\xE0\xA0\x80", "\xED\x9F\xBF",
                             "\xEE\x80\x80", "\xF0\x90\x80\x80", "\xF4\x8F\xBF\xBF"}) {
    EXPECT_EQ(as_json(s), "\"" + std::string(s) + "\"") << s;
  }
}

TEST(JsonString, InvalidUtf8BecomesReplacementCharacters) {
  struct row {
    std::string_view in;
    std::string out;
  };
  const row rows[] = {
      {"bad \xFF\xFE body", "bad " + fffd + fffd + " body"},  // issue 13's example bytes
      {"\xC0\xAF", fffd + fffd},                              // overlong '/'
      {"\xE0\x80\xAF", fffd + fffd + fffd},                   // overlong, three bytes
      {"\xED\xA0\x80", fffd + fffd + fffd},                   // a UTF-16 surrogate
      {"\xF4\x90\x80\x80", fffd + fffd + fffd + fffd},        // past U+10FFFF
      {"\xF5\x80", fffd + fffd},                              // no such lead byte
      {"x\xE2\x82", "x" + fffd + fffd},                       // cut at the end
      {"\xE2\x82x", fffd + fffd + "x"},                       // cut in the middle
      {"\x80", fffd},                                         // a stray continuation byte
      {"\xF0\x9F\x98", fffd + fffd + fffd},                   // a cut emoji
  };
  for (const auto& r : rows) {
    auto q = as_json(r.in);
    EXPECT_EQ(q, "\"" + r.out + "\"");
    EXPECT_TRUE(strict_json(q));
  }
}

TEST(JsonString, RandomBytesAlwaysGiveValidJson) {
  std::mt19937 rng(20261130);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> length(0, 64);
  for (int n = 0; n < 20000; ++n) {
    std::string in(static_cast<std::size_t>(length(rng)), '\0');
    for (auto& c : in) {
      c = static_cast<char>(byte(rng));
    }
    auto q = as_json(in);
    ASSERT_TRUE(strict_json(q)) << "input #" << n;
  }
}

TEST(JsonString, TheErrorEnvelopeIsValidJsonWhateverTheMessage) {
  error e{errc::bad_gateway, "upstream said \xFF\xFE and \xC3"};
  auto env = to_envelope(e);
  EXPECT_TRUE(strict_json(env));
  EXPECT_NE(env.find("upstream said " + fffd + fffd + " and " + fffd), std::string::npos);
}

}  // namespace
}  // namespace ib
