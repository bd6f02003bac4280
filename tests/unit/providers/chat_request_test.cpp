#include "providers/chat_request.hpp"

#include <cstdint>
#include <random>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

namespace ib::providers {
namespace {

constexpr std::string_view minimal =
    R"({"model":"ib/cheap","messages":[{"role":"user","content":"hi"}]})";

error parse_error(std::string body, const parse_limits& limits = {}) {
  auto r = parse_chat_request(std::move(body), limits);
  EXPECT_FALSE(r.has_value());
  if (r) {
    return {};
  }
  return r.error();
}

/// `{"model":"m","messages":[...],"x":` + a value nesting `extra` arrays + `}`: depth 1 + extra.
std::string nested_body(int extra) {
  std::string s = R"({"model":"m","messages":[{"role":"user","content":"x"}],"x":)";
  s.append(static_cast<std::size_t>(extra), '[');
  s.append(static_cast<std::size_t>(extra), ']');
  s += '}';
  return s;
}

TEST(ChatRequest, ParsesMinimalBody) {
  auto r = parse_chat_request(std::string(minimal));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->model, "ib/cheap");
  EXPECT_FALSE(r->stream);
  EXPECT_FALSE(r->include_usage);
  EXPECT_EQ(r->n, 1);
  EXPECT_FALSE(r->has_developer_messages);
  EXPECT_FALSE(r->has_message_names);
  EXPECT_FALSE(r->has_reasoning_content);
  EXPECT_FALSE(r->has_tools);
  ASSERT_EQ(r->members.size(), 2U);
  EXPECT_EQ(r->key(r->members[0]), "model");
  EXPECT_EQ(r->raw_value(r->members[0]), R"("ib/cheap")");
  EXPECT_EQ(r->key(r->members[1]), "messages");
  EXPECT_EQ(r->raw_value(r->members[1]), R"([{"role":"user","content":"hi"}])");
  EXPECT_EQ(r->raw_value("messages"), R"([{"role":"user","content":"hi"}])");
  EXPECT_FALSE(r->raw_value("stream").has_value());
}

TEST(ChatRequest, ExtractsFlagsAndFacts) {
  auto r = parse_chat_request(R"({
    "model": "ib/balanced",
    "stream": true,
    "stream_options": {"include_usage": true, "include_obfuscation": false},
    "n": 3,
    "tools": [{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],
    "messages": [
      {"role": "developer", "content": "be brief"},
      {"role": "user", "name": "ann", "content": [{"type":"text","text":"hi"}]},
      {"role": "assistant", "content": "ok", "reasoning_content": "thinking"}
    ]
  })");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->model, "ib/balanced");
  EXPECT_TRUE(r->stream);
  EXPECT_TRUE(r->include_usage);
  EXPECT_EQ(r->n, 3);
  EXPECT_TRUE(r->has_tools);
  EXPECT_TRUE(r->has_developer_messages);
  EXPECT_TRUE(r->has_message_names);
  EXPECT_TRUE(r->has_reasoning_content);
  EXPECT_EQ(r->members.size(), 6U);
}

TEST(ChatRequest, NestedLookalikesAreNotFacts) {
  // `name`, `role` and `reasoning_content` below message level, and `model` inside another
  // member, must not count.
  auto r = parse_chat_request(R"({"model":"m","metadata":{"model":"x","stream":"no"},
    "messages":[{"role":"user","content":[{"type":"text","name":"n","role":"developer",
    "reasoning_content":"r"}]}],"tools":[],"n":2.0,"stream":null,"stream_options":null})");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->model, "m");
  EXPECT_FALSE(r->has_developer_messages);
  EXPECT_FALSE(r->has_message_names);
  EXPECT_FALSE(r->has_reasoning_content);
  EXPECT_FALSE(r->has_tools);  // empty array
  EXPECT_EQ(r->n, 1);          // not an integer
  EXPECT_FALSE(r->stream);
  EXPECT_FALSE(r->include_usage);
}

