#include "providers/anthropic.hpp"

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include "core/error.hpp"
#include "core/outcome.hpp"
#include "providers/adapter.hpp"
#include "providers/chat_request.hpp"

namespace ib::providers::anthropic {
namespace {

constexpr std::string_view upstream_model = "claude-sonnet-4-5";
constexpr std::int64_t created = 1732000000;

// -- helpers --------------------------------------------------------------------------------------

chat_request make_request(std::string body, bool include_usage = false) {
  chat_request req;
  req.body = std::move(body);
  req.model = "ib/premium";
  req.include_usage = include_usage;
  req.stream = include_usage;
  return req;
}

std::string fixture(std::string_view name) {
  std::ifstream in(std::string(IB_TEST_DATA_DIR) + "/anthropic/" + std::string(name),
                   std::ios::binary);
  EXPECT_TRUE(in.good()) << "missing fixture " << name;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string pretty(const rapidjson::Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buf);
  v.Accept(w);
  return buf.GetString();
}

// Every Parse here passes a length: RAPIDJSON_SSE2's NUL-terminated scan reads aligned 16-byte
// blocks past the end of the string, which ASan reports.

/// Semantic JSON equality (object member order ignored; 1 == 1.0), with both sides printed.
::testing::AssertionResult json_eq(std::string_view actual, std::string_view expected) {
  rapidjson::Document a;
  rapidjson::Document e;
  a.Parse(actual.data(), actual.size());
  e.Parse(expected.data(), expected.size());
  if (e.HasParseError()) {
    return ::testing::AssertionFailure() << "expected text is not JSON: " << expected;
  }
  if (a.HasParseError()) {
    return ::testing::AssertionFailure() << "actual text is not JSON: " << actual;
  }
  if (a == e) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "actual:\n" << pretty(a) << "\nexpected:\n" << pretty(e);
}

std::string encode_ok(std::string_view body) {
  auto r = encode_body(make_request(std::string(body)), upstream_model);
  EXPECT_TRUE(r.has_value()) << (r.has_value() ? std::string() : r.error().message);
  return r.has_value() ? *r : std::string();
}

/// The request with `extra` members (text without braces) and one user message.
std::string with_user(std::string_view extra = {}) {
  std::string body = R"({"model":"ib/premium","messages":[{"role":"user","content":"Hi"}])";
  if (!extra.empty()) {
    body += ',';
    body += extra;
  }
  body += '}';
  return body;
}

/// The expected body for `with_user` plus `extra` members.
std::string expected_user(std::string_view extra = {}, std::string_view max_tokens = "4096") {
  std::string body = R"({"model":"claude-sonnet-4-5","messages":[{"role":"user","content":[)"
                     R"({"type":"text","text":"Hi"}]}],"max_tokens":)";
  body += max_tokens;
  if (!extra.empty()) {
    body += ',';
    body += extra;
  }
  body += '}';
  return body;
}

/// A member of the encoded body, as compact JSON ("" when absent).
std::string member_json(std::string_view body, const char* key) {
  rapidjson::Document d;
  d.Parse(body.data(), body.size());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember(key)) {
    return {};
  }
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  d[key].Accept(w);
  return buf.GetString();
}

void expect_rejected(std::string_view body, std::string_view param) {
  auto r = encode_body(make_request(std::string(body)), upstream_model);
  ASSERT_FALSE(r.has_value()) << "accepted: " << *r;
  EXPECT_EQ(r.error().code, errc::invalid_request);
  EXPECT_EQ(r.error().param, param) << r.error().message;
  EXPECT_NE(r.error().message.find(std::string(param)), std::string::npos) << r.error().message;
}

// -- request: OpenAI -> Anthropic -----------------------------------------------------------------

TEST(AnthropicEncode, MinimalRequestGetsDefaultMaxTokens) {
  EXPECT_TRUE(json_eq(encode_ok(with_user()), expected_user()));
}

TEST(AnthropicEncode, KeepsKeyOrderStable) {
  auto out = encode_ok(with_user(R"("temperature":0.5,"stream":false,"stop":"END")"));
  EXPECT_EQ(out, R"({"model":"claude-sonnet-4-5","messages":[{"role":"user","content":[)"
                 R"({"type":"text","text":"Hi"}]}],"max_tokens":4096,"stop_sequences":["END"],)"
                 R"("stream":false,"temperature":0.5})");
}

TEST(AnthropicEncode, HoistsSystemAndDeveloperMessagesInOrder) {
  auto out = encode_ok(R"({"model":"m","messages":[
    {"role":"system","content":"Be brief."},
    {"role":"user","content":"Hi"},
    {"role":"developer","content":[{"type":"text","text":"Use metric."},{"type":"text","text":""}]},
    {"role":"user","content":[{"type":"text","text":"Weather?"}]},
    {"role":"assistant","content":"Sunny."},
    {"role":"system","content":""},
    {"role":"system","content":"Last rule."},
    {"role":"user","content":"Thanks"}]})");
  EXPECT_TRUE(json_eq(out, R"({"model":"claude-sonnet-4-5",
    "system":[{"type":"text","text":"Be brief."},{"type":"text","text":"Use metric."},
              {"type":"text","text":"Last rule."}],
    "messages":[
      {"role":"user","content":[{"type":"text","text":"Hi"},{"type":"text","text":"Weather?"}]},
      {"role":"assistant","content":[{"type":"text","text":"Sunny."}]},
      {"role":"user","content":[{"type":"text","text":"Thanks"}]}],
    "max_tokens":4096})"));
}

TEST(AnthropicEncode, ImageDataUrlAndHttpUrl) {
  auto out = encode_ok(R"({"model":"m","messages":[{"role":"user","content":[
    {"type":"text","text":"Compare"},
    {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo=","detail":"high"}},
    {"type":"image_url","image_url":{"url":"https://example.com/cat.jpg"}},
    {"type":"image_url","image_url":"HTTP://example.com/dog.webp"}]}]})");
  EXPECT_TRUE(json_eq(out, R"({"model":"claude-sonnet-4-5","messages":[{"role":"user","content":[
    {"type":"text","text":"Compare"},
    {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}},
    {"type":"image","source":{"type":"url","url":"https://example.com/cat.jpg"}},
    {"type":"image","source":{"type":"url","url":"HTTP://example.com/dog.webp"}}]}],
    "max_tokens":4096})"));
}

TEST(AnthropicEncode, ImageUrlErrors) {
  expect_rejected(R"({"model":"m","messages":[{"role":"user","content":[
    {"type":"image_url","image_url":{"url":"ftp://example.com/x.png"}}]}]})",
                  "messages[0].content[0].image_url.url");
  expect_rejected(R"({"model":"m","messages":[{"role":"user","content":[
    {"type":"image_url","image_url":{"url":"data:image/png,rawbytes"}}]}]})",
                  "messages[0].content[0].image_url.url");
  expect_rejected(R"({"model":"m","messages":[{"role":"user","content":[
    {"type":"image_url","image_url":{"url":"data:;base64,AAAA"}}]}]})",
                  "messages[0].content[0].image_url.url");
  expect_rejected(R"({"model":"m","messages":[{"role":"user","content":[
    {"type":"image_url","image_url":{"detail":"low"}}]}]})",
                  "messages[0].content[0].image_url.url");
  expect_rejected(R"({"model":"m","messages":[{"role":"user","content":[
    {"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}}]}]})",
                  "messages[0].content[0].type");
}

TEST(AnthropicEncode, PdfFileBecomesDocument) {
  auto out = encode_ok(R"({"model":"m","messages":[{"role":"user","content":[
    {"type":"file","file":{"filename":"a.pdf","file_data":"data:application/pdf;base64,JVBERi0="}}]}]})");
  EXPECT_TRUE(json_eq(out, R"({"model":"claude-sonnet-4-5","messages":[{"role":"user","content":[
    {"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0="}}]}],
    "max_tokens":4096})"));
  expect_rejected(R"({"model":"m","messages":[{"role":"user","content":[
    {"type":"file","file":{"file_id":"file-abc"}}]}]})",
                  "messages[0].content[0].file");
}

TEST(AnthropicEncode, ToolRoundTripHistoryMergesResults) {
  auto out = encode_body(make_request(fixture("tool_round_trip.request.json")), upstream_model);
  ASSERT_TRUE(out.has_value()) << out.error().message;
  EXPECT_TRUE(json_eq(*out, fixture("tool_round_trip.expected.json")));
}

TEST(AnthropicEncode, ToolResultsComeFirstInTheirUserTurn) {
  // A user message between the tool call and its result would put text before the tool_result;
  // Anthropic requires tool results first.
  auto out = encode_ok(R"({"model":"m","messages":[
    {"role":"user","content":"Hi"},
    {"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},
    {"role":"user","content":"also"},
    {"role":"tool","tool_call_id":"c1","content":"done"}],
    "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]})");
  EXPECT_EQ(
      member_json(out, "messages"),
      R"([{"role":"user","content":[{"type":"text","text":"Hi"}]},)"
      R"({"role":"assistant","content":[{"type":"tool_use","id":"c1","name":"f","input":{}}]},)"
      R"({"role":"user","content":[{"type":"tool_result","tool_use_id":"c1","content":"done"},)"
      R"({"type":"text","text":"also"}]}])");
}

TEST(AnthropicEncode, ToolIdsAreRewrittenConsistentlyAndInjectively) {
  // "functions.f:0" (Kimi's form) and "functions_f_0" must not become one id; valid ids pass.
  auto out = encode_ok(R"({"model":"m","messages":[
    {"role":"user","content":"Hi"},
    {"role":"assistant","tool_calls":[
      {"id":"functions.f:0","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}},
      {"id":"functions_f_0","type":"function","function":{"name":"f","arguments":"{}"}},
      {"id":"ibx_66","type":"function","function":{"name":"f","arguments":"{}"}},
      {"id":"call_ok-1","type":"function","function":{"name":"f","arguments":"{}"}}]},
    {"role":"tool","tool_call_id":"functions.f:0","content":"ok"},
    {"role":"tool","tool_call_id":"functions_f_0","content":"ok"},
    {"role":"tool","tool_call_id":"ibx_66","content":"ok"},
    {"role":"tool","tool_call_id":"call_ok-1","content":"ok"}],
    "tools":[{"type":"function","function":{"name":"f"}}]})");
  rapidjson::Document d;
  d.Parse(out.c_str(), out.size());
  ASSERT_TRUE(d.IsObject()) << out;
  const auto& uses = d["messages"][1]["content"];
  const auto& results = d["messages"][2]["content"];
  ASSERT_EQ(uses.Size(), 4u);
  ASSERT_EQ(results.Size(), 4u);
  const char* expected[] = {"ibx_66756e6374696f6e732e663a30", "functions_f_0", "ibx_6962785f3636",
                            "call_ok-1"};
  for (rapidjson::SizeType i = 0; i < 4; ++i) {
    EXPECT_STREQ(uses[i]["id"].GetString(), expected[i]);
    EXPECT_STREQ(results[i]["tool_use_id"].GetString(), expected[i]);
  }
}

