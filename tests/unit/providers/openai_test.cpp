#include "providers/openai.hpp"

#include <fstream>
#include <iterator>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "providers/adapter.hpp"
#include "providers/chat_request.hpp"

namespace ib::providers {
namespace {

// -- helpers --------------------------------------------------------------------------------------

std::string fixture(std::string_view name) {
  std::ifstream in(std::string(IB_TEST_DATA_DIR) + "/providers/" + std::string(name),
                   std::ios::binary);
  EXPECT_TRUE(in.good()) << name;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

config::provider_config provider(std::string name,
                                 config::auth_style auth = config::auth_style::bearer,
                                 std::string path = "/v1") {
  config::provider_config p;
  p.name = std::move(name);
  p.auth = auth;
  p.endpoint.path = std::move(path);
  return p;
}

chat_request request(std::string body) {
  auto r = parse_chat_request(std::move(body));
  EXPECT_TRUE(r) << (r ? "" : r.error().message);
  return r ? std::move(*r) : chat_request{};
}

std::string body_for(std::string_view provider_name, std::string body,
                     std::string_view model = "up-model") {
  auto req = request(std::move(body));
  auto out = openai::encode_body(find_dialect(provider_name), req, model);
  EXPECT_TRUE(out) << (out ? "" : out.error().message);
  return out ? *out : std::string();
}

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  for (std::size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos)) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
  return s;
}

const std::string rich_request =
    R"({"model":"ib/cheap","messages":[{"role":"developer","content":"Be brief."},)"
    R"({"role":"user","name":"ann","content":"Hi"},)"
    R"({"role":"assistant","content":"Yo","reasoning_content":"hmm"}],)"
    R"("max_completion_tokens":100,"store":true,"metadata":{"a":"b"},"temperature":0.2,)"
    R"("stream":true})";

// -- encoding -------------------------------------------------------------------------------------

TEST(OpenAiEncode, OpenAiIsPassThroughWithModelPatchedAndUsageForced) {
  EXPECT_EQ(body_for("openai", rich_request, "gpt-4o-mini"),
            R"({"model":"gpt-4o-mini","messages":[{"role":"developer","content":"Be brief."},)"
            R"({"role":"user","name":"ann","content":"Hi"},)"
            R"({"role":"assistant","content":"Yo","reasoning_content":"hmm"}],)"
            R"("max_completion_tokens":100,"store":true,"metadata":{"a":"b"},"temperature":0.2,)"
            R"("stream":true,"stream_options":{"include_usage":true}})");
}

TEST(OpenAiEncode, GroqRewrites) {
  EXPECT_EQ(body_for("groq", rich_request, "openai/gpt-oss-20b"),
            R"({"model":"openai/gpt-oss-20b","messages":[{"role":"system","content":"Be brief."},)"
            R"({"role":"user","content":"Hi"},)"
            R"({"role":"assistant","content":"Yo"}],)"
            R"("max_tokens":100,"temperature":0.2,"stream":true,)"
            R"("stream_options":{"include_usage":true}})");
}

TEST(OpenAiEncode, DeepSeekRewrites) {
  EXPECT_EQ(body_for("deepseek", rich_request, "deepseek-v4-pro"),
            R"({"model":"deepseek-v4-pro","messages":[{"role":"system","content":"Be brief."},)"
            R"({"role":"user","name":"ann","content":"Hi"},)"
            R"({"role":"assistant","content":"Yo","reasoning_content":"hmm"}],)"
            R"("max_tokens":100,"temperature":0.2,"stream":true,)"
            R"("stream_options":{"include_usage":true}})");
}

// providers.md §3 / api-docs.deepseek.com guides/thinking_mode (checked 2026-11-30): in a
// thinking-mode tool loop the assistant turn's reasoning_content must go back unchanged, or
// DeepSeek answers 400.
const std::string deepseek_tool_loop =
    "{\"model\":\"ib/cheap\",\"messages\":["
    "{\"role\":\"user\",\"content\":\"Weather in Pune tomorrow?\"},"
    "{\"role\":\"assistant\",\"content\":null,"
    "\"reasoning_content\":\"I need the date first.\\n\\u0926\\u093f\\u0928 \\\"x\\\" "
    "\xE0\xA4\xA8\","
    "\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\","
    "\"function\":{\"name\":\"get_date\",\"arguments\":\"{}\"}}]},"
    "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"2026-12-01\"}],"
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_date\"}}],"
    "\"stream\":false}";

TEST(OpenAiEncode, DeepSeekToolLoopKeepsReasoningContentByteForByte) {
  const std::string out = body_for("deepseek", deepseek_tool_loop, "deepseek-v4-pro");
  const chat_request req = request(deepseek_tool_loop);
  const auto messages = req.raw_value("messages");
  ASSERT_TRUE(messages);
  EXPECT_NE(out.find("\"messages\":" + std::string(*messages)), std::string::npos) << out;
  EXPECT_EQ(out, replace_all(deepseek_tool_loop, "\"model\":\"ib/cheap\"",
                             "\"model\":\"deepseek-v4-pro\""));
}

TEST(OpenAiEncode, DeepSeekToolLoopKeepsReasoningContentThroughADeveloperRewrite) {
  // A developer message forces the messages to be rebuilt; reasoning_content must survive that
  // too (same text, escapes normalised by the JSON writer).
  std::string body = deepseek_tool_loop;
  body = replace_all(body, "\"messages\":[",
                     "\"messages\":[{\"role\":\"developer\",\"content\":\"Be brief.\"},");
  const std::string out = body_for("deepseek", body, "deepseek-v4-pro");
  rapidjson::Document doc;
  doc.Parse(out.data(), out.size());
  ASSERT_FALSE(doc.HasParseError()) << out;
  const auto& msgs = doc["messages"];
  EXPECT_EQ(std::string(msgs[0]["role"].GetString()), "system");
  ASSERT_TRUE(msgs[2].HasMember("reasoning_content")) << out;
  EXPECT_EQ(std::string(msgs[2]["reasoning_content"].GetString()),
            "I need the date first.\n\xE0\xA4\xA6\xE0\xA4\xBF\xE0\xA4\xA8 \"x\" \xE0\xA4\xA8");
}

TEST(OpenAiEncode, ReasoningContentPerDialect) {
  // Groq rejects the field (400 "property 'reasoning_content' is unsupported"); the others get
  // it unchanged (checked 2026-11-30, see providers/dialect.cpp).
  const std::string groq = body_for("groq", deepseek_tool_loop, "openai/gpt-oss-20b");
  EXPECT_EQ(groq.find("reasoning_content"), std::string::npos) << groq;
  EXPECT_NE(groq.find("\"tool_calls\":[{\"id\":\"call_1\""), std::string::npos) << groq;
  for (const char* kept : {"openai", "deepseek", "together", "sarvam", "my-vllm"}) {
    const std::string out = body_for(kept, deepseek_tool_loop, "m");
    EXPECT_EQ(out, replace_all(deepseek_tool_loop, "\"model\":\"ib/cheap\"", "\"model\":\"m\""))
        << kept;
  }
}

TEST(OpenAiEncode, TogetherRewrites) {
  EXPECT_EQ(body_for("together", rich_request, "meta-llama/Llama-3.3-70B-Instruct-Turbo"),
            R"({"model":"meta-llama/Llama-3.3-70B-Instruct-Turbo","messages":[)"
            R"({"role":"system","content":"Be brief."},)"
            R"({"role":"user","name":"ann","content":"Hi"},)"
            R"({"role":"assistant","content":"Yo","reasoning_content":"hmm"}],)"
            R"("max_tokens":100,"temperature":0.2,"stream":true,)"
            R"("stream_options":{"include_usage":true}})");
}

TEST(OpenAiEncode, SarvamNeverSendsStreamOptions) {
  std::string body = rich_request;
  body.pop_back();
  body += R"(,"stream_options":{"include_usage":true}})";
  EXPECT_EQ(body_for("sarvam", body, "sarvam-30b"),
            R"({"model":"sarvam-30b","messages":[{"role":"system","content":"Be brief."},)"
            R"({"role":"user","name":"ann","content":"Hi"},)"
            R"({"role":"assistant","content":"Yo","reasoning_content":"hmm"}],)"
            R"("max_tokens":100,"temperature":0.2,"stream":true})");
}

TEST(OpenAiEncode, GenericDialectKeepsTheClientsStreamOptions) {
  const std::string body =
      R"({"model":"x","messages":[{"role":"user","content":"Hi"}],"stream":true})";
  EXPECT_EQ(body_for("my-vllm", body),
            R"({"model":"up-model","messages":[{"role":"user","content":"Hi"}],"stream":true})");
  const std::string with =
      R"({"model":"x","messages":[{"role":"user","content":"Hi"}],"stream":true,)"
      R"("stream_options":{"include_usage":true}})";
  EXPECT_EQ(body_for("my-vllm", with),
            R"({"model":"up-model","messages":[{"role":"user","content":"Hi"}],"stream":true,)"
            R"("stream_options":{"include_usage":true}})");
}

TEST(OpenAiEncode, NoNestedRewriteCopiesMembersVerbatim) {
  // Whitespace, escapes and key order survive; only `model` changes.
  const std::string body =
      "{ \"messages\" : [ {\"role\":\"user\", \"content\":\"\\u0048i \xE0\xA4\xA8\"} ],\n"
      "  \"mod\\u0065l\":\"ib/cheap\", \"temperature\" : 1e0 }";
  EXPECT_EQ(body_for("groq", body, "m\"q"),
            "{\"messages\" : [ {\"role\":\"user\", \"content\":\"\\u0048i \xE0\xA4\xA8\"} ],"
            "\"model\":\"m\\\"q\",\"temperature\" : 1e0}");
}

TEST(OpenAiEncode, ExistingMaxTokensWins) {
  EXPECT_EQ(body_for("together", R"({"model":"x","messages":[{"role":"user"}],)"
                                 R"("max_completion_tokens":5,"max_tokens":7})"),
            R"({"model":"up-model","messages":[{"role":"user"}],"max_tokens":7})");
}

TEST(OpenAiEncode, StreamOptionsArePatchedKeepingOtherOptions) {
  const std::string body =
      R"({"model":"x","messages":[{"role":"user"}],"stream":true,)"
      R"("stream_options":{"include_obfuscation":false,"include_usage":false}})";
  EXPECT_EQ(body_for("openai", body),
            R"({"model":"up-model","messages":[{"role":"user"}],"stream":true,)"
            R"("stream_options":{"include_obfuscation":false,"include_usage":true}})");
  const std::string no_usage =
      R"({"model":"x","messages":[{"role":"user"}],"stream":true,"stream_options":{}})";
  EXPECT_EQ(body_for("groq", no_usage),
            R"({"model":"up-model","messages":[{"role":"user"}],"stream":true,)"
            R"("stream_options":{"include_usage":true}})");
  const std::string null_options =
      R"({"model":"x","messages":[{"role":"user"}],"stream":true,"stream_options":null})";
  EXPECT_EQ(body_for("deepseek", null_options),
            R"({"model":"up-model","messages":[{"role":"user"}],"stream":true,)"
            R"("stream_options":{"include_usage":true}})");
}

TEST(OpenAiEncode, StreamOptionsWithoutStream) {
  const std::string body =
      R"({"model":"x","messages":[{"role":"user"}],"stream_options":{"include_usage":true}})";
  // OpenAI gets what the client sent (and answers for it); others never see it without a stream.
  EXPECT_EQ(body_for("openai", body), R"({"model":"up-model","messages":[{"role":"user"}],)"
                                      R"("stream_options":{"include_usage":true}})");
  EXPECT_EQ(body_for("groq", body), R"({"model":"up-model","messages":[{"role":"user"}]})");
  // No stream: nothing is forced.
  EXPECT_EQ(body_for("openai", R"({"model":"x","messages":[{"role":"user"}],"stream":false})"),
            R"({"model":"up-model","messages":[{"role":"user"}],"stream":false})");
}

TEST(OpenAiEncode, UnsupportedFieldsAreRefused) {
  auto refuse = [](std::string_view dialect_name, std::string body, std::string_view param) {
    auto req = request(std::move(body));
    auto out = openai::encode_body(find_dialect(dialect_name), req, "m");
    ASSERT_FALSE(out.has_value());
    EXPECT_EQ(out.error().code, errc::invalid_request);
    EXPECT_EQ(out.error().param, param);
    EXPECT_NE(out.error().message.find(dialect_name), std::string::npos);
  };
  refuse("groq", R"({"model":"x","messages":[{"role":"user"}],"logprobs":true})", "logprobs");
  refuse("groq", R"({"model":"x","messages":[{"role":"user"}],"logit_bias":{"1":2}})",
         "logit_bias");
  refuse("groq", R"({"model":"x","messages":[{"role":"user"}],"top_logprobs":2})", "top_logprobs");
  refuse("groq", R"({"model":"x","messages":[{"role":"user"}],"n":2})", "n");
  refuse("deepseek", R"({"model":"x","messages":[{"role":"user"}],"logprobs":true})", "logprobs");
  // Harmless values are dropped instead.
  EXPECT_EQ(body_for("groq", R"({"model":"x","messages":[{"role":"user"}],"logprobs":false,)"
                             R"("logit_bias":null,"n":1})"),
            R"({"model":"up-model","messages":[{"role":"user"}],"n":1})");
  EXPECT_EQ(body_for("openai", R"({"model":"x","messages":[{"role":"user"}],"logprobs":true,)"
                               R"("n":3})"),
            R"({"model":"up-model","messages":[{"role":"user"}],"logprobs":true,"n":3})");
}

TEST(OpenAiEncode, DuplicateModelIsWrittenOnce) {
  EXPECT_EQ(body_for("openai", R"({"model":"a","messages":[{"role":"user"}],"model":"b"})"),
            R"({"model":"up-model","messages":[{"role":"user"}]})");
}

TEST(OpenAiEncode, RequestTargetAndHeaders) {
  auto req = request(R"({"model":"x","messages":[{"role":"user"}],"stream":true})");
  auto r = openai::encode_request(provider("groq", config::auth_style::bearer, "/openai/v1"), req,
                                  "llama", "gsk_secret");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->target, "/openai/v1/chat/completions");
  using header = std::pair<std::string_view, std::string>;
  EXPECT_EQ(r->headers, (std::vector<header>{{"content-type", "application/json"},
                                             {"accept", "text/event-stream"},
                                             {"authorization", "Bearer gsk_secret"}}));

