#pragma once

#include <memory>
#include <string>
#include <vector>

#include <caf/fwd.hpp>

#include "core/result.hpp"

namespace ib::storage {
class key_store;
class fernet_keyring;
}  // namespace ib::storage

namespace ib::actors {

struct key_directory;
struct key_snapshot;

/// Builds the key snapshot from the store: every gateway key hash, user, and provider key
/// decrypted with `keyring`. Fails (never sends garbage upstream) when provider keys are stored
/// but the master keys decrypt none of them.
result<std::shared_ptr<const key_snapshot>> load_key_snapshot(
    const storage::key_store& store, const storage::fernet_keyring& keyring);

/// Spawns the key actor under its supervisor and returns the supervisor: the stable handle to
/// send commands to. The key actor (detached: LMDB commits sync to disk, which must not block the
/// scheduler) is the only writer of users and keys and of `dir`'s snapshot; `dir` must already
/// hold the snapshot loaded from `store`. Messages: `(mkuser_atom, shared_ptr<create_user_cmd>)`,
/// `(putkey_atom, shared_ptr<put_key_cmd>)`, `(delkey_atom, shared_ptr<delete_key_cmd>)`; each
/// calls the command's `done` once the write is durable (or failed) and the snapshot is
/// published. If the key actor dies, the supervisor spawns a new one, which reloads the snapshot
/// from the store and republishes it before taking commands; commands that die with the old one
/// are never answered by it (wrap `done` with `answer_if_dropped`). `(child_atom) -> caf::actor`
/// returns the current key actor (for tests). An exit sent to the supervisor stops both.
caf::actor spawn_key_actor(caf::actor_system& sys, std::shared_ptr<storage::key_store> store,
                           std::shared_ptr<const storage::fernet_keyring> keyring,
                           std::shared_ptr<key_directory> dir);

}  // namespace ib::actors
