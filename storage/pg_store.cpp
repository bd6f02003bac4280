#include "storage/pg_store.hpp"

#include <algorithm>
#include <cstdio>

#include "core/text.hpp"

namespace ib::storage {

namespace {

using pg::clock;

constexpr std::size_t max_email_size = 320;
constexpr std::size_t max_part_size = 200;
constexpr std::string_view channel_notify = "SELECT pg_notify('inferbridge', $1)";
/// At most this many request records are dropped by one `append_requests` (as for LMDB).
constexpr std::int64_t max_dropped = 10'000;

/// The migrations, in order; migration N (1-based) brings the schema to version N. Text keys use
/// the "C" collation so that orders match the LMDB store's (bytewise).
const std::vector<std::vector<std::string_view>>& migrations() {
  static const std::vector<std::vector<std::string_view>> all = {
      {
          R"(CREATE TABLE users (
               id text COLLATE "C" PRIMARY KEY,
               email text NOT NULL,
               email_lower text COLLATE "C" NOT NULL UNIQUE,
               created bigint NOT NULL))",
          R"(CREATE TABLE api_keys (
               key_hash text COLLATE "C" PRIMARY KEY,
               user_id text COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE))",
          "CREATE INDEX api_keys_user ON api_keys (user_id)",
          R"(CREATE TABLE provider_keys (
               user_id text COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE,
               provider text COLLATE "C" NOT NULL,
               token text NOT NULL,
               hint text NOT NULL,
               created bigint NOT NULL,
               PRIMARY KEY (user_id, provider)))",
          R"(CREATE TABLE requests (
               user_id text COLLATE "C" NOT NULL,
               created_us bigint NOT NULL,
               id text COLLATE "C" NOT NULL,
               record text NOT NULL,
               PRIMARY KEY (user_id, created_us, id)))",
          "CREATE INDEX requests_by_time ON requests (created_us)",
          // How many records each user has: retention by count trims only the users over the
          // limit, oldest first, without ranking their rows on every batch.
          R"(CREATE TABLE request_counts (
               user_id text COLLATE "C" PRIMARY KEY,
               n bigint NOT NULL))",
          R"(CREATE TABLE breakers (
               provider text COLLATE "C" PRIMARY KEY,
               state text NOT NULL,
               retry_at_ms bigint NOT NULL,
               next_cooldown_ms bigint NOT NULL,
               probe_holder text,
               probe_until_ms bigint NOT NULL DEFAULT 0,
               updated_by text NOT NULL,
               updated_at_ms bigint NOT NULL))",
      },
  };
  return all;
}

bool is_part(std::string_view s) noexcept {
  return !s.empty() && s.size() <= max_part_size && s.find('\0') == std::string_view::npos;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    c = ascii_lower(c);
  }
  return out;
}

std::string hash_hex(const sha256_digest& h) {
  return pg::to_hex({reinterpret_cast<const char*>(h.data()), h.size()});
}

std::optional<sha256_digest> hash_of(std::string_view hex) {
  auto bytes = pg::from_hex(hex);
  sha256_digest d{};
  if (!bytes || bytes->size() != d.size()) {
    return std::nullopt;
  }
  std::copy(bytes->begin(), bytes->end(), d.begin());
  return d;
}

/// A PostgreSQL array literal of `values` (`{"a","b"}`), every element quoted and escaped.
std::string array_literal(const std::vector<std::string_view>& values) {
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) {
      out += ',';
    }
    out += '"';
    for (char c : values[i]) {
      if (c == '"' || c == '\\') {
        out += '\\';
      }
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

std::string num(std::int64_t v) {
  return std::to_string(v);
}

breaker_state state_of(std::string_view s) {
  return s == "open" ? breaker_state::open : breaker_state::closed;
}

constexpr std::string_view breaker_columns =
    "provider, state, retry_at_ms, next_cooldown_ms, probe_until_ms, coalesce(probe_holder, ''), "
    "updated_by";

/// The provider key in row `i` of `r`, whose columns from `first` on are `provider, token, hint,
/// created` (the order of every query below that reads one).
provider_key_record key_row(const pg::rows& r, int i, int first = 0) {
  return provider_key_record{std::string(r.get(i, first)), std::string(r.get(i, first + 1)),
                             std::string(r.get(i, first + 2)), r.get_int(i, first + 3)};
}

shared_breaker breaker_row(const pg::rows& r, int i) {
  shared_breaker b;
  b.provider = std::string(r.get(i, 0));
  b.state = state_of(r.get(i, 1));
  b.retry_at_ms = r.get_int(i, 2);
  b.next_cooldown_ms = r.get_int(i, 3);
  b.probe_until_ms = r.get_int(i, 4);
  b.probe_holder = std::string(r.get(i, 5));
  b.updated_by = std::string(r.get(i, 6));
  return b;
}

}  // namespace