  auto plain = request(R"({"model":"x","messages":[{"role":"user"}]})");
  auto s = openai::encode_request(provider("sarvam", config::auth_style::api_subscription_key),
                                  plain, "sarvam-30b", "sk_1");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->target, "/v1/chat/completions");
  EXPECT_EQ(s->headers, (std::vector<header>{{"content-type", "application/json"},
                                             {"accept", "application/json"},
                                             {"api-subscription-key", "sk_1"}}));
  EXPECT_EQ(openai::auth_header(config::auth_style::x_api_key, "k"), (header{"x-api-key", "k"}));

  auto deepseek = openai::encode_request(provider("deepseek", config::auth_style::bearer, ""),
                                         plain, "deepseek-chat", "sk");
  ASSERT_TRUE(deepseek);
  EXPECT_EQ(deepseek->target, "/chat/completions");

  auto refused = openai::encode_request(
      provider("groq"), request(R"({"model":"x","messages":[{"role":"user"}],"n":4})"), "m", "k");
  EXPECT_FALSE(refused.has_value());
}

TEST(OpenAiEncode, EncodedBodiesStayValidRequests) {
  // What we send must itself parse as a chat request, for every dialect and a range of inputs.
  const std::string bodies[] = {
      rich_request,
      R"({"model":"x","messages":[{"role":"developer","name":"d","content":[{"type":"text","text":"é"}]}],)"
      R"("stream":true,"stream_options":{"include_usage":false},"tools":[{"type":"function"}]})",
      R"({"messages":[{"role":"user","content":"q"}],"model":"x","user":"u","parallel_tool_calls":true})",
  };
  for (const char* d : {"openai", "groq", "deepseek", "together", "sarvam", "custom"}) {
    for (const auto& b : bodies) {
      auto req = request(b);
      auto out = openai::encode_body(find_dialect(d), req, "model-\xC3\xA9");
      ASSERT_TRUE(out) << d;
      auto again = parse_chat_request(*out);
      ASSERT_TRUE(again) << d << ": " << *out;
      EXPECT_EQ(again->model, "model-\xC3\xA9");
      EXPECT_EQ(again->stream, req.stream);
      if (find_dialect(d).developer_to_system) {
        EXPECT_FALSE(again->has_developer_messages) << *out;
      }
    }
  }
}

