#include "providers/anthropic_inbound.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <memory>
#include <optional>
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
#include "providers/anthropic.hpp"
#include "providers/anthropic_detail.hpp"
#include "providers/chat_request.hpp"
#include "providers/error_map.hpp"
#include "providers/front.hpp"
#include "providers/openai.hpp"

namespace ib::providers::anthropic_inbound {
namespace {

// -- helpers --------------------------------------------------------------------------------------

std::string fixture(std::string_view dir, std::string_view name) {
  std::ifstream in(std::string(IB_TEST_DATA_DIR) + "/" + std::string(dir) + "/" + std::string(name),
                   std::ios::binary);
  EXPECT_TRUE(in.good()) << "missing fixture " << dir << "/" << name;
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

/// Semantic JSON equality (member order ignored), with both sides printed on failure.
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

chat_request parsed(std::string body, std::string version = "2026-10-21", std::string beta = "") {
  auto r = parse_request(std::move(body), {}, std::move(version), std::move(beta));
  EXPECT_TRUE(r) << (r ? "" : r.error().message);
  return r ? std::move(*r) : chat_request{};
}

config::provider_config provider(std::string name, std::string path = "/v1") {
  config::provider_config p;
  p.name = std::move(name);
  p.endpoint.path = std::move(path);
  if (p.name == "anthropic") {
    p.proto = config::protocol::anthropic;
    p.auth = config::auth_style::x_api_key;
    p.anthropic_version = "2023-06-01";
  }
  return p;
}

std::string header(const upstream_request& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) {
      return v;
    }
  }
  return "<absent>";
}

/// One parsed Anthropic SSE event.
struct event {
  std::string name;
  std::string data;
};

/// Splits SSE text into events (`event:` + one `data:` line each, as the gateway writes them).
std::vector<event> events_of(std::string_view text) {
  std::vector<event> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto end = text.find("\n\n", pos);
    if (end == std::string_view::npos) {
      ADD_FAILURE() << "unterminated event: " << text.substr(pos);
      break;
    }
    auto block = text.substr(pos, end - pos);
    event ev;
    std::size_t lpos = 0;
    while (lpos <= block.size()) {
      auto lend = block.find('\n', lpos);
      auto line =
          block.substr(lpos, lend == std::string_view::npos ? std::string_view::npos : lend - lpos);
      if (line.starts_with("event: ")) {
        ev.name = std::string(line.substr(7));
      } else if (line.starts_with("data: ")) {
        EXPECT_TRUE(ev.data.empty()) << "two data lines";
        ev.data = std::string(line.substr(6));
      }
      if (lend == std::string_view::npos) {
        break;
      }
      lpos = lend + 1;
    }
    out.push_back(std::move(ev));
    pos = end + 2;
  }
  return out;
}

/// What a translator produced over a whole stream.
struct stream_run {
  std::string bytes;
  bool content = false;
  bool done = false;
  std::optional<stream_failure> failure;
  std::optional<ib::usage> tokens;
  std::string model;
  /// `content` as it stood after each feed (the commit point).
  std::vector<bool> content_after;
};

/// Feeds `text` cut at `cuts` into `t` (a fresh stream_output per feed, as the provider actor
/// clears its bytes), then finishes it.
stream_run run(stream_translator& t, std::string_view text, const std::vector<std::size_t>& cuts) {
  stream_run r;
  stream_output out;  // persistent, as in the provider actor
  auto absorb = [&] {
    r.bytes += out.client_bytes;
    out.client_bytes.clear();
    r.content_after.push_back(out.content);
  };
  std::size_t pos = 0;
  for (std::size_t cut : cuts) {
    if (!out.done && !out.failure) {
      t.feed(text.substr(pos, cut - pos), out);
    }
    absorb();
    pos = cut;
  }
  if (!out.done && !out.failure) {
    t.feed(text.substr(pos), out);
    absorb();
  }
  if (!out.done && !out.failure) {
    t.finish(out);
    absorb();
  }
  r.content = out.content;
  r.done = out.done;
  r.failure = out.failure;
  r.tokens = out.tokens;
  r.model = out.model;
  return r;
}

std::vector<std::size_t> every_byte(std::string_view text) {
  std::vector<std::size_t> cuts;
  for (std::size_t i = 1; i < text.size(); ++i) {
    cuts.push_back(i);
  }
  return cuts;
}

// -- parse: the chat form -------------------------------------------------------------------------

struct translation_case {
  const char* name;
  const char* anthropic;
  const char* chat;
};

