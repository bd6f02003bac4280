#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/system/error_code.hpp>

struct ssl_st;
struct ssl_ctx_st;

namespace ib::http {

/// A TLS connection on a TCP socket, client (the upstream pool) or server (the TLS listener): an
/// AsyncReadStream and AsyncWriteStream (Asio's requirements) that Beast reads and writes like a
/// socket.
///
/// OpenSSL reads and writes the non-blocking socket itself (through a BIO of ours on the
/// descriptor); Asio only waits for readiness (`async_wait`, which re-arms the descriptor with
/// `EPOLL_CTL_MOD`, so readiness that came before the wait is not lost). Why not
/// `boost::asio::ssl::stream`: it keeps two 17 KiB record buffers and a 2 × 17 KiB BIO pair for the
/// life of every connection, ~70 KiB of the 94 KiB an open stream to an HTTPS provider cost
/// (bench/README.md, "open streams over HTTPS"), and as much for each client of the TLS listener;
/// here OpenSSL's own buffers are released whenever they are empty (`SSL_MODE_RELEASE_BUFFERS`).
///
/// Rules, as Asio's for a socket: at most one read and one write outstanding, both started on the
/// socket's executor, which must be serial (a strand or a one-thread context). Closing the socket
/// (`next_layer().close()`) ends a pending operation with `operation_aborted`; the stream is then
/// only fit to be destroyed, once no operation is pending (unlike a socket, the stream must
/// outlive its operations). A write cancelled while it waits ends the stream's writing: later
/// writes fail with `broken_pipe`. A completion never runs inside the call that started it.
/// No SIGPIPE: the socket is written with `send(MSG_NOSIGNAL)`.
///
/// Errors: `asio::error::eof` for the peer's close_notify; `ssl::error::stream_truncated` for a
/// TCP close without one; the system error (e.g. `connection_reset`) when the socket failed;
/// otherwise OpenSSL's error code in Asio's SSL category (a failed certificate check among them).
class tls_stream {
 public:
  using executor_type = boost::asio::any_io_executor;
  using socket_type = boost::asio::ip::tcp::socket;
  using error_code = boost::system::error_code;

  enum class role : unsigned char { client, server };

  /// A client stream whose socket (to be connected) runs on `ex`, with a TLS connection made from
  /// `ctx` (which must outlive the stream). When OpenSSL cannot make one, the handshake fails.
  tls_stream(const executor_type& ex, ssl_ctx_st* ctx);
  /// A stream on the connected `socket`, playing `r` in the handshake.
  tls_stream(socket_type socket, ssl_ctx_st* ctx, role r);
  ~tls_stream();
  tls_stream(const tls_stream&) = delete;
  tls_stream& operator=(const tls_stream&) = delete;

  executor_type get_executor() { return socket_.get_executor(); }
  socket_type& next_layer() { return socket_; }
  /// OpenSSL's connection, or null when it could not be made.
  ssl_st* native_handle() { return ssl_.get(); }

  /// Sets the server name to send (SNI, only for a DNS name: RFC 6066 §3 has no IP literals)
  /// and to check the certificate against: a DNS name (no partial wildcards) or an IPv4 or IPv6
  /// literal (against the certificate's IP addresses). False when OpenSSL refuses it.
  bool expect_host(const std::string& host);

  /// Performs the handshake (in the constructor's role) on the connected socket.
  /// Handler: void(error_code).
  template <class Token>
  auto async_handshake(Token&& token) {
    return boost::asio::async_compose<Token, void(error_code)>(
        op<kind::handshake, boost::asio::mutable_buffer>{this, {}}, token, socket_);
  }

  /// Reads decrypted bytes into the first non-empty buffer of `buffers`.
  /// Handler: void(error_code, std::size_t bytes).
  template <class MutableBufferSequence, class Token>
  auto async_read_some(const MutableBufferSequence& buffers, Token&& token) {
    return boost::asio::async_compose<Token, void(error_code, std::size_t)>(
        op<kind::read, MutableBufferSequence>{this, buffers}, token, socket_);
  }

  /// Writes (encrypts and sends) the start of `buffers`: when the first buffer is shorter than
  /// a TLS record (16 KiB), up to that many bytes of the sequence are copied together first, so
  /// that an HTTP head and its body go out as one record in one `write` (as Asio's ssl::stream).
  /// Handler: void(error_code, std::size_t bytes).
  template <class ConstBufferSequence, class Token>
  auto async_write_some(const ConstBufferSequence& buffers, Token&& token) {
    return boost::asio::async_compose<Token, void(error_code, std::size_t)>(
        op<kind::write, ConstBufferSequence>{this, buffers}, token, socket_);
  }

