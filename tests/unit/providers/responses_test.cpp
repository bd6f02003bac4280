// POST /v1/responses (providers/responses.hpp): the request's chat-completions form, what only
// OpenAI can serve, the Response built from a chat completion, the Responses event sequence built
// from recorded chat streams (OpenAI and Anthropic translators), and the native pass-through.
#include "providers/responses.hpp"

#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "config/load.hpp"
#include "providers/adapter.hpp"
#include "providers/sse.hpp"

namespace ib::providers::responses {
namespace {

config::config sample() {
  auto cfg = config::load(R"({"providers": {"openai": {}, "anthropic": {}, "groq": {}}})", {});
  EXPECT_TRUE(cfg);
  return cfg ? std::move(*cfg) : config::config{};
}

chat_request parse(std::string body) {
  auto r = parse_request(std::move(body), {});
  EXPECT_TRUE(r) << (r ? "" : r.error().message);
  return r ? std::move(*r) : chat_request{};
}

rapidjson::Document json_of(std::string_view text) {
  rapidjson::Document d;
  d.Parse(text.data(), text.size());
  EXPECT_FALSE(d.HasParseError()) << text;
  return d;
}

// -- the request's chat form ----------------------------------------------------------------------

TEST(ResponsesParse, AStringInputIsOneUserMessage) {
  const std::string body = R"({"model":"ib/balanced","input":"Hi there","store":true,)"
                           R"("metadata":{"k":"v"}})";
  auto r = parse(body);
  EXPECT_EQ(r.api, client_api::responses);
  EXPECT_EQ(r.model, "ib/balanced");
  EXPECT_EQ(r.native_body, body);
  EXPECT_FALSE(r.native_members.empty());
  ASSERT_TRUE(r.responses_facts);
  EXPECT_TRUE(r.responses_facts->openai_only.empty());
  // store and metadata are not sent on: nothing is kept.
  EXPECT_EQ(r.body, R"({"model":"ib/balanced","messages":[{"role":"user","content":"Hi there"}]})");
  EXPECT_FALSE(r.stream);
}

TEST(ResponsesParse, InstructionsComeFirstAndItemsBecomeMessages) {
  auto r =
      parse(R"({"model":"m","instructions":"Be brief.","input":[)"
            R"({"role":"developer","content":"Answer in English."},)"
            R"({"role":"user","content":[{"type":"input_text","text":"What is this?"},)"
            R"({"type":"input_image","image_url":"https://x.test/a.png","detail":"low"}]},)"
            R"({"type":"message","role":"assistant","content":[{"type":"output_text",)"
            R"("text":"Let me look.","annotations":[]}]},)"
            R"({"type":"function_call","call_id":"c1","name":"f","arguments":"{\"a\":1}"},)"
            R"({"type":"function_call","id":"fc_2","call_id":"c2","name":"g","arguments":"{}"},)"
            R"({"type":"reasoning","id":"rs_1","summary":[]},)"
            R"({"type":"function_call_output","call_id":"c1","output":"42"},)"
            R"({"type":"function_call_output","call_id":"c2","output":[)"
            R"({"type":"input_text","text":"o"},{"type":"input_text","text":"k"}]}]})");
  EXPECT_EQ(r.body,
            R"({"model":"m","messages":[{"role":"system","content":"Be brief."},)"
            R"({"role":"developer","content":"Answer in English."},)"
            R"({"role":"user","content":[{"type":"text","text":"What is this?"},)"
            R"({"type":"image_url","image_url":{"url":"https://x.test/a.png","detail":"low"}}]},)"
            R"({"role":"assistant","content":"Let me look.","tool_calls":[)"
            R"({"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}},)"
            R"({"id":"c2","type":"function","function":{"name":"g","arguments":"{}"}}]},)"
            R"({"role":"tool","content":"42","tool_call_id":"c1"},)"
            R"({"role":"tool","content":"ok","tool_call_id":"c2"}]})");
  EXPECT_TRUE(r.has_tools == false);
  EXPECT_TRUE(r.has_developer_messages);
}

