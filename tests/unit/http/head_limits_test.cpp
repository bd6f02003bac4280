// The request parser's header-count and target-length limits (issue 18): pure, no sockets.
#include <cstddef>
#include <string>
#include <string_view>

#include <boost/asio/buffer.hpp>
#include <gtest/gtest.h>

#include "http/head_parser.hpp"

namespace ib::http {
namespace {

namespace bhttp = boost::beast::http;
using error_code = boost::beast::error_code;

/// Parses the header of `wire` (complete in one piece); the error, or none.
error_code parse_header(request_parser& p, const std::string& wire) {
  p.eager(false);
  error_code ec;
  p.put(boost::asio::buffer(wire), ec);
  return ec;
}

std::string request_with_fields(std::size_t fields, std::size_t target_bytes = 1) {
  std::string wire = "GET /" + std::string(target_bytes - 1, 'a') + " HTTP/1.1\r\n";
  for (std::size_t i = 0; i < fields; ++i) {
    wire += "x-f" + std::to_string(i) + ": v\r\n";
  }
  return wire + "\r\n";
}

TEST(HeadLimits, FieldCountUpToTheLimitPasses) {
  request_parser p{{}, 16 * 1024, 1024};
  p.field_limit(5);
  EXPECT_FALSE(parse_header(p, request_with_fields(5)));
  EXPECT_TRUE(p.is_header_done());
  EXPECT_FALSE(p.too_many_fields());
}

TEST(HeadLimits, OneFieldMoreFailsWithHeaderLimit) {
  request_parser p{{}, 16 * 1024, 1024};
  p.field_limit(5);
  EXPECT_EQ(parse_header(p, request_with_fields(6)), bhttp::error::header_limit);
  EXPECT_TRUE(p.too_many_fields());
  EXPECT_FALSE(p.target_too_long());
}

TEST(HeadLimits, NoFieldLimitByDefault) {
  request_parser p{{}, 64 * 1024, 1024};
  EXPECT_FALSE(parse_header(p, request_with_fields(1000)));
  EXPECT_FALSE(p.too_many_fields());
}

TEST(HeadLimits, TargetUpToTheLimitPasses) {
  request_parser p{{}, 16 * 1024, 1024};
  p.target_limit(100);
  EXPECT_FALSE(parse_header(p, request_with_fields(1, 100)));
  EXPECT_EQ(p.target().size(), 100U);
  EXPECT_TRUE(p.got_start_line());
}

TEST(HeadLimits, LongerTargetFailsBeforeAnyField) {
  request_parser p{{}, 16 * 1024, 1024};
  p.target_limit(100);
  EXPECT_EQ(parse_header(p, request_with_fields(1, 101)), bhttp::error::header_limit);
  EXPECT_TRUE(p.target_too_long());
  EXPECT_FALSE(p.too_many_fields());
  EXPECT_TRUE(p.target().empty());  // nothing of it was copied
}

TEST(HeadLimits, HeaderLimitBeforeTheStartLineIsParsed) {
  // Beast parses the start line only once the whole header is buffered: past the header limit
  // the caller learns that the start line was never parsed (the server then measures it).
  request_parser p{{}, 256, 1024};
  p.target_limit(100);
  std::string wire = "GET /" + std::string(1000, 'a');
  EXPECT_EQ(parse_header(p, wire), bhttp::error::header_limit);
  EXPECT_FALSE(p.got_start_line());
  EXPECT_FALSE(p.target_too_long());
}

TEST(HeadLimits, ResponsesCountFieldsToo) {
  response_parser p{{}, 16 * 1024, 1024};
  p.field_limit(2);
  error_code ec;
  std::string wire = "HTTP/1.1 200 OK\r\na: 1\r\nb: 2\r\nc: 3\r\n\r\n";
  p.put(boost::asio::buffer(wire), ec);
  EXPECT_EQ(ec, bhttp::error::header_limit);
  EXPECT_TRUE(p.too_many_fields());
}

}  // namespace
}  // namespace ib::http
