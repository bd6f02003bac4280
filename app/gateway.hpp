#pragma once

#include "config/config.hpp"

namespace ib::app {

/// Runs the gateway until SIGINT/SIGTERM, on the calling thread (which only waits): opens the
/// store and the master keys, loads the key snapshot, starts the I/O threads, the actor system,
/// the service actors (keys, metrics), one health supervisor per provider and the HTTP server,
/// prints `listening on HOST:PORT` as the first line on stdout, and on a signal stops them in
/// reverse order (in-flight requests get up to 10 s). The process logger (actors/log.hpp) is set
/// to `cfg.log` first; the log lines (startup, access lines, breaker transitions, errors) follow
/// the listening line on stdout and are all written before this returns. Returns the process
/// exit code: 0 after a signal; 2 when the store, the master keys, the key snapshot or the
/// listener fail (the reason on stderr, `inferbridge: ...`, as for configuration errors).
int run_gateway(const config::config& cfg);

}  // namespace ib::app