TEST(ResponsesParse, ToolsToolChoiceSamplingAndLimitsAreTranslated) {
  auto r = parse(R"({"model":"m","input":"x","stream":true,"max_output_tokens":64,)"
                 R"("temperature":0.5,"top_p":0.9,"parallel_tool_calls":false,"user":"u1",)"
                 R"("tools":[{"type":"function","name":"get_weather","description":"d",)"
                 R"("parameters":{"type":"object","properties":{}},"strict":true}],)"
                 R"("tool_choice":{"type":"function","name":"get_weather"},)"
                 R"("text":{"format":{"type":"json_schema","name":"w","schema":{"type":"object"},)"
                 R"("strict":true}}})");
  EXPECT_EQ(r.body, R"({"model":"m","messages":[{"role":"user","content":"x"}],"stream":true,)"
                    R"("stream_options":{"include_usage":true},"max_completion_tokens":64,)"
                    R"("temperature":0.5,"top_p":0.9,"tools":[{"type":"function","function":)"
                    R"({"name":"get_weather","description":"d","parameters":{"type":"object",)"
                    R"("properties":{}},"strict":true}}],"tool_choice":{"type":"function",)"
                    R"("function":{"name":"get_weather"}},"parallel_tool_calls":false,)"
                    R"("response_format":{"type":"json_schema","json_schema":{"name":"w",)"
                    R"("schema":{"type":"object"},"strict":true}},"user":"u1"})");
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_TRUE(r.has_tools);
  for (const char* choice : {"auto", "none", "required"}) {
    auto c = parse(std::string(R"({"model":"m","input":"x","tools":[{"type":"function",)")
                   + R"("name":"f"}],"tool_choice":")" + choice + "\"}");
    EXPECT_NE(c.body.find(std::string(R"("tool_choice":")") + choice + "\""), std::string::npos)
        << c.body;
  }
  auto j = parse(R"({"model":"m","input":"x","text":{"format":{"type":"json_object"}}})");
  EXPECT_NE(j.body.find(R"("response_format":{"type":"json_object"})"), std::string::npos);
}

TEST(ResponsesParse, MalformedBodiesAre400sNamingTheField) {
  struct row {
    const char* body;
    const char* param;
  };
  const row rows[] = {
      {R"({"input":"x"})", "model"},
      {R"({"model":"m"})", "input"},
      {R"({"model":"m","input":5})", "input"},
      {R"({"model":"m","input":[]})", "input"},
      {R"({"model":"m","input":"x","stream":"yes"})", "stream"},
      {R"({"model":"m","input":[1]})", "input[0]"},
      {R"({"model":"m","input":[{"role":"tool","content":"x"}]})", "input[0].role"},
      {R"({"model":"m","input":[{"role":"user"}]})", "input[0].content"},
      {R"({"model":"m","input":[{"role":"user","content":[{"type":"input_text"}]}]})",
       "input[0].content[0].text"},
      {R"({"model":"m","input":[{"role":"system","content":[{"type":"input_image",)"
       R"("image_url":"https://x"}]}]})",
       "input[0].content[0]"},
      {R"({"model":"m","input":[{"type":"function_call","name":"f","arguments":"{}"}]})",
       "input[0].call_id"},
      {R"({"model":"m","input":[{"type":"function_call","call_id":"c","arguments":"{}"}]})",
       "input[0].name"},
      {R"({"model":"m","input":[{"type":"function_call","call_id":"c","name":"f"}]})",
       "input[0].arguments"},
      {R"({"model":"m","input":[{"type":"function_call_output","output":"x"}]})",
       "input[0].call_id"},
      {R"({"model":"m","input":[{"type":"function_call_output","call_id":"c"}]})",
       "input[0].output"},
      {R"({"model":"m","input":"x","tools":[{"type":"function"}]})", "tools[0].name"},
      {R"({"model":"m","input":"x","tools":{}})", "tools"},
      {R"({"model":"m","input":"x","tool_choice":"sometimes"})", "tool_choice"},
      {R"({"model":"m","input":"x","max_output_tokens":0})", "max_output_tokens"},
      {R"({"model":"m","input":"x","temperature":"hot"})", "temperature"},
      {R"({"model":"m","input":"x","text":{"format":{"type":"xml"}}})", "text.format.type"},
  };
  for (const auto& r : rows) {
    auto got = parse_request(r.body, {});
    ASSERT_FALSE(got) << r.body;
    EXPECT_EQ(got.error().code, errc::invalid_request) << r.body;
    EXPECT_EQ(got.error().param, r.param) << r.body << ": " << got.error().message;
  }
  EXPECT_FALSE(parse_request("not json", {}));
  EXPECT_FALSE(parse_request("[]", {}));
}

TEST(ResponsesParse, InputItemsCountAgainstTheMessageLimit) {
  auto r = parse_request(R"({"model":"m","input":[{"role":"user","content":"a"},)"
                         R"({"role":"assistant","content":"b"},{"role":"user","content":"c"}]})",
                         {.max_messages = 2});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().param, "input");
}