TEST(AnthropicEncode, ToolIdRewriteNeverMergesDistinctIds) {
  // Every id from a small alphabet that mixes valid and invalid characters and the prefix:
  // distinct inputs give distinct outputs, and every output matches Anthropic's pattern.
  const std::string alphabet = "ibx_.:-";
  std::vector<std::string> ids;
  std::vector<std::string> shorter{""};
  for (int len = 1; len <= 4; ++len) {
    std::vector<std::string> next;
    for (const auto& id : shorter) {
      for (char c : alphabet) {
        next.push_back(id + c);
      }
    }
    ids.insert(ids.end(), next.begin(), next.end());
    shorter = std::move(next);
  }
  std::map<std::string, std::string> seen;
  for (const auto& id : ids) {
    std::string body = R"({"model":"m","messages":[{"role":"user","content":"Hi"},)"
                       R"({"role":"assistant","tool_calls":[{"id":)";
    body += '"' + id + '"';
    body += R"(,"type":"function","function":{"name":"f","arguments":"{}"}}]},)"
            R"({"role":"tool","tool_call_id":)";
    body += '"' + id + '"';
    body += R"(,"content":"ok"}],"tools":[{"type":"function","function":{"name":"f"}}]})";
    auto out = encode_ok(body);
    rapidjson::Document d;
    d.Parse(out.c_str(), out.size());
    ASSERT_TRUE(d.IsObject()) << out;
    std::string mapped = d["messages"][1]["content"][0]["id"].GetString();
    EXPECT_EQ(mapped, d["messages"][2]["content"][0]["tool_use_id"].GetString());
    for (char c : mapped) {
      ASSERT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-') << mapped;
    }
    auto [it, fresh] = seen.emplace(mapped, id);
    EXPECT_TRUE(fresh) << id << " and " << it->second << " both became " << mapped;
  }
  EXPECT_GT(seen.size(), 1000u);
}

TEST(AnthropicEncode, ToolChoiceVariants) {
  const std::string tools = R"("tools":[{"type":"function","function":{"name":"f"}}])";
  const std::map<std::string, std::string> cases = {
      {R"("auto")", R"({"type":"auto"})"},
      {R"("required")", R"({"type":"any"})"},
      {R"("none")", R"({"type":"none"})"},
      {R"({"type":"function","function":{"name":"f"}})", R"({"type":"tool","name":"f"})"},
  };
  for (const auto& [choice, expected] : cases) {
    auto out = encode_ok(with_user(tools + R"(,"tool_choice":)" + choice));
    EXPECT_EQ(member_json(out, "tool_choice"), expected) << choice;
    EXPECT_EQ(member_json(out, "tools"),
              R"([{"name":"f","input_schema":{"type":"object","properties":{}}}])");
  }
  // No tool_choice member: none is sent (Anthropic defaults to auto with tools).
  EXPECT_EQ(member_json(encode_ok(with_user(tools)), "tool_choice"), "");
  expect_rejected(with_user(tools + R"(,"tool_choice":"sometimes")"), "tool_choice");
  expect_rejected(with_user(tools + R"(,"tool_choice":{"type":"function"})"), "tool_choice");
}

TEST(AnthropicEncode, ParallelToolCallsFalse) {
  const std::string tools = R"("tools":[{"type":"function","function":{"name":"f"}}])";
  auto out = encode_ok(with_user(tools + R"(,"parallel_tool_calls":false)"));
  EXPECT_EQ(member_json(out, "tool_choice"), R"({"type":"auto","disable_parallel_tool_use":true})");
  out = encode_ok(with_user(tools + R"(,"parallel_tool_calls":false,"tool_choice":"required")"));
  EXPECT_EQ(member_json(out, "tool_choice"), R"({"type":"any","disable_parallel_tool_use":true})");
  out = encode_ok(with_user(
      tools
      + R"(,"parallel_tool_calls":false,"tool_choice":{"type":"function","function":{"name":"f"}})"));
  EXPECT_EQ(member_json(out, "tool_choice"),
            R"({"type":"tool","name":"f","disable_parallel_tool_use":true})");
  out = encode_ok(with_user(tools + R"(,"parallel_tool_calls":false,"tool_choice":"none")"));
  EXPECT_EQ(member_json(out, "tool_choice"), R"({"type":"none"})");
  out = encode_ok(with_user(tools + R"(,"parallel_tool_calls":true)"));
  EXPECT_EQ(member_json(out, "tool_choice"), "");
  // Without tools, there is nothing to choose from.
  out = encode_ok(with_user(R"("parallel_tool_calls":false,"tool_choice":"auto")"));
  EXPECT_TRUE(json_eq(out, expected_user()));
}

TEST(AnthropicEncode, ToolsKeepSchemaAndDescription) {
  auto out = encode_ok(with_user(R"("tools":[
    {"type":"function","function":{"name":"a","description":"does a","strict":true,
      "parameters":{"type":"object","properties":{"x":{"type":"integer","minimum":0}},"additionalProperties":false}}},
    {"type":"function","function":{"name":"b","parameters":null}}])"));
  EXPECT_TRUE(json_eq(member_json(out, "tools"), R"([
    {"name":"a","description":"does a",
     "input_schema":{"type":"object","properties":{"x":{"type":"integer","minimum":0}},"additionalProperties":false}},
    {"name":"b","input_schema":{"type":"object","properties":{}}}])"));
  expect_rejected(with_user(R"("tools":[{"type":"function","function":{"description":"x"}}])"),
                  "tools[0].function.name");
  expect_rejected(with_user(R"("tools":[{"type":"function","function":{"name":"a.b"}}])"),
                  "tools[0].function.name");
  expect_rejected(with_user(R"("tools":[{"type":"function","function":{"name":")"
                            + std::string(129, 'x') + R"("}}])"),
                  "tools[0].function.name");
  expect_rejected(with_user(R"("tools":[{"type":"function","function":{"name":"a"}},
                                        {"type":"function","function":{"name":"a"}}])"),
                  "tools[1].function.name");
  expect_rejected(with_user(R"("tools":[{"type":"custom","custom":{"name":"x"}}])"),
                  "tools[0].type");
  expect_rejected(with_user(R"("tools":{"type":"function"})"), "tools");
}

TEST(AnthropicEncode, ToolSchemasBecomeObjectSchemas) {
  // Issue 12, example 1: `parameters: {}` and a schema with properties but no type reached
  // Anthropic without `"type":"object"` (400 `input_schema.type: Field required`).
  auto out = encode_ok(with_user(R"("tools":[
    {"type":"function","function":{"name":"a","parameters":{}}},
    {"type":"function","function":{"name":"b","parameters":{"properties":{"x":{"type":"string"}},"required":["x"]}}},
    {"type":"function","function":{"name":"c"}},
    {"type":"function","function":{"name":"d","parameters":{"type":"object"}}}])"));
  EXPECT_EQ(
      member_json(out, "tools"),
      R"([{"name":"a","input_schema":{"type":"object"}},)"
      R"({"name":"b","input_schema":{"type":"object","properties":{"x":{"type":"string"}},"required":["x"]}},)"
      R"({"name":"c","input_schema":{"type":"object","properties":{}}},)"
      R"({"name":"d","input_schema":{"type":"object"}}])");
  expect_rejected(
      with_user(
          R"("tools":[{"type":"function","function":{"name":"a","parameters":{"type":"string"}}}])"),
      "tools[0].function.parameters.type");
  expect_rejected(
      with_user(
          R"("tools":[{"type":"function","function":{"name":"a","parameters":{"type":["object","null"]}}}])"),
      "tools[0].function.parameters.type");
  expect_rejected(
      with_user(R"("tools":[{"type":"function","function":{"name":"a","parameters":[]}}])"),
      "tools[0].function.parameters");
  // Blank descriptions are left out.
  out = encode_ok(
      with_user(R"("tools":[{"type":"function","function":{"name":"a","description":"  "}}])"));
  EXPECT_EQ(member_json(out, "tools"),
            R"([{"name":"a","input_schema":{"type":"object","properties":{}}}])");
}

TEST(AnthropicEncode, ToolChoiceMustNameADeclaredTool) {
  expect_rejected(with_user(R"("tools":[{"type":"function","function":{"name":"f"}}],
                   "tool_choice":{"type":"function","function":{"name":"g"}})"),
                  "tool_choice");
}

TEST(AnthropicEncode, ToolCallsAndResultsMustPair) {
  const std::string tools = R"(,"tools":[{"type":"function","function":{"name":"f"}}]})";
  auto call = [](std::string_view id) {
    return R"({"role":"assistant","tool_calls":[{"id":")" + std::string(id)
           + R"(","type":"function","function":{"name":"f","arguments":"{}"}}]})";
  };
  auto result = [](std::string_view id) {
    return R"({"role":"tool","tool_call_id":")" + std::string(id) + R"(","content":"ok"})";
  };
  const std::string hi = R"({"role":"user","content":"Hi"})";
  // A tool message with no tool call before it.
  expect_rejected(R"({"model":"m","messages":[)" + hi + "," + result("x") + "]" + tools,
                  "messages[1].tool_call_id");
  // A tool message answering a call of an older assistant turn.
  expect_rejected(R"({"model":"m","messages":[)" + hi + "," + call("a") + "," + result("a") + ","
                      + R"({"role":"assistant","content":"done"},)" + hi + "," + result("a") + "]"
                      + tools,
                  "messages[5].tool_call_id");
  // The same call answered twice.
  expect_rejected(R"({"model":"m","messages":[)" + hi + "," + call("a") + "," + result("a") + ","
                      + result("a") + "]" + tools,
                  "messages[3].tool_call_id");
  // A call nobody answered, in the middle and at the end.
  expect_rejected(R"({"model":"m","messages":[)" + hi + "," + call("a") + "," + hi + "]" + tools,
                  "messages[1].tool_calls[0].id");
  expect_rejected(R"({"model":"m","messages":[)" + hi + "," + call("a") + "]" + tools,
                  "messages[1].tool_calls[0].id");
  // Duplicate ids across turns.
  expect_rejected(R"({"model":"m","messages":[)" + hi + "," + call("a") + "," + result("a") + ","
                      + call("a") + "," + result("a") + "]" + tools,
                  "messages[3].tool_calls[0].id");
  // Paired across a merged user message: fine.
  encode_ok(R"({"model":"m","messages":[)" + hi + "," + call("a") + "," + hi + "," + result("a")
            + "]" + tools);
}

