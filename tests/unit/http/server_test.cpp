#include "http/server.hpp"

#include <atomic>
#include <chrono>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <gtest/gtest.h>

namespace ib::http {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using namespace std::chrono_literals;

/// The real server on 127.0.0.1:0, its io_context on one thread; a blocking client whose every
/// exchange is bounded by a deadline (no sleeps).
class ServerTest : public testing::Test {
 protected:
  ~ServerTest() override {
    // Every client connection is closed by now: once the sessions have seen that and the
    // acceptor is closed, the io_context runs out of work. Wait for that (bounded), so no
    // session is left half-way when the io_context goes.
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

  /// Starts a server that answers every request with `h`.
  void start(server_options opts, handler h) {
    opts.host = "127.0.0.1";
    opts.port = 0;
    srv_.emplace(io_, std::move(opts), std::move(h));
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

  /// Sends `req` on a fresh connection and reads one response (at most 5 s in all).
  bhttp::response<bhttp::string_body> exchange(bhttp::request<bhttp::string_body> req) {
    net::io_context cio;
    beast::tcp_stream stream{cio};
    beast::flat_buffer buf;
    bhttp::response<bhttp::string_body> res;
    stream.expires_after(5s);
    auto ep = net::ip::tcp::endpoint{net::ip::make_address("127.0.0.1"), srv_->port()};
    req.prepare_payload();
    stream.async_connect(ep, [&](beast::error_code ec) {
      ASSERT_FALSE(ec) << ec.message();
      bhttp::async_write(stream, req, [&](beast::error_code wec, std::size_t) {
        ASSERT_FALSE(wec) << wec.message();
        bhttp::async_read(stream, buf, res, [](beast::error_code rec, std::size_t) {
          ASSERT_FALSE(rec) << rec.message();
        });
      });
    });
    cio.run();
    return res;
  }

  static bhttp::request<bhttp::string_body> get(std::string target) {
    return {bhttp::verb::get, target, 11};
  }

  net::io_context io_;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_{
      net::make_work_guard(io_)};
  std::optional<server> srv_;
  std::future<void> drained_;
  std::thread thread_;
};

/// Echoes the kept header values, `|`-separated.
void echo_headers(request&& req, responder&& res) {
  response r;
  r.content_type = "text/plain";
  r.body = req.headers[0] + "|" + req.headers[1] + "|" + req.headers[2] + "|" + req.headers[3];
  res.send(std::move(r));
}

TEST_F(ServerTest, KeepsOnlyTheListedHeadersInListOrder) {
  server_options opts;
  opts.kept_headers = {"X-Custom-Id", "authorization", "accept"};
  start(std::move(opts), echo_headers);
  auto req = get("/anything");
  req.set("AUTHORIZATION", "Bearer t0k");  // a field Beast knows, in any case
  req.set("x-custom-id", "first");
  req.insert("X-CUSTOM-ID", "7");  // an unknown field, repeated: the last one wins
  req.set("x-other", "not kept");
  auto res = exchange(std::move(req));
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), "7|Bearer t0k||");
}

TEST_F(ServerTest, KeepsNoHeadersByDefault) {
  start({}, echo_headers);
  auto req = get("/");
  req.set(bhttp::field::authorization, "Bearer t0k");
  auto res = exchange(std::move(req));
  EXPECT_EQ(res.body(), "|||");
}

TEST_F(ServerTest, SendsTheConfiguredServerName) {
  server_options opts;
  opts.server_name = "unit-test";
  start(std::move(opts), echo_headers);
  auto res = exchange(get("/"));
  EXPECT_EQ(res[bhttp::field::server], "unit-test");
  EXPECT_EQ(res[bhttp::field::content_type], "text/plain");
}

TEST_F(ServerTest, SendsNoServerHeaderWithoutAName) {
  start({}, echo_headers);
  auto res = exchange(get("/"));
  EXPECT_EQ(res.count(bhttp::field::server), 0u);
}

TEST_F(ServerTest, PassesMethodTargetAndBody) {
  start({}, [](request&& req, responder&& res) {
    response r;
    r.status = 201;
    r.body = std::string(to_string(req.method)) + " " + std::string(req.path()) + " "
             + std::string(req.query()) + " " + req.body + (req.from_loopback ? " loopback" : "");
    res.send(std::move(r));
  });
  bhttp::request<bhttp::string_body> req{bhttp::verb::post, "/p/q?x=1", 11};
  req.body() = "hello";
  auto res = exchange(std::move(req));
  EXPECT_EQ(res.result_int(), 201);
  EXPECT_EQ(res.body(), "POST /p/q x=1 hello loopback");
}

TEST_F(ServerTest, AnswersTooLargeBodiesWith413BeforeTheHandler) {
  server_options opts;
  opts.max_body_bytes = 8;
  std::atomic<bool> called{false};
  start(std::move(opts), [&called](request&&, responder&& res) {
    called = true;
    res.send({});
  });
  bhttp::request<bhttp::string_body> req{bhttp::verb::post, "/", 11};
  req.body() = std::string(64, 'x');
  auto res = exchange(std::move(req));
  EXPECT_EQ(res.result_int(), 413);
  EXPECT_FALSE(res.keep_alive());
  EXPECT_FALSE(called);
}

TEST(Server, RefusesToKeepTooManyHeaders) {
  net::io_context io;
  server_options opts;
  opts.host = "127.0.0.1";
  opts.port = 0;
  for (std::size_t i = 0; i <= max_kept_headers; ++i) {
    opts.kept_headers.push_back("x-h" + std::to_string(i));
  }
  server srv{io, std::move(opts), echo_headers};
  auto ok = srv.listen();
  ASSERT_FALSE(ok);
  EXPECT_NE(ok.error().message.find("request headers"), std::string::npos);
}

// -- the HTTP limits of issue 18 -----------------------------------------------------------------

/// Answers 200 "ok" to everything.
void ok_handler(request&&, responder&& res) {
  response r;
  r.content_type = "text/plain";
  r.body = "ok";
  res.send(std::move(r));
}

TEST_F(ServerTest, AnswersTooManyHeaderFieldsWith431) {
  server_options opts;
  opts.max_header_count = 8;
  start(std::move(opts), ok_handler);
  auto at_limit = get("/");
  for (int i = 0; i < 7; ++i) {  // and Host: 8 fields
    at_limit.set("x-f" + std::to_string(i), "v");
  }
  at_limit.set(bhttp::field::host, "h");
  EXPECT_EQ(exchange(std::move(at_limit)).result_int(), 200);
  auto over = get("/");
  for (int i = 0; i < 9; ++i) {
    over.set("x-f" + std::to_string(i), "v");
  }
  auto res = exchange(std::move(over));
  EXPECT_EQ(res.result_int(), 431);
  EXPECT_FALSE(res.keep_alive());
  EXPECT_NE(res.body().find("more than 8 header fields"), std::string::npos) << res.body();
  EXPECT_NE(res.body().find("\"type\":\"invalid_request_error\""), std::string::npos);
}

TEST_F(ServerTest, AnswersLongTargetsWith414EvenPastTheHeaderLimit) {
  server_options opts;
  opts.max_url_bytes = 64;
  opts.max_header_bytes = 1024;
  start(std::move(opts), ok_handler);
  EXPECT_EQ(exchange(get("/" + std::string(63, 'a'))).result_int(), 200);
  auto res = exchange(get("/" + std::string(64, 'a')));
  EXPECT_EQ(res.result_int(), 414);
  EXPECT_NE(res.body().find("limit of 64 bytes"), std::string::npos) << res.body();
  // Longer than the whole header limit: still the target's fault.
  EXPECT_EQ(exchange(get("/" + std::string(4096, 'a'))).result_int(), 414);
  // A large field with a short target: the header's.
  auto big = get("/");
  big.set("x-big", std::string(2048, 'b'));
  EXPECT_EQ(exchange(std::move(big)).result_int(), 431);
}

TEST_F(ServerTest, RefusesOneConnectionTooManyWith503AndKeepsServing) {
  server_options opts;
  opts.max_connections = 1;
  start(std::move(opts), ok_handler);
  net::io_context cio;
  net::ip::tcp::socket held{cio};
  auto ep = net::ip::tcp::endpoint{net::ip::make_address("127.0.0.1"), srv_->port()};
  held.connect(ep);
  auto res = exchange(get("/"));
  EXPECT_EQ(res.result_int(), 503);
  EXPECT_EQ(res[bhttp::field::retry_after], "1");
  EXPECT_FALSE(res.keep_alive());
  EXPECT_NE(res.body().find("too many open connections"), std::string::npos) << res.body();
  // The held connection is still served.
  std::string wire = "GET / HTTP/1.1\r\nhost: h\r\n\r\n";
  net::write(held, net::buffer(wire));
  beast::flat_buffer buf;
  bhttp::response<bhttp::string_body> first;
  bhttp::read(held, buf, first);
  EXPECT_EQ(first.result_int(), 200);
  // Once it is gone, its place is free again (the server sees the close asynchronously).
  held.close();
  int status = 0;
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (status != 200 && std::chrono::steady_clock::now() < deadline) {
    status = exchange(get("/")).result_int();
  }
  EXPECT_EQ(status, 200);
}

TEST(Server, ATlsListenerNeedsReadableFiles) {
  net::io_context io;
  server_options opts;
  opts.host = "127.0.0.1";
  opts.port = 0;
  opts.tls_cert_file = "/nonexistent/cert.pem";
  opts.tls_key_file = "/nonexistent/key.pem";
  server srv{io, std::move(opts), ok_handler};
  auto ok = srv.listen();
  ASSERT_FALSE(ok);
  EXPECT_NE(ok.error().message.find("/nonexistent/cert.pem"), std::string::npos)
      << ok.error().message;
}

TEST(Server, ATlsListenerNeedsBothFiles) {
  net::io_context io;
  server_options opts;
  opts.host = "127.0.0.1";
  opts.port = 0;
  opts.tls_cert_file = "cert.pem";
  server srv{io, std::move(opts), ok_handler};
  ASSERT_FALSE(srv.listen());
  EXPECT_FALSE(srv.is_tls());
}

}  // namespace
}  // namespace ib::http