TEST(ResponsesParse, WhatOnlyOpenAICanServeIsRefusedElsewhereWithTheReason) {
  struct row {
    const char* extra;  // members added to a valid body
    const char* param;
    const char* says;
  };
  const row rows[] = {
      {R"("previous_response_id":"resp_1")", "previous_response_id", "input items"},
      {R"("conversation":"conv_1")", "conversation", "input items"},
      {R"("background":true)", "background", "background"},
      {R"("prompt":{"id":"pmpt_1"})", "prompt", "prompt templates"},
      {R"("tools":[{"type":"web_search"}])", "tools[0].type", "web_search"},
      {R"("tools":[{"type":"function","name":"f"},{"type":"file_search","vector_store_ids":[]}])",
       "tools[1].type", "file_search"},
      {R"("tool_choice":{"type":"web_search_preview"})", "tool_choice", "web_search_preview"},
      {R"("include":["file_search_call.results"])", "include", "file_search_call.results"},
      {R"("input":[{"type":"item_reference","id":"msg_1"}])", "input[0]", "item_reference"},
      {R"("input":[{"type":"web_search_call","id":"ws_1","status":"completed"}])", "input[0].type",
       "web_search_call"},
      {R"("input":[{"role":"user","content":[{"type":"input_file","file_id":"file_1"}]}])",
       "input[0].content[0].type", "input_file"},
      {R"("input":[{"role":"user","content":[{"type":"input_image","file_id":"file_1"}]}])",
       "input[0].content[0].file_id", "file_id"},
  };
  const auto cfg = sample();
  for (const auto& row : rows) {
    std::string body = R"({"model":"ib/x",)" + std::string(row.extra);
    if (std::string(row.extra).find("\"input\"") == std::string::npos) {
      body += R"(,"input":"hi")";
    }
    body += "}";
    auto r = parse(body);
    ASSERT_TRUE(r.responses_facts) << body;
    const auto& f = *r.responses_facts;
    EXPECT_EQ(f.openai_only_param, row.param) << body;
    EXPECT_NE(f.openai_only.find(row.says), std::string::npos) << f.openai_only;
    EXPECT_NE(f.openai_only.find("openai/"), std::string::npos) << f.openai_only;
    EXPECT_TRUE(r.body.empty());
    EXPECT_EQ(r.native_body, body);
    // Another provider cannot take it (the walk records `unsupported`); OpenAI gets it as sent.
    auto other = encode_request(*cfg.find_provider("anthropic"), r, "claude", "k");
    ASSERT_FALSE(other);
    EXPECT_EQ(other.error().code, errc::invalid_request);
    EXPECT_EQ(other.error().message, f.openai_only);
    auto native = encode_request(*cfg.find_provider("openai"), r, "gpt-x", "k");
    ASSERT_TRUE(native) << native.error().message;
    EXPECT_EQ(native->target, "/v1/responses");
  }
  // Reasoning items and message.output_text.logprobs need nothing of OpenAI's.
  auto fine =
      parse(R"({"model":"m","include":["message.output_text.logprobs"],"input":[)"
            R"({"type":"reasoning","id":"rs_1","summary":[]},{"role":"user","content":"x"}]})");
  EXPECT_TRUE(fine.responses_facts->openai_only.empty());
}

TEST(ResponsesEncode, NativeForwardChangesOnlyTheModel) {
  const auto cfg = sample();
  const std::string body = R"({ "input" : "h\u00e9", "model":"openai/gpt-x", "store": true })";
  auto r = parse(body);
  auto up = encode_request(*cfg.find_provider("openai"), r, "gpt-x-2026", "sk-1");
  ASSERT_TRUE(up);
  EXPECT_EQ(up->target, "/v1/responses");
  EXPECT_EQ(up->body, R"({ "input" : "h\u00e9", "model":"gpt-x-2026", "store": true })");
  // Groq speaks chat completions: it gets the chat form.
  auto groq = encode_request(*cfg.find_provider("groq"), r, "llama", "k");
  ASSERT_TRUE(groq);
  EXPECT_EQ(groq->target, "/openai/v1/chat/completions");
  EXPECT_NE(groq->body.find(R"("messages":[{"role":"user","content":"hé"}])"), std::string::npos)
      << groq->body;
  EXPECT_EQ(groq->body.find("store"), std::string::npos);
}

// -- a chat completion as a Response --------------------------------------------------------------

