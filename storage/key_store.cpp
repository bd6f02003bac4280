#include "storage/key_store.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <utility>

#include <fcntl.h>
#include <openssl/crypto.h>
#include <rapidjson/document.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/lmdb_env.hpp"

namespace ib::storage {

namespace {

// -- limits -----------------------------------------------------------------------------------

constexpr unsigned max_dbs = 8;
/// LMDB's default MDB_MAXKEYSIZE.
constexpr std::size_t max_key_size = 511;
/// Ids, provider names and request ids are short; the bound keeps every composite key legal.
constexpr std::size_t max_part_size = 200;
/// RFC 5321's longest address (64 + 1 + 255); the emails key is the address alone.
constexpr std::size_t max_email_size = 320;
/// Retention deletes at most this many records per call, so one transaction stays small after a
/// long pause or a lowered limit; later calls finish the job.
constexpr std::size_t retention_batch = 10'000;
/// Largest master.key we read: one key and a newline, with room for stray whitespace.
constexpr std::size_t max_master_key_file = 1024;

constexpr char sep = '\0';

// -- process-wide guard: LMDB forbids opening one environment twice in a process ---------------

std::mutex open_dirs_mutex;
std::set<std::string>& open_dirs() {
  static std::set<std::string> dirs;
  return dirs;
}

// -- small helpers ----------------------------------------------------------------------------

std::string errno_text(int err) {
  return std::string{std::strerror(err)};
}

std::string strip_trailing_slashes(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') {
    dir.pop_back();
  }
  return dir;
}

/// Creates `dir` with mode 0700 when missing (parents with the default mode); an existing
/// directory is left as it is.
result<void> ensure_private_dir(const std::string& dir) {
  if (dir.empty()) {
    return error{errc::invalid_request, "data dir: empty path"};
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) {
      return error{errc::storage, "data dir " + dir + ": not a directory"};
    }
    return {};
  }
  if (errno != ENOENT) {
    return error{errc::storage, "data dir " + dir + ": " + errno_text(errno)};
  }
  const std::filesystem::path parent = std::filesystem::path{dir}.parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) {
      return error{errc::storage, "data dir " + dir + ": " + ec.message()};
    }
  }
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return error{errc::storage, "data dir " + dir + ": " + errno_text(errno)};
  }
  return {};
}

std::string lower_ascii(std::string_view s) {
  std::string out{s};
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return out;
}

/// A part of a composite key: non-empty, bounded, and free of the NUL separator.
bool is_key_part(std::string_view s) noexcept {
  return !s.empty() && s.size() <= max_part_size && s.find(sep) == std::string_view::npos;
}

void append_be64(std::string& out, std::uint64_t x) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((x >> shift) & 0xff));
  }
}

std::uint64_t read_be64(std::string_view s) noexcept {
  std::uint64_t x = 0;
  for (std::size_t i = 0; i < 8 && i < s.size(); ++i) {
    x = (x << 8) | static_cast<unsigned char>(s[i]);
  }
  return x;
}

std::uint64_t time_bits(std::int64_t created_us) noexcept {
  return created_us < 0 ? 0 : static_cast<std::uint64_t>(created_us);
}

std::string digest_key(const sha256_digest& d) {
  return std::string{reinterpret_cast<const char*>(d.data()), d.size()};
}

// -- key layouts (design §6) ------------------------------------------------------------------

/// `user_id \0`: the first bytes of every provider_keys and requests key of that user.
std::string user_prefix(std::string_view user_id) {
  std::string k{user_id};
  k.push_back(sep);
  return k;
}

/// Just above every key of `user_id` (the separator is \0, so \1 sorts after all of them).
std::string user_upper_bound(std::string_view user_id) {
  std::string k{user_id};
  k.push_back('\x01');
  return k;
}

std::string provider_key_key(std::string_view user_id, std::string_view provider) {
  std::string k = user_prefix(user_id);
  k.append(provider);
  return k;
}