// -- non-streamed responses -----------------------------------------------------------------------

decoded_response decode(std::string_view provider_name, int status, std::string_view body,
                        std::string_view content_type = "application/json") {
  static const chat_request req = request(R"({"model":"x","messages":[{"role":"user"}]})");
  auto d = openai::decode(provider(std::string(provider_name)), req, "fallback-model",
                          {status, content_type, body});
  if (d.body_is_input) {
    d.body.assign(body);  // what the caller, who owns the upstream bytes, sends on
  }
  return d;
}

TEST(OpenAiDecode, SuccessIsPassedThroughByteIdentical) {
  const std::string body = fixture("openai_response.json");
  auto d = decode("openai", 200, body);
  EXPECT_EQ(d.result, outcome::success);
  EXPECT_EQ(d.status, 200);
  EXPECT_EQ(d.body, body);
  EXPECT_EQ(d.model, "gpt-4o-mini-2024-07-18");
  ASSERT_TRUE(d.tokens.has_value());
  EXPECT_EQ(d.tokens->prompt_tokens, 82);
  EXPECT_EQ(d.tokens->completion_tokens, 17);
  EXPECT_EQ(d.tokens->total_tokens, 99);
  EXPECT_EQ(d.tokens->cached_tokens, 0);
  EXPECT_FALSE(d.long_cooldown);
  // Groq (a mapping dialect) with nothing to map passes it through too.
  EXPECT_EQ(decode("groq", 200, body).body, body);
  // ... without copying it: the caller hands on the bytes it already owns.
  static const chat_request req = request(R"({"model":"x","messages":[{"role":"user"}]})");
  auto raw = openai::decode(provider("openai"), req, "m", {200, "application/json", body});
  EXPECT_TRUE(raw.body_is_input);
  EXPECT_TRUE(raw.body.empty());
}

TEST(OpenAiDecode, LeadingKeepAliveBlankLinesAreNotTheBody) {
  const std::string body =
      R"({"id":"d","model":"deepseek-chat","choices":[{"index":0,)"
      R"("message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],)"
      R"("usage":{"prompt_tokens":10,"completion_tokens":1,"total_tokens":11,)"
      R"("prompt_cache_hit_tokens":8,"prompt_cache_miss_tokens":2}})";
  auto d = decode("deepseek", 200, "\n\n\n" + body);
  EXPECT_EQ(d.result, outcome::success);
  EXPECT_EQ(d.body, body);
  ASSERT_TRUE(d.tokens.has_value());
  EXPECT_EQ(d.tokens->cached_tokens, 8);
}