const translation_case translations[] = {
    {"plain text, system string, sampling and stop sequences",
     R"({"model":"ib/cheap","max_tokens":256,"system":"Be brief.","temperature":0.5,"top_p":0.9,
         "top_k":40,"stop_sequences":["END","STOP"],
         "messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello"},
                     {"role":"user","content":[{"type":"text","text":"Tell me more"}]}]})",
     R"({"model":"ib/cheap","messages":[{"role":"system","content":"Be brief."},
         {"role":"user","content":"Hi"},{"role":"assistant","content":"Hello"},
         {"role":"user","content":"Tell me more"}],
         "max_completion_tokens":256,"stop":["END","STOP"],"temperature":0.5,"top_p":0.9})"},
    {"system blocks with cache_control, thinking and metadata are dropped or joined",
     R"({"model":"m","max_tokens":8,"thinking":{"type":"enabled","budget_tokens":1024},
         "metadata":{"user_id":"u-1"},"service_tier":"auto",
         "system":[{"type":"text","text":"One.","cache_control":{"type":"ephemeral"}},
                   {"type":"text","text":"Two."}],
         "messages":[{"role":"user","content":[{"type":"text","text":"a",
                      "cache_control":{"type":"ephemeral"}},{"type":"text","text":"b"}]},
                     {"role":"assistant","content":[{"type":"thinking","thinking":"hmm",
                      "signature":"sig"},{"type":"redacted_thinking","data":"xx"},
                      {"type":"text","text":"Sure"}]},
                     {"role":"user","content":"go"}]})",
     R"({"model":"m","messages":[{"role":"system","content":"One.\n\nTwo."},
         {"role":"user","content":"a\nb"},{"role":"assistant","content":"Sure"},
         {"role":"user","content":"go"}],"max_completion_tokens":8})"},
    {"images: base64 and url sources",
     R"({"model":"m","max_tokens":8,"messages":[{"role":"user","content":[
         {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBOR"}},
         {"type":"image","source":{"type":"url","url":"https://x.test/cat.jpg"}},
         {"type":"text","text":"What are these?"}]}]})",
     R"({"model":"m","messages":[{"role":"user","content":[
         {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBOR"}},
         {"type":"image_url","image_url":{"url":"https://x.test/cat.jpg"}},
         {"type":"text","text":"What are these?"}]}],"max_completion_tokens":8})"},
    {"a PDF document becomes a file part; a text document text",
     R"({"model":"m","max_tokens":8,"messages":[{"role":"user","content":[
         {"type":"document","title":"r.pdf","source":{"type":"base64",
          "media_type":"application/pdf","data":"JVBER"}},
         {"type":"document","source":{"type":"text","media_type":"text/plain","data":"notes"}}]}]})",
     R"({"model":"m","messages":[{"role":"user","content":[
         {"type":"file","file":{"filename":"r.pdf","file_data":"data:application/pdf;base64,JVBER"}},
         {"type":"text","text":"notes"}]}],"max_completion_tokens":8})"},
    {"tool use round trip: tool_use -> tool_calls, tool_result -> tool messages first",
     R"({"model":"m","max_tokens":100,
         "tools":[{"name":"get_weather","description":"Weather","input_schema":{"type":"object",
                   "properties":{"city":{"type":"string"}},"required":["city"]},
                   "cache_control":{"type":"ephemeral"}},
                  {"type":"custom","name":"get_time","input_schema":{"type":"object"},
                   "strict":true,"defer_loading":false}],
         "tool_choice":{"type":"auto","disable_parallel_tool_use":true},
         "messages":[{"role":"user","content":"Weather and time in Pune?"},
           {"role":"assistant","content":[{"type":"text","text":"Checking."},
             {"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Pune"}},
             {"type":"tool_use","id":"toolu_2","name":"get_time","input":{}}]},
           {"role":"user","content":[
             {"type":"tool_result","tool_use_id":"toolu_1","content":"31C"},
             {"type":"tool_result","tool_use_id":"toolu_2","is_error":true,
              "content":[{"type":"text","text":"no clock"},{"type":"text","text":"sorry"}]},
             {"type":"text","text":"Thanks"}]}]})",
     R"({"model":"m","messages":[{"role":"user","content":"Weather and time in Pune?"},
         {"role":"assistant","content":"Checking.","tool_calls":[
           {"id":"toolu_1","type":"function","function":{"name":"get_weather",
            "arguments":"{\"city\":\"Pune\"}"}},
           {"id":"toolu_2","type":"function","function":{"name":"get_time","arguments":"{}"}}]},
         {"role":"tool","tool_call_id":"toolu_1","content":"31C"},
         {"role":"tool","tool_call_id":"toolu_2","content":"Error: no clock\nsorry"},
         {"role":"user","content":"Thanks"}],
         "max_completion_tokens":100,
         "tools":[{"type":"function","function":{"name":"get_weather","description":"Weather",
                   "parameters":{"type":"object","properties":{"city":{"type":"string"}},
                   "required":["city"]}}},
                  {"type":"function","function":{"name":"get_time",
                   "parameters":{"type":"object"},"strict":true}}],
         "tool_choice":"auto","parallel_tool_calls":false})"},
    {"a tool-only assistant turn has null content; tool_choice any is required",
     R"({"model":"m","max_tokens":5,"tools":[{"name":"f","input_schema":{"type":"object"}}],
         "tool_choice":{"type":"any"},
         "messages":[{"role":"user","content":"x"},
           {"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":{"a":[1]}}]},
           {"role":"user","content":[{"type":"tool_result","tool_use_id":"t"}]}]})",
     R"({"model":"m","messages":[{"role":"user","content":"x"},
         {"role":"assistant","content":null,"tool_calls":[{"id":"t","type":"function",
          "function":{"name":"f","arguments":"{\"a\":[1]}"}}]},
         {"role":"tool","tool_call_id":"t","content":""}],"max_completion_tokens":5,
         "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],
         "tool_choice":"required"})"},
    {"tool_choice tool names a function; none stays none",
     R"({"model":"m","max_tokens":5,"tools":[{"name":"f","input_schema":{"type":"object"}}],
         "tool_choice":{"type":"tool","name":"f"},"messages":[{"role":"user","content":"x"}]})",
     R"({"model":"m","messages":[{"role":"user","content":"x"}],"max_completion_tokens":5,
         "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],
         "tool_choice":{"type":"function","function":{"name":"f"}}})"},
    {"tool_choice none",
     R"({"model":"m","max_tokens":5,"tools":[{"name":"f","input_schema":{"type":"object"}}],
         "tool_choice":{"type":"none"},"messages":[{"role":"user","content":"x"}]})",
     R"({"model":"m","messages":[{"role":"user","content":"x"}],"max_completion_tokens":5,
         "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],
         "tool_choice":"none"})"},
    {"tool_choice without function tools is left out (OpenAI refuses it)",
     R"({"model":"m","max_tokens":5,"tool_choice":{"type":"auto"},
         "messages":[{"role":"user","content":"x"}]})",
     R"({"model":"m","messages":[{"role":"user","content":"x"}],"max_completion_tokens":5})"},
    {"a stream asks for usage",
     R"({"model":"m","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"x"}]})",
     R"({"model":"m","messages":[{"role":"user","content":"x"}],"max_completion_tokens":5,
         "stream":true,"stream_options":{"include_usage":true}})"},
};

TEST(AnthropicInboundParse, ChatFormTable) {
  for (const auto& c : translations) {
    SCOPED_TRACE(c.name);
    auto req = parsed(c.anthropic);
    EXPECT_TRUE(json_eq(req.body, c.chat));
    EXPECT_EQ(req.api, client_api::messages);
    EXPECT_EQ(req.native_body, c.anthropic);  // the client's bytes, untouched
    ASSERT_TRUE(req.messages_facts);
    EXPECT_EQ(req.messages_facts->anthropic_only, "") << "translatable";
    // The chat form is a chat request the OpenAI-compatible adapters accept.
    auto again = parse_chat_request(req.body);
    ASSERT_TRUE(again) << again.error().message;
    EXPECT_EQ(again->stream, req.stream);
    EXPECT_EQ(again->include_usage, req.stream);
  }
}

TEST(AnthropicInboundParse, NativeFactsAndHeaders) {
  auto req = parsed(R"({"model":"anthropic/claude-haiku-4-5","max_tokens":9,"stream":true,)"
                    R"("messages":[{"role":"user","content":"x"}]})",
                    "2023-06-01", "interleaved-thinking-2025-05-14");
  EXPECT_EQ(req.model, "anthropic/claude-haiku-4-5");
  EXPECT_TRUE(req.stream);
  EXPECT_TRUE(req.include_usage);
  EXPECT_FALSE(req.native_members.empty());
  EXPECT_EQ(req.messages_facts->anthropic_version, "2023-06-01");
  EXPECT_EQ(req.messages_facts->anthropic_beta, "interleaved-thinking-2025-05-14");
  // Member spans index the native body.
  auto model =
      std::find_if(req.native_members.begin(), req.native_members.end(), [&](const member_span& m) {
        return req.native_body.substr(m.key_begin, m.key_end - m.key_begin) == "model";
      });
  ASSERT_NE(model, req.native_members.end());
  EXPECT_EQ(req.native_body.substr(model->value_begin, model->value_end - model->value_begin),
            R"("anthropic/claude-haiku-4-5")");
}

TEST(AnthropicInboundParse, AnthropicOnlyFeaturesAreNotedAndLeftOutOfTheChatForm) {
  struct only_case {
    const char* body;
    const char* mentions;
  };
  const only_case cases[] = {
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],
          "tools":[{"type":"web_search_20250305","name":"web_search","max_uses":3}]})",
       "web_search_20250305"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],
          "mcp_servers":[{"type":"url","url":"https://mcp.test","name":"t"}]})",
       "mcp_servers"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],
          "container":"container_1"})",
       "container"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],
          "output_config":{"format":{"type":"json_schema","schema":{"type":"object"}}}})",
       "output_config.format"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[
          {"type":"text","text":"x"},{"type":"image","source":{"type":"file","file_id":"f_1"}}]}]})",
       "messages[0].content[1].source"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"},
          {"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":{}}]},
          {"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[
            {"type":"image","source":{"type":"base64","media_type":"image/png","data":"x"}}]}]}],
          "tools":[{"name":"f","input_schema":{"type":"object"}}]})",
       "messages[2].content[0].content[0]"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[
          {"type":"search_result","source":"s","title":"t","content":[]}]}]})",
       "search_result"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.body);
    auto req = parsed(c.body);
    ASSERT_TRUE(req.messages_facts);
    EXPECT_NE(req.messages_facts->anthropic_only.find(c.mentions), std::string::npos)
        << req.messages_facts->anthropic_only;
    EXPECT_TRUE(parse_chat_request(req.body)) << req.body;
    EXPECT_EQ(req.body.find("web_search"), std::string::npos);
    EXPECT_EQ(req.body.find("mcp"), std::string::npos);
  }
}