TEST(ChatRequest, SpansSurviveWhitespaceEscapesAndUnicode) {
  std::string body =
      "\r\n\t {  \"mod\\u0065l\" \t:\n \"gpt \\\"x\\\"\" ,\n"
      "  \"messages\"  :  [ {\"role\":\"user\",\"content\":\"नमस्ते \\ud83d\\ude00 "
      "\xF0\x9F\x98\x80\"} ]"
      " , \"temperature\":0.5e1,\"k\\\\\":true , \"z\" : null\n}\n  ";
  auto r = parse_chat_request(body);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->model, "gpt \"x\"");
  ASSERT_EQ(r->members.size(), 5U);
  const auto& m = r->members;
  EXPECT_EQ(r->key(m[0]), "mod\\u0065l");
  EXPECT_EQ(r->raw_value(m[0]), "\"gpt \\\"x\\\"\"");
  EXPECT_EQ(body.substr(m[0].begin, 1), "\"");
  EXPECT_EQ(r->key(m[1]), "messages");
  EXPECT_EQ(r->raw_value(m[1]),
            "[ {\"role\":\"user\",\"content\":\"नमस्ते \\ud83d\\ude00 \xF0\x9F\x98\x80\"} ]");
  EXPECT_EQ(r->raw_value(m[2]), "0.5e1");
  EXPECT_EQ(r->key(m[3]), "k\\\\");
  EXPECT_EQ(r->raw_value(m[3]), "true");
  EXPECT_EQ(r->raw_value(m[4]), "null");
  for (const auto& s : m) {
    EXPECT_EQ(body[s.begin], '"');
    EXPECT_EQ(s.key_begin, s.begin + 1);
    EXPECT_EQ(body[s.key_end], '"');
  }
  // Lookups compare decoded keys.
  EXPECT_EQ(r->raw_value("model"), "\"gpt \\\"x\\\"\"");
  EXPECT_EQ(r->raw_value("k\\"), "true");
}

TEST(ChatRequest, LastDuplicateWins) {
  auto r = parse_chat_request(
      R"({"model":"a","messages":[{"role":"user"}],"model":"b","stream":true,"stream":false})");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->model, "b");
  EXPECT_FALSE(r->stream);
  EXPECT_EQ(r->raw_value("model"), R"("b")");
}

TEST(ChatRequest, UnescapeKey) {
  std::string scratch;
  EXPECT_EQ(unescape_key("plain", scratch), "plain");
  EXPECT_EQ(unescape_key(R"(a\"b\\c\/d\n)", scratch), "a\"b\\c/d\n");
  EXPECT_EQ(unescape_key(R"(\u00e9\u0915)", scratch), "\xC3\xA9\xE0\xA4\x95");
  EXPECT_EQ(unescape_key(R"(\ud83d\ude00)", scratch), "\xF0\x9F\x98\x80");
  EXPECT_EQ(unescape_key(R"(\ud83dx)", scratch), "\xEF\xBF\xBDx");  // lone surrogate
  EXPECT_EQ(unescape_key(R"(\u12)", scratch),
            "\xEF\xBF\xBD"
            "12");
  EXPECT_EQ(unescape_key("\\", scratch), "\\");
}

struct bad_case {
  const char* body;
  const char* message_part;
  const char* param;
};

