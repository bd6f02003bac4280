// Inputs found by the libFuzzer targets of fuzz/ (scripts/fuzz.sh), kept as plain tests so that
// the ASan+UBSan unit build checks them on every run. Each test names the target that found it.

#include <cstdint>
#include <string>
#include <string_view>

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "config/load.hpp"
#include "core/error.hpp"
#include "core/outcome.hpp"
#include "providers/adapter.hpp"
#include "providers/anthropic.hpp"
#include "providers/chat_request.hpp"
#include "providers/json.hpp"

namespace ib::providers {
namespace {

using namespace std::string_literals;

chat_request parsed(std::string body) {
  auto r = parse_chat_request(std::move(body));
  EXPECT_TRUE(r) << (r ? "" : r.error().message);
  return r ? *r : chat_request{};
}

// fuzz_anthropic_stream, mode 2 (an OpenAI-style provider's stream; found with sarvam's): an
// upstream event whose JSON spans two `data:` lines (SSE joins them with `\n`) was passed on
// as it was, so the client read an event whose data was the first line only. Each client event
// must be one `data:` line of JSON.
TEST(FuzzRegressions, OpenAiStreamEventOnTwoDataLines) {
  auto cfg = config::load_default({});
  ASSERT_TRUE(cfg) << cfg.error().message;
  const auto req =
      parsed(R"({"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]})");
  for (const char* name : {"openai", "sarvam", "groq"}) {
    const config::provider_config* p = cfg->find_provider(name);
    ASSERT_NE(p, nullptr) << name;
    auto t = make_stream_translator(*p, req, "upstream-model");
    stream_output out;
    t->feed(
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\n"
        "data: "
        "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":null}]}\n\n"
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\","
        "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
        "data: [DONE]\n\n",
        out);
    t->finish(out);
    ASSERT_FALSE(out.failure) << name << ": " << out.failure->envelope;
    EXPECT_TRUE(out.done) << name;
    std::string_view rest = out.client_bytes;
    int events = 0;
    bool saw_hi = false;
    while (!rest.empty()) {
      ASSERT_TRUE(rest.starts_with("data: ")) << name << ": " << out.client_bytes;
      auto end = rest.find("\n\n");
      ASSERT_NE(end, std::string_view::npos) << name << ": " << out.client_bytes;
      std::string_view payload = rest.substr(6, end - 6);
      EXPECT_EQ(payload.find('\n'), std::string_view::npos) << name << ": " << payload;
      if (payload != "[DONE]") {
        rapidjson::Document d;
        d.Parse(payload.data(), payload.size());
        ASSERT_FALSE(d.HasParseError()) << name << ": " << payload;
        saw_hi = saw_hi || payload.find(R"("content":"hi")") != std::string_view::npos;
      }
      ++events;
      rest.remove_prefix(end + 2);
    }
    EXPECT_EQ(events, 3) << name << ": " << out.client_bytes;
    EXPECT_TRUE(saw_hi) << name << ": " << out.client_bytes;
  }
}

// fuzz_anthropic_stream, mode 3 (non-streamed decode), status 401, body `0e-44~\xfe`: the error
// body is not JSON (a number, then junk). RapidJSON 1.1.0 with kParseFullPrecisionFlag reads the
// zero through StrtodDiyFp, which calls __builtin_clzll(0) (clang's UBSan: "passing zero to
// clz()"; GCC 12's UBSan too, so the ASan+UBSan unit build aborts here). The answer must be a
// clean key_rejected in the OpenAI envelope. Fixed by dropping kParseFullPrecisionFlag from
// `json::parse_flags` (issue 18).
TEST(FuzzRegressions, AnthropicDecodeOfANumberWithJunk) {
  const auto req = parsed(R"({"model":"m","messages":[{"role":"user","content":"hi"}]})");
  const std::string body = "0e-44~\xfe"s;
  upstream_response res{401, "application/json", body};
  auto d = anthropic::decode(req, "claude-sonnet-4-6", res, 1700000000);
  EXPECT_EQ(d.result, outcome::key_rejected);
  rapidjson::Document doc;
  doc.Parse(d.body.data(), d.body.size());
  ASSERT_FALSE(doc.HasParseError()) << d.body;
  EXPECT_TRUE(doc.IsObject() && doc.HasMember("error")) << d.body;
}

// The same RapidJSON fault seen as a value: with full precision a zero written with a large
// exponent did not read as zero (clz(0) is undefined; GCC 12 -O2 read `0e-44` as -4.5e-277 and
// `0e-300` as -3.5e-220), so a client's `"temperature": 0e-44` was refused as out of range (or
// sent as a tiny non-zero value). `json::parse_flags` reads them as zero.
TEST(FuzzRegressions, ZeroWithALargeExponentIsZero) {
  for (std::string_view text : {"0e-44", "0e44", "-0e-30", "0e-300", "0.00000000000000000000e-5",
                                "0.000000000000000000000000000000000000000000e-10"}) {
    rapidjson::Document doc;
    doc.Parse<json::parse_flags>(text.data(), text.size());
    ASSERT_FALSE(doc.HasParseError()) << text;
    EXPECT_EQ(doc.GetDouble(), 0.0) << text;
  }
  const auto req =
      parsed(R"({"model":"m","temperature":0e-44,"messages":[{"role":"user","content":"hi"}]})");
  auto body = anthropic::encode_body(req, "claude-sonnet-4-6");
  ASSERT_TRUE(body) << body.error().message;
  rapidjson::Document out;
  out.Parse(body->data(), body->size());
  ASSERT_TRUE(out.HasMember("temperature")) << *body;
  EXPECT_EQ(out["temperature"].GetDouble(), 0.0) << *body;
}

}  // namespace
}  // namespace ib::providers
