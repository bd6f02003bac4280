#pragma once

#include <memory>
#include <string>
#include <vector>

#include <caf/fwd.hpp>

#include "actors/messages.hpp"
#include "core/result.hpp"

namespace ib::storage {
class store;
class fernet_keyring;
}  // namespace ib::storage
namespace ib::metrics {
class registry;
}  // namespace ib::metrics

namespace ib::actors {

struct key_directory;
struct key_snapshot;

/// Builds the key snapshot from the store: every gateway key hash, user, and provider key
/// decrypted with `keyring`. Fails (never sends garbage upstream) when provider keys are stored
/// but the master keys decrypt none of them.
result<std::shared_ptr<const key_snapshot>> load_key_snapshot(
    const storage::store& store, const storage::fernet_keyring& keyring);

/// Spawns the key actor under its supervisor and returns the supervisor: the stable handle to
/// ask (protocol: `key_supervisor_handle` in actors/messages.hpp). The key actor (detached: LMDB
/// commits sync to disk, which must not block the scheduler; its handlers run on its own thread)
/// is the only writer of users and keys and of `dir`'s snapshot; `dir` must already hold the
/// snapshot loaded from `store`. The supervisor delegates each command, so the key actor's
/// answer goes straight to the asker, after the write is durable and the snapshot published (or
/// as an "ib" error). If the key actor dies, the supervisor spawns a new one, which reloads the
/// snapshot from the store and republishes it before taking commands; a command that dies with
/// the old one comes back to its asker from CAF as `sec::request_receiver_down` (see
/// `is_dropped`). An exit sent to the supervisor stops both (queued commands are served first).
/// With a `registry`, each write is counted in `inferbridge_store_writes_total{op,outcome}`.
key_supervisor_handle spawn_key_actor(caf::actor_system& sys, std::shared_ptr<storage::store> store,
                                      std::shared_ptr<const storage::fernet_keyring> keyring,
                                      std::shared_ptr<key_directory> dir,
                                      std::shared_ptr<metrics::registry> registry = nullptr);

}  // namespace ib::actors
