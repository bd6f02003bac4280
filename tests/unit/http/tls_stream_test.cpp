#include "http/tls_stream.hpp"

#include <array>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio.hpp>
#include <boost/asio/ssl/error.hpp>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>

namespace ib::http {
namespace {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

struct ctx_free {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using ctx_ptr = std::unique_ptr<SSL_CTX, ctx_free>;

/// A self-signed P-256 certificate for `san` (an X.509 subjectAltName value), and a server
/// context serving it and a client context trusting only it.
struct certificate {
  ctx_ptr server;
  ctx_ptr client;

  explicit certificate(const char* san) {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* cert = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), -60);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("test"), -1, -1, 0);
    X509_set_issuer_name(cert, name);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, cert, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name, san);
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    X509_sign(cert, key, EVP_sha256());

    server.reset(SSL_CTX_new(TLS_server_method()));
    SSL_CTX_use_certificate(server.get(), cert);
    SSL_CTX_use_PrivateKey(server.get(), key);
    client.reset(SSL_CTX_new(TLS_client_method()));
    X509_STORE_add_cert(SSL_CTX_get_cert_store(client.get()), cert);
    SSL_CTX_set_verify(client.get(), SSL_VERIFY_PEER, nullptr);
    X509_free(cert);
    EVP_PKEY_free(key);
  }
};

/// A client and a server stream on the two ends of one loopback TCP connection (not yet
/// handshaken), both on `io`.
struct stream_pair {
  std::optional<tls_stream> client;
  std::optional<tls_stream> server;

  stream_pair(net::io_context& io, certificate& cert, SSL_CTX* client_ctx = nullptr) {
    tcp::acceptor acceptor(io, tcp::endpoint(net::ip::address_v4::loopback(), 0));
    client.emplace(io.get_executor(), client_ctx != nullptr ? client_ctx : cert.client.get());
    client->next_layer().connect(acceptor.local_endpoint());
    server.emplace(acceptor.accept(), cert.server.get(), tls_stream::role::server);
  }
};

/// Runs `client` and `server` (coroutines) to completion on `io`.
template <class A, class B>
void run_both(net::io_context& io, A client, B server) {
  net::co_spawn(io, std::move(client), net::detached);
  net::co_spawn(io, std::move(server), net::detached);
  io.run();
}

/// Both handshakes; their results.
std::pair<error_code, error_code> handshake(net::io_context& io, stream_pair& p) {
  error_code client_ec;
  error_code server_ec;
  auto client = [&]() -> net::awaitable<void> {
    auto [ec] = co_await p.client->async_handshake(use_tuple);
    client_ec = ec;
    if (ec) {
      p.client->next_layer().close();  // the server's handshake ends too
    }
  };
  auto server = [&]() -> net::awaitable<void> {
    auto [ec] = co_await p.server->async_handshake(use_tuple);
    server_ec = ec;
  };
  run_both(io, client(), server());
  io.restart();
  return {client_ec, server_ec};
}

/// A client and a server stream on one loopback connection, handshaken: the certificate names
/// localhost, and the client expects it. `ok` says both handshakes succeeded.
struct connected {
  net::io_context io;
  certificate cert{"DNS:localhost"};
  stream_pair p{io, cert};
  bool ok = false;

  connected() {
    p.client->expect_host("localhost");
    auto [cec, sec] = handshake(io, p);
    ok = !cec && !sec;
  }
};

std::string pattern(std::size_t n, char salt) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) {
    s[i] = static_cast<char>('a' + (i * 7 + static_cast<std::size_t>(salt)) % 26);
  }
  return s;
}

TEST(TlsStream, CarriesMegabytesBothWaysAcrossManyRecords) {
  connected c;
  ASSERT_TRUE(c.ok);
  auto& io = c.io;
  auto& p = c.p;

  // A short head and a long body, as the pool writes a request: gathered into records.
  const std::string head = pattern(300, 1);
  const std::string body = pattern(3 << 20, 2);
  const std::string answer = pattern((2 << 20) + 123, 3);
  std::string got_request(head.size() + body.size(), '\0');
  std::string got_answer(answer.size(), '\0');
  error_code e1, e2, e3, e4;
  auto client = [&]() -> net::awaitable<void> {
    std::array<net::const_buffer, 2> bufs{net::buffer(head), net::buffer(body)};
    auto [wec, wn] = co_await net::async_write(*p.client, bufs, use_tuple);
    e1 = wec;
    auto [rec, rn] = co_await net::async_read(*p.client, net::buffer(got_answer), use_tuple);
    e2 = rec;
  };
  auto server = [&]() -> net::awaitable<void> {
    auto [rec, rn] = co_await net::async_read(*p.server, net::buffer(got_request), use_tuple);
    e3 = rec;
    auto [wec, wn] = co_await net::async_write(*p.server, net::buffer(answer), use_tuple);
    e4 = wec;
  };
  run_both(io, client(), server());
  EXPECT_FALSE(e1) << e1.message();
  EXPECT_FALSE(e2) << e2.message();
  EXPECT_FALSE(e3) << e3.message();
  EXPECT_FALSE(e4) << e4.message();
  EXPECT_TRUE(got_request == head + body);
  EXPECT_TRUE(got_answer == answer);
}