/// requests: `user_id \0 created_us(8, BE) request_id`.
std::string request_key(std::string_view user_id, std::int64_t created_us, std::string_view id) {
  std::string k = user_prefix(user_id);
  append_be64(k, time_bits(created_us));
  k.append(id);
  return k;
}

/// requests_by_time (a secondary index for retention by age): `created_us(8, BE) user_id \0
/// request_id` -> empty.
std::string time_key_of(std::string_view request_key) {
  const std::size_t nul = request_key.find(sep);
  std::string k;
  k.reserve(request_key.size());
  k.append(request_key.substr(nul + 1, 8));
  k.append(request_key.substr(0, nul + 1));
  k.append(request_key.substr(nul + 1 + 8));
  return k;
}

std::string request_key_of_time_key(std::string_view time_key) {
  std::string k;
  k.reserve(time_key.size());
  const std::string_view rest = time_key.substr(8);
  const std::size_t nul = rest.find(sep);
  k.append(rest.substr(0, nul + 1));
  k.append(time_key.substr(0, 8));
  k.append(rest.substr(nul + 1));
  return k;
}

// -- values -----------------------------------------------------------------------------------

std::string user_json(std::string_view email, std::int64_t created) {
  std::string out = "{\"email\":";
  append_json_string(out, email);
  out.append(",\"created\":");
  out.append(std::to_string(created));
  out.push_back('}');
  return out;
}

std::string provider_key_json(const provider_key_record& rec) {
  std::string out = "{\"token\":";
  append_json_string(out, rec.token);
  out.append(",\"hint\":");
  append_json_string(out, rec.hint);
  out.append(",\"created\":");
  out.append(std::to_string(rec.created));
  out.push_back('}');
  return out;
}

error corrupt(std::string_view db) {
  return error{errc::storage, "storage: corrupt record in " + std::string{db}};
}

result<rapidjson::Document> parse_object(std::string_view text, std::string_view db) {
  rapidjson::Document d;
  d.Parse(text.data(), text.size());
  if (d.HasParseError() || !d.IsObject()) {
    return corrupt(db);
  }
  return d;
}

std::optional<std::string> string_member(const rapidjson::Value& obj, const char* name) {
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd() || !it->value.IsString()) {
    return std::nullopt;
  }
  return std::string{it->value.GetString(), it->value.GetStringLength()};
}

std::optional<std::int64_t> int_member(const rapidjson::Value& obj, const char* name) {
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd() || !it->value.IsInt64()) {
    return std::nullopt;
  }
  return it->value.GetInt64();
}

result<user_record> parse_user(std::string_view id, std::string_view value) {
  auto d = parse_object(value, "users");
  if (!d) {
    return d.error();
  }
  auto email = string_member(*d, "email");
  auto created = int_member(*d, "created");
  if (!email || !created) {
    return corrupt("users");
  }
  return user_record{std::string{id}, std::move(*email), *created};
}

result<provider_key_record> parse_provider_key(std::string_view provider, std::string_view value) {
  auto d = parse_object(value, "provider_keys");
  if (!d) {
    return d.error();
  }
  auto token = string_member(*d, "token");
  auto hint = string_member(*d, "hint");
  auto created = int_member(*d, "created");
  if (!token || !hint || !created) {
    return corrupt("provider_keys");
  }
  return provider_key_record{std::string{provider}, std::move(*token), std::move(*hint), *created};
}

/// Splits a `user_id \0 rest` key.
std::optional<std::pair<std::string_view, std::string_view>> split_user_key(std::string_view k) {
  const std::size_t nul = k.find(sep);
  if (nul == std::string_view::npos || nul == 0) {
    return std::nullopt;
  }
  return std::pair{k.substr(0, nul), k.substr(nul + 1)};
}

// -- files ------------------------------------------------------------------------------------

result<void> write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return error{errc::storage, errno_text(errno)};
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

/// Makes a new directory entry durable.
void fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