TEST(OpenAiDecode, TogetherEosIsMappedToStop) {
  const std::string body =
      R"({"id":"t1","object":"chat.completion","created":1732000000,)"
      R"("model":"meta-llama/Llama-3.3-70B-Instruct-Turbo","prompt":[],)"
      R"("choices":[{"finish_reason":"eos","seed":7,"logprobs":null,"index":0,)"
      R"("message":{"role":"assistant","content":"Hi","tool_calls":[]}}],)"
      R"("usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}})";
  auto d = decode("together", 200, body);
  EXPECT_EQ(d.result, outcome::success);
  EXPECT_EQ(d.body, replace_all(body, R"("finish_reason":"eos")", R"("finish_reason":"stop")"));
  EXPECT_EQ(d.model, "meta-llama/Llama-3.3-70B-Instruct-Turbo");
  // OpenAI is never rewritten.
  EXPECT_EQ(decode("openai", 200, body).body, body);
}

/// True when `json` parses with a strict parser (UTF-8 validated).
bool strict_json(std::string_view json) {
  rapidjson::Document d;
  d.Parse<rapidjson::kParseValidateEncodingFlag>(json.data(), json.size());
  return !d.HasParseError();
}

TEST(OpenAiDecode, ARewrittenBodyIsValidUtf8WhateverTheUpstreamSent) {
  // A rewrite (Together's eos) re-serialises the upstream document: its invalid bytes must not
  // reach the client raw (issue 13).
  const std::string body =
      "{\"id\":\"t1\",\"model\":\"m\",\"choices\":[{\"finish_reason\":\"eos\",\"index\":0,"
      "\"message\":{\"role\":\"assistant\",\"content\":\"bad \xFF\xFE end\"}}]}";
  auto d = decode("together", 200, body);
  ASSERT_EQ(d.result, outcome::success);
  EXPECT_TRUE(strict_json(d.body)) << d.body;
  EXPECT_NE(d.body.find("bad \xEF\xBF\xBD\xEF\xBF\xBD end"), std::string::npos);
  EXPECT_NE(d.body.find(R"("finish_reason":"stop")"), std::string::npos);
}

TEST(OpenAiDecode, MissingModelAndUsage) {
  auto d = decode("openai", 200, R"({"choices":[{"index":0,"message":{"content":"x"}}]})");
  EXPECT_EQ(d.result, outcome::success);
  EXPECT_EQ(d.model, "fallback-model");
  EXPECT_FALSE(d.tokens.has_value());
}

TEST(OpenAiDecode, InvalidSuccessBodiesAreBadResponses) {
  const std::string expected = R"({"error":{"message":"upstream returned an invalid response",)"
                               R"("type":"upstream_error","param":null,"code":null}})";
  for (const char* body : {
           "",
           "{\"id\":",
           "[]",
           "\"x\"",
           "<html>ok</html>",
           R"({"id":"x"})",
           R"({"choices":[]})",
           R"({"choices":{}})",
           R"({"error":{"message":"secret upstream detail"},"choices":[{}]})",
           R"({"error":{"message":"secret upstream detail","type":"server_error"}})",
       }) {
    SCOPED_TRACE(body);
    auto d = decode("together", 200, body);
    EXPECT_EQ(d.result, outcome::bad_response);
    EXPECT_EQ(d.status, 502);
    EXPECT_EQ(d.body, expected);
    EXPECT_TRUE(d.model.empty());
  }
}

TEST(OpenAiDecode, ErrorStatuses) {
  auto bad = decode("openai", 400,
                    R"({"error":{"message":"Invalid 'messages'","type":"invalid_request_error",)"
                    R"("param":"messages","code":null}})");
  EXPECT_EQ(bad.result, outcome::request_rejected);
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.body, R"({"error":{"message":"Invalid 'messages'","type":"invalid_request_error",)"
                      R"("param":"messages","code":null}})");

  auto html =
      decode("openai", 502, "<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html");
  EXPECT_EQ(html.result, outcome::server_error);
  EXPECT_EQ(html.status, 502);
  EXPECT_EQ(html.body, R"({"error":{"message":"openai returned HTTP 502","type":"upstream_error",)"
                       R"("param":null,"code":null}})");

  auto empty = decode("together", 413, "", "");
  EXPECT_EQ(empty.result, outcome::request_rejected);
  EXPECT_EQ(empty.status, 413);

  auto together =
      decode("together", 503, "The server is overloaded or not ready yet.", "text/plain");
  EXPECT_EQ(together.result, outcome::server_error);

  auto string_error = decode("together", 404, R"({"error":"model not found"})");
  EXPECT_EQ(string_error.result, outcome::request_rejected);
  EXPECT_NE(string_error.body.find("model not found"), std::string::npos);

  auto flat = decode("together", 500, R"({"message":"boom","type":"server_error"})");
  EXPECT_EQ(flat.result, outcome::server_error);
  EXPECT_EQ(flat.body, R"({"error":{"message":"boom","type":"server_error","param":null,)"
                       R"("code":null}})");

  auto groq =
      decode("groq", 498, R"({"error":{"message":"flex capacity","type":"capacity_exceeded"}})");
  EXPECT_EQ(groq.result, outcome::server_error);
  EXPECT_EQ(decode("groq", 499, "").result, outcome::retryable_status);

  auto deepseek = decode("deepseek", 402,
                         R"({"error":{"message":"Insufficient Balance","type":"unknown_error",)"
                         R"("param":null,"code":"invalid_request_error"}})");
  EXPECT_EQ(deepseek.result, outcome::key_rejected);

  auto sarvam =
      decode("sarvam", 403, R"({"error":{"message":"bad key","code":"invalid_api_key_error"}})");
  EXPECT_EQ(sarvam.result, outcome::key_rejected);
  EXPECT_NE(sarvam.body.find(R"("type":"invalid_api_key_error")"), std::string::npos);

  auto quota = decode("sarvam", 429,
                      R"({"error":{"message":"no credits","code":"insufficient_quota_error"}})");
  EXPECT_EQ(quota.result, outcome::rate_limited);
  EXPECT_TRUE(quota.long_cooldown);
  EXPECT_FALSE(quota.tokens.has_value());
}

TEST(OpenAiDecode, RandomBodiesNeverCrash) {
  const std::string seed = fixture("openai_response.json");
  std::mt19937 rng(2024);
  for (int i = 0; i < 3'000; ++i) {
    std::string body = seed;
    for (int e = 0; e < 3; ++e) {
      std::size_t pos = rng() % body.size();
      if ((rng() % 2) == 0) {
        body[pos] = static_cast<char>(rng());
      } else {
        body.erase(pos, 1 + rng() % 20);
      }
      if (body.empty()) {
        body = "{";
      }
    }
    for (const char* name : {"openai", "together", "deepseek"}) {
      auto d = decode(name, (i % 5) == 0 ? 500 : 200, body);
      ASSERT_FALSE(d.body.empty());
    }
  }
}

