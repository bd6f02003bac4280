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
#include "storage/store.hpp"

namespace ib::storage {

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
///
/// Every call is blocking disk I/O on the calling thread (the key and metrics actors make them,
/// and start-up). Callbacks run synchronously on the calling thread, inside the call's
/// transaction; the views they get are valid only during the callback.
class key_store final : public store {
 public:
  /// One page of `list_requests` (the store's `request_page`).
  using page = request_page;

  /// Opens (creating if needed) the environment in `dir` (created with mode 0700 if missing,
  /// `ensure_private_dir`), clears stale readers, opens every database. `map_size` is the most
  /// the data file may grow to, in bytes (default 4 GiB). errc::invalid_request for an empty
  /// `dir`; errc::storage when the directory cannot be made or resolved, when it is already open
  /// in this process (under any spelling: the canonical path is compared), or when LMDB fails.
  static result<std::unique_ptr<key_store>> open(const std::string& dir,
                                                 std::size_t map_size = std::size_t{1} << 32);
  ~key_store();
  key_store(const key_store&) = delete;
  key_store& operator=(const key_store&) = delete;

  std::string_view kind() const noexcept override { return "lmdb"; }

  // -- users and gateway keys -----------------------------------------------------------------

  /// Creates a user with a fresh id; `email` is stored as given and indexed lower-cased (ASCII).
  /// The check and the inserts share one write transaction. `api_key_hash` is SHA-256 of the
  /// gateway key; `now_unix` (seconds) becomes `created`. errc::conflict when the email is taken
  /// (compared ASCII case-insensitively); errc::invalid_request when it is empty, over 320 bytes
  /// or holds a NUL; errc::internal when no unused id turned up in 3 tries or the key hash is
  /// already registered; errc::storage when LMDB fails. Nothing is written on any error.
  result<user_record> create_user(std::string_view email, const sha256_digest& api_key_hash,
                                  std::int64_t now_unix) override;
  /// The user with this id; nullopt when there is none (or the id is malformed). errc::storage
  /// when LMDB fails or the stored record is corrupt.
  result<std::optional<user_record>> find_user(std::string_view user_id) const override;
  /// The id of the user owning the gateway key with this hash; nullopt when none does.
  /// errc::storage when LMDB fails.
  result<std::optional<std::string>> user_for_key_hash(const sha256_digest& hash) const override;

  /// The user, its gateway key hashes (found by a scan of `api_keys`: a single node never needs
  /// this; tests and tools do) and its provider keys, read one after the other (not one
  /// transaction: LMDB has a single writer, the key actor, which is the caller).
  result<std::optional<user_state>> load_user(std::string_view user_id) const override;

  // -- provider keys ----------------------------------------------------------------------------

  /// Stores (or replaces) `user_id`'s key for `rec.provider` as given (`rec.token` already
  /// encrypted). Returns true when it replaced one. errc::invalid_request when `user_id` or
  /// `rec.provider` is empty, over 200 bytes or holds a NUL; errc::not_found when the user does
  /// not exist; errc::storage when LMDB fails.
  result<bool> put_provider_key(std::string_view user_id, const provider_key_record& rec) override;
  /// `user_id`'s provider keys, ordered by provider name (bytewise); empty for an unknown or
  /// malformed user id. errc::storage when LMDB fails or a stored record is corrupt.
  result<std::vector<provider_key_record>> list_provider_keys(
      std::string_view user_id) const override;
  /// Deletes `user_id`'s key for `provider`. Returns false when there was no such key (or an
  /// argument is malformed). errc::storage when LMDB fails.
  result<bool> delete_provider_key(std::string_view user_id, std::string_view provider) override;

  /// Visits every gateway key hash with its user id, in hash order, in one read transaction
  /// (for building the auth snapshot at start). errc::storage when LMDB fails or a stored hash
  /// is not 32 bytes; the keys visited before then have been passed to `fn`.
  result<void> for_each_api_key(
      const std::function<void(const sha256_digest&, std::string_view user_id)>& fn) const override;
  /// Visits every user, ordered by id (bytewise), in one read transaction. errc::storage when
  /// LMDB fails or a record is corrupt (the walk stops there).
  result<void> for_each_user(const std::function<void(const user_record&)>& fn) const override;
  /// Visits every stored provider key with its user id, ordered by user id then provider, in one
  /// read transaction. errc::storage when LMDB fails or a record is corrupt (the walk stops
  /// there).
  result<void> for_each_provider_key(
      const std::function<void(std::string_view user_id, const provider_key_record&)>& fn)
      const override;
  /// Replaces the token of every provider key in one write transaction (master key rotation,
  /// design §6) and returns how many were rewritten. `fn` returns the new token, or an error that
  /// aborts the whole rotation (returned as it is; nothing is written). `fn` runs inside the
  /// store's write transaction: it must not call the store's writers (it would wait for itself).
  /// errc::storage when LMDB fails or a record is corrupt.
  result<std::size_t> rewrite_provider_tokens(
      const std::function<result<std::string>(const provider_key_record&)>& fn) override;