TEST(TlsStream, ChecksTheHostNameOrTheIpAddress) {
  struct host_case {
    const char* san;
    const char* host;
    bool ok;
  };
  for (const auto& c : {
           host_case{"DNS:localhost", "localhost", true},
           host_case{"DNS:*.example.com", "api.example.com", true},
           host_case{"DNS:localhost", "elsewhere.example", false},
           host_case{"DNS:api*.example.com", "api1.example.com", false},  // no partial wildcard
           host_case{"IP:127.0.0.1", "127.0.0.1", true},
           host_case{"DNS:localhost", "127.0.0.1", false},  // a name does not cover an address
           host_case{"IP:127.0.0.2", "127.0.0.1", false},
           host_case{"IP:::1", "::1", true},
       }) {
    net::io_context io;
    certificate cert(c.san);
    stream_pair p(io, cert);
    ASSERT_TRUE(p.client->expect_host(c.host));
    auto [cec, sec] = handshake(io, p);
    (void)sec;
    EXPECT_EQ(!cec, c.ok) << c.san << " for " << c.host << ": " << cec.message();
    if (!c.ok) {
      EXPECT_EQ(&cec.category(), &net::error::get_ssl_category()) << cec.message();
    }
  }
}

TEST(TlsStream, ACertificateTheClientDoesNotTrustFailsTheHandshake) {
  net::io_context io;
  certificate cert("DNS:localhost");
  certificate other("DNS:localhost");
  stream_pair p(io, cert, other.client.get());
  ASSERT_TRUE(p.client->expect_host("localhost"));
  auto [cec, sec] = handshake(io, p);
  EXPECT_TRUE(cec);
  EXPECT_EQ(&cec.category(), &net::error::get_ssl_category()) << cec.message();
  EXPECT_TRUE(sec);  // the server sees the client's alert, or the close
}

/// After a handshake, the server sends `bytes` and then ends as `end` says; the client reads
/// until an error. Returns the client's error and what it read.
template <class End>
std::pair<error_code, std::string> read_until_end(const std::string& bytes, End end) {
  connected c;
  EXPECT_TRUE(c.ok);
  auto& io = c.io;
  auto& p = c.p;
  error_code result;
  std::string got;
  auto client = [&]() -> net::awaitable<void> {
    for (;;) {
      std::array<char, 100> buf{};
      auto [ec, n] = co_await p.client->async_read_some(net::buffer(buf), use_tuple);
      got.append(buf.data(), n);
      if (ec) {
        result = ec;
        co_return;
      }
    }
  };
  auto server = [&]() -> net::awaitable<void> {
    auto [ec, n] = co_await net::async_write(*p.server, net::buffer(bytes), use_tuple);
    EXPECT_FALSE(ec);
    end(*p.server);
  };
  run_both(io, client(), server());
  return {result, got};
}

TEST(TlsStream, ACloseNotifyIsEofAndABareCloseIsATruncation) {
  const std::string bytes = pattern(1000, 4);
  auto [eof, got1] = read_until_end(bytes, [](tls_stream& s) {
    SSL_shutdown(s.native_handle());  // sends close_notify (non-blocking, fits the socket)
    s.next_layer().close();
  });
  EXPECT_EQ(eof, net::error::eof) << eof.message();
  EXPECT_EQ(got1, bytes);

  auto [cut, got2] = read_until_end(bytes, [](tls_stream& s) { s.next_layer().close(); });
  EXPECT_EQ(cut, ssl::error::stream_truncated) << cut.message();
  EXPECT_EQ(got2, bytes);
}

TEST(TlsStream, ClosingTheSocketAbortsAPendingRead) {
  connected c;
  ASSERT_TRUE(c.ok);
  auto& io = c.io;
  auto& p = c.p;
  std::optional<error_code> result;
  std::array<char, 16> buf{};
  p.client->async_read_some(net::buffer(buf), [&](error_code ec, std::size_t) { result = ec; });
  net::post(io, [&] { p.client->next_layer().close(); });
  io.run();
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(*result, net::error::operation_aborted) << result->message();
}

