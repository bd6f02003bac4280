#include "http/wire.hpp"

#include <string>

#include <gtest/gtest.h>

namespace ib::http {
namespace {

response json_200() {
  response r;
  r.headers = {{"x-request-id", "req_1"}, {"x-inferbridge-provider", "groq"}};
  r.body = R"({"ok":true})";
  return r;
}

TEST(Wire, ResponseHeadWithContentLength) {
  EXPECT_EQ(write_response_head(json_200(), "inferbridge", true, false, false),
            "HTTP/1.1 200 OK\r\nserver: inferbridge\r\ncontent-type: application/json\r\n"
            "x-request-id: req_1\r\nx-inferbridge-provider: groq\r\ncontent-length: 11\r\n\r\n");
}

TEST(Wire, StreamHeadIsChunkedAndErrorHeadCloses) {
  response sse;
  sse.content_type = "text/event-stream";
  EXPECT_EQ(write_response_head(sse, "", true, true, false),
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            "transfer-encoding: chunked\r\ncache-control: no-cache\r\n\r\n");
  response err;
  err.status = 503;
  err.body = "{}";
  EXPECT_EQ(write_response_head(err, "", false, false, false),
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
            "content-length: 2\r\nconnection: close\r\n\r\n");
}

TEST(Wire, HeadAnswersAndBodilessStatuses) {
  EXPECT_NE(write_response_head(json_200(), "", true, false, true).find("content-length: 0\r\n"),
            std::string::npos);
  response none;
  none.status = 204;
  EXPECT_EQ(write_response_head(none, "", true, false, false), "HTTP/1.1 204 No Content\r\n\r\n");
}

TEST(Wire, ReasonPhrasesAreBeasts) {
  response r;
  r.content_type.clear();
  for (auto [status, line] : {std::pair{424, "HTTP/1.1 424 Failed Dependency\r\n"},
                              std::pair{413, "HTTP/1.1 413 Payload Too Large\r\n"},
                              std::pair{529, "HTTP/1.1 529 \r\n"}}) {
    r.status = status;
    EXPECT_EQ(write_response_head(r, "", true, false, false).rfind(line, 0), 0u) << status;
  }
}

TEST(Wire, LineBreaksInValuesNeverSplitAHeader) {
  response r;
  r.content_type.clear();
  r.headers = {{"x-inferbridge-model", "evil\r\nset-cookie: a=b"}};
  auto head = write_response_head(r, "", true, false, false);
  EXPECT_NE(head.find("x-inferbridge-model: evil  set-cookie: a=b\r\n"), std::string::npos);
  EXPECT_EQ(head.find("\r\nset-cookie"), std::string::npos);
  auto req = write_request_head("/v1", "h", {{"authorization", "Bearer a\nb"}}, 0);
  EXPECT_NE(req.find("authorization: Bearer a b\r\n"), std::string::npos);
}

TEST(Wire, RequestHead) {
  EXPECT_EQ(write_request_head(
                "/openai/v1/chat/completions", "api.example.com:8443",
                {{"content-type", "application/json"}, {"authorization", "Bearer k"}}, 412),
            "POST /openai/v1/chat/completions HTTP/1.1\r\nhost: api.example.com:8443\r\n"
            "user-agent: inferbridge\r\ncontent-length: 412\r\ncontent-type: application/json\r\n"
            "authorization: Bearer k\r\n\r\n");
}

TEST(Wire, ChunkFraming) {
  std::string out;
  append_chunk(out, "");
  EXPECT_EQ(out, "");  // an empty chunk would end the body
  append_chunk(out, std::string(26, 'z'));
  EXPECT_EQ(out, "1a\r\n" + std::string(26, 'z') + "\r\n");
  out.clear();
  append_last_chunk(out);
  EXPECT_EQ(out, "0\r\n\r\n");
}

}  // namespace
}  // namespace ib::http
