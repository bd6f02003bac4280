#include "http/client.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <future>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio.hpp>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace ib::http {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

// -- Keep-Alive header parsing (pure) ---------------------------------------------------------

keep_alive_params parse(std::string_view v) {
  keep_alive_params ka;
  parse_keep_alive(v, ka);
  return ka;
}

TEST(KeepAliveHeader, ParsesNodeAndApacheForms) {
  EXPECT_EQ(parse("timeout=5"), (keep_alive_params{5s, std::nullopt}));
  EXPECT_EQ(parse("timeout=5, max=100"), (keep_alive_params{5s, 100}));
  EXPECT_EQ(parse("max=100,timeout=15"), (keep_alive_params{15s, 100}));
}

TEST(KeepAliveHeader, ToleratesSpacesCaseQuotesAndSeparators) {
  EXPECT_EQ(parse("  Timeout = 7 ,\tMAX=3  "), (keep_alive_params{7s, 3}));
  EXPECT_EQ(parse("timeout=\"4\"; max=\"9\""), (keep_alive_params{4s, 9}));
  EXPECT_EQ(parse("TIMEOUT=2"), (keep_alive_params{2s, std::nullopt}));
}

TEST(KeepAliveHeader, IgnoresJunkAndRoundsDown) {
  EXPECT_EQ(parse(""), keep_alive_params{});
  EXPECT_EQ(parse(",,,"), keep_alive_params{});
  EXPECT_EQ(parse("timeout"), keep_alive_params{});
  EXPECT_EQ(parse("timeout="), keep_alive_params{});
  EXPECT_EQ(parse("timeout=abc, max=-1"), keep_alive_params{});
  EXPECT_EQ(parse("foo=1, bar, =5, timeouts=9"), keep_alive_params{});
  EXPECT_EQ(parse("timeout=5.9"), (keep_alive_params{5s, std::nullopt}));
  EXPECT_EQ(parse("timeout=5s"), (keep_alive_params{5s, std::nullopt}));
  EXPECT_EQ(parse("timeout=0"), (keep_alive_params{0s, std::nullopt}));
}

TEST(KeepAliveHeader, CapsHugeValues) {
  auto ka = parse("timeout=99999999999999999999999999, max=99999999999999999999999999");
  ASSERT_TRUE(ka.timeout);
  EXPECT_EQ(*ka.timeout, std::chrono::hours{24});
  ASSERT_TRUE(ka.max);
  EXPECT_EQ(*ka.max, std::uint64_t{1} << 32);
}

TEST(KeepAliveHeader, RepeatedParametersKeepTheSmallest) {
  keep_alive_params ka;
  parse_keep_alive("timeout=10, max=50", ka);
  parse_keep_alive("timeout=5", ka);  // a second header line
  parse_keep_alive("max=80, timeout=20", ka);
  EXPECT_EQ(ka, (keep_alive_params{5s, 50}));
}

TEST(KeepAliveHeader, RandomBytesNeverCrash) {
  std::mt19937 rng(12345);
  const std::string alphabet = "timeoutmaxTIMEOUT=,; \t\"0123456789-.\xff";
  for (int i = 0; i < 20'000; ++i) {
    std::string s(rng() % 40, ' ');
    for (auto& c : s) {
      c = alphabet[rng() % alphabet.size()];
    }
    keep_alive_params ka;
    parse_keep_alive(s, ka);
    if (ka.timeout) {
      EXPECT_GE(ka.timeout->count(), 0);
      EXPECT_LE(*ka.timeout, std::chrono::hours{24});
    }
  }
}

TEST(KeepAliveIdleLimit, LeavesASafetyMarginBeforeTheUpstreamTimeout) {
  EXPECT_EQ(idle_limit({}, 20s), 20s);                   // no header: our own limit
  EXPECT_EQ(idle_limit({5s, std::nullopt}, 20s), 4s);    // Node's default: N - 1 s
  EXPECT_EQ(idle_limit({60s, std::nullopt}, 20s), 20s);  // ours is shorter
  EXPECT_EQ(idle_limit({4s, std::nullopt}, 20s), 3s);
  EXPECT_EQ(idle_limit({2s, std::nullopt}, 20s), 1500ms);  // tiny N: a quarter off
  EXPECT_EQ(idle_limit({1s, std::nullopt}, 20s), 750ms);
  EXPECT_EQ(idle_limit({0s, std::nullopt}, 20s), 0ms);  // never pooled
}

TEST(KeepAliveIdleLimit, MaxOfOneOrLessIsNotPooled) {
  EXPECT_EQ(idle_limit({5s, 0}, 20s), 0ms);
  EXPECT_EQ(idle_limit({5s, 1}, 20s), 0ms);
  EXPECT_EQ(idle_limit({5s, 2}, 20s), 4s);
  EXPECT_EQ(idle_limit({std::nullopt, 100}, 20s), 20s);
}

// -- the pool against a scripted loopback upstream --------------------------------------------

