#pragma once

#include "config/config.hpp"

namespace ib::app {

/// Runs the gateway until SIGINT/SIGTERM: opens the store, checks the master key, starts the
/// actor system, the I/O threads and the HTTP server, prints `listening on HOST:PORT` as the first
/// line on stdout, and shuts down in order. Returns the process exit code.
int run_gateway(const config::config& cfg);

/// `inferbridge rotate-master-key`: re-encrypts every stored provider key under the first master
/// key (decrypting with any of them). Returns the process exit code.
int rotate_master_key(const config::config& cfg);

}  // namespace ib::app
