#include "storage/key_store.hpp"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <set>
#include <system_error>
#include <utility>

#include <rapidjson/document.h>

#include "core/json.hpp"
#include "core/text.hpp"
#include "storage/data_dir.hpp"
#include "storage/key_store_impl.hpp"

namespace ib::storage {

namespace {

using detail::is_key_part;
using detail::sep;
using detail::user_prefix;

// -- limits -----------------------------------------------------------------------------------

constexpr unsigned max_dbs = 8;
/// RFC 5321's longest address (64 + 1 + 255); the emails key is the address alone.
constexpr std::size_t max_email_size = 320;

// -- process-wide guard: LMDB forbids opening one environment twice in a process ---------------

std::mutex open_dirs_mutex;
std::set<std::string>& open_dirs() {
  static std::set<std::string> dirs;
  return dirs;
}

// -- small helpers ----------------------------------------------------------------------------

std::string lower_ascii(std::string_view s) {
  std::string out{s};
  std::transform(out.begin(), out.end(), out.begin(), ascii_lower);
  return out;
}

std::string digest_key(const sha256_digest& d) {
  return std::string{reinterpret_cast<const char*>(d.data()), d.size()};
}

// -- key layouts (design §6) ------------------------------------------------------------------

std::string provider_key_key(std::string_view user_id, std::string_view provider) {
  std::string k = user_prefix(user_id);
  k.append(provider);
  return k;
}

// -- values -----------------------------------------------------------------------------------

std::string user_json(std::string_view email, std::int64_t created) {
  std::string out;
  json_writer w(out);
  w.start_object();
  w.key("email").string(email);
  w.key("created").integer(created);
  w.end_object();
  return out;
}

std::string provider_key_json(const provider_key_record& rec) {
  std::string out;
  json_writer w(out);
  w.start_object();
  w.key("token").string(rec.token);
  w.key("hint").string(rec.hint);
  w.key("created").integer(rec.created);
  w.end_object();
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

}  // namespace

// -- key_store --------------------------------------------------------------------------------

key_store::impl::~impl() {
  {
    // Close the environment before another open of the same directory may begin.
    lmdb::env closing = std::move(env);
  }
  // Only now: closing lock.mdb earlier would have dropped the environment's fcntl locks.
  probe.reset();
  const std::lock_guard lock{open_dirs_mutex};
  open_dirs().erase(canonical_dir);
}

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
        named{"provider_keys", &p->provider_keys}, named{"requests", &p->log.requests},
        named{"requests_by_time", &p->log.requests_by_time},
        named{"request_counts", &p->log.request_counts}}) {
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

result<std::optional<user_state>> key_store::load_user(std::string_view user_id) const {
  auto user = find_user(user_id);
  if (!user) {
    return user.error();
  }
  if (!*user) {
    return std::optional<user_state>{};
  }
  user_state out;
  out.user = std::move(**user);
  auto rc = for_each_api_key([&](const sha256_digest& h, std::string_view uid) {
    if (uid == user_id) {
      out.api_key_hashes.push_back(h);
    }
  });
  if (!rc) {
    return rc.error();
  }
  auto keys = list_provider_keys(user_id);
  if (!keys) {
    return keys.error();
  }
  out.keys = std::move(*keys);
  return std::optional<user_state>{std::move(out)};
}

result<void> key_store::for_each_user(const std::function<void(const user_record&)>& fn) const {
  auto t = impl_->read();
  if (!t) {
    return t.error();
  }
  auto c = lmdb::cursor::open(*t, impl_->users);
  if (!c) {
    return c.error();
  }
  auto e = c->get(MDB_FIRST);
  for (; e && *e; e = c->get(MDB_NEXT)) {
    auto user = parse_user((*e)->first, (*e)->second);
    if (!user) {
      return user.error();
    }
    fn(*user);
  }
  if (!e) {
    return e.error();
  }
  return {};
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

// -- maintenance ------------------------------------------------------------------------------

result<key_store::token_batch> key_store::rewrite_provider_tokens_batch(
    std::string_view after, std::size_t max_records,
    const std::function<result<std::optional<std::string>>(const provider_key_record&)>& fn,
    const std::function<void()>& before_commit) {
  max_records = std::max<std::size_t>(max_records, 1);
  auto t = impl_->write();
  if (!t) {
    return t.error();
  }
  token_batch out;
  std::vector<std::pair<std::string, std::string>> updates;
  {
    auto c = lmdb::cursor::open(*t, impl_->provider_keys);
    if (!c) {
      return c.error();
    }
    auto e = after.empty() ? c->get(MDB_FIRST) : c->get(MDB_SET_RANGE, after);
    if (e && *e && !after.empty() && (*e)->first == after) {
      e = c->get(MDB_NEXT);  // `after` itself was done by the previous batch
    }
    for (; e && *e; e = c->get(MDB_NEXT)) {
      if (out.scanned == max_records) {
        // More remain: the next batch starts after the last one visited here.
        break;
      }
      const std::string_view key = (*e)->first;
      auto parts = split_user_key(key);
      if (!parts) {
        return corrupt("provider_keys");
      }
      auto rec = parse_provider_key(parts->second, (*e)->second);
      if (!rec) {
        return rec.error();
      }
      ++out.scanned;
      out.resume_after = std::string{key};
      auto token = fn(*rec);
      if (!token) {
        return token.error();  // the transaction is aborted: nothing of this batch is written
      }
      if (*token) {
        rec->token = std::move(**token);
        updates.emplace_back(std::string{key}, provider_key_json(*rec));
      }
    }
    if (!e) {
      return e.error();
    }
    if (!*e) {
      out.resume_after.reset();  // walked past the last key
    }
  }
  for (const auto& [k, v] : updates) {
    if (auto put = t->put(impl_->provider_keys, k, v); !put) {
      return put.error();
    }
  }
  if (before_commit) {
    before_commit();
  }
  if (updates.empty()) {
    t->abort();
  } else if (auto r = t->commit(); !r) {
    return r.error();
  }
  out.rewritten = updates.size();
  return out;
}

result<std::size_t> key_store::count_provider_keys() const {
  auto t = impl_->read();
  if (!t) {
    return t.error();
  }
  return t->entries(impl_->provider_keys);
}

result<std::optional<std::int64_t>> key_store::other_process() const {
  const std::lock_guard lock{impl_->probe_mutex};
  if (!impl_->probe) {
    auto p = lmdb::lock_probe::open(impl_->dir);
    if (!p) {
      return p.error();
    }
    impl_->probe.emplace(std::move(*p));
  }
  return impl_->probe->other_user();
}

namespace {

error in_use(const std::string& dir, std::int64_t pid) {
  return error{errc::conflict, "the data dir " + dir + " is in use by process "
                                   + std::to_string(pid) + " (a running gateway?): stop it first"};
}

}  // namespace

result<void> key_store::remove_compact_leftover(const std::string& dir) {
  return lmdb::remove_compact_leftover(strip_trailing_slashes(dir));
}

result<key_store::compaction> key_store::compact(const std::string& dir_in, std::size_t map_size) {
  const std::string dir = strip_trailing_slashes(dir_in);
  if (dir.empty()) {
    return error{errc::invalid_request, "data dir: empty"};
  }
  std::error_code ec;
  if (!std::filesystem::exists(dir + "/data.mdb", ec)) {
    return error{errc::storage, "storage: no LMDB store in " + dir};
  }
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
  struct release_dir {
    std::string canonical;
    ~release_dir() {
      const std::lock_guard lock{open_dirs_mutex};
      open_dirs().erase(canonical);
    }
  } released{canonical};
  // Declared before the environment, so destroyed after it (see lmdb::lock_probe).
  auto probe = lmdb::lock_probe::open(dir);
  if (!probe) {
    return probe.error();
  }
  auto alone = [&]() -> result<void> {
    auto other = probe->other_user();
    if (!other) {
      return other.error();
    }
    if (*other) {
      return in_use(dir, **other);
    }
    return {};
  };
  if (auto r = alone(); !r) {
    return r.error();
  }
  auto env = lmdb::env::open(dir, map_size, max_dbs, MDB_NOTLS);
  if (!env) {
    return env.error();
  }
  auto done = lmdb::compact(env->get(), dir, alone);
  if (!done) {
    return done.error();
  }
  return compaction{done->bytes_before, done->bytes_after};
}

}  // namespace ib::storage