// -- the connection pool --------------------------------------------------------------------------

struct pg_store::lease {
  const pg_store* owner = nullptr;
  pg::connection conn;
  bool reused = false;  ///< taken from the pool (it may have gone stale since)
  lease(const pg_store* o, pg::connection c, bool r = false)
      : owner(o), conn(std::move(c)), reused(r) {}
  lease(lease&& o) noexcept
      : owner(std::exchange(o.owner, nullptr)), conn(std::move(o.conn)), reused(o.reused) {}
  lease& operator=(lease&&) = delete;
  ~lease() {
    if (owner != nullptr) {
      owner->release(std::move(conn));
    }
  }
};

result<pg_store::lease> pg_store::acquire(clock::time_point deadline) const {
  {
    std::lock_guard lock(mu_);
    while (!idle_.empty()) {
      pg::connection c = std::move(idle_.back());
      idle_.pop_back();
      if (!c.broken()) {
        return lease{this, std::move(c), true};
      }
    }
  }
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
  auto c = pg::connection::open(opts_.url, std::max(left, std::chrono::milliseconds{1}),
                                opts_.durable_commits);
  if (!c) {
    return c.error();
  }
  return lease{this, std::move(*c)};
}

void pg_store::release(pg::connection c) const {
  if (c.broken()) {
    // One connection broke: the others, idle since, most likely did too (a server restart).
    std::lock_guard lock(mu_);
    idle_.clear();
    return;
  }
  std::lock_guard lock(mu_);
  if (idle_.size() < opts_.max_idle_connections) {
    idle_.push_back(std::move(c));
  }
}

// A pooled connection may have died while idle (PostgreSQL restarted, failed over): the call's
// first statement then fails at once with errc::unavailable. The call is run once more on a
// new connection; nothing of it reached a live server.

template <class T, class F>
result<T> pg_store::with_connection(F&& fn) const {
  const auto deadline = clock::now() + opts_.timeout;
  for (int attempt = 0;; ++attempt) {
    auto l = acquire(deadline);
    if (!l) {
      return l.error();
    }
    result<T> out = fn(l->conn, deadline);
    if (!out && out.error().code == errc::unavailable && l->reused && attempt == 0
        && l->conn.broken()) {
      continue;
    }
    return out;
  }
}

template <class T, class F>
result<T> pg_store::transact(F&& fn) const {
  const auto deadline = clock::now() + opts_.timeout;
  std::optional<lease> l;
  result<pg::rows> begun = errc::unavailable;
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto got = acquire(deadline);
    if (!got) {
      return got.error();
    }
    l.emplace(std::move(*got));
    begun = l->conn.exec("BEGIN", {}, deadline);
    // See above: a stale pooled connection fails BEGIN at once; retry it on a new one.
    if (begun || !l->reused || !l->conn.broken()) {
      break;
    }
  }
  if (!begun) {
    return begun.error();
  }
  auto& c = l->conn;
  auto id = c.exec("SELECT txid_current()", {}, deadline);
  if (!id) {
    if (!c.broken()) {
      (void)c.exec("ROLLBACK", {}, deadline);
    }
    return id.error();
  }
  const std::string txid(id->get(0, 0));
  result<T> out = fn(c, deadline);
  if (!out) {
    if (!c.broken()) {
      (void)c.exec("ROLLBACK", {}, deadline);
    }
    return out;
  }
  auto done = c.exec("COMMIT", {}, deadline);
  if (done) {
    return out;
  }
  if (done.error().code != errc::unavailable) {
    return done.error();
  }
  // The commit's answer was lost. Ask a new connection what became of the transaction: it may
  // have committed (then the write stands and is reported as done), been aborted, or still be
  // finishing; the last is waited out for as long as the extra bound allows.
  const auto check_deadline = clock::now() + opts_.timeout;
  while (clock::now() < check_deadline) {
    auto probe = pg::connection::open(opts_.url, opts_.timeout);
    if (!probe) {
      break;
    }
    auto st = probe->exec("SELECT txid_status($1::bigint)", {txid}, check_deadline);
    if (!st) {
      break;
    }
    auto s = st->get(0, 0);
    if (s == "committed") {
      return out;
    }
    if (s == "aborted" || st->is_null(0, 0)) {
      return done.error();
    }
  }
  std::fprintf(stderr,
               "inferbridge: a database commit's outcome is unknown (transaction %s); reported "
               "as failed\n",
               txid.c_str());
  return done.error();
}

