// The one JSON writer (core/json.hpp): whatever bytes it is given, what it writes parses with a
// strict parser; raw JSON passes through as it is.
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <string_view>

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include "core/json.hpp"

namespace ib {
namespace {

/// Parses `json` as a strict client would: UTF-8 validated, one value, nothing after it.
::testing::AssertionResult strict_json(const std::string& json) {
  rapidjson::Document d;
  d.Parse<rapidjson::kParseValidateEncodingFlag | rapidjson::kParseStopWhenDoneFlag>(json.data(),
                                                                                     json.size());
  if (d.HasParseError()) {
    return ::testing::AssertionFailure()
           << rapidjson::GetParseError_En(d.GetParseError()) << " at " << d.GetErrorOffset();
  }
  return ::testing::AssertionSuccess();
}

const std::string fffd = "\xEF\xBF\xBD";

TEST(JsonWriter, WritesCompactJsonAppendingToTheString) {
  std::string out = "data: ";
  json_writer w(out);
  w.start_object();
  w.key("s").string("x");
  w.key("n").integer(-3);
  w.key("u").unsigned_integer(std::numeric_limits<std::uint64_t>::max());
  w.key("b").boolean(false);
  w.key("z").null();
  w.key("e").string_or_null("");
  w.key("d").number(0.25);
  w.key("a").start_array().integer(1).string("two").end_array();
  w.end_object();
  EXPECT_TRUE(w.complete());
  EXPECT_EQ(out, R"(data: {"s":"x","n":-3,"u":18446744073709551615,"b":false,"z":null,"e":null,)"
                 R"("d":0.25,"a":[1,"two"]})");
}

TEST(JsonWriter, InvalidUtf8InKeysAndValuesBecomesReplacementCharacters) {
  std::string out;
  json_writer w(out);
  w.start_object();
  w.key("k\xFF\xFE").string("bad \xFF\xFE body");
  w.key("cut").string("x\xE2\x82");
  w.key("overlong").string("\xC0\xAF");
  w.key("ok").string("नमस्ते 😀");
  w.end_object();
  EXPECT_EQ(out, "{\"k" + fffd + fffd + "\":\"bad " + fffd + fffd + " body\",\"cut\":\"x" + fffd
                     + fffd + "\",\"overlong\":\"" + fffd + fffd + "\",\"ok\":\"नमस्ते 😀\"}");
  EXPECT_TRUE(strict_json(out));
}

TEST(JsonWriter, ControlCharactersAreEscaped) {
  std::string out;
  json_writer(out).string(std::string_view("a\"b\\c\n\r\t\b\f\x01\x1f\x00/\x7f", 15));
  EXPECT_EQ(out, "\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001F\\u0000/\x7f\"");
  EXPECT_TRUE(strict_json(out));
}

TEST(JsonWriter, RawJsonPassesThroughUnchanged) {
  std::string out;
  json_writer w(out);
  w.start_object();
  w.key("tools").raw(R"([ {"name" : "f"} ])", rapidjson::kArrayType);
  w.key("after").integer(1);
  w.end_object();
  EXPECT_EQ(out, R"({"tools":[ {"name" : "f"} ],"after":1})");
  EXPECT_TRUE(strict_json(out));
}

TEST(JsonWriter, DomValuesAreWrittenWithTheirStringsChecked) {
  // A parser that does not validate encoding keeps invalid bytes in the DOM's strings.
  const std::string text = "{\"a\":[1,-2,0.5,true,null,\"x\xFFy\"],\"k\xFE\":{}}";
  rapidjson::Document doc;
  doc.Parse(text.data(), text.size());
  ASSERT_FALSE(doc.HasParseError());
  std::string out;
  json_writer(out).value(doc);
  EXPECT_EQ(out, "{\"a\":[1,-2,0.5,true,null,\"x" + fffd + "y\"],\"k" + fffd + "\":{}}");
  EXPECT_TRUE(strict_json(out));
}

TEST(JsonWriter, ADocumentNestedDeeperThanTheCallStackIsWrittenWhole) {
  // An upstream may send any nesting; RapidJSON parses it iteratively, and writing it back must
  // not recurse either (a recursive walk overflows the stack well before this depth).
  constexpr std::size_t depth = 200'000;
  const std::string text = std::string(depth, '[') + "{\"k\":1}" + std::string(depth, ']');
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(text.data(), text.size());
  ASSERT_FALSE(doc.HasParseError());
  std::string out;
  json_writer(out).value(doc);
  EXPECT_EQ(out, text);
}

TEST(JsonWriter, LongStringsAndRawTextCrossTheBufferIntact) {
  const std::string long_text(1000, 'x');
  const std::string long_raw = "[" + std::string(300, '1') + "]";
  std::string out;
  {
    json_writer w(out);
    w.start_array();
    for (int i = 0; i < 3; ++i) {
      w.string(long_text).raw(long_raw, rapidjson::kArrayType).string("a\nb");
    }
    w.end_array();
  }
  std::string expected = "[";
  for (int i = 0; i < 3; ++i) {
    expected += (i == 0 ? "\"" : ",\"") + long_text + "\"," + long_raw + ",\"a\\nb\"";
  }
  expected += "]";
  EXPECT_EQ(out, expected);
  EXPECT_TRUE(strict_json(out));
}

TEST(JsonWriter, ARootStringIsInTheStringAtOnce) {
  std::string out;
  json_writer w(out);
  w.string("plain");
  EXPECT_EQ(out, R"("plain")");  // no need to wait for the writer to go
}

TEST(JsonWriter, SeveralRootValuesAfterReset) {
  std::string out;
  json_writer w(out);
  w.start_object().key("i").integer(1).end_object();
  out += "\n";
  w.reset();
  w.start_array().end_array();
  EXPECT_EQ(out, "{\"i\":1}\n[]");
}

TEST(JsonWriter, RandomBytesInKeysAndValuesAlwaysGiveValidJson) {
  std::mt19937 rng(20261130);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> length(0, 48);
  auto random_text = [&] {
    std::string s(static_cast<std::size_t>(length(rng)), '\0');
    for (auto& c : s) {
      c = static_cast<char>(byte(rng));
    }
    return s;
  };
  for (int n = 0; n < 5000; ++n) {
    std::string out;
    json_writer w(out);
    w.start_object();
    w.key(random_text()).string(random_text());
    w.key(random_text()).start_array().string(random_text()).end_array();
    w.end_object();
    ASSERT_TRUE(strict_json(out)) << "case #" << n;
  }
}

TEST(JsonUtf8, ValidationAndReplacementAgree) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii, longer than eight bytes"));
  EXPECT_TRUE(is_valid_utf8("\xF4\x8F\xBF\xBF"));
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));          // a UTF-16 surrogate
  EXPECT_FALSE(is_valid_utf8("0123456789abcdef\x80"));  // after the 8-byte fast path
  std::string out = "<";
  append_utf8_replacing_invalid(out,
                                "a\xFF"
                                "bcdefghijk\xC3");
  EXPECT_EQ(out, "<a" + fffd + "bcdefghijk" + fffd);
}

}  // namespace
}  // namespace ib
