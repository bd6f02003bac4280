#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "config/config.hpp"

namespace ib::app {

/// How `rotate_master_key` works through the store.
struct rotate_options {
  /// Provider keys per write transaction (each batch is committed on its own).
  std::size_t batch_size = 100;
  /// Test hook (IB_TEST_ROTATION_HOLD_AFTER_BATCHES): after this many committed batches, the
  /// next one, its writes done but not committed, prints a `holding` line and waits for EOF on
  /// stdin, so that a test can kill -9 the process at a known point in the middle.
  std::optional<std::size_t> hold_after_batches;
};

/// `inferbridge rotate-master-key`, LMDB store: re-encrypts every provider key that is not
/// already under the new master key, in bounded batches (each its own committed transaction,
/// so a killed run leaves every token valid under the old or the new key, and running it again
/// completes it), then compacts `data.mdb` (`storage::key_store::compact`) so that no freed page
/// still holds a token of a retired key, then retires the old key material in the data dir.
/// The new key is IB_MASTER_KEY's first (the others decrypt); a `master.key` left in the data
/// dir holding another key is overwritten and removed. Without IB_MASTER_KEY, a new key is made
/// and kept in `master.key.new` until the end (a resumed run reuses it), then renamed over
/// `master.key` and the old file's bytes are overwritten. Prints one progress line per batch.
/// Refuses (2, nothing done) while another process has the store open. Returns 0, or 2 with
/// the reason on stderr. PostgreSQL: re-encrypts in one transaction, no compaction.
int rotate_master_key(const config::config& cfg, const rotate_options& opt = {});

/// `inferbridge compact`: compacts the LMDB store in `cfg.data_dir`
/// (`storage::key_store::compact`), after which the bytes of deleted provider keys are gone from
/// the file. Prints `compacted PATH: N -> M bytes`. Returns 0, or 2 with the reason on stderr
/// (another process has the store open; PostgreSQL store; I/O).
int compact_store(const config::config& cfg);

/// `inferbridge migrate-store --to URL`: copies the users, gateway key hashes and provider key
/// tokens of the LMDB store in `cfg.data_dir` into PostgreSQL at `url` (schema created if
/// missing), skipping rows already there: running it twice changes nothing. The tokens are
/// copied as they are, so the same master key keeps working; it refuses (copying nothing) when a
/// token does not decrypt with the master keys (IB_MASTER_KEY, else `master.key`). Prints
/// `copied N users, M api keys, K provider keys` (rows inserted). Returns 0, or 2 with the reason
/// on stderr.
int migrate_store(const config::config& cfg, const std::string& url);

}  // namespace ib::app
