// The one-shot commands: `inferbridge rotate-master-key` and `inferbridge migrate-store`.
#include "app/commands.hpp"

#include <cstdio>
#include <optional>
#include <string>

#include "app/store_open.hpp"
#include "storage/fernet.hpp"
#include "storage/key_store.hpp"
#include "storage/master_key.hpp"
#include "storage/pg_store.hpp"
#include "storage/secrets.hpp"

namespace ib::app {

int rotate_master_key(const config::config& cfg) {
  auto opened = open_storage(cfg);
  if (!opened) {
    std::fprintf(stderr, "inferbridge: %s\n", opened.error().message.c_str());
    return 2;
  }
  const auto& keyring = *opened->keyring;
  auto n = opened->store->rewrite_provider_tokens(
      [&](const storage::provider_key_record& rec) -> result<std::string> {
        auto plain = keyring.decrypt(rec.token);
        if (!plain) {
          return error{errc::crypto, "a stored provider key (" + rec.provider
                                         + ") does not decrypt with any master key"};
        }
        return keyring.encrypt(*plain);
      });
  if (!n) {
    std::fprintf(stderr, "inferbridge: %s; nothing was changed\n", n.error().message.c_str());
    return 2;
  }
  std::printf("re-encrypted %zu provider keys under the first master key\n", *n);
  return 0;
}

int migrate_store(const config::config& cfg, const std::string& url) {
  auto fail = [](const error& e) {
    std::fprintf(stderr, "inferbridge: %s\n", e.message.c_str());
    return 2;
  };
  auto lmdb = storage::key_store::open(cfg.data_dir);
  if (!lmdb) {
    return fail(lmdb.error());
  }
  auto keys = storage::load_master_keys(cfg.master_keys, cfg.data_dir);
  if (!keys) {
    return fail(keys.error());
  }
  const storage::fernet_keyring keyring{std::move(*keys)};
  // The PostgreSQL nodes will decrypt these tokens with the same master key: refuse to copy what
  // it cannot decrypt (the copy would be useless there).
  std::size_t undecryptable = 0;
  auto checked = (*lmdb)->for_each_provider_key(
      [&](std::string_view, const storage::provider_key_record& rec) {
        if (!keyring.decrypt(rec.token)) {
          ++undecryptable;
        }
      });
  if (!checked) {
    return fail(checked.error());
  }
  if (undecryptable > 0) {
    return fail(error{errc::crypto, std::to_string(undecryptable)
                                        + " stored provider keys do not decrypt with the master "
                                          "key: set IB_MASTER_KEY to the key they were written "
                                          "with; nothing was copied"});
  }
  config::store_config sc = cfg.store;
  sc.url = url;
  auto pg = open_postgres(sc, storage::new_id("node_"));
  if (!pg) {
    return fail(pg.error());
  }
  std::size_t users = 0;
  std::size_t api_keys = 0;
  std::size_t provider_keys = 0;
  std::optional<error> err;
  auto note = [&](const result<bool>& r, std::size_t& count) {
    if (!r) {
      if (!err) {
        err = r.error();
      }
    } else if (*r) {
      ++count;
    }
  };
  // Users first (keys refer to them), then gateway key hashes, then provider key tokens; each
  // insert skips what is already there, so a second run copies nothing.
  auto rc = (*lmdb)->for_each_user(
      [&](const storage::user_record& u) { note((*pg)->import_user(u), users); });
  if (rc) {
    rc = (*lmdb)->for_each_api_key([&](const storage::sha256_digest& h, std::string_view uid) {
      note((*pg)->import_api_key(h, uid), api_keys);
    });
  }
  if (rc) {
    rc = (*lmdb)->for_each_provider_key(
        [&](std::string_view uid, const storage::provider_key_record& rec) {
          note((*pg)->import_provider_key(uid, rec), provider_keys);
        });
  }
  if (!rc) {
    return fail(rc.error());
  }
  if (err) {
    std::fprintf(stderr,
                 "inferbridge: copied %zu users, %zu api keys, %zu provider keys before: %s\n",
                 users, api_keys, provider_keys, err->message.c_str());
    return 2;
  }
  std::printf("copied %zu users, %zu api keys, %zu provider keys\n", users, api_keys,
              provider_keys);
  return 0;
}

}  // namespace ib::app