TEST(AnthropicEncode, ImageMediaTypesAreNormalisedOrRefused) {
  auto image = [](std::string_view url) {
    return R"({"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"see"},)"
           R"({"type":"image_url","image_url":{"url":")"
           + std::string(url) + R"("}}]}]})";
  };
  auto media_type = [&](std::string_view url) {
    rapidjson::Document d;
    auto out = encode_ok(image(url));
    d.Parse(out.c_str(), out.size());
    return std::string(d["messages"][0]["content"][1]["source"]["media_type"].GetString());
  };
  EXPECT_EQ(media_type("data:image/jpg;base64,/9j/"), "image/jpeg");
  EXPECT_EQ(media_type("data:IMAGE/PNG;base64,iVBO"), "image/png");
  EXPECT_EQ(media_type("data:image/webp;base64,UklG"), "image/webp");
  EXPECT_EQ(media_type("data:image/gif;base64,R0lG"), "image/gif");
  expect_rejected(image("data:image/svg+xml;base64,PHN2"), "messages[0].content[1].image_url.url");
  expect_rejected(image("data:image/tiff;base64,SUkq"), "messages[0].content[1].image_url.url");
  expect_rejected(image("data:image/png;base64,"), "messages[0].content[1].image_url.url");
  expect_rejected(
      R"({"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}}]}]})",
      "messages[0].content[0].type");
}

TEST(AnthropicEncode, StopStringAndArray) {
  EXPECT_EQ(member_json(encode_ok(with_user(R"("stop":"END")")), "stop_sequences"), R"(["END"])");
  EXPECT_EQ(member_json(encode_ok(with_user(R"("stop":["a"," ","\n\t","b\n"])")), "stop_sequences"),
            R"(["a","b\n"])");
  EXPECT_EQ(member_json(encode_ok(with_user(R"("stop":["a","b","a"])")), "stop_sequences"),
            R"(["a","b"])");
  EXPECT_EQ(member_json(encode_ok(with_user(R"("stop":"  ")")), "stop_sequences"), "");
  EXPECT_EQ(member_json(encode_ok(with_user(R"("stop":[])")), "stop_sequences"), "");
  EXPECT_EQ(member_json(encode_ok(with_user(R"("stop":null)")), "stop_sequences"), "");
  expect_rejected(with_user(R"("stop":["a",1])"), "stop");
  expect_rejected(with_user(R"("stop":5)"), "stop");
}

TEST(AnthropicEncode, MaxTokensPrecedenceAndDefault) {
  EXPECT_TRUE(json_eq(encode_ok(with_user(R"("max_tokens":100)")), expected_user({}, "100")));
  EXPECT_TRUE(json_eq(encode_ok(with_user(R"("max_tokens":100,"max_completion_tokens":200)")),
                      expected_user({}, "200")));
  EXPECT_TRUE(json_eq(encode_ok(with_user(R"("max_completion_tokens":null,"max_tokens":50)")),
                      expected_user({}, "50")));
  EXPECT_TRUE(json_eq(encode_ok(with_user(R"("max_tokens":null)")), expected_user()));
  expect_rejected(with_user(R"("max_tokens":0)"), "max_tokens");
  expect_rejected(with_user(R"("max_completion_tokens":"many")"), "max_completion_tokens");
  expect_rejected(with_user(R"("max_tokens":1.5)"), "max_tokens");
}

TEST(AnthropicEncode, TemperatureClampedTopPPassed) {
  // Claude 4.x refuse temperature and top_p together: temperature wins (issue 12, example 1).
  EXPECT_TRUE(json_eq(encode_ok(with_user(R"("temperature":1.7,"top_p":0.9)")),
                      expected_user(R"("temperature":1.0)")));
  EXPECT_TRUE(json_eq(encode_ok(with_user(R"("temperature":0.2,"top_p":0.9)")),
                      expected_user(R"("temperature":0.2)")));
  EXPECT_TRUE(json_eq(encode_ok(with_user(R"("top_p":0.9)")), expected_user(R"("top_p":0.9)")));
  EXPECT_TRUE(json_eq(encode_ok(with_user(R"("temperature":null,"top_p":0.5)")),
                      expected_user(R"("top_p":0.5)")));
  EXPECT_TRUE(
      json_eq(encode_ok(with_user(R"("temperature":2)")), expected_user(R"("temperature":1)")));
  EXPECT_TRUE(
      json_eq(encode_ok(with_user(R"("temperature":0)")), expected_user(R"("temperature":0)")));
  EXPECT_TRUE(json_eq(encode_ok(with_user(R"("temperature":0.25)")),
                      expected_user(R"("temperature":0.25)")));
  expect_rejected(with_user(R"("temperature":"hot")"), "temperature");
  expect_rejected(with_user(R"("temperature":-0.1)"), "temperature");
  expect_rejected(with_user(R"("temperature":2.5)"), "temperature");
  expect_rejected(with_user(R"("top_p":[1])"), "top_p");
  expect_rejected(with_user(R"("top_p":1.5)"), "top_p");
}

TEST(AnthropicEncode, NoSamplingFromApiVersion20261021) {
  EXPECT_TRUE(sampling_accepted("2023-06-01"));
  EXPECT_FALSE(sampling_accepted("2026-10-21"));
  EXPECT_FALSE(sampling_accepted("2027-01-01"));
  auto r = encode_body(make_request(with_user(R"("temperature":0.2,"top_p":0.9)")), upstream_model,
                       "2026-10-21");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_TRUE(json_eq(*r, expected_user()));
  r = encode_body(make_request(with_user(R"("top_p":0.9)")), upstream_model, "2026-10-21");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_TRUE(json_eq(*r, expected_user()));
  // Still validated: a value OpenAI would refuse is refused.
  r = encode_body(make_request(with_user(R"("temperature":3)")), upstream_model, "2026-10-21");
  EXPECT_FALSE(r.has_value());
}

TEST(AnthropicEncode, StreamPassesStreamOptionsDropped) {
  EXPECT_TRUE(
      json_eq(encode_ok(with_user(R"("stream":true,"stream_options":{"include_usage":true})")),
              expected_user(R"("stream":true)")));
}

TEST(AnthropicEncode, UserBecomesMetadataUnlessEmail) {
  EXPECT_TRUE(json_eq(encode_ok(with_user(R"("user":"user-123")")),
                      expected_user(R"("metadata":{"user_id":"user-123"})")));
  EXPECT_TRUE(json_eq(encode_ok(with_user(R"("user":"jane.doe@example.com")")), expected_user()));
  EXPECT_TRUE(json_eq(encode_ok(with_user(R"("user":"")")), expected_user()));
}

TEST(AnthropicEncode, DropsUnsupportedButHarmlessFields) {
  auto out = encode_ok(with_user(
      R"("logit_bias":{"50256":-100},"presence_penalty":0.5,"frequency_penalty":0.1,"seed":7,)"
      R"("stream_options":{"include_usage":true},"service_tier":"auto","store":true,)"
      R"("metadata":{"k":"v"},"response_format":{"type":"json_object"},"n":1,"logprobs":false,)"
      R"("top_logprobs":0,"reasoning_effort":"low")"));
  EXPECT_TRUE(json_eq(out, expected_user()));
  EXPECT_TRUE(
      json_eq(encode_ok(with_user(R"("response_format":{"type":"text"})")), expected_user()));
}

TEST(AnthropicEncode, RejectsWhatAnthropicCannotExpress) {
  expect_rejected(with_user(R"("n":2)"), "n");
  expect_rejected(with_user(R"("logprobs":true)"), "logprobs");
  expect_rejected(with_user(R"("top_logprobs":3)"), "top_logprobs");
  expect_rejected(
      with_user(
          R"("response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{}}})"),
      "response_format");
  expect_rejected(R"({"model":"m","messages":[{"role":"function","name":"f","content":"x"}]})",
                  "messages[0].role");
  expect_rejected(
      R"({"model":"m","messages":[{"role":"system","content":"only a system prompt"}]})",
      "messages");
}

TEST(AnthropicEncode, BadToolArgumentsNameTheField) {
  const char* bad[] = {R"("{\"city\":")", R"("[1,2]")", R"("42")", R"("not json")", "17"};
  for (const char* args : bad) {
    std::string body = R"({"model":"m","messages":[{"role":"user","content":"Hi"},)"
                       R"({"role":"assistant","content":"","tool_calls":[)"
                       R"({"id":"c0","type":"function","function":{"name":"g","arguments":"{}"}},)"
                       R"({"id":"c1","type":"function","function":{"name":"f","arguments":)";
    body += args;
    body += R"(}}]}]})";
    expect_rejected(body, "messages[1].tool_calls[1].function.arguments");
  }
  expect_rejected(
      R"({"model":"m","messages":[{"role":"assistant","tool_calls":[{"type":"function","function":{"name":"f"}}]}]})",
      "messages[0].tool_calls[0].id");
  expect_rejected(
      R"({"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{}}]}]})",
      "messages[0].tool_calls[0].function.name");
  expect_rejected(R"({"model":"m","messages":[{"role":"tool","content":"x"}]})",
                  "messages[0].tool_call_id");
}

TEST(AnthropicEncode, ArgumentsGivenAsObjectOrEmptyAreAccepted) {
  auto out = encode_ok(R"({"model":"m","messages":[{"role":"user","content":"Hi"},
    {"role":"assistant","tool_calls":[
      {"id":"a","type":"function","function":{"name":"f","arguments":{"x":[1,{"y":null}]}}},
      {"id":"b","type":"function","function":{"name":"f","arguments":"  "}},
      {"id":"c","type":"function","function":{"name":"f"}}]},
    {"role":"tool","tool_call_id":"a","content":"1"},
    {"role":"tool","tool_call_id":"b","content":"2"},
    {"role":"tool","tool_call_id":"c","content":"3"}],
    "tools":[{"type":"function","function":{"name":"f"}}]})");
  EXPECT_TRUE(json_eq(member_json(out, "messages"), R"([
    {"role":"user","content":[{"type":"text","text":"Hi"}]},
    {"role":"assistant","content":[
      {"type":"tool_use","id":"a","name":"f","input":{"x":[1,{"y":null}]}},
      {"type":"tool_use","id":"b","name":"f","input":{}},
      {"type":"tool_use","id":"c","name":"f","input":{}}]},
    {"role":"user","content":[
      {"type":"tool_result","tool_use_id":"a","content":"1"},
      {"type":"tool_result","tool_use_id":"b","content":"2"},
      {"type":"tool_result","tool_use_id":"c","content":"3"}]}])"));
}