TEST(ResponsesFromChat, TextAnswerWithUsageAndEchoedFields) {
  auto req = parse(R"({"model":"m","input":"x","store":true,"temperature":0.3,)"
                   R"("instructions":"Be brief.","metadata":{"a":"b"}})");
  const auto out = from_chat_completion(
      req, R"({"id":"chatcmpl-1","object":"chat.completion","created":1700000000,)"
           R"("model":"llama-3","choices":[{"index":0,"message":{"role":"assistant",)"
           R"("content":"Hello!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,)"
           R"("completion_tokens":3,"total_tokens":13,"prompt_tokens_details":)"
           R"({"cached_tokens":4},"completion_tokens_details":{"reasoning_tokens":1}}})");
  auto d = json_of(out);
  EXPECT_STREQ(d["id"].GetString(), "resp_1");
  EXPECT_STREQ(d["object"].GetString(), "response");
  EXPECT_EQ(d["created_at"].GetInt64(), 1700000000);
  EXPECT_STREQ(d["status"].GetString(), "completed");
  EXPECT_STREQ(d["model"].GetString(), "llama-3");
  EXPECT_FALSE(d["store"].GetBool());  // whatever the request said
  EXPECT_TRUE(d["error"].IsNull());
  EXPECT_TRUE(d["incomplete_details"].IsNull());
  EXPECT_STREQ(d["instructions"].GetString(), "Be brief.");
  EXPECT_EQ(d["temperature"].GetDouble(), 0.3);
  EXPECT_EQ(d["top_p"].GetDouble(), 1.0);
  EXPECT_STREQ(d["metadata"]["a"].GetString(), "b");
  EXPECT_STREQ(d["tool_choice"].GetString(), "auto");
  EXPECT_TRUE(d["tools"].IsArray());
  EXPECT_STREQ(d["text"]["format"]["type"].GetString(), "text");
  ASSERT_EQ(d["output"].Size(), 1u);
  const auto& msg = d["output"][0];
  EXPECT_STREQ(msg["type"].GetString(), "message");
  EXPECT_STREQ(msg["id"].GetString(), "msg_1");
  EXPECT_STREQ(msg["status"].GetString(), "completed");
  EXPECT_STREQ(msg["role"].GetString(), "assistant");
  EXPECT_STREQ(msg["content"][0]["type"].GetString(), "output_text");
  EXPECT_STREQ(msg["content"][0]["text"].GetString(), "Hello!");
  EXPECT_TRUE(msg["content"][0]["annotations"].IsArray());
  const auto& u = d["usage"];
  EXPECT_EQ(u["input_tokens"].GetInt(), 10);
  EXPECT_EQ(u["input_tokens_details"]["cached_tokens"].GetInt(), 4);
  EXPECT_EQ(u["output_tokens"].GetInt(), 3);
  EXPECT_EQ(u["output_tokens_details"]["reasoning_tokens"].GetInt(), 1);
  EXPECT_EQ(u["total_tokens"].GetInt(), 13);
}