TEST(AnthropicInboundParse, ErrorsNameTheField) {
  struct bad_case {
    const char* body;
    const char* param;
  };
  const bad_case cases[] = {
      {R"({"model":"m","messages":[{"role":"user","content":"x"}]})", "max_tokens"},
      {R"({"model":"m","max_tokens":0,"messages":[{"role":"user","content":"x"}]})", "max_tokens"},
      {R"({"model":"m","max_tokens":"9","messages":[{"role":"user","content":"x"}]})",
       "max_tokens"},
      {R"({"model":"m","max_tokens":1.5,"messages":[{"role":"user","content":"x"}]})",
       "max_tokens"},
      {R"({"max_tokens":5,"messages":[{"role":"user","content":"x"}]})", "model"},
      {R"({"model":"m","max_tokens":5})", "messages"},
      {R"({"model":"m","max_tokens":5,"messages":[]})", "messages"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"system","content":"x"}]})",
       "messages[0].role"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":5}]})",
       "messages[0].content"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"user"}]})", "messages[0].content"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"text"}]}]})",
       "messages[0].content[0].text"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"text":"x"}]}]})",
       "messages[0].content[0].type"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"image"}]}]})",
       "messages[0].content[0].source"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"assistant","content":[
          {"type":"tool_use","id":"t","name":"f","input":"{}"}]}]})",
       "messages[0].content[0].input"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[
          {"type":"tool_result"}]}]})",
       "messages[0].content[0].tool_use_id"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[
          {"type":"tool_use","id":"t","name":"f","input":{}}]}]})",
       "messages[0].content[0].type"},
      {R"({"model":"m","max_tokens":5,"temperature":1.5,"messages":[{"role":"user","content":"x"}]})",
       "temperature"},
      {R"({"model":"m","max_tokens":5,"top_k":-1,"messages":[{"role":"user","content":"x"}]})",
       "top_k"},
      {R"({"model":"m","max_tokens":5,"system":5,"messages":[{"role":"user","content":"x"}]})",
       "system"},
      {R"({"model":"m","max_tokens":5,"system":[{"type":"image"}],
          "messages":[{"role":"user","content":"x"}]})",
       "system[0].type"},
      {R"({"model":"m","max_tokens":5,"stop_sequences":[1],"messages":[{"role":"user","content":"x"}]})",
       "stop_sequences"},
      {R"({"model":"m","max_tokens":5,"metadata":"u","messages":[{"role":"user","content":"x"}]})",
       "metadata"},
      {R"({"model":"m","max_tokens":5,"tools":[{"name":"f"}],
          "messages":[{"role":"user","content":"x"}]})",
       "tools[0].input_schema"},
      {R"({"model":"m","max_tokens":5,"tools":[{"input_schema":{}}],
          "messages":[{"role":"user","content":"x"}]})",
       "tools[0].name"},
      {R"({"model":"m","max_tokens":5,"tool_choice":{"type":"some"},
          "messages":[{"role":"user","content":"x"}]})",
       "tool_choice.type"},
      {R"({"model":"m","max_tokens":5,"tool_choice":{"type":"tool"},
          "messages":[{"role":"user","content":"x"}]})",
       "tool_choice.name"},
      {R"({"model":"m","max_tokens":5,"stream":"yes","messages":[{"role":"user","content":"x"}]})",
       "stream"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.body);
    auto r = parse_request(c.body, {}, "", "");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::invalid_request);
    EXPECT_EQ(r.error().param, c.param) << r.error().message;
  }
  EXPECT_FALSE(parse_request("not json", {}, "", ""));
  EXPECT_FALSE(parse_request("[1]", {}, "", ""));
  // The configured bounds hold as for chat: nesting and message count.
  parse_limits tight{.max_depth = 4, .max_messages = 1};
  EXPECT_FALSE(parse_request(R"({"model":"m","max_tokens":5,"messages":[{"role":"user",)"
                             R"("content":"a"},{"role":"assistant","content":"b"}]})",
                             tight, "", ""));
  EXPECT_FALSE(parse_request(R"({"model":"m","max_tokens":5,"metadata":{"a":[[[[1]]]]},)"
                             R"("messages":[{"role":"user","content":"a"}]})",
                             tight, "", ""));
}

TEST(AnthropicInboundParse, RoundTripThroughTheExistingChatToAnthropicEncoder) {
  // Anthropic -> chat form (ours) -> Anthropic (providers/anthropic.cpp): the same request.
  const std::string body =
      R"({"model":"m","max_tokens":100,"system":"Be brief.","stop_sequences":["END"],)"
      R"("tools":[{"name":"get_weather","description":"Weather","input_schema":{"type":"object",)"
      R"("properties":{"city":{"type":"string"}}}}],"tool_choice":{"type":"any"},)"
      R"("messages":[{"role":"user","content":"Weather?"},)"
      R"({"role":"assistant","content":[{"type":"text","text":"Checking."},)"
      R"({"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Pune"}}]},)"
      R"({"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"31C"},)"
      R"({"type":"text","text":"Thanks"}]}]})";
  auto req = parsed(body);
  auto back = anthropic::encode_body(req, "m", "2026-10-21");
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_TRUE(json_eq(*back, R"({"model":"m","system":[{"type":"text","text":"Be brief."}],
      "messages":[{"role":"user","content":[{"type":"text","text":"Weather?"}]},
        {"role":"assistant","content":[{"type":"text","text":"Checking."},
          {"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Pune"}}]},
        {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"31C"},
          {"type":"text","text":"Thanks"}]}],
      "max_tokens":100,"stop_sequences":["END"],
      "tools":[{"name":"get_weather","description":"Weather","input_schema":{"type":"object",
        "properties":{"city":{"type":"string"}}}}],"tool_choice":{"type":"any"}})"));
}

TEST(AnthropicInboundParse, CountTokens) {
  const std::string body = R"({"model":"anthropic/claude-haiku-4-5","system":"s",)"
                           R"("messages":[{"role":"user","content":"hi"}],)"
                           R"("tools":[{"name":"f","input_schema":{"type":"object"}}]})";
  auto r = parse_count_tokens(body, {}, "2023-06-01", "token-counting-2024-11-01");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->api, client_api::count_tokens);
  EXPECT_EQ(r->model, "anthropic/claude-haiku-4-5");
  EXPECT_FALSE(r->stream);
  EXPECT_EQ(r->native_body, body);
  EXPECT_EQ(r->body, body);
  EXPECT_EQ(r->messages_facts->anthropic_beta, "token-counting-2024-11-01");
  auto missing = parse_count_tokens(R"({"model":"m"})", {}, "", "");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().param, "messages");
  EXPECT_FALSE(parse_count_tokens(R"({"messages":[{"role":"user","content":"x"}]})", {}, "", ""));
  EXPECT_FALSE(parse_count_tokens(R"({"model":"m","messages":[]})", {}, "", ""));
}

