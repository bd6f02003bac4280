// Request bodies streamed both ways (issue 15, pass-through): the server hands a named request's
// body to its handler piece by piece (`server_options::streamed_body`, `responder::body_source`),
// and the upstream client sends a pulled body as it comes (`outgoing_request::pull_body`), with
// `content-length` or chunked. Real sockets on 127.0.0.1, every wait bounded, no sleeps.
#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <gtest/gtest.h>

#include "http/client.hpp"
#include "http/server.hpp"

namespace ib::http {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) {
    s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  }
  return s;
}

/// Pulls a streamed body to its end and answers with what it saw: `<bytes> <pieces> <status>`
/// (status: the last read's, as a number), or 413 for `too_large`.
void pull_all(std::shared_ptr<body_source> src, std::shared_ptr<responder> res,
              std::shared_ptr<std::string> seen, int pieces) {
  src->read([src, res, seen, pieces](body_piece p) {
    if (p.status == body_status::more || p.status == body_status::last) {
      *seen += p.bytes;
    }
    if (p.status == body_status::more) {
      return pull_all(src, res, seen, pieces + 1);
    }
    response r;
    r.content_type = "text/plain";
    if (p.status == body_status::too_large) {
      r.status = 413;
    }
    r.body = std::to_string(seen->size()) + " " + std::to_string(pieces + 1) + " "
             + std::to_string(static_cast<int>(p.status)) + " "
             + std::to_string(std::hash<std::string>{}(*seen));
    res->send(std::move(r));
  });
}

/// The server on 127.0.0.1:0 (one I/O thread) whose handler streams bodies to `/stream` (limit
/// `limit`) and reads others whole.
class StreamedBodyTest : public testing::Test {
 protected:
  ~StreamedBodyTest() override {
    if (srv_) {
      srv_->close();
    }
    work_.reset();
    if (thread_.joinable()) {
      if (drained_.wait_for(5s) != std::future_status::ready) {
        io_.stop();
      }
      thread_.join();
    }
  }

  void start(std::size_t limit) {
    server_options opts;
    opts.host = "127.0.0.1";
    opts.port = 0;
    opts.max_body_bytes = 1024;
    opts.read_timeout = 5s;
    opts.streamed_body = [limit](method, std::string_view target) -> std::optional<std::size_t> {
      if (target.starts_with("/stream")) {
        return limit;
      }
      return std::nullopt;
    };
    srv_.emplace(io_, std::move(opts), [this](request&& req, responder&& res) {
      auto src = res.body_source();
      ++handled_;
      if (!src) {
        response r;
        r.content_type = "text/plain";
        r.body = "whole " + std::to_string(req.body.size());
        return res.send(std::move(r));
      }
      EXPECT_NE(res.io_context(), nullptr);
      pull_all(src, std::make_shared<responder>(std::move(res)), std::make_shared<std::string>(),
               0);
    });
    auto ok = srv_->listen();
    ASSERT_TRUE(ok) << ok.error().message;
    srv_->start();
    std::promise<void> done;
    drained_ = done.get_future();
    thread_ = std::thread([this, done = std::move(done)]() mutable {
      io_.run();
      done.set_value();
    });
  }

  /// Sends `raw` on a connection and reads responses until `count` arrived or the peer closed (5
  /// s).
  std::vector<bhttp::response<bhttp::string_body>> exchange(std::string raw, int count = 1) {
    net::io_context cio;
    beast::tcp_stream stream{cio};
    stream.expires_after(5s);
    stream.connect(tcp::endpoint{net::ip::make_address("127.0.0.1"), srv_->port()});
    beast::error_code ec;
    net::write(stream, net::buffer(raw), ec);
    std::vector<bhttp::response<bhttp::string_body>> out;
    beast::flat_buffer buf;
    for (int i = 0; i < count; ++i) {
      bhttp::response<bhttp::string_body> res;
      bhttp::read(stream, buf, res, ec);
      if (ec) {
        break;
      }
      out.push_back(std::move(res));
    }
    return out;
  }

  static std::string head(std::string target, std::string framing) {
    return "POST " + target + " HTTP/1.1\r\nhost: x\r\n" + framing + "\r\n\r\n";
  }

