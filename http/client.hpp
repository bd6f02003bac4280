#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "http/message.hpp"

namespace boost::asio {
class io_context;
}

namespace ib::http {

/// A point on the monotonic clock (deadlines).
using steady_time = std::chrono::steady_clock::time_point;

/// Where an upstream is: scheme, host (a name or an address; an IPv6 literal without brackets)
/// and port.
struct upstream_endpoint {
  bool tls = true;  ///< HTTPS (verified against the system CA store), else plain HTTP
  std::string host;
  std::uint16_t port = 443;
};

/// One upstream pool's endpoint, timeouts and limits.
struct client_options {
  upstream_endpoint endpoint;
  /// Name resolution, TCP connect and TLS handshake together.
  std::chrono::milliseconds connect_timeout{3'000};
  /// Until the first payload byte (non-stream: first non-blank body byte; stream: what the
  /// handler reports as payload); after it, the longest silence between payload pieces.
  std::chrono::milliseconds first_byte_timeout{30'000};
  /// The whole exchange, from `start` to the end of the body.
  std::chrono::milliseconds total_timeout{120'000};
  std::size_t pool_size = 64;  ///< idle keep-alive connections kept
  /// Idle connections older than this are not reused; an upstream's `Keep-Alive: timeout=`
  /// shortens it (see `idle_limit`).
  std::chrono::milliseconds max_idle{20'000};
  /// A buffered body (non-stream, or a non-2xx answer to a stream) past this many bytes ends
  /// the exchange as `body_too_large`.
  std::size_t max_body_bytes = 32 * 1024 * 1024;
  std::string ca_file;  ///< extra CA bundle (tests); the system store is always used
};

// -- keep-alive rules (pure) ---------------------------------------------------------------------

/// The parameters of an upstream's `Keep-Alive` response header (RFC 2068 §19.7.1.1), e.g.
/// Node's `Keep-Alive: timeout=5`.
struct keep_alive_params {
  /// `timeout=N`: the upstream closes a connection idle for N seconds.
  std::optional<std::chrono::seconds> timeout;
  /// `max=N`: how many more requests the upstream allows on the connection.
  std::optional<std::uint64_t> max;
  bool operator==(const keep_alive_params&) const = default;
};

/// Parses one `Keep-Alive` header value into `into` (call it once per header line). Names are
/// case-insensitive; spaces, tabs, quotes and `;` or `,` separators are accepted; a value's
/// leading digits count (`5.9` and `5s` are 5: rounding down is the safe side); unknown,
/// empty or digit-less parameters are ignored (never an error). A parameter seen twice keeps
/// its smallest value. Values are capped at one day (timeout) and 2^32 (max).
void parse_keep_alive(std::string_view value, keep_alive_params& into);

/// How long a connection whose last response carried `ka` may stay idle in the pool before it is
/// no longer reused: the upstream's timeout less a safety margin (1 s; a quarter of it below 4 s,
/// so `timeout=1` gives 750 ms), and never more than `max_idle`. Zero means "do not pool": a
/// `timeout=0`, or a `max` of 1 or less (the upstream may close after the next request).
std::chrono::milliseconds idle_limit(const keep_alive_params& ka,
                                     std::chrono::milliseconds max_idle);

/// One piece of a request body sent as it arrives (`outgoing_request::pull_body`).
struct body_chunk {
  std::string bytes;    ///< the next body bytes (may be empty)
  bool last = false;    ///< nothing follows
  bool failed = false;  ///< the source failed: the exchange ends as `cancelled`, unsent
};

/// Asks a body source for its next piece: the callback runs exactly once, on any thread.
using body_puller = std::function<void(std::function<void(body_chunk)>)>;

/// One outgoing request (HTTP/1.1): a POST with `body` by default. A POST's head is written by
/// `write_request_head` (http/wire.hpp); another method, or a pulled body, by the client.
struct outgoing_request {
  http::method method = method::post;
  std::string target;   ///< origin-form: path and query
  header_list headers;  ///< besides host, content-length, user-agent (added by the client)
  std::string body;     ///< sent with a `content-length` (none for a GET/HEAD/DELETE without)
  /// A body sent piece by piece instead of `body`, without holding it whole: the next piece is
  /// pulled only once the previous one is written to the upstream (back-pressure both ways).
  /// Such a request always goes out on a fresh connection (a pooled one could turn out dead
  /// after pieces were consumed, and the body cannot be sent twice); between pieces the
  /// `first_byte_timeout` applies.
  body_puller pull_body;
  /// With `pull_body`: the `content-length` to send; none sends the body chunked.
  std::optional<std::uint64_t> body_length;
  bool stream = false;   ///< stream a 2xx body to the handler instead of buffering it
  steady_time deadline;  ///< the request's overall deadline (may end the exchange early)
};

/// The response status and the few header fields the client reports (the last line of each
/// if it repeats; empty if absent). Other fields are not stored.
struct response_head {
  int status = 0;              ///< 0 until a status line arrived
  std::string content_type;    ///< `Content-Type`
  std::string retry_after;     ///< `Retry-After`, as sent (seconds or an HTTP-date)
  std::string retry_after_ms;  ///< `retry-after-ms` (OpenAI's SDK convention), as sent
};

/// What went wrong on the wire, if anything: the client's own account of an exchange, in HTTP
/// terms. What it means for the request (fallback, breaker) is decided above `http/`.
enum class exchange_failure : std::uint8_t {
  none = 0,            ///< a complete response arrived (any status)
  connect_error,       ///< name resolution failed or the connection was refused or unreachable
  tls_error,           ///< the TLS handshake failed (certificate, host name, SNI)
  connect_timeout,     ///< not connected within `connect_timeout`
  reset,               ///< the connection was reset or closed before a complete response
  first_byte_timeout,  ///< no payload byte within `first_byte_timeout` of sending the request
  idle_timeout,        ///< streaming: no payload piece within `first_byte_timeout` of the last
  total_timeout,       ///< `total_timeout` expired
  deadline,            ///< the request's overall deadline (`outgoing_request::deadline`) expired
  body_too_large,      ///< a buffered body exceeded `max_body_bytes`
  bad_response,        ///< malformed HTTP: framing, an interim 1xx response, an internal fault
  cancelled,           ///< `exchange_control::cancel()`
  pool_closed,         ///< the pool was shut down (or dropped the exchange) before it completed
};

/// The name of `f` (e.g. `first_byte_timeout`), for logs and tests.
std::string_view to_string(exchange_failure f) noexcept;

/// How an exchange ended.
struct exchange_result {
  exchange_failure failure = exchange_failure::none;
  response_head head;  ///< status 0 when no response head arrived
  std::string body;    ///< the whole body when it was buffered (non-stream, or a non-2xx status)
};

/// What the handler wants after a streamed body piece.
struct body_action {
  bool payload = false;  ///< the piece held payload: the first-byte/idle timer is satisfied
  bool pause = false;    ///< stop reading until `exchange_control::resume()`
  bool stop = false;     ///< the handler has seen enough (e.g. an in-band error): end now
};

/// Receives one exchange's events, all on the same I/O strand, in order: `on_head` (streamed 2xx
/// only), `on_body`* (streamed 2xx only), then `on_complete` exactly once. The callbacks must
/// not block.
class exchange_handler {
 public:
  virtual ~exchange_handler() = default;
  /// A streamed request got a 2xx head; the body follows in `on_body`.
  virtual void on_head(const response_head& head) = 0;
  /// The next piece of a streamed 2xx body, de-chunked (any size, never empty); the view is
  /// valid during the call only.
  virtual body_action on_body(std::string_view bytes) = 0;
  /// The exchange ended: complete (`failure == none`) or not.
  virtual void on_complete(exchange_result result) = 0;
};

/// A handle on an in-flight exchange; any thread may use it.
class exchange_control {
 public:
  virtual ~exchange_control() = default;
  /// Aborts the exchange (its connection is closed, never pooled); `on_complete(cancelled)`.
  virtual void cancel() = 0;
  /// Resumes reading after a `pause`.
  virtual void resume() = 0;
};

/// Keep-alive connection pool to one upstream host (HTTP or HTTPS with certificate and host name
/// verification against the system CA store). Thread-safe.
///
/// A connection is pooled only after a complete response that allows keep-alive (HTTP/1.1
/// without `Connection: close`, or HTTP/1.0 with `Connection: keep-alive`), with no surplus
/// bytes, and for at most `idle_limit` of its last `Keep-Alive` header. It is reused only if a
/// non-blocking peek (and for TLS, OpenSSL's buffers) show nothing arrived meanwhile. When a
/// reused connection still turns out dead (the write fails, or EOF/reset before a single byte
/// of the response), the request is sent once more on a fresh connection, within the same
/// deadlines; a fresh connection's failure is reported as it is.
class upstream_pool {
 public:
  /// A pool on `io` (its threads run every exchange); connects lazily. TLS pools share one
  /// client context per CA file, built on first use.
  upstream_pool(boost::asio::io_context& io, client_options opts);
  /// Shuts down (see `shutdown`).
  ~upstream_pool();
  upstream_pool(const upstream_pool&) = delete;
  upstream_pool& operator=(const upstream_pool&) = delete;

  /// Starts an exchange (never blocks; any thread); events go to `handler`, on an I/O thread,
  /// even when the pool is already shut down (`pool_closed`).
  std::shared_ptr<exchange_control> start(outgoing_request req,
                                          std::shared_ptr<exchange_handler> handler);

  /// Aborts every in-flight exchange (`on_complete(pool_closed)`) and drops idle connections.
  void shutdown();

  struct impl;  ///< implementation detail (public for the sessions/exchanges in the .cpp)

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace ib::http