TEST(ChatRequest, RejectsInvalidBodiesWithClearErrors) {
  const bad_case cases[] = {
      {"", "could not parse", ""},
      {"   ", "could not parse", ""},
      {"{", "could not parse", ""},
      {R"({"model":"m",})", "could not parse", ""},
      {R"({"model":"m"} x)", "unexpected data", ""},
      {R"([1,2])", "must be a JSON object", ""},
      {R"("text")", "must be a JSON object", ""},
      {R"(null)", "must be a JSON object", ""},
      {R"({"messages":[{"role":"user"}]})", "provide a model", "model"},
      {R"({"model":"","messages":[{"role":"user"}]})", "model: expected a non-empty string",
       "model"},
      {R"({"model":7,"messages":[{"role":"user"}]})", "model: expected", "model"},
      {R"({"model":null,"messages":[{"role":"user"}]})", "model: expected", "model"},
      {R"({"model":"m"})", "provide a messages", "messages"},
      {R"({"model":"m","messages":[]})", "non-empty array", "messages"},
      {R"({"model":"m","messages":{"role":"user"}})", "non-empty array", "messages"},
      {R"({"model":"m","messages":"hi"})", "non-empty array", "messages"},
      {R"({"model":"m","messages":[{"role":"user"},"x"]})", "messages[1]: expected an object",
       "messages[1]"},
      {R"({"model":"m","messages":[[]]})", "messages[0]: expected an object", "messages[0]"},
      {R"({"model":"m","messages":[{"content":"x"}]})", "messages[0]: missing required field",
       "messages[0].role"},
      {R"({"model":"m","messages":[{"role":"user"},{"role":5}]})",
       "messages[1].role: expected a string", "messages[1].role"},
      {R"({"model":"m","messages":[{"role":null}]})", "messages[0].role: expected a string",
       "messages[0].role"},
      {R"({"model":"m","messages":[{"role":"user"}],"stream":"yes"})", "stream: expected a boolean",
       "stream"},
      {R"({"model":"m","messages":[{"role":"user"}],"stream":1})", "stream: expected a boolean",
       "stream"},
      {R"({"model":"m","messages":[{"role":"user"}],"stream_options":true})",
       "stream_options: expected an object", "stream_options"},
      {R"({"model":"m","messages":[{"role":"user"}],"stream_options":{"include_usage":"y"}})",
       "include_usage: expected a boolean", "stream_options.include_usage"},
      {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\"}],\"x\":\"\xC3\"}", "could not parse",
       ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.body);
    error e = parse_error(c.body);
    EXPECT_EQ(e.code, errc::invalid_request);
    EXPECT_NE(e.message.find(c.message_part), std::string::npos) << e.message;
    EXPECT_EQ(e.param, c.param);
  }
}

TEST(ChatRequest, RefusesBytesHiddenBehindNul) {
  std::string body(minimal);
  body += '\0';
  body += "garbage";
  error e = parse_error(body);
  EXPECT_EQ(e.code, errc::invalid_request);
  std::string inner = R"({"model":"m","messages":[{"role":"user"}],"x":)";
  inner += '\0';
  inner += "1}";
  EXPECT_EQ(parse_error(inner).code, errc::invalid_request);
}

TEST(ChatRequest, DepthLimitIsInclusive) {
  EXPECT_TRUE(parse_chat_request(nested_body(63)));  // 64 levels
  error e = parse_error(nested_body(64));            // 65 levels
  EXPECT_EQ(e.code, errc::invalid_request);
  EXPECT_EQ(e.message, "JSON nesting exceeds 64 levels");
  EXPECT_TRUE(parse_chat_request(nested_body(3), {.max_depth = 4}));
  EXPECT_EQ(parse_error(nested_body(4), {.max_depth = 4}).message, "JSON nesting exceeds 4 levels");
}

/// `{"model":"m","messages":[` + `n` user messages + `]}`.
std::string body_with_messages(std::size_t n) {
  std::string s = R"({"model":"m","messages":[)";
  for (std::size_t i = 0; i < n; ++i) {
    s += i == 0 ? "" : ",";
    s += R"({"role":"user","content":"x"})";
  }
  return s + "]}";
}

TEST(ChatRequest, MessageCountLimitIsInclusive) {
  EXPECT_TRUE(parse_chat_request(body_with_messages(2048)));  // the default limit
  error e = parse_error(body_with_messages(2049));
  EXPECT_EQ(e.code, errc::invalid_request);
  EXPECT_EQ(e.param, "messages");
  EXPECT_EQ(e.message, "messages: too many messages: at most 2048 are accepted");
  EXPECT_TRUE(parse_chat_request(body_with_messages(3), {.max_messages = 3}));
  EXPECT_EQ(parse_error(body_with_messages(4), {.max_messages = 3}).param, "messages");
  EXPECT_TRUE(parse_chat_request(body_with_messages(5000), {.max_messages = 0}));  // no limit
}