// -- streamed responses ---------------------------------------------------------------------------

/// Everything a translator produced over a whole stream.
struct stream_run {
  std::string bytes;
  bool content = false;
  bool done = false;
  std::optional<stream_failure> failure;
  std::optional<ib::usage> tokens;
  std::string model;
};

stream_run run(std::string_view provider_name, std::string_view request_body, std::string_view text,
               const std::vector<std::size_t>& cuts = {}) {
  auto req = request(std::string(request_body));
  auto t = openai::make_translator(provider(std::string(provider_name)), req, "asked-model");
  stream_run r;
  auto absorb = [&](stream_output& out) {
    r.bytes += out.client_bytes;
    r.content = r.content || out.content;
    r.done = r.done || out.done;
    if (out.failure) {
      EXPECT_FALSE(r.failure.has_value()) << "failure reported twice";
      r.failure = out.failure;
    }
    if (out.tokens) {
      r.tokens = out.tokens;
    }
    if (!out.model.empty()) {
      r.model = out.model;
    }
  };
  std::size_t pos = 0;
  for (std::size_t cut : cuts) {
    stream_output out;
    t->feed(text.substr(pos, cut - pos), out);
    absorb(out);
    pos = cut;
  }
  stream_output out;
  t->feed(text.substr(pos), out);
  absorb(out);
  stream_output end;
  t->finish(end);
  absorb(end);
  return r;
}

void expect_same(const stream_run& a, const stream_run& b) {
  EXPECT_EQ(a.bytes, b.bytes);
  EXPECT_EQ(a.content, b.content);
  EXPECT_EQ(a.done, b.done);
  EXPECT_EQ(a.failure.has_value(), b.failure.has_value());
  if (a.failure && b.failure) {
    EXPECT_EQ(a.failure->envelope, b.failure->envelope);
  }
  EXPECT_EQ(a.tokens.has_value(), b.tokens.has_value());
  EXPECT_EQ(a.model, b.model);
}

/// Whole, byte-at-a-time and every two-piece split all give the same result.
void expect_split_invariant(std::string_view provider_name, std::string_view request_body,
                            std::string_view text) {
  stream_run whole = run(provider_name, request_body, text);
  std::vector<std::size_t> bytewise;
  for (std::size_t i = 1; i < text.size(); ++i) {
    bytewise.push_back(i);
  }
  expect_same(whole, run(provider_name, request_body, text, bytewise));
  for (std::size_t i = 0; i <= text.size(); ++i) {
    SCOPED_TRACE(i);
    expect_same(whole, run(provider_name, request_body, text, {i}));
  }
}

/// The `data:` payloads of an SSE text, without the usage-only chunk.
std::string without_usage_chunk(const std::string& text) {
  std::string out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find("\n\n", pos);
    end = end == std::string::npos ? text.size() : end + 2;
    std::string_view event(text.data() + pos, end - pos);
    if (event.find(R"("choices":[],"usage":{)") == std::string_view::npos) {
      out.append(event);
    }
    pos = end;
  }
  return out;
}

const std::string stream_with_usage = R"({"model":"x","messages":[{"role":"user"}],"stream":true,)"
                                      R"("stream_options":{"include_usage":true}})";
const std::string stream_without_usage =
    R"({"model":"x","messages":[{"role":"user"}],"stream":true})";

TEST(OpenAiStream, OpenAiPassesThroughUnchanged) {
  const std::string text = fixture("openai_stream.sse");
  auto r = run("openai", stream_with_usage, text);
  EXPECT_EQ(r.bytes, text);
  EXPECT_TRUE(r.done);
  EXPECT_TRUE(r.content);
  EXPECT_FALSE(r.failure.has_value());
  EXPECT_EQ(r.model, "gpt-4o-mini");
  ASSERT_TRUE(r.tokens.has_value());
  EXPECT_EQ(r.tokens->prompt_tokens, 9);
  EXPECT_EQ(r.tokens->completion_tokens, 2);
  EXPECT_EQ(r.tokens->total_tokens, 11);
  expect_split_invariant("openai", stream_with_usage, text);
}

TEST(OpenAiStream, UsageChunkIsDroppedWhenTheClientDidNotAsk) {
  const std::string text = fixture("openai_stream.sse");
  auto r = run("openai", stream_without_usage, text);
  EXPECT_EQ(r.bytes, without_usage_chunk(text));
  EXPECT_NE(r.bytes.find("data: [DONE]\n\n"), std::string::npos);
  ASSERT_TRUE(r.tokens.has_value());  // the gateway still learns it
  EXPECT_EQ(r.tokens->total_tokens, 11);
  expect_split_invariant("openai", stream_without_usage, text);
}

TEST(OpenAiStream, GroqUsageIsSynthesizedFromXGroq) {
  const std::string text = fixture("groq_stream.sse");
  auto with = run("groq", stream_with_usage, text);
  const std::string usage_chunk =
      R"(data: {"id":"chatcmpl-g1","object":"chat.completion.chunk","created":1732000001,)"
      R"("model":"llama-3.1-8b-instant","choices":[],"usage":{"prompt_tokens":12,)"
      R"("completion_tokens":3,"total_tokens":15}})"
      "\n\n";
  EXPECT_EQ(with.bytes, replace_all(text, "data: [DONE]\n\n", usage_chunk + "data: [DONE]\n\n"));
  EXPECT_TRUE(with.done);
  ASSERT_TRUE(with.tokens.has_value());
  EXPECT_EQ(with.tokens->total_tokens, 15);

  auto without = run("groq", stream_without_usage, text);
  EXPECT_EQ(without.bytes, text);
  ASSERT_TRUE(without.tokens.has_value());
  expect_split_invariant("groq", stream_with_usage, text);
}

TEST(OpenAiStream, TogetherEosIsMappedAndUsageSynthesized) {
  const std::string text = fixture("together_stream.sse");
  auto r = run("together", stream_with_usage, text);
  std::string expected = replace_all(text, R"("finish_reason":"eos")", R"("finish_reason":"stop")");
  const std::string usage_chunk =
      R"(data: {"id":"8f1a","object":"chat.completion.chunk","created":1732000002,)"
      R"("model":"meta-llama/Llama-3.3-70B-Instruct-Turbo","choices":[],)"
      R"("usage":{"prompt_tokens":20,"completion_tokens":2,"total_tokens":22}})"
      "\n\n";
  expected = replace_all(expected, "data: [DONE]\n\n", usage_chunk + "data: [DONE]\n\n");
  EXPECT_EQ(r.bytes, expected);
  EXPECT_TRUE(r.done);
  EXPECT_TRUE(r.content);
  EXPECT_EQ(r.tokens->prompt_tokens, 20);

  auto without = run("together", stream_without_usage, text);
  EXPECT_EQ(without.bytes,
            replace_all(text, R"("finish_reason":"eos")", R"("finish_reason":"stop")"));
  expect_split_invariant("together", stream_with_usage, text);
}