TEST(AnthropicEncode, DummyToolWhenHistoryHasToolsButRequestHasNone) {
  auto out = encode_ok(R"({"model":"m","messages":[{"role":"user","content":"Hi"},
    {"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},
    {"role":"tool","tool_call_id":"c1","content":"ok"},
    {"role":"user","content":"Now summarise."}]})");
  rapidjson::Document d;
  d.Parse(out.c_str(), out.size());
  ASSERT_TRUE(d.IsObject()) << out;
  ASSERT_TRUE(d.HasMember("tools") && d["tools"].IsArray() && d["tools"].Size() == 1u) << out;
  const auto& tool = d["tools"][0];
  ASSERT_TRUE(tool.IsObject() && tool.HasMember("name") && tool["name"].IsString()) << out;
  rapidjson::Document schema;
  const std::string_view schema_text = R"({"type":"object","properties":{}})";
  schema.Parse(schema_text.data(), schema_text.size());
  EXPECT_TRUE(tool["input_schema"] == schema) << out;
  // The model must not call the stand-in tool.
  EXPECT_EQ(member_json(out, "tool_choice"), R"({"type":"none"})");
  // No tool blocks in the history: no dummy.
  EXPECT_EQ(member_json(encode_ok(with_user()), "tools"), "");
}

TEST(AnthropicEncode, SkipsBlankTextAndKeepsAssistantFirst) {
  auto out = encode_ok(R"({"model":"m","messages":[
    {"role":"assistant","content":"Hello! How can I help?"},
    {"role":"user","content":""},
    {"role":"user","content":"  \n "},
    {"role":"user","content":[{"type":"text","text":""},{"type":"text","text":"Hi"},{"type":"text","text":"\t"}]},
    {"role":"assistant","content":[{"type":"text","text":"The answer is"},{"type":"refusal","refusal":""}]},
    {"role":"assistant","content":"  \n"}]})");
  // The final assistant text is a prefill: Anthropic rejects trailing whitespace there.
  EXPECT_EQ(member_json(out, "messages"),
            R"([{"role":"assistant","content":[{"type":"text","text":"Hello! How can I help?"}]},)"
            R"({"role":"user","content":[{"type":"text","text":"Hi"}]},)"
            R"({"role":"assistant","content":[{"type":"text","text":"The answer is"}]}])");
  out = encode_ok(R"({"model":"m","messages":[{"role":"user","content":"Hi"},
    {"role":"assistant","content":"Sure: "}]})");
  EXPECT_EQ(member_json(out, "messages"),
            R"([{"role":"user","content":[{"type":"text","text":"Hi"}]},)"
            R"({"role":"assistant","content":[{"type":"text","text":"Sure:"}]}])");
}

TEST(AnthropicEncode, ToolResultWithImage) {
  auto out = encode_ok(R"({"model":"m","messages":[{"role":"user","content":"Hi"},
    {"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"shot","arguments":"{}"}}]},
    {"role":"tool","tool_call_id":"c1","content":[{"type":"text","text":"here"},
      {"type":"image_url","image_url":{"url":"data:image/jpeg;base64,/9j/"}}]}],
    "tools":[{"type":"function","function":{"name":"shot"}}]})");
  EXPECT_TRUE(json_eq(member_json(out, "messages"), R"([
    {"role":"user","content":[{"type":"text","text":"Hi"}]},
    {"role":"assistant","content":[{"type":"tool_use","id":"c1","name":"shot","input":{}}]},
    {"role":"user","content":[{"type":"tool_result","tool_use_id":"c1","content":[
      {"type":"text","text":"here"},
      {"type":"image","source":{"type":"base64","media_type":"image/jpeg","data":"/9j/"}}]}]}])"));
}

TEST(AnthropicEncode, EscapesAndUnicodeSurvive) {
  auto out = encode_ok(
      R"({"model":"m","messages":[{"role":"user","content":"नमस्ते \"quoted\" \\ \u0000 \n end"}]})");
  rapidjson::Document d;
  d.Parse(out.c_str(), out.size());
  ASSERT_FALSE(d.HasParseError()) << out;
  const auto& text = d["messages"][0]["content"][0]["text"];
  std::string expected = "नमस्ते \"quoted\" \\ ";
  expected += '\0';
  expected += " \n end";
  EXPECT_EQ(std::string(text.GetString(), text.GetStringLength()), expected);
}

TEST(AnthropicEncode, MalformedShapesAreErrorsNotCrashes) {
  expect_rejected(R"({"model":"m"})", "messages");
  expect_rejected(R"({"model":"m","messages":{}})", "messages");
  expect_rejected(R"({"model":"m","messages":[1]})", "messages[0]");
  expect_rejected(R"({"model":"m","messages":[{"content":"x"}]})", "messages[0].role");
  expect_rejected(R"({"model":"m","messages":[{"role":"user","content":7}]})",
                  "messages[0].content");
  expect_rejected(R"({"model":"m","messages":[{"role":"user","content":[{"text":"x"}]}]})",
                  "messages[0].content[0].type");
  expect_rejected(
      R"({"model":"m","messages":[{"role":"user","content":[{"type":"text","text":1}]}]})",
      "messages[0].content[0].text");
  expect_rejected(
      R"({"model":"m","messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://x"}}]}]})",
      "messages[0].content[0].type");
  expect_rejected(R"({"model":"m","messages":[{"role":"assistant","tool_calls":{}}]})",
                  "messages[0].tool_calls");
  auto r = encode_body(make_request("not json"), upstream_model);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, errc::invalid_request);
  r = encode_body(make_request("[]"), upstream_model);
  ASSERT_FALSE(r.has_value());
  std::string deep =
      R"({"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":)";
  deep += std::string(100000, '[') + std::string(100000, ']') + "}}]}";
  r = encode_body(make_request(deep), upstream_model);
  EXPECT_FALSE(r.has_value());
  std::string deep_args =
      R"({"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":")";
  deep_args += std::string(100000, '[') + std::string(100000, ']') + R"("}}]}]})";
  expect_rejected(deep_args, "messages[0].tool_calls[0].function.arguments");
}

// -- response: Anthropic -> OpenAI ----------------------------------------------------------------

decoded_response decode_at(int status, std::string_view body,
                           std::string_view content_type = "application/json") {
  upstream_response res;
  res.status = status;
  res.content_type = content_type;
  res.body = body;
  return decode(make_request(with_user()), upstream_model, res, created);
}

TEST(AnthropicDecode, TextMessage) {
  auto d = decode_at(200, R"({"id":"msg_01X","type":"message","role":"assistant",
    "model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"Hello"},{"type":"text","text":" there"}],
    "stop_reason":"end_turn","stop_sequence":null,
    "usage":{"input_tokens":12,"output_tokens":3}})");
  EXPECT_EQ(d.result, outcome::success);
  EXPECT_EQ(d.status, 200);
  EXPECT_EQ(d.model, "claude-sonnet-4-5-20250929");
  ASSERT_TRUE(d.tokens.has_value());
  EXPECT_EQ(d.tokens->prompt_tokens, 12);
  EXPECT_EQ(d.tokens->completion_tokens, 3);
  EXPECT_EQ(d.tokens->total_tokens, 15);
  EXPECT_EQ(d.tokens->cached_tokens, 0);
  EXPECT_EQ(
      d.body,
      R"({"id":"msg_01X","object":"chat.completion","created":1732000000,)"
      R"("model":"claude-sonnet-4-5-20250929","choices":[{"index":0,"message":{"role":"assistant",)"
      R"("content":"Hello there","refusal":null},"logprobs":null,"finish_reason":"stop"}],)"
      R"("usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15,)"
      R"("prompt_tokens_details":{"cached_tokens":0}}})");
}

TEST(AnthropicDecode, ToolUseAndText) {
  auto d = decode_at(200, R"({"id":"msg_01X","type":"message","role":"assistant",
    "model":"claude-sonnet-4-5-20250929",
    "content":[{"type":"text","text":"Let me check."},
               {"type":"tool_use","id":"toolu_01A","name":"get_weather","input":{"city":"Pune","days":[1,2]}},
               {"type":"tool_use","id":"toolu_01B","name":"now","input":{}}],
    "stop_reason":"tool_use","stop_sequence":null,
    "usage":{"input_tokens":410,"output_tokens":52,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}})");
  ASSERT_EQ(d.result, outcome::success) << d.body;
  EXPECT_TRUE(json_eq(d.body, R"({"id":"msg_01X","object":"chat.completion","created":1732000000,
    "model":"claude-sonnet-4-5-20250929",
    "choices":[{"index":0,"message":{"role":"assistant","content":"Let me check.","refusal":null,
      "tool_calls":[
        {"id":"toolu_01A","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Pune\",\"days\":[1,2]}"}},
        {"id":"toolu_01B","type":"function","function":{"name":"now","arguments":"{}"}}]},
      "logprobs":null,"finish_reason":"tool_calls"}],
    "usage":{"prompt_tokens":410,"completion_tokens":52,"total_tokens":462,"prompt_tokens_details":{"cached_tokens":0}}})"));
}

TEST(AnthropicDecode, ToolUseOnlyHasNullContent) {
  auto d = decode_at(200, R"({"id":"msg_1","type":"message","role":"assistant","model":"c",
    "content":[{"type":"tool_use","id":"toolu_1","name":"f","input":{}}],"stop_reason":"tool_use",
    "usage":{"input_tokens":1,"output_tokens":1}})");
  ASSERT_EQ(d.result, outcome::success) << d.body;
  rapidjson::Document doc;
  doc.Parse(d.body.c_str(), d.body.size());
  EXPECT_TRUE(doc["choices"][0]["message"]["content"].IsNull());
}

