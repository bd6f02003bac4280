#include "providers/error_map.hpp"

#include <random>
#include <string>

#include <gtest/gtest.h>

namespace ib::providers {
namespace {

TEST(ErrorMap, Envelope) {
  EXPECT_EQ(envelope("bad \"x\"\n", "invalid_request_error"),
            R"({"error":{"message":"bad \"x\"\n","type":"invalid_request_error","param":null,)"
            R"("code":null}})");
  EXPECT_EQ(envelope("m", "t", "messages", "c"),
            R"({"error":{"message":"m","type":"t","param":"messages","code":"c"}})");
}

TEST(ErrorMap, ReadsEveryShape) {
  struct shape {
    const char* body;
    const char* message;
    const char* type;
    const char* param;
    const char* code;
  };
  const shape shapes[] = {
      // OpenAI / Groq / DeepSeek / Together
      {R"({"error":{"message":"Rate limit","type":"tokens","param":null,"code":"rate_limit_exceeded"}})",
       "Rate limit", "tokens", "", "rate_limit_exceeded"},
      {R"({"error":{"message":"bad","type":"invalid_request_error","param":"messages","code":null}})",
       "bad", "invalid_request_error", "messages", ""},
      // Together's string error and flat error
      {R"({"error":"model not found"})", "model not found", "", "", ""},
      {R"({"message":"overloaded","type":"server_error"})", "overloaded", "server_error", "", ""},
      // Sarvam: code only -> type
      {R"({"error":{"message":"Invalid key","code":"invalid_api_key_error"}})", "Invalid key",
       "invalid_api_key_error", "", "invalid_api_key_error"},
      // Anthropic
      {R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"r"})",
       "Overloaded", "overloaded_error", "", ""},
      // FastAPI-style servers
      {R"({"detail":"Not Found"})", "Not Found", "", "", ""},
      // numeric code
      {R"({"error":{"message":"x","code":429}})", "x", "429", "", "429"},
  };
  for (const auto& s : shapes) {
    SCOPED_TRACE(s.body);
    auto f = parse_error_body(s.body);
    ASSERT_TRUE(f.has_value());
    EXPECT_EQ(f->message, s.message);
    EXPECT_EQ(f->type, s.type);
    EXPECT_EQ(f->param, s.param);
    EXPECT_EQ(f->code, s.code);
  }
  for (const char* bad : {"", "<html><body>502 Bad Gateway</body></html>", "[1]", "{}",
                          "{\"id\":", R"({"foo":"bar"})", "null"}) {
    EXPECT_FALSE(parse_error_body(bad).has_value()) << bad;
  }
}

TEST(ErrorMap, LongMessagesAreCutAtACharacterBoundary) {
  std::string text;
  while (text.size() < 2 * max_error_message_bytes) {
    text += "न";  // 3 bytes
  }
  auto f = parse_error_body(R"({"error":{"message":")" + text + R"("}})");
  ASSERT_TRUE(f.has_value());
  EXPECT_LE(f->message.size(), max_error_message_bytes);
  EXPECT_EQ(f->message.size() % 3, 0U);
}

TEST(ErrorMap, OpenAiStyleStatuses) {
  const dialect& d = find_dialect("openai");
  auto e = map_openai_style_error(
      d, "openai", 400, "application/json",
      R"({"error":{"message":"context too long","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}})");
  EXPECT_EQ(e.result, outcome::request_rejected);
  EXPECT_EQ(e.status, 400);
  EXPECT_FALSE(e.long_cooldown);
  EXPECT_EQ(e.envelope, R"({"error":{"message":"context too long","type":"invalid_request_error",)"
                        R"("param":"messages","code":"context_length_exceeded"}})");

  auto quota = map_openai_style_error(
      d, "openai", 429, "application/json",
      R"({"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}})");
  EXPECT_EQ(quota.result, outcome::rate_limited);
  EXPECT_TRUE(quota.long_cooldown);

  auto rate = map_openai_style_error(
      d, "openai", 429, "application/json",
      R"({"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}})");
  EXPECT_EQ(rate.result, outcome::rate_limited);
  EXPECT_FALSE(rate.long_cooldown);

  auto key = map_openai_style_error(
      d, "openai", 401, "application/json",
      R"({"error":{"message":"Incorrect API key","code":"invalid_api_key"}})");
  EXPECT_EQ(key.result, outcome::key_rejected);
  EXPECT_EQ(key.envelope,
            R"({"error":{"message":"Incorrect API key","type":"invalid_api_key","param":null,)"
            R"("code":"invalid_api_key"}})");
}

TEST(ErrorMap, NonJsonBodies) {
  const dialect& d = find_dialect("together");
  auto html = map_openai_style_error(d, "together", 502, "text/html; charset=utf-8",
                                     "<html><head><title>502 Bad Gateway</title></head></html>");
  EXPECT_EQ(html.result, outcome::server_error);
  EXPECT_EQ(html.status, 502);
  EXPECT_EQ(html.envelope,
            R"({"error":{"message":"together returned HTTP 502","type":"upstream_error",)"
            R"("param":null,"code":null}})");

  auto empty = map_openai_style_error(d, "together", 413, "", "");
  EXPECT_EQ(empty.result, outcome::request_rejected);
  EXPECT_EQ(empty.status, 413);
  EXPECT_NE(empty.envelope.find("together returned HTTP 413"), std::string::npos);

  auto text = map_openai_style_error(d, "together", 503, "text/plain",
                                     "The server is overloaded or not ready yet.");
  EXPECT_EQ(text.result, outcome::server_error);
  EXPECT_EQ(text.status, 503);

  // JSON that is served as HTML is not trusted to be an error body.
  auto json_as_html =
      map_openai_style_error(d, "together", 500, "text/html", R"({"error":{"message":"x"}})");
  EXPECT_NE(json_as_html.envelope.find("together returned HTTP 500"), std::string::npos);

  // A status that is not an HTTP error at all.
  auto weird = map_openai_style_error(d, "together", 302, "", "");
  EXPECT_EQ(weird.result, outcome::bad_response);
  EXPECT_EQ(weird.status, 502);
}