// -- key_store --------------------------------------------------------------------------------

struct key_store::impl {
  std::string dir;
  std::string canonical_dir;
  lmdb::env env;
  MDB_dbi users = 0;
  MDB_dbi emails = 0;
  MDB_dbi api_keys = 0;
  MDB_dbi provider_keys = 0;
  MDB_dbi requests = 0;
  MDB_dbi requests_by_time = 0;
  MDB_dbi request_counts = 0;  ///< user prefix -> number of request records (8 bytes, BE)

  impl(std::string d, std::string canon, lmdb::env e)
      : dir(std::move(d)), canonical_dir(std::move(canon)), env(std::move(e)) {}

  ~impl() {
    {
      // Close the environment before another open of the same directory may begin.
      lmdb::env closing = std::move(env);
    }
    const std::lock_guard lock{open_dirs_mutex};
    open_dirs().erase(canonical_dir);
  }

  result<lmdb::txn> read() const { return lmdb::txn::begin(env.get(), false); }
  result<lmdb::txn> write() const { return lmdb::txn::begin(env.get(), true); }

  /// Positions `c` on `user_id`'s newest request; nullopt when the user has none.
  result<std::optional<lmdb::cursor::entry>> newest_request(lmdb::cursor& c,
                                                            std::string_view user_id) const {
    auto e = c.get(MDB_SET_RANGE, user_upper_bound(user_id));
    if (!e) {
      return e;
    }
    e = *e ? c.get(MDB_PREV) : c.get(MDB_LAST);
    if (!e) {
      return e;
    }
    if (*e && !(*e)->first.starts_with(user_prefix(user_id))) {
      return std::optional<lmdb::cursor::entry>{};
    }
    return e;
  }

  /// Deletes a request record and its time-index entry.
  result<void> delete_request(lmdb::txn& t, std::string_view rkey) const {
    if (auto r = t.del(requests, rkey); !r) {
      return r.error();
    }
    if (auto r = t.del(requests_by_time, time_key_of(rkey)); !r) {
      return r.error();
    }
    return {};
  }

  /// The number of `user_id`'s request records: from request_counts, or (for a store written
  /// before the counts existed) counted once.
  result<std::uint64_t> request_count(lmdb::txn& t, std::string_view user_id) const {
    const std::string prefix = user_prefix(user_id);
    auto v = t.get(request_counts, prefix);
    if (!v) {
      return v.error();
    }
    if (*v && (*v)->size() == 8) {
      return read_be64(**v);
    }
    auto c = lmdb::cursor::open(t, requests);
    if (!c) {
      return c.error();
    }
    std::uint64_t n = 0;
    for (auto e = c->get(MDB_SET_RANGE, prefix); e && *e && (*e)->first.starts_with(prefix);
         e = c->get(MDB_NEXT)) {
      ++n;
    }
    return n;
  }

  result<void> store_count(lmdb::txn& t, std::string_view user_id, std::uint64_t n) const {
    std::string v;
    append_be64(v, n);
    if (auto r = t.put(request_counts, user_prefix(user_id), v); !r) {
      return r.error();
    }
    return {};
  }

  /// Drops `user_id`'s oldest records beyond the newest `max_records` (at most `budget`), given
  /// that `added` records were just appended. O(records dropped), not O(records kept).
  result<std::size_t> trim_user(lmdb::txn& t, std::string_view user_id, std::uint64_t added,
                                std::size_t max_records, std::size_t budget) const {
    auto count = request_count(t, user_id);
    if (!count) {
      return count.error();
    }
    // A count read from the table predates this batch; a freshly counted one includes it.
    auto stored = t.get(request_counts, user_prefix(user_id));
    std::uint64_t n = *count + (stored && *stored ? added : 0);
    std::vector<std::string> doomed;
    if (n > max_records) {
      auto c = lmdb::cursor::open(t, requests);
      if (!c) {
        return c.error();
      }
      const std::string prefix = user_prefix(user_id);
      auto want = std::min<std::uint64_t>(n - max_records, budget);
      for (auto e = c->get(MDB_SET_RANGE, prefix);
           e && *e && (*e)->first.starts_with(prefix) && doomed.size() < want;
           e = c->get(MDB_NEXT)) {
        doomed.emplace_back((*e)->first);
      }
    }
    for (const auto& k : doomed) {
      if (auto r = delete_request(t, k); !r) {
        return r.error();
      }
    }
    if (auto r = store_count(t, user_id, n - doomed.size()); !r) {
      return r.error();
    }
    return doomed.size();
  }

