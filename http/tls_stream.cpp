#include "http/tls_stream.hpp"

#include <cerrno>
#include <cstdint>
#include <utility>

#include <arpa/inet.h>
#include <boost/asio/ssl/error.hpp>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

namespace ib::http {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;

namespace {

bool is_ip_literal(const std::string& host) {
  unsigned char addr[16];
  return ::inet_pton(AF_INET, host.c_str(), addr) == 1
         || ::inet_pton(AF_INET6, host.c_str(), addr) == 1;
}

// -- the socket BIO ---------------------------------------------------------------------------
// OpenSSL's own socket BIO writes with write(2), which raises SIGPIPE when the peer has gone;
// this one uses send(2) with MSG_NOSIGNAL, as Asio's sockets do, so that no program using the
// stream has to ignore SIGPIPE. Otherwise it behaves as OpenSSL's: a would-block is a retry,
// and a read of 0 bytes marks EOF (`BIO_CTRL_EOF`, which OpenSSL 3 turns into
// SSL_R_UNEXPECTED_EOF_WHILE_READING when no close_notify came first).

int socket_of(BIO* b) {
  return static_cast<int>(reinterpret_cast<std::intptr_t>(BIO_get_data(b)));
}

bool would_block(int e) {
  return e == EAGAIN || e == EWOULDBLOCK || e == EINTR;
}

int bio_write(BIO* b, const char* data, std::size_t size, std::size_t* written) {
  BIO_clear_retry_flags(b);
  const ssize_t n = ::send(socket_of(b), data, size, MSG_NOSIGNAL);
  if (n < 0) {
    if (would_block(errno)) {
      BIO_set_retry_write(b);
    }
    return 0;
  }
  *written = static_cast<std::size_t>(n);
  return 1;
}

int bio_read(BIO* b, char* data, std::size_t size, std::size_t* read) {
  BIO_clear_retry_flags(b);
  const ssize_t n = ::recv(socket_of(b), data, size, 0);
  if (n < 0) {
    if (would_block(errno)) {
      BIO_set_retry_read(b);
    }
    return 0;
  }
  if (n == 0) {
    BIO_set_flags(b, BIO_FLAGS_IN_EOF);
    return 0;
  }
  *read = static_cast<std::size_t>(n);
  return 1;
}

long bio_ctrl(BIO* b, int cmd, long /*num*/, void* /*ptr*/) {
  switch (cmd) {
    case BIO_CTRL_FLUSH:
      return 1;  // nothing is buffered here
    case BIO_CTRL_EOF:
      return BIO_test_flags(b, BIO_FLAGS_IN_EOF) != 0 ? 1 : 0;
    default:
      return 0;
  }
}

/// The method, made once (OpenSSL may not be able to: then null, and the handshake fails).
const BIO_METHOD* socket_method() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
                                 "inferbridge socket");
    if (m != nullptr
        && (BIO_meth_set_write_ex(m, bio_write) != 1 || BIO_meth_set_read_ex(m, bio_read) != 1
            || BIO_meth_set_ctrl(m, bio_ctrl) != 1)) {
      BIO_meth_free(m);
      m = nullptr;
    }
    return m;
  }();
  return method;
}

/// The error of the OpenSSL call that just failed with `ssl_error` (`SSL_get_error`), `sys` the
/// errno it left. Takes the error off OpenSSL's queue.
boost::system::error_code failure(int ssl_error, int sys) {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  switch (ssl_error) {
    case SSL_ERROR_ZERO_RETURN:
      return net::error::eof;  // the peer's close_notify
    case SSL_ERROR_SYSCALL:
      if (code == 0) {
        // OpenSSL 1.1's report of a TCP close without close_notify is errno 0.
        return sys != 0 ? boost::system::error_code(sys, boost::system::system_category())
                        : boost::system::error_code(ssl::error::stream_truncated);
      }
      break;
    default:
      break;
  }
  if (code == 0) {
    return net::error::fault;  // a failure OpenSSL gave no reason for: never expected
  }
#ifdef SSL_R_UNEXPECTED_EOF_WHILE_READING
  if (ERR_GET_LIB(code) == ERR_LIB_SSL
      && ERR_GET_REASON(code) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
    return ssl::error::stream_truncated;  // OpenSSL 3's report of the same
  }
#endif
  return {static_cast<int>(code), net::error::get_ssl_category()};
}

}  // namespace