TEST(ErrorMap, ProviderQuirks) {
  auto groq498 = map_openai_style_error(
      find_dialect("groq"), "groq", 498, "application/json",
      R"({"error":{"message":"Capacity exceeded","type":"capacity_exceeded","code":"capacity_exceeded"}})");
  EXPECT_EQ(groq498.result, outcome::server_error);
  EXPECT_EQ(groq498.status, 498);
  auto groq499 = map_openai_style_error(find_dialect("groq"), "groq", 499, "", "");
  EXPECT_EQ(groq499.result, outcome::retryable_status);

  auto ds402 = map_openai_style_error(
      find_dialect("deepseek"), "deepseek", 402, "application/json",
      R"({"error":{"message":"Insufficient Balance","type":"unknown_error","param":null,"code":"invalid_request_error"}})");
  EXPECT_EQ(ds402.result, outcome::key_rejected);
  EXPECT_EQ(ds402.status, 402);

  auto sarvam403 = map_openai_style_error(
      find_dialect("sarvam"), "sarvam", 403, "application/json",
      R"({"error":{"message":"Invalid API key","code":"invalid_api_key_error"}})");
  EXPECT_EQ(sarvam403.result, outcome::key_rejected);
  EXPECT_EQ(sarvam403.envelope,
            R"({"error":{"message":"Invalid API key","type":"invalid_api_key_error",)"
            R"("param":null,"code":"invalid_api_key_error"}})");

  auto sarvam_quota = map_openai_style_error(
      find_dialect("sarvam"), "sarvam", 429, "application/json",
      R"({"error":{"message":"Credits exhausted","code":"insufficient_quota_error"}})");
  EXPECT_EQ(sarvam_quota.result, outcome::rate_limited);
  EXPECT_TRUE(sarvam_quota.long_cooldown);

  auto sarvam422 =
      map_openai_style_error(find_dialect("sarvam"), "sarvam", 422, "application/json",
                             R"({"error":{"message":"bad","code":"unprocessable_entity_error"}})");
  EXPECT_EQ(sarvam422.result, outcome::request_rejected);
  EXPECT_EQ(sarvam422.status, 422);
}

TEST(ErrorMap, TypelessErrorsGetATypeFromTheStatus) {
  const dialect& d = find_dialect("together");
  auto e = map_openai_style_error(d, "together", 404, "application/json",
                                  R"({"error":"Unable to access model x"})");
  EXPECT_EQ(e.result, outcome::request_rejected);
  EXPECT_EQ(e.envelope,
            R"({"error":{"message":"Unable to access model x","type":"invalid_request_error",)"
            R"("param":null,"code":null}})");
  EXPECT_EQ(default_error_type(401), "authentication_error");
  EXPECT_EQ(default_error_type(403), "permission_error");
  EXPECT_EQ(default_error_type(429), "rate_limit_error");
  EXPECT_EQ(default_error_type(422), "invalid_request_error");
  EXPECT_EQ(default_error_type(500), "upstream_error");
}

TEST(ErrorMap, GenericMapAndConversions) {
  auto e =
      map_error("anthropic", 529, "application/json",
                R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})");
  EXPECT_EQ(e.result, outcome::server_error);
  EXPECT_EQ(e.status, 529);
  EXPECT_EQ(e.envelope,
            R"({"error":{"message":"Overloaded","type":"overloaded_error","param":null,)"
            R"("code":null}})");

  auto d = to_decoded(invalid_response());
  EXPECT_EQ(d.result, outcome::bad_response);
  EXPECT_EQ(d.status, 502);
  EXPECT_EQ(d.body, R"({"error":{"message":"upstream returned an invalid response",)"
                    R"("type":"upstream_error","param":null,"code":null}})");
  EXPECT_FALSE(d.tokens.has_value());

  auto f = to_stream_failure(invalid_response());
  EXPECT_EQ(stream_error_event(f), "data: " + f.envelope + "\n\n");
}

TEST(ErrorMap, RandomBodiesNeverCrash) {
  std::mt19937 rng(4242);
  const std::string alphabet = R"({}[]":,\ errormessagetypecode0123456789nul)";
  const dialect& d = find_dialect("sarvam");
  for (int i = 0; i < 5'000; ++i) {
    std::string body;
    std::size_t len = rng() % 80;
    for (std::size_t k = 0; k < len; ++k) {
      body.push_back((i % 2) != 0 ? static_cast<char>(rng()) : alphabet[rng() % alphabet.size()]);
    }
    auto e = map_openai_style_error(d, "sarvam", 400 + static_cast<int>(rng() % 200),
                                    "application/json", body);
    ASSERT_FALSE(e.envelope.empty());
  }
}

}  // namespace
}  // namespace ib::providers
