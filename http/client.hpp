#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "http/message.hpp"

namespace boost::asio {
class io_context;
}

namespace ib::http {

using steady_time = std::chrono::steady_clock::time_point;

struct upstream_endpoint {
  bool tls = true;
  std::string host;
  std::uint16_t port = 443;
};

struct client_options {
  upstream_endpoint endpoint;
  std::chrono::milliseconds connect_timeout{3'000};
  /// Until the first payload byte (non-stream: first non-blank body byte; stream: what the
  /// handler reports as payload); after it, the longest silence between payload pieces.
  std::chrono::milliseconds first_byte_timeout{30'000};
  std::chrono::milliseconds total_timeout{120'000};
  std::size_t pool_size = 64;  ///< idle keep-alive connections kept
  /// Idle connections older than this are not reused; an upstream's `Keep-Alive: timeout=`
  /// shortens it (see `idle_limit`).
  std::chrono::milliseconds max_idle{20'000};
  std::size_t max_body_bytes = 32 * 1024 * 1024;  ///< non-streamed bodies
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

/// One outgoing POST.
struct outgoing_request {
  std::string target;
  header_list headers;  ///< besides host, content-length, user-agent (added by the client)
  std::string body;
  bool stream = false;   ///< stream a 2xx body to the handler instead of buffering it
  steady_time deadline;  ///< the request's overall deadline (may end the exchange early)
};

/// The response headers the gateway uses.
struct response_head {
  int status = 0;
  std::string content_type;
  std::string retry_after;
  std::string retry_after_ms;
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
  /// The response came on a pooled connection (false when a stale pooled connection was
  /// replaced by a fresh one, see `upstream_pool`).
  bool reused_connection = false;
};

/// What the handler wants after a streamed body piece.
struct body_action {
  bool payload = false;  ///< the piece held payload: the first-byte/idle timer is satisfied
  bool pause = false;    ///< stop reading until `exchange_control::resume()`
  bool stop = false;     ///< the handler has seen enough (e.g. an in-band error): end now
};

/// Receives one exchange's events, all on the same I/O strand, in order: `on_head` (streamed 2xx
/// only), `on_body`* (streamed 2xx only), then `on_complete` exactly once.
class exchange_handler {
 public:
  virtual ~exchange_handler() = default;
  virtual void on_head(const response_head& head) = 0;
  virtual body_action on_body(std::string_view bytes) = 0;
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
  upstream_pool(boost::asio::io_context& io, client_options opts);
  ~upstream_pool();
  upstream_pool(const upstream_pool&) = delete;
  upstream_pool& operator=(const upstream_pool&) = delete;

  /// Starts an exchange; events go to `handler`.
  std::shared_ptr<exchange_control> start(outgoing_request req,
                                          std::shared_ptr<exchange_handler> handler);

  /// Aborts every in-flight exchange (`on_complete(pool_closed)`) and drops idle connections.
  void shutdown();

  struct counters {
    std::uint64_t connects = 0;
    std::uint64_t reuses = 0;
    std::uint64_t stale_retries = 0;  ///< requests re-sent after a reused connection died
    std::size_t idle = 0;
    std::size_t in_flight = 0;
  };
  counters stats() const;

  struct impl;  ///< implementation detail (public for the sessions/exchanges in the .cpp)

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace ib::http
