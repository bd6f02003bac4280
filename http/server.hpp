#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "http/message.hpp"

namespace boost::asio {
class io_context;
}

namespace ib::http {

class session;
struct exchange_link;

/// Exactly one answer per request. Move-only; any thread may call it (an actor may hold it), but
/// every write is posted onto the session's executor. If it is destroyed before answering, the
/// client gets a 500 in the OpenAI envelope (a bug, counted in `unanswered()`).
class responder {
 public:
  responder() = default;
  explicit responder(std::shared_ptr<exchange_link> link);
  responder(responder&& other) noexcept
      : link_(std::move(other.link_)), done_(other.done_), started_(other.started_) {
    other.done_ = true;
  }
  responder& operator=(responder&& other) noexcept;
  responder(const responder&) = delete;
  responder& operator=(const responder&) = delete;
  ~responder();

  /// Sends a complete response (once).
  void send(response res);

  /// Starts a chunked streaming response: status line, headers and `head.body` as the first
  /// chunk (may be empty). Then `stream_write`, then `stream_end`.
  void stream_begin(response head);
  void stream_write(std::string bytes);
  /// Sends `last` (if any) and the terminating chunk; the connection may then be reused.
  void stream_end(std::string last = {});
  /// Ends a started stream abnormally: the connection is closed without the terminating chunk.
  void stream_abort();

  /// Gives up without answering: the client is gone, so nothing is sent and nothing is counted.
  void drop() noexcept { done_ = true; }

  /// `fn` runs (on an I/O thread) if the client goes away before the response is complete;
  /// at once if it already has. At most one callback; it must not block.
  void on_cancel(std::function<void()> fn);

  /// Bytes handed to the session but not yet written to the socket (stream back-pressure).
  std::size_t pending_bytes() const noexcept;

  /// Calls `fn` (on an I/O thread) once the pending bytes drop to `low_water` or below — at once
  /// if they already have. One waiter at a time.
  void when_drained(std::size_t low_water, std::function<void()> fn);

  explicit operator bool() const noexcept { return link_ != nullptr; }

  /// Responses that were never sent (responder destroyed unanswered), process-wide.
  static std::uint64_t unanswered() noexcept;

 private:
  std::shared_ptr<exchange_link> link_;
  bool done_ = false;
  bool started_ = false;
};

struct server_options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;  ///< 0 = ephemeral
  std::size_t max_body_bytes = 4 * 1024 * 1024;
  std::size_t max_header_bytes = 16 * 1024;
  std::chrono::milliseconds read_timeout{30'000};
  std::chrono::milliseconds idle_timeout{75'000};
  std::chrono::milliseconds write_timeout{60'000};
  /// The request header fields the handler reads (names, any case; at most
  /// `max_kept_headers`): their values reach it in `request::headers`, in this order. The
  /// server stores no other field (it reads `Expect` itself).
  std::vector<std::string> kept_headers;
  /// The value of the `Server` response header; empty sends none.
  std::string server_name;
};

/// Called on an I/O thread for each complete request. It must not block: answer through the
/// responder now or later from anywhere.
using handler = std::function<void(request&&, responder&&)>;

/// HTTP/1.1 server (Boost.Beast): keep-alive, bounded reads, timeouts, 413 at the headers,
/// `Expect: 100-continue`, client-disconnect detection while a request is in flight.
class server {
 public:
  server(boost::asio::io_context& io, server_options opts, handler h);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// Binds and listens. Fails with a message naming the address, or if more than
  /// `max_kept_headers` headers are to be kept.
  result<void> listen();
  /// Starts accepting (after `listen`).
  void start();
  /// The bound port (after `listen`).
  std::uint16_t port() const noexcept;
  /// Stops accepting; open sessions finish their current response.
  void close();

  struct impl;  ///< implementation detail (public for the sessions/exchanges in the .cpp)

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace ib::http
