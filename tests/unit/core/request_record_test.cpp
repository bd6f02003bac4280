#include "core/request_record.hpp"

#include <cstdint>
#include <limits>
#include <string>

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

/// `r` as the request log lists it after storing it: `from_stored(to_stored(r))` with the id
/// and time the store's key holds.
std::string stored_then_listed(const request_record& r) {
  auto back = from_stored(to_stored(r));
  EXPECT_TRUE(back) << back.error().message;
  if (!back) {
    return {};
  }
  EXPECT_TRUE(back->id.empty());
  EXPECT_TRUE(back->user_id.empty());
  back->id = r.id;
  back->created_us = r.created_us;
  return to_json(*back);
}

TEST(RequestRecord, StoredFormListsAsTheSameJson) {
  EXPECT_EQ(stored_then_listed(full_record()), to_json(full_record()));
  request_record bare;
  bare.id = "req_1";
  bare.model = "openai/gpt-4o-mini";
  EXPECT_EQ(stored_then_listed(bare), to_json(bare));
  // Extremes: negative and 64-bit values, long strings (two-byte lengths), many attempts, a
  // reason kept with a status (the JSON shows the status then).
  request_record r = full_record();
  r.tier = std::string(300, 't');
  r.model = "m\"o\\d\u00e9l\n";
  r.status = -1;
  r.latency_ms = std::numeric_limits<std::int64_t>::max();
  r.ttfb_ms = std::numeric_limits<std::int64_t>::min();
  r.tokens = usage{-5, 0, std::numeric_limits<std::int64_t>::max(), 0};
  r.attempts.push_back({"x", 429, "kept", -3});
  for (int i = 0; i < 200; ++i) {
    r.attempts.push_back({"p" + std::to_string(i), i % 3 == 0 ? 0 : 500 + i, "r", i});
  }
  EXPECT_EQ(stored_then_listed(r), to_json(r));
  r.stream = false;
  r.ttfb_ms.reset();
  r.tokens = usage{0, 0, 0, 0};
  EXPECT_EQ(stored_then_listed(r), to_json(r));
}

TEST(RequestRecord, StoredFormIsSmallAndNeverJson) {
  const std::string stored = to_stored(full_record());
  EXPECT_LT(stored.size() * 4, to_json(full_record()).size()) << stored.size();
  EXPECT_EQ(stored.front(), '\x01');
  EXPECT_EQ(stored.find("usr_secret_owner"), std::string::npos);
  EXPECT_EQ(stored.find("req_abc"), std::string::npos);
}

TEST(RequestRecord, DamagedStoredFormsAreStorageErrors) {
  const std::string good = to_stored(full_record());
  ASSERT_TRUE(from_stored(good));
  // Every cut is an error: no field may read past the end.
  for (std::size_t n = 0; n < good.size(); ++n) {
    auto r = from_stored(std::string_view(good).substr(0, n));
    ASSERT_FALSE(r) << n;
    EXPECT_EQ(r.error().code, errc::storage);
  }
  auto fails = [](const std::string& bytes) {
    auto r = from_stored(bytes);
    return !r && r.error().code == errc::storage;
  };
  EXPECT_TRUE(fails(good + '\0'));                             // bytes left over
  EXPECT_TRUE(fails('\x02' + good.substr(1)));                 // another version
  EXPECT_TRUE(fails(to_json(full_record())));                  // JSON is not this format
  EXPECT_TRUE(fails(std::string("\x01\xff\xff\xff\x0f", 5)));  // a string longer than the rest
  EXPECT_TRUE(fails(std::string(1, '\x01') + std::string(11, '\x80')));  // a varint too long
  // A tenth varint byte above 1 would overflow 64 bits.
  EXPECT_TRUE(fails(std::string(1, '\x01') + std::string(9, '\xff') + '\x02'));
  // Four empty strings, then 2^32 attempts in a few bytes.
  EXPECT_TRUE(fails(std::string("\x01\0\0\0\0\x80\x80\x80\x80\x10\0\0\0", 13)));
  // A status beyond int.
  request_record r;
  r.model = "m";
  std::string big = to_stored(r);
  const std::size_t status_at = 1 + 4 + 1 + 1;  // version, 4 lengths, 'm', no attempts
  ASSERT_EQ(big[status_at], '\0');
  big.replace(status_at, 1, std::string("\xfe\xff\xff\xff\x1f", 5));
  EXPECT_TRUE(fails(big));
  // Unknown flags.
  std::string flagged = to_stored(r);
  flagged.back() = '\x08';
  EXPECT_TRUE(fails(flagged));
  // Any bytes at all: an error or a record, never a read outside them (ASan).
  std::uint32_t seed = 12345;
  for (int i = 0; i < 20000; ++i) {
    std::string bytes = good;
    for (int k = 0; k < 3; ++k) {
      seed = seed * 1664525 + 1013904223;
      bytes[(seed >> 8) % bytes.size()] = static_cast<char>(seed >> 24);
    }
    seed = seed * 1664525 + 1013904223;
    bytes.resize((seed >> 8) % (bytes.size() + 1));
    (void)from_stored(bytes);
  }
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
