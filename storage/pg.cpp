#include "storage/pg.hpp"

#include <charconv>
#include <cstring>
#include <mutex>

#include <dlfcn.h>
#include <libpq-fe.h>
#include <poll.h>

namespace ib::storage::pg {

namespace {

// libpq is loaded on first use (dlopen) instead of being linked, so that a gateway on LMDB (the
// default) never maps it: libpq and what it pulls in (GnuTLS, p11-kit, Kerberos, LDAP, SASL, ...)
// were 3.3 MiB of file pages and 0.55 MiB of heap in every idle gateway (RSS 24.1 -> 20.4 MB,
// measured), and their constructors ran at every start. Only the functions below are used;
// each is looked up once, by name, in libpq.so.5 (libpq's soname since PostgreSQL 8.2).
#define IB_LIBPQ_FUNCTIONS(X) \
  X(PQclear)                  \
  X(PQcmdTuples)              \
  X(PQconnectPoll)            \
  X(PQconnectStartParams)     \
  X(PQconninfoFree)           \
  X(PQconninfoParse)          \
  X(PQconsumeInput)           \
  X(PQerrorMessage)           \
  X(PQfinish)                 \
  X(PQflush)                  \
  X(PQfreemem)                \
  X(PQgetResult)              \
  X(PQgetisnull)              \
  X(PQgetlength)              \
  X(PQgetvalue)               \
  X(PQisBusy)                 \
  X(PQnotifies)               \
  X(PQntuples)                \
  X(PQresultErrorField)       \
  X(PQresultStatus)           \
  X(PQsendQueryParams)        \
  X(PQsetnonblocking)         \
  X(PQsocket)                 \
  X(PQstatus)

struct libpq_api {
#define IB_LIBPQ_MEMBER(name) decltype(&::name) name = nullptr;
  IB_LIBPQ_FUNCTIONS(IB_LIBPQ_MEMBER)
#undef IB_LIBPQ_MEMBER
};

struct libpq_load {
  libpq_api api;
  std::string error;  // empty once loaded
};

const libpq_load& load_libpq() {
  // Never destroyed: a connection closed by a thread still running at exit may need it.
  static libpq_load& loaded = *new libpq_load;
  static std::once_flag once;
  std::call_once(once, [] {
    // Never closed: the process keeps it once it has a database.
    void* lib = ::dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
      const char* why = ::dlerror();
      loaded.error = std::string("the PostgreSQL client library (libpq.so.5) could not be loaded: ")
                     + (why != nullptr ? why : "unknown error");
      return;
    }
#define IB_LIBPQ_LOOKUP(name)                                                 \
  loaded.api.name = reinterpret_cast<decltype(&::name)>(::dlsym(lib, #name)); \
  if (loaded.api.name == nullptr) {                                           \
    loaded.error = "libpq.so.5 has no " #name ": it is too old";              \
    return;                                                                   \
  }
    IB_LIBPQ_FUNCTIONS(IB_LIBPQ_LOOKUP)
#undef IB_LIBPQ_LOOKUP
  });
  return loaded;
}

/// libpq's functions. Only called where a connection or a result exists, which
/// `connection::open` made after loading libpq.
const libpq_api& pq() {
  return load_libpq().api;
}

/// libpq's message for `c`, first line only (it never holds a password).
std::string conn_message(PGconn* c) {
  std::string m = c != nullptr ? pq().PQerrorMessage(c) : "out of memory";
  if (auto nl = m.find('\n'); nl != std::string::npos) {
    m.resize(nl);
  }
  return m.empty() ? "connection lost" : m;
}

error unavailable(std::string why) {
  return error{errc::unavailable, "the database is unavailable: " + why, {}, "store_unavailable"};
}

/// Waits for `events` on `fd` until `deadline`; false on timeout.
bool wait_fd(int fd, short events, clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
    if (left.count() <= 0) {
      return false;
    }
    pollfd p{fd, events, 0};
    int rc = ::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(left.count(), 60'000)));
    if (rc > 0) {
      return true;
    }
    if (rc < 0 && errno != EINTR) {
      return false;
    }
  }
}

}  // namespace

rows& rows::operator=(rows&& o) noexcept {
  if (this != &o) {
    if (r_ != nullptr) {
      pq().PQclear(r_);
    }
    r_ = std::exchange(o.r_, nullptr);
  }
  return *this;
}

rows::~rows() {
  if (r_ != nullptr) {
    pq().PQclear(r_);
  }
}

int rows::size() const noexcept {
  return r_ != nullptr ? pq().PQntuples(r_) : 0;
}

std::int64_t rows::affected() const noexcept {
  if (r_ == nullptr) {
    return 0;
  }
  const char* s = pq().PQcmdTuples(r_);
  std::int64_t n = 0;
  std::from_chars(s, s + std::strlen(s), n);
  return n;
}

std::string_view rows::get(int row, int col) const noexcept {
  if (r_ == nullptr || pq().PQgetisnull(r_, row, col) != 0) {
    return {};
  }
  return {pq().PQgetvalue(r_, row, col), static_cast<std::size_t>(pq().PQgetlength(r_, row, col))};
}

bool rows::is_null(int row, int col) const noexcept {
  return r_ == nullptr || pq().PQgetisnull(r_, row, col) != 0;
}

std::int64_t rows::get_int(int row, int col) const noexcept {
  auto s = get(row, col);
  std::int64_t n = 0;
  std::from_chars(s.data(), s.data() + s.size(), n);
  return n;
}

connection& connection::operator=(connection&& o) noexcept {
  if (this != &o) {
    close();
    c_ = std::exchange(o.c_, nullptr);
  }
  return *this;
}

connection::~connection() {
  close();
}

void connection::close() noexcept {
  if (c_ != nullptr) {
    pq().PQfinish(c_);
    c_ = nullptr;
  }
}

bool connection::broken() const noexcept {
  return c_ == nullptr || pq().PQstatus(c_) != CONNECTION_OK;
}

result<connection> connection::open(const std::string& url, std::chrono::milliseconds timeout,
                                    bool durable_commits) {
  if (const auto& lib = load_libpq(); !lib.error.empty()) {
    return unavailable(lib.error);
  }
  // The session settings go after whatever `options` the URL itself gives.
  std::string options;
  {
    char* err = nullptr;
    PQconninfoOption* parsed = pq().PQconninfoParse(url.c_str(), &err);
    if (parsed == nullptr) {
      std::string why = err != nullptr ? err : "malformed connection URL";
      pq().PQfreemem(err);
      if (auto nl = why.find('\n'); nl != std::string::npos) {
        why.resize(nl);
      }
      return unavailable(why);
    }
    for (auto* o = parsed; o->keyword != nullptr; ++o) {
      if (std::string_view{o->keyword} == "options" && o->val != nullptr) {
        options = o->val;
        options += ' ';
      }
    }
    pq().PQconninfoFree(parsed);
  }
  options +=
      "-c statement_timeout=10000 -c idle_in_transaction_session_timeout=15000 "
      "-c client_min_messages=warning";
  if (!durable_commits) {
    options += " -c synchronous_commit=off";
  }
  // Non-blocking connect (PQconnectStartParams + PQconnectPoll) so that `timeout` bounds every
  // step, DNS aside. The URL is expanded first; the keywords after it override or add settings.
  const char* keys[] = {"dbname", "application_name", "options", nullptr};
  const char* values[] = {url.c_str(), "inferbridge", options.c_str(), nullptr};
  PGconn* c = pq().PQconnectStartParams(keys, values, 1);
  connection out{c};
  if (c == nullptr || pq().PQstatus(c) == CONNECTION_BAD) {
    return unavailable(conn_message(c));
  }
  const auto deadline = clock::now() + timeout;
  for (auto st = PGRES_POLLING_WRITING;;) {
    if (st == PGRES_POLLING_OK) {
      break;
    }
    if (st == PGRES_POLLING_FAILED) {
      return unavailable(conn_message(c));
    }
    const short ev = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
    if (!wait_fd(pq().PQsocket(c), ev, deadline)) {
      return unavailable("connecting took longer than " + std::to_string(timeout.count()) + " ms");
    }
    st = pq().PQconnectPoll(c);
  }
  if (pq().PQsetnonblocking(c, 1) != 0) {
    return unavailable(conn_message(c));
  }
  return out;
}

result<rows> connection::exec(std::string_view sql, std::initializer_list<param> params,
                              clock::time_point deadline) {
  return exec(sql, std::vector<param>(params), deadline);
}

result<rows> connection::exec(std::string_view sql, const std::vector<param>& params,
                              clock::time_point deadline) {
  // libpq wants NUL-terminated strings: copy each value (parameters are short).
  std::vector<std::string> owned;
  owned.reserve(params.size());
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) {
    if (p) {
      owned.emplace_back(*p);
      values.push_back(owned.back().c_str());
    } else {
      values.push_back(nullptr);
    }
  }
  return exec_raw(sql, static_cast<int>(values.size()), values.data(), deadline);
}

result<rows> connection::exec_raw(std::string_view sql_view, int n, const char* const* values,
                                  clock::time_point deadline) {
  if (broken()) {
    return unavailable(c_ == nullptr ? "not connected" : conn_message(c_));
  }
  const std::string sql(sql_view);
  auto fail = [this](std::string why) -> error {
    close();  // the server aborts whatever this connection left open
    return unavailable(std::move(why));
  };
  if (pq().PQsendQueryParams(c_, sql.c_str(), n, nullptr, values, nullptr, nullptr, 0) == 0) {
    return fail(conn_message(c_));
  }
  const int fd = pq().PQsocket(c_);
  // Flush the query (non-blocking mode), then read until the whole result is in.
  for (;;) {
    int f = pq().PQflush(c_);
    if (f == 0) {
      break;
    }
    if (f < 0) {
      return fail(conn_message(c_));
    }
    if (!wait_fd(fd, POLLIN | POLLOUT, deadline)) {
      return fail("the statement missed its deadline");
    }
    if (pq().PQconsumeInput(c_) == 0) {
      return fail(conn_message(c_));
    }
  }
  rows last;
  std::optional<error> err;
  for (;;) {
    while (pq().PQisBusy(c_) != 0) {
      if (!wait_fd(fd, POLLIN, deadline)) {
        return fail("the statement missed its deadline");
      }
      if (pq().PQconsumeInput(c_) == 0) {
        return fail(conn_message(c_));
      }
    }
    PGresult* r = pq().PQgetResult(c_);
    if (r == nullptr) {
      break;
    }
    rows current{r};
    auto st = pq().PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
      last = std::move(current);
      continue;
    }
    if (!err) {
      const char* state = pq().PQresultErrorField(r, PG_DIAG_SQLSTATE);
      const char* primary = pq().PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
      std::string msg = primary != nullptr ? primary : "SQL error";
      std::string code = state != nullptr ? state : "";
      if (code == "23505") {
        err = error{errc::conflict, msg};
      } else if (code.starts_with("08") || code.starts_with("57P") || code == "25P03") {
        // connection exceptions, admin shutdown / crash, idle-in-transaction timeout
        err = unavailable(msg);
      } else {
        err = error{errc::storage, "database error " + code + ": " + msg};
      }
    }
  }
  if (err && broken()) {
    // The server went away mid-statement (its result says "server closed the connection"): a
    // reachability failure, not a SQL error.
    return fail(conn_message(c_));
  }
  if (err) {
    return *err;
  }
  return last;  // done, even if the connection closed right after (release() drops it)
}

result<std::vector<notification>> connection::poll_notifications() {
  if (broken()) {
    return unavailable(c_ == nullptr ? "not connected" : conn_message(c_));
  }
  if (pq().PQconsumeInput(c_) == 0) {
    auto why = conn_message(c_);
    close();
    return unavailable(std::move(why));
  }
  std::vector<notification> out;
  while (PGnotify* n = pq().PQnotifies(c_)) {
    out.push_back(notification{n->relname, n->extra});
    pq().PQfreemem(n);
  }
  return out;
}

result<bool> connection::wait_readable(std::chrono::milliseconds timeout) {
  if (broken()) {
    return unavailable(c_ == nullptr ? "not connected" : conn_message(c_));
  }
  return wait_fd(pq().PQsocket(c_), POLLIN, clock::now() + timeout);
}

std::string to_hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 15]);
  }
  return out;
}

std::optional<std::string> from_hex(std::string_view hex) {
  if (hex.size() % 2 != 0) {
    return std::nullopt;
  }
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9')
      return c - '0';
    if (c >= 'a' && c <= 'f')
      return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
      return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    int hi = nibble(hex[i]);
    int lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) {
      return std::nullopt;
    }
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

}  // namespace ib::storage::pg