// -- opening and migrations
// -------------------------------------------------------------------------

result<std::unique_ptr<pg_store>> pg_store::open(pg_options opts) {
  std::unique_ptr<pg_store> s{new pg_store(std::move(opts))};
  if (!s->opts_.migrate) {
    return s;
  }
  if (auto r = s->migrate(); !r) {
    return r.error();
  }
  return s;
}

pg_store::~pg_store() = default;

result<void> pg_store::migrate() {
  // Migrations may take longer than one ordinary call: allow ten bounds.
  const auto deadline = clock::now() + opts_.timeout * 10;
  auto l = acquire(deadline);
  if (!l) {
    return l.error();
  }
  auto& c = l->conn;
  for (std::string_view sql :
       {std::string_view{"BEGIN"},
        // The advisory lock serialises migrations across nodes starting together.
        std::string_view{"SELECT pg_advisory_xact_lock(7306373162658924865)"},
        std::string_view{"CREATE TABLE IF NOT EXISTS schema_migrations (version int PRIMARY KEY, "
                         "applied_at timestamptz NOT NULL DEFAULT now())"}}) {
    if (auto r = c.exec(sql, {}, deadline); !r) {
      return r.error();
    }
  }
  auto v = c.exec("SELECT coalesce(max(version), 0) FROM schema_migrations", {}, deadline);
  if (!v) {
    return v.error();
  }
  const auto current = v->get_int(0, 0);
  if (current > pg_schema_version) {
    (void)c.exec("ROLLBACK", {}, deadline);
    return error{errc::storage, "the database schema is at version " + num(current)
                                    + ", newer than this binary's " + num(pg_schema_version)
                                    + ": run a newer inferbridge (refusing to start)"};
  }
  const auto& all = migrations();
  for (auto n = current + 1; n <= pg_schema_version; ++n) {
    for (std::string_view sql : all[static_cast<std::size_t>(n - 1)]) {
      if (auto r = c.exec(sql, {}, deadline); !r) {
        (void)c.exec("ROLLBACK", {}, deadline);
        return error{errc::storage, "schema migration " + num(n) + " failed: " + r.error().message};
      }
    }
    if (auto r =
            c.exec("INSERT INTO schema_migrations (version) VALUES ($1::int)", {num(n)}, deadline);
        !r) {
      return r.error();
    }
  }
  if (auto r = c.exec("COMMIT", {}, deadline); !r) {
    return r.error();
  }
  return {};
}

// -- users and keys
// -----------------------------------------------------------------------------------

result<user_record> pg_store::create_user(std::string_view email, const sha256_digest& hash,
                                          std::int64_t now_unix) {
  if (email.empty() || email.size() > max_email_size
      || email.find('\0') != std::string_view::npos) {
    return error{errc::invalid_request, "email: invalid"};
  }
  return transact<user_record>([&](pg::connection& c, clock::time_point d) -> result<user_record> {
    const std::string email_lower = lower(email);
    auto taken = c.exec("SELECT 1 FROM users WHERE email_lower = $1", {email_lower}, d);
    if (!taken) {
      return taken.error();
    }
    if (taken->size() > 0) {
      return error{errc::conflict, "email already registered"};
    }
    user_record u{new_id("usr_"), std::string(email), now_unix};
    auto ins = c.exec(
        "INSERT INTO users (id, email, email_lower, created) VALUES ($1, $2, $3, $4::bigint)",
        {u.id, u.email, email_lower, num(now_unix)}, d);
    if (!ins) {
      // A unique violation here is a sign-up with the same email on another node, just now.
      if (ins.error().code == errc::conflict) {
        return error{errc::conflict, "email already registered"};
      }
      return ins.error();
    }
    auto key = c.exec("INSERT INTO api_keys (key_hash, user_id) VALUES ($1, $2)",
                      {hash_hex(hash), u.id}, d);
    if (!key) {
      if (key.error().code == errc::conflict) {
        return error{errc::internal, "the gateway key hash is already registered"};
      }
      return key.error();
    }
    if (auto n = c.exec(channel_notify, {encode(key_event{opts_.node, u.id})}, d); !n) {
      return n.error();
    }
    return u;
  });
}

