#include "providers/sse.hpp"

#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace ib::providers {
namespace {

struct collected {
  std::vector<sse_event> events;
  bool ok = true;
};

collected parse_whole(std::string_view bytes, std::size_t limit = 1 << 20) {
  collected c;
  sse_parser p(limit);
  c.ok = p.feed(bytes, [&](const sse_event& ev) { c.events.push_back(ev); });
  return c;
}

collected parse_bytewise(std::string_view bytes) {
  collected c;
  sse_parser p;
  for (char ch : bytes) {
    c.ok = c.ok && p.feed(std::string_view(&ch, 1), [&](const sse_event& ev) {
      c.events.push_back(ev);
    });
  }
  return c;
}

void expect_same(const collected& a, const collected& b) {
  ASSERT_EQ(a.events.size(), b.events.size());
  for (std::size_t i = 0; i < a.events.size(); ++i) {
    EXPECT_EQ(a.events[i].event, b.events[i].event);
    EXPECT_EQ(a.events[i].data, b.events[i].data);
  }
}

TEST(Sse, ParsesOpenAiStyleEvents) {
  auto c = parse_whole("data: {\"a\":1}\n\ndata: [DONE]\n\n");
  ASSERT_EQ(c.events.size(), 2U);
  EXPECT_EQ(c.events[0].data, "{\"a\":1}");
  EXPECT_EQ(c.events[0].event, "");
  EXPECT_EQ(c.events[1].data, "[DONE]");
}

TEST(Sse, LineEndingsCrLfAndCrOnly) {
  const std::string lf = "event: ping\ndata: x\n\ndata: y\n\n";
  const std::string crlf = "event: ping\r\ndata: x\r\n\r\ndata: y\r\n\r\n";
  const std::string cr = "event: ping\rdata: x\r\rdata: y\r\r";
  auto a = parse_whole(lf);
  ASSERT_EQ(a.events.size(), 2U);
  EXPECT_EQ(a.events[0].event, "ping");
  EXPECT_EQ(a.events[1].event, "");
  expect_same(a, parse_whole(crlf));
  expect_same(a, parse_whole(cr));
  expect_same(a, parse_bytewise(crlf));
  expect_same(a, parse_bytewise(cr));
}

TEST(Sse, MultiLineDataIsJoinedWithNewline) {
  auto c = parse_whole("data: {\"a\":\ndata:1}\ndata\n\n");
  ASSERT_EQ(c.events.size(), 1U);
  EXPECT_EQ(c.events[0].data, "{\"a\":\n1}\n");
}

TEST(Sse, DropsOnlyOneSpaceAfterColon) {
  auto c = parse_whole("data:  two\n\ndata:none\n\n");
  ASSERT_EQ(c.events.size(), 2U);
  EXPECT_EQ(c.events[0].data, " two");
  EXPECT_EQ(c.events[1].data, "none");
}

TEST(Sse, CommentsAreCountedNotDispatched) {
  sse_parser p;
  std::vector<sse_event> events;
  ASSERT_TRUE(p.feed(": keep-alive\n\n: keep-alive\n\n",
                     [&](const sse_event& ev) { events.push_back(ev); }));
  EXPECT_TRUE(events.empty());
  EXPECT_EQ(p.comments(), 2U);
  EXPECT_FALSE(p.has_partial());
}

TEST(Sse, IdRetryAndEventsWithoutDataAreIgnored) {
  auto c = parse_whole("id: 7\nretry: 100\n\nevent: lonely\n\nevent: x\ndata: d\nunknown: f\n\n");
  ASSERT_EQ(c.events.size(), 1U);
  EXPECT_EQ(c.events[0].event, "x");  // the lonely event name does not leak into the next event
  EXPECT_EQ(c.events[0].data, "d");
}

TEST(Sse, Utf8SplitAcrossFeeds) {
  const std::string text = "data: {\"t\":\"नमस्ते दुनिया 😀\"}\n\n";
  auto whole = parse_whole(text);
  ASSERT_EQ(whole.events.size(), 1U);
  EXPECT_EQ(whole.events[0].data, "{\"t\":\"नमस्ते दुनिया 😀\"}");
  expect_same(whole, parse_bytewise(text));
  for (std::size_t cut = 0; cut <= text.size(); ++cut) {
    collected c;
    sse_parser p;
    auto sink = [&](const sse_event& ev) { c.events.push_back(ev); };
    ASSERT_TRUE(p.feed(std::string_view(text).substr(0, cut), sink));
    ASSERT_TRUE(p.feed(std::string_view(text).substr(cut), sink));
    expect_same(whole, c);
  }
}

TEST(Sse, PartialStateIsVisible) {
  sse_parser p;
  auto ignore = [](const sse_event&) {};
  EXPECT_FALSE(p.has_partial());
  ASSERT_TRUE(p.feed("data: [DO", ignore));
  EXPECT_TRUE(p.has_partial());
  ASSERT_TRUE(p.feed("NE]\n", ignore));
  EXPECT_TRUE(p.has_partial());  // data seen, blank line not yet
  int n = 0;
  ASSERT_TRUE(p.feed("\n", [&](const sse_event&) { ++n; }));
  EXPECT_EQ(n, 1);
  EXPECT_FALSE(p.has_partial());
}

TEST(Sse, OversizedEventIsRefused) {
  std::string big = "data: " + std::string(2000, 'x') + "\n\n";
  EXPECT_FALSE(parse_whole(big, 1000).ok);
  EXPECT_TRUE(parse_whole(big, 4000).ok);
  // Many data lines that together exceed the limit.
  std::string lines;
  for (int i = 0; i < 100; ++i) {
    lines += "data: " + std::string(50, 'y') + "\n";
  }
  EXPECT_FALSE(parse_whole(lines, 1000).ok);
}

TEST(Sse, AppendData) {
  std::string out = "x";
  append_sse_data(out, "[DONE]");
  EXPECT_EQ(out, "xdata: [DONE]\n\n");
}

TEST(Sse, RandomBytesNeverCrash) {
  std::mt19937 rng(99);
  const std::string alphabet = "data:event: \r\n\n\r:x{}\xE0\xA4";
  for (int i = 0; i < 5'000; ++i) {
    sse_parser p(256);
    std::size_t len = rng() % 200;
    std::string bytes;
    for (std::size_t k = 0; k < len; ++k) {
      bytes.push_back((i % 2) != 0 ? static_cast<char>(rng()) : alphabet[rng() % alphabet.size()]);
    }
    std::size_t pos = 0;
    while (pos < bytes.size()) {
      std::size_t n = 1 + rng() % 16;
      if (!p.feed(std::string_view(bytes).substr(pos, n),
                  [](const sse_event& ev) { ASSERT_LE(ev.data.size(), 256U); })) {
        break;
      }
      pos += n;
    }
  }
}

}  // namespace
}  // namespace ib::providers
