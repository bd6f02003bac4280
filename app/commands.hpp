#pragma once

#include <string>

#include "config/config.hpp"

namespace ib::app {

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
