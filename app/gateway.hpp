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

/// `inferbridge rotate-master-key`: re-encrypts every stored provider key under the first master
/// key (decrypting with any of them), in one write transaction. Returns 0, or 2 when the store
/// cannot be opened or a key decrypts with no master key (then nothing is changed).
int rotate_master_key(const config::config& cfg);

/// `inferbridge migrate-store --to URL`: copies the users, gateway key hashes and provider key
/// tokens of the LMDB store in `cfg.data_dir` into PostgreSQL at `url` (schema created if
/// missing), skipping rows already there: running it twice changes nothing. The tokens are
/// copied as they are, so the same master key keeps working; it refuses (copying nothing) when a
/// token does not decrypt with the master keys (IB_MASTER_KEY, else `master.key`). Prints
/// `copied N users, M api keys, K provider keys` (rows inserted). Returns 0, or 2 with the reason
/// on stderr.
int migrate_store(const config::config& cfg, const std::string& url);

}  // namespace ib::app
