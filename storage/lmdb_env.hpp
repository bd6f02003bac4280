#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <lmdb.h>

#include "core/result.hpp"

/// Thin RAII wrappers over the LMDB C API: every `int rc` becomes a `result`. Internal to
/// storage/; nothing outside this folder includes LMDB.
namespace ib::storage::lmdb {

/// An `errc::storage` error for return code `rc` of the operation `what`, with the message
/// `storage: <what> failed: <mdb_strerror(rc)>` (the LMDB text of the code only: never a key or
/// a value).
error make_error(int rc, std::string_view what);

/// `s` as an `MDB_val` for a key or value that LMDB reads (it never writes through it).
inline MDB_val to_val(std::string_view s) noexcept {
  return MDB_val{s.size(), const_cast<char*>(s.data())};  // LMDB copies; it never writes here
}

/// The bytes of `v`: a view into the map, valid only until its transaction ends.
inline std::string_view to_view(const MDB_val& v) noexcept {
  return {static_cast<const char*>(v.mv_data), v.mv_size};
}

/// An open `MDB_env`; closed on destruction. Move-only. The handle is thread-safe as LMDB's is;
/// close it only after every transaction on it has ended.
class env {
 public:
  /// Creates the handle, applies `max_dbs` and `map_size` (bytes: the largest the data file may
  /// grow), opens the existing directory `dir` with `flags` (`MDB_*` env flags) and file mode
  /// 0600, and clears stale reader slots left by dead processes. errc::storage (`make_error`)
  /// when any step fails; the handle is then closed.
  static result<env> open(const std::string& dir, std::size_t map_size, unsigned max_dbs,
                          unsigned flags);

  env(env&& other) noexcept : p_(std::exchange(other.p_, nullptr)) {}
  env& operator=(env&& other) noexcept;
  env(const env&) = delete;
  env& operator=(const env&) = delete;
  ~env();

  /// The raw handle (null after a move).
  MDB_env* get() const noexcept { return p_; }

 private:
  explicit env(MDB_env* p) noexcept : p_(p) {}
  MDB_env* p_ = nullptr;
};

/// A transaction; aborted on destruction unless committed. Move-only. A write transaction is
/// used only by the thread that began it; a read one (the store opens with MDB_NOTLS) by one
/// thread at a time. No data operation after `commit` or `abort`. Its cursors must be destroyed
/// before it commits or aborts (LMDB frees write-transaction cursors itself).
class txn {
 public:
  /// Begins a read-only transaction, or with `write` the environment's one write transaction
  /// (blocking until any other writer, in any thread or process, has finished: a thread that
  /// holds one must not begin another, it would wait for itself). errc::storage when LMDB
  /// refuses (e.g. no free reader slot).
  static result<txn> begin(MDB_env* e, bool write);

  txn(txn&& other) noexcept : p_(std::exchange(other.p_, nullptr)) {}
  txn& operator=(txn&& other) noexcept;
  txn(const txn&) = delete;
  txn& operator=(const txn&) = delete;
  ~txn() { abort(); }

  /// Commits (and, with the environment's default flags, syncs to disk). The transaction is
  /// finished either way. errc::storage when LMDB fails (MDB_MAP_FULL, I/O) or when it was
  /// already finished.
  result<void> commit();
  /// Aborts, discarding any writes; a no-op when already finished.
  void abort() noexcept;
  /// The raw handle (null once finished).
  MDB_txn* get() const noexcept { return p_; }

  /// Opens the named database with `flags` (MDB_CREATE creates it); only in a write transaction
  /// at start-up. errc::storage on failure (e.g. MDB_DBS_FULL past `max_dbs`).
  result<MDB_dbi> open_dbi(const char* name, unsigned flags);
  /// The value stored under `key`, viewing the map: valid until the transaction ends; nullopt
  /// when there is none. errc::storage on any other LMDB failure.
  result<std::optional<std::string_view>> get(MDB_dbi dbi, std::string_view key) const;
  /// Stores `value` (write transactions only); false (and nothing written) when `flags` holds
  /// MDB_NOOVERWRITE and the key exists. errc::storage on failure (MDB_MAP_FULL, a bad key size).
  result<bool> put(MDB_dbi dbi, std::string_view key, std::string_view value, unsigned flags = 0);
  /// Deletes `key` (write transactions only); false when it did not exist. errc::storage on
  /// failure.
  result<bool> del(MDB_dbi dbi, std::string_view key);

 private:
  explicit txn(MDB_txn* p) noexcept : p_(p) {}
  MDB_txn* p_ = nullptr;
};

/// A cursor over one database inside one transaction; closed on destruction. Move-only.
class cursor {
 public:
  /// A key and its value, viewing the map: valid until the transaction ends.
  using entry = std::pair<std::string_view, std::string_view>;

  /// Opens a cursor on `dbi` in `t`, which must outlive it. errc::storage on failure.
  static result<cursor> open(const txn& t, MDB_dbi dbi);

  cursor(cursor&& other) noexcept : p_(std::exchange(other.p_, nullptr)) {}
  cursor& operator=(cursor&& other) noexcept;
  cursor(const cursor&) = delete;
  cursor& operator=(const cursor&) = delete;
  ~cursor();

  /// Moves the cursor with `op` (`key` is used by MDB_SET_RANGE and MDB_SET_KEY) and returns
  /// the entry there; nullopt when there is no such entry. errc::storage on any other failure.
  result<std::optional<entry>> get(MDB_cursor_op op, std::string_view key = {});

 private:
  explicit cursor(MDB_cursor* p) noexcept : p_(p) {}
  MDB_cursor* p_ = nullptr;
};

}  // namespace ib::storage::lmdb