result<std::optional<user_record>> pg_store::find_user(std::string_view user_id) const {
  using out_t = std::optional<user_record>;
  if (!is_part(user_id)) {
    return out_t{};
  }
  return with_connection<out_t>([&](pg::connection& c, clock::time_point d) -> result<out_t> {
    auto r = c.exec("SELECT id, email, created FROM users WHERE id = $1", {user_id}, d);
    if (!r) {
      return r.error();
    }
    if (r->size() == 0) {
      return out_t{};
    }
    return out_t{
        user_record{std::string(r->get(0, 0)), std::string(r->get(0, 1)), r->get_int(0, 2)}};
  });
}

result<std::optional<std::string>> pg_store::user_for_key_hash(const sha256_digest& hash) const {
  using out_t = std::optional<std::string>;
  return with_connection<out_t>([&](pg::connection& c, clock::time_point d) -> result<out_t> {
    auto r = c.exec("SELECT user_id FROM api_keys WHERE key_hash = $1", {hash_hex(hash)}, d);
    if (!r) {
      return r.error();
    }
    if (r->size() == 0) {
      return out_t{};
    }
    return out_t{std::string(r->get(0, 0))};
  });
}

result<std::optional<user_state>> pg_store::load_user(std::string_view user_id) const {
  using out_t = std::optional<user_state>;
  if (!is_part(user_id)) {
    return out_t{};
  }
  const auto deadline = clock::now() + opts_.timeout;
  auto l = acquire(deadline);
  if (!l) {
    return l.error();
  }
  auto& c = l->conn;
  auto fetch = [&]() -> result<out_t> {
    auto u = c.exec("SELECT id, email, created FROM users WHERE id = $1", {user_id}, deadline);
    if (!u) {
      return u.error();
    }
    if (u->size() == 0) {
      return out_t{};
    }
    user_state s;
    s.user = user_record{std::string(u->get(0, 0)), std::string(u->get(0, 1)), u->get_int(0, 2)};
    auto h = c.exec("SELECT key_hash FROM api_keys WHERE user_id = $1 ORDER BY key_hash", {user_id},
                    deadline);
    if (!h) {
      return h.error();
    }
    for (int i = 0; i < h->size(); ++i) {
      auto d = hash_of(h->get(i, 0));
      if (!d) {
        return error{errc::storage, "api_keys: a stored hash is not 32 bytes of hex"};
      }
      s.api_key_hashes.push_back(*d);
    }
    auto k = c.exec(
        "SELECT provider, token, hint, created FROM provider_keys WHERE user_id = $1 "
        "ORDER BY provider",
        {user_id}, deadline);
    if (!k) {
      return k.error();
    }
    for (int i = 0; i < k->size(); ++i) {
      s.keys.push_back(key_row(*k, i));
    }
    return out_t{std::move(s)};
  };
  // One snapshot for the three reads.
  if (auto b = c.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", {}, deadline); !b) {
    return b.error();
  }
  auto out = fetch();
  if (!c.broken()) {
    (void)c.exec("COMMIT", {}, deadline);
  }
  return out;
}

result<bool> pg_store::put_provider_key(std::string_view user_id, const provider_key_record& rec) {
  if (!is_part(user_id) || !is_part(rec.provider)) {
    return error{errc::invalid_request, "user id or provider: invalid"};
  }
  return transact<bool>([&](pg::connection& c, clock::time_point d) -> result<bool> {
    auto u = c.exec("SELECT 1 FROM users WHERE id = $1 FOR SHARE", {user_id}, d);
    if (!u) {
      return u.error();
    }
    if (u->size() == 0) {
      return error{errc::not_found, "no such user"};
    }
    // xmax is non-zero on a row that ON CONFLICT updated: tells replaced from inserted.
    auto r = c.exec(
        "INSERT INTO provider_keys (user_id, provider, token, hint, created) "
        "VALUES ($1, $2, $3, $4, $5::bigint) ON CONFLICT (user_id, provider) DO UPDATE SET "
        "token = excluded.token, hint = excluded.hint, created = excluded.created "
        "RETURNING (xmax <> 0)",
        {user_id, rec.provider, rec.token, rec.hint, num(rec.created)}, d);
    if (!r) {
      return r.error();
    }
    if (auto n = c.exec(channel_notify, {encode(key_event{opts_.node, std::string(user_id)})}, d);
        !n) {
      return n.error();
    }
    return r->get(0, 0) == "t";
  });
}