TEST(OpenAiStream, ARewrittenChunkIsValidUtf8WhateverTheUpstreamSent) {
  const std::string text =
      "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\","
      "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\xC3\"},\"finish_reason\":\"eos\"}]}\n\n"
      "data: [DONE]\n\n";
  auto r = run("together", stream_without_usage, text);
  EXPECT_TRUE(r.done);
  auto first = r.bytes.substr(6, r.bytes.find("\n\n") - 6);  // after `data: `
  EXPECT_TRUE(strict_json(first)) << first;
  EXPECT_NE(first.find("\"x\xEF\xBF\xBD\""), std::string::npos);
  EXPECT_NE(first.find(R"("finish_reason":"stop")"), std::string::npos);
}

TEST(OpenAiStream, DeepSeekKeepAlivesAreNotPayloadAndReasoningCommits) {
  const std::string text = fixture("deepseek_stream.sse");
  auto req = request(stream_without_usage);
  auto t = openai::make_translator(provider("deepseek"), req, "deepseek-reasoner");
  std::vector<std::string_view> events;
  for (std::size_t pos = 0; pos < text.size();) {
    std::size_t end = text.find("\n\n", pos) + 2;
    events.emplace_back(text.data() + pos, end - pos);
    pos = end;
  }
  ASSERT_EQ(events.size(), 8U);
  stream_output ka;
  t->feed(events[0], ka);
  t->feed(events[1], ka);
  EXPECT_FALSE(ka.payload);
  EXPECT_TRUE(ka.client_bytes.empty());
  stream_output role;
  t->feed(events[2], role);
  EXPECT_TRUE(role.payload);
  EXPECT_FALSE(role.content);  // role-only chunks do not commit
  EXPECT_EQ(role.client_bytes, events[2]);
  stream_output reasoning;
  t->feed(events[3], reasoning);
  EXPECT_TRUE(reasoning.content);
  stream_output rest;
  for (std::size_t i = 4; i < events.size(); ++i) {
    t->feed(events[i], rest);
  }
  EXPECT_TRUE(rest.done);
  EXPECT_TRUE(rest.content);  // sticky
  ASSERT_TRUE(rest.tokens.has_value());
  EXPECT_EQ(rest.tokens->prompt_tokens, 30);
  EXPECT_EQ(rest.tokens->cached_tokens, 16);
  // insufficient_system_resource -> length; the usage chunk is dropped (not asked for).
  EXPECT_NE(rest.client_bytes.find(R"("finish_reason":"length")"), std::string::npos);
  EXPECT_EQ(rest.client_bytes.find("prompt_cache_hit_tokens"), std::string::npos);
  EXPECT_EQ(rest.model, "deepseek-reasoner");

  auto with = run("deepseek", stream_with_usage, text);
  EXPECT_NE(with.bytes.find("prompt_cache_hit_tokens"), std::string::npos);
  EXPECT_EQ(with.bytes.find(": keep-alive"), std::string::npos);
  expect_split_invariant("deepseek", stream_with_usage, text);
}

TEST(OpenAiStream, SarvamCrlfAndHindi) {
  const std::string text = fixture("sarvam_stream.sse");
  auto r = run("sarvam", stream_with_usage, text);
  EXPECT_TRUE(r.done);
  EXPECT_TRUE(r.content);
  EXPECT_FALSE(r.tokens.has_value());  // Sarvam sent none: nothing to synthesize
  EXPECT_EQ(r.bytes, replace_all(text, "\r\n", "\n"));
  EXPECT_NE(r.bytes.find("नमस्ते"), std::string::npos);
  expect_split_invariant("sarvam", stream_with_usage, text);
}

TEST(OpenAiStream, ToolCallsAndFinishReasonCommit) {
  auto tool = run("openai", stream_without_usage,
                  R"(data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1",)"
                  R"("type":"function","function":{"name":"f","arguments":""}}]}}]})"
                  "\n\n");
  EXPECT_TRUE(tool.content);
  auto finish = run("openai", stream_without_usage,
                    R"(data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})"
                    "\n\n");
  EXPECT_TRUE(finish.content);
  auto empty = run("openai", stream_without_usage,
                   R"(data: {"choices":[{"index":0,"delta":{"content":"","tool_calls":[]},)"
                   R"("finish_reason":null}]})"
                   "\n\n");
  EXPECT_FALSE(empty.content);
}

// -- tool calls whose arguments never arrive ------------------------------------------------------

const std::string empty_args_stream =
    R"(data: {"id":"c1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_date","arguments":""}},{"index":1,"id":"call_2","type":"function","function":{"name":"now","arguments":""}}]},"finish_reason":null}]})"
    "\n\n"
    R"(data: {"id":"c1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"{\"tz\":"}}]},"finish_reason":null}]})"
    "\n\n"
    R"(data: {"id":"c1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"\"IST\"}"}}]},"finish_reason":null}]})"
    "\n\n"
    R"(data: {"id":"c1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]})"
    "\n\n"
    "data: [DONE]\n\n";

const std::string injected_empty_args =
    R"(data: {"id":"c1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]},"finish_reason":null}]})"
    "\n\n";

TEST(OpenAiStream, EmptyToolArgumentsGetAnObjectBeforeTheFinishChunk) {
  for (const char* name : {"groq", "deepseek", "together", "sarvam", "my-vllm"}) {
    SCOPED_TRACE(name);
    auto r = run(name, stream_without_usage, empty_args_stream);
    EXPECT_TRUE(r.done);
    const auto finish = r.bytes.find(R"("finish_reason":"tool_calls")");
    const auto injected = r.bytes.find(injected_empty_args);
    ASSERT_NE(finish, std::string::npos) << r.bytes;
    ASSERT_NE(injected, std::string::npos) << r.bytes;
    EXPECT_LT(injected, finish);
    // Only call 0 lacked arguments: call 1 got a real fragment and is left alone.
    EXPECT_EQ(r.bytes.find(R"("index":1,"function":{"arguments":"{}"})"), std::string::npos);
    // Everything else is forwarded as it came.
    EXPECT_EQ(replace_all(r.bytes, injected_empty_args, ""), empty_args_stream);
    expect_split_invariant(name, stream_without_usage, empty_args_stream);
  }
}

