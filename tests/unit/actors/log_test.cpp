// The logger: line formatting (pure, fixed times) and the bounded queue with its writer thread
// (a sink of our own instead of stdout).
#include "actors/log.hpp"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "core/request_record.hpp"

namespace ib::actors {
namespace {

using namespace std::chrono_literals;

// 2026-11-30T05:50:52.123Z
constexpr std::int64_t t0 = 1'796'017'852'123;

rapidjson::Document parse_line(const std::string& line) {
  EXPECT_FALSE(line.empty());
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line: " << line;
  rapidjson::Document d;
  d.Parse(line.data(), line.size() - 1);
  EXPECT_FALSE(d.HasParseError()) << line;
  EXPECT_TRUE(d.IsObject()) << line;
  return d;
}

std::vector<std::string> member_names(const rapidjson::Value& v) {
  std::vector<std::string> out;
  for (const auto& m : v.GetObject()) {
    out.emplace_back(m.name.GetString());
  }
  return out;
}

request_record sample_record() {
  request_record r;
  r.id = "req_abc";
  r.user_id = "usr_42";
  r.created_us = 1'796'017'852'000'000;
  r.tier = "ib/balanced";
  r.model = "ib/balanced";
  r.provider = "sarvam";
  r.upstream_model = "sarvam-m";
  r.attempts = {{"openai", 0, "connect_error", 3}, {"sarvam", 200, "", 41}};
  r.status = 200;
  r.latency_ms = 45;
  r.stream = false;
  r.tokens = usage{10, 20, 30, 4};
  r.overhead_us = 1234;
  return r;
}

// -- pure formatting
// --------------------------------------------------------------------------------

TEST(LogFormat, Rfc3339WithMilliseconds) {
  EXPECT_EQ(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(rfc3339_ms(t0), "2026-11-30T05:50:52.123Z");
  EXPECT_EQ(rfc3339_ms(-5), "1970-01-01T00:00:00.000Z");
}

TEST(LogFormat, LevelsAndFormatsParseTheirConfigSpelling) {
  for (auto l : {log_level::debug, log_level::info, log_level::warn, log_level::error}) {
    EXPECT_EQ(parse_log_level(to_string(l)), l);
  }
  EXPECT_EQ(parse_log_level("INFO"), std::nullopt);
  EXPECT_EQ(parse_log_level("warning"), std::nullopt);
  EXPECT_EQ(parse_log_format("json"), log_format::json);
  EXPECT_EQ(parse_log_format("text"), log_format::text);
  EXPECT_EQ(parse_log_format("logfmt"), std::nullopt);
}

TEST(LogFormat, JsonLineHasTimeLevelMsgThenFieldsInOrder) {
  const log_field fields[] = {{"provider", "openai"}, {"probe_in_ms", 250}, {"ok", true}};
  auto line = format_line(log_format::json, t0, log_level::warn, "breaker transition", fields);
  EXPECT_EQ(line, R"({"time":"2026-11-30T05:50:52.123Z","level":"warn","msg":"breaker transition",)"
                  R"("provider":"openai","probe_in_ms":250,"ok":true})"
                  "\n");
  auto d = parse_line(line);
  EXPECT_EQ(member_names(d),
            (std::vector<std::string>{"time", "level", "msg", "provider", "probe_in_ms", "ok"}));
}

TEST(LogFormat, JsonLineEscapesNewlinesAndInvalidUtf8) {
  const log_field fields[] = {{"reason", std::string_view{"a\nb\xff", 4}}};
  auto line = format_line(log_format::json, t0, log_level::error, "x\"y\n", fields);
  auto d = parse_line(line);  // still one line
  EXPECT_STREQ(d["msg"].GetString(), "x\"y\n");
  EXPECT_STREQ(d["reason"].GetString(), "a\nb\xEF\xBF\xBD");
}

TEST(LogFormat, TextLineKeepsTheHumanReadableStyle) {
  const log_field fields[] = {{"provider", "openai"}, {"after", "2 failures"}, {"n", 3}};
  EXPECT_EQ(format_line(log_format::text, t0, log_level::info, "inferbridge started", {}),
            "2026-11-30T05:50:52.123Z inferbridge started\n");
  EXPECT_EQ(format_line(log_format::text, t0, log_level::warn, "breaker transition", fields),
            "2026-11-30T05:50:52.123Z warn: breaker transition provider=openai "
            "after=\"2 failures\" n=3\n");
  // A value can never start a line of its own.
  const log_field evil[] = {{"reason", "a\nb"}};
  EXPECT_EQ(format_line(log_format::text, t0, log_level::error, "m\n", evil),
            "2026-11-30T05:50:52.123Z error: m? reason=a?b\n");
}

TEST(LogFormat, AccessLineJsonHasEveryFieldInOrder) {
  auto line = format_access_line(log_format::json, t0, sample_record());
  auto d = parse_line(line);
  EXPECT_EQ(member_names(d),
            (std::vector<std::string>{"time", "level", "msg", "request_id", "user_id", "tier",
                                      "model", "provider", "upstream_model", "status", "latency_ms",
                                      "ttfb_ms", "overhead_ms", "attempts", "stream", "usage"}));
  EXPECT_STREQ(d["time"].GetString(), "2026-11-30T05:50:52.123Z");
  EXPECT_STREQ(d["level"].GetString(), "info");
  EXPECT_STREQ(d["msg"].GetString(), "request");
  EXPECT_STREQ(d["request_id"].GetString(), "req_abc");
  EXPECT_STREQ(d["user_id"].GetString(), "usr_42");
  EXPECT_STREQ(d["upstream_model"].GetString(), "sarvam-m");
  EXPECT_EQ(d["status"].GetInt(), 200);
  EXPECT_TRUE(d["ttfb_ms"].IsNull());
  EXPECT_NE(line.find(R"("overhead_ms":1.234,)"), std::string::npos) << line;
  ASSERT_EQ(d["attempts"].Size(), 2u);
  EXPECT_STREQ(d["attempts"][0]["reason"].GetString(), "connect_error");
  EXPECT_EQ(d["attempts"][1]["status"].GetInt(), 200);
  EXPECT_EQ(d["attempts"][1]["latency_ms"].GetInt(), 41);
  EXPECT_FALSE(d["stream"].GetBool());
  EXPECT_EQ(d["usage"]["total_tokens"].GetInt(), 30);
  EXPECT_EQ(d["usage"]["cached_tokens"].GetInt(), 4);
}

TEST(LogFormat, AccessLineOverheadHasThreeDecimalsAndNullsForAbsentValues) {
  auto r = sample_record();
  r.tier.clear();
  r.provider.clear();
  r.upstream_model.clear();
  r.tokens.reset();
  r.stream = true;
  r.ttfb_ms = 7;
  r.overhead_us = 5;
  auto line = format_access_line(log_format::json, t0, r);
  EXPECT_NE(line.find(R"("overhead_ms":0.005,)"), std::string::npos) << line;
  auto d = parse_line(line);
  EXPECT_TRUE(d["tier"].IsNull());
  EXPECT_TRUE(d["provider"].IsNull());
  EXPECT_TRUE(d["upstream_model"].IsNull());
  EXPECT_TRUE(d["usage"].IsNull());
  EXPECT_EQ(d["ttfb_ms"].GetInt(), 7);
  EXPECT_TRUE(d["stream"].GetBool());
  r.overhead_us = -3;  // a clock step never shows as a negative overhead
  EXPECT_NE(format_access_line(log_format::json, t0, r).find(R"("overhead_ms":0.000,)"),
            std::string::npos);
  r.overhead_us = 12'345'678;
  EXPECT_NE(format_access_line(log_format::json, t0, r).find(R"("overhead_ms":12345.678,)"),
            std::string::npos);
}

TEST(LogFormat, AccessLineText) {
  EXPECT_EQ(format_access_line(log_format::text, t0, sample_record()),
            "2026-11-30T05:50:52.123Z request request_id=req_abc user_id=usr_42 tier=ib/balanced "
            "model=ib/balanced provider=sarvam upstream_model=sarvam-m status=200 latency_ms=45 "
            "ttfb_ms=- overhead_ms=1.234 attempts=openai:connect_error:3ms,sarvam:200:41ms "
            "stream=false prompt_tokens=10 completion_tokens=20 total_tokens=30\n");
}

// -- the logger
// -------------------------------------------------------------------------------------

/// A sink that collects what the writer thread hands it; `hold()` makes it block until
/// `release()` (a stalled stdout).
struct collecting_sink {
  std::mutex m;
  std::condition_variable cv;
  std::string text;
  bool held = false;
  bool entered = false;

  std::function<void(std::string_view)> fn() {
    return [this](std::string_view bytes) {
      std::unique_lock lock{m};
      entered = true;
      cv.notify_all();
      cv.wait(lock, [this] { return !held; });
      text.append(bytes);
      cv.notify_all();
    };
  }
  std::string get() {
    std::lock_guard lock{m};
    return text;
  }
  /// Waits (bounded) until the collected text holds `needle`.
  bool wait_for_text(std::string_view needle, std::chrono::milliseconds limit = 5s) {
    std::unique_lock lock{m};
    return cv.wait_for(lock, limit, [&] { return text.find(needle) != std::string::npos; });
  }
  std::vector<std::string> lines() {
    std::vector<std::string> out;
    auto t = get();
    for (std::size_t pos = 0; pos < t.size();) {
      auto nl = t.find('\n', pos);
      out.push_back(t.substr(pos, nl + 1 - pos));
      pos = nl + 1;
    }
    return out;
  }
};

TEST(Logger, WritesLinesAtOrAboveItsLevel) {
  collecting_sink sink;
  logger_options o;
  o.level = log_level::warn;
  o.sink = sink.fn();
  logger lg{std::move(o)};
  EXPECT_FALSE(lg.enabled(log_level::debug));
  EXPECT_FALSE(lg.enabled(log_level::info));
  EXPECT_TRUE(lg.enabled(log_level::warn));
  EXPECT_TRUE(lg.enabled(log_level::error));
  lg.log(log_level::debug, "d");
  lg.log(log_level::info, "i");
  lg.access(sample_record());  // access lines are info
  lg.log(log_level::warn, "w", {{"n", 1}});
  lg.log(log_level::error, "e");
  lg.flush();
  auto lines = sink.lines();
  ASSERT_EQ(lines.size(), 2u) << sink.get();
  EXPECT_STREQ(parse_line(lines[0])["msg"].GetString(), "w");
  EXPECT_STREQ(parse_line(lines[1])["msg"].GetString(), "e");

  lg.configure(log_level::debug, log_format::text);
  lg.log(log_level::debug, "now visible");
  lg.access(sample_record());
  lg.flush();
  lines = sink.lines();
  ASSERT_EQ(lines.size(), 4u) << sink.get();
  EXPECT_NE(lines[2].find(" debug: now visible\n"), std::string::npos) << lines[2];
  EXPECT_NE(lines[3].find(" request request_id=req_abc "), std::string::npos) << lines[3];
}

TEST(Logger, AFullQueueDropsAndCountsInsteadOfBlocking) {
  collecting_sink sink;
  sink.held = true;  // stdout is stalled
  logger_options o;
  o.max_queued_lines = 3;
  o.drop_report_interval = 1ms;
  o.sink = sink.fn();
  logger lg{std::move(o)};
  lg.log(log_level::info, "first");
  {
    // The writer took "first" and is stuck in the sink.
    std::unique_lock lock{sink.m};
    ASSERT_TRUE(sink.cv.wait_for(lock, 5s, [&] { return sink.entered; }));
  }
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 10; ++i) {
    lg.log(log_level::info, "queued", {{"i", i}});
  }
  // Never blocked on the sink (generous bound for a sanitizer build).
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  EXPECT_EQ(lg.dropped(), 7u);
  {
    std::lock_guard lock{sink.m};
    sink.held = false;
  }
  sink.cv.notify_all();
  lg.flush();
  ASSERT_TRUE(sink.wait_for_text("log lines dropped")) << sink.get();
  auto lines = sink.lines();
  ASSERT_EQ(lines.size(), 5u) << sink.get();
  EXPECT_STREQ(parse_line(lines[0])["msg"].GetString(), "first");
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(parse_line(lines[1 + i])["i"].GetInt(), i);
  }
  auto report = parse_line(lines[4]);
  EXPECT_STREQ(report["level"].GetString(), "warn");
  EXPECT_EQ(report["dropped"].GetInt(), 7);
  EXPECT_EQ(report["dropped_total"].GetInt(), 7);
}

TEST(Logger, FlushForIsBoundedWhenTheSinkIsStuck) {
  collecting_sink sink;
  sink.held = true;
  logger_options o;
  o.sink = sink.fn();
  logger lg{std::move(o)};
  lg.log(log_level::error, "stuck");
  EXPECT_FALSE(lg.flush_for(20ms));
  {
    std::lock_guard lock{sink.m};
    sink.held = false;
  }
  sink.cv.notify_all();
  EXPECT_TRUE(lg.flush_for(5s));
  EXPECT_EQ(sink.lines().size(), 1u);
}

/// An idle writer sleeps without a deadline; the first line of a batch must still wake it, with
/// no flush, no stop and far fewer lines than the mark.
TEST(Logger, ALineAfterIdleIsWrittenWithoutAFlush) {
  collecting_sink sink;
  logger_options o;
  o.sink = sink.fn();
  o.flush_interval = 1ms;
  logger lg{std::move(o)};
  lg.log(log_level::info, "first");
  ASSERT_TRUE(sink.wait_for_text("first")) << sink.get();
  // Idle again (the queue was drained), then one more line.
  lg.log(log_level::info, "second");
  ASSERT_TRUE(sink.wait_for_text("second")) << sink.get();
  EXPECT_EQ(sink.lines().size(), 2u);
}

TEST(Logger, DestructionWritesWhatIsQueued) {
  collecting_sink sink;
  {
    logger_options o;
    o.sink = sink.fn();
    logger lg{std::move(o)};
    for (int i = 0; i < 100; ++i) {
      lg.log(log_level::info, "line", {{"i", i}});
    }
  }
  EXPECT_EQ(sink.lines().size(), 100u);
}

}  // namespace
}  // namespace ib::actors