/// What the scripted upstream does with one request it has read.
enum class act {
  ok,           // 200, keep-alive
  ok_close,     // 200 with `Connection: close`
  ok_http10,    // HTTP/1.0 200 without keep-alive (Content-Length framed)
  ok_ka_max1,   // 200 with `Keep-Alive: timeout=5, max=1`
  ok_ka_zero,   // 200 with `Keep-Alive: timeout=0`
  close_fin,    // no response: FIN
  close_rst,    // no response: RST
  partial_fin,  // half a status line, then FIN
  ok_then_fin,  // 200 keep-alive, then FIN while idle (before the next request)
};

/// A blocking one-connection-at-a-time HTTP/1.1 upstream on 127.0.0.1:0 following a script.
class scripted_upstream {
 public:
  explicit scripted_upstream(std::vector<act> script) : script_(script.begin(), script.end()) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(listen_fd_, 16), 0);
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~scripted_upstream() {
    stop_ = true;
    thread_.join();
    ::close(listen_fd_);
  }

  std::uint16_t port() const { return port_; }
  int accepted() const { return accepted_; }
  int requests() const { return requests_; }

 private:
  /// Waits up to 50 ms for `fd` to be readable; false on timeout.
  static bool readable(int fd) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 50) > 0;
  }

  void serve() {
    while (!stop_) {
      if (!readable(listen_fd_)) {
        continue;
      }
      int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) {
        continue;
      }
      ++accepted_;
      serve_connection(fd);
    }
  }

  /// Reads one request (head + Content-Length body); false when the peer closed or we stop.
  bool read_request(int fd) {
    std::string in;
    char buf[4096];
    for (;;) {
      auto end = in.find("\r\n\r\n");
      if (end != std::string::npos) {
        auto cl = in.find("content-length: ");
        std::size_t body = cl == std::string::npos ? 0 : std::stoul(in.substr(cl + 16));
        if (in.size() >= end + 4 + body) {
          return true;
        }
      }
      if (stop_) {
        return false;
      }
      if (!readable(fd)) {
        continue;
      }
      auto n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) {
        return false;
      }
      in.append(buf, static_cast<std::size_t>(n));
    }
  }

  static void send_all(int fd, std::string_view s) {
    while (!s.empty()) {
      auto n = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
      if (n <= 0) {
        return;
      }
      s.remove_prefix(static_cast<std::size_t>(n));
    }
  }

  void serve_connection(int fd) {
    for (;;) {
      if (!read_request(fd)) {
        break;
      }
      ++requests_;
      act a = act::ok;
      {
        std::lock_guard lock{mutex_};
        if (!script_.empty()) {
          a = script_.front();
          script_.pop_front();
        }
      }
      const std::string body = "{\"ok\":true}";
      const std::string framing = "Content-Length: " + std::to_string(body.size()) + "\r\n";
      bool keep = true;
      switch (a) {
        case act::ok:
        case act::ok_then_fin:
          send_all(fd, "HTTP/1.1 200 OK\r\n" + framing + "\r\n" + body);
          keep = a == act::ok;
          break;
        case act::ok_close:
          send_all(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\n" + framing + "\r\n" + body);
          keep = false;
          break;
        case act::ok_http10:
          send_all(fd, "HTTP/1.0 200 OK\r\n" + framing + "\r\n" + body);
          keep = false;
          break;
        case act::ok_ka_max1:
          send_all(fd,
                   "HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5, max=1\r\n" + framing + "\r\n" + body);
          break;
        case act::ok_ka_zero:
          send_all(fd, "HTTP/1.1 200 OK\r\nKeep-Alive: timeout=0\r\n" + framing + "\r\n" + body);
          break;
        case act::close_fin:
          keep = false;
          break;
        case act::close_rst: {
          linger l{1, 0};
          ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
          keep = false;
          break;
        }
        case act::partial_fin:
          send_all(fd, "HTTP/1.1 2");
          keep = false;
          break;
      }
      if (!keep) {
        break;
      }
    }
    ::shutdown(fd, SHUT_WR);
    ::close(fd);
  }

  std::mutex mutex_;
  std::deque<act> script_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

class capture final : public exchange_handler {
 public:
  void on_head(const response_head&) override {}
  body_action on_body(std::string_view) override { return {}; }
  void on_complete(exchange_result r) override { done.set_value(std::move(r)); }
  std::promise<exchange_result> done;
};

class PoolTest : public testing::Test {
 protected:
  PoolTest() : guard_(boost::asio::make_work_guard(io_)), thread_([this] { io_.run(); }) {}
  ~PoolTest() override {
    pool_.reset();
    guard_.reset();
    thread_.join();
  }

  void start_pool(std::uint16_t port) {
    client_options o;
    o.endpoint = {false, "127.0.0.1", port};
    o.connect_timeout = 2s;
    o.first_byte_timeout = 5s;
    o.total_timeout = 10s;
    pool_ = std::make_unique<upstream_pool>(io_, o);
  }

  exchange_result call() {
    outgoing_request req;
    req.target = "/v1/chat/completions";
    req.body = R"({"model":"m"})";
    req.deadline = std::chrono::steady_clock::now() + 10s;
    auto h = std::make_shared<capture>();
    auto f = h->done.get_future();
    auto ctl = pool_->start(std::move(req), h);
    EXPECT_EQ(f.wait_for(10s), std::future_status::ready);
    return f.get();
  }

  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  std::thread thread_;
  std::unique_ptr<upstream_pool> pool_;
};

TEST_F(PoolTest, ReusedConnectionClosedBeforeAnyByteIsRetriedOnceOnAFreshOne) {
  for (auto close : {act::close_fin, act::close_rst}) {
    scripted_upstream up({act::ok, close, act::ok});
    start_pool(up.port());
    EXPECT_EQ(call().failure, exchange_failure::none);
    auto r = call();
    EXPECT_EQ(r.failure, exchange_failure::none);
    EXPECT_EQ(r.head.status, 200);
    EXPECT_EQ(up.accepted(), 2);  // the second request went out on the pooled one, then anew
    EXPECT_EQ(up.requests(), 3);
    pool_.reset();
  }
}

TEST_F(PoolTest, ConnectionClosedWhileIdleIsNotReused) {
  scripted_upstream up({act::ok_then_fin, act::ok});
  start_pool(up.port());
  EXPECT_EQ(call().failure, exchange_failure::none);
  // The FIN may or may not have arrived yet: either the peek drops the connection, or the
  // request fails on it and is re-sent once (the upstream never read it). Never a failure.
  auto r = call();
  EXPECT_EQ(r.failure, exchange_failure::none);
  EXPECT_EQ(up.accepted(), 2);
  EXPECT_EQ(up.requests(), 2);
}

TEST_F(PoolTest, NoRetryOnceAResponseByteArrived) {
  scripted_upstream up({act::ok, act::partial_fin, act::ok});
  start_pool(up.port());
  EXPECT_EQ(call().failure, exchange_failure::none);
  auto r = call();
  EXPECT_NE(r.failure, exchange_failure::none);  // a partial head: bad_response
  EXPECT_EQ(up.accepted(), 1);                   // not re-sent on a fresh connection
  EXPECT_EQ(up.requests(), 2);                   // the body went out once
}

TEST_F(PoolTest, FreshConnectionFailureIsTheProvidersAndNotRetried) {
  scripted_upstream up({act::close_rst, act::ok});
  start_pool(up.port());
  auto r = call();
  EXPECT_EQ(r.failure, exchange_failure::reset);
  EXPECT_EQ(up.accepted(), 1);
  EXPECT_EQ(up.requests(), 1);
}

TEST_F(PoolTest, RetriesAtMostOnce) {
  scripted_upstream up({act::ok, act::close_fin, act::close_fin, act::ok});
  start_pool(up.port());
  EXPECT_EQ(call().failure, exchange_failure::none);
  auto r = call();
  EXPECT_EQ(r.failure,
            exchange_failure::reset);  // the fresh connection failed: the provider's failure
  EXPECT_EQ(up.accepted(), 2);
  EXPECT_EQ(up.requests(), 3);
}

TEST_F(PoolTest, ResponsesThatEndKeepAliveAreNeverPooled) {
  for (auto last : {act::ok_close, act::ok_http10, act::ok_ka_max1, act::ok_ka_zero}) {
    scripted_upstream up({last, act::ok});
    start_pool(up.port());
    EXPECT_EQ(call().failure, exchange_failure::none);
    EXPECT_EQ(call().failure, exchange_failure::none);
    EXPECT_EQ(up.accepted(), 2) << static_cast<int>(last);  // the second call connected anew
    EXPECT_EQ(up.requests(), 2) << static_cast<int>(last);
    pool_.reset();
  }
}

TEST_F(PoolTest, KeepAliveConnectionsArePooledAndReused) {
  scripted_upstream up({act::ok, act::ok, act::ok});
  start_pool(up.port());
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(call().failure, exchange_failure::none);
  }
  EXPECT_EQ(up.accepted(), 1);
  EXPECT_EQ(up.requests(), 3);
}

