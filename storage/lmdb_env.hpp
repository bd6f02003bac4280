#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
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
/// a value). MDB_MAP_FULL is instead errc::insufficient_storage (507) with `map_full_message` and
/// detail code `insufficient_storage`: the write was refused, reads still work.
error make_error(int rc, std::string_view what);

/// The client-facing text of a write refused because the map is full.
inline constexpr std::string_view map_full_message =
    "The gateway's storage is full, so this change was not saved. Reading keys and chat "
    "completions still work; the operator must raise store.lmdb_map_size_bytes (and may run "
    "`inferbridge compact`).";

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
  /// The number of entries in `dbi` (mdb_stat). errc::storage on failure.
  result<std::size_t> entries(MDB_dbi dbi) const;

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

// -- whole-environment operations --------------------------------------------------------------

/// Asks whether another process has the environment in `dir` open. LMDB holds a shared fcntl
/// lock on the first byte of `lock.mdb` for as long as a process has the environment open, so a
/// test for a conflicting write lock (F_GETLK, which never takes one) finds every live user but
/// this process. The descriptor stays open for the probe's lifetime: POSIX drops all of a
/// process's fcntl locks on a file when it closes *any* descriptor of it, so a probe must be
/// destroyed only after every environment of this process on `dir` has been closed. Move-only.
class lock_probe {
 public:
  /// Opens `<dir>/lock.mdb` for reading; a probe of a directory without one finds no user.
  /// errc::storage when it exists but cannot be opened.
  static result<lock_probe> open(const std::string& dir);

  lock_probe(lock_probe&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  lock_probe& operator=(lock_probe&& other) noexcept;
  lock_probe(const lock_probe&) = delete;
  lock_probe& operator=(const lock_probe&) = delete;
  ~lock_probe();

  /// The process id of another process holding the environment open, or nullopt when none
  /// does. errc::storage when the lock cannot be queried.
  result<std::optional<std::int64_t>> other_user() const;

 private:
  explicit lock_probe(int fd) noexcept : fd_(fd) {}
  int fd_ = -1;
};

/// Sizes of `data.mdb` before and after a compaction, in bytes.
struct compaction {
  std::uint64_t bytes_before = 0;
  std::uint64_t bytes_after = 0;
};

/// The name of the temporary file a compaction writes in the data dir (removed or renamed into
/// place before `compact` returns; a leftover of a killed run is truncated by the next).
inline constexpr std::string_view compact_temp_name = "data.mdb.compact";

/// Rewrites `<dir>/data.mdb` without its free pages, so that no byte of a deleted or overwritten
/// value survives in the file: holds the write transaction (no writer can slip in), copies the
/// environment with `mdb_env_copyfd2(MDB_CP_COMPACT)` into `<dir>/data.mdb.compact` (mode 0600),
/// fsyncs it, asks `still_alone` (e.g. a `lock_probe`) and only then renames it over `data.mdb`
/// and fsyncs the directory. `e` must be open on `dir` and is left mapping the *old* file: close
/// it next and reopen. On any failure the temporary file is removed and `data.mdb` is untouched;
/// `still_alone`'s error is returned as it is; errc::storage for LMDB or file-system failures.
result<compaction> compact(MDB_env* e, const std::string& dir,
                           const std::function<result<void>()>& still_alone);

/// Unlinks `<dir>/data.mdb.compact` if a killed compaction left it (it may hold any live value
/// of that time). errc::storage when it exists and cannot be removed.
result<void> remove_compact_leftover(const std::string& dir);

/// fsync of the directory `dir` (a new, renamed or removed entry becomes durable). errc::storage
/// when it cannot be opened or synced.
result<void> fsync_dir(const std::string& dir);

}  // namespace ib::storage::lmdb