TEST(ResponsesFromChat, ToolCallsBecomeFunctionCallItemsAndLengthIsIncomplete) {
  auto req = parse(R"({"model":"m","input":"x","tools":[{"type":"function","name":"f"}]})");
  auto d = json_of(from_chat_completion(
      req,
      R"({"id":"c-2","created":1,"model":"m","choices":[{"index":0,"message":{"role":)"
      R"("assistant","content":null,"tool_calls":[{"id":"call_a","type":"function",)"
      R"("function":{"name":"f","arguments":"{\"x\":1}"}},{"id":"call_b","type":)"
      R"("function","function":{"name":"f","arguments":""}}]},"finish_reason":"tool_calls"}]})"));
  EXPECT_STREQ(d["status"].GetString(), "completed");
  ASSERT_EQ(d["output"].Size(), 2u);
  EXPECT_STREQ(d["output"][0]["type"].GetString(), "function_call");
  EXPECT_STREQ(d["output"][0]["id"].GetString(), "fc_call_a");
  EXPECT_STREQ(d["output"][0]["call_id"].GetString(), "call_a");
  EXPECT_STREQ(d["output"][0]["name"].GetString(), "f");
  EXPECT_STREQ(d["output"][0]["arguments"].GetString(), R"({"x":1})");
  EXPECT_STREQ(d["output"][0]["status"].GetString(), "completed");
  EXPECT_STREQ(d["output"][1]["arguments"].GetString(), "{}");
  EXPECT_STREQ(d["tools"][0]["name"].GetString(), "f");  // echoed in the Responses shape
  EXPECT_TRUE(d["usage"].IsNull());

  auto cut = json_of(from_chat_completion(
      req, R"({"id":"c","choices":[{"index":0,"message":{"role":"assistant","content":"Once"},)"
           R"("finish_reason":"length"}]})"));
  EXPECT_STREQ(cut["status"].GetString(), "incomplete");
  EXPECT_STREQ(cut["incomplete_details"]["reason"].GetString(), "max_output_tokens");
  EXPECT_STREQ(cut["output"][0]["status"].GetString(), "incomplete");

  auto refused = json_of(from_chat_completion(
      req, R"({"id":"c","choices":[{"index":0,"message":{"role":"assistant","content":null,)"
           R"("refusal":"I can't."},"finish_reason":"stop"}]})"));
  EXPECT_STREQ(refused["output"][0]["content"][0]["type"].GetString(), "refusal");
  EXPECT_STREQ(refused["output"][0]["content"][0]["refusal"].GetString(), "I can't.");
}

// -- streams
// ---------------------------------------------------------------------------------------

struct event {
  std::string name;
  rapidjson::Document data;
};

std::vector<event> events_of(std::string_view sse) {
  std::vector<event> out;
  sse_parser p;
  p.feed(sse, [&](const sse_event& ev) {
    event e;
    e.name = ev.event;
    e.data.Parse(ev.data.data(), ev.data.size());
    EXPECT_FALSE(e.data.HasParseError()) << ev.data;
    out.push_back(std::move(e));
  });
  return out;
}

std::vector<std::string> types_of(const std::vector<event>& evs) {
  std::vector<std::string> out;
  for (const auto& e : evs) {
    out.push_back(e.name);
    EXPECT_EQ(e.name, e.data["type"].GetString());
  }
  return out;
}

/// Feeds `pieces` one after another, as the provider actor does (one stream_output, bytes
/// cleared between feeds); returns everything written and the last state.
std::string run(stream_translator& t, const std::vector<std::string>& pieces, stream_output& out,
                std::vector<bool>* content_after = nullptr) {
  std::string all;
  for (const auto& piece : pieces) {
    out.client_bytes.clear();
    t.feed(piece, out);
    all += out.client_bytes;
    if (content_after != nullptr) {
      content_after->push_back(out.content);
    }
    if (out.done || out.failure) {
      return all;
    }
  }
  out.client_bytes.clear();
  t.finish(out);
  all += out.client_bytes;
  return all;
}

std::string chunk(std::string_view delta, std::string_view finish = "null") {
  return R"(data: {"id":"chatcmpl-9","object":"chat.completion.chunk","created":1700000001,)"
         R"("model":"llama-3","choices":[{"index":0,"delta":)"
         + std::string(delta) + R"(,"finish_reason":)" + std::string(finish) + "}]}\n\n";
}

TEST(ResponsesStream, ChatTextStreamBecomesTheEventSequence) {
  const auto cfg = sample();
  auto req = parse(R"({"model":"m","input":"x","stream":true})");
  const auto& p = *cfg.find_provider("groq");
  auto t = make_stream_translator(p, req, "llama-3");  // the dispatch wraps the chat translator
  stream_output out;
  std::vector<bool> content;
  const auto text =
      run(*t,
          {chunk(R"({"role":"assistant","content":""})"), chunk(R"({"content":"Hel"})"),
           chunk(R"({"content":"lo"})"), chunk("{}", R"("stop")"),
           R"(data: {"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,)"
           R"("model":"llama-3","choices":[],"usage":{"prompt_tokens":5,)"
           R"("completion_tokens":2,"total_tokens":7}})"
           "\n\ndata: [DONE]\n\n"},
          out, &content);
  EXPECT_EQ(content, (std::vector<bool>{false, true, true, true, true}));
  EXPECT_TRUE(out.done);
  EXPECT_FALSE(out.failure);
  ASSERT_TRUE(out.tokens);
  EXPECT_EQ(out.tokens->total_tokens, 7);
  auto evs = events_of(text);
  EXPECT_EQ(types_of(evs),
            (std::vector<std::string>{"response.created", "response.in_progress",
                                      "response.output_item.added", "response.content_part.added",
                                      "response.output_text.delta", "response.output_text.delta",
                                      "response.output_text.done", "response.content_part.done",
                                      "response.output_item.done", "response.completed"}));
  for (std::size_t i = 0; i < evs.size(); ++i) {
    EXPECT_EQ(evs[i].data["sequence_number"].GetInt64(), static_cast<std::int64_t>(i));
  }
  EXPECT_STREQ(evs[0].data["response"]["status"].GetString(), "in_progress");
  EXPECT_STREQ(evs[0].data["response"]["id"].GetString(), "resp_9");
  EXPECT_EQ(evs[0].data["response"]["output"].Size(), 0u);
  EXPECT_STREQ(evs[2].data["item"]["type"].GetString(), "message");
  EXPECT_STREQ(evs[4].data["delta"].GetString(), "Hel");
  EXPECT_STREQ(evs[4].data["item_id"].GetString(), "msg_9");
  EXPECT_EQ(evs[4].data["output_index"].GetInt(), 0);
  EXPECT_EQ(evs[4].data["content_index"].GetInt(), 0);
  EXPECT_STREQ(evs[6].data["text"].GetString(), "Hello");
  const auto& done = evs.back().data["response"];
  EXPECT_STREQ(done["status"].GetString(), "completed");
  EXPECT_FALSE(done["store"].GetBool());
  EXPECT_STREQ(done["output"][0]["content"][0]["text"].GetString(), "Hello");
  EXPECT_EQ(done["usage"]["input_tokens"].GetInt(), 5);
  EXPECT_EQ(done["usage"]["output_tokens"].GetInt(), 2);
  EXPECT_EQ(done["usage"]["total_tokens"].GetInt(), 7);
}