TEST(AnthropicDecode, EachStopReason) {
  const std::map<std::string, std::string> table = {
      {"end_turn", "stop"},
      {"stop_sequence", "stop"},
      {"max_tokens", "length"},
      {"tool_use", "tool_calls"},
      {"pause_turn", "stop"},
      {"refusal", "content_filter"},
      {"model_context_window_exceeded", "length"},
      {"something_new", "stop"},
  };
  for (const auto& [stop, finish] : table) {
    auto d = decode_at(200, R"({"id":"msg_1","type":"message","role":"assistant","model":"c",)"
                            R"("content":[{"type":"text","text":"x"}],"stop_reason":")"
                                + stop + R"(","usage":{"input_tokens":1,"output_tokens":1}})");
    ASSERT_EQ(d.result, outcome::success) << d.body;
    rapidjson::Document doc;
    doc.Parse(d.body.c_str(), d.body.size());
    EXPECT_EQ(std::string(doc["choices"][0]["finish_reason"].GetString()), finish) << stop;
  }
}

TEST(AnthropicDecode, UsageCountsCacheAsPrompt) {
  auto d = decode_at(200, R"({"id":"msg_1","type":"message","role":"assistant","model":"c",
    "content":[{"type":"text","text":"x"}],"stop_reason":"end_turn",
    "usage":{"input_tokens":100,"output_tokens":20,"cache_creation_input_tokens":30,"cache_read_input_tokens":400}})");
  ASSERT_EQ(d.result, outcome::success) << d.body;
  ASSERT_TRUE(d.tokens.has_value());
  EXPECT_EQ(d.tokens->prompt_tokens, 530);
  EXPECT_EQ(d.tokens->completion_tokens, 20);
  EXPECT_EQ(d.tokens->total_tokens, 550);
  EXPECT_EQ(d.tokens->cached_tokens, 400);
  EXPECT_TRUE(json_eq(member_json(d.body, "usage"),
                      R"({"prompt_tokens":530,"completion_tokens":20,"total_tokens":550,)"
                      R"("prompt_tokens_details":{"cached_tokens":400}})"));
}

TEST(AnthropicDecode, ThinkingBecomesReasoningContent) {
  auto d = decode_at(200, R"({"id":"msg_1","type":"message","role":"assistant","model":"c",
    "content":[{"type":"thinking","thinking":"Hmm.","signature":"sig"},{"type":"redacted_thinking","data":"x"},
               {"type":"text","text":"42"}],"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":1}})");
  ASSERT_EQ(d.result, outcome::success) << d.body;
  rapidjson::Document doc;
  doc.Parse(d.body.c_str(), d.body.size());
  EXPECT_EQ(std::string(doc["choices"][0]["message"]["reasoning_content"].GetString()), "Hmm.");
  EXPECT_EQ(std::string(doc["choices"][0]["message"]["content"].GetString()), "42");
}

TEST(AnthropicDecode, MissingUsageAndModelFallBack) {
  auto d =
      decode_at(200, R"({"id":"msg_1","type":"message","content":[],"stop_reason":"end_turn"})");
  ASSERT_EQ(d.result, outcome::success) << d.body;
  EXPECT_EQ(d.model, upstream_model);
  EXPECT_FALSE(d.tokens.has_value());
  EXPECT_EQ(member_json(d.body, "usage"), "");
  rapidjson::Document doc;
  doc.Parse(d.body.c_str(), d.body.size());
  EXPECT_EQ(std::string(doc["choices"][0]["message"]["content"].GetString()), "");
}

TEST(AnthropicDecode, InvalidSuccessBodiesAreBadResponses) {
  const char* bodies[] = {
      "",
      "<html>oops</html>",
      R"({"id":)",
      "[]",
      R"({"type":"message"})",
      R"({"type":"completion","content":[]})",
      R"({"type":"message","content":[{"text":"x"}]})",
      R"({"type":"message","content":[{"type":"text"}]})",
      R"({"type":"message","content":[{"type":"tool_use","name":"f"}]})",
      R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})",
  };
  for (const char* body : bodies) {
    auto d = decode_at(200, body);
    EXPECT_EQ(d.result, outcome::bad_response) << body;
    EXPECT_EQ(d.status, 502) << body;
    rapidjson::Document doc;
    doc.Parse(d.body.c_str(), d.body.size());
    ASSERT_TRUE(doc.IsObject() && doc.HasMember("error")) << d.body;
    EXPECT_TRUE(doc["error"]["message"].IsString());
  }
  auto d = decode_at(
      200, R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})");
  EXPECT_TRUE(json_eq(
      d.body,
      R"({"error":{"message":"Overloaded","type":"overloaded_error","param":null,"code":null}})"));
}

struct error_case {
  int status;
  std::string body;
  std::string content_type;
  outcome expected;
  std::string envelope;
};

TEST(AnthropicDecode, ErrorShapes) {
  const error_case cases[] = {
      {400,
       R"({"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: Field required"},"request_id":"req_1"})",
       "application/json", outcome::request_rejected,
       R"({"error":{"message":"max_tokens: Field required","type":"invalid_request_error","param":null,"code":null}})"},
      {401,
       R"({"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}})",
       "application/json", outcome::key_rejected,
       R"({"error":{"message":"invalid x-api-key","type":"authentication_error","param":null,"code":null}})"},
      {402,
       R"({"type":"error","error":{"type":"billing_error","message":"credit balance too low"}})",
       "application/json", outcome::key_rejected,
       R"({"error":{"message":"credit balance too low","type":"billing_error","param":null,"code":null}})"},
      {404, R"({"type":"error","error":{"type":"not_found_error","message":"model: x"}})",
       "application/json", outcome::request_rejected,
       R"({"error":{"message":"model: x","type":"not_found_error","param":null,"code":null}})"},
      {429,
       R"({"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}})",
       "application/json", outcome::rate_limited,
       R"({"error":{"message":"Number of request tokens has exceeded your per-minute rate limit","type":"rate_limit_error","param":null,"code":null}})"},
      {500, R"({"type":"error","error":{"type":"api_error","message":"Internal server error"}})",
       "application/json", outcome::server_error,
       R"({"error":{"message":"Internal server error","type":"api_error","param":null,"code":null}})"},
      {529, R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})",
       "application/json", outcome::server_error,
       R"({"error":{"message":"Overloaded","type":"overloaded_error","param":null,"code":null}})"},
      {413,
       "<html><head><title>413 Request Entity Too "
       "Large</title></head><body>cloudflare</body></html>",
       "text/html", outcome::request_rejected,
       R"({"error":{"message":"anthropic returned HTTP 413","type":"upstream_error","param":null,"code":null}})"},
      {502, "<html>Bad gateway</html>", "text/html; charset=UTF-8", outcome::server_error,
       R"({"error":{"message":"anthropic returned HTTP 502","type":"upstream_error","param":null,"code":null}})"},
      {503, "", "", outcome::server_error,
       R"({"error":{"message":"anthropic returned HTTP 503","type":"upstream_error","param":null,"code":null}})"},
      {504, "upstream request timeout", "text/plain", outcome::server_error,
       R"({"error":{"message":"anthropic returned HTTP 504","type":"upstream_error","param":null,"code":null}})"},
  };
  for (const auto& c : cases) {
    auto d = decode_at(c.status, c.body, c.content_type);
    EXPECT_EQ(d.result, c.expected) << c.status;
    EXPECT_EQ(d.status, c.status);
    EXPECT_TRUE(d.model.empty());
    EXPECT_FALSE(d.tokens.has_value());
    EXPECT_TRUE(json_eq(d.body, c.envelope)) << c.status;
  }
}

TEST(AnthropicDecode, ProductionOverloadStampsNow) {
  upstream_response res;
  res.status = 200;
  res.body =
      R"({"id":"msg_1","type":"message","content":[{"type":"text","text":"x"}],"stop_reason":"end_turn"})";
  auto before = static_cast<std::int64_t>(std::time(nullptr));
  auto d = decode(make_request(with_user()), upstream_model, res);
  auto after = static_cast<std::int64_t>(std::time(nullptr));
  rapidjson::Document doc;
  doc.Parse(d.body.c_str(), d.body.size());
  ASSERT_TRUE(doc.IsObject()) << d.body;
  EXPECT_GE(doc["created"].GetInt64(), before);
  EXPECT_LE(doc["created"].GetInt64(), after);
}

// -- stream: Anthropic events -> OpenAI chunks ----------------------------------------------------

/// Feeds `input` in pieces of at most `step` bytes (0: whole), then calls finish().
stream_output run_stream(std::string_view input, bool include_usage = false, std::size_t step = 0,
                         bool call_finish = true) {
  auto t = make_translator(make_request(with_user(), include_usage), upstream_model, created);
  stream_output out;
  if (step == 0) {
    t->feed(input, out);
  } else {
    for (std::size_t i = 0; i < input.size(); i += step) {
      t->feed(input.substr(i, step), out);
    }
  }
  if (call_finish) {
    t->finish(out);
  }
  return out;
}

/// The `data:` payloads of an SSE text, in order.
std::vector<std::string> data_lines(std::string_view sse) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < sse.size()) {
    auto end = sse.find("\n\n", pos);
    if (end == std::string_view::npos) {
      ADD_FAILURE() << "unterminated event: " << sse.substr(pos);
      break;
    }
    auto event = sse.substr(pos, end - pos);
    EXPECT_EQ(event.substr(0, 6), "data: ") << event;
    out.emplace_back(event.substr(6));
    pos = end + 2;
  }
  return out;
}

/// What openai-node's ChatCompletionStream would assemble, checking the conditions under which
/// it throws (providers.md §1): a role first, tool calls' first fragments complete and
/// consistent, a finish_reason for the choice.
struct assembled {
  std::string role;
  std::string content;
  std::string reasoning;
  std::vector<std::string> call_ids;
  std::vector<std::string> call_names;
  std::vector<std::string> call_args;
  std::string finish_reason;
  std::optional<ib::usage> tokens;
  bool saw_done = false;
};

