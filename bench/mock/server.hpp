#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace ib::mock {

/// How `run_server` listens and how much it keeps.
struct server_options {
  std::string host = "127.0.0.1";
  std::string port = "0";
  int threads = 1;                        // io threads, each with its own io_context
  std::size_t record_limit = 1000;        // requests kept for GET /__mock/requests (0: none)
  std::size_t record_bytes = 256u << 20;  // and at most this many bytes of them

  // -- idle keep-alive connections (Node-like upstreams); all off by default --

  /// Like Node's `server.keepAliveTimeout`: responses say `Keep-Alive: timeout=<whole seconds>`
  /// and a connection idle this long between requests is closed (FIN). Zero: off.
  std::chrono::milliseconds keepalive_timeout{0};
  /// Each idle period between requests also ends at a uniformly random moment in [0, this): the
  /// connection is closed (FIN). Zero: off.
  std::chrono::milliseconds idle_close_jitter{0};
  /// The chance (0 to 1) that an idle connection is closed just as the next request arrives,
  /// without reading it (so with RST): the upstream never sees that request. Never the first
  /// request of a connection.
  double race_close = 0;
  /// Seeds the random choices above (each connection: `seed` and its accept number).
  std::uint64_t seed = 1;
};

/// Binds, prints `listening on HOST:PORT` (flushed) as the first stdout line, then serves until
/// SIGINT or SIGTERM. Returns the process exit code: 0 after a signal, 1 when it cannot listen.
int run_server(const server_options& options);

}  // namespace ib::mock