TEST(ResponsesStream, ChatToolCallStreamBecomesFunctionCallEvents) {
  const auto cfg = sample();
  auto req = parse(R"({"model":"m","input":"x","stream":true,)"
                   R"("tools":[{"type":"function","name":"get_weather"}]})");
  auto t = make_stream_translator(*cfg.find_provider("groq"), req, "llama-3");
  stream_output out;
  const auto text =
      run(*t,
          {chunk(R"({"role":"assistant","content":null})"),
           chunk(R"({"tool_calls":[{"index":0,"id":"call_1","type":"function","function":)"
                 R"({"name":"get_weather","arguments":""}}]})"),
           chunk(R"({"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]})"),
           chunk(R"({"tool_calls":[{"index":0,"function":{"arguments":"\"Pune\"}"}}]})"),
           chunk("{}", R"("tool_calls")"), "data: [DONE]\n\n"},
          out);
  EXPECT_TRUE(out.done);
  auto evs = events_of(text);
  EXPECT_EQ(types_of(evs),
            (std::vector<std::string>{
                "response.created", "response.in_progress", "response.output_item.added",
                "response.function_call_arguments.delta", "response.function_call_arguments.delta",
                "response.function_call_arguments.done", "response.output_item.done",
                "response.completed"}));
  EXPECT_STREQ(evs[2].data["item"]["type"].GetString(), "function_call");
  EXPECT_STREQ(evs[2].data["item"]["call_id"].GetString(), "call_1");
  EXPECT_STREQ(evs[2].data["item"]["name"].GetString(), "get_weather");
  EXPECT_STREQ(evs[2].data["item"]["arguments"].GetString(), "");
  EXPECT_STREQ(evs[5].data["arguments"].GetString(), R"({"city":"Pune"})");
  const auto& item = evs.back().data["response"]["output"][0];
  EXPECT_STREQ(item["arguments"].GetString(), R"({"city":"Pune"})");
  EXPECT_STREQ(item["status"].GetString(), "completed");
}

TEST(ResponsesStream, TextThenAToolCallAreTwoOutputItemsInOrder) {
  const auto cfg = sample();
  auto req = parse(R"({"model":"m","input":"x","stream":true,)"
                   R"("tools":[{"type":"function","name":"f"}]})");
  auto t = make_stream_translator(*cfg.find_provider("groq"), req, "llama-3");
  stream_output out;
  const auto text =
      run(*t,
          {chunk(R"({"role":"assistant","content":"Checking."})"),
           chunk(R"({"tool_calls":[{"index":0,"id":"call_9","type":"function","function":)"
                 R"({"name":"f","arguments":"{}"}}]})"),
           chunk("{}", R"("tool_calls")"), "data: [DONE]\n\n"},
          out);
  EXPECT_TRUE(out.done);
  auto evs = events_of(text);
  EXPECT_EQ(
      types_of(evs),
      (std::vector<std::string>{
          "response.created", "response.in_progress", "response.output_item.added",
          "response.content_part.added", "response.output_text.delta", "response.output_text.done",
          "response.content_part.done", "response.output_item.done", "response.output_item.added",
          "response.function_call_arguments.delta", "response.function_call_arguments.done",
          "response.output_item.done", "response.completed"}));
  EXPECT_EQ(evs[8].data["output_index"].GetInt(), 1);
  EXPECT_EQ(evs[9].data["output_index"].GetInt(), 1);
  const auto& output = evs.back().data["response"]["output"];
  ASSERT_EQ(output.Size(), 2u);
  EXPECT_STREQ(output[0]["content"][0]["text"].GetString(), "Checking.");
  EXPECT_STREQ(output[1]["call_id"].GetString(), "call_9");
  EXPECT_STREQ(output[1]["arguments"].GetString(), "{}");
}