result<std::vector<provider_key_record>> pg_store::list_provider_keys(
    std::string_view user_id) const {
  using out_t = std::vector<provider_key_record>;
  if (!is_part(user_id)) {
    return out_t{};
  }
  return with_connection<out_t>([&](pg::connection& c, clock::time_point d) -> result<out_t> {
    auto k = c.exec(
        "SELECT provider, token, hint, created FROM provider_keys WHERE user_id = $1 "
        "ORDER BY provider",
        {user_id}, d);
    if (!k) {
      return k.error();
    }
    out_t out;
    for (int i = 0; i < k->size(); ++i) {
      out.push_back(key_row(*k, i));
    }
    return out;
  });
}

result<bool> pg_store::delete_provider_key(std::string_view user_id, std::string_view provider) {
  if (!is_part(user_id) || !is_part(provider)) {
    return false;
  }
  return transact<bool>([&](pg::connection& c, clock::time_point d) -> result<bool> {
    auto r = c.exec("DELETE FROM provider_keys WHERE user_id = $1 AND provider = $2",
                    {user_id, provider}, d);
    if (!r) {
      return r.error();
    }
    if (r->affected() == 0) {
      return false;
    }
    if (auto n = c.exec(channel_notify, {encode(key_event{opts_.node, std::string(user_id)})}, d);
        !n) {
      return n.error();
    }
    return true;
  });
}

result<void> pg_store::for_each_api_key(
    const std::function<void(const sha256_digest&, std::string_view user_id)>& fn) const {
  return with_connection<void>([&](pg::connection& c, clock::time_point d) -> result<void> {
    auto r = c.exec("SELECT key_hash, user_id FROM api_keys ORDER BY key_hash", {}, d);
    if (!r) {
      return r.error();
    }
    for (int i = 0; i < r->size(); ++i) {
      auto h = hash_of(r->get(i, 0));
      if (!h) {
        return error{errc::storage, "api_keys: a stored hash is not 32 bytes of hex"};
      }
      fn(*h, r->get(i, 1));
    }
    return {};
  });
}

result<void> pg_store::for_each_user(const std::function<void(const user_record&)>& fn) const {
  return with_connection<void>([&](pg::connection& c, clock::time_point d) -> result<void> {
    auto r = c.exec("SELECT id, email, created FROM users ORDER BY id", {}, d);
    if (!r) {
      return r.error();
    }
    for (int i = 0; i < r->size(); ++i) {
      fn(user_record{std::string(r->get(i, 0)), std::string(r->get(i, 1)), r->get_int(i, 2)});
    }
    return {};
  });
}

result<void> pg_store::for_each_provider_key(
    const std::function<void(std::string_view user_id, const provider_key_record&)>& fn) const {
  return with_connection<void>([&](pg::connection& c, clock::time_point d) -> result<void> {
    auto r = c.exec(
        "SELECT user_id, provider, token, hint, created FROM provider_keys "
        "ORDER BY user_id, provider",
        {}, d);
    if (!r) {
      return r.error();
    }
    for (int i = 0; i < r->size(); ++i) {
      fn(r->get(i, 0), key_row(*r, i, 1));
    }
    return {};
  });
}

result<std::size_t> pg_store::rewrite_provider_tokens(
    const std::function<result<std::string>(const provider_key_record&)>& fn) {
  return transact<std::size_t>([&](pg::connection& c, clock::time_point d) -> result<std::size_t> {
    auto r = c.exec(
        "SELECT user_id, provider, token, hint, created FROM provider_keys "
        "ORDER BY user_id, provider FOR UPDATE",
        {}, d);
    if (!r) {
      return r.error();
    }
    std::size_t n = 0;
    for (int i = 0; i < r->size(); ++i) {
      provider_key_record rec = key_row(*r, i, 1);
      auto token = fn(rec);
      if (!token) {
        return token.error();
      }
      auto u = c.exec("UPDATE provider_keys SET token = $3 WHERE user_id = $1 AND provider = $2",
                      {r->get(i, 0), rec.provider, *token}, d);
      if (!u) {
        return u.error();
      }
      ++n;
    }
    return n;
  });
}

// -- the request log
// ------------------------------------------------------------------------------------