TEST(OpenAiStream, OpenAiStreamIsNotPatched) {
  auto r = run("openai", stream_without_usage, empty_args_stream);
  EXPECT_EQ(r.bytes, empty_args_stream);
}

TEST(OpenAiStream, EmptyToolArgumentsInTheFinishChunkArePatchedInPlace) {
  // The whole call and the finish reason in one chunk: the call's own fragment gets "{}" (a
  // chunk injected before it would name the call before its id and name).
  const std::string one =
      R"(data: {"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]},"finish_reason":"tool_calls"}]})"
      "\n\ndata: [DONE]\n\n";
  auto r = run("groq", stream_without_usage, one);
  EXPECT_EQ(r.bytes, replace_all(one, R"("arguments":"")", R"("arguments":"{}")"));
  // Missing `arguments` altogether is completed too.
  const std::string bare =
      R"(data: {"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f"}}]},"finish_reason":"tool_calls"}]})"
      "\n\ndata: [DONE]\n\n";
  auto b = run("together", stream_without_usage, bare);
  EXPECT_NE(b.bytes.find(R"("function":{"name":"f","arguments":"{}"})"), std::string::npos)
      << b.bytes;
}

TEST(OpenAiStream, ToolArgumentsThatArriveAreNeverTouched) {
  const std::string ok =
      R"(data: {"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]},"finish_reason":null}]})"
      "\n\n"
      R"(data: {"id":"c","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\":1}"}}]},"finish_reason":null}]})"
      "\n\n"
      R"(data: {"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]})"
      "\n\ndata: [DONE]\n\n";
  EXPECT_EQ(run("deepseek", stream_without_usage, ok).bytes, ok);
}

TEST(OpenAiDecode, EmptyToolArgumentsBecomeAnObject) {
  const std::string body =
      R"({"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,)"
      R"("message":{"role":"assistant","content":null,"tool_calls":[)"
      R"({"id":"call_1","type":"function","function":{"name":"f","arguments":""}},)"
      R"({"id":"call_2","type":"function","function":{"name":"g","arguments":"{\"a\":1}"}}]},)"
      R"("finish_reason":"tool_calls"}]})";
  for (const char* name : {"groq", "deepseek", "together", "sarvam", "my-vllm"}) {
    SCOPED_TRACE(name);
    auto d = decode(name, 200, body);
    EXPECT_EQ(d.result, outcome::success);
    EXPECT_EQ(d.body, replace_all(body, R"("arguments":"")", R"("arguments":"{}")"));
  }
  auto oai = decode("openai", 200, body);
  EXPECT_EQ(oai.body, body);
}

TEST(OpenAiEncode, ReasoningModelsLoseSamplingUnlessReasoningEffortIsNone) {
  config::provider_config p;
  p.name = "openai";
  p.reasoning_models = {"gpt-6", "o3"};
  auto request = [](std::string body) {
    auto r = parse_chat_request(std::move(body));
    EXPECT_TRUE(r.has_value());
    return r.has_value() ? std::move(*r) : chat_request{};
  };
  const auto sampled = request(
      R"({"model":"ib/balanced","temperature":0.2,"top_p":0.9,"messages":[{"role":"user","content":"hi"}]})");
  EXPECT_TRUE(openai::refuses_sampling(p, sampled, "gpt-6-luna"));
  EXPECT_TRUE(openai::refuses_sampling(p, sampled, "o3-mini"));
  EXPECT_FALSE(openai::refuses_sampling(p, sampled, "gpt-4.1-mini"));
  EXPECT_FALSE(openai::refuses_sampling(p, sampled, "xgpt-6"));
  auto up = openai::encode_request(p, sampled, "gpt-6-luna", "sk-x");
  ASSERT_TRUE(up.has_value());
  EXPECT_EQ(up->body, R"({"model":"gpt-6-luna","messages":[{"role":"user","content":"hi"}]})");
  // The client chose no reasoning: the model takes sampling parameters, which then go through.
  const auto none = request(
      R"({"model":"m","temperature":0.2,"reasoning_effort":"none","messages":[{"role":"user","content":"hi"}]})");
  EXPECT_FALSE(openai::refuses_sampling(p, none, "gpt-6-luna"));
  up = openai::encode_request(p, none, "gpt-6-luna", "sk-x");
  ASSERT_TRUE(up.has_value());
  EXPECT_NE(up->body.find(R"("temperature":0.2)"), std::string::npos);
  const auto high = request(
      R"({"model":"m","temperature":0.2,"reasoning_effort":"high","messages":[{"role":"user","content":"hi"}]})");
  EXPECT_TRUE(openai::refuses_sampling(p, high, "gpt-6-luna"));
  // Another model of the same provider keeps them.
  up = openai::encode_request(p, sampled, "gpt-4.1", "sk-x");
  ASSERT_TRUE(up.has_value());
  EXPECT_NE(up->body.find(R"("top_p":0.9)"), std::string::npos);
}

TEST(OpenAiStream, InBandErrors) {
  const std::string first = R"(data: {"id":"c","choices":[{"index":0,"delta":{"content":"Hi"}}]})"
                            "\n\n";
  auto oai = run(
      "openai", stream_without_usage,
      first
          + R"(data: {"error":{"message":"The server had an error","type":"server_error","param":null,"code":null}})"
            "\n\n"
          + R"(data: {"choices":[{"index":0,"delta":{"content":"late"}}]})"
            "\n\ndata: [DONE]\n\n");
  ASSERT_TRUE(oai.failure.has_value());
  EXPECT_EQ(oai.failure->result, outcome::server_error);
  EXPECT_EQ(oai.failure->status, 502);
  EXPECT_EQ(oai.failure->envelope,
            R"({"error":{"message":"The server had an error","type":"server_error",)"
            R"("param":null,"code":null}})");
  EXPECT_EQ(oai.bytes, first);  // nothing after the failure
  EXPECT_FALSE(oai.done);
  EXPECT_TRUE(oai.content);
  EXPECT_EQ(stream_error_event(*oai.failure), "data: " + oai.failure->envelope + "\n\n");

  auto groq = run("groq", stream_without_usage,
                  first
                      + R"(data: {"id":"c","choices":[],"x_groq":{"id":"r","error":"stream cut"}})"
                        "\n\n");
  ASSERT_TRUE(groq.failure.has_value());
  EXPECT_EQ(groq.failure->result, outcome::server_error);
  EXPECT_NE(groq.failure->envelope.find("stream cut"), std::string::npos);

  auto not_json = run("together", stream_without_usage, first + "data: {\"id\":\n\n");
  ASSERT_TRUE(not_json.failure.has_value());
  EXPECT_EQ(not_json.failure->result, outcome::bad_response);

  auto event_error = run("openai", stream_without_usage,
                         "event: error\ndata: {\"error\":{\"message\":\"Overloaded\"}}\n\n");
  ASSERT_TRUE(event_error.failure.has_value());
  EXPECT_EQ(event_error.failure->result, outcome::server_error);
  EXPECT_NE(event_error.failure->envelope.find("Overloaded"), std::string::npos);
  EXPECT_FALSE(event_error.content);  // before the commit point: the caller may fall back

  auto string_error = run("together", stream_without_usage, "data: {\"error\":\"boom\"}\n\n");
  ASSERT_TRUE(string_error.failure.has_value());
  EXPECT_NE(string_error.failure->envelope.find("boom"), std::string::npos);
}

