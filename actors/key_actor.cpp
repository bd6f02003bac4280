#include "actors/key_actor.hpp"

#include <ctime>

#include <caf/all.hpp>

#include "actors/log.hpp"
#include "actors/messages.hpp"
#include "metrics/registry.hpp"
#include "storage/fernet.hpp"
#include "storage/secrets.hpp"
#include "storage/store.hpp"

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
  std::shared_ptr<storage::store> store;
  std::shared_ptr<const storage::fernet_keyring> keyring;
  std::shared_ptr<key_directory> dir;
  std::shared_ptr<metrics::registry> registry;  ///< may be null (tests)
  static inline const char* name = "key_actor";
};

using key_actor_t = key_actor_handle::stateful_pointer<key_state>;

std::shared_ptr<const key_snapshot> current(key_actor_t self) {
  return self->state.dir->snapshot.load(std::memory_order_acquire);
}

void publish(key_actor_t self, std::shared_ptr<const key_snapshot> next) {
  self->state.dir->snapshot.store(std::move(next), std::memory_order_release);
}

/// Counts one write transaction of the store (`op` is one of `metrics::names::store_ops`).
void count_write(key_actor_t self, std::string_view op, bool ok) {
  if (self->state.registry) {
    self->state.registry->observe_store_write(op, ok);
  }
}

