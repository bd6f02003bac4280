// The one-shot commands: `inferbridge rotate-master-key`, `compact` and `migrate-store`.
#include "app/commands.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <fcntl.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/store_open.hpp"
#include "storage/data_dir.hpp"
#include "storage/fernet.hpp"
#include "storage/key_store.hpp"
#include "storage/master_key.hpp"
#include "storage/pg_store.hpp"
#include "storage/secrets.hpp"

namespace ib::app {

namespace {

int fail(const error& e) {
  std::fprintf(stderr, "inferbridge: %s\n", e.message.c_str());
  return 2;
}

std::string errno_text(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

/// Makes a new, renamed or removed entry of `dir` durable.
result<void> fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return error{errc::storage, errno_text(dir)};
  }
  const int rc = ::fsync(fd);
  const std::string why = rc != 0 ? errno_text(dir + ": fsync") : std::string{};
  ::close(fd);
  if (rc != 0) {
    return error{errc::storage, why};
  }
  return {};
}

bool same_key(const storage::fernet_key& a, const storage::fernet_key& b) {
  return a.signing == b.signing && a.encryption == b.encryption;
}

/// Reads one Fernet key from `path` (our own private regular file), or nullopt when there is
/// none.
result<std::optional<storage::fernet_key>> read_key_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) {
      return std::optional<storage::fernet_key>{};
    }
    return error{errc::storage, errno_text(path)};
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077) != 0) {
    ::close(fd);
    return error{errc::storage, path + ": must be a regular file readable by its owner only"};
  }
  std::string text(1025, '\0');
  const ssize_t n = ::read(fd, text.data(), text.size());
  ::close(fd);
  auto key = n > 0 && n < 1025
                 ? storage::parse_fernet_key(std::string_view{text}.substr(0, std::size_t(n)))
                 : result<storage::fernet_key>{errc::invalid_request};
  OPENSSL_cleanse(text.data(), text.size());
  if (!key) {
    return error{errc::invalid_request, path + ": not a valid Fernet key"};
  }
  return std::optional<storage::fernet_key>{*key};
}

/// Writes `key` to `path` whole or not at all: a private temporary file, fsync, rename, fsync
/// of the directory.
result<void> write_key_file(const std::string& dir, const std::string& path,
                            const storage::fernet_key& key) {
  const std::string tmp = path + ".tmp";
  const int fd =
      ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, S_IRUSR | S_IWUSR);
  if (fd < 0) {
    return error{errc::storage, errno_text(tmp)};
  }
  std::string line = storage::encode_fernet_key(key);
  line.push_back('\n');
  const bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size())
                  && ::fsync(fd) == 0;
  OPENSSL_cleanse(line.data(), line.size());
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return error{errc::storage, errno_text(path)};
  }
  return fsync_dir(dir);
}

/// Overwrites the whole content of the open file `fd` with zeros and syncs it: the bytes of a
/// retired key do not outlive its directory entry in the file's blocks (on a file system that
/// writes in place; copy-on-write ones and SSDs give no such promise).
void scrub(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_size <= 0) {
    return;
  }
  const std::string zeros(static_cast<std::size_t>(st.st_size), '\0');
  if (::pwrite(fd, zeros.data(), zeros.size(), 0) == static_cast<ssize_t>(zeros.size())) {
    ::fsync(fd);
  }
}

/// Blocks until stdin is closed (the rotation test hook: the test kills us meanwhile).
void hold_until_stdin_closes() {
  char c = 0;
  for (;;) {
    const ssize_t n = ::read(STDIN_FILENO, &c, 1);
    if (n > 0 || (n < 0 && errno == EINTR)) {
      continue;
    }
    return;
  }
}