TEST(ResponsesStream, AnthropicStreamThroughItsTranslator) {
  const auto cfg = sample();
  auto req = parse(R"({"model":"m","input":"x","stream":true,"max_output_tokens":5})");
  auto t = make_stream_translator(*cfg.find_provider("anthropic"), req, "claude-haiku-4-5");
  stream_output out;
  const auto text =
      run(*t,
          {"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01\","
           "\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-haiku-4-5\",\"content\":"
           "[],\"stop_reason\":null,\"usage\":{\"input_tokens\":9,\"output_tokens\":1}}}\n\n",
           "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
           "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
           "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
           "\"delta\":{\"type\":\"text_delta\",\"text\":\"Once upon\"}}\n\n",
           "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
           "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
           "\"max_tokens\"},\"usage\":{\"output_tokens\":5}}\n\n",
           "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"},
          out);
  EXPECT_TRUE(out.done) << text;
  EXPECT_TRUE(out.content);
  auto evs = events_of(text);
  ASSERT_FALSE(evs.empty());
  EXPECT_EQ(evs.front().name, "response.created");
  EXPECT_EQ(evs.back().name, "response.incomplete");
  const auto& r = evs.back().data["response"];
  EXPECT_STREQ(r["status"].GetString(), "incomplete");
  EXPECT_STREQ(r["incomplete_details"]["reason"].GetString(), "max_output_tokens");
  EXPECT_STREQ(r["output"][0]["content"][0]["text"].GetString(), "Once upon");
  EXPECT_EQ(r["usage"]["input_tokens"].GetInt(), 9);
  EXPECT_EQ(r["usage"]["output_tokens"].GetInt(), 5);
}

TEST(ResponsesStream, AFailureOfTheChatStreamIsPassedOnAndNothingFollows) {
  const auto cfg = sample();
  auto req = parse(R"({"model":"m","input":"x","stream":true})");
  auto t = make_stream_translator(*cfg.find_provider("groq"), req, "llama-3");
  stream_output out;
  const auto text =
      run(*t, {chunk(R"({"role":"assistant","content":""})"), chunk(R"({"content":"Hi"})")}, out);
  ASSERT_TRUE(out.failure);  // truncated: no [DONE]
  EXPECT_FALSE(out.done);
  EXPECT_EQ(text.find("response.completed"), std::string::npos);
}

TEST(ResponsesNative, EventsPassThroughByteForByte) {
  const auto cfg = sample();
  auto req = parse(R"({"model":"openai/gpt-x","input":"x","stream":true})");
  auto t = make_stream_translator(*cfg.find_provider("openai"), req, "gpt-x");
  const std::string created =
      "event: response.created\r\ndata: {\"type\":\"response.created\",\"response\":{\"id\":"
      "\"resp_1\",\"model\":\"gpt-x-2026\",\"status\":\"in_progress\",\"output\":[]},"
      "\"sequence_number\":0}\r\n\r\n";
  const std::string keepalive = ": keep-alive\n\n";
  const std::string delta =
      "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\","
      "\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"Hi\","
      "\"sequence_number\":1}\n\n";
  const std::string completed =
      "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":"
      "\"resp_1\",\"model\":\"gpt-x-2026\",\"status\":\"completed\",\"output\":[],\"usage\":"
      "{\"input_tokens\":3,\"input_tokens_details\":{\"cached_tokens\":1},\"output_tokens\":2,"
      "\"total_tokens\":5}},\"sequence_number\":2}\n\n";
  const std::string all = created + keepalive + delta + completed;
  // Split in awkward places: inside the CRLF, inside a JSON string.
  stream_output out;
  std::vector<bool> content;
  const auto text = run(*t,
                        {all.substr(0, 70), all.substr(70, created.size() - 71),
                         all.substr(created.size() - 1, keepalive.size() + 40),
                         all.substr(created.size() - 1 + keepalive.size() + 40)},
                        out, &content);
  EXPECT_EQ(text, all);
  EXPECT_EQ(content,
            (std::vector<bool>{false, false, false, true}));  // the delta ends in the last piece
  EXPECT_TRUE(out.done);
  EXPECT_EQ(out.model, "gpt-x-2026");
  ASSERT_TRUE(out.tokens);
  EXPECT_EQ(out.tokens->prompt_tokens, 3);
  EXPECT_EQ(out.tokens->cached_tokens, 1);
  EXPECT_EQ(out.tokens->completion_tokens, 2);
  EXPECT_EQ(out.tokens->total_tokens, 5);
}