result<void> pg_store::append_requests(const std::vector<request_record>& records,
                                       int max_records_per_user, std::int64_t max_age_s,
                                       std::int64_t now_unix) {
  for (const auto& r : records) {
    if (!is_part(r.user_id) || !is_part(r.id)) {
      return error{errc::invalid_request, "a request record's user id or id is invalid"};
    }
  }
  if (records.empty() && max_age_s <= 0) {
    return {};
  }
  std::vector<std::string> json;
  json.reserve(records.size());
  std::vector<std::string> created;
  created.reserve(records.size());
  std::vector<std::string_view> users;
  std::vector<std::string_view> ids;
  for (const auto& r : records) {
    json.push_back(to_json(r));
    created.push_back(num(r.created_us < 0 ? 0 : r.created_us));
    users.push_back(r.user_id);
    ids.push_back(r.id);
  }
  std::vector<std::string_view> json_v(json.begin(), json.end());
  std::vector<std::string_view> created_v(created.begin(), created.end());
  const std::string users_a = array_literal(users);
  return transact<void>([&](pg::connection& c, clock::time_point d) -> result<void> {
    // Insert, and add what was inserted to each user's count, in one statement.
    std::vector<std::pair<std::string, std::int64_t>> over;  // users over the count limit
    if (!records.empty()) {
      auto ins = c.exec(
          "WITH ins AS (INSERT INTO requests (user_id, created_us, id, record) "
          "SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[]) "
          "ON CONFLICT DO NOTHING RETURNING user_id), "
          "added AS (SELECT user_id, count(*) AS n FROM ins GROUP BY user_id) "
          "INSERT INTO request_counts (user_id, n) SELECT user_id, n FROM added "
          "ON CONFLICT (user_id) DO UPDATE SET n = request_counts.n + excluded.n "
          "RETURNING user_id, n",
          {users_a, array_literal(created_v), array_literal(ids), array_literal(json_v)}, d);
      if (!ins) {
        return ins.error();
      }
      for (int i = 0; i < ins->size(); ++i) {
        const auto n = ins->get_int(i, 1);
        if (max_records_per_user > 0 && n > max_records_per_user) {
          over.emplace_back(std::string(ins->get(i, 0)), n - max_records_per_user);
        }
      }
    }
    // Count: each user over the limit loses its oldest records (a forward scan of its part of
    // the primary key), at most `max_dropped` per call; later calls finish the job.
    std::int64_t budget = max_dropped;
    for (const auto& [user, surplus] : over) {
      if (budget <= 0) {
        break;
      }
      const auto n = std::min(surplus, budget);
      auto del = c.exec(
          "WITH gone AS (DELETE FROM requests WHERE (user_id, created_us, id) IN (SELECT user_id, "
          "created_us, id FROM requests WHERE user_id = $1 ORDER BY created_us, id LIMIT "
          "$2::bigint) RETURNING 1) "
          "UPDATE request_counts SET n = n - (SELECT count(*) FROM gone) WHERE user_id = $1",
          {user, num(n)}, d);
      if (!del) {
        return del.error();
      }
      budget -= n;
    }
    // Age: records created before the cutoff, oldest first (the by-time index), at most what is
    // left of the budget; each user's count goes down by what it lost.
    if (max_age_s > 0 && budget > 0) {
      auto old = c.exec(
          "WITH gone AS (DELETE FROM requests WHERE (user_id, created_us, id) IN (SELECT user_id, "
          "created_us, id FROM requests WHERE created_us < $1::bigint ORDER BY created_us LIMIT "
          "$2::bigint) RETURNING user_id), "
          "lost AS (SELECT user_id, count(*) AS n FROM gone GROUP BY user_id) "
          "UPDATE request_counts r SET n = r.n - lost.n FROM lost WHERE r.user_id = lost.user_id",
          {num((now_unix - max_age_s) * 1'000'000), num(budget)}, d);
      if (!old) {
        return old.error();
      }
    }
    return {};
  });
}

result<request_page> pg_store::list_requests(std::string_view user_id, std::size_t limit,
                                             std::string_view before) const {
  if (!is_part(user_id)) {
    if (!before.empty()) {
      return error{errc::invalid_request, "before: no request with that id", "before"};
    }
    return request_page{};
  }
  return with_connection<request_page>(
      [&](pg::connection& c, clock::time_point d) -> result<request_page> {
        result<pg::rows> r = errc::internal;
        const std::string n = num(static_cast<std::int64_t>(limit) + 1);
        if (before.empty()) {
          r = c.exec(
              "SELECT record FROM requests WHERE user_id = $1 "
              "ORDER BY created_us DESC, id DESC LIMIT $2::bigint",
              {user_id, n}, d);
        } else {
          auto at = c.exec("SELECT created_us FROM requests WHERE user_id = $1 AND id = $2 LIMIT 1",
                           {user_id, before}, d);
          if (!at) {
            return at.error();
          }
          if (at->size() == 0) {
            return error{errc::invalid_request, "before: no request with that id", "before"};
          }
          r = c.exec(
              "SELECT record FROM requests WHERE user_id = $1 AND (created_us, id) < "
              "($3::bigint, $2) ORDER BY created_us DESC, id DESC LIMIT $4::bigint",
              {user_id, before, at->get(0, 0), n}, d);
        }
        if (!r) {
          return r.error();
        }
        request_page page;
        const int got = r->size();
        const int shown = std::min<int>(got, static_cast<int>(limit));
        for (int i = 0; i < shown; ++i) {
          page.records_json.emplace_back(r->get(i, 0));
        }
        page.has_more = got > shown;
        return page;
      });
}

