#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/outcome.hpp"
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
  std::size_t pool_size = 64;                  ///< idle keep-alive connections kept
  std::chrono::milliseconds max_idle{20'000};  ///< idle connections older than this are not reused
  std::size_t max_body_bytes = 32 * 1024 * 1024;  ///< non-streamed bodies
  std::string ca_file;  ///< extra CA bundle (tests); the system store is always used
};

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

/// How an exchange ended.
struct exchange_result {
  outcome failure = outcome::success;  ///< success, or connect_error, connect_timeout, reset,
                                       ///< first_byte_timeout, total_timeout, deadline,
                                       ///< bad_response, cancelled, provider_down
  response_head head;                  ///< status 0 when no response head arrived
  std::string body;  ///< the whole body when it was buffered (non-stream, or a non-2xx status)
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
class upstream_pool {
 public:
  upstream_pool(boost::asio::io_context& io, client_options opts);
  ~upstream_pool();
  upstream_pool(const upstream_pool&) = delete;
  upstream_pool& operator=(const upstream_pool&) = delete;

  /// Starts an exchange; events go to `handler`.
  std::shared_ptr<exchange_control> start(outgoing_request req,
                                          std::shared_ptr<exchange_handler> handler);

  /// Aborts every in-flight exchange (`on_complete(provider_down)`) and drops idle connections.
  void shutdown();

  struct counters {
    std::uint64_t connects = 0;
    std::uint64_t reuses = 0;
    std::size_t idle = 0;
    std::size_t in_flight = 0;
  };
  counters stats() const;

  struct impl;  ///< implementation detail (public for the sessions/exchanges in the .cpp)

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace ib::http