TEST(TlsStream, AResultReadyAtOnceIsNeverDeliveredInsideTheCall) {
  connected c;
  ASSERT_TRUE(c.ok);
  auto& io = c.io;
  auto& p = c.p;
  const std::string bytes = pattern(64, 5);
  bool sent = false;
  net::async_write(*p.server, net::buffer(bytes), [&](error_code ec, std::size_t) {
    EXPECT_FALSE(ec);
    sent = true;
  });
  // The first read waits for the record; it takes all 64 bytes into OpenSSL and hands back one.
  std::string got;
  std::array<char, 1> one{};
  std::size_t inline_deliveries = 0;
  std::function<void()> next = [&] {
    auto returned = std::make_shared<bool>(false);
    p.client->async_read_some(net::buffer(one), [&, returned](error_code ec, std::size_t n) {
      if (!*returned) {
        ++inline_deliveries;
      }
      ASSERT_FALSE(ec) << ec.message();
      got.append(one.data(), n);
      if (got.size() < bytes.size()) {
        next();
      }
    });
    *returned = true;
  };
  next();
  io.run();
  EXPECT_TRUE(sent);
  EXPECT_EQ(got, bytes);
  EXPECT_EQ(inline_deliveries, 0u);
}

// This test binary does not ignore SIGPIPE: a write(2) on a connection whose sending side is
// shut, or after the peer's reset, would kill it.
TEST(TlsStream, WritingToADeadConnectionIsAnErrorNotASignal) {
  for (const bool reset_by_peer : {false, true}) {
    connected c;
    ASSERT_TRUE(c.ok);
    auto& io = c.io;
    auto& p = c.p;
    if (reset_by_peer) {
      p.server->next_layer().set_option(net::socket_base::linger(true, 0));
      p.server->next_layer().close();
    } else {
      p.client->next_layer().shutdown(tcp::socket::shutdown_send);  // EPIPE on the next write
    }
    error_code result;
    const std::string bytes = pattern(64 * 1024, 6);
    auto client = [&]() -> net::awaitable<void> {
      for (int i = 0; i < 100 && !result; ++i) {
        auto [ec, n] = co_await net::async_write(*p.client, net::buffer(bytes), use_tuple);
        result = ec;
      }
    };
    net::co_spawn(io, client(), net::detached);
    io.run();
    if (reset_by_peer) {
      EXPECT_TRUE(result == net::error::connection_reset || result == net::error::broken_pipe)
          << result.message();
    } else {
      EXPECT_EQ(result, net::error::broken_pipe) << result.message();
    }
  }
}

TEST(TlsStream, AWriteCancelledWhileWaitingEndsWriting) {
  connected c;
  ASSERT_TRUE(c.ok);
  auto& io = c.io;
  auto& p = c.p;
  // The server reads nothing yet: the socket buffers fill, OpenSSL keeps part of a record and
  // asks to wait. Once the socket is full (not writable), the write is cancelled, again each
  // millisecond until it ends (a cancel between two of its steps, before it waits, is lost).
  const std::string bytes = pattern(32 << 20, 7);
  std::optional<error_code> first;
  std::optional<error_code> second;
  std::size_t second_bytes = 0;
  auto drain = [&]() -> net::awaitable<void> {
    std::vector<char> sink(64 * 1024);
    for (;;) {
      auto [ec, n] = co_await p.server->async_read_some(net::buffer(sink), use_tuple);
      if (ec) {
        co_return;
      }
    }
  };
  net::async_write(*p.client, net::buffer(bytes), [&](error_code ec, std::size_t n) {
    first = ec;
    EXPECT_LT(n, bytes.size());
    // Another write, with the server now reading: it must fail, not send a stale record.
    p.client->async_write_some(net::buffer(bytes), [&](error_code ec2, std::size_t n2) {
      second = ec2;
      second_bytes = n2;
      p.client->next_layer().close();
    });
    net::co_spawn(io, drain(), net::detached);
  });
  net::steady_timer timer(io);
  int checks = 0;
  std::function<void()> check = [&] {
    if (first) {
      return;
    }
    pollfd pfd{p.client->next_layer().native_handle(), POLLOUT, 0};
    if (::poll(&pfd, 1, 0) == 0) {
      p.client->next_layer().cancel();
    }
    ASSERT_LT(++checks, 5000) << "the write never ended";
    timer.expires_after(std::chrono::milliseconds(1));
    timer.async_wait([&](error_code) { check(); });
  };
  check();
  io.run();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(*first, net::error::operation_aborted) << first->message();
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(*second, net::error::broken_pipe) << second->message();
  EXPECT_EQ(second_bytes, 0u);
}

TEST(TlsStream, WithoutAnSslContextTheHandshakeFailsCleanly) {
  net::io_context io;
  certificate cert("DNS:localhost");
  tcp::acceptor acceptor(io, tcp::endpoint(net::ip::address_v4::loopback(), 0));
  tls_stream client(io.get_executor(), nullptr);
  EXPECT_EQ(client.native_handle(), nullptr);
  EXPECT_FALSE(client.expect_host("localhost"));
  client.next_layer().connect(acceptor.local_endpoint());
  std::optional<error_code> result;
  client.async_handshake([&](error_code ec) { result = ec; });
  io.run();
  ASSERT_TRUE(result.has_value());
  EXPECT_TRUE(*result);
}

}  // namespace
}  // namespace ib::http