  static std::string chunked(const std::string& body, std::size_t piece) {
    std::string out;
    char size[32];
    for (std::size_t at = 0; at < body.size(); at += piece) {
      auto part = body.substr(at, piece);
      std::snprintf(size, sizeof size, "%zx\r\n", part.size());
      out += size + part + "\r\n";
    }
    return out + "0\r\n\r\n";
  }

  static std::string expected(const std::string& body) { return std::to_string(body.size()) + " "; }

  net::io_context io_;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_{
      net::make_work_guard(io_)};
  std::optional<server> srv_;
  std::future<void> drained_;
  std::thread thread_;
  std::atomic<int> handled_{0};
};

TEST_F(StreamedBodyTest, ContentLengthBodyArrivesWholeInPiecesAboveTheWholeBodyLimit) {
  start(4 << 20);
  const auto body = pattern(1 << 20);  // far above max_body_bytes (1 KiB)
  auto res = exchange(head("/stream", "content-length: " + std::to_string(body.size())) + body);
  ASSERT_EQ(res.size(), 1u);
  EXPECT_EQ(res[0].result_int(), 200);
  const auto text = res[0].body();
  EXPECT_TRUE(text.starts_with(expected(body))) << text;
  EXPECT_TRUE(text.ends_with(" " + std::to_string(static_cast<int>(body_status::last)) + " "
                             + std::to_string(std::hash<std::string>{}(body))))
      << text;
  EXPECT_NE(text, std::to_string(body.size()) + " 1 1") << "read in one piece";
}