 private:
  enum class kind : unsigned char { handshake, read, write };
  enum class want : unsigned char { none, read, write };

  /// What one call into OpenSSL came to: done (`ec`, `bytes`), or a readiness to wait for.
  struct step {
    want wait = want::none;
    std::size_t bytes = 0;
    error_code ec;
  };

  /// One attempt at `k` on `data`/`size` (the socket must be open).
  step perform(kind k, void* data, std::size_t size);

  /// The most plaintext one TLS record carries (RFC 8446 §5.1): what a write copies together.
  static constexpr std::size_t record_bytes = 16 * 1024;

  template <class Buffer, class Sequence>
  static Buffer first_buffer(const Sequence& buffers) {
    for (auto it = boost::asio::buffer_sequence_begin(buffers);
         it != boost::asio::buffer_sequence_end(buffers); ++it) {
      Buffer b(*it);
      if (b.size() != 0) {
        return b;
      }
    }
    return Buffer{};
  }

  /// The first non-empty buffer of `buffers` when it is a record or more, or the sequence is one
  /// buffer; otherwise the start of the sequence copied into `storage` (`record_bytes` long).
  template <class Sequence>
  static boost::asio::const_buffer gather(const Sequence& buffers, unsigned char* storage) {
    auto first = first_buffer<boost::asio::const_buffer>(buffers);
    if (first.size() >= record_bytes || boost::asio::buffer_size(buffers) == first.size()) {
      return first;
    }
    const std::size_t n =
        boost::asio::buffer_copy(boost::asio::buffer(storage, record_bytes), buffers);
    return {storage, n};
  }

  /// The composed operation: calls into OpenSSL, waits for what it wants, calls again. A result
  /// ready at once is posted, never delivered inside the initiating call.
  template <kind K, class Buffers>
  struct op {
    tls_stream* stream;
    Buffers buffers;
    bool started = false;
    bool finished = false;
    step result{};

    template <class Self>
    void operator()(Self& self, error_code ec = {}) {
      if (finished) {
        deliver(self, result.ec, result.bytes);
        return;
      }
      const bool first = !started;
      started = true;
      if (!ec && !stream->socket_.is_open()) {
        ec = boost::asio::error::bad_descriptor;
      }
      if (ec) {
        // The wait failed (the socket was closed under it), or there never was a socket.
        finish(self, first, step{want::none, 0, ec});
        return;
      }
      step s;
      if constexpr (K == kind::handshake) {
        s = stream->perform(K, nullptr, 0);
      } else if constexpr (K == kind::read) {
        auto b = first_buffer<boost::asio::mutable_buffer>(buffers);
        s = b.size() == 0 ? step{} : stream->perform(K, b.data(), b.size());
      } else if (first && stream->write_waiting_) {
        // The last write ended while waiting (cancelled, or its socket closed), after OpenSSL
        // had taken part of its bytes into a record: OpenSSL would send that record and count
        // this write's first bytes as written. The stream can no longer write.
        s = step{want::none, 0, boost::asio::error::broken_pipe};
      } else {
        // Gathered again on every attempt: a write OpenSSL could not finish is retried with
        // the same bytes, as it requires.
        unsigned char storage[record_bytes];
        auto b = gather(buffers, storage);
        s = b.size() == 0 ? step{} : stream->perform(K, const_cast<void*>(b.data()), b.size());
        stream->write_waiting_ = s.wait != want::none;
      }
      if (s.wait != want::none) {
        stream->socket_.async_wait(
            s.wait == want::read ? socket_type::wait_read : socket_type::wait_write,
            std::move(self));
        return;
      }
      finish(self, first, s);
    }

    template <class Self>
    void finish(Self& self, bool first, const step& s) {
      if (first) {
        finished = true;
        result = s;
        auto ex = stream->socket_.get_executor();
        boost::asio::post(ex, std::move(self));
        return;
      }
      deliver(self, s.ec, s.bytes);
    }

    template <class Self>
    static void deliver(Self& self, const error_code& ec, std::size_t bytes) {
      if constexpr (K == kind::handshake) {
        (void)bytes;
        self.complete(ec);
      } else {
        self.complete(ec, bytes);
      }
    }
  };

  struct ssl_free_fn {
    void operator()(ssl_st* s) const;
  };

  socket_type socket_;
  std::unique_ptr<ssl_st, ssl_free_fn> ssl_;
  bool bio_set_ = false;        ///< the socket's BIO is set (at the first operation, connected)
  bool write_waiting_ = false;  ///< the last write step asked to wait, and was not retried yet
};

}  // namespace ib::http
