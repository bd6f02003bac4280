#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/breaker.hpp"
#include "core/cluster_event.hpp"
#include "storage/pg.hpp"
#include "storage/store.hpp"

namespace ib::storage {

/// How to reach PostgreSQL, and who we are.
struct pg_options {
  std::string url;   ///< libpq connection URI (`postgresql://user:pw@host:port/db?sslmode=…`)
  std::string node;  ///< this node's id: names its notifications, holds its probe leases
  /// Bound of one call (connecting included), ms: past it the call fails with errc::unavailable.
  std::chrono::milliseconds timeout{3000};
  std::size_t max_idle_connections = 4;  ///< connections kept open between calls
  /// Commits wait for the WAL flush (PostgreSQL's `synchronous_commit`). Off only for a store
  /// that carries nothing but shared health (breakers, leases, cooldown notifications): losing
  /// its last commits in a database crash is harmless, and its notifications then go out without
  /// waiting for the disk.
  bool durable_commits = true;
  bool migrate = true;  ///< `open` brings the schema up to date (else it must already be)
};

/// The schema version this binary writes; a database at a higher version is refused.
inline constexpr int pg_schema_version = 1;

/// One row of the `breakers` table: a provider's breaker as the cluster last published it.
struct shared_breaker {
  std::string provider;
  breaker_state state = breaker_state::closed;  ///< `open` or `closed`
  std::int64_t retry_at_ms = 0;                 ///< open: wall-clock Unix ms of the next probe
  std::int64_t next_cooldown_ms = 0;            ///< the open period of the next re-trip
  std::int64_t probe_until_ms = 0;              ///< the probe lease's end (0: none)
  std::string probe_holder;                     ///< the node holding the lease; empty: none
  std::string updated_by;                       ///< the node that wrote the row last
};

/// The outcome of asking for the half-open probe lease.
struct lease_answer {
  bool won = false;
  std::optional<shared_breaker> row;  ///< when lost: the row as it is now (nullopt: no row)
};

/// The durable state of design §6 in PostgreSQL (design §10): the `store` interface for users,
/// keys and the request log, plus what several nodes share — key-change notifications, the
/// breakers table with its probe lease, 429 cooldown notifications. Thread-safe: each call takes
/// a connection from a small pool (opening one if none is idle) and returns it after; each call
/// is bounded by `pg_options::timeout`. Every write runs in one transaction and returns after it
/// committed; a write to users or keys also sends `k NODE USER` on the channel `inferbridge`
/// (cluster_event.hpp) in the same transaction, so other nodes hear of it only once it is
/// committed. When the commit's answer is lost (the connection broke while committing), the
/// transaction's fate is looked up by its id on a new connection within the same bound, so a
/// write is reported as failed only when it did not commit (if even that lookup is impossible,
/// errc::unavailable is returned and the ambiguity logged).
///
/// `open` connects and brings the schema to `pg_schema_version` with versioned migrations, each
/// in the transaction that records it, under a transaction-scoped advisory lock (several nodes
/// starting together apply each migration once). Errors: see `store`; errc::unavailable when the
/// database cannot be reached; errc::storage when the schema is newer than this binary (the
/// message says which versions) or a migration fails.
class pg_store final : public store {
 public:
  static result<std::unique_ptr<pg_store>> open(pg_options opts);
  ~pg_store() override;
  pg_store(const pg_store&) = delete;
  pg_store& operator=(const pg_store&) = delete;

  std::string_view kind() const noexcept override { return "postgres"; }
  const pg_options& options() const noexcept { return opts_; }

