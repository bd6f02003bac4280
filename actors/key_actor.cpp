#include "actors/key_actor.hpp"

#include <ctime>

#include <caf/all.hpp>

#include "actors/log.hpp"
#include "actors/messages.hpp"
#include "storage/fernet.hpp"
#include "storage/key_store.hpp"
#include "storage/secrets.hpp"

namespace ib::actors {

namespace {

std::string hash_key(const storage::sha256_digest& d) {
  return std::string(reinterpret_cast<const char*>(d.data()), d.size());
}

/// A copy of `base` with `user` replaced (or added).
std::shared_ptr<const key_snapshot> with_user(const key_snapshot& base,
                                              std::shared_ptr<const user_entry> user,
                                              const std::string* new_hash) {
  auto next = std::make_shared<key_snapshot>(base);
  if (new_hash != nullptr) {
    next->user_by_hash[*new_hash] = user->id;
  }
  next->users[user->id] = std::move(user);
  return next;
}

struct key_state {
  std::shared_ptr<storage::key_store> store;
  std::shared_ptr<const storage::fernet_keyring> keyring;
  std::shared_ptr<key_directory> dir;
  static inline const char* name = "key_actor";
};

using key_actor_t = caf::stateful_actor<key_state>;

std::shared_ptr<const key_snapshot> current(key_actor_t* self) {
  return self->state.dir->snapshot.load(std::memory_order_acquire);
}

void publish(key_actor_t* self, std::shared_ptr<const key_snapshot> next) {
  self->state.dir->snapshot.store(std::move(next), std::memory_order_release);
}

result<created_user> create_user(key_actor_t* self, const std::string& email) {
  auto& st = self->state;
  auto key = storage::new_gateway_key();
  auto digest = storage::sha256(key);
  auto rec = st.store->create_user(email, digest, std::time(nullptr));
  if (!rec) {
    return std::move(rec).error();
  }
  auto user = std::make_shared<user_entry>();
  user->id = rec->id;
  user->email = rec->email;
  user->created = rec->created;
  auto h = hash_key(digest);
  publish(self, with_user(*current(self), user, &h));
  return created_user{rec->id, rec->email, std::move(key), rec->created};
}

result<key_info> put_key(key_actor_t* self, const put_key_cmd& cmd) {
  auto& st = self->state;
  storage::provider_key_record rec;
  rec.provider = cmd.provider;
  rec.token = st.keyring->encrypt(cmd.api_key);
  rec.hint = storage::key_hint(cmd.api_key);
  rec.created = std::time(nullptr);
  auto replaced = st.store->put_provider_key(cmd.user_id, rec);
  if (!replaced) {
    return std::move(replaced).error();
  }
  auto snap = current(self);
  auto it = snap->users.find(cmd.user_id);
  if (it == snap->users.end()) {
    return error{errc::unauthorized, "unknown user"};
  }
  auto user = std::make_shared<user_entry>(*it->second);
  std::erase_if(user->keys, [&](const user_key& k) { return k.provider == cmd.provider; });
  user->keys.push_back(user_key{cmd.provider, cmd.api_key, rec.hint, rec.created});
  publish(self, with_user(*snap, std::move(user), nullptr));
  return key_info{rec.provider, rec.hint, rec.created, *replaced};
}

result<bool> delete_key(key_actor_t* self, const delete_key_cmd& cmd) {
  auto& st = self->state;
  auto removed = st.store->delete_provider_key(cmd.user_id, cmd.provider);
  if (!removed) {
    return std::move(removed).error();
  }
  if (*removed) {
    auto snap = current(self);
    auto it = snap->users.find(cmd.user_id);
    if (it != snap->users.end()) {
      auto user = std::make_shared<user_entry>(*it->second);
      std::erase_if(user->keys, [&](const user_key& k) { return k.provider == cmd.provider; });
      publish(self, with_user(*snap, std::move(user), nullptr));
    }
  }
  return *removed;
}

/// Rebuilds the snapshot from the store and publishes it; on failure keeps the published one.
void reload_snapshot(key_actor_t* self) {
  auto& st = self->state;
  try {
    auto snap = load_key_snapshot(*st.store, *st.keyring);
    if (!snap) {
      log_line("key actor: reloading the key snapshot failed (" + snap.error().message
               + "); keeping the last published one");
      return;
    }
    publish(self, std::move(*snap));
  } catch (const std::exception& e) {
    log_line(std::string("key actor: reloading the key snapshot failed (") + e.what()
             + "); keeping the last published one");
  }
}

/// Runs `fn` and hands its result to `done`; an exception becomes an internal error.
template <class T, class F>
void answer(const std::function<void(result<T>)>& done, F&& fn) {
  if (!done) {
    return;
  }
  try {
    done(fn());
  } catch (const std::exception&) {
    done(error{errc::internal, "the key store failed"});
  }
}

caf::behavior key_actor(key_actor_t* self, std::shared_ptr<storage::key_store> store,
                        std::shared_ptr<const storage::fernet_keyring> keyring,
                        std::shared_ptr<key_directory> dir, bool reload) {
  self->state.store = std::move(store);
  self->state.keyring = std::move(keyring);
  self->state.dir = std::move(dir);
  if (reload) {
    // A predecessor may have died between a durable write and publishing it: the store is the
    // truth, so rebuild the snapshot from it before taking any command.
    reload_snapshot(self);
  }
  return {
      [self](mkuser_atom, std::shared_ptr<create_user_cmd>& cmd) {
        answer<created_user>(cmd->done, [&] { return create_user(self, cmd->email); });
      },
      [self](putkey_atom, std::shared_ptr<put_key_cmd>& cmd) {
        answer<key_info>(cmd->done, [&] { return put_key(self, *cmd); });
      },
      [self](delkey_atom, std::shared_ptr<delete_key_cmd>& cmd) {
        answer<bool>(cmd->done, [&] { return delete_key(self, *cmd); });
      },
  };
}

// -- the key supervisor: the stable handle that callers use ---------------------------------------

// Design: callers (app/api.cpp) hold the supervisor, never the key actor. Writes are rare and off
// the chat path, so one extra hop (a scheduled actor forwarding a shared_ptr) is cheaper than
// publishing a changing handle that every caller would have to reload. The supervisor owns no
// data; it only forwards, notices the key actor's death (monitor) and spawns a successor that
// reloads the snapshot from the store. Commands that die with the old key actor (in its mailbox,
// or forwarded before the supervisor saw the death) are answered by their `answer_if_dropped`
// wrapper, not by the supervisor.

struct key_supervisor_state {
  std::shared_ptr<storage::key_store> store;
  std::shared_ptr<const storage::fernet_keyring> keyring;
  std::shared_ptr<key_directory> dir;
  caf::actor child;
  std::uint64_t restarts = 0;
  static inline const char* name = "key_supervisor";
};

using key_supervisor_t = caf::stateful_actor<key_supervisor_state>;

void spawn_child(key_supervisor_t* self, bool reload) {
  auto& st = self->state;
  // Detached: LMDB commits fsync, which must not block the scheduler's threads.
  st.child =
      self->spawn<caf::detached + caf::monitored>(key_actor, st.store, st.keyring, st.dir, reload);
}

caf::behavior key_supervisor(key_supervisor_t* self, std::shared_ptr<storage::key_store> store,
                             std::shared_ptr<const storage::fernet_keyring> keyring,
                             std::shared_ptr<key_directory> dir) {
  auto& st = self->state;
  st.store = std::move(store);
  st.keyring = std::move(keyring);
  st.dir = std::move(dir);
  spawn_child(self, false);
  self->set_down_handler([self](const caf::down_msg& dm) {
    auto& st = self->state;
    if (dm.source != st.child.address()) {
      return;
    }
    ++st.restarts;
    log_line("key actor died (" + caf::to_string(dm.reason)
             + "); restarting it with the snapshot reloaded from the store");
    spawn_child(self, true);
  });
  self->set_exit_handler([self](const caf::exit_msg& em) {
    // The key actor is monitored, not linked: take it down with us (it handles the commands
    // queued before the exit first).
    self->send_exit(self->state.child, em.reason);
    self->quit(em.reason);
  });
  return {
      [self](mkuser_atom a, std::shared_ptr<create_user_cmd>& cmd) {
        self->send(self->state.child, a, std::move(cmd));
      },
      [self](putkey_atom a, std::shared_ptr<put_key_cmd>& cmd) {
        self->send(self->state.child, a, std::move(cmd));
      },
      [self](delkey_atom a, std::shared_ptr<delete_key_cmd>& cmd) {
        self->send(self->state.child, a, std::move(cmd));
      },
      [self](child_atom) { return self->state.child; },
  };
}

}  // namespace

result<std::shared_ptr<const key_snapshot>> load_key_snapshot(
    const storage::key_store& store, const storage::fernet_keyring& keyring) {
  auto snap = std::make_shared<key_snapshot>();
  auto rc = store.for_each_api_key([&](const storage::sha256_digest& h, std::string_view uid) {
    snap->user_by_hash.emplace(hash_key(h), std::string(uid));
  });
  if (!rc) {
    return std::move(rc).error();
  }
  for (const auto& [hash, uid] : snap->user_by_hash) {
    if (snap->users.contains(uid)) {
      continue;
    }
    auto rec = store.find_user(uid);
    if (!rec) {
      return std::move(rec).error();
    }
    auto user = std::make_shared<user_entry>();
    user->id = uid;
    if (*rec) {
      user->email = (*rec)->email;
      user->created = (*rec)->created;
    }
    snap->users.emplace(uid, std::move(user));
  }
  std::size_t stored = 0;
  std::size_t decrypted = 0;
  std::unordered_map<std::string, std::vector<user_key>> keys;
  rc = store.for_each_provider_key(
      [&](std::string_view uid, const storage::provider_key_record& rec) {
        ++stored;
        auto plain = keyring.decrypt(rec.token);
        if (!plain) {
          return;
        }
        ++decrypted;
        keys[std::string(uid)].push_back(user_key{rec.provider, *plain, rec.hint, rec.created});
      });
  if (!rc) {
    return std::move(rc).error();
  }
  if (stored > 0 && decrypted == 0) {
    return error{errc::crypto, "the master key decrypts none of the " + std::to_string(stored)
                                   + " stored provider keys: refusing to start (set "
                                     "IB_MASTER_KEY to the key they were written with)"};
  }
  if (decrypted < stored) {
    log_line("warning: " + std::to_string(stored - decrypted)
             + " stored provider keys do not decrypt with the master keys; they are ignored");
  }
  for (auto& [uid, list] : keys) {
    auto it = snap->users.find(uid);
    if (it == snap->users.end()) {
      continue;
    }
    auto user = std::make_shared<user_entry>(*it->second);
    user->keys = std::move(list);
    it->second = std::move(user);
  }
  return std::shared_ptr<const key_snapshot>(std::move(snap));
}

caf::actor spawn_key_actor(caf::actor_system& sys, std::shared_ptr<storage::key_store> store,
                           std::shared_ptr<const storage::fernet_keyring> keyring,
                           std::shared_ptr<key_directory> dir) {
  return sys.spawn(key_supervisor, std::move(store), std::move(keyring), std::move(dir));
}

}  // namespace ib::actors