assembled assemble(std::string_view sse) {
  assembled a;
  std::string id;
  bool first = true;
  for (const auto& line : data_lines(sse)) {
    EXPECT_FALSE(a.saw_done) << "data after [DONE]";
    if (line == "[DONE]") {
      a.saw_done = true;
      continue;
    }
    rapidjson::Document d;
    d.Parse(line.c_str(), line.size());
    if (d.HasParseError() || !d.IsObject()) {
      ADD_FAILURE() << "not JSON: " << line;
      continue;
    }
    EXPECT_FALSE(d.HasMember("error")) << line;
    EXPECT_STREQ(d["object"].GetString(), "chat.completion.chunk");
    EXPECT_TRUE(d["created"].IsInt64());
    if (id.empty()) {
      id = d["id"].GetString();
    }
    EXPECT_EQ(id, d["id"].GetString());
    const auto& choices = d["choices"];
    if (choices.Empty()) {
      EXPECT_TRUE(d["usage"].IsObject()) << line;
      a.tokens = ib::usage{d["usage"]["prompt_tokens"].GetInt64(),
                           d["usage"]["completion_tokens"].GetInt64(),
                           d["usage"]["total_tokens"].GetInt64(),
                           d["usage"]["prompt_tokens_details"]["cached_tokens"].GetInt64()};
      continue;
    }
    EXPECT_EQ(choices.Size(), 1u);
    const auto& choice = choices[0];
    EXPECT_EQ(choice["index"].GetInt(), 0);
    const auto& delta = choice["delta"];
    if (first) {
      EXPECT_TRUE(delta.HasMember("role")) << "the first chunk must carry the role: " << line;
      first = false;
    }
    if (delta.HasMember("role")) {
      a.role = delta["role"].GetString();
    }
    if (delta.HasMember("content") && delta["content"].IsString()) {
      a.content += delta["content"].GetString();
    }
    if (delta.HasMember("reasoning_content")) {
      a.reasoning += delta["reasoning_content"].GetString();
    }
    if (delta.HasMember("tool_calls")) {
      for (const auto& tc : delta["tool_calls"].GetArray()) {
        auto index = static_cast<std::size_t>(tc["index"].GetInt());
        if (index == a.call_ids.size()) {
          EXPECT_TRUE(tc.HasMember("id") && tc["id"].IsString()) << line;
          EXPECT_TRUE(tc.HasMember("type") && std::string(tc["type"].GetString()) == "function")
              << line;
          EXPECT_TRUE(tc["function"].HasMember("name")) << line;
          a.call_ids.emplace_back(tc["id"].GetString());
          a.call_names.emplace_back(tc["function"]["name"].GetString());
          a.call_args.emplace_back();
        } else {
          EXPECT_LT(index, a.call_ids.size()) << "tool call index skipped: " << line;
          if (index >= a.call_ids.size()) {
            continue;
          }
          if (tc.HasMember("id")) {
            EXPECT_EQ(a.call_ids[index], tc["id"].GetString());
          }
          if (tc["function"].HasMember("name")) {
            EXPECT_EQ(a.call_names[index], tc["function"]["name"].GetString());
          }
        }
        a.call_args[index] += tc["function"]["arguments"].GetString();
      }
    }
    if (!choice["finish_reason"].IsNull()) {
      EXPECT_TRUE(a.finish_reason.empty()) << "second finish_reason: " << line;
      a.finish_reason = choice["finish_reason"].GetString();
    }
  }
  return a;
}

std::string event(std::string_view name, std::string_view data) {
  std::string out = "event: ";
  out += name;
  out += "\ndata: ";
  out += data;
  out += "\n\n";
  return out;
}

const std::string message_start = event(
    "message_start",
    R"({"type":"message_start","message":{"id":"msg_9","type":"message","role":"assistant","model":"claude-x","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":10,"output_tokens":1,"cache_read_input_tokens":5,"cache_creation_input_tokens":2}}})");
const std::string text_start =
    event("content_block_start",
          R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})");
std::string text_delta(std::string_view text) {
  std::string data =
      R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":")";
  data += text;
  data += R"("}})";
  return event("content_block_delta", data);
}
const std::string ping = event("ping", R"({"type":"ping"})");
const std::string end_turn = event(
    "message_delta",
    R"({"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":7}})");
const std::string message_stop = event("message_stop", R"({"type":"message_stop"})");
const std::string overloaded = event(
    "error", R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})");

TEST(AnthropicStream, FullEventStreamGolden) {
  auto input = fixture("stream_tool_use.sse");
  auto out = run_stream(input);
  EXPECT_EQ(out.client_bytes, fixture("stream_tool_use.expected"));
  EXPECT_TRUE(out.done);
  EXPECT_TRUE(out.content);
  EXPECT_TRUE(out.payload);
  EXPECT_FALSE(out.failure.has_value());
  EXPECT_EQ(out.model, "claude-sonnet-4-5-20250929");
  ASSERT_TRUE(out.tokens.has_value());
  EXPECT_EQ(out.tokens->prompt_tokens, 410);
  EXPECT_EQ(out.tokens->completion_tokens, 52);
  EXPECT_EQ(out.tokens->total_tokens, 462);

  auto a = assemble(out.client_bytes);
  EXPECT_EQ(a.role, "assistant");
  EXPECT_EQ(a.content, "Let me check.");
  ASSERT_EQ(a.call_ids.size(), 1u);
  EXPECT_EQ(a.call_ids[0], "toolu_01A");
  EXPECT_EQ(a.call_names[0], "get_weather");
  EXPECT_EQ(a.call_args[0], R"({"city": "Pune"})");
  EXPECT_EQ(a.finish_reason, "tool_calls");
  EXPECT_FALSE(a.tokens.has_value());
  EXPECT_TRUE(a.saw_done);
}

TEST(AnthropicStream, UsageChunkOnlyWithIncludeUsage) {
  auto input = fixture("stream_tool_use.sse");
  auto out = run_stream(input, /*include_usage=*/true);
  EXPECT_EQ(out.client_bytes, fixture("stream_tool_use_usage.expected"));
  auto a = assemble(out.client_bytes);
  ASSERT_TRUE(a.tokens.has_value());
  EXPECT_EQ(a.tokens->total_tokens, 462);
  EXPECT_EQ(run_stream(input, false).client_bytes.find("usage"), std::string::npos);
}

TEST(AnthropicStream, ByteAtATimeAndEverySplitAreIdentical) {
  auto input = fixture("stream_tool_use.sse");
  auto whole = run_stream(input, true).client_bytes;
  EXPECT_EQ(run_stream(input, true, 1).client_bytes, whole);
  EXPECT_EQ(run_stream(input, true, 7).client_bytes, whole);
  for (std::size_t cut = 0; cut <= input.size(); ++cut) {
    auto t = make_translator(make_request(with_user(), true), upstream_model, created);
    stream_output out;
    t->feed(std::string_view(input).substr(0, cut), out);
    t->feed(std::string_view(input).substr(cut), out);
    t->finish(out);
    ASSERT_EQ(out.client_bytes, whole) << "split at " << cut;
    ASSERT_TRUE(out.done);
    ASSERT_FALSE(out.failure.has_value());
  }
}

TEST(AnthropicStream, CrlfFramingGivesTheSameOutput) {
  auto input = fixture("stream_tool_use.sse");
  std::string crlf;
  for (char c : input) {
    if (c == '\n') {
      crlf += "\r\n";
    } else {
      crlf += c;
    }
  }
  EXPECT_EQ(run_stream(crlf, false, 3).client_bytes, fixture("stream_tool_use.expected"));
}

TEST(AnthropicStream, RoleChunkDoesNotCommitPingIsNotPayload) {
  auto t = make_translator(make_request(with_user()), upstream_model, created);
  stream_output out;
  t->feed(ping, out);
  EXPECT_FALSE(out.payload);
  EXPECT_TRUE(out.client_bytes.empty());
  t->feed(": comment\n\n", out);
  EXPECT_FALSE(out.payload);
  t->feed(message_start + text_start + ping, out);
  EXPECT_TRUE(out.payload);
  EXPECT_FALSE(out.content);
  EXPECT_EQ(out.model, "claude-x");
  EXPECT_EQ(data_lines(out.client_bytes).size(), 1u);
  ASSERT_TRUE(out.tokens.has_value());
  EXPECT_EQ(out.tokens->prompt_tokens, 17);
  EXPECT_EQ(out.tokens->cached_tokens, 5);

  stream_output next;
  t->feed(text_delta(""), next);  // empty text carries nothing
  EXPECT_FALSE(next.content);
  EXPECT_TRUE(next.client_bytes.empty());
  t->feed(text_delta("Hi"), next);
  EXPECT_TRUE(next.content);
  stream_output after;
  t->feed(ping, after);
  EXPECT_TRUE(after.content) << "content is sticky";
  EXPECT_FALSE(after.payload);
}

TEST(AnthropicStream, ToolCallDeltasWithEmptyPartialJson) {
  std::string input = message_start;
  input += event(
      "content_block_start",
      R"({"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}})");
  input += event(
      "content_block_delta",
      R"({"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Two tools."}})");
  input += event(
      "content_block_delta",
      R"({"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"abc"}})");
  input += event("content_block_stop", R"({"type":"content_block_stop","index":0})");
  input += event(
      "content_block_start",
      R"({"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_A","name":"now","input":{}}})");
  input += event(
      "content_block_delta",
      R"({"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}})");
  input += event("content_block_stop", R"({"type":"content_block_stop","index":1})");
  input += event(
      "content_block_start",
      R"({"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_B","name":"add","input":{}}})");
  input += event(
      "content_block_delta",
      R"({"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"a\":"}})");
  input += ping;
  input += event(
      "content_block_delta",
      R"({"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"1}"}})");
  input += event("content_block_stop", R"({"type":"content_block_stop","index":2})");
  input += event(
      "message_delta",
      R"({"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":30}})");
  input += message_stop;
  auto out = run_stream(input, true);
  ASSERT_FALSE(out.failure.has_value()) << out.failure->envelope;
  auto lines = data_lines(out.client_bytes);
  const std::string head =
      R"({"id":"msg_9","object":"chat.completion.chunk","created":1732000000,"model":"claude-x","choices":[{"index":0,"delta":)";
  const std::string tail = R"(,"logprobs":null,"finish_reason":null}],"usage":null})";
  ASSERT_EQ(lines.size(), 10u) << out.client_bytes;
  EXPECT_EQ(lines[1], head + R"({"reasoning_content":"Two tools."})" + tail);
  EXPECT_EQ(
      lines[2],
      head
          + R"({"tool_calls":[{"index":0,"id":"toolu_A","type":"function","function":{"name":"now","arguments":""}}]})"
          + tail);
  // The tool without parameters gets "{}" when its block closes (issue 12, example 2).
  EXPECT_EQ(lines[3],
            head + R"({"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]})" + tail);
  EXPECT_EQ(
      lines[4],
      head
          + R"({"tool_calls":[{"index":1,"id":"toolu_B","type":"function","function":{"name":"add","arguments":""}}]})"
          + tail);
  EXPECT_EQ(lines[5],
            head + R"({"tool_calls":[{"index":1,"function":{"arguments":"{\"a\":"}}]})" + tail);
  EXPECT_EQ(lines[6],
            head + R"({"tool_calls":[{"index":1,"function":{"arguments":"1}"}}]})" + tail);
  EXPECT_EQ(lines[9], "[DONE]");
  auto a = assemble(out.client_bytes);
  EXPECT_EQ(a.reasoning, "Two tools.");
  EXPECT_EQ(a.content, "");
  ASSERT_EQ(a.call_args.size(), 2u);
  EXPECT_EQ(a.call_args[0], "{}");
  EXPECT_EQ(a.call_args[1], R"({"a":1})");
  EXPECT_EQ(a.finish_reason, "tool_calls");
  ASSERT_TRUE(a.tokens.has_value());
  EXPECT_EQ(a.tokens->prompt_tokens, 17);
  EXPECT_EQ(a.tokens->completion_tokens, 30);
  EXPECT_EQ(a.tokens->cached_tokens, 5);
}