  result<user_record> create_user(std::string_view email, const sha256_digest& api_key_hash,
                                  std::int64_t now_unix) override;
  result<std::optional<user_record>> find_user(std::string_view user_id) const override;
  result<std::optional<std::string>> user_for_key_hash(const sha256_digest& hash) const override;
  result<std::optional<user_state>> load_user(std::string_view user_id) const override;
  result<bool> put_provider_key(std::string_view user_id, const provider_key_record& rec) override;
  result<std::vector<provider_key_record>> list_provider_keys(
      std::string_view user_id) const override;
  result<bool> delete_provider_key(std::string_view user_id, std::string_view provider) override;
  result<void> for_each_api_key(
      const std::function<void(const sha256_digest&, std::string_view user_id)>& fn) const override;
  result<void> for_each_user(const std::function<void(const user_record&)>& fn) const override;
  result<void> for_each_provider_key(
      const std::function<void(std::string_view user_id, const provider_key_record&)>& fn)
      const override;
  result<std::size_t> rewrite_provider_tokens(
      const std::function<result<std::string>(const provider_key_record&)>& fn) override;
  result<void> append_requests(const std::vector<request_record>& records, int max_records_per_user,
                               std::int64_t max_age_s, std::int64_t now_unix) override;
  result<request_page> list_requests(std::string_view user_id, std::size_t limit,
                                     std::string_view before) const override;

  // -- copying a single node's store in (inferbridge migrate-store) ----------------------------

  /// Inserts a user (with its id, email and created time) unless one with that id exists;
  /// true when inserted. errc::conflict when another user has the email.
  result<bool> import_user(const user_record& u);
  /// Inserts a gateway key hash for `user_id` unless present; true when inserted.
  result<bool> import_api_key(const sha256_digest& hash, std::string_view user_id);
  /// Inserts a provider key unless the user has one for that provider; true when inserted.
  result<bool> import_provider_key(std::string_view user_id, const provider_key_record& rec);

  // -- shared health (design §10) --------------------------------------------------------------

  /// Publishes that this node's breaker for `provider` opened until `retry_at_ms` (wall-clock
  /// Unix ms), unless the row already says open with a later-than-now retry (another node
  /// tripped first). Returns nullopt when ours was written (and `b … open` notified), else the
  /// row that stands (which the caller adopts).
  result<std::optional<shared_breaker>> publish_open(std::string_view provider,
                                                     std::int64_t retry_at_ms,
                                                     std::int64_t next_cooldown_ms,
                                                     std::int64_t now_ms);
  /// Publishes that this node's probe closed the breaker (`b … closed` notified).
  result<void> publish_closed(std::string_view provider, std::int64_t now_ms);
  /// Asks for the half-open probe lease of the open period ending `retry_at_ms`, for `lease_ms`.
  /// Won when the row is open for that very period, its retry time has come, and no other node
  /// holds an unexpired lease (a missing row is created open and leased to us).
  result<lease_answer> try_probe_lease(std::string_view provider, std::int64_t retry_at_ms,
                                       std::int64_t next_cooldown_ms, std::int64_t lease_ms,
                                       std::int64_t now_ms);
  /// Extends our lease of that period to `until_ms` (the probe is out and may take that long).
  result<void> extend_probe_lease(std::string_view provider, std::int64_t retry_at_ms,
                                  std::int64_t until_ms);
  /// Sends `payload` on the channel `inferbridge` (a 429 cooldown event).
  result<void> notify(std::string_view payload);
  /// Every row of the breakers table (what a node reads after reconnecting).
  result<std::vector<shared_breaker>> read_breakers();

  /// A new connection that LISTENs on `inferbridge` (for the cluster listener's thread; bounded
  /// by the options' timeout).
  result<pg::connection> open_listener();

 private:
  explicit pg_store(pg_options opts) : opts_(std::move(opts)) {}
  struct lease;  // a pooled connection, returned to the pool when it goes out of scope
  result<lease> acquire(pg::clock::time_point deadline) const;
  void release(pg::connection c) const;
  template <class T, class F>
  result<T> with_connection(F&& fn) const;
  template <class T, class F>
  result<T> transact(F&& fn) const;
  result<void> migrate();

  pg_options opts_;
  mutable std::mutex mu_;
  mutable std::vector<pg::connection> idle_;
};

}  // namespace ib::storage