void tls_stream::ssl_free_fn::operator()(ssl_st* s) const {
  // A client connection dropped without our close_notify would have OpenSSL mark its session
  // not resumable ("bad session"); since TLS 1.1 an unclean close no longer requires that
  // (RFC 5246 §7.2.1), and the pool closes idle connections without one. The listener keeps
  // OpenSSL's behaviour (its session cache is not ours to grow).
  if (SSL_is_server(s) == 0) {
    SSL_set_shutdown(s, SSL_get_shutdown(s) | SSL_SENT_SHUTDOWN);
  }
  SSL_free(s);  // frees the BIO too; the descriptor is the socket's to close
}

tls_stream::tls_stream(const executor_type& ex, ssl_ctx_st* ctx)
    : tls_stream(socket_type(ex), ctx, role::client) {}

tls_stream::tls_stream(socket_type socket, ssl_ctx_st* ctx, role r)
    : socket_(std::move(socket)), ssl_(ctx != nullptr ? SSL_new(ctx) : nullptr) {
  if (ssl_) {
    // Partial writes and a moving buffer: a write is retried from wherever Beast's buffers are.
    // Released buffers: an idle connection holds no 17 KiB record buffer. Read-ahead: one `recv`
    // takes what the socket has, instead of a record header and then its body.
    SSL_set_mode(ssl_.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER
                                 | SSL_MODE_RELEASE_BUFFERS);
    SSL_set_read_ahead(ssl_.get(), 1);
    if (r == role::client) {
      SSL_set_connect_state(ssl_.get());
    } else {
      SSL_set_accept_state(ssl_.get());
    }
  } else {
    ERR_clear_error();
  }
}

tls_stream::~tls_stream() = default;

bool tls_stream::expect_host(const std::string& host) {
  if (!ssl_) {
    return false;
  }
  bool ok = false;
  if (is_ip_literal(host)) {
    ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_.get()), host.c_str()) == 1;
  } else {
    SSL_set_hostflags(ssl_.get(), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    ok = SSL_set_tlsext_host_name(ssl_.get(), host.c_str()) == 1
         && SSL_set1_host(ssl_.get(), host.c_str()) == 1;
  }
  if (!ok) {
    ERR_clear_error();
  }
  return ok;
}

tls_stream::step tls_stream::perform(kind k, void* data, std::size_t size) {
  if (!ssl_) {
    return step{want::none, 0, net::error::no_memory};
  }
  if (!bio_set_) {
    error_code ec;
    socket_.non_blocking(true, ec);
    if (ec) {
      return step{want::none, 0, ec};
    }
    const BIO_METHOD* method = socket_method();
    BIO* bio = method != nullptr ? BIO_new(method) : nullptr;
    if (bio == nullptr) {
      ERR_clear_error();
      return step{want::none, 0, net::error::no_memory};
    }
    BIO_set_data(bio, reinterpret_cast<void*>(static_cast<std::intptr_t>(socket_.native_handle())));
    BIO_set_init(bio, 1);
    SSL_set_bio(ssl_.get(), bio, bio);  // one reference, taken by the SSL for both directions
    bio_set_ = true;
  }

  // SSL_get_error reads the thread's error queue: it must hold nothing from another connection.
  ERR_clear_error();
  errno = 0;
  std::size_t bytes = 0;
  int rc = 0;
  switch (k) {
    case kind::handshake:
      rc = SSL_do_handshake(ssl_.get());
      break;
    case kind::read:
      rc = SSL_read_ex(ssl_.get(), data, size, &bytes);
      break;
    case kind::write:
      rc = SSL_write_ex(ssl_.get(), data, size, &bytes);
      break;
  }
  const int sys = errno;
  if (rc == 1) {
    return step{want::none, bytes, {}};
  }
  const int err = SSL_get_error(ssl_.get(), rc);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
    return step{err == SSL_ERROR_WANT_READ ? want::read : want::write, 0, {}};
  }
  return step{want::none, 0, failure(err, sys)};
}

}  // namespace ib::http