TEST_F(PoolTest, RefusedConnectionIsAConnectError) {
  std::uint16_t port = 0;
  {
    // A port that was just free: nothing listens on it any more.
    boost::asio::ip::tcp::acceptor a(io_, {boost::asio::ip::make_address("127.0.0.1"), 0});
    port = a.local_endpoint().port();
  }
  start_pool(port);
  EXPECT_EQ(call().failure, exchange_failure::connect_error);
}

TEST_F(PoolTest, ShutDownPoolAnswersPoolClosed) {
  start_pool(1);  // never connected to
  pool_->shutdown();
  EXPECT_EQ(call().failure, exchange_failure::pool_closed);
}

TEST(ExchangeFailure, EveryValueHasItsOwnName) {
  std::set<std::string_view> names;
  for (int i = 0; i <= static_cast<int>(exchange_failure::pool_closed); ++i) {
    auto name = to_string(static_cast<exchange_failure>(i));
    EXPECT_NE(name, "unknown") << i;
    EXPECT_TRUE(names.insert(name).second) << name;
  }
  EXPECT_EQ(to_string(exchange_failure::none), "none");
  EXPECT_EQ(to_string(exchange_failure::first_byte_timeout), "first_byte_timeout");
}

}  // namespace
}  // namespace ib::http
