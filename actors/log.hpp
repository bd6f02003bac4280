#pragma once

#include <atomic>
#include <chrono>
#include <concepts>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>

#include "config/config.hpp"

/// The gateway's one logger: access lines (one per finished chat request), startup, breaker
/// transitions and errors, all in one format on stdout. A line is `{"time","level","msg",...}`
/// (JSON, the default) or `<time> <msg> key=value ...` (text); `time` is RFC 3339 UTC with
/// milliseconds. Lines never hold request bodies, completions, keys or e-mail addresses: callers
/// pass metadata only.
namespace ib {
struct request_record;
}

namespace ib::actors {

// -- levels, formats, fields (pure) ---------------------------------------------------------------

/// Severity of a line (config/config.hpp): debug < info < warn < error; a logger writes lines
/// at or above its level.
using config::log_level;
/// How a line is written (config/config.hpp): `json` (through `json_writer`) or `text`.
using config::log_format;

/// The config spelling of `l`: "debug", "info", "warn" or "error".
std::string_view to_string(log_level l) noexcept;
/// The config spelling of `f`: "json" or "text".
std::string_view to_string(log_format f) noexcept;
/// Parses "debug", "info", "warn" or "error" (exactly, lower case); nullopt for anything else.
std::optional<log_level> parse_log_level(std::string_view text) noexcept;
/// Parses "json" or "text" (exactly, lower case); nullopt for anything else.
std::optional<log_format> parse_log_format(std::string_view text) noexcept;

/// One extra member of a line: a key and a string, integer or boolean value. The views must
/// outlive the `format_line` / `logger::log` call (the line is formatted during the call).
class log_field {
 public:
  /// A string field (written as a JSON string; invalid UTF-8 becomes U+FFFD).
  log_field(std::string_view key, std::string_view value) noexcept
      : key_(key), kind_(kind::string), text_(value) {}
  /// A string field from a literal.
  log_field(std::string_view key, const char* value) noexcept
      : log_field(key, std::string_view{value}) {}
  /// A string field from a string (viewed, not copied).
  log_field(std::string_view key, const std::string& value) noexcept
      : log_field(key, std::string_view{value}) {}
  /// An integer field.
  template <std::integral T>
  requires(!std::same_as<T, bool>) log_field(std::string_view key, T value)
  noexcept : key_(key), kind_(kind::integer), integer_(static_cast<std::int64_t>(value)) {}
  /// A boolean field.
  log_field(std::string_view key, bool value) noexcept
      : key_(key), kind_(kind::boolean), boolean_(value) {}

  /// What a field holds.
  enum class kind : std::uint8_t { string, integer, boolean };

  std::string_view key() const noexcept { return key_; }
  kind type() const noexcept { return kind_; }
  std::string_view text() const noexcept { return text_; }    ///< for kind::string
  std::int64_t integer() const noexcept { return integer_; }  ///< for kind::integer
  bool boolean() const noexcept { return boolean_; }          ///< for kind::boolean