result<created_user> create_user(key_actor_t self, const std::string& email) {
  auto& st = self->state;
  auto key = storage::new_gateway_key();
  auto digest = storage::sha256(key);
  auto rec = st.store->create_user(email, digest, std::time(nullptr));
  count_write(self, "create_user", rec.has_value());
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

result<key_info> put_key(key_actor_t self, const std::string& user_id, const std::string& provider,
                         const std::string& api_key) {
  auto& st = self->state;
  storage::provider_key_record rec;
  rec.provider = provider;
  rec.token = st.keyring->encrypt(api_key);
  rec.hint = storage::key_hint(api_key);
  rec.created = std::time(nullptr);
  auto replaced = st.store->put_provider_key(user_id, rec);
  count_write(self, "put_key", replaced.has_value());
  if (!replaced) {
    return std::move(replaced).error();
  }
  auto snap = current(self);
  auto it = snap->users.find(user_id);
  if (it == snap->users.end()) {
    return error{errc::unauthorized, "unknown user"};
  }
  auto user = std::make_shared<user_entry>(*it->second);
  std::erase_if(user->keys, [&](const user_key& k) { return k.provider == provider; });
  user->keys.push_back(user_key{provider, api_key, rec.hint, rec.created});
  publish(self, with_user(*snap, std::move(user), nullptr));
  return key_info{rec.provider, rec.hint, rec.created, *replaced};
}

result<bool> delete_key(key_actor_t self, const std::string& user_id, const std::string& provider) {
  auto& st = self->state;
  auto removed = st.store->delete_provider_key(user_id, provider);
  count_write(self, "delete_key", removed.has_value());
  if (!removed) {
    return std::move(removed).error();
  }
  if (*removed) {
    auto snap = current(self);
    auto it = snap->users.find(user_id);
    if (it != snap->users.end()) {
      auto user = std::make_shared<user_entry>(*it->second);
      std::erase_if(user->keys, [&](const user_key& k) { return k.provider == provider; });
      publish(self, with_user(*snap, std::move(user), nullptr));
    }
  }
  return *removed;
}

/// Reloads one user from the store into the snapshot (another node wrote it, design §10): its
/// gateway key hashes and provider keys replace what the snapshot held; a user the store no
/// longer has is removed. On failure the snapshot is kept (the periodic resync heals it).
void refresh_user(key_actor_t self, const std::string& user_id) {
  auto& st = self->state;
  auto loaded = st.store->load_user(user_id);
  if (!loaded) {
    log(log_level::warn, "key refresh failed; the next resync will retry",
        {{"reason", loaded.error().message}});
    return;
  }
  auto next = std::make_shared<key_snapshot>(*current(self));
  std::erase_if(next->user_by_hash, [&](const auto& kv) { return kv.second == user_id; });
  if (!*loaded) {
    next->users.erase(user_id);
    publish(self, std::move(next));
    return;
  }
  const auto& state = **loaded;
  auto user = std::make_shared<user_entry>();
  user->id = state.user.id;
  user->email = state.user.email;
  user->created = state.user.created;
  for (const auto& rec : state.keys) {
    if (auto plain = st.keyring->decrypt(rec.token)) {
      user->keys.push_back(user_key{rec.provider, *plain, rec.hint, rec.created});
    } else {
      log(log_level::warn, "a stored provider key does not decrypt with the master keys; ignored",
          {{"provider", rec.provider}});
    }
  }
  for (const auto& h : state.api_key_hashes) {
    next->user_by_hash[hash_key(h)] = user->id;
  }
  next->users[user->id] = std::move(user);
  publish(self, std::move(next));
}

/// Rebuilds the snapshot from the store and publishes it; on failure keeps the published one.
void reload_snapshot(key_actor_t self) {
  auto& st = self->state;
  try {
    auto snap = load_key_snapshot(*st.store, *st.keyring);
    if (!snap) {
      log(log_level::error, "key snapshot reload failed; keeping the last published one",
          {{"reason", snap.error().message}});
      return;
    }
    publish(self, std::move(*snap));
  } catch (const std::exception& e) {
    log(log_level::error, "key snapshot reload failed; keeping the last published one",
        {{"reason", std::string_view{e.what()}}});
  }
}

/// Runs `fn` (a write, synchronous: it returns after the LMDB commit) and makes its result the
/// command's answer: the value, or its `ib` error. An exception (the handler boundary) becomes
/// `errc::internal` rather than killing the actor.
template <class T, class F>
caf::result<T> answer(F&& fn) {
  try {
    result<T> r = fn();
    if (!r) {
      if (r.error().code == errc::unavailable) {
        log(log_level::warn, "key write refused: the store is unreachable",
            {{"reason", r.error().message}});
      }
      return make_error(public_store_error(std::move(r).error()));
    }
    return std::move(*r);
  } catch (const std::exception&) {
    return make_error(errc::internal, "the key store failed");
  }
}

key_actor_handle::behavior_type key_actor(key_actor_t self, std::shared_ptr<storage::store> store,
                                          std::shared_ptr<const storage::fernet_keyring> keyring,
                                          std::shared_ptr<key_directory> dir,
                                          std::shared_ptr<metrics::registry> registry,
                                          bool reload) {
  self->state.store = std::move(store);
  self->state.registry = std::move(registry);
  self->state.keyring = std::move(keyring);
  self->state.dir = std::move(dir);
  if (reload) {
    // A predecessor may have died between a durable write and publishing it: the store is the
    // truth, so rebuild the snapshot from it before taking any command.
    reload_snapshot(self);
  }
  return {
      [self](mkuser_atom, const std::string& email) -> caf::result<created_user> {
        return answer<created_user>([&] { return create_user(self, email); });
      },
      [self](putkey_atom, const std::string& user_id, const std::string& provider,
             const std::string& api_key) -> caf::result<key_info> {
        return answer<key_info>([&] { return put_key(self, user_id, provider, api_key); });
      },
      [self](delkey_atom, const std::string& user_id,
             const std::string& provider) -> caf::result<bool> {
        return answer<bool>([&] { return delete_key(self, user_id, provider); });
      },
      [self](refresh_atom, const std::string& user_id) {
        try {
          refresh_user(self, user_id);
        } catch (const std::exception& e) {
          log(log_level::error, "key refresh failed", {{"reason", std::string_view{e.what()}}});
        }
      },
      [self](reload_atom) { reload_snapshot(self); },
  };
}

// -- the key supervisor: the stable handle that callers use ---------------------------------------

// Design: callers (app/api.cpp) hold the supervisor, never the key actor. Writes are rare and off
// the chat path, so one extra hop (a scheduled actor delegating the request) is cheaper than
// publishing a changing handle that every caller would have to reload. The supervisor owns no
// data; it only delegates (the key actor answers the asker directly), notices the key actor's
// death (monitor) and spawns a successor that reloads the snapshot from the store. Commands that
// die with the old key actor (in its mailbox, or delegated before the supervisor saw the death)
// are bounced by CAF to the asker as `sec::request_receiver_down` (0.17.6: the dying actor's
// `scheduled_actor::cleanup` runs a `sync_request_bouncer` over its mailbox, and `enqueue` into a
// closed mailbox bounces a request the same way).

struct key_supervisor_state {
  std::shared_ptr<storage::store> store;
  std::shared_ptr<const storage::fernet_keyring> keyring;
  std::shared_ptr<key_directory> dir;
  std::shared_ptr<metrics::registry> registry;
  key_actor_handle child;
  std::uint64_t restarts = 0;
  static inline const char* name = "key_supervisor";
};

using key_supervisor_t = key_supervisor_handle::stateful_pointer<key_supervisor_state>;

void spawn_child(key_supervisor_t self, bool reload) {
  auto& st = self->state;
  // Detached: LMDB commits fsync, which must not block the scheduler's threads.
  st.child = self->spawn<caf::detached + caf::monitored>(key_actor, st.store, st.keyring, st.dir,
                                                         st.registry, reload);
}

key_supervisor_handle::behavior_type key_supervisor(
    key_supervisor_t self, std::shared_ptr<storage::store> store,
    std::shared_ptr<const storage::fernet_keyring> keyring, std::shared_ptr<key_directory> dir,
    std::shared_ptr<metrics::registry> registry) {
  auto& st = self->state;
  st.store = std::move(store);
  st.keyring = std::move(keyring);
  st.dir = std::move(dir);
  st.registry = std::move(registry);
  spawn_child(self, false);
  self->set_down_handler([self](const caf::down_msg& dm) {
    auto& st = self->state;
    if (dm.source != st.child.address()) {
      return;
    }
    ++st.restarts;
    log(log_level::error, "key actor died; restarting it with the snapshot reloaded from the store",
        {{"reason", caf::to_string(dm.reason)}});
    spawn_child(self, true);
  });
  self->set_exit_handler([self](const caf::exit_msg& em) {
    // The key actor is monitored, not linked: take it down with us (it handles the commands
    // queued before the exit first).
    self->send_exit(self->state.child, em.reason);
    self->quit(em.reason);
  });
  return {
      [self](mkuser_atom a, std::string& email) {
        return self->delegate(self->state.child, a, std::move(email));
      },
      [self](putkey_atom a, std::string& user_id, std::string& provider, std::string& api_key) {
        return self->delegate(self->state.child, a, std::move(user_id), std::move(provider),
                              std::move(api_key));
      },
      [self](delkey_atom a, std::string& user_id, std::string& provider) {
        return self->delegate(self->state.child, a, std::move(user_id), std::move(provider));
      },
      [self](refresh_atom a, std::string& user_id) {
        self->send(self->state.child, a, std::move(user_id));
      },
      [self](reload_atom a) { self->send(self->state.child, a); },
      [self](child_atom) { return self->state.child; },
  };
}

}  // namespace

