#include "app/store_open.hpp"

#include "storage/fernet.hpp"
#include "storage/key_store.hpp"
#include "storage/master_key.hpp"
#include "storage/pg_store.hpp"
#include "storage/secrets.hpp"

namespace ib::app {

/// Opens PostgreSQL at `url` as node `node` (schema created or upgraded, design §10). With
/// `for_health`: the connections the cluster bus and listener use (see `opened_store::health`;
/// the schema must already be there).
result<std::shared_ptr<storage::pg_store>> open_postgres(const config::store_config& sc,
                                                         std::string node, bool for_health) {
  storage::pg_options o;
  o.url = sc.url;
  o.node = std::move(node);
  o.timeout = sc.timeout;
  o.durable_commits = !for_health;
  o.migrate = !for_health;
  auto pg = storage::pg_store::open(std::move(o));
  if (!pg) {
    return std::move(pg).error();
  }
  return std::shared_ptr<storage::pg_store>(std::move(*pg));
}

/// Step 1: opens the store (LMDB in `cfg.data_dir`, or PostgreSQL) and loads the master keys
/// (IB_MASTER_KEY or `master.key`, created on first start; PostgreSQL needs IB_MASTER_KEY).
/// Errors: the store's or the key loader's, as they are.
result<opened_store> open_storage(const config::config& cfg) {
  opened_store out;
  out.node = storage::new_id("node_");
  if (cfg.store.kind == config::store_kind::postgres) {
    auto pg = open_postgres(cfg.store, out.node);
    if (!pg) {
      return std::move(pg).error();
    }
    out.pg = *pg;
    out.store = *pg;
    auto health = open_postgres(cfg.store, out.node, true);
    if (!health) {
      return std::move(health).error();
    }
    out.health = *health;
  } else {
    auto store = storage::key_store::open(cfg.data_dir, cfg.store.lmdb_map_size);
    if (!store) {
      return std::move(store).error();
    }
    out.store = std::shared_ptr<storage::key_store>(std::move(*store));
  }
  auto keys = storage::load_master_keys(cfg.master_keys, cfg.data_dir);
  if (!keys) {
    return std::move(keys).error();
  }
  out.keyring = std::make_shared<const storage::fernet_keyring>(std::move(*keys));
  return out;
}

}  // namespace ib::app
