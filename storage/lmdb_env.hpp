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

/// An `errc::storage` error for return code `rc` of the operation `what` (the LMDB text of the
/// code only: never a key or a value).
error make_error(int rc, std::string_view what);

inline MDB_val to_val(std::string_view s) noexcept {
  return MDB_val{s.size(), const_cast<char*>(s.data())};  // LMDB copies; it never writes here
}

inline std::string_view to_view(const MDB_val& v) noexcept {
  return {static_cast<const char*>(v.mv_data), v.mv_size};
}

/// An open `MDB_env`; closed on destruction.
class env {
 public:
  /// Creates the handle, applies `max_dbs` and `map_size`, opens `dir` with `flags` and file
  /// mode 0600, and clears stale reader slots left by dead processes.
  static result<env> open(const std::string& dir, std::size_t map_size, unsigned max_dbs,
                          unsigned flags);

  env(env&& other) noexcept : p_(std::exchange(other.p_, nullptr)) {}
  env& operator=(env&& other) noexcept;
  env(const env&) = delete;
  env& operator=(const env&) = delete;
  ~env();

  MDB_env* get() const noexcept { return p_; }

 private:
  explicit env(MDB_env* p) noexcept : p_(p) {}
  MDB_env* p_ = nullptr;
};

/// A transaction; aborted on destruction unless committed. Its cursors must be destroyed
/// before it commits or aborts (LMDB frees write-transaction cursors itself).
class txn {
 public:
  static result<txn> begin(MDB_env* e, bool write);

  txn(txn&& other) noexcept : p_(std::exchange(other.p_, nullptr)) {}
  txn& operator=(txn&& other) noexcept;
  txn(const txn&) = delete;
  txn& operator=(const txn&) = delete;
  ~txn() { abort(); }

  /// Commits (and, with the environment's default flags, syncs to disk).
  result<void> commit();
  void abort() noexcept;
  MDB_txn* get() const noexcept { return p_; }

  /// Opens (creating) the named database; only in a write transaction at start-up.
  result<MDB_dbi> open_dbi(const char* name, unsigned flags);
  /// The value stored under `key`, viewing the map: valid until the transaction ends.
  result<std::optional<std::string_view>> get(MDB_dbi dbi, std::string_view key) const;
  /// Stores `value`; false (and nothing written) when `flags` holds MDB_NOOVERWRITE and the key
  /// exists.
  result<bool> put(MDB_dbi dbi, std::string_view key, std::string_view value, unsigned flags = 0);
  /// Deletes `key`; false when it did not exist.
  result<bool> del(MDB_dbi dbi, std::string_view key);

 private:
  explicit txn(MDB_txn* p) noexcept : p_(p) {}
  MDB_txn* p_ = nullptr;
};

/// A cursor over one database inside one transaction.
class cursor {
 public:
  using entry = std::pair<std::string_view, std::string_view>;

  static result<cursor> open(const txn& t, MDB_dbi dbi);

  cursor(cursor&& other) noexcept : p_(std::exchange(other.p_, nullptr)) {}
  cursor& operator=(cursor&& other) noexcept;
  cursor(const cursor&) = delete;
  cursor& operator=(const cursor&) = delete;
  ~cursor();

  /// Moves the cursor with `op` (`key` is used by MDB_SET_RANGE and MDB_SET_KEY); nullopt
  /// when there is no such entry.
  result<std::optional<entry>> get(MDB_cursor_op op, std::string_view key = {});

 private:
  explicit cursor(MDB_cursor* p) noexcept : p_(p) {}
  MDB_cursor* p_ = nullptr;
};

}  // namespace ib::storage::lmdb