TEST_F(StreamedBodyTest, ChunkedBodyIsDechunkedAndTheConnectionKeptAlive) {
  start(4 << 20);
  const auto body = pattern(300'000);
  std::string raw = head("/stream", "transfer-encoding: chunked") + chunked(body, 7'000);
  raw += "GET /whole HTTP/1.1\r\nhost: x\r\n\r\n";
  auto res = exchange(raw, 2);
  ASSERT_EQ(res.size(), 2u);
  EXPECT_TRUE(res[0].body().starts_with(expected(body))) << res[0].body();
  EXPECT_TRUE(res[0].body().ends_with(std::to_string(std::hash<std::string>{}(body))));
  EXPECT_TRUE(res[0].keep_alive());
  EXPECT_EQ(res[1].body(), "whole 0");
}

TEST_F(StreamedBodyTest, OtherRequestsAreReadWholeUnderMaxBodyBytes) {
  start(4 << 20);
  auto ok = exchange(head("/whole", "content-length: 5") + "hello");
  ASSERT_EQ(ok.size(), 1u);
  EXPECT_EQ(ok[0].body(), "whole 5");
  auto big = exchange(head("/whole", "content-length: 2000") + pattern(2000));
  ASSERT_EQ(big.size(), 1u);
  EXPECT_EQ(big[0].result_int(), 413);
}

TEST_F(StreamedBodyTest, ContentLengthOverTheStreamedLimitIs413AtTheHead) {
  start(64 * 1024);
  auto res = exchange(head("/stream", "content-length: 65537"));
  ASSERT_EQ(res.size(), 1u);
  EXPECT_EQ(res[0].result_int(), 413);
  EXPECT_NE(res[0].body().find("65536"), std::string::npos) << res[0].body();
  EXPECT_EQ(handled_.load(), 0);
  EXPECT_FALSE(res[0].keep_alive());
}

TEST_F(StreamedBodyTest, ChunkedOverTheLimitIsTooLargeForTheHandlerAndClosesTheConnection) {
  start(64 * 1024);
  const auto body = pattern(100'000);
  auto res = exchange(head("/stream", "transfer-encoding: chunked") + chunked(body, 8'000), 2);
  ASSERT_EQ(res.size(), 1u);
  EXPECT_EQ(res[0].result_int(), 413);
  EXPECT_FALSE(res[0].keep_alive());
  const auto status = " " + std::to_string(static_cast<int>(body_status::too_large)) + " ";
  EXPECT_NE(res[0].body().find(status), std::string::npos) << res[0].body();
  EXPECT_EQ(handled_.load(), 1);
}

TEST_F(StreamedBodyTest, AnAnswerBeforeTheBodyIsReadClosesTheConnection) {
  server_options opts;
  opts.host = "127.0.0.1";
  opts.port = 0;
  opts.streamed_body = [](method, std::string_view) -> std::optional<std::size_t> {
    return 1 << 20;
  };
  srv_.emplace(io_, std::move(opts), [](request&&, responder&& res) {
    response r;
    r.status = 424;
    res.send(std::move(r));  // without reading the body
  });
  ASSERT_TRUE(srv_->listen());
  srv_->start();
  std::promise<void> done;
  drained_ = done.get_future();
  thread_ = std::thread([this, done = std::move(done)]() mutable {
    io_.run();
    done.set_value();
  });
  const auto body = pattern(20'000);
  auto res = exchange(head("/x", "content-length: 20000") + body + "GET /y HTTP/1.1\r\n\r\n", 2);
  ASSERT_EQ(res.size(), 1u) << "the rest of the body must never be read as a request";
  EXPECT_EQ(res[0].result_int(), 424);
  EXPECT_FALSE(res[0].keep_alive());
}

// -- the client's pulled body ---------------------------------------------------------------------

/// A one-request upstream on 127.0.0.1:0: reads a request (Beast, whole) and answers 200 with
/// `<method> <target> <framing> <bytes> <hash>`.
class echo_upstream {
 public:
  echo_upstream() : acceptor_(io_, {net::ip::make_address("127.0.0.1"), 0}) {
    thread_ = std::thread([this] {
      beast::error_code ec;
      tcp::socket sock{io_};
      acceptor_.accept(sock, ec);
      if (ec) {
        return;
      }
      beast::flat_buffer buf;
      bhttp::request_parser<bhttp::string_body> parser;
      parser.body_limit(64 << 20);
      bhttp::read(sock, buf, parser, ec);
      if (ec) {
        return;
      }
      auto& req = parser.get();
      std::string framing = req.chunked() ? "chunked"
                            : req.has_content_length()
                                ? "length=" + std::string(req[bhttp::field::content_length])
                                : "none";
      bhttp::response<bhttp::string_body> res{bhttp::status::ok, 11};
      res.body() = std::string(req.method_string()) + " " + std::string(req.target()) + " "
                   + framing + " " + std::to_string(req.body().size()) + " "
                   + std::to_string(std::hash<std::string>{}(req.body()));
      res.prepare_payload();
      bhttp::write(sock, res, ec);
    });
  }
  ~echo_upstream() {
    beast::error_code ec;
    acceptor_.close(ec);
    thread_.join();
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

 private:
  net::io_context io_;
  tcp::acceptor acceptor_;
  std::thread thread_;
};

class capture final : public exchange_handler {
 public:
  void on_head(const response_head&) override {}
  body_action on_body(std::string_view b) override {
    body += b;
    return {.payload = true};
  }
  void on_complete(exchange_result r) override {
    if (r.body.empty()) {
      r.body = body;
    }
    done.set_value(std::move(r));
  }
  std::string body;
  std::promise<exchange_result> done;
};

class PulledBodyTest : public testing::Test {
 protected:
  PulledBodyTest() : guard_(net::make_work_guard(io_)), thread_([this] { io_.run(); }) {}
  ~PulledBodyTest() override {
    pool_.reset();
    guard_.reset();
    thread_.join();
  }

  exchange_result call(std::uint16_t port, outgoing_request req) {
    client_options o;
    o.endpoint = {false, "127.0.0.1", port};
    o.connect_timeout = 2s;
    o.first_byte_timeout = 5s;
    o.total_timeout = 10s;
    pool_ = std::make_unique<upstream_pool>(io_, o);
    req.deadline = std::chrono::steady_clock::now() + 10s;
    auto h = std::make_shared<capture>();
    auto f = h->done.get_future();
    pool_->start(std::move(req), h);
    EXPECT_EQ(f.wait_for(10s), std::future_status::ready);
    return f.get();
  }

  /// A puller over `body` in pieces of `piece` bytes, answering from another thread; `pulls`
  /// counts the calls. `fail_at`: the pull that reports `failed` instead.
  static body_puller puller(std::shared_ptr<const std::string> body, std::size_t piece,
                            std::shared_ptr<std::atomic<int>> pulls, int fail_at = -1) {
    auto at = std::make_shared<std::size_t>(0);
    return [=](std::function<void(body_chunk)> done) {
      const int n = (*pulls)++;
      std::thread([=, done = std::move(done)] {
        body_chunk c;
        if (n == fail_at) {
          c.failed = true;
        } else {
          c.bytes = body->substr(*at, piece);
          *at += c.bytes.size();
          c.last = *at >= body->size();
        }
        done(std::move(c));
      }).detach();
    };
  }

  net::io_context io_;
  net::executor_work_guard<net::io_context::executor_type> guard_;
  std::thread thread_;
  std::unique_ptr<upstream_pool> pool_;
};

TEST_F(PulledBodyTest, WithALengthTheBodyIsSentAsItIsPulled) {
  echo_upstream up;
  auto body = std::make_shared<const std::string>(pattern(200'000));
  auto pulls = std::make_shared<std::atomic<int>>(0);
  outgoing_request req;
  req.target = "/v1/audio/transcriptions?x=1";
  req.pull_body = puller(body, 30'000, pulls);
  req.body_length = body->size();
  req.stream = true;
  auto r = call(up.port(), std::move(req));
  ASSERT_EQ(r.failure, exchange_failure::none) << to_string(r.failure);
  EXPECT_EQ(r.body, "POST /v1/audio/transcriptions?x=1 length=200000 200000 "
                        + std::to_string(std::hash<std::string>{}(*body)));
  EXPECT_EQ(pulls->load(), 7);
}

TEST_F(PulledBodyTest, WithoutALengthTheBodyIsSentChunked) {
  echo_upstream up;
  auto body = std::make_shared<const std::string>(pattern(100'001));
  auto pulls = std::make_shared<std::atomic<int>>(0);
  outgoing_request req;
  req.method = method::put;
  req.target = "/up";
  req.pull_body = puller(body, 10'000, pulls);
  auto r = call(up.port(), std::move(req));
  ASSERT_EQ(r.failure, exchange_failure::none) << to_string(r.failure);
  EXPECT_EQ(r.body, "PUT /up chunked 100001 " + std::to_string(std::hash<std::string>{}(*body)));
}

TEST_F(PulledBodyTest, AFailedPullEndsTheExchangeAsCancelled) {
  echo_upstream up;
  auto body = std::make_shared<const std::string>(pattern(100'000));
  auto pulls = std::make_shared<std::atomic<int>>(0);
  outgoing_request req;
  req.target = "/up";
  req.pull_body = puller(body, 10'000, pulls, 3);
  req.body_length = body->size();
  auto r = call(up.port(), std::move(req));
  EXPECT_EQ(r.failure, exchange_failure::cancelled);
  EXPECT_EQ(pulls->load(), 4);
}

TEST_F(PulledBodyTest, APieceBeyondTheDeclaredLengthIsNeverSent) {
  echo_upstream up;
  auto body = std::make_shared<const std::string>(pattern(50'000));
  auto pulls = std::make_shared<std::atomic<int>>(0);
  outgoing_request req;
  req.target = "/up";
  req.pull_body = puller(body, 10'000, pulls);
  req.body_length = 25'000;  // fewer than the source gives
  auto r = call(up.port(), std::move(req));
  EXPECT_EQ(r.failure, exchange_failure::cancelled);
}

TEST_F(PulledBodyTest, GetAndDeleteWithoutBodySendNoLength) {
  for (auto m : {method::get, method::delete_}) {
    echo_upstream up;
    outgoing_request req;
    req.method = m;
    req.target = "/v1/files/f1";
    auto r = call(up.port(), std::move(req));
    ASSERT_EQ(r.failure, exchange_failure::none) << to_string(r.failure);
    EXPECT_EQ(r.body, std::string(to_string(m)) + " /v1/files/f1 none 0 "
                          + std::to_string(std::hash<std::string>{}("")));
    pool_.reset();
  }
}

}  // namespace
}  // namespace ib::http