// -- native forward ---------------------------------------------------------------------------

TEST(AnthropicInboundNative, EncodeChangesOnlyTheModelValue) {
  const std::string body =
      "{ \"model\" : \"anthropic/claude-haiku-4-5\",\n \"max_tokens\":1024, \"thinking\":"
      "{\"type\":\"enabled\",\"budget_tokens\":512},\"metadata\":{\"user_id\":\"u\"},"
      "\"system\":[{\"type\":\"text\",\"text\":\"S\",\"cache_control\":{\"type\":\"ephemeral\"}}],"
      "\"messages\":[{\"role\":\"user\",\"content\":\"\\u00e9t\\u00e9\"}],\"stream\":true}";
  auto req = parsed(body, "2026-10-21", "interleaved-thinking-2025-05-14,foo");
  auto out = encode_native(provider("anthropic"), req, "claude-haiku-4-5", "sk-ant");
  ASSERT_TRUE(out);
  std::string expected = body;
  expected.replace(expected.find("\"anthropic/claude-haiku-4-5\""),
                   std::string_view("\"anthropic/claude-haiku-4-5\"").size(),
                   "\"claude-haiku-4-5\"");
  EXPECT_EQ(out->body, expected);
  EXPECT_EQ(out->target, "/v1/messages");
  EXPECT_EQ(header(*out, "anthropic-version"), "2026-10-21");
  EXPECT_EQ(header(*out, "anthropic-beta"), "interleaved-thinking-2025-05-14,foo");
  EXPECT_EQ(header(*out, "x-api-key"), "sk-ant");
  EXPECT_EQ(header(*out, "accept"), "text/event-stream");
  EXPECT_EQ(header(*out, "content-type"), "application/json");

  // Without client headers: the provider's version, no beta.
  auto plain =
      parsed(R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}]})", "", "");
  auto out2 = encode_native(provider("anthropic"), plain, "claude-x", "k");
  ASSERT_TRUE(out2);
  EXPECT_EQ(header(*out2, "anthropic-version"), "2023-06-01");
  EXPECT_EQ(header(*out2, "anthropic-beta"), "<absent>");
  EXPECT_EQ(header(*out2, "accept"), "application/json");

  auto count =
      parse_count_tokens(R"({"model":"m","messages":[{"role":"user","content":"x"}]})", {}, "", "");
  ASSERT_TRUE(count);
  auto out3 = encode_native(provider("anthropic"), *count, "claude-x", "k");
  ASSERT_TRUE(out3);
  EXPECT_EQ(out3->target, "/v1/messages/count_tokens");
  EXPECT_EQ(out3->body, R"({"model":"claude-x","messages":[{"role":"user","content":"x"}]})");
}

TEST(AnthropicInboundNative, DecodePassesSuccessThrough) {
  auto req = parsed(R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}]})");
  const std::string body =
      R"({"id":"msg_1","type":"message","role":"assistant","model":"claude-haiku-4-5-20251001",)"
      R"("content":[{"type":"thinking","thinking":"t","signature":"s"},{"type":"text","text":"hi"}],)"
      R"("stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":10,)"
      R"("cache_read_input_tokens":5,"cache_creation_input_tokens":2,"output_tokens":3}})";
  auto d = decode_native(provider("anthropic"), req, "claude-haiku-4-5",
                         {200, "application/json", body});
  EXPECT_EQ(d.result, outcome::success);
  EXPECT_EQ(d.status, 200);
  EXPECT_TRUE(d.body_is_input);
  EXPECT_TRUE(d.body.empty());
  EXPECT_EQ(d.model, "claude-haiku-4-5-20251001");
  ASSERT_TRUE(d.tokens);
  EXPECT_EQ(d.tokens->prompt_tokens, 17);
  EXPECT_EQ(d.tokens->completion_tokens, 3);
  EXPECT_EQ(d.tokens->cached_tokens, 5);

  auto count =
      parse_count_tokens(R"({"model":"m","messages":[{"role":"user","content":"x"}]})", {}, "", "");
  ASSERT_TRUE(count);
  auto c = decode_native(provider("anthropic"), *count, "claude-x",
                         {200, "application/json", R"({"input_tokens":42})"});
  EXPECT_EQ(c.result, outcome::success);
  EXPECT_TRUE(c.body_is_input);
  EXPECT_FALSE(c.tokens) << "counting tokens consumes none";

  for (std::string_view bad : {"", "<html>", "[]", R"({"type":"completion","content":[]})",
                               R"({"type":"error","error":{"type":"api_error","message":"x"}})"}) {
    SCOPED_TRACE(bad);
    auto b = decode_native(provider("anthropic"), req, "m", {200, "application/json", bad});
    EXPECT_EQ(b.result, outcome::bad_response);
    EXPECT_EQ(b.status, 502);
  }
  auto nc = decode_native(provider("anthropic"), *count, "m", {200, "application/json", "{}"});
  EXPECT_EQ(nc.result, outcome::bad_response);
}

TEST(AnthropicInboundNative, DecodeKeepsAnthropicErrorBodies) {
  auto req = parsed(R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}]})");
  const std::string overloaded =
      R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},)"
      R"("request_id":"req_1"})";
  auto d = decode_native(provider("anthropic"), req, "m", {529, "application/json", overloaded});
  EXPECT_EQ(d.result, outcome::server_error);
  EXPECT_EQ(d.body, overloaded);
  const std::string bad = R"({"type":"error","error":{"type":"invalid_request_error",)"
                          R"("message":"max_tokens: Field required"}})";
  auto b = decode_native(provider("anthropic"), req, "m", {400, "application/json", bad});
  EXPECT_EQ(b.result, outcome::request_rejected);
  EXPECT_EQ(b.status, 400);
  EXPECT_EQ(b.body, bad);
  auto limited = decode_native(provider("anthropic"), req, "m",
                               {429, "application/json",
                                R"({"type":"error","error":{"type":"rate_limit_error",)"
                                R"("message":"Number of request tokens has exceeded"}})"});
  EXPECT_EQ(limited.result, outcome::rate_limited);
  auto fields = parse_error_body(limited.body);  // what the request actor reads on a 429
  ASSERT_TRUE(fields);
  EXPECT_EQ(fields->message, "Number of request tokens has exceeded");
  // Not Anthropic's shape: the envelope map_error wrote.
  auto html =
      decode_native(provider("anthropic"), req, "m", {502, "text/html", "<html>bad</html>"});
  EXPECT_EQ(html.result, outcome::server_error);
  EXPECT_NE(html.body.find("\"error\""), std::string::npos);
  EXPECT_EQ(html.body.find("<html>"), std::string::npos);
}

