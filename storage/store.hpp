#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/request_record.hpp"
#include "core/result.hpp"
#include "storage/secrets.hpp"

namespace ib::storage {

/// A user of the gateway (the `users` table of design §6).
struct user_record {
  std::string id;            ///< `usr_` + 24 base62 characters
  std::string email;         ///< as given at sign-up (the index holds it lower-cased)
  std::int64_t created = 0;  ///< unix seconds
};

/// One user's key for one provider, as stored (the `provider_keys` table of design §6).
struct provider_key_record {
  std::string provider;      ///< the provider's name in the config
  std::string token;         ///< the Fernet token; the plain key is never stored
  std::string hint;          ///< `key_hint` of the plain key, shown by `GET /v1/keys`
  std::int64_t created = 0;  ///< unix seconds
};

/// Everything the store holds about one user that the key snapshot needs: the user, the hashes
/// of its gateway keys, its provider keys (ordered by provider name). What a node reloads when
/// another node tells it that the user changed (design §10).
struct user_state {
  user_record user;
  std::vector<sha256_digest> api_key_hashes;
  std::vector<provider_key_record> keys;
};

/// One page of `store::list_requests`.
struct request_page {
  std::vector<std::string> records_json;  ///< each as `to_json(request_record)`, newest first
  bool has_more = false;                  ///< older records exist past this page
};

/// The durable state of design §6 — users, e-mails, gateway key hashes, provider key tokens and
/// the request log — behind one interface with two implementations: `key_store` (LMDB in the
/// data dir, single node, the default; storage/key_store.hpp) and `pg_store` (PostgreSQL, shared
/// by several nodes; storage/pg_store.hpp). Provider keys are stored as Fernet tokens only and
/// gateway keys as SHA-256 only, in both.
///
/// Every call is blocking I/O on the calling thread (the key actor, the request-log writer and
/// start-up make them; never an I/O thread) and is thread-safe. A write returns only after its
/// transaction committed durably. Callbacks run synchronously on the calling thread; the views
/// they get are valid only during the callback.
///
/// Errors common to every call: errc::storage when the store fails (LMDB, disk, a SQL error, a
/// corrupt record); errc::unavailable when a shared store cannot be reached within its time
/// bound (PostgreSQL down or failing over) — then a write did not take effect.
class store {
 public:
  virtual ~store() = default;

  /// `lmdb` or `postgres` (the `kind` label of `inferbridge_store_up`, the config's word).
  virtual std::string_view kind() const noexcept = 0;

  // -- users and gateway keys -----------------------------------------------------------------

  /// Creates a user with a fresh id; `email` is stored as given and indexed lower-cased (ASCII).
  /// The check and the inserts are one transaction. `api_key_hash` is SHA-256 of the gateway
  /// key; `now_unix` (seconds) becomes `created`. errc::conflict when the email is taken
  /// (compared ASCII case-insensitively); errc::invalid_request when it is empty, over 320 bytes
  /// or holds a NUL; errc::internal when no unused id turned up in 3 tries or the key hash is
  /// already registered. Nothing is written on any error.
  virtual result<user_record> create_user(std::string_view email, const sha256_digest& api_key_hash,
                                          std::int64_t now_unix) = 0;
  /// The user with this id; nullopt when there is none (or the id is malformed).
  virtual result<std::optional<user_record>> find_user(std::string_view user_id) const = 0;
  /// The id of the user owning the gateway key with this hash; nullopt when none does.
  virtual result<std::optional<std::string>> user_for_key_hash(const sha256_digest& hash) const = 0;
  /// The user, its gateway key hashes and its provider keys, read in one transaction; nullopt
  /// when there is no such user.
  virtual result<std::optional<user_state>> load_user(std::string_view user_id) const = 0;

  // -- provider keys ----------------------------------------------------------------------------

  /// Stores (or replaces) `user_id`'s key for `rec.provider` as given (`rec.token` already
  /// encrypted). Returns true when it replaced one. errc::invalid_request when `user_id` or
  /// `rec.provider` is empty, over 200 bytes or holds a NUL; errc::not_found when the user does
  /// not exist.
  virtual result<bool> put_provider_key(std::string_view user_id,
                                        const provider_key_record& rec) = 0;
  /// `user_id`'s provider keys, ordered by provider name (bytewise); empty for an unknown or
  /// malformed user id.
  virtual result<std::vector<provider_key_record>> list_provider_keys(
      std::string_view user_id) const = 0;
  /// Deletes `user_id`'s key for `provider`. Returns false when there was no such key (or an
  /// argument is malformed).
  virtual result<bool> delete_provider_key(std::string_view user_id, std::string_view provider) = 0;

  /// Visits every gateway key hash with its user id, in one read transaction (for building the
  /// auth snapshot). errc::storage when a stored hash is not 32 bytes; the keys visited before
  /// then have been passed to `fn`.
  virtual result<void> for_each_api_key(
      const std::function<void(const sha256_digest&, std::string_view user_id)>& fn) const = 0;
  /// Visits every user, ordered by id, in one read transaction.
  virtual result<void> for_each_user(const std::function<void(const user_record&)>& fn) const = 0;
  /// Visits every stored provider key with its user id, ordered by user id then provider, in one
  /// read transaction (the walk stops at a corrupt record, with errc::storage).
  virtual result<void> for_each_provider_key(
      const std::function<void(std::string_view user_id, const provider_key_record&)>& fn)
      const = 0;
  /// Replaces the token of every provider key in one write transaction (master key rotation,
  /// design §6) and returns how many were rewritten. `fn` returns the new token, or an error that
  /// aborts the whole rotation (returned as it is; nothing is written). `fn` runs inside the
  /// store's write transaction: it must not call the store.
  virtual result<std::size_t> rewrite_provider_tokens(
      const std::function<result<std::string>(const provider_key_record&)>& fn) = 0;

  // -- request log ------------------------------------------------------------------------------

  /// Appends records (metadata only, listed as `to_json(request_record)`, keyed by user,
  /// `created_us` and id) in one transaction, then enforces retention in the same transaction:
  /// `max_records_per_user` for each user touched (oldest dropped first), and records created
  /// before `now_unix - max_age_s` (both in seconds) for every user; a limit <= 0 is off.
  /// errc::invalid_request (and nothing written) when a record's user id or id is empty, over
  /// 200 bytes, or holds a NUL.
  virtual result<void> append_requests(const std::vector<request_record>& records,
                                       int max_records_per_user, std::int64_t max_age_s,
                                       std::int64_t now_unix) = 0;

  /// `user_id`'s records, newest first (by `created_us`, then id), at most `limit`; with
  /// `before` (a request id), only records older than that one. errc::invalid_request (param
  /// `before`) when `before` names no record of this user; an unknown `user_id` gives an empty
  /// page.
  virtual result<request_page> list_requests(std::string_view user_id, std::size_t limit,
                                             std::string_view before) const = 0;
};

}  // namespace ib::storage