TEST(ResponsesNative, FunctionCallItemCommitsAndFailuresAreDetected) {
  const auto cfg = sample();
  auto req = parse(R"({"model":"openai/gpt-x","input":"x","stream":true})");
  const auto& p = *cfg.find_provider("openai");
  const std::string created =
      "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{}}\n\n";
  {
    auto t = make_stream_translator(p, req, "gpt-x");
    stream_output out;
    run(*t,
        {created,
         "event: response.output_item.added\ndata: {\"type\":\"response.output_item.added\","
         "\"item\":{\"type\":\"function_call\"}}\n\n"},
        out);
    EXPECT_TRUE(out.content);
    ASSERT_TRUE(out.failure);  // then it ended without a terminal event
    EXPECT_EQ(out.failure->result, outcome::bad_response);
  }
  {
    auto t = make_stream_translator(p, req, "gpt-x");
    stream_output out;
    const auto text = run(*t,
                          {created,
                           "event: error\ndata: {\"type\":\"error\",\"code\":\"server_error\","
                           "\"message\":\"boom\",\"param\":null}\n\n"},
                          out);
    ASSERT_TRUE(out.failure);
    EXPECT_EQ(out.failure->result, outcome::server_error);
    EXPECT_NE(out.failure->envelope.find("boom"), std::string::npos);
    EXPECT_EQ(text, created);  // the error event itself is not passed on
  }
  {
    auto t = make_stream_translator(p, req, "gpt-x");
    stream_output out;
    run(*t,
        {created,
         "event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":"
         "{\"status\":\"failed\",\"error\":{\"code\":\"server_error\",\"message\":"
         "\"model crashed\"}}}\n\n"},
        out);
    ASSERT_TRUE(out.failure);
    EXPECT_NE(out.failure->envelope.find("model crashed"), std::string::npos);
  }
  {
    auto t = make_stream_translator(p, req, "gpt-x");
    stream_output out;
    run(*t, {created, "event: response.output_text.delta\ndata: {\"type\":"}, out);
    ASSERT_TRUE(out.failure);
    EXPECT_EQ(out.failure->result, outcome::bad_response);
  }
}

TEST(ResponsesNative, DecodePassesAResponseThroughAndMapsErrors) {
  const auto cfg = sample();
  const auto& p = *cfg.find_provider("openai");
  auto req = parse(R"({"model":"openai/gpt-x","input":"x"})");
  const std::string body = R"({"id":"resp_1","object":"response","status":"completed",)"
                           R"("model":"gpt-x-2026","output":[],"usage":{"input_tokens":4,)"
                           R"("output_tokens":6,"total_tokens":10}})";
  auto d = decode_response(p, req, "gpt-x", {200, "application/json", body});
  EXPECT_EQ(d.result, outcome::success);
  EXPECT_TRUE(d.body_is_input);
  EXPECT_EQ(d.model, "gpt-x-2026");
  ASSERT_TRUE(d.tokens);
  EXPECT_EQ(d.tokens->prompt_tokens, 4);
  EXPECT_EQ(d.tokens->completion_tokens, 6);
  for (const char* bad : {"{}", "[]", "nope", R"({"object":"chat.completion"})"}) {
    EXPECT_EQ(decode_response(p, req, "gpt-x", {200, "application/json", bad}).result,
              outcome::bad_response)
        << bad;
  }
  auto failed = decode_response(
      p, req, "gpt-x",
      {200, "application/json",
       R"({"object":"response","status":"failed","error":{"code":"server_error","message":"x"}})"});
  EXPECT_EQ(failed.result, outcome::server_error);
  auto busy = decode_response(p, req, "gpt-x",
                              {503, "application/json", R"({"error":{"message":"busy"}})"});
  EXPECT_EQ(busy.result, outcome::server_error);
  auto rejected =
      decode_response(p, req, "gpt-x",
                      {400, "application/json",
                       R"({"error":{"message":"No response found","type":"invalid_request_error",)"
                       R"("param":"previous_response_id","code":"previous_response_not_found"}})"});
  EXPECT_EQ(rejected.result, outcome::request_rejected);
  EXPECT_EQ(rejected.status, 400);
  EXPECT_NE(rejected.body.find("previous_response_not_found"), std::string::npos);
}

TEST(ResponsesStream, TheErrorEventMakesTheSdkRaise) {
  stream_failure f;
  f.envelope = envelope("upstream stream ended before completion", "upstream_error", "", "");
  const auto ev = responses::stream_error_event(f);
  auto evs = events_of(ev);
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0].name, "error");
  const auto& d = evs[0].data;
  EXPECT_STREQ(d["type"].GetString(), "error");
  EXPECT_STREQ(d["message"].GetString(), "upstream stream ended before completion");
  EXPECT_STREQ(d["code"].GetString(), "upstream_error");
  ASSERT_TRUE(d.HasMember("error"));  // openai-node raises APIError when data.error is set
  EXPECT_STREQ(d["error"]["message"].GetString(), "upstream stream ended before completion");
  EXPECT_STREQ(d["error"]["type"].GetString(), "upstream_error");
}

}  // namespace
}  // namespace ib::providers::responses
