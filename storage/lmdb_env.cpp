#include "storage/lmdb_env.hpp"

namespace ib::storage::lmdb {

error make_error(int rc, std::string_view what) {
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

}  // namespace ib::storage::lmdb