const std::string native_text_stream =
    "event: message_start\n"
    R"(data: {"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant",)"
    R"("model":"claude-haiku-4-5-20251001","content":[],"stop_reason":null,"stop_sequence":null,)"
    R"("usage":{"input_tokens":25,"cache_read_input_tokens":4,"output_tokens":1}}})"
    "\n\n"
    "event: content_block_start\n"
    R"(data: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}})"
    "\n\n"
    "event: content_block_delta\n"
    R"(data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Let me think"}})"
    "\n\n"
    "event: content_block_delta\n"
    R"(data: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQB"}})"
    "\n\n"
    "event: content_block_stop\n"
    R"(data: {"type":"content_block_stop","index":0})"
    "\n\n"
    "event: ping\n"
    R"(data: {"type": "ping"})"
    "\n\n"
    "event: content_block_start\n"
    R"(data: {"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}})"
    "\n\n"
    "event: content_block_delta\n"
    R"(data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Hello"}})"
    "\n\n"
    "event: content_block_stop\n"
    R"(data: {"type":"content_block_stop","index":1})"
    "\n\n"
    "event: message_delta\n"
    R"(data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}})"
    "\n\n"
    "event: message_stop\n"
    R"(data: {"type":"message_stop"})"
    "\n\n";

TEST(AnthropicInboundNative, StreamPassesThroughByteForByte) {
  auto req = parsed(
      R"({"model":"m","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"x"}]})");
  for (const std::string& text : {native_text_stream, fixture("anthropic", "stream_tool_use.sse"),
                                  [] {  // CRLF line ends
                                    std::string s;
                                    for (char c : native_text_stream) {
                                      if (c == '\n') {
                                        s += '\r';
                                      }
                                      s += c;
                                    }
                                    return s;
                                  }()}) {
    auto t = make_native_translator(provider("anthropic"), req, "claude-haiku-4-5");
    auto whole = run(*t, text, {});
    EXPECT_EQ(whole.bytes, text);
    EXPECT_TRUE(whole.done);
    EXPECT_TRUE(whole.content);
    EXPECT_FALSE(whole.failure);
    auto t2 = make_native_translator(provider("anthropic"), req, "claude-haiku-4-5");
    auto bytewise = run(*t2, text, every_byte(text));
    EXPECT_EQ(bytewise.bytes, text);
    EXPECT_TRUE(bytewise.done);
  }
}

TEST(AnthropicInboundNative, StreamCommitUsageAndModel) {
  auto req = parsed(
      R"({"model":"m","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"x"}]})");
  auto t = make_native_translator(provider("anthropic"), req, "claude-haiku-4-5");
  // Cut after every event: thinking does not commit, the first text does.
  std::vector<std::size_t> cuts;
  for (std::size_t pos = native_text_stream.find("\n\n"); pos != std::string::npos;
       pos = native_text_stream.find("\n\n", pos + 2)) {
    if (pos + 2 < native_text_stream.size()) {
      cuts.push_back(pos + 2);
    }
  }
  auto r = run(*t, native_text_stream, cuts);
  ASSERT_GE(r.content_after.size(), 8u);
  for (std::size_t i = 0; i < 6; ++i) {  // message_start .. content_block_start (text)
    EXPECT_FALSE(r.content_after[i]) << "after event " << i;
  }
  EXPECT_TRUE(r.content_after[7]) << "the first text_delta commits";
  EXPECT_EQ(r.model, "claude-haiku-4-5-20251001");
  ASSERT_TRUE(r.tokens);
  EXPECT_EQ(r.tokens->prompt_tokens, 29);
  EXPECT_EQ(r.tokens->completion_tokens, 15);
  EXPECT_EQ(r.tokens->cached_tokens, 4);

  // A tool_use block start commits.
  auto tool = fixture("anthropic", "stream_tool_use.sse");
  auto t2 = make_native_translator(provider("anthropic"), req, "claude-haiku-4-5");
  auto upto = tool.find("\"type\":\"tool_use\"");
  auto cut = tool.find("\n\n", upto) + 2;
  auto text_cut = tool.find("\"text_delta\"");
  auto r2 = run(*t2, tool, {tool.rfind("\n\n", text_cut) + 2, cut});
  EXPECT_FALSE(r2.content_after[0]);
  EXPECT_TRUE(r2.content_after[1]);
}

TEST(AnthropicInboundNative, StreamErrorEventIsAFailureAndNotForwarded) {
  auto req = parsed(
      R"({"model":"m","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"x"}]})");
  auto text = fixture("anthropic_inbound", "native_stream_error.sse");
  for (bool bytewise : {false, true}) {
    SCOPED_TRACE(bytewise);
    auto t = make_native_translator(provider("anthropic"), req, "claude-haiku-4-5");
    auto r = run(*t, text, bytewise ? every_byte(text) : std::vector<std::size_t>{});
    ASSERT_TRUE(r.failure);
    EXPECT_EQ(r.failure->result, outcome::server_error);
    EXPECT_EQ(r.failure->status, 529);
    EXPECT_EQ(r.failure->envelope,
              R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})");
    EXPECT_FALSE(r.done);
    EXPECT_TRUE(r.content);
    EXPECT_EQ(r.bytes, text.substr(0, text.find("event: error")));
    // The event the client then gets is Anthropic's.
    EXPECT_EQ(anthropic_inbound::stream_error_event(*r.failure),
              "event: error\ndata: "
              R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})"
              "\n\n");
  }
  // Other error types are bad responses; api_error a server error.
  auto other = [&](std::string_view type) {
    auto t = make_native_translator(provider("anthropic"), req, "m");
    std::string s = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\""
                    + std::string(type) + "\",\"message\":\"m\"}}\n\n";
    return run(*t, s, {});
  };
  EXPECT_EQ(other("api_error").failure->result, outcome::server_error);
  EXPECT_EQ(other("api_error").failure->status, 500);
  EXPECT_EQ(other("invalid_request_error").failure->result, outcome::bad_response);
}

TEST(AnthropicInboundNative, StreamTruncationAndGarbageAreFailures) {
  auto req = parsed(
      R"({"model":"m","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"x"}]})");
  auto cut = native_text_stream.substr(0, native_text_stream.find("event: message_stop"));
  auto t = make_native_translator(provider("anthropic"), req, "m");
  auto r = run(*t, cut, {});
  ASSERT_TRUE(r.failure);
  EXPECT_EQ(r.failure->result, outcome::bad_response);
  EXPECT_FALSE(r.done);
  EXPECT_EQ(r.bytes, cut);

  auto t2 = make_native_translator(provider("anthropic"), req, "m");
  auto early =
      run(*t2,
          "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
          "\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}\n\n",
          {});
  ASSERT_TRUE(early.failure);
  EXPECT_TRUE(early.bytes.empty());

  auto t3 = make_native_translator(provider("anthropic"), req, "m");
  auto garbage = run(*t3, "event: message_start\ndata: {not json\n\n", {});
  ASSERT_TRUE(garbage.failure);
  EXPECT_EQ(garbage.failure->result, outcome::bad_response);
}

// -- translated answers ---------------------------------------------------------------------------

struct answer_case {
  const char* name;
  const char* chat;
  const char* message;
};