std::string tool_start(int index, std::string_view id, std::string_view name,
                       std::string_view input = "{}") {
  return event("content_block_start", R"({"type":"content_block_start","index":)"
                                          + std::to_string(index)
                                          + R"(,"content_block":{"type":"tool_use","id":")"
                                          + std::string(id) + R"(","name":")" + std::string(name)
                                          + R"(","input":)" + std::string(input) + "}}");
}
std::string json_delta(int index, std::string_view partial) {
  return event("content_block_delta",
               R"({"type":"content_block_delta","index":)" + std::to_string(index)
                   + R"(,"delta":{"type":"input_json_delta","partial_json":")"
                   + std::string(partial) + R"("}})");
}
std::string block_stop(int index) {
  return event("content_block_stop",
               R"({"type":"content_block_stop","index":)" + std::to_string(index) + "}");
}
const std::string tool_use_stop = event(
    "message_delta",
    R"({"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":9}})");

TEST(AnthropicStream, ToolWithoutArgumentsAssemblesToAnEmptyObject) {
  // Issue 12, example 2: start (input {}) then stop, no input_json_delta between.
  auto out = run_stream(message_start + tool_start(0, "toolu_1", "now") + block_stop(0)
                        + tool_use_stop + message_stop);
  ASSERT_FALSE(out.failure.has_value()) << out.failure->envelope;
  auto a = assemble(out.client_bytes);
  ASSERT_EQ(a.call_args.size(), 1u);
  EXPECT_EQ(a.call_args[0], "{}");
  EXPECT_EQ(a.finish_reason, "tool_calls");
  // The same split at every byte gives the same assembly.
  for (std::size_t piece : {1u, 2u, 7u}) {
    auto split = run_stream(message_start + tool_start(0, "toolu_1", "now") + block_stop(0)
                                + tool_use_stop + message_stop,
                            false, piece);
    EXPECT_EQ(split.client_bytes, out.client_bytes);
  }
}

TEST(AnthropicStream, InterleavedTextAndToolBlocksEachGetValidArguments) {
  std::string input = message_start + text_start + text_delta("Checking.") + block_stop(0);
  input += tool_start(1, "toolu_a", "clock") + ping + block_stop(1);
  input += tool_start(2, "toolu_b", "add") + json_delta(2, R"({\"a\":)") + ping + json_delta(2, "")
           + json_delta(2, "2}") + block_stop(2);
  input += event(
      "content_block_start",
      R"({"type":"content_block_start","index":3,"content_block":{"type":"text","text":""}})");
  input += block_stop(3);  // an empty text block: nothing
  input += tool_start(4, "toolu_c", "noop") + block_stop(4);
  input += tool_use_stop + message_stop;
  auto out = run_stream(input);
  ASSERT_FALSE(out.failure.has_value()) << out.failure->envelope;
  auto a = assemble(out.client_bytes);
  EXPECT_EQ(a.content, "Checking.");
  ASSERT_EQ(a.call_args.size(), 3u);
  EXPECT_EQ(a.call_ids, (std::vector<std::string>{"toolu_a", "toolu_b", "toolu_c"}));
  EXPECT_EQ(a.call_args[0], "{}");
  EXPECT_EQ(a.call_args[1], R"({"a":2})");
  EXPECT_EQ(a.call_args[2], "{}");
  for (const auto& args : a.call_args) {
    rapidjson::Document d;
    d.Parse(args.data(), args.size());
    EXPECT_TRUE(!d.HasParseError() && d.IsObject()) << args;
  }
}

TEST(AnthropicStream, ToolInputGivenAtStartAndBlocksLeftOpen) {
  // Input carried whole by content_block_start (no deltas) is what the call gets.
  auto out = run_stream(message_start + tool_start(0, "toolu_1", "f", R"({"x":[1,2]})")
                        + block_stop(0) + tool_use_stop + message_stop);
  auto a = assemble(out.client_bytes);
  ASSERT_EQ(a.call_args.size(), 1u);
  EXPECT_EQ(a.call_args[0], R"({"x":[1,2]})");
  // No content_block_stop: the arguments still come before the finish reason.
  out = run_stream(message_start + tool_start(0, "toolu_1", "f") + tool_use_stop + message_stop);
  a = assemble(out.client_bytes);
  ASSERT_EQ(a.call_args.size(), 1u);
  EXPECT_EQ(a.call_args[0], "{}");
  auto finish = out.client_bytes.find(R"("finish_reason":"tool_calls")");
  auto args = out.client_bytes.find(R"("arguments":"{}")");
  ASSERT_NE(finish, std::string::npos);
  ASSERT_NE(args, std::string::npos);
  EXPECT_LT(args, finish);
  // No message_delta either.
  out = run_stream(message_start + tool_start(0, "toolu_1", "f") + message_stop);
  a = assemble(out.client_bytes);
  ASSERT_EQ(a.call_args.size(), 1u);
  EXPECT_EQ(a.call_args[0], "{}");
}

TEST(AnthropicStream, ErrorBeforeContentIsAFailureWithoutCommit) {
  auto t = make_translator(make_request(with_user()), upstream_model, created);
  stream_output out;
  t->feed(message_start + ping + overloaded, out);
  ASSERT_TRUE(out.failure.has_value());
  EXPECT_EQ(out.failure->result, outcome::server_error);
  EXPECT_EQ(out.failure->status, 529);
  EXPECT_TRUE(json_eq(
      out.failure->envelope,
      R"({"error":{"message":"Overloaded","type":"overloaded_error","param":null,"code":null}})"));
  EXPECT_FALSE(out.content);
  EXPECT_FALSE(out.done);
  EXPECT_EQ(data_lines(out.client_bytes).size(), 1u);  // the role chunk only
  // Nothing after a failure, not even from finish().
  auto before = out.client_bytes;
  t->feed(text_delta("late") + message_stop, out);
  t->finish(out);
  EXPECT_EQ(out.client_bytes, before);
  EXPECT_EQ(out.failure->status, 529);
}

TEST(AnthropicStream, ErrorAfterContent) {
  auto out = run_stream(
      message_start + text_start + text_delta("Hel")
          + event("error", R"({"type":"error","error":{"type":"api_error","message":"Internal"}})"),
      false, 5);
  ASSERT_TRUE(out.failure.has_value());
  EXPECT_EQ(out.failure->result, outcome::server_error);
  EXPECT_EQ(out.failure->status, 500);
  EXPECT_TRUE(out.content);
  EXPECT_FALSE(out.done);
  EXPECT_TRUE(
      json_eq(out.failure->envelope,
              R"({"error":{"message":"Internal","type":"api_error","param":null,"code":null}})"));
  EXPECT_EQ(stream_error_event(*out.failure), "data: " + out.failure->envelope + "\n\n");

  out = run_stream(
      message_start
      + event("error",
              R"({"type":"error","error":{"type":"invalid_request_error","message":"bad"}})"));
  ASSERT_TRUE(out.failure.has_value());
  EXPECT_EQ(out.failure->result, outcome::bad_response);
  EXPECT_EQ(out.failure->status, 502);

  out = run_stream(event("error", "{}"));
  ASSERT_TRUE(out.failure.has_value());
  EXPECT_EQ(out.failure->result, outcome::bad_response);
  EXPECT_TRUE(json_eq(
      out.failure->envelope,
      R"({"error":{"message":"anthropic stream error","type":"upstream_error","param":null,"code":null}})"));
}

TEST(AnthropicStream, TruncatedStreamsFail) {
  auto input = fixture("stream_tool_use.sse");
  const auto stop_at = input.find("event: message_stop");
  ASSERT_NE(stop_at, std::string::npos);
  const std::size_t cuts[] = {0,       10,           input.find("event: content_block_delta"),
                              stop_at, stop_at + 25, input.size() - 1};
  for (auto cut : cuts) {
    auto out = run_stream(std::string_view(input).substr(0, cut));
    ASSERT_TRUE(out.failure.has_value()) << "cut at " << cut;
    EXPECT_EQ(out.failure->result, outcome::bad_response);
    EXPECT_EQ(out.failure->status, 502);
    EXPECT_TRUE(json_eq(
        out.failure->envelope,
        R"({"error":{"message":"upstream stream ended before completion","type":"upstream_error","param":null,"code":null}})"));
    EXPECT_FALSE(out.done);
    EXPECT_EQ(out.client_bytes.find("[DONE]"), std::string::npos);
  }
  // Without finish() the translator just waits.
  auto out = run_stream(std::string_view(input).substr(0, stop_at), false, 0, false);
  EXPECT_FALSE(out.failure.has_value());
  EXPECT_FALSE(out.done);
}

TEST(AnthropicStream, UnparseableAndOutOfOrderEventsFail) {
  const std::string bad_inputs[] = {
      message_start + "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\n\n",
      message_start + "data: [DONE]\n\n",
      text_delta("early"),
      message_stop,
      message_start
          + event(
              "content_block_start",
              R"({"type":"content_block_start","index":0,"content_block":{"type":"tool_use","input":{}}})"),
      message_start
          + event("content_block_delta",
                  R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta"}})"),
      event("message_start", R"({"type":"message_start","message":{"model":"x"}})"),
  };
  for (const auto& input : bad_inputs) {
    auto out = run_stream(input, false, 0, false);
    ASSERT_TRUE(out.failure.has_value()) << input;
    EXPECT_EQ(out.failure->result, outcome::bad_response) << input;
    EXPECT_TRUE(out.payload);
    EXPECT_FALSE(out.done);
  }
}

