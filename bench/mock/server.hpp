#pragma once

#include <cstddef>
#include <string>

namespace ib::mock {

/// How `run_server` listens and how much it keeps.
struct server_options {
  std::string host = "127.0.0.1";
  std::string port = "0";
  int threads = 1;                        // io threads, each with its own io_context
  std::size_t record_limit = 1000;        // requests kept for GET /__mock/requests (0: none)
  std::size_t record_bytes = 256u << 20;  // and at most this many bytes of them
};

/// Binds, prints `listening on HOST:PORT` (flushed) as the first stdout line, then serves until
/// SIGINT or SIGTERM. Returns the process exit code: 0 after a signal, 1 when it cannot listen.
int run_server(const server_options& options);

}  // namespace ib::mock