// -- migrate-store
// ----------------------------------------------------------------------------------------

result<bool> pg_store::import_user(const user_record& u) {
  return with_connection<bool>([&](pg::connection& c, clock::time_point d) -> result<bool> {
    auto r = c.exec(
        "INSERT INTO users (id, email, email_lower, created) VALUES ($1, $2, $3, $4::bigint) "
        "ON CONFLICT (id) DO NOTHING",
        {u.id, u.email, lower(u.email), num(u.created)}, d);
    if (!r) {
      return r.error();
    }
    return r->affected() > 0;
  });
}

result<bool> pg_store::import_api_key(const sha256_digest& hash, std::string_view user_id) {
  return with_connection<bool>([&](pg::connection& c, clock::time_point d) -> result<bool> {
    auto r =
        c.exec("INSERT INTO api_keys (key_hash, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
               {hash_hex(hash), user_id}, d);
    if (!r) {
      return r.error();
    }
    return r->affected() > 0;
  });
}

result<bool> pg_store::import_provider_key(std::string_view user_id,
                                           const provider_key_record& rec) {
  return with_connection<bool>([&](pg::connection& c, clock::time_point d) -> result<bool> {
    auto r = c.exec(
        "INSERT INTO provider_keys (user_id, provider, token, hint, created) "
        "VALUES ($1, $2, $3, $4, $5::bigint) ON CONFLICT DO NOTHING",
        {user_id, rec.provider, rec.token, rec.hint, num(rec.created)}, d);
    if (!r) {
      return r.error();
    }
    return r->affected() > 0;
  });
}

// -- shared health
// ----------------------------------------------------------------------------------------

result<std::optional<shared_breaker>> pg_store::publish_open(std::string_view provider,
                                                             std::int64_t retry_at_ms,
                                                             std::int64_t next_cooldown_ms,
                                                             std::int64_t now_ms) {
  using out_t = std::optional<shared_breaker>;
  return with_connection<out_t>([&](pg::connection& c, clock::time_point d) -> result<out_t> {
    breaker_event ev{opts_.node, std::string(provider), breaker_state::open, retry_at_ms,
                     next_cooldown_ms};
    // One statement (one implicit transaction): the notification goes out only if the row was
    // written, and only once it is committed.
    auto r = c.exec(
        "WITH w AS (INSERT INTO breakers (provider, state, retry_at_ms, next_cooldown_ms, "
        "probe_holder, probe_until_ms, updated_by, updated_at_ms) VALUES ($1, 'open', $2::bigint, "
        "$3::bigint, NULL, 0, $4, $5::bigint) ON CONFLICT (provider) DO UPDATE SET state = "
        "'open', retry_at_ms = excluded.retry_at_ms, next_cooldown_ms = "
        "excluded.next_cooldown_ms, probe_holder = NULL, probe_until_ms = 0, updated_by = "
        "excluded.updated_by, updated_at_ms = excluded.updated_at_ms WHERE breakers.state <> "
        "'open' OR breakers.retry_at_ms <= $5::bigint RETURNING 1) "
        "SELECT pg_notify('inferbridge', $6) FROM w",
        {provider, num(retry_at_ms), num(next_cooldown_ms), opts_.node, num(now_ms), encode(ev)},
        d);
    if (!r) {
      return r.error();
    }
    if (r->size() > 0) {
      return out_t{};
    }
    auto row =
        c.exec("SELECT " + std::string(breaker_columns) + " FROM breakers WHERE provider = $1",
               {provider}, d);
    if (!row) {
      return row.error();
    }
    if (row->size() == 0) {
      return out_t{};
    }
    return out_t{breaker_row(*row, 0)};
  });
}