result<std::shared_ptr<const key_snapshot>> load_key_snapshot(
    const storage::store& store, const storage::fernet_keyring& keyring) {
  auto snap = std::make_shared<key_snapshot>();
  auto rc = store.for_each_api_key([&](const storage::sha256_digest& h, std::string_view uid) {
    snap->user_by_hash.emplace(hash_key(h), std::string(uid));
  });
  if (!rc) {
    return std::move(rc).error();
  }
  // Every user in one read (one query on PostgreSQL), keeping those with a gateway key.
  std::unordered_map<std::string, std::shared_ptr<user_entry>> with_key;
  for (const auto& [hash, uid] : snap->user_by_hash) {
    with_key.emplace(uid, nullptr);
  }
  rc = store.for_each_user([&](const storage::user_record& rec) {
    auto it = with_key.find(rec.id);
    if (it == with_key.end()) {
      return;
    }
    auto user = std::make_shared<user_entry>();
    user->id = rec.id;
    user->email = rec.email;
    user->created = rec.created;
    it->second = std::move(user);
  });
  if (!rc) {
    return std::move(rc).error();
  }
  for (auto& [uid, user] : with_key) {
    if (user == nullptr) {
      // A key whose user record is missing (never written by this gateway): the key still
      // authenticates, as before, with an empty profile.
      user = std::make_shared<user_entry>();
      user->id = uid;
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
    log(log_level::warn, "stored provider keys do not decrypt with the master keys; ignored",
        {{"count", stored - decrypted}});
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

key_supervisor_handle spawn_key_actor(caf::actor_system& sys, std::shared_ptr<storage::store> store,
                                      std::shared_ptr<const storage::fernet_keyring> keyring,
                                      std::shared_ptr<key_directory> dir,
                                      std::shared_ptr<metrics::registry> registry) {
  return sys.spawn(key_supervisor, std::move(store), std::move(keyring), std::move(dir),
                   std::move(registry));
}

}  // namespace ib::actors