const answer_case answers[] = {
    {"text with cached usage",
     R"({"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-6-luna",
         "choices":[{"index":0,"message":{"role":"assistant","content":"Hi there","refusal":null},
         "finish_reason":"stop"}],"usage":{"prompt_tokens":20,"completion_tokens":5,
         "total_tokens":25,"prompt_tokens_details":{"cached_tokens":8}}})",
     R"({"id":"msg_chatcmpl-1","type":"message","role":"assistant","model":"gpt-6-luna",
         "content":[{"type":"text","text":"Hi there"}],"stop_reason":"end_turn",
         "stop_sequence":null,"usage":{"input_tokens":12,"cache_creation_input_tokens":0,
         "cache_read_input_tokens":8,"output_tokens":5}})"},
    {"tool calls: ids made valid, arguments parsed, bad arguments become {}",
     R"({"id":"x:1","object":"chat.completion","created":1,"model":"kimi",
         "choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[
           {"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}},
           {"id":"functions.g:1","type":"function","function":{"name":"g","arguments":"nope"}}]},
         "finish_reason":"tool_calls"}]})",
     R"({"id":"msg_x_1","type":"message","role":"assistant","model":"kimi",
         "content":[{"type":"tool_use","id":"call_1","name":"f","input":{"a":1}},
                    {"type":"tool_use","id":"ibx_66756e6374696f6e732e673a31","name":"g","input":{}}],
         "stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":0,
         "cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0}})"},
    {"length is max_tokens",
     R"({"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,
         "message":{"role":"assistant","content":"abc"},"finish_reason":"length"}],
         "usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}})",
     R"({"id":"msg_c","type":"message","role":"assistant","model":"m",
         "content":[{"type":"text","text":"abc"}],"stop_reason":"max_tokens","stop_sequence":null,
         "usage":{"input_tokens":3,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,
         "output_tokens":4}})"},
    {"a refusal is text with stop_reason refusal",
     R"({"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,
         "message":{"role":"assistant","content":null,"refusal":"I can't help with that."},
         "finish_reason":"stop"}]})",
     R"({"id":"msg_c","type":"message","role":"assistant","model":"m",
         "content":[{"type":"text","text":"I can't help with that."}],"stop_reason":"refusal",
         "stop_sequence":null,"usage":{"input_tokens":0,"cache_creation_input_tokens":0,
         "cache_read_input_tokens":0,"output_tokens":0}})"},
    {"content_filter is refusal; empty content gives no block",
     R"({"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,
         "message":{"role":"assistant","content":""},"finish_reason":"content_filter"}]})",
     R"({"id":"msg_c","type":"message","role":"assistant","model":"m","content":[],
         "stop_reason":"refusal","stop_sequence":null,"usage":{"input_tokens":0,
         "cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0}})"},
};

TEST(AnthropicInboundAnswer, FromChatCompletionTable) {
  chat_request req;
  for (const auto& c : answers) {
    SCOPED_TRACE(c.name);
    EXPECT_TRUE(json_eq(from_chat_completion(req, c.chat), c.message));
  }
}

TEST(AnthropicInboundAnswer, RoundTripThroughTheExistingAnthropicDecoder) {
  // chat.completion -> Anthropic message (ours) -> chat.completion (providers/anthropic.cpp).
  const std::string chat =
      R"({"id":"chatcmpl-9","object":"chat.completion","created":1732000000,"model":"gpt-6-luna",)"
      R"("choices":[{"index":0,"message":{"role":"assistant","content":"Let me check.",)"
      R"("refusal":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":)"
      R"("get_weather","arguments":"{\"city\":\"Pune\"}"}}]},"logprobs":null,)"
      R"("finish_reason":"tool_calls"}],"usage":{"prompt_tokens":20,"completion_tokens":5,)"
      R"("total_tokens":25,"prompt_tokens_details":{"cached_tokens":8}}})";
  chat_request req;
  auto message = from_chat_completion(req, chat);
  auto back = anthropic::decode(req, "m", {200, "application/json", message}, 1732000000);
  ASSERT_EQ(back.result, outcome::success);
  EXPECT_TRUE(json_eq(back.body, R"({"id":"msg_chatcmpl-9","object":"chat.completion",
      "created":1732000000,"model":"gpt-6-luna","choices":[{"index":0,"message":{
      "role":"assistant","content":"Let me check.","refusal":null,"tool_calls":[{"id":"call_1",
      "type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Pune\"}"}}]},
      "logprobs":null,"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":20,
      "completion_tokens":5,"total_tokens":25,"prompt_tokens_details":{"cached_tokens":8}}})"));
}

// -- translated streams ---------------------------------------------------------------------------

/// The chat request a streamed Messages request becomes.
chat_request streamed() {
  return parsed(R"({"model":"ib/cheap","max_tokens":64,"stream":true,)"
                R"("messages":[{"role":"user","content":"x"}]})");
}

/// Runs a recorded chat stream through `provider`'s translator wrapped into Anthropic's events.
stream_run wrapped(std::string_view provider_name, std::string_view text,
                   const std::vector<std::size_t>& cuts = {}) {
  auto req = streamed();
  auto t = wrap_chat_translator(
      req, openai::make_translator(provider(std::string(provider_name)), req, "asked"));
  return run(*t, text, cuts);
}

/// Checks the structure Anthropic's SDK relies on and returns the concatenated text.
std::string check_sequence(const std::vector<event>& evs) {
  std::string text;
  EXPECT_GE(evs.size(), 3u);
  if (evs.size() < 3) {
    return text;
  }
  EXPECT_EQ(evs.front().name, "message_start");
  EXPECT_EQ(evs[evs.size() - 2].name, "message_delta");
  EXPECT_EQ(evs.back().name, "message_stop");
  int open = -1;
  int next = 0;
  for (const auto& ev : evs) {
    rapidjson::Document d;
    d.Parse(ev.data.data(), ev.data.size());
    EXPECT_FALSE(d.HasParseError()) << ev.data;
    if (d.HasParseError()) {
      continue;
    }
    EXPECT_EQ(std::string_view(d["type"].GetString()), ev.name);
    if (ev.name == "content_block_start") {
      EXPECT_EQ(open, -1) << "a block opened while another is open";
      EXPECT_EQ(d["index"].GetInt(), next);
      open = next++;
    } else if (ev.name == "content_block_delta") {
      EXPECT_LT(d["index"].GetInt(), next);
      if (std::string_view(d["delta"]["type"].GetString()) == "text_delta") {
        EXPECT_EQ(d["index"].GetInt(), open);
        text += d["delta"]["text"].GetString();
      }
    } else if (ev.name == "content_block_stop") {
      EXPECT_EQ(d["index"].GetInt(), open);
      open = -1;
    } else if (ev.name == "message_delta") {
      EXPECT_EQ(open, -1) << "message_delta with a block open";
      EXPECT_TRUE(d["usage"]["output_tokens"].IsInt());
    }
  }
  return text;
}

TEST(AnthropicInboundStream, RecordedChatStreamsBecomeAnthropicEvents) {
  struct recorded {
    const char* provider;
    const char* file;
    const char* text;
    const char* stop_reason;
  };
  const recorded cases[] = {
      {"openai", "openai_stream.sse", "Hel", "end_turn"},
      {"together", "together_stream.sse", "Hi!", "end_turn"},
      {"groq", "groq_stream.sse", nullptr, nullptr},
      {"deepseek", "deepseek_stream.sse", nullptr, nullptr},
      {"sarvam", "sarvam_stream.sse", nullptr, nullptr},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.file);
    auto text = fixture("providers", c.file);
    auto r = wrapped(c.provider, text);
    ASSERT_FALSE(r.failure) << r.failure->envelope;
    EXPECT_TRUE(r.done);
    EXPECT_TRUE(r.content);
    auto evs = events_of(r.bytes);
    auto joined = check_sequence(evs);
    if (c.text != nullptr) {
      EXPECT_EQ(joined, c.text);
      EXPECT_NE(evs[evs.size() - 2].data.find(std::string("\"stop_reason\":\"") + c.stop_reason),
                std::string::npos)
          << evs[evs.size() - 2].data;
    }
    // Split anywhere, the same events.
    EXPECT_EQ(wrapped(c.provider, text, every_byte(text)).bytes, r.bytes);
  }
}

