#include "core/request_record.hpp"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "core/tier_plan.hpp"

namespace ib {
namespace {

request_record full_record() {
  request_record r;
  r.id = "req_abc";
  r.user_id = "usr_secret_owner";
  r.created_us = 1'700'000'000'999'999;
  r.tier = "ib/cheap";
  r.model = "ib/cheap";
  r.provider = "sarvam";
  r.upstream_model = "sarvam-m";
  r.attempts = {{"groq", 0, "no_key", 0},
                {"openai", 503, "", 120},
                {"deepseek", 0, "connect_error", 3},
                {"sarvam", 200, "", 340}};
  r.status = 200;
  r.latency_ms = 470;
  r.ttfb_ms = 350;
  r.stream = true;
  r.tokens = usage{10, 20, 30, 5};
  return r;
}

TEST(RequestRecord, FullRecordJson) {
  EXPECT_EQ(to_json(full_record()),
            R"({"id":"req_abc","created":1700000000,"tier":"ib/cheap","model":"ib/cheap",)"
            R"("provider":"sarvam","upstream_model":"sarvam-m","attempts":[)"
            R"({"provider":"groq","reason":"no_key","latency_ms":0},)"
            R"({"provider":"openai","status":503,"latency_ms":120},)"
            R"({"provider":"deepseek","reason":"connect_error","latency_ms":3},)"
            R"({"provider":"sarvam","status":200,"latency_ms":340}],)"
            R"("status":200,"latency_ms":470,"ttfb_ms":350,"stream":true,)"
            R"("usage":{"prompt_tokens":10,"completion_tokens":20,"total_tokens":30}})");
}

TEST(RequestRecord, AbsentFieldsAreNull) {
  request_record r;
  r.id = "req_1";
  r.created_us = 5'000'000;
  r.model = "openai/gpt-4o-mini";
  r.status = 502;
  r.latency_ms = 9;
  EXPECT_EQ(to_json(r),
            R"({"id":"req_1","created":5,"tier":null,"model":"openai/gpt-4o-mini",)"
            R"("provider":null,"upstream_model":null,"attempts":[],"status":502,"latency_ms":9,)"
            R"("ttfb_ms":null,"stream":false,"usage":null})");
}

TEST(RequestRecord, NeverIncludesTheOwner) {
  EXPECT_EQ(to_json(full_record()).find("usr_secret_owner"), std::string::npos);
}

TEST(RequestRecord, StringsAreEscapedIntoValidJson) {
  auto r = full_record();
  r.model = "weird \"model\"\\\n\x01";
  r.attempts = {{"p\"x", 0, "reason\twith tab", 1}};
  const auto json = to_json(r);
  rapidjson::Document d;
  d.Parse(json.data(), json.size());  // bounded: the NUL-terminated SSE2 scan over-reads
  ASSERT_FALSE(d.HasParseError()) << json;
  EXPECT_EQ(std::string{d["model"].GetString()}, r.model);
  EXPECT_EQ(std::string{d["attempts"][0]["provider"].GetString()}, "p\"x");
  EXPECT_EQ(std::string{d["attempts"][0]["reason"].GetString()}, "reason\twith tab");
  EXPECT_FALSE(d["attempts"][0].HasMember("status"));
}

TEST(RequestRecord, CreatedRoundsDownToSeconds) {
  request_record r;
  r.created_us = -1;
  std::string json = to_json(r);
  rapidjson::Document d;
  d.Parse(json.data(), json.size());
  ASSERT_FALSE(d.HasParseError());
  EXPECT_EQ(d["created"].GetInt64(), -1);
  r.created_us = 1'999'999;
  json = to_json(r);
  d.Parse(json.data(), json.size());
  EXPECT_EQ(d["created"].GetInt64(), 1);
}

TEST(RequestRecord, EnvelopeWithAttemptsIsTheOneEnvelopePlusTheAttempts) {
  error err{errc::bad_gateway, "every provider failed: \xFF"};
  std::vector<attempt_record> attempts = {{"groq", 0, "no_key", 0}, {"openai", 503, "", 120}};
  EXPECT_EQ(to_envelope(err, attempts),
            R"({"error":{"message":"every provider failed: �","type":"upstream_error",)"
            R"("param":null,"code":null,"inferbridge_attempts":[{"provider":"groq",)"
            R"("reason":"no_key","latency_ms":0},{"provider":"openai","status":503,)"
            R"("latency_ms":120}]}})");
}

TEST(RequestRecord, InvalidUtf8InARecordBecomesReplacementCharacters) {
  request_record r = full_record();
  r.model = "bad \xFF\xFE model";
  std::string json = to_json(r);
  rapidjson::Document d;
  d.Parse<rapidjson::kParseValidateEncodingFlag>(json.data(), json.size());
  ASSERT_FALSE(d.HasParseError());
  EXPECT_EQ(std::string{d["model"].GetString()}, "bad \xEF\xBF\xBD\xEF\xBF\xBD model");
}

TEST(RequestRecord, ListingSplicesTheStoredRecords) {
  EXPECT_EQ(to_list_json({}, false), R"({"object":"list","data":[],"has_more":false})");
  const std::string a = to_json(full_record());
  EXPECT_EQ(to_list_json({a, a}, true),
            R"({"object":"list","data":[)" + a + "," + a + R"(],"has_more":true})");
}

TEST(RequestRecord, OverheadHeaderIsMillisecondsWithThreeDecimals) {
  EXPECT_EQ(overhead_ms_text(0), "0.000");
  EXPECT_EQ(overhead_ms_text(7), "0.007");
  EXPECT_EQ(overhead_ms_text(412), "0.412");
  EXPECT_EQ(overhead_ms_text(1000), "1.000");
  EXPECT_EQ(overhead_ms_text(12'345), "12.345");
  EXPECT_EQ(overhead_ms_text(-5), "0.000");
}

TEST(RequestRecord, OverheadIsNotPartOfTheApiJson) {
  auto r = full_record();
  r.overhead_us = 4242;
  EXPECT_EQ(to_json(r).find("overhead"), std::string::npos);
}

}  // namespace
}  // namespace ib
