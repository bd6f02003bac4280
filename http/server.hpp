#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "http/message.hpp"

namespace boost::asio {
class io_context;
}

namespace ib::http {

class session;
struct exchange_link;

/// How a read of a streamed request body ended (`body_source::read`).
enum class body_status : std::uint8_t {
  more,       ///< a piece; more follow
  last,       ///< the last piece (possibly empty): the body is complete
  too_large,  ///< the body passed the request's limit (nothing more can be read)
  malformed,  ///< bad chunked framing (nothing more can be read)
  failed,     ///< the client left, timed out or the response already ended the exchange
};

/// One piece of a streamed request body.
struct body_piece {
  std::string bytes;  ///< de-chunked body bytes; empty unless `status` is `more` or `last`
  body_status status = body_status::failed;
};

/// The body of a request the server streams to its handler instead of reading it whole
/// (`server_options::streamed_body`): the handler pulls it piece by piece, and the server reads
/// from the client only when asked, so a slow consumer slows the client down (TCP back-pressure)
/// and at most one read buffer of the body is held at a time. Get it from
/// `responder::body_source`; any thread may use it.
class body_source {
 public:
  explicit body_source(std::shared_ptr<exchange_link> link) : link_(std::move(link)) {}

  /// Reads the next piece (one read at a time): `fn` runs once, on the session's I/O thread,
  /// with a piece of at least one byte (`more`), or the end (`last`, then `last` again on any
  /// later read), or why no more can be read. Each read waits at most the server's
  /// `read_timeout` for the client's bytes (past it the connection is closed: `failed`). Once
  /// the exchange is over (answered, or the client left), `failed`, on the calling thread when
  /// the connection is gone.
  void read(std::function<void(body_piece)> fn);
  /// The request's declared `Content-Length`; none when the body is chunked.
  std::optional<std::uint64_t> content_length() const noexcept;

 private:
  std::shared_ptr<exchange_link> link_;
};

/// Exactly one answer per request: either `send` once, or `stream_begin`, any number of
/// `stream_write` and one `stream_end`. Move-only; any thread may call it (an actor may hold
/// it), but every write is posted onto the session's executor, so calls return at once and
/// never block. Calls after the answer (or after the client left) are ignored. Destroyed before
/// answering, it sends a 500 in the OpenAI envelope (errc::internal) — or, once a stream has
/// begun, closes the connection without the terminating chunk.
class responder {
 public:
  /// An empty responder (`false`): every call is ignored.
  responder() = default;
  /// The server's constructor: a responder for the exchange `link` (defined in server.cpp).
  explicit responder(std::shared_ptr<exchange_link> link);
  /// Takes over `other`'s exchange; `other` becomes answered (its destructor sends nothing).
  responder(responder&& other) noexcept
      : link_(std::move(other.link_)), done_(other.done_), started_(other.started_) {
    other.done_ = true;
  }
  /// Answers this responder's own exchange first if it was still pending (as the destructor).
  responder& operator=(responder&& other) noexcept;
  responder(const responder&) = delete;
  responder& operator=(const responder&) = delete;
  /// Sends the 500 (or ends a begun stream abnormally) when nothing was answered.
  ~responder();

  /// Sends a complete response: status, `content_type`, `headers`, then `body` with its
  /// `content-length` (for a HEAD request the head only). Once.
  void send(response res);

  /// Starts a chunked streaming response: status line, headers and `head.body` as the first
  /// chunk (may be empty). Then `stream_write`, then `stream_end`.
  void stream_begin(response head);
  /// Sends `bytes` as one chunk (nothing if empty). Counted in `pending_bytes` until written.
  void stream_write(std::string bytes);
  /// Sends `last` (if any) and the terminating chunk; the connection may then be reused.
  void stream_end(std::string last = {});

  /// Gives up without answering: the client is gone, so nothing is sent.
  void drop() noexcept { done_ = true; }

  /// A handle that writes chunks of this begun stream from any thread, as `stream_write` does,
  /// without touching the responder (which stays its owner's alone). Calls ordered by
  /// happens-before (with each other and with the responder's) are written in that order;
  /// chunks that arrive after the response ended are dropped. Empty for an empty responder.
  std::function<void(std::string)> stream_writer() const;

  /// `fn` runs (on the session's I/O thread) if the client goes away before the response is
  /// complete; at once, on the calling thread, if it already has. At most one callback (a later
  /// one replaces it); it must not block.
  void on_cancel(std::function<void()> fn);

  /// The request's body to pull, when the server streams it (`server_options::streamed_body`
  /// named the request and it has a body); null otherwise, when `request::body` holds it whole.
  std::shared_ptr<http::body_source> body_source() const;

  /// The io_context the server runs on, for upstream I/O the handler starts on the same
  /// threads; null for an empty responder.
  boost::asio::io_context* io_context() const noexcept;

  /// Bytes handed to the session but not yet written to the socket (stream back-pressure).
  std::size_t pending_bytes() const noexcept;