TEST(AnthropicInboundStream, TextEventsAndUsageExactly) {
  auto r = wrapped("openai", fixture("providers", "openai_stream.sse"));
  EXPECT_EQ(r.bytes,
            "event: message_start\ndata: "
            R"({"type":"message_start","message":{"id":"msg_chatcmpl-abc","type":"message",)"
            R"("role":"assistant","model":"gpt-4o-mini","content":[],"stop_reason":null,)"
            R"("stop_sequence":null,"usage":{"input_tokens":0,"output_tokens":0}}})"
            "\n\n"
            "event: content_block_start\ndata: "
            R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})"
            "\n\n"
            "event: content_block_delta\ndata: "
            R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}})"
            "\n\n"
            "event: content_block_stop\ndata: "
            R"({"type":"content_block_stop","index":0})"
            "\n\n"
            "event: message_delta\ndata: "
            R"({"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},)"
            R"("usage":{"input_tokens":9,"cache_creation_input_tokens":0,)"
            R"("cache_read_input_tokens":0,"output_tokens":2}})"
            "\n\n"
            "event: message_stop\ndata: "
            R"({"type":"message_stop"})"
            "\n\n");
  ASSERT_TRUE(r.tokens);
  EXPECT_EQ(r.tokens->total_tokens, 11);
  EXPECT_EQ(r.model, "gpt-4o-mini");
}

TEST(AnthropicInboundStream, ToolCallsBecomeToolUseBlocks) {
  auto text = fixture("anthropic_inbound", "chat_tool_stream.sse");
  auto r = wrapped("openai", text);
  ASSERT_FALSE(r.failure);
  auto evs = events_of(r.bytes);
  std::vector<std::string> names;
  for (const auto& e : evs) {
    names.push_back(e.name);
  }
  EXPECT_EQ(names,
            (std::vector<std::string>{
                "message_start", "content_block_start", "content_block_delta", "content_block_stop",
                "content_block_start", "content_block_delta", "content_block_delta",
                "content_block_stop", "content_block_start", "content_block_delta",
                "content_block_stop", "message_delta", "message_stop"}));
  check_sequence(evs);
  EXPECT_TRUE(json_eq(evs[4].data, R"({"type":"content_block_start","index":1,"content_block":
      {"type":"tool_use","id":"call_a1","name":"get_weather","input":{}}})"));
  EXPECT_TRUE(json_eq(evs[6].data, R"({"type":"content_block_delta","index":1,"delta":
      {"type":"input_json_delta","partial_json":"\"Pune\"}"}})"));
  // Kimi-style ids are made valid for Anthropic, as the Anthropic encoder does.
  EXPECT_TRUE(json_eq(evs[8].data, R"({"type":"content_block_start","index":2,"content_block":
      {"type":"tool_use","id":")" + anthropic::detail::tool_id("functions.get_time:1")
                                       + R"(","name":"get_time","input":{}}})"));
  EXPECT_EQ(anthropic::detail::tool_id("functions.get_time:1").substr(0, 4), "ibx_");
  EXPECT_TRUE(json_eq(evs[11].data, R"({"type":"message_delta","delta":{"stop_reason":"tool_use",
      "stop_sequence":null},"usage":{"input_tokens":20,"cache_creation_input_tokens":0,
      "cache_read_input_tokens":100,"output_tokens":30}})"));
  EXPECT_EQ(wrapped("openai", text, every_byte(text)).bytes, r.bytes);
}

TEST(AnthropicInboundStream, RoundTripThroughTheExistingAnthropicTranslator) {
  // chat chunks -> Anthropic events (ours) -> chat chunks (providers/anthropic_stream.cpp):
  // the same text and tool calls come back.
  auto r = wrapped("openai", fixture("anthropic_inbound", "chat_tool_stream.sse"));
  auto req = streamed();
  auto back = anthropic::make_translator(req, "m", 1732000000);
  auto b = run(*back, r.bytes, {});
  ASSERT_FALSE(b.failure);
  EXPECT_TRUE(b.done);
  std::string text;
  std::string args0;
  std::string args1;
  std::string finish;
  std::size_t pos = 0;
  while ((pos = b.bytes.find("data: {", pos)) != std::string::npos) {
    auto end = b.bytes.find("\n\n", pos);
    rapidjson::Document d;
    d.Parse(b.bytes.data() + pos + 6, end - pos - 6);
    pos = end;
    if (!d.IsObject() || !d["choices"].IsArray() || d["choices"].Empty()) {
      continue;
    }
    const auto& delta = d["choices"][0]["delta"];
    if (delta.HasMember("content") && delta["content"].IsString()) {
      text += delta["content"].GetString();
    }
    if (delta.HasMember("tool_calls")) {
      for (const auto& tc : delta["tool_calls"].GetArray()) {
        (tc["index"].GetInt() == 0 ? args0 : args1) += tc["function"]["arguments"].GetString();
      }
    }
    if (d["choices"][0]["finish_reason"].IsString()) {
      finish = d["choices"][0]["finish_reason"].GetString();
    }
  }
  EXPECT_EQ(text, "Checking both.");
  EXPECT_EQ(args0, R"({"city":"Pune"})");
  EXPECT_EQ(args1, R"({"tz":"IST"})");
  EXPECT_EQ(finish, "tool_calls");
}

TEST(AnthropicInboundStream, CommitFollowsTheInnerTranslator) {
  auto text = fixture("providers", "openai_stream.sse");
  auto first = text.find("\n\n") + 2;  // the role-only chunk
  auto r = wrapped("openai", text, {first});
  ASSERT_GE(r.content_after.size(), 2u);
  EXPECT_FALSE(r.content_after[0]) << "message_start alone does not commit";
  EXPECT_TRUE(r.content_after[1]);
}

TEST(AnthropicInboundStream, FailuresPassThroughWithNothingAfter) {
  auto text = fixture("providers", "openai_stream.sse");
  auto cut = text.substr(0, text.find("data: [DONE]"));
  auto r = wrapped("openai", cut);
  ASSERT_TRUE(r.failure);
  EXPECT_FALSE(r.done);
  EXPECT_EQ(r.bytes.find("message_stop"), std::string::npos);
  // Converted for the client by the front: Anthropic's event.
  auto ev = front_stream_error_event(client_api::messages, *r.failure);
  EXPECT_TRUE(
      ev.starts_with("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\""))
      << ev;
  auto in_band =
      "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\","
      "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n"
      "data: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}\n\n";
  auto r2 = wrapped("openai", in_band);
  ASSERT_TRUE(r2.failure);
  EXPECT_EQ(events_of(r2.bytes).back().name, "content_block_delta");
}

// -- errors ---------------------------------------------------------------------------------------

TEST(AnthropicInboundErrors, TypesByStatus) {
  const std::pair<int, std::string_view> table[] = {
      {400, "invalid_request_error"},
      {401, "authentication_error"},
      {402, "billing_error"},
      {403, "permission_error"},
      {404, "not_found_error"},
      {405, "invalid_request_error"},
      {413, "request_too_large"},
      {422, "invalid_request_error"},
      {424, "invalid_request_error"},
      {429, "rate_limit_error"},
      {500, "api_error"},
      {502, "api_error"},
      {503, "overloaded_error"},
      {504, "timeout_error"},
      {507, "api_error"},
      {529, "overloaded_error"},
  };
  for (const auto& [status, type] : table) {
    EXPECT_EQ(error_type(status), type) << status;
  }
}