  // -- request log ------------------------------------------------------------------------------

  /// Appends records (metadata only, stored as `to_stored(request_record)` and keyed by user,
  /// `created_us` and id, design §6) in one transaction, then enforces retention in the same
  /// transaction: `max_records_per_user` for each user touched (oldest dropped first), and
  /// records created before `now_unix - max_age_s` (both in seconds) for every user; a limit
  /// <= 0 is off. At most 10,000 records are dropped per call; later calls finish the job.
  /// errc::invalid_request (and nothing written) when a record's user id or id is empty, over
  /// 200 bytes, or holds a NUL; errc::storage (and nothing written) when LMDB fails.
  result<void> append_requests(const std::vector<request_record>& records, int max_records_per_user,
                               std::int64_t max_age_s, std::int64_t now_unix) override;

  /// `user_id`'s records, newest first, at most `limit`, each as `to_json` shows it (a record
  /// stored as JSON by an earlier version is passed on as it is); with `before` (a request id),
  /// only records older than that one. `has_more` tells whether more exist past the page.
  /// errc::invalid_request (param `before`) when `before` names no record of this user;
  /// errc::storage when LMDB fails or a record cannot be read (`from_stored`); an unknown or
  /// malformed `user_id` gives an empty page.
  result<request_page> list_requests(std::string_view user_id, std::size_t limit,
                                     std::string_view before) const override;

  // -- maintenance (one-shot commands: rotate-master-key, compact) ------------------------------

  /// The outcome of one `rewrite_provider_tokens_batch`.
  struct token_batch {
    std::size_t scanned = 0;    ///< provider keys visited (at most the batch's `max_records`)
    std::size_t rewritten = 0;  ///< of those, the ones whose token `fn` replaced
    /// The storage key to pass as `after` to the next batch; nullopt once the walk has passed
    /// the last provider key.
    std::optional<std::string> resume_after;
  };

  /// One bounded step of master-key rotation: visits at most `max_records` (>= 1) provider keys
  /// ordered by storage key, starting just after `after` (an empty `after`: the first), and
  /// rewrites in ONE committed write transaction those for which `fn` returns a new token
  /// (nullopt: keep this one, e.g. it is already under the new key). A process killed at any
  /// point leaves each token either as it was or fully replaced. `before_commit`, when set, runs
  /// after the writes and before the commit (a test hook). `fn`'s error aborts the batch
  /// (nothing of it is written) and is returned as it is; errc::insufficient_storage when the map
  /// is full; errc::storage when LMDB fails or a record is corrupt.
  result<token_batch> rewrite_provider_tokens_batch(
      std::string_view after, std::size_t max_records,
      const std::function<result<std::optional<std::string>>(const provider_key_record&)>& fn,
      const std::function<void()>& before_commit = {});

  /// The number of stored provider keys. errc::storage when LMDB fails.
  result<std::size_t> count_provider_keys() const;

  /// The process id of another process that has this environment open (a running gateway), or
  /// nullopt when no other process does (see `lmdb::lock_probe`). errc::storage when the lock
  /// cannot be queried.
  result<std::optional<std::int64_t>> other_process() const;

  /// Sizes of `data.mdb` before and after `compact`, in bytes.
  struct compaction {
    std::uint64_t bytes_before = 0;
    std::uint64_t bytes_after = 0;
  };

  /// Rewrites `<dir>/data.mdb` without its free pages (LMDB never overwrites a freed page in
  /// place, so a deleted or replaced value — an old Fernet token — stays readable in the file
  /// until its page is reused): a compacted copy to `data.mdb.compact`, fsync, atomic rename
  /// over `data.mdb`, fsync of the directory. The environment must not be open anywhere: errc::
  /// conflict (naming the pid) when another process has it open, checked before the copy and
  /// again just before the rename (the write lock is held in between, so no write is lost);
  /// errc::storage when it is open in this process or LMDB or the file system fails (then
  /// `data.mdb` is untouched and the temporary file removed). `map_size` as for `open`.
  static result<compaction> compact(const std::string& dir,
                                    std::size_t map_size = std::size_t{1} << 32);

  /// Removes `<dir>/data.mdb.compact`, the temporary file of a compaction that was killed (it
  /// may hold values that have since been deleted or re-encrypted). errc::storage when it exists
  /// and cannot be removed.
  static result<void> remove_compact_leftover(const std::string& dir);

  /// The directory holding the environment, as given to `open` without trailing slashes.
  const std::string& dir() const noexcept;

 private:
  struct impl;
  explicit key_store(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace ib::storage
