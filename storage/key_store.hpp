#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/request_record.hpp"
#include "core/result.hpp"
#include "storage/secrets.hpp"

namespace ib::storage {

struct user_record {
  std::string id;
  std::string email;
  std::int64_t created = 0;  ///< unix seconds
};

struct provider_key_record {
  std::string provider;
  std::string token;  ///< the Fernet token; the plain key is never stored
  std::string hint;
  std::int64_t created = 0;  ///< unix seconds
};

/// The LMDB environment under the data dir, with the named databases of design §6:
/// users, emails, api_keys, provider_keys, requests (plus requests_by_time, an index for
/// retention by age, and request_counts). Thread-safe: every call runs in its own transaction,
/// read transactions are not bound to a thread (MDB_NOTLS), and LMDB runs one write transaction
/// at a time (others wait). Every write transaction is committed and synced before the call
/// returns. Every LMDB failure (MDB_MAP_FULL included) comes back as errc::storage. One key_store
/// per directory per process: a second open of the same directory is refused.
///
/// Users and keys are implemented in key_store.cpp, the request log in request_log.cpp; the
/// master keys live beside the store, not in it (storage/master_key.hpp).
class key_store {
 public:
  /// Opens (creating if needed) the environment in `dir` (created with mode 0700 if missing),
  /// clears stale readers, opens every database.
  static result<std::unique_ptr<key_store>> open(const std::string& dir,
                                                 std::size_t map_size = std::size_t{1} << 32);
  ~key_store();
  key_store(const key_store&) = delete;
  key_store& operator=(const key_store&) = delete;

  // -- users and gateway keys -----------------------------------------------------------------

  /// Creates a user with a fresh id; `email` is stored as given and indexed lower-cased (ASCII).
  /// The check and the inserts share one write transaction. errc::conflict when the email is
  /// taken, errc::invalid_request when it is empty, over 320 bytes or holds a NUL.
  /// `api_key_hash` is SHA-256 of the gateway key.
  result<user_record> create_user(std::string_view email, const sha256_digest& api_key_hash,
                                  std::int64_t now_unix);
  /// The user with this id; nullopt when there is none (or the id is malformed).
  result<std::optional<user_record>> find_user(std::string_view user_id) const;
  /// The user owning the gateway key with this hash.
  result<std::optional<std::string>> user_for_key_hash(const sha256_digest& hash) const;

  // -- provider keys ----------------------------------------------------------------------------

  /// Stores (or replaces) `user_id`'s key for `rec.provider`. Returns true when it replaced one;
  /// errc::not_found when the user does not exist.
  result<bool> put_provider_key(std::string_view user_id, const provider_key_record& rec);
  /// `user_id`'s provider keys, ordered by provider name; empty for an unknown user.
  result<std::vector<provider_key_record>> list_provider_keys(std::string_view user_id) const;
  /// Returns false when there was no such key.
  result<bool> delete_provider_key(std::string_view user_id, std::string_view provider);

  /// Visits every gateway key hash (for building the auth snapshot at start).
  result<void> for_each_api_key(
      const std::function<void(const sha256_digest&, std::string_view user_id)>& fn) const;
  /// Visits every stored provider key.
  result<void> for_each_provider_key(
      const std::function<void(std::string_view user_id, const provider_key_record&)>& fn) const;
  /// Replaces the token of every provider key in one transaction (master key rotation).
  /// `fn` returns the new token, or an error that aborts the whole rotation.
  result<std::size_t> rewrite_provider_tokens(
      const std::function<result<std::string>(const provider_key_record&)>& fn);

  // -- request log ------------------------------------------------------------------------------

  /// Appends records (metadata only, stored as `to_json(request_record)`) in one transaction,
  /// then enforces retention (`max_records_per_user` for each user touched, and drops records
  /// older than `now_unix - max_age_s`, both in seconds, for every user; a limit <= 0 is off).
  /// At most 10,000 records are dropped per call; later calls finish the job.
  /// errc::invalid_request (and nothing written) when a record's user id or id is empty, over
  /// 200 bytes, or holds a NUL.
  result<void> append_requests(const std::vector<request_record>& records, int max_records_per_user,
                               std::int64_t max_age_s, std::int64_t now_unix);
  /// `user_id`'s records, newest first, at most `limit`; with `before` (a request id), only
  /// records older than that one. `has_more` tells whether more exist past the page.
  /// errc::invalid_request when `before` names no record of this user; an unknown or malformed
  /// `user_id` gives an empty page.
  struct page {
    std::vector<std::string> records_json;  ///< each as `to_json(request_record)`
    bool has_more = false;
  };
  result<page> list_requests(std::string_view user_id, std::size_t limit,
                             std::string_view before) const;

  /// The directory holding the environment.
  const std::string& dir() const noexcept;

 private:
  struct impl;
  explicit key_store(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace ib::storage
