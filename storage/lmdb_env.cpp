#include "storage/lmdb_env.hpp"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ib::storage::lmdb {

namespace {

error errno_error(const std::string& what, int err) {
  return error{errc::storage, "storage: " + what + ": " + std::strerror(err)};
}

/// Size of the file at `path` in bytes (0 when it cannot be read).
std::uint64_t file_size(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

}  // namespace

error make_error(int rc, std::string_view what) {
  if (rc == MDB_MAP_FULL) {
    return error{
        errc::insufficient_storage, std::string{map_full_message}, {}, "insufficient_storage"};
  }
  std::string msg = "storage: ";
  msg.append(what);
  msg.append(" failed: ");
  msg.append(mdb_strerror(rc));
  return error{errc::storage, std::move(msg)};
}

// -- env --------------------------------------------------------------------------------------

result<env> env::open(const std::string& dir, std::size_t map_size, unsigned max_dbs,
                      unsigned flags) {
  MDB_env* raw = nullptr;
  if (int rc = mdb_env_create(&raw); rc != 0) {
    return make_error(rc, "mdb_env_create");
  }
  env e{raw};  // closes the handle on every error below, as LMDB asks even after a failed open
  if (int rc = mdb_env_set_maxdbs(raw, max_dbs); rc != 0) {
    return make_error(rc, "mdb_env_set_maxdbs");
  }
  if (int rc = mdb_env_set_mapsize(raw, map_size); rc != 0) {
    return make_error(rc, "mdb_env_set_mapsize");
  }
  if (int rc = mdb_env_open(raw, dir.c_str(), flags, 0600); rc != 0) {
    return make_error(rc, "mdb_env_open");
  }
  int dead = 0;
  if (int rc = mdb_reader_check(raw, &dead); rc != 0) {
    return make_error(rc, "mdb_reader_check");
  }
  return e;
}

env& env::operator=(env&& other) noexcept {
  if (this != &other) {
    if (p_ != nullptr) {
      mdb_env_close(p_);
    }
    p_ = std::exchange(other.p_, nullptr);
  }
  return *this;
}

env::~env() {
  if (p_ != nullptr) {
    mdb_env_close(p_);
  }
}

// -- txn --------------------------------------------------------------------------------------

result<txn> txn::begin(MDB_env* e, bool write) {
  MDB_txn* raw = nullptr;
  if (int rc = mdb_txn_begin(e, nullptr, write ? 0U : MDB_RDONLY, &raw); rc != 0) {
    return make_error(rc, "mdb_txn_begin");
  }
  return txn{raw};
}

txn& txn::operator=(txn&& other) noexcept {
  if (this != &other) {
    abort();
    p_ = std::exchange(other.p_, nullptr);
  }
  return *this;
}

result<void> txn::commit() {
  // mdb_txn_commit frees the transaction whether or not it succeeds.
  MDB_txn* raw = std::exchange(p_, nullptr);
  if (raw == nullptr) {
    return error{errc::storage, "storage: commit of a finished transaction"};
  }
  if (int rc = mdb_txn_commit(raw); rc != 0) {
    return make_error(rc, "mdb_txn_commit");
  }
  return {};
}

void txn::abort() noexcept {
  if (p_ != nullptr) {
    mdb_txn_abort(std::exchange(p_, nullptr));
  }
}

result<MDB_dbi> txn::open_dbi(const char* name, unsigned flags) {
  MDB_dbi dbi = 0;
  if (int rc = mdb_dbi_open(p_, name, flags, &dbi); rc != 0) {
    return make_error(rc, "mdb_dbi_open");
  }
  return dbi;
}

result<std::optional<std::string_view>> txn::get(MDB_dbi dbi, std::string_view key) const {
  MDB_val k = to_val(key);
  MDB_val v{};
  const int rc = mdb_get(p_, dbi, &k, &v);
  if (rc == MDB_NOTFOUND) {
    return std::optional<std::string_view>{};
  }
  if (rc != 0) {
    return make_error(rc, "mdb_get");
  }
  return std::optional<std::string_view>{to_view(v)};
}

result<bool> txn::put(MDB_dbi dbi, std::string_view key, std::string_view value, unsigned flags) {
  MDB_val k = to_val(key);
  MDB_val v = to_val(value);
  const int rc = mdb_put(p_, dbi, &k, &v, flags);
  if (rc == MDB_KEYEXIST && (flags & MDB_NOOVERWRITE) != 0) {
    return false;
  }
  if (rc != 0) {
    return make_error(rc, "mdb_put");
  }
  return true;
}

result<bool> txn::del(MDB_dbi dbi, std::string_view key) {
  MDB_val k = to_val(key);
  const int rc = mdb_del(p_, dbi, &k, nullptr);
  if (rc == MDB_NOTFOUND) {
    return false;
  }
  if (rc != 0) {
    return make_error(rc, "mdb_del");
  }
  return true;
}

result<std::size_t> txn::entries(MDB_dbi dbi) const {
  MDB_stat st{};
  if (int rc = mdb_stat(p_, dbi, &st); rc != 0) {
    return make_error(rc, "mdb_stat");
  }
  return static_cast<std::size_t>(st.ms_entries);
}

// -- cursor -----------------------------------------------------------------------------------

result<cursor> cursor::open(const txn& t, MDB_dbi dbi) {
  MDB_cursor* raw = nullptr;
  if (int rc = mdb_cursor_open(t.get(), dbi, &raw); rc != 0) {
    return make_error(rc, "mdb_cursor_open");
  }
  return cursor{raw};
}

cursor& cursor::operator=(cursor&& other) noexcept {
  if (this != &other) {
    if (p_ != nullptr) {
      mdb_cursor_close(p_);
    }
    p_ = std::exchange(other.p_, nullptr);
  }
  return *this;
}

cursor::~cursor() {
  if (p_ != nullptr) {
    mdb_cursor_close(p_);
  }
}

result<std::optional<cursor::entry>> cursor::get(MDB_cursor_op op, std::string_view key) {
  MDB_val k = to_val(key);
  MDB_val v{};
  const int rc = mdb_cursor_get(p_, &k, &v, op);
  if (rc == MDB_NOTFOUND) {
    return std::optional<entry>{};
  }
  if (rc != 0) {
    return make_error(rc, "mdb_cursor_get");
  }
  return std::optional<entry>{entry{to_view(k), to_view(v)}};
}

// -- lock_probe ---------------------------------------------------------------------------------

result<lock_probe> lock_probe::open(const std::string& dir) {
  const std::string path = dir + "/lock.mdb";
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) {
      return lock_probe{-1};
    }
    return errno_error(path, errno);
  }
  return lock_probe{fd};
}

