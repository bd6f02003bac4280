#pragma once

// Internal to storage/: the state behind `key_store`, shared by key_store.cpp (users and keys)
// and request_log.cpp (the request log). Other folders include storage/key_store.hpp only.

#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "storage/key_store.hpp"
#include "storage/lmdb_env.hpp"

namespace ib::storage {

namespace detail {

/// LMDB's default MDB_MAXKEYSIZE, in bytes.
inline constexpr std::size_t max_key_size = 511;
/// Ids, provider names and request ids are short; the bound (bytes) keeps every composite key
/// legal: two parts, a separator and an 8-byte time stay under `max_key_size`.
inline constexpr std::size_t max_part_size = 200;

/// The separator inside composite keys (design §6).
inline constexpr char sep = '\0';

/// A part of a composite key: non-empty, bounded, and free of the NUL separator.
inline bool is_key_part(std::string_view s) noexcept {
  return !s.empty() && s.size() <= max_part_size && s.find(sep) == std::string_view::npos;
}

/// `user_id \0`: the first bytes of every provider_keys and requests key of that user.
inline std::string user_prefix(std::string_view user_id) {
  std::string k{user_id};
  k.push_back(sep);
  return k;
}

}  // namespace detail

/// The request log's databases (request_log.cpp). `created_us` is Unix microseconds (negative
/// stored as 0), big-endian so that keys sort by time.
struct request_log_dbs {
  MDB_dbi requests = 0;          ///< `user_id \0 created_us(8, BE) request_id` -> record JSON
  MDB_dbi requests_by_time = 0;  ///< `created_us(8, BE) user_id \0 request_id` -> empty
  MDB_dbi request_counts = 0;    ///< `user_id \0` -> number of request records (8 bytes, BE)
};

/// The state behind `key_store`: the environment and its database handles, fixed after `open`.
struct key_store::impl {
  std::string dir;            ///< as given to `open`, without trailing slashes
  std::string canonical_dir;  ///< the resolved path: the key of the one-open-per-process guard
  lmdb::env env;
  /// Opened on first use by `other_process`; declared after `env` but closed after it by `~impl`
  /// (closing any descriptor of lock.mdb drops this process's fcntl locks on it).
  mutable std::optional<lmdb::lock_probe> probe;
  mutable std::mutex probe_mutex;  ///< guards `probe`
  MDB_dbi users = 0;               ///< user id -> `{"email","created"}`
  MDB_dbi emails = 0;              ///< lower-cased email -> user id
  MDB_dbi api_keys = 0;            ///< SHA-256 of the gateway key (32 bytes) -> user id
  MDB_dbi provider_keys = 0;       ///< `user_id \0 provider` -> `{"token","hint","created"}`
  request_log_dbs log;

  impl(std::string d, std::string canon, lmdb::env e)
      : dir(std::move(d)), canonical_dir(std::move(canon)), env(std::move(e)) {}

  /// Closes the environment, then releases the directory for another open (key_store.cpp).
  ~impl();

  /// Begins a read transaction (errc::storage on failure).
  result<lmdb::txn> read() const { return lmdb::txn::begin(env.get(), false); }
  /// Begins the write transaction, waiting for any other writer (errc::storage on failure).
  result<lmdb::txn> write() const { return lmdb::txn::begin(env.get(), true); }
};

}  // namespace ib::storage
