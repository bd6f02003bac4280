#include "http/head_parser.hpp"

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <gtest/gtest.h>

namespace ib::http {
namespace {

namespace bhttp = boost::beast::http;
using error_code = boost::beast::error_code;

/// Feeds `wire` to `p`, in pieces of at most `step` bytes (the way a socket delivers them),
/// until the message is done or fails; then EOF if `eof`. The first error, or none.
template <bool IsRequest>
error_code feed(head_parser<IsRequest>& p, std::string_view wire, std::size_t step = 1 << 20,
                bool eof = false) {
  p.eager(true);
  std::string pending;
  error_code ec;
  while (!p.is_done()) {
    if (!wire.empty()) {
      auto n = std::min(step, wire.size());
      pending.append(wire.substr(0, n));
      wire.remove_prefix(n);
    }
    auto used = p.put(boost::asio::buffer(pending), ec);
    pending.erase(0, used);
    if (ec == bhttp::error::need_more) {
      ec = {};
      if (wire.empty()) {
        break;
      }
      continue;
    }
    if (ec) {
      return ec;
    }
    if (used == 0 && wire.empty()) {
      break;
    }
  }
  if (eof && !p.is_done()) {
    p.put_eof(ec);
  }
  return ec;
}

const std::vector<kept_field>& request_fields() {
  static const std::vector<std::string> names{"authorization", "X-Custom-Id"};
  static const auto kept = resolve_kept(names);
  return kept;
}

// -- requests -------------------------------------------------------------------------------------

TEST(HeadParser, RequestLineKeptFieldsAndContentLengthBody) {
  request_parser p{request_fields(), 1024, 1024};
  auto ec =
      feed(p,
           "POST /v1/chat?x=1 HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer k\r\n"
           "x-custom-id: 1\r\nX-CUSTOM-ID: 2\r\nx-other: no\r\nContent-Length: 5\r\n\r\nhello");
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_TRUE(p.is_done());
  EXPECT_EQ(p.method(), method::post);
  EXPECT_EQ(p.target(), "/v1/chat?x=1");
  EXPECT_EQ(p.values()[0], "Bearer k");
  EXPECT_EQ(p.values()[1], "2");  // repeated, not a list: the last line wins
  EXPECT_EQ(p.values()[2], "");
  EXPECT_EQ(p.body(), "hello");
  EXPECT_TRUE(p.keep_alive());
  EXPECT_FALSE(p.expect_continue());
}

TEST(HeadParser, UnknownMethodsAreOther) {
  request_parser p{request_fields(), 1024, 1024};
  ASSERT_FALSE(feed(p, "PROPFIND / HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(p.method(), method::other);
}

TEST(HeadParser, ChunkedBodyIsDechunkedWhateverThePieces) {
  const std::string wire =
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n1;ext=1\r\n \r\na\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n";
  for (std::size_t step : {std::size_t{1}, std::size_t{3}, std::size_t{1} << 20}) {
    request_parser p{request_fields(), 1024, 1024};
    auto ec = feed(p, wire, step);
    ASSERT_FALSE(ec) << ec.message() << " step " << step;
    EXPECT_TRUE(p.is_done());
    EXPECT_EQ(p.body(), "hello 0123456789") << step;
  }
}

TEST(HeadParser, ExpectContinueIsSeen) {
  request_parser p{request_fields(), 1024, 1024};
  ASSERT_FALSE(feed(p, "POST / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\n"));
  EXPECT_TRUE(p.is_header_done());
  EXPECT_TRUE(p.expect_continue());
}

TEST(HeadParser, HeaderLimitCoversStartLineAndFields) {
  const std::string wire = "GET / HTTP/1.1\r\nX-Pad: " + std::string(100, 'a') + "\r\n\r\n";
  request_parser small{request_fields(), 64, 1024};
  EXPECT_EQ(feed(small, wire), bhttp::error::header_limit);
  request_parser enough{request_fields(), 256, 1024};
  EXPECT_FALSE(feed(enough, wire));
}

TEST(HeadParser, BodyLimitAppliesToContentLengthAndChunkedBodies) {
  {
    request_parser p{request_fields(), 1024, 4};
    EXPECT_EQ(feed(p, "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"),
              bhttp::error::body_limit);
    EXPECT_TRUE(p.too_large());
  }
  {
    request_parser p{request_fields(), 1024, 4};
    EXPECT_EQ(feed(p,
                   "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"
                   "3\r\ndef\r\n0\r\n\r\n"),
              bhttp::error::body_limit);
    EXPECT_TRUE(p.too_large());
  }
  {
    request_parser p{request_fields(), 1024, 5};  // exactly at the limit
    EXPECT_FALSE(feed(p, "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"));
    EXPECT_FALSE(p.too_large());
    EXPECT_EQ(p.body(), "hello");
  }
}

TEST(HeadParser, ReservesADeclaredLengthOnlyWhenAskedAndWithinLimits) {
  const std::string wire = "POST / HTTP/1.1\r\nContent-Length: 500\r\n\r\nabc";
  request_parser asked{request_fields(), 1024, 1024};
  asked.reserve_up_to(1024);
  EXPECT_FALSE(feed(asked, wire));
  EXPECT_GE(asked.body().capacity(), 500u);
  request_parser not_asked{request_fields(), 1024, 1024};
  EXPECT_FALSE(feed(not_asked, wire));
  EXPECT_LT(not_asked.body().capacity(), 500u);
  request_parser over_limit{request_fields(), 1024, 1024};
  over_limit.reserve_up_to(100);
  EXPECT_FALSE(feed(over_limit, wire));
  EXPECT_LT(over_limit.body().capacity(), 500u);
}

TEST(HeadParser, MalformedRequestsFail) {
  const char* cases[] = {
      "GET / HTTP/1.1\r\nBad Field: x\r\n\r\n",                             // space in a name
      "GET / HTTP/9.9\r\n\r\n",                                             // version
      "GET\r\n\r\n",                                                        // no target
      "POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n",                       // length
      "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",  // two lengths
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",        // chunk size
  };
  for (const char* wire : cases) {
    request_parser p{request_fields(), 1024, 1024};
    auto ec = feed(p, wire);
    EXPECT_TRUE(ec) << wire;
    EXPECT_EQ(ec.category(), bhttp::make_error_code(bhttp::error::bad_method).category()) << wire;
  }
}

// -- responses ------------------------------------------------------------------------------------

const std::vector<kept_field>& response_fields() {
  static const std::vector<kept_field> kept{
      {bhttp::field::content_type, "content-type", false},
      {bhttp::field::unknown, "retry-after-ms", false},
      {bhttp::field::keep_alive, "keep-alive", true},
  };
  return kept;
}

TEST(HeadParser, ResponseStatusFieldsAndListJoin) {
  response_parser p{response_fields(), 1024, 1024};
  auto ec = feed(p,
                 "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
                 "Retry-After-Ms: 250\r\nKeep-Alive: timeout=10\r\nkeep-alive: max=5\r\n"
                 "Content-Length: 2\r\n\r\n{}");
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(p.status(), 429);
  EXPECT_EQ(p.values()[0], "application/json");
  EXPECT_EQ(p.values()[1], "250");
  EXPECT_EQ(p.values()[2], "timeout=10, max=5");  // a list: every line counts
  EXPECT_EQ(p.body(), "{}");
}

TEST(HeadParser, SinkTakesTheBodyAndItsOwnLimit) {
  response_parser p{response_fields(), 1024, 4};  // too small for the body below
  ASSERT_FALSE(feed(p, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"));
  ASSERT_TRUE(p.is_header_done());
  std::string piece;
  p.sink(&piece, response_parser::unlimited);
  ASSERT_FALSE(feed(p, "6\r\nabcdef\r\n0\r\n\r\n"));
  EXPECT_TRUE(p.is_done());
  EXPECT_EQ(piece, "abcdef");
  EXPECT_EQ(p.body(), "");
}

TEST(HeadParser, BodyDelimitedByEofEndsAtEof) {
  response_parser p{response_fields(), 1024, 1024};
  auto ec = feed(p, "HTTP/1.0 200 OK\r\n\r\npartial body", 1 << 20, true);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_TRUE(p.is_done());
  EXPECT_FALSE(p.keep_alive());
  EXPECT_EQ(p.body(), "partial body");
}

TEST(HeadParser, TruncatedContentLengthBodyIsAPartialMessage) {
  response_parser p{response_fields(), 1024, 1024};
  EXPECT_EQ(feed(p, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 1 << 20, true),
            bhttp::error::partial_message);
}

TEST(HeadParser, MalformedResponsesFail) {
  for (const char* wire : {"HTTP/1.1 2000 OK\r\n\r\n", "HTTX/1.1 200 OK\r\n\r\n",
                           "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"}) {
    response_parser p{response_fields(), 1024, 1024};
    EXPECT_TRUE(feed(p, wire)) << wire;
  }
}

}  // namespace
}  // namespace ib::http