lock_probe& lock_probe::operator=(lock_probe&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) {
      ::close(fd_);
    }
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

lock_probe::~lock_probe() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

result<std::optional<std::int64_t>> lock_probe::other_user() const {
  if (fd_ < 0) {
    return std::optional<std::int64_t>{};
  }
  // LMDB's first opener write-locks byte 0 and downgrades to a read lock; every other opener
  // read-locks it (mdb_env_excl_lock). A write lock conflicts with both; F_GETLK ignores this
  // process's own locks and takes none.
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 1;
  if (::fcntl(fd_, F_GETLK, &fl) != 0) {
    return errno_error("lock.mdb: F_GETLK", errno);
  }
  if (fl.l_type == F_UNLCK) {
    return std::optional<std::int64_t>{};
  }
  return std::optional<std::int64_t>{static_cast<std::int64_t>(fl.l_pid)};
}

// -- compaction ---------------------------------------------------------------------------------

result<void> fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return errno_error(dir, errno);
  }
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) {
    return errno_error(dir + ": fsync", err);
  }
  return {};
}

result<void> remove_compact_leftover(const std::string& dir) {
  const std::string tmp = dir + "/" + std::string{compact_temp_name};
  if (::unlink(tmp.c_str()) != 0) {
    if (errno == ENOENT) {
      return {};
    }
    return errno_error(tmp, errno);
  }
  return fsync_dir(dir);
}

result<compaction> compact(MDB_env* e, const std::string& dir,
                           const std::function<result<void>()>& still_alone) {
  const std::string data = dir + "/data.mdb";
  const std::string tmp = dir + "/" + std::string{compact_temp_name};
  compaction out;
  out.bytes_before = file_size(data);
  // The write transaction keeps every other writer out until the rename: nothing committed after
  // the copy's snapshot can be lost with the old file.
  auto writer = txn::begin(e, true);
  if (!writer) {
    return writer.error();
  }
  // O_TRUNC: a leftover of a killed compaction is overwritten, never appended to.
  const int fd =
      ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, S_IRUSR | S_IWUSR);
  if (fd < 0) {
    return errno_error(tmp, errno);
  }
  auto discard = [&tmp](error err) -> result<compaction> {
    ::unlink(tmp.c_str());
    return err;
  };
  if (int rc = mdb_env_copyfd2(e, fd, MDB_CP_COMPACT); rc != 0) {
    ::close(fd);
    return discard(make_error(rc, "mdb_env_copyfd2"));
  }
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    return discard(errno_error(tmp + ": fsync", err));
  }
  if (::close(fd) != 0) {
    return discard(errno_error(tmp + ": close", errno));
  }
  if (still_alone) {
    if (auto r = still_alone(); !r) {
      return discard(r.error());
    }
  }
  if (::rename(tmp.c_str(), data.c_str()) != 0) {
    return discard(errno_error(tmp + ": rename over data.mdb", errno));
  }
  if (auto r = fsync_dir(dir); !r) {
    return r.error();
  }
  writer->abort();
  out.bytes_after = file_size(data);
  return out;
}

}  // namespace ib::storage::lmdb
