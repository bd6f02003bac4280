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
                        std::shared_ptr<key_directory> dir) {
  self->state.store = std::move(store);
  self->state.keyring = std::move(keyring);
  self->state.dir = std::move(dir);
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
  return sys.spawn<caf::detached>(key_actor, std::move(store), std::move(keyring), std::move(dir));
}

}  // namespace ib::actors