  /// Drops records created before `cutoff_us`, oldest first, at most `budget` of them.
  result<void> trim_by_age(lmdb::txn& t, std::uint64_t cutoff_us, std::size_t budget) const {
    std::vector<std::string> doomed;
    {
      auto c = lmdb::cursor::open(t, requests_by_time);
      if (!c) {
        return c.error();
      }
      auto e = c->get(MDB_FIRST);
      while (e && *e && doomed.size() < budget && (*e)->first.size() > 8
             && read_be64((*e)->first) < cutoff_us) {
        doomed.emplace_back((*e)->first);
        e = c->get(MDB_NEXT);
      }
      if (!e) {
        return e.error();
      }
    }
    std::map<std::string, std::uint64_t, std::less<>> dropped;
    for (const auto& tk : doomed) {
      const std::string rk = request_key_of_time_key(tk);
      if (auto r = t.del(requests, rk); !r) {
        return r.error();
      }
      if (auto r = t.del(requests_by_time, tk); !r) {
        return r.error();
      }
      ++dropped[rk.substr(0, rk.find(sep))];
    }
    for (const auto& [user, n] : dropped) {
      auto count = request_count(t, user);
      if (!count) {
        return count.error();
      }
      auto stored = t.get(request_counts, user_prefix(user));
      // A count computed by scanning already reflects the deletions.
      std::uint64_t left = (stored && *stored) ? (*count > n ? *count - n : 0) : *count;
      if (auto r = store_count(t, user, left); !r) {
        return r.error();
      }
    }
    return {};
  }
};