TEST(AnthropicStream, UnknownEventsAndBlocksAreIgnored) {
  auto input =
      message_start + event("future_event", R"({"type":"future_event","x":1})")
      + event(
          "content_block_start",
          R"({"type":"content_block_start","index":0,"content_block":{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{}}})")
      + event(
          "content_block_delta",
          R"({"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"q\":1}"}})")
      + event(
          "content_block_delta",
          R"({"type":"content_block_delta","index":0,"delta":{"type":"citations_delta","citation":{}}})")
      + text_start + text_delta("ok") + end_turn + message_stop;
  auto out = run_stream(input);
  ASSERT_FALSE(out.failure.has_value()) << out.failure->envelope;
  auto a = assemble(out.client_bytes);
  EXPECT_EQ(a.content, "ok");
  EXPECT_TRUE(a.call_ids.empty());
  EXPECT_EQ(a.finish_reason, "stop");
}

TEST(AnthropicStream, MissingStopReasonStillFinishes) {
  auto out = run_stream(
      message_start + text_start + text_delta("x")
      + event("message_delta", R"({"type":"message_delta","delta":{},"usage":{"output_tokens":3}})")
      + message_stop);
  ASSERT_TRUE(out.done);
  auto a = assemble(out.client_bytes);
  EXPECT_EQ(a.finish_reason, "stop");
  ASSERT_TRUE(out.tokens.has_value());
  EXPECT_EQ(out.tokens->completion_tokens, 3);
}

TEST(AnthropicStream, FinishReasonMapping) {
  const std::map<std::string, std::string> table = {
      {"end_turn", "stop"},      {"max_tokens", "length"},
      {"stop_sequence", "stop"}, {"refusal", "content_filter"},
      {"pause_turn", "stop"},    {"model_context_window_exceeded", "length"}};
  for (const auto& [stop, finish] : table) {
    auto out = run_stream(
        message_start + text_start + text_delta("x")
        + event("message_delta", R"({"type":"message_delta","delta":{"stop_reason":")" + stop
                                     + R"("},"usage":{"output_tokens":2,"input_tokens":11}})")
        + message_stop);
    EXPECT_EQ(assemble(out.client_bytes).finish_reason, finish) << stop;
    ASSERT_TRUE(out.tokens.has_value());
    EXPECT_EQ(out.tokens->prompt_tokens, 18);  // message_delta's input_tokens replaces 10
  }
}

TEST(AnthropicStream, NothingAfterMessageStop) {
  auto t = make_translator(make_request(with_user()), upstream_model, created);
  stream_output out;
  t->feed(message_start + text_start + text_delta("x") + end_turn + message_stop, out);
  ASSERT_TRUE(out.done);
  auto before = out.client_bytes;
  t->feed(text_delta("more") + overloaded, out);
  t->finish(out);
  EXPECT_EQ(out.client_bytes, before);
  EXPECT_TRUE(out.done);
  EXPECT_FALSE(out.failure.has_value());
}

TEST(AnthropicStream, EscapedAndMultibyteTextRoundTrips) {
  auto out = run_stream(
      message_start + text_start + text_delta(R"(\"नमस्ते\"\n\u0001\\)") + end_turn + message_stop,
      false, 1);
  auto a = assemble(out.client_bytes);
  EXPECT_EQ(a.content, std::string("\"नमस्ते\"\n\x01\\"));
}

TEST(AnthropicStream, ProductionOverloadStampsNow) {
  auto before = static_cast<std::int64_t>(std::time(nullptr));
  auto t = make_translator(make_request(with_user()), upstream_model);
  stream_output out;
  t->feed(message_start, out);
  auto lines = data_lines(out.client_bytes);
  ASSERT_EQ(lines.size(), 1u);
  rapidjson::Document d;
  d.Parse(lines[0].c_str(), lines[0].size());
  EXPECT_GE(d["created"].GetInt64(), before);
  EXPECT_LE(d["created"].GetInt64(), static_cast<std::int64_t>(std::time(nullptr)));
}

// -- robustness -----------------------------------------------------------------------------------

TEST(AnthropicFuzz, RandomBytesIntoTheTranslator) {
  std::mt19937 rng(12345);
  const std::string alphabet = "event: data{}[]\":,\n\r\\ message_start content_block_delta ping x";
  for (int round = 0; round < 2000; ++round) {
    auto t = make_translator(make_request(with_user(), round % 2 == 0), upstream_model, created);
    stream_output out;
    int feeds = 1 + static_cast<int>(rng() % 8);
    for (int f = 0; f < feeds; ++f) {
      std::string bytes(rng() % 256, '\0');
      for (auto& c : bytes) {
        c = round % 3 == 0 ? static_cast<char>(rng() & 0xff) : alphabet[rng() % alphabet.size()];
      }
      t->feed(bytes, out);
    }
    t->finish(out);
    EXPECT_TRUE(out.done || out.failure.has_value());
    if (out.failure) {
      rapidjson::Document d;
      d.Parse(out.failure->envelope.c_str(), out.failure->envelope.size());
      EXPECT_TRUE(d.IsObject() && d.HasMember("error"));
    }
  }
}

TEST(AnthropicFuzz, MutatedValidStreams) {
  std::mt19937 rng(777);
  const auto input = fixture("stream_tool_use.sse");
  for (int round = 0; round < 3000; ++round) {
    std::string mutated = input;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !mutated.empty(); ++e) {
      auto pos = rng() % mutated.size();
      switch (rng() % 3) {
        case 0:
          mutated[pos] = static_cast<char>(rng() & 0xff);
          break;
        case 1:
          mutated.erase(pos, 1 + rng() % 16);
          break;
        default:
          mutated.insert(pos, 1, "{}[]\",:\n\\"[rng() % 9]);
          break;
      }
    }
    auto step = static_cast<std::size_t>(rng() % 64);
    auto out = run_stream(mutated, round % 2 == 0, step);
    EXPECT_TRUE(out.done != out.failure.has_value());
    if (out.done) {
      auto a = assemble(out.client_bytes);
      EXPECT_TRUE(a.saw_done);
      EXPECT_FALSE(a.finish_reason.empty());
    }
  }
}

TEST(AnthropicFuzz, RandomBodiesIntoDecodeAndEncode) {
  std::mt19937 rng(4242);
  const std::string samples[] = {
      R"({"id":"msg_1","type":"message","model":"c","content":[{"type":"tool_use","id":"t","name":"f","input":{"a":[1,2,{"b":null}]}},{"type":"text","text":"x"}],"stop_reason":"tool_use","usage":{"input_tokens":1,"output_tokens":2,"cache_read_input_tokens":9223372036854775807}})",
      R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})",
      fixture("tool_round_trip.request.json"),
  };
  for (int round = 0; round < 3000; ++round) {
    std::string body = samples[rng() % 3];
    int edits = static_cast<int>(rng() % 5);
    for (int e = 0; e < edits && !body.empty(); ++e) {
      auto pos = rng() % body.size();
      if (rng() % 2 == 0) {
        body[pos] = "{}[]\",:0aE-\\"[rng() % 12];
      } else {
        body.erase(pos, 1 + rng() % 8);
      }
    }
    static const int statuses[] = {200, 201, 400, 413, 429, 500, 529, 302, 0, 999};
    upstream_response res;
    res.status = statuses[rng() % 10];
    res.body = body;
    auto d = decode(make_request(with_user()), upstream_model, res, created);
    rapidjson::Document doc;
    doc.Parse(d.body.c_str(), d.body.size());
    EXPECT_TRUE(doc.IsObject()) << d.body;
    if (d.result == outcome::success) {
      EXPECT_TRUE(doc.HasMember("choices"));
    } else {
      EXPECT_TRUE(doc.HasMember("error"));
    }
    auto r = encode_body(make_request(body), upstream_model);
    if (r.has_value()) {
      rapidjson::Document enc;
      enc.Parse(r->c_str(), r->size());
      EXPECT_TRUE(enc.IsObject()) << *r;
    } else {
      EXPECT_EQ(r.error().code, errc::invalid_request);
    }
  }
}

TEST(AnthropicFuzz, TypeConfusionInEveryField) {
  const char* values[] = {"null",
                          "true",
                          "0",
                          "-1",
                          "1e300",
                          "\"\"",
                          "\"x\"",
                          "[]",
                          "{}",
                          "[null]",
                          "[{}]",
                          "{\"type\":null}",
                          "18446744073709551615"};
  const char* templates[] = {
      R"({"model":"m","messages":[{"role":"user","content":@}]})",
      R"({"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":@}]}]})",
      R"({"model":"m","messages":[{"role":"user","content":[{"type":@,"text":"x"}]}]})",
      R"({"model":"m","messages":[{"role":"assistant","content":@,"tool_calls":@}]})",
      R"({"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":@,"type":"function","function":@}]}]})",
      R"({"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"a","function":{"name":"f","arguments":@}}]}]})",
      R"({"model":"m","messages":[{"role":"tool","tool_call_id":@,"content":@}]})",
      R"({"model":"m","messages":[{"role":@,"content":"x"}]})",
      R"({"model":"m","messages":@})",
      R"({"model":"m","messages":[{"role":"user","content":"x"}],"tools":@,"tool_choice":@})",
      R"({"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":@,"description":@}}],"tool_choice":{"type":"function","function":@}})",
      R"({"model":"m","messages":[{"role":"user","content":"x"}],"n":@,"logprobs":@,"top_logprobs":@,"response_format":@})",
      R"({"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":@,"max_completion_tokens":@,"stop":@})",
      R"({"model":"m","messages":[{"role":"user","content":"x"}],"temperature":@,"top_p":@,"user":@,"stream":@,"parallel_tool_calls":@})",
  };
  for (const char* tmpl : templates) {
    for (const char* v : values) {
      std::string body = tmpl;
      for (auto at = body.find('@'); at != std::string::npos; at = body.find('@')) {
        body.replace(at, 1, v);
      }
      auto r = encode_body(make_request(body), upstream_model);
      if (r.has_value()) {
        rapidjson::Document enc;
        enc.Parse(r->c_str(), r->size());
        EXPECT_TRUE(enc.IsObject()) << body << " -> " << *r;
        EXPECT_TRUE(enc.HasMember("max_tokens")) << *r;
      } else {
        EXPECT_EQ(r.error().code, errc::invalid_request) << body;
        EXPECT_FALSE(r.error().message.empty());
      }
    }
  }
}

}  // namespace
}  // namespace ib::providers::anthropic
