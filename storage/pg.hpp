#pragma once

// A thin layer over libpq (PostgreSQL's C client, https://www.postgresql.org/docs/15/libpq.html):
// a connection whose every statement is bounded in time, results as text, and notifications.
// libpq.so.5 is loaded by the first `connection::open` (a gateway on LMDB never maps it); when it
// cannot be, that open fails with `errc::unavailable` and says why.
// Internal to storage/ and actors/cluster: nothing else talks to PostgreSQL.

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.hpp"

struct pg_conn;
struct pg_result;

namespace ib::storage::pg {

using clock = std::chrono::steady_clock;

/// One statement's result: rows of text values (libpq's text format). Move-only.
class rows {
 public:
  rows() = default;
  explicit rows(pg_result* r) noexcept : r_(r) {}
  rows(rows&& o) noexcept : r_(std::exchange(o.r_, nullptr)) {}
  rows& operator=(rows&& o) noexcept;
  rows(const rows&) = delete;
  rows& operator=(const rows&) = delete;
  ~rows();

  /// Number of rows returned (0 for a command that returns none).
  int size() const noexcept;
  /// Rows affected by an INSERT/UPDATE/DELETE (PQcmdTuples), 0 when not applicable.
  std::int64_t affected() const noexcept;
  /// The value at (`row`, `col`) as text; empty for NULL. Bounds are the caller's to respect.
  std::string_view get(int row, int col) const noexcept;
  /// True when the value at (`row`, `col`) is NULL.
  bool is_null(int row, int col) const noexcept;
  /// `get` parsed as a decimal integer; 0 for NULL or garbage.
  std::int64_t get_int(int row, int col) const noexcept;

 private:
  pg_result* r_ = nullptr;
};

/// A notification received by a LISTENing connection.
struct notification {
  std::string channel;
  std::string payload;  ///< at most 8000 bytes (PostgreSQL's limit)
};

/// A statement parameter: text, or NULL (nullopt).
using param = std::optional<std::string_view>;

/// One libpq connection. Not thread-safe: one thread uses it at a time. Every call is blocking
/// on the calling thread but bounded: each takes a deadline, and a connection whose statement
/// missed its deadline is closed (the server then aborts any transaction it had open, so an
/// uncommitted write never takes effect).
///
/// Errors: errc::unavailable when the server cannot be reached, the connection broke or a
/// deadline passed (the connection is then `broken()`); errc::conflict for a unique violation
/// (SQLSTATE 23505); errc::storage for any other SQL error. Messages never carry parameters.
class connection {
 public:
  connection() = default;
  connection(connection&& o) noexcept : c_(std::exchange(o.c_, nullptr)) {}
  connection& operator=(connection&& o) noexcept;
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;
  ~connection();

  /// Connects to `url` (a libpq connection URI or key=value string, `sslmode` and the rest as
  /// libpq reads them) within `timeout`, with the session settings the gateway relies on
  /// (`statement_timeout`, `idle_in_transaction_session_timeout`, application_name
  /// `inferbridge`) added to any `options` the URL gives. With `durable_commits` false the
  /// session also sets `synchronous_commit=off`: a commit returns (and its notifications go out)
  /// without waiting for the WAL flush — for state that may be lost in a database crash (breaker
  /// health), never for users and keys. errc::unavailable (with libpq's message, which names no
  /// password) when it fails.
  static result<connection> open(const std::string& url, std::chrono::milliseconds timeout,
                                 bool durable_commits = true);

  /// Runs one statement with `params` ($1, $2, ... as text) and returns its rows; the deadline
  /// bounds sending, running and reading.
  result<rows> exec(std::string_view sql, std::initializer_list<param> params,
                    clock::time_point deadline);
  /// As above with a vector of parameters.
  result<rows> exec(std::string_view sql, const std::vector<param>& params,
                    clock::time_point deadline);

  /// Reads what the server sent without blocking and returns the notifications received so far.
  /// errc::unavailable when the connection broke.
  result<std::vector<notification>> poll_notifications();

  /// Waits until the server sends something (or `timeout` passes); true when readable.
  /// errc::unavailable when the connection is broken.
  result<bool> wait_readable(std::chrono::milliseconds timeout);

  /// True when the connection is unusable (never opened, lost, or a deadline passed).
  bool broken() const noexcept;
  /// Closes the connection.
  void close() noexcept;

 private:
  explicit connection(pg_conn* c) noexcept : c_(c) {}
  result<rows> exec_raw(std::string_view sql, int n, const char* const* values,
                        clock::time_point deadline);
  pg_conn* c_ = nullptr;
};

/// Hex of `bytes` (lower case), for storing digests as text.
std::string to_hex(std::string_view bytes);
/// The bytes of lower- or upper-case hex `hex`; nullopt when it is not hex of even length.
std::optional<std::string> from_hex(std::string_view hex);

}  // namespace ib::storage::pg