key_store::key_store(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

key_store::~key_store() = default;

const std::string& key_store::dir() const noexcept {
  return impl_->dir;
}

result<std::unique_ptr<key_store>> key_store::open(const std::string& dir_in,
                                                   std::size_t map_size) {
  const std::string dir = strip_trailing_slashes(dir_in);
  if (auto r = ensure_private_dir(dir); !r) {
    return r.error();
  }
  std::error_code ec;
  std::string canonical = std::filesystem::canonical(dir, ec).string();
  if (ec) {
    return error{errc::storage, "data dir " + dir + ": " + ec.message()};
  }
  {
    const std::lock_guard lock{open_dirs_mutex};
    if (!open_dirs().insert(canonical).second) {
      return error{errc::storage, "storage: " + dir + " is already open in this process"};
    }
  }
  auto release = [&canonical] {
    const std::lock_guard lock{open_dirs_mutex};
    open_dirs().erase(canonical);
  };
  // MDB_NOTLS: a read transaction is not tied to a thread (CAF actors migrate between workers).
  auto env = lmdb::env::open(dir, map_size, max_dbs, MDB_NOTLS);
  if (!env) {
    release();
    return env.error();
  }
  auto p = std::make_unique<impl>(dir, canonical, std::move(*env));
  // From here on, `p`'s destructor releases the directory.
  auto t = p->write();
  if (!t) {
    return t.error();
  }
  struct named {
    const char* name;
    MDB_dbi* dbi;
  };
  for (const named& n :
       {named{"users", &p->users}, named{"emails", &p->emails}, named{"api_keys", &p->api_keys},
        named{"provider_keys", &p->provider_keys}, named{"requests", &p->requests},
        named{"requests_by_time", &p->requests_by_time},
        named{"request_counts", &p->request_counts}}) {
    auto dbi = t->open_dbi(n.name, MDB_CREATE);
    if (!dbi) {
      return dbi.error();
    }
    *n.dbi = *dbi;
  }
  if (auto r = t->commit(); !r) {
    return r.error();
  }
  return std::unique_ptr<key_store>{new key_store{std::move(p)}};
}

// -- users and gateway keys -------------------------------------------------------------------

result<user_record> key_store::create_user(std::string_view email,
                                           const sha256_digest& api_key_hash,
                                           std::int64_t now_unix) {
  if (email.empty() || email.size() > max_email_size || email.find(sep) != std::string_view::npos) {
    return error{errc::invalid_request, "email: invalid"};
  }
  const std::string email_key = lower_ascii(email);
  auto t = impl_->write();
  if (!t) {
    return t.error();
  }
  // Check and insert in one write transaction: LMDB has one writer at a time, so two sign-ups
  // with the same email cannot both pass the check.
  auto taken = t->get(impl_->emails, email_key);
  if (!taken) {
    return taken.error();
  }
  if (*taken) {
    return error{errc::conflict, "email already registered"};
  }
  user_record user{{}, std::string{email}, now_unix};
  const std::string value = user_json(user.email, user.created);
  for (int tries = 0; user.id.empty() && tries < 3; ++tries) {
    std::string id = new_id("usr_");
    auto put = t->put(impl_->users, id, value, MDB_NOOVERWRITE);
    if (!put) {
      return put.error();
    }
    if (*put) {
      user.id = std::move(id);
    }
  }
  if (user.id.empty()) {
    return error{errc::internal, "could not allocate a user id"};
  }
  if (auto put = t->put(impl_->emails, email_key, user.id, MDB_NOOVERWRITE); !put) {
    return put.error();
  }
  auto key_put = t->put(impl_->api_keys, digest_key(api_key_hash), user.id, MDB_NOOVERWRITE);
  if (!key_put) {
    return key_put.error();
  }
  if (!*key_put) {
    return error{errc::internal, "gateway key hash already registered"};
  }
  if (auto r = t->commit(); !r) {
    return r.error();
  }
  return user;
}

result<std::optional<user_record>> key_store::find_user(std::string_view user_id) const {
  if (!is_key_part(user_id)) {
    return std::optional<user_record>{};
  }
  auto t = impl_->read();
  if (!t) {
    return t.error();
  }
  auto v = t->get(impl_->users, user_id);
  if (!v) {
    return v.error();
  }
  if (!*v) {
    return std::optional<user_record>{};
  }
  auto user = parse_user(user_id, **v);
  if (!user) {
    return user.error();
  }
  return std::optional<user_record>{std::move(*user)};
}

result<std::optional<std::string>> key_store::user_for_key_hash(const sha256_digest& hash) const {
  auto t = impl_->read();
  if (!t) {
    return t.error();
  }
  auto v = t->get(impl_->api_keys, digest_key(hash));
  if (!v) {
    return v.error();
  }
  if (!*v) {
    return std::optional<std::string>{};
  }
  return std::optional<std::string>{std::string{**v}};
}

// -- provider keys ----------------------------------------------------------------------------

result<bool> key_store::put_provider_key(std::string_view user_id, const provider_key_record& rec) {
  if (!is_key_part(user_id)) {
    return error{errc::invalid_request, "user id: invalid"};
  }
  if (!is_key_part(rec.provider)) {
    return error{errc::invalid_request, "provider: invalid"};
  }
  auto t = impl_->write();
  if (!t) {
    return t.error();
  }
  auto user = t->get(impl_->users, user_id);
  if (!user) {
    return user.error();
  }
  if (!*user) {
    return error{errc::not_found, "no such user"};
  }
  const std::string k = provider_key_key(user_id, rec.provider);
  auto old = t->get(impl_->provider_keys, k);
  if (!old) {
    return old.error();
  }
  const bool replaced = old->has_value();
  if (auto put = t->put(impl_->provider_keys, k, provider_key_json(rec)); !put) {
    return put.error();
  }
  if (auto r = t->commit(); !r) {
    return r.error();
  }
  return replaced;
}

result<std::vector<provider_key_record>> key_store::list_provider_keys(
    std::string_view user_id) const {
  std::vector<provider_key_record> out;
  if (!is_key_part(user_id)) {
    return out;
  }
  auto t = impl_->read();
  if (!t) {
    return t.error();
  }
  auto c = lmdb::cursor::open(*t, impl_->provider_keys);
  if (!c) {
    return c.error();
  }
  const std::string prefix = user_prefix(user_id);
  auto e = c->get(MDB_SET_RANGE, prefix);
  for (; e && *e && (*e)->first.starts_with(prefix); e = c->get(MDB_NEXT)) {
    auto rec = parse_provider_key((*e)->first.substr(prefix.size()), (*e)->second);
    if (!rec) {
      return rec.error();
    }
    out.push_back(std::move(*rec));
  }
  if (!e) {
    return e.error();
  }
  return out;
}

result<bool> key_store::delete_provider_key(std::string_view user_id, std::string_view provider) {
  if (!is_key_part(user_id) || !is_key_part(provider)) {
    return false;
  }
  auto t = impl_->write();
  if (!t) {
    return t.error();
  }
  auto deleted = t->del(impl_->provider_keys, provider_key_key(user_id, provider));
  if (!deleted) {
    return deleted.error();
  }
  if (!*deleted) {
    return false;  // nothing changed: the transaction is simply aborted
  }
  if (auto r = t->commit(); !r) {
    return r.error();
  }
  return true;
}

result<void> key_store::for_each_api_key(
    const std::function<void(const sha256_digest&, std::string_view user_id)>& fn) const {
  auto t = impl_->read();
  if (!t) {
    return t.error();
  }
  auto c = lmdb::cursor::open(*t, impl_->api_keys);
  if (!c) {
    return c.error();
  }
  auto e = c->get(MDB_FIRST);
  for (; e && *e; e = c->get(MDB_NEXT)) {
    sha256_digest d{};
    if ((*e)->first.size() != d.size()) {
      return corrupt("api_keys");
    }
    std::memcpy(d.data(), (*e)->first.data(), d.size());
    fn(d, (*e)->second);
  }
  if (!e) {
    return e.error();
  }
  return {};
}

namespace {

/// Visits every stored provider key in `t`: `fn(storage key, user id, record)` returns
/// result<void>; the first error stops the walk.
template <class F>
result<void> scan_provider_keys(lmdb::txn& t, MDB_dbi dbi, F&& fn) {
  auto c = lmdb::cursor::open(t, dbi);
  if (!c) {
    return c.error();
  }
  auto e = c->get(MDB_FIRST);
  for (; e && *e; e = c->get(MDB_NEXT)) {
    auto parts = split_user_key((*e)->first);
    if (!parts) {
      return corrupt("provider_keys");
    }
    auto rec = parse_provider_key(parts->second, (*e)->second);
    if (!rec) {
      return rec.error();
    }
    if (auto r = fn((*e)->first, parts->first, *rec); !r) {
      return r;
    }
  }
  if (!e) {
    return e.error();
  }
  return {};
}

}  // namespace

result<void> key_store::for_each_provider_key(
    const std::function<void(std::string_view user_id, const provider_key_record&)>& fn) const {
  auto t = impl_->read();
  if (!t) {
    return t.error();
  }
  return scan_provider_keys(*t, impl_->provider_keys,
                            [&](std::string_view, std::string_view user_id,
                                const provider_key_record& rec) -> result<void> {
                              fn(user_id, rec);
                              return {};
                            });
}

result<std::size_t> key_store::rewrite_provider_tokens(
    const std::function<result<std::string>(const provider_key_record&)>& fn) {
  auto t = impl_->write();
  if (!t) {
    return t.error();
  }
  std::vector<std::pair<std::string, std::string>> updates;
  auto scanned = scan_provider_keys(
      *t, impl_->provider_keys,
      [&](std::string_view key, std::string_view, provider_key_record rec) -> result<void> {
        auto token = fn(rec);
        if (!token) {
          return token.error();  // nothing has been written: the whole rotation is abandoned
        }
        rec.token = std::move(*token);
        updates.emplace_back(std::string{key}, provider_key_json(rec));
        return {};
      });
  if (!scanned) {
    return scanned.error();
  }
  for (const auto& [k, v] : updates) {
    if (auto put = t->put(impl_->provider_keys, k, v); !put) {
      return put.error();
    }
  }
  if (auto r = t->commit(); !r) {
    return r.error();
  }
  return updates.size();
}

// -- request log ------------------------------------------------------------------------------

result<void> key_store::append_requests(const std::vector<request_record>& records,
                                        int max_records_per_user, std::int64_t max_age_s,
                                        std::int64_t now_unix) {
  for (const auto& r : records) {
    if (!is_key_part(r.user_id) || !is_key_part(r.id)) {
      return error{errc::invalid_request, "request record: invalid user id or request id"};
    }
  }
  auto t = impl_->write();
  if (!t) {
    return t.error();
  }
  std::map<std::string_view, std::uint64_t> users;
  for (const auto& r : records) {
    const std::string rk = request_key(r.user_id, r.created_us, r.id);
    if (auto put = t->put(impl_->requests, rk, to_json(r)); !put) {
      return put.error();
    }
    if (auto put = t->put(impl_->requests_by_time, time_key_of(rk), {}); !put) {
      return put.error();
    }
    ++users[r.user_id];
  }
  std::size_t budget = retention_batch;
  // Counts are kept up to date even when the count limit is off, so that turning it on later
  // finds them right.
  const std::size_t max_records = max_records_per_user > 0
                                      ? static_cast<std::size_t>(max_records_per_user)
                                      : std::numeric_limits<std::size_t>::max();
  for (const auto& [user, added] : users) {
    auto n = impl_->trim_user(*t, user, added, max_records, budget);
    if (!n) {
      return n.error();
    }
    budget -= *n;
  }
  if (max_age_s > 0 && budget > 0) {
    // cutoff = (now - max_age) in microseconds, saturating instead of overflowing.
    std::int64_t cutoff_s = 0;
    std::int64_t cutoff_us = 0;
    if (__builtin_sub_overflow(now_unix, max_age_s, &cutoff_s)) {
      cutoff_s = std::numeric_limits<std::int64_t>::min();
    }
    if (__builtin_mul_overflow(cutoff_s, std::int64_t{1'000'000}, &cutoff_us)) {
      cutoff_us = cutoff_s < 0 ? 0 : std::numeric_limits<std::int64_t>::max();
    }
    if (auto r = impl_->trim_by_age(*t, time_bits(cutoff_us), budget); !r) {
      return r.error();
    }
  }
  return t->commit();
}

result<key_store::page> key_store::list_requests(std::string_view user_id, std::size_t limit,
                                                 std::string_view before) const {
  page out;
  if (!is_key_part(user_id)) {
    return out;
  }
  auto t = impl_->read();
  if (!t) {
    return t.error();
  }
  auto c = lmdb::cursor::open(*t, impl_->requests);
  if (!c) {
    return c.error();
  }
  const std::string prefix = user_prefix(user_id);
  const std::size_t id_offset = prefix.size() + 8;
  auto in_range = [&](const result<std::optional<lmdb::cursor::entry>>& e) {
    return e && *e && (*e)->first.starts_with(prefix) && (*e)->first.size() > id_offset;
  };
  auto e = impl_->newest_request(*c, user_id);
  if (!before.empty()) {
    // Walk back from the newest to the `before` record; a paging client's cursor sits at most
    // one page past where the previous page ended, and retention bounds the walk.
    bool found = false;
    for (; in_range(e); e = c->get(MDB_PREV)) {
      if ((*e)->first.substr(id_offset) == before) {
        found = true;
        e = c->get(MDB_PREV);
        break;
      }
    }
    if (!e) {
      return e.error();
    }
    if (!found) {
      return error{errc::invalid_request, "before: no request with that id", "before"};
    }
  }
  for (; in_range(e) && out.records_json.size() < limit; e = c->get(MDB_PREV)) {
    out.records_json.emplace_back((*e)->second);
  }
  if (!e) {
    return e.error();
  }
  out.has_more = in_range(e);
  return out;
}

// -- master keys ------------------------------------------------------------------------------

result<std::vector<fernet_key>> load_master_keys(const std::vector<std::string>& env_keys,
                                                 const std::string& data_dir) {
  std::vector<fernet_key> keys;
  if (!env_keys.empty()) {
    for (std::size_t i = 0; i < env_keys.size(); ++i) {
      auto k = parse_fernet_key(env_keys[i]);
      if (!k) {
        // Name the position only: the value is a secret even when it is malformed.
        return error{errc::invalid_request,
                     "IB_MASTER_KEY: key " + std::to_string(i + 1) + " of "
                         + std::to_string(env_keys.size())
                         + " is not a valid Fernet key (expected 44 characters of url-safe "
                           "base64 encoding 32 bytes)"};
      }
      keys.push_back(*k);
    }
    return keys;
  }
  const std::string dir = strip_trailing_slashes(data_dir);
  if (auto r = ensure_private_dir(dir); !r) {
    return r.error();
  }
  const std::string path = dir + "/master.key";
  // Two rounds: if another process creates the file between our read and our create, read it.
  for (int round = 0; round < 2; ++round) {
    const int rfd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (rfd >= 0) {
      std::string text(max_master_key_file + 1, '\0');
      std::size_t got = 0;
      int read_errno = 0;
      while (got < text.size()) {
        const ssize_t n = ::read(rfd, text.data() + got, text.size() - got);
        if (n < 0 && errno == EINTR) {
          continue;
        }
        if (n < 0) {
          read_errno = errno;
          break;
        }
        if (n == 0) {
          break;
        }
        got += static_cast<std::size_t>(n);
      }
      ::close(rfd);
      if (read_errno != 0) {
        OPENSSL_cleanse(text.data(), text.size());
        return error{errc::storage, path + ": " + errno_text(read_errno)};
      }
      auto k = got <= max_master_key_file ? parse_fernet_key(std::string_view{text}.substr(0, got))
                                          : result<fernet_key>{errc::invalid_request};
      OPENSSL_cleanse(text.data(), text.size());
      if (!k) {
        return error{errc::invalid_request,
                     path + ": not a valid Fernet key (expected one line of 44 characters of "
                            "url-safe base64 encoding 32 bytes)"};
      }
      keys.push_back(*k);
      return keys;
    }
    if (errno != ENOENT) {
      return error{errc::storage, path + ": " + errno_text(errno)};
    }
    const int wfd =
        ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (wfd < 0) {
      if (errno == EEXIST) {
        continue;
      }
      return error{errc::storage, path + ": " + errno_text(errno)};
    }
    const fernet_key key = generate_fernet_key();
    std::string line = encode_fernet_key(key);
    line.push_back('\n');
    auto written = write_all(wfd, line);
    OPENSSL_cleanse(line.data(), line.size());
    if (written && ::fsync(wfd) != 0) {
      written = error{errc::storage, errno_text(errno)};
    }
    ::close(wfd);
    if (!written) {
      ::unlink(path.c_str());  // never leave a half-written key behind to be read next time
      return error{errc::storage, path + ": " + written.error().message};
    }
    fsync_dir(dir);
    keys.push_back(key);
    return keys;
  }
  return error{errc::storage, path + ": could not be read or created"};
}

}  // namespace ib::storage
