#pragma once

#include <memory>
#include <string>

#include "config/config.hpp"
#include "core/result.hpp"

namespace ib::storage {
class store;
class pg_store;
class fernet_keyring;
}  // namespace ib::storage

namespace ib::app {

/// The opened store and the master keyring that decrypts its provider keys.
struct opened_store {
  std::shared_ptr<storage::store> store;
  std::shared_ptr<storage::pg_store> pg;  ///< the same store when it is PostgreSQL, else null
  /// PostgreSQL: the same database for shared health only (commits not waiting for the disk:
  /// breaker state may be lost in a database crash, its notifications must not wait for fsync).
  std::shared_ptr<storage::pg_store> health;
  std::shared_ptr<const storage::fernet_keyring> keyring;
  std::string node;  ///< this process's node id (names its notifications and probe leases)
};

/// Opens PostgreSQL at `sc.url` as node `node` (schema created or upgraded, design §10). With
/// `for_health`: the connections the cluster bus and listener use (see `opened_store::health`;
/// the schema must already be there). Errors: `pg_store::open`'s.
result<std::shared_ptr<storage::pg_store>> open_postgres(const config::store_config& sc,
                                                         std::string node, bool for_health = false);

/// Opens the store (LMDB in `cfg.data_dir` with `cfg.store.lmdb_map_size`, or PostgreSQL) and
/// loads the master keys (IB_MASTER_KEY or `master.key`, created on first start; PostgreSQL
/// needs IB_MASTER_KEY). Blocking I/O, for start-up and the commands. Errors: the store's or the
/// key loader's, as they are.
result<opened_store> open_storage(const config::config& cfg);

}  // namespace ib::app