int rotate_postgres(const config::config& cfg) {
  auto opened = open_storage(cfg);
  if (!opened) {
    return fail(opened.error());
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

}  // namespace

int rotate_master_key(const config::config& cfg, const rotate_options& opt) {
  if (cfg.store.kind == config::store_kind::postgres) {
    return rotate_postgres(cfg);
  }
  const std::string dir = storage::strip_trailing_slashes(cfg.data_dir);
  const std::string key_path = dir + "/master.key";
  const std::string new_key_path = dir + "/master.key.new";
  const bool from_env = !cfg.master_keys.empty();

  // -- the keys: the new one first, then every one that may still decrypt a token --------------
  std::vector<storage::fernet_key> keys;
  std::optional<storage::fernet_key> file_key;
  if (auto k = read_key_file(key_path); !k) {
    return fail(k.error());
  } else {
    file_key = *k;
  }
  if (from_env) {
    auto loaded = storage::load_master_keys(cfg.master_keys, dir);
    if (!loaded) {
      return fail(loaded.error());
    }
    keys = std::move(*loaded);
    if (file_key && !same_key(*file_key, keys.front())) {
      keys.push_back(*file_key);  // tokens written before IB_MASTER_KEY was set decrypt too
    }
  } else {
    if (!file_key) {
      return fail(
          error{errc::invalid_request, "nothing to rotate: no IB_MASTER_KEY and no " + key_path});
    }
    auto pending = read_key_file(new_key_path);
    if (!pending) {
      return fail(pending.error());
    }
    if (*pending) {
      std::printf("rotate-master-key: resuming with the new key in %s\n", new_key_path.c_str());
      keys.push_back(**pending);
    } else {
      const storage::fernet_key fresh = storage::generate_fernet_key();
      if (auto w = write_key_file(dir, new_key_path, fresh); !w) {
        return fail(w.error());
      }
      std::printf("rotate-master-key: new key written to %s\n", new_key_path.c_str());
      keys.push_back(fresh);
    }
    keys.push_back(*file_key);
  }
  const storage::fernet_keyring keyring{keys};

  // -- re-encrypt in bounded batches, each committed on its own ---------------------------------
  std::size_t total = 0;
  std::size_t rewritten = 0;
  std::size_t current = 0;
  {
    auto opened = storage::key_store::open(dir, cfg.store.lmdb_map_size);
    if (!opened) {
      return fail(opened.error());
    }
    auto& store = **opened;
    auto refuse_if_shared = [&]() -> std::optional<error> {
      auto other = store.other_process();
      if (!other) {
        return other.error();
      }
      if (*other) {
        return error{errc::conflict, "the data dir " + dir + " is in use by process "
                                         + std::to_string(**other)
                                         + " (a running gateway?): stop it first"};
      }
      return std::nullopt;
    };
    if (auto e = refuse_if_shared()) {
      return fail(*e);
    }
    if (auto r = storage::key_store::remove_compact_leftover(dir); !r) {
      return fail(r.error());
    }
    auto count = store.count_provider_keys();
    if (!count) {
      return fail(count.error());
    }
    total = *count;
    std::string after;
    std::size_t visited = 0;
    for (std::size_t batch = 0;; ++batch) {
      if (auto e = refuse_if_shared()) {
        std::fprintf(stderr, "inferbridge: %s; run rotate-master-key again afterwards\n",
                     e->message.c_str());
        return 2;
      }
      std::function<void()> hold;
      if (opt.hold_after_batches && batch == *opt.hold_after_batches) {
        hold = [batch] {
          std::printf("rotate-master-key: holding batch %zu before its commit\n", batch + 1);
          std::fflush(stdout);
          hold_until_stdin_closes();
        };
      }
      auto step = store.rewrite_provider_tokens_batch(
          after, opt.batch_size,
          [&](const storage::provider_key_record& rec) -> result<std::optional<std::string>> {
            auto index = keyring.key_index(rec.token);
            if (!index) {
              return error{errc::crypto, "a stored provider key (" + rec.provider
                                             + ") does not decrypt with any master key"};
            }
            if (*index == 0) {
              ++current;
              return std::optional<std::string>{};
            }
            auto plain = keyring.decrypt(rec.token);
            if (!plain) {
              return plain.error();
            }
            std::string token = keyring.encrypt(*plain);
            OPENSSL_cleanse(plain->data(), plain->size());
            return std::optional<std::string>{std::move(token)};
          },
          hold);
      if (!step) {
        std::fprintf(stderr,
                     "inferbridge: %s; the batches committed before stay done: run "
                     "rotate-master-key again with the same keys\n",
                     step.error().message.c_str());
        return 2;
      }
      visited += step->scanned;
      rewritten += step->rewritten;
      std::printf(
          "rotate-master-key: %zu of %zu provider keys done (batch %zu: %zu re-encrypted)\n",
          visited, total, batch + 1, step->rewritten);
      std::fflush(stdout);
      if (!step->resume_after) {
        break;
      }
      after = std::move(*step->resume_after);
    }
  }  // the store is closed here: compaction reopens it alone

  // -- compaction: no freed page keeps a token of a retired key ---------------------------------
  auto compacted = storage::key_store::compact(dir, cfg.store.lmdb_map_size);
  if (!compacted) {
    std::fprintf(stderr,
                 "inferbridge: %s; every key is re-encrypted, but data.mdb still holds old "
                 "tokens in freed pages: run rotate-master-key (or compact) again\n",
                 compacted.error().message.c_str());
    return 2;
  }
  std::printf("rotate-master-key: compacted %s/data.mdb: %llu -> %llu bytes\n", dir.c_str(),
              static_cast<unsigned long long>(compacted->bytes_before),
              static_cast<unsigned long long>(compacted->bytes_after));

  // -- retire the old key material in the data dir -----------------------------------------------
  if (!from_env || (file_key && !same_key(*file_key, keys.front()))) {
    const int old_fd = ::open(key_path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    int rc = 0;
    if (from_env) {
      rc = ::unlink(key_path.c_str());  // IB_MASTER_KEY's first key replaces it
    } else {
      rc = ::rename(new_key_path.c_str(), key_path.c_str());
    }
    if (rc != 0) {
      const std::string why = errno_text(key_path);
      if (old_fd >= 0) {
        ::close(old_fd);
      }
      return fail(error{errc::storage, why + "; run rotate-master-key again"});
    }
    if (auto r = fsync_dir(dir); !r) {
      if (old_fd >= 0) {
        ::close(old_fd);
      }
      return fail(r.error());
    }
    if (old_fd >= 0) {
      scrub(old_fd);  // the old inode, now without a name
      ::close(old_fd);
    }
    std::printf(from_env ? "rotate-master-key: removed %s (it held a retired key)\n"
                         : "rotate-master-key: %s now holds the new key; the old one is gone\n",
                key_path.c_str());
  }
  std::printf("re-encrypted %zu provider keys under the %s master key (%zu already were)\n",
              rewritten, from_env ? "first" : "new", current);
  return 0;
}

int compact_store(const config::config& cfg) {
  if (cfg.store.kind == config::store_kind::postgres) {
    return fail(error{errc::invalid_request,
                      "compact applies to the LMDB store only (PostgreSQL: VACUUM FULL)"});
  }
  const std::string dir = storage::strip_trailing_slashes(cfg.data_dir);
  if (auto r = storage::key_store::remove_compact_leftover(dir); !r) {
    return fail(r.error());
  }
  auto done = storage::key_store::compact(dir, cfg.store.lmdb_map_size);
  if (!done) {
    return fail(done.error());
  }
  std::printf("compacted %s/data.mdb: %llu -> %llu bytes\n", dir.c_str(),
              static_cast<unsigned long long>(done->bytes_before),
              static_cast<unsigned long long>(done->bytes_after));
  return 0;
}

int migrate_store(const config::config& cfg, const std::string& url) {
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