TEST(OpenAiStream, TruncationIsAFailure) {
  const std::string text = fixture("openai_stream.sse");
  const std::string cut = text.substr(0, text.find("data: [DONE]"));
  auto r = run("openai", stream_with_usage, cut);
  EXPECT_FALSE(r.done);
  ASSERT_TRUE(r.failure.has_value());
  EXPECT_EQ(r.failure->result, outcome::bad_response);
  EXPECT_EQ(r.failure->status, 502);
  EXPECT_NE(r.failure->envelope.find("upstream stream ended before completion"), std::string::npos);
  EXPECT_EQ(r.bytes, cut);

  auto empty = run("openai", stream_with_usage, "");
  EXPECT_TRUE(empty.failure.has_value());
  auto keepalive_only = run("deepseek", stream_with_usage, ": keep-alive\n\n: keep-alive\n\n");
  EXPECT_TRUE(keepalive_only.failure.has_value());
  auto half_event = run("openai", stream_with_usage, cut + "data: {\"id\":\"x\",");
  ASSERT_TRUE(half_event.failure.has_value());
  EXPECT_EQ(half_event.bytes, cut);
}

TEST(OpenAiStream, EmptyDataEventsAreKeepAlives) {
  auto req = request(stream_without_usage);
  auto t = openai::make_translator(provider("together"), req, "m");
  stream_output out;
  t->feed("data:\n\ndata: \n\n: ping\n\n", out);
  EXPECT_FALSE(out.payload);
  EXPECT_FALSE(out.failure.has_value());
  EXPECT_TRUE(out.client_bytes.empty());
}

TEST(OpenAiStream, FinalDoneWithoutBlankLineStillCompletes) {
  auto r = run("openai", stream_without_usage,
               "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\n\ndata: [DONE]");
  EXPECT_TRUE(r.done);
  EXPECT_FALSE(r.failure.has_value());
  EXPECT_TRUE(r.bytes.ends_with("data: [DONE]\n\n"));
}

TEST(OpenAiStream, NothingAfterDone) {
  auto req = request(stream_without_usage);
  auto t = openai::make_translator(provider("openai"), req, "m");
  stream_output a;
  t->feed("data: [DONE]\n\ndata: {\"error\":{\"message\":\"x\"}}\n\n", a);
  EXPECT_TRUE(a.done);
  EXPECT_FALSE(a.failure.has_value());
  EXPECT_EQ(a.client_bytes, "data: [DONE]\n\n");
  EXPECT_EQ(a.model, "m");
  stream_output b;
  t->finish(b);
  EXPECT_FALSE(b.failure.has_value());
  EXPECT_TRUE(b.client_bytes.empty());
}

TEST(OpenAiStream, RandomBytesNeverCrash) {
  std::mt19937 rng(31337);
  const std::string seeds[] = {fixture("openai_stream.sse"), fixture("groq_stream.sse"),
                               fixture("together_stream.sse"), fixture("deepseek_stream.sse")};
  for (int i = 0; i < 2'000; ++i) {
    std::string text = seeds[i % 4];
    if ((i % 3) == 0) {
      text.clear();
      std::size_t len = rng() % 300;
      for (std::size_t k = 0; k < len; ++k) {
        text.push_back(static_cast<char>(rng()));
      }
    } else {
      for (int e = 0; e < 4; ++e) {
        std::size_t pos = rng() % text.size();
        text[pos] = "{}[]\":,\n\r x0"[rng() % 12];
      }
    }
    std::vector<std::size_t> cuts;
    for (std::size_t pos = rng() % 50; pos < text.size(); pos += 1 + rng() % 50) {
      cuts.push_back(pos);
    }
    for (const char* name : {"openai", "groq", "together"}) {
      auto r = run(name, (i % 2) == 0 ? stream_with_usage : stream_without_usage, text, cuts);
      ASSERT_TRUE(r.done || r.failure.has_value());
    }
  }
}

// -- protocol dispatch (adapter.cpp) --------------------------------------------------------------

TEST(Adapter, OpenAiProtocolDispatch) {
  auto req = request(rich_request);
  auto p = provider("groq");
  auto a = encode_request(p, req, "llama", "k");
  auto b = openai::encode_request(p, req, "llama", "k");
  ASSERT_TRUE(a);
  ASSERT_TRUE(b);
  EXPECT_EQ(a->body, b->body);
  EXPECT_EQ(a->headers, b->headers);
  auto d =
      decode_response(p, req, "llama", {200, "application/json", fixture("openai_response.json")});
  EXPECT_EQ(d.result, outcome::success);
  auto t = make_stream_translator(p, req, "llama");
  stream_output out;
  t->feed("data: [DONE]\n\n", out);
  EXPECT_TRUE(out.done);
}

TEST(Adapter, AnthropicTargetAndHeaders) {
  auto req = request(
      R"({"model":"ib/premium","max_tokens":64,"messages":[{"role":"user","content":"Hi"}]})");
  auto p = provider("anthropic", config::auth_style::x_api_key, "/v1");
  p.proto = config::protocol::anthropic;
  p.anthropic_version = "2023-06-01";
  auto r = encode_request(p, req, "claude-sonnet-4-5", "sk-ant-1");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->target, "/v1/messages");
  using header = std::pair<std::string_view, std::string>;
  EXPECT_EQ(r->headers, (std::vector<header>{{"content-type", "application/json"},
                                             {"accept", "application/json"},
                                             {"x-api-key", "sk-ant-1"},
                                             {"anthropic-version", "2023-06-01"}}));
  EXPECT_EQ(r->body.find("ib/premium"), std::string::npos);
}

}  // namespace
}  // namespace ib::providers