  /// Calls `fn` (on the session's I/O thread) once the pending bytes drop to `low_water` or
  /// below, or the response ends; at once, on the calling thread, if they already have. One
  /// waiter at a time.
  void when_drained(std::size_t low_water, std::function<void()> fn);

 private:
  /// Ends a begun stream abnormally: the connection is closed without the terminating chunk.
  void stream_abort();

  std::shared_ptr<exchange_link> link_;
  bool done_ = false;
  bool started_ = false;
};

/// The server's address, limits and timeouts; every limit applies per connection.
struct server_options {
  std::string host = "127.0.0.1";  ///< an address, or a name resolved once by `listen`
  std::uint16_t port = 8080;       ///< 0 = ephemeral
  /// A larger request body is answered 413 (at the headers when Content-Length shows it).
  std::size_t max_body_bytes = 4 * 1024 * 1024;
  /// Request line and header fields together; more is answered 431 (414 when the request
  /// line alone is longer than `max_url_bytes`).
  std::size_t max_header_bytes = 16 * 1024;
  /// Header fields in one request; more is answered 431.
  std::size_t max_header_count = 100;
  /// The request target (path and query); longer is answered 414.
  std::size_t max_url_bytes = 8 * 1024;
  /// Client connections open at once (0: no limit); one more is answered 503 with
  /// `Retry-After` and closed at once, without reading its request.
  std::size_t max_connections = 4096;
  /// For the rest of a request once its headers arrived; the connection is closed past it.
  std::chrono::milliseconds read_timeout{30'000};
  /// For the next request's headers on a kept-alive connection (and the first one's).
  std::chrono::milliseconds idle_timeout{75'000};
  /// For each write of a response to drain into the socket.
  std::chrono::milliseconds write_timeout{60'000};
  /// The request header fields the handler reads (names, any case; at most
  /// `max_kept_headers`): their values reach it in `request::headers`, in this order. The
  /// server stores no other field (it reads `Expect` itself).
  std::vector<std::string> kept_headers;
  /// Requests whose body the handler pulls as it arrives (`responder::body_source`) instead of
  /// receiving it whole in `request::body`: asked once the head is read, for a request that has
  /// a body, with its method and target. A value is that request's body limit in bytes (replacing
  /// `max_body_bytes`: 413 at the head when `Content-Length` shows more, `too_large` when a
  /// chunked body passes it); none reads the body whole as usual. Runs on an I/O thread; must
  /// not block. A response that ends before its streamed body was read whole closes the
  /// connection (after draining briefly, so the client sees it).
  std::function<std::optional<std::size_t>(method, std::string_view target)> streamed_body;
  /// The value of the `Server` response header; empty sends none.
  std::string server_name;
  /// TLS (both PEM files, or neither for plain HTTP): the certificate chain and private key.
  /// Read by `listen` and again by `reload_tls`.
  std::string tls_cert_file;
  std::string tls_key_file;
};

/// Called on an I/O thread for each complete request. It must not block: answer through the
/// responder now or later from anywhere.
using handler = std::function<void(request&&, responder&&)>;

/// HTTP/1.1 server (RFC 9112, on Boost.Beast), plain or over TLS (1.2+) with the same session
/// code: keep-alive and pipelining, bounded reads, timeouts (the TLS handshake within the read
/// timeout), 413 at the headers, 414, 431, 400 for malformed HTTP, 503 past the connection
/// limit, `Expect: 100-continue`, and client-disconnect detection while a request is in flight. Its
/// own errors are answered in the OpenAI error envelope. Call `listen`, `start` and `close` from
/// one thread; the handler runs on the I/O threads running `io`.
class server {
 public:
  /// A server on `io` (not yet listening) that hands every request to `h`.
  server(boost::asio::io_context& io, server_options opts, handler h);
  /// Closes (see `close`); sessions still open keep the shared state alive until they end.
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// Binds and listens (blocking; before `start`). Fails with errc::invalid_request when the
  /// host does not resolve, errc::internal naming the address when it cannot bind or listen,
  /// when more than `max_kept_headers` headers are to be kept, or naming the file when the
  /// TLS certificate or key cannot be used.
  result<void> listen();
  /// Starts accepting (after `listen`), on the I/O threads.
  void start();
  /// TLS only: reads the certificate and key files again; connections accepted from now on
  /// use them, open ones keep theirs. On an error (unreadable or mismatched files) the
  /// current ones stay in use and the error names the file. Any thread.
  result<void> reload_tls();
  /// The listener speaks TLS.
  bool is_tls() const noexcept;
  /// The bound port (after `listen`).
  std::uint16_t port() const noexcept;
  /// Stops accepting; open sessions finish their current response, then close (no more
  /// keep-alive). Also done by the destructor.
  void close();

  struct impl;  ///< implementation detail (public for the sessions/exchanges in the .cpp)

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace ib::http