result<void> pg_store::publish_closed(std::string_view provider, std::int64_t now_ms) {
  return with_connection<void>([&](pg::connection& c, clock::time_point d) -> result<void> {
    breaker_event ev{opts_.node, std::string(provider), breaker_state::closed, 0, 0};
    auto r = c.exec(
        "WITH w AS (INSERT INTO breakers (provider, state, retry_at_ms, next_cooldown_ms, "
        "probe_holder, probe_until_ms, updated_by, updated_at_ms) VALUES ($1, 'closed', 0, 0, "
        "NULL, 0, $2, $3::bigint) ON CONFLICT (provider) DO UPDATE SET state = 'closed', "
        "probe_holder = NULL, probe_until_ms = 0, updated_by = excluded.updated_by, "
        "updated_at_ms = excluded.updated_at_ms RETURNING 1) "
        "SELECT pg_notify('inferbridge', $4) FROM w",
        {provider, opts_.node, num(now_ms), encode(ev)}, d);
    if (!r) {
      return r.error();
    }
    return {};
  });
}

result<lease_answer> pg_store::try_probe_lease(std::string_view provider, std::int64_t retry_at_ms,
                                               std::int64_t next_cooldown_ms, std::int64_t lease_ms,
                                               std::int64_t now_ms) {
  return with_connection<lease_answer>([&](pg::connection& c,
                                           clock::time_point d) -> result<lease_answer> {
    auto r = c.exec(
        "INSERT INTO breakers (provider, state, retry_at_ms, next_cooldown_ms, probe_holder, "
        "probe_until_ms, updated_by, updated_at_ms) VALUES ($1, 'open', $2::bigint, "
        "$3::bigint, $4, $5::bigint, $4, $6::bigint) ON CONFLICT (provider) DO UPDATE SET "
        "probe_holder = excluded.probe_holder, probe_until_ms = excluded.probe_until_ms "
        "WHERE breakers.state = 'open' AND breakers.retry_at_ms = excluded.retry_at_ms AND "
        "breakers.retry_at_ms <= $6::bigint AND (breakers.probe_holder IS NULL OR "
        "breakers.probe_until_ms <= $6::bigint OR breakers.probe_holder = $4) RETURNING 1",
        {provider, num(retry_at_ms), num(next_cooldown_ms), opts_.node, num(now_ms + lease_ms),
         num(now_ms)},
        d);
    if (!r) {
      return r.error();
    }
    lease_answer out;
    out.won = r->size() > 0;
    if (!out.won) {
      auto row =
          c.exec("SELECT " + std::string(breaker_columns) + " FROM breakers WHERE provider = $1",
                 {provider}, d);
      if (!row) {
        return row.error();
      }
      if (row->size() > 0) {
        out.row = breaker_row(*row, 0);
      }
    }
    return out;
  });
}

result<void> pg_store::extend_probe_lease(std::string_view provider, std::int64_t retry_at_ms,
                                          std::int64_t until_ms) {
  return with_connection<void>([&](pg::connection& c, clock::time_point d) -> result<void> {
    auto r = c.exec(
        "UPDATE breakers SET probe_until_ms = greatest(probe_until_ms, $3::bigint) WHERE provider "
        "= $1 AND state = 'open' AND retry_at_ms = $2::bigint AND probe_holder = $4",
        {provider, num(retry_at_ms), num(until_ms), opts_.node}, d);
    if (!r) {
      return r.error();
    }
    return {};
  });
}

result<void> pg_store::notify(std::string_view payload) {
  return with_connection<void>([&](pg::connection& c, clock::time_point d) -> result<void> {
    auto r = c.exec(channel_notify, {payload}, d);
    if (!r) {
      return r.error();
    }
    return {};
  });
}

result<std::vector<shared_breaker>> pg_store::read_breakers() {
  using out_t = std::vector<shared_breaker>;
  return with_connection<out_t>([&](pg::connection& c, clock::time_point d) -> result<out_t> {
    auto r = c.exec("SELECT " + std::string(breaker_columns) + " FROM breakers ORDER BY provider",
                    {}, d);
    if (!r) {
      return r.error();
    }
    out_t out;
    for (int i = 0; i < r->size(); ++i) {
      out.push_back(breaker_row(*r, i));
    }
    return out;
  });
}

result<pg::connection> pg_store::open_listener() {
  const auto deadline = clock::now() + opts_.timeout;
  auto c = pg::connection::open(opts_.url, opts_.timeout, opts_.durable_commits);
  if (!c) {
    return c.error();
  }
  if (auto r = c->exec("LISTEN inferbridge", {}, deadline); !r) {
    return r.error();
  }
  return std::move(*c);
}

}  // namespace ib::storage