TEST(ChatRequest, MessageCountIsFoundInTheSamePass) {
  // The parse stops at the entry past the limit: what follows it is never read (here it is not
  // even JSON), and a repeated `messages` member is counted on its own.
  std::string s = body_with_messages(3);
  s.resize(s.size() - 2);
  s += R"(,{"role":"user"}, this is not json)";
  EXPECT_EQ(parse_error(s, {.max_messages = 3}).param, "messages");
  std::string twice = R"({"model":"m","messages":[{"role":"user"},{"role":"user"}],)"
                      R"("messages":[{"role":"user"},{"role":"user"}]})";
  EXPECT_TRUE(parse_chat_request(twice, {.max_messages = 2}));
}

TEST(ChatRequest, HugeDepthIsRefusedWithoutRecursion) {
  std::string deep(100'000, '[');
  EXPECT_EQ(parse_error(deep).code, errc::invalid_request);
  std::string deep_member = R"({"model":"m","messages":[{"role":"user"}],"x":)";
  deep_member.append(100'000, '[');
  EXPECT_EQ(parse_error(deep_member).message, "JSON nesting exceeds 64 levels");
  std::string deep_objects = R"({"model":"m","messages":[{"role":"user"}],"x":)";
  for (int i = 0; i < 100'000; ++i) {
    deep_objects += R"({"a":)";
  }
  EXPECT_EQ(parse_error(deep_objects).message, "JSON nesting exceeds 64 levels");
}

TEST(ChatRequest, ExceedsDepth) {
  EXPECT_FALSE(exceeds_depth("", 1));
  EXPECT_FALSE(exceeds_depth("{}", 1));
  EXPECT_TRUE(exceeds_depth("{[]}", 1));
  EXPECT_FALSE(exceeds_depth(nested_body(63), 64));
  EXPECT_TRUE(exceeds_depth(nested_body(64), 64));
  EXPECT_FALSE(exceeds_depth(R"({"a":"[[[[[\"[[[["})", 1));  // brackets inside strings
  EXPECT_FALSE(exceeds_depth(R"({"a\\":"[["})", 1));         // escaped backslash ends escape
  EXPECT_TRUE(exceeds_depth(std::string(100'000, '['), 64));
  EXPECT_FALSE(exceeds_depth("]]]]{}", 1));
}

TEST(ChatRequest, RandomBytesNeverCrash) {
  std::mt19937 rng(12345);
  const std::string alphabet = "{}[]\",:\\ 0123456789truefalsnl-.eE\x01\xC3\xA9\xFF";
  for (int i = 0; i < 20'000; ++i) {
    std::string body;
    std::size_t len = rng() % 64;
    bool structured = (i % 2) == 0;
    for (std::size_t k = 0; k < len; ++k) {
      body.push_back(structured ? alphabet[rng() % alphabet.size()] : static_cast<char>(rng()));
    }
    auto r = parse_chat_request(body);
    if (r) {
      for (const auto& m : r->members) {
        ASSERT_LE(m.value_end, r->body.size());
        ASSERT_LE(m.begin, m.key_begin);
        ASSERT_LE(m.key_end, m.value_begin);
        ASSERT_LE(m.value_begin, m.value_end);
      }
    }
    (void)exceeds_depth(body, 3);
  }
}

TEST(ChatRequest, MutatedValidBodiesNeverCrash) {
  const std::string seed =
      R"({"model":"ib/cheap","stream":true,"stream_options":{"include_usage":true},)"
      R"("messages":[{"role":"developer","content":"x"},{"role":"user","name":"a",)"
      R"("content":[{"type":"text","text":"h\u00e9"}]}],"tools":[{"type":"function"}],"n":1})";
  std::mt19937 rng(777);
  for (int i = 0; i < 20'000; ++i) {
    std::string body = seed;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      std::size_t pos = rng() % body.size();
      switch (rng() % 3) {
        case 0:
          body[pos] = static_cast<char>(rng());
          break;
        case 1:
          body.erase(pos, 1 + rng() % 8);
          break;
        default:
          body.insert(pos, 1, "{}[]\",:\\"[rng() % 8]);
          break;
      }
      if (body.empty()) {
        body = "{";
      }
    }
    auto r = parse_chat_request(body);
    if (r) {
      for (const auto& m : r->members) {
        ASSERT_LE(m.value_end, r->body.size());
      }
    }
  }
}

}  // namespace
}  // namespace ib::providers