 private:
  std::string_view key_;
  kind kind_;
  std::string_view text_;
  std::int64_t integer_ = 0;
  bool boolean_ = false;
};

/// `unix_ms` (milliseconds since the Unix epoch) as RFC 3339 UTC with milliseconds, e.g.
/// `2026-11-30T05:50:52.123Z`. Times before 1970 are written as 1970-01-01T00:00:00.000Z.
std::string rfc3339_ms(std::int64_t unix_ms);

/// One line, ending in `\n`. JSON: `{"time","level","msg",<fields in order>}` (a field named
/// like one of the first three is written as well; do not do that). Text: `<time> <msg>` with
/// `warn: ` / `error: ` / `debug: ` before `msg` below or above info, then ` key=value` per
/// field (strings quoted only when they hold a space, `"` or `=`; control characters as `?`).
/// Pure: no clock, no I/O.
std::string format_line(log_format format, std::int64_t unix_ms, log_level level,
                        std::string_view msg, std::span<const log_field> fields);

/// The access line of one finished chat request, ending in `\n` (level info, msg "request").
/// JSON members, in order: `time`, `level`, `msg`, `request_id`, `user_id` (the `usr_...` id,
/// never the e-mail), `tier` (null for a direct `provider/model` route), `model` (as requested),
/// `provider`, `upstream_model` (null when none served), `status`, `latency_ms`, `ttfb_ms` (null
/// unless streamed), `overhead_ms` (from `overhead_us`, a number with 3 decimals; 0.000 when
/// negative), `attempts`
/// (`[{"provider","status"|"reason","latency_ms"}]` as in the record), `stream`, `usage`
/// (`{"prompt_tokens","completion_tokens","total_tokens","cached_tokens"}` or null). `time` is
/// `unix_ms` (when the line is written), not the record's `created_us`. Never a prompt, a
/// completion or a key: the record holds none. Pure.
std::string format_access_line(log_format format, std::int64_t unix_ms, const request_record& r);

// -- the logger -----------------------------------------------------------------------------------

/// Where a logger writes and how much it keeps.
struct logger_options {
  log_level level = log_level::info;
  log_format format = log_format::json;
  /// Lines waiting for the writer thread at most; a line logged while the queue is full is
  /// dropped and counted (`dropped()`), so a slow stdout never blocks a request.
  std::size_t max_queued_lines = 8192;
  /// Receives batches of whole lines (each ending in `\n`), on the writer thread only. Empty:
  /// write(2) to stdout (fd 1), retrying short writes and EINTR; other errors lose the batch.
  std::function<void(std::string_view)> sink;
  /// Reports lost lines this often, as one warn line `{"msg":"log lines dropped","dropped":n,
  /// "dropped_total":m}` (only when lines were dropped since the last report), in milliseconds.
  std::chrono::milliseconds drop_report_interval{1000};
  /// The writer collects a batch this long, in milliseconds, from the batch's first line, or
  /// less when `wake_at_lines` lines are queued (or on `flush`, or at stop): loggers do not wake
  /// it per line. With nothing queued it sleeps until a line comes. Measured with
  /// bench/run.sh (2026-11-30, 2 cores, ~37 k requests/s): waking the writer per access line (a
  /// futex wake, a context switch and a write(2) per handful of lines) cost about 7 µs CPU per
  /// request; batching brings the access log's cost down to the formatting of its line.
  std::chrono::milliseconds flush_interval{10};
  std::size_t wake_at_lines = 512;
};

/// A bounded, non-blocking line logger: `log` and `access` format the line on the caller's
/// thread and append it to an in-memory queue (one short mutex hold; never I/O); one writer
/// thread owned by the logger drains the queue in batches into the sink. Thread-safe. The
/// destructor writes what is queued, then joins the writer thread.
class logger {
 public:
  /// Starts the writer thread.
  explicit logger(logger_options opts);
  logger(const logger&) = delete;
  logger& operator=(const logger&) = delete;
  /// Drains the queue into the sink and joins the writer thread.
  ~logger();

  /// True when a line at `level` would be written (cheap: one relaxed atomic load).
  bool enabled(log_level level) const noexcept {
    return static_cast<std::uint8_t>(level) >= level_.load(std::memory_order_relaxed);
  }
  /// Changes the level and format of later lines (thread-safe).
  void configure(log_level level, log_format format) noexcept;

  /// Queues `msg` with `fields` at `level` when enabled; the time is read here (system clock).
  void log(log_level level, std::string_view msg, std::initializer_list<log_field> fields = {});
  /// Queues the access line of `r` (level info) when info is enabled.
  void access(const request_record& r);

  /// Lines dropped so far because the queue was full.
  std::uint64_t dropped() const;
  /// Blocks until every line queued before the call reached the sink (tests).
  void flush();
  /// As `flush`, for at most `limit` (shutdown: a stdout nobody reads must not hang the
  /// process). Returns false when lines were still waiting after `limit`.
  bool flush_for(std::chrono::milliseconds limit);

 private:
  void push(std::string line);
  void run();

  std::atomic<std::uint8_t> level_;
  std::atomic<std::uint8_t> format_;
  logger_options opts_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;     ///< the writer: many lines queued, flush, or stop
  std::condition_variable drained_;  ///< `flush`: the writer emptied the queue
  std::string queue_;                ///< whole lines, appended
  std::size_t queued_lines_ = 0;
  std::uint64_t dropped_ = 0;
  bool writing_ = false;  ///< the writer holds a batch outside the lock
  bool flush_requested_ = false;
  bool stop_ = false;
  std::thread thread_;
};

// -- the process logger ---------------------------------------------------------------------------

/// The process-wide logger (JSON, info, stdout until `configure_logging`), created on first use
/// and never destroyed: its writer thread may be stuck on a stdout that nobody reads, and a
/// process must still be able to exit. Call `flush_for` before exiting to write what it holds.
logger& process_logger();

/// Sets the process logger's level and format (app/main.cpp, from the config and IB_LOG_LEVEL).
void configure_logging(log_level level, log_format format);

/// Logs `msg` with `fields` at `level` through the process logger. Never pass request content,
/// completions, keys or e-mail addresses.
void log(log_level level, std::string_view msg, std::initializer_list<log_field> fields = {});

/// Logs `line` at level warn through the process logger (the older free-text form; prefer `log`
/// with a level and fields). Never pass request content, completions or keys.
void log_line(std::string_view line);

}  // namespace ib::actors