TEST(AnthropicInboundErrors, GatewayErrorBodies) {
  EXPECT_TRUE(json_eq(
      error_body(error{errc::unauthorized, "Incorrect API key provided.", {}, "invalid_api_key"},
                 nullptr),
      R"({"type":"error","error":{"type":"authentication_error",
          "message":"Incorrect API key provided."}})"));
  std::vector<attempt_record> attempts{{"openai", 503, "", 12}, {"sarvam", 0, "no_key", 0}};
  EXPECT_TRUE(json_eq(error_body(error{errc::bad_gateway, "all providers failed"}, &attempts),
                      R"({"type":"error","error":{"type":"api_error",
          "message":"all providers failed","inferbridge_attempts":[
          {"provider":"openai","status":503,"latency_ms":12},
          {"provider":"sarvam","reason":"no_key","latency_ms":0}]}})"));
  EXPECT_TRUE(
      json_eq(front_error_body(client_api::count_tokens, error{errc::not_found, "no such model"}),
              R"({"type":"error","error":{"type":"not_found_error",
                          "message":"no such model"}})"));
}

TEST(AnthropicInboundErrors, EnvelopesBecomeAnthropicShape) {
  // The gateway's OpenAI envelope (a translated provider's 400, with attempts).
  EXPECT_TRUE(json_eq(
      error_from_envelope(R"({"error":{"message":"bad tools","type":"invalid_request_error",)"
                          R"("param":"tools","code":null,"inferbridge_attempts":[]}})",
                          400),
      R"({"type":"error","error":{"type":"invalid_request_error","message":"bad tools",
          "inferbridge_attempts":[]}})"));
  // An Anthropic type in the envelope is kept where the status has none of its own.
  EXPECT_TRUE(json_eq(
      error_from_envelope(R"({"error":{"message":"Overloaded","type":"overloaded_error"}})", 500),
      R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})"));
  EXPECT_TRUE(
      json_eq(error_from_envelope(R"({"error":{"message":"x","type":"upstream_error"}})", 502),
              R"({"type":"error","error":{"type":"api_error","message":"x"}})"));
  // Anthropic's own body: unchanged, byte for byte.
  const std::string own =
      "{\n  \"type\": \"error\",\n  \"error\": {\"type\": \"not_found_error\", "
      "\"message\": \"model: claude-x\"},\n  \"request_id\": \"req_1\"\n}";
  EXPECT_EQ(error_from_envelope(own, 404), own);
  // Its stream event is one line.
  stream_failure f{outcome::server_error, 529, own};
  auto ev = anthropic_inbound::stream_error_event(f);
  EXPECT_EQ(ev.find('\n'), std::string_view("event: error").size());
  EXPECT_TRUE(ev.ends_with("}\n\n"));
  EXPECT_EQ(std::count(ev.begin(), ev.end(), '\n'), 3);
  // Not JSON.
  EXPECT_TRUE(json_eq(error_from_envelope("<html>", 502),
                      R"({"type":"error","error":{"type":"api_error",
                          "message":"the upstream answered HTTP 502"}})"));
  // Identity for OpenAI clients.
  EXPECT_EQ(front_error_from_envelope(client_api::chat_completions, "<x>", 502), "<x>");
}

}  // namespace
}  // namespace ib::providers::anthropic_inbound

// -- robustness -----------------------------------------------------------------------------------

namespace ib::providers::anthropic_inbound {
namespace {

/// A small deterministic generator (no global state, same sequence everywhere).
struct lcg {
  std::uint32_t s;
  std::uint32_t next(std::uint32_t n) {
    s = s * 1103515245u + 12345u;
    return (s >> 8) % n;
  }
};

TEST(AnthropicInboundRobustness, RandomInputNeverCrashes) {
  const std::string_view pieces[] = {"{",
                                     "}",
                                     "[",
                                     "]",
                                     ",",
                                     ":",
                                     "\"type\"",
                                     "\"text\"",
                                     "\"tool_use\"",
                                     "\"tool_result\"",
                                     "\"image\"",
                                     "\"source\"",
                                     "\"content\"",
                                     "\"role\"",
                                     "\"user\"",
                                     "\"assistant\"",
                                     "\"messages\"",
                                     "\"model\"",
                                     "\"m\"",
                                     "\"max_tokens\"",
                                     "5",
                                     "null",
                                     "true",
                                     "\"id\"",
                                     "\"input\"",
                                     "\"tools\"",
                                     "\"name\"",
                                     "\"input_schema\"",
                                     "\"tool_choice\"",
                                     "\"any\"",
                                     "\"system\"",
                                     "\"event: \"",
                                     "data: ",
                                     "\n",
                                     "\r\n",
                                     "\n\n",
                                     "event: error",
                                     "message_start",
                                     "message_stop",
                                     "content_block_delta",
                                     "[DONE]",
                                     "\"choices\"",
                                     "\"delta\"",
                                     "\"tool_calls\"",
                                     "\"index\"",
                                     "\"arguments\"",
                                     "\xff",
                                     "\\u0000"};
  lcg r{7};
  auto req = streamed();
  for (int i = 0; i < 400; ++i) {
    std::string text;
    for (auto n = r.next(60); n > 0; --n) {
      text += pieces[r.next(std::size(pieces))];
    }
    // Bodies: parse or refuse, never crash; what parses gives a chat request.
    auto parsed_body = parse_request(text, {}, "", "");
    if (parsed_body) {
      EXPECT_TRUE(parse_chat_request(parsed_body->body)) << text;
    }
    (void)parse_count_tokens(text, {}, "", "");
    (void)error_from_envelope(text, 500);
    chat_request any;
    (void)from_chat_completion(any, text);
    (void)decode_native(provider("anthropic"), req, "m", {200, "application/json", text});
    (void)decode_native(provider("anthropic"), req, "m", {529, "application/json", text});
    // Streams: whatever arrives, a stream ends done or failed, and nothing follows a failure.
    auto native = make_native_translator(provider("anthropic"), req, "m");
    auto n = run(*native, text, {text.size() / 3, text.size() / 2});
    EXPECT_TRUE(n.done || n.failure.has_value()) << text;
    auto chat = wrap_chat_translator(req, openai::make_translator(provider("openai"), req, "m"));
    auto c = run(*chat, "data: " + text + "\n\n", {});
    EXPECT_TRUE(c.done || c.failure.has_value()) << text;
  }
}

TEST(AnthropicInboundRobustness, MutatedValidBodiesParseOrAreRefused) {
  lcg r{11};
  const char swaps[] = {'{', '}', '[', ']', '"', ',', ':', '1', 'x', ' ', '\\'};
  for (const auto& c : translations) {
    const std::string body = c.anthropic;
    for (int i = 0; i < 200; ++i) {
      std::string m = body;
      m[r.next(static_cast<std::uint32_t>(m.size()))] = swaps[r.next(sizeof swaps)];
      auto out = parse_request(m, {}, "", "");
      if (out) {
        EXPECT_TRUE(parse_chat_request(out->body)) << m;
        EXPECT_EQ(out->native_body, m);
      } else {
        EXPECT_EQ(out.error().code, errc::invalid_request);
      }
    }
  }
}

}  // namespace
}  // namespace ib::providers::anthropic_inbound
