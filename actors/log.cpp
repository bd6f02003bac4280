#include "actors/log.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <utility>
#include <vector>

#include <unistd.h>

#include "core/json.hpp"
#include "core/request_record.hpp"

namespace ib::actors {

namespace {

std::int64_t now_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// -- text format ----------------------------------------------------------------------------------

/// A text value: as it is, or quoted when it would not read back as one token. Control
/// characters become `?` so a value can never start a new line.
void append_text_value(std::string& out, std::string_view v) {
  bool quote = v.empty();
  for (char c : v) {
    if (c == ' ' || c == '"' || c == '=') {
      quote = true;
    }
  }
  if (quote) {
    out += '"';
  }
  for (char c : v) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      out += '?';
    } else if (c == '"' && quote) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  if (quote) {
    out += '"';
  }
}

void append_text_field(std::string& out, std::string_view key, std::string_view value) {
  out += ' ';
  out += key;
  out += '=';
  append_text_value(out, value);
}

void start_text_line(std::string& out, std::int64_t unix_ms, log_level level,
                     std::string_view msg) {
  out += rfc3339_ms(unix_ms);
  out += ' ';
  if (level != log_level::info) {
    out += to_string(level);
    out += ": ";
  }
  for (char c : msg) {
    const auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7f) ? '?' : c;
  }
}

// -- json format ----------------------------------------------------------------------------------

void start_json_line(json_writer& w, std::int64_t unix_ms, log_level level, std::string_view msg) {
  w.start_object();
  w.key("time").string(rfc3339_ms(unix_ms));
  w.key("level").string(to_string(level));
  w.key("msg").string(msg);
}

void write_json_usage(json_writer& w, const request_record& r) {
  w.key("usage");
  if (!r.tokens) {
    w.null();
    return;
  }
  w.start_object();
  w.key("prompt_tokens").integer(r.tokens->prompt_tokens);
  w.key("completion_tokens").integer(r.tokens->completion_tokens);
  w.key("total_tokens").integer(r.tokens->total_tokens);
  w.key("cached_tokens").integer(r.tokens->cached_tokens);
  w.end_object();
}

/// Writes everything of a batch, retrying short writes; gives up on any other error (a closed
/// stdout must not stop the gateway).
void write_stdout(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(STDOUT_FILENO, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

}  // namespace

// -- pure -----------------------------------------------------------------------------------------

std::string_view to_string(log_level l) noexcept {
  switch (l) {
    case log_level::debug:
      return "debug";
    case log_level::info:
      return "info";
    case log_level::warn:
      return "warn";
    case log_level::error:
      return "error";
  }
  return "unknown";
}

std::string_view to_string(log_format f) noexcept {
  switch (f) {
    case log_format::json:
      return "json";
    case log_format::text:
      return "text";
  }
  return "unknown";
}

std::optional<log_level> parse_log_level(std::string_view text) noexcept {
  for (auto l : {log_level::debug, log_level::info, log_level::warn, log_level::error}) {
    if (text == to_string(l)) {
      return l;
    }
  }
  return std::nullopt;
}

std::optional<log_format> parse_log_format(std::string_view text) noexcept {
  for (auto f : {log_format::json, log_format::text}) {
    if (text == to_string(f)) {
      return f;
    }
  }
  return std::nullopt;
}

std::string rfc3339_ms(std::int64_t unix_ms) {
  if (unix_ms < 0) {
    unix_ms = 0;
  }
  const auto secs = static_cast<std::time_t>(unix_ms / 1000);
  const auto ms = static_cast<int>(unix_ms % 1000);
  // The calendar part changes once a second: each thread formats it once per second (gmtime_r
  // and snprintf were a measurable part of the access line's cost at ~35 k lines/s).
  thread_local std::time_t cached_secs = -1;
  thread_local char cached[80];  // room for any int the format could print
  if (secs != cached_secs) {
    std::tm tm{};
    gmtime_r(&secs, &tm);
    std::snprintf(cached, sizeof cached, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    cached_secs = secs;
  }
  std::string stamp;
  stamp.reserve(24);
  stamp += cached;
  stamp += '.';
  stamp += static_cast<char>('0' + ms / 100);
  stamp += static_cast<char>('0' + ms / 10 % 10);
  stamp += static_cast<char>('0' + ms % 10);
  stamp += 'Z';
  return stamp;
}

std::string format_line(log_format format, std::int64_t unix_ms, log_level level,
                        std::string_view msg, std::span<const log_field> fields) {
  std::string out;
  out.reserve(96 + msg.size() + 24 * fields.size());
  if (format == log_format::text) {
    start_text_line(out, unix_ms, level, msg);
    for (const auto& f : fields) {
      switch (f.type()) {
        case log_field::kind::string:
          append_text_field(out, f.key(), f.text());
          break;
        case log_field::kind::integer:
          append_text_field(out, f.key(), std::to_string(f.integer()));
          break;
        case log_field::kind::boolean:
          append_text_field(out, f.key(), f.boolean() ? "true" : "false");
          break;
      }
    }
  } else {
    json_writer w(out);
    start_json_line(w, unix_ms, level, msg);
    for (const auto& f : fields) {
      w.key(f.key());
      switch (f.type()) {
        case log_field::kind::string:
          w.string(f.text());
          break;
        case log_field::kind::integer:
          w.integer(f.integer());
          break;
        case log_field::kind::boolean:
          w.boolean(f.boolean());
          break;
      }
    }
    w.end_object();
    w.out();
  }
  out += '\n';
  return out;
}

std::string format_access_line(log_format format, std::int64_t unix_ms, const request_record& r) {
  std::string out;
  out.reserve(384 + 64 * r.attempts.size());
  const std::string overhead = overhead_ms_text(r.overhead_us);
  if (format == log_format::text) {
    start_text_line(out, unix_ms, log_level::info, "request");
    append_text_field(out, "request_id", r.id);
    append_text_field(out, "user_id", r.user_id);
    append_text_field(out, "tier", r.tier.empty() ? "-" : r.tier);
    append_text_field(out, "model", r.model);
    append_text_field(out, "provider", r.provider.empty() ? "-" : r.provider);
    append_text_field(out, "upstream_model", r.upstream_model.empty() ? "-" : r.upstream_model);
    append_text_field(out, "status", std::to_string(r.status));
    append_text_field(out, "latency_ms", std::to_string(r.latency_ms));
    append_text_field(out, "ttfb_ms", r.ttfb_ms ? std::to_string(*r.ttfb_ms) : "-");
    append_text_field(out, "overhead_ms", overhead);
    std::string attempts;
    for (const auto& a : r.attempts) {
      if (!attempts.empty()) {
        attempts += ',';
      }
      attempts += a.provider;
      attempts += ':';
      attempts += a.status != 0 ? std::to_string(a.status) : a.reason;
      attempts += ':';
      attempts += std::to_string(a.latency_ms);
      attempts += "ms";
    }
    append_text_field(out, "attempts", attempts.empty() ? "-" : attempts);
    append_text_field(out, "stream", r.stream ? "true" : "false");
    if (r.tokens) {
      append_text_field(out, "prompt_tokens", std::to_string(r.tokens->prompt_tokens));
      append_text_field(out, "completion_tokens", std::to_string(r.tokens->completion_tokens));
      append_text_field(out, "total_tokens", std::to_string(r.tokens->total_tokens));
    }
  } else {
    json_writer w(out);
    start_json_line(w, unix_ms, log_level::info, "request");
    w.key("request_id").string(r.id);
    w.key("user_id").string_or_null(r.user_id);
    w.key("tier").string_or_null(r.tier);
    w.key("model").string(r.model);
    w.key("provider").string_or_null(r.provider);
    w.key("upstream_model").string_or_null(r.upstream_model);
    w.key("status").integer(r.status);
    w.key("latency_ms").integer(r.latency_ms);
    w.key("ttfb_ms").integer_or_null(r.ttfb_ms);
    w.key("overhead_ms").raw(overhead, rapidjson::kNumberType);
    write_json_attempts(w, r.attempts);
    w.key("stream").boolean(r.stream);
    write_json_usage(w, r);
    w.end_object();
    w.out();
  }
  out += '\n';
  return out;
}

// -- logger ---------------------------------------------------------------------------------------

logger::logger(logger_options opts)
    : level_(static_cast<std::uint8_t>(opts.level)),
      format_(static_cast<std::uint8_t>(opts.format)),
      opts_(std::move(opts)) {
  if (!opts_.sink) {
    opts_.sink = write_stdout;
  }
  if (opts_.max_queued_lines == 0) {
    opts_.max_queued_lines = 1;
  }
  thread_ = std::thread([this] { run(); });
}

logger::~logger() {
  {
    std::lock_guard lock{mutex_};
    stop_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void logger::configure(log_level level, log_format format) noexcept {
  level_.store(static_cast<std::uint8_t>(level), std::memory_order_relaxed);
  format_.store(static_cast<std::uint8_t>(format), std::memory_order_relaxed);
}

void logger::log(log_level level, std::string_view msg, std::initializer_list<log_field> fields) {
  if (!enabled(level)) {
    return;
  }
  const auto format = static_cast<log_format>(format_.load(std::memory_order_relaxed));
  push(format_line(format, now_unix_ms(), level, msg, {fields.begin(), fields.size()}));
}

void logger::access(const request_record& r) {
  if (!enabled(log_level::info)) {
    return;
  }
  const auto format = static_cast<log_format>(format_.load(std::memory_order_relaxed));
  push(format_access_line(format, now_unix_ms(), r));
}

std::uint64_t logger::dropped() const {
  std::lock_guard lock{mutex_};
  return dropped_;
}

void logger::flush() {
  std::unique_lock lock{mutex_};
  flush_requested_ = true;
  wake_.notify_one();
  // Everything queued now is written once the queue is empty and no batch is in the writer's
  // hands.
  drained_.wait(lock, [this] { return (queue_.empty() && !writing_) || stop_; });
}

bool logger::flush_for(std::chrono::milliseconds limit) {
  std::unique_lock lock{mutex_};
  flush_requested_ = true;
  wake_.notify_one();
  return drained_.wait_for(lock, limit, [this] { return (queue_.empty() && !writing_) || stop_; });
}

void logger::push(std::string line) {
  bool wake = false;
  {
    std::lock_guard lock{mutex_};
    if (queued_lines_ >= opts_.max_queued_lines) {
      ++dropped_;
      return;
    }
    queue_ += line;
    // Woken by a batch's first line (an idle writer sleeps without a deadline) and when the
    // queue reaches the mark, not per line (see `flush_interval`).
    ++queued_lines_;
    wake = queued_lines_ == 1 || queued_lines_ == opts_.wake_at_lines;
  }
  if (wake) {
    wake_.notify_one();
  }
}

void logger::run() {
  using clock = std::chrono::steady_clock;
  std::uint64_t reported = 0;
  auto next_report = clock::now() + opts_.drop_report_interval;
  std::string batch;
  std::unique_lock lock{mutex_};
  for (;;) {
    // Idle (nothing queued, no drop to report): sleep until a line, a flush or the stop, so that
    // an idle gateway's writer does not wake every `flush_interval`.
    if (dropped_ == reported) {
      wake_.wait(lock, [this] { return queued_lines_ > 0 || flush_requested_ || stop_; });
      next_report = std::max(next_report, clock::now() + opts_.drop_report_interval);
    }
    const auto due = std::min(next_report, clock::now() + opts_.flush_interval);
    wake_.wait_until(lock, due, [this] {
      return queued_lines_ >= opts_.wake_at_lines || flush_requested_ || stop_;
    });
    flush_requested_ = false;
    batch.clear();
    batch.swap(queue_);  // the queue keeps the batch's old capacity
    queued_lines_ = 0;
    const bool stopping = stop_;
    std::string report;
    if (clock::now() >= next_report || stopping) {
      next_report = clock::now() + opts_.drop_report_interval;
      if (dropped_ != reported) {
        const auto since = static_cast<std::int64_t>(dropped_ - reported);
        reported = dropped_;
        const auto format = static_cast<log_format>(format_.load(std::memory_order_relaxed));
        const log_field fields[] = {{"dropped", since},
                                    {"dropped_total", static_cast<std::int64_t>(reported)}};
        report = format_line(format, now_unix_ms(), log_level::warn, "log lines dropped", fields);
      }
    }
    writing_ = true;
    lock.unlock();
    batch += report;
    if (!batch.empty()) {
      opts_.sink(batch);
    }
    lock.lock();
    writing_ = false;
    if (queue_.empty()) {
      drained_.notify_all();
    }
    if (stopping && queue_.empty()) {
      return;
    }
  }
}

// -- the process logger ---------------------------------------------------------------------------

logger& process_logger() {
  // Deliberately never deleted (see the header): destroying it at exit would join a writer
  // thread that may be blocked in write(2) for good. Reachable from this static, so no leak.
  static logger& instance = *new logger{logger_options{}};
  return instance;
}

void configure_logging(log_level level, log_format format) {
  process_logger().configure(level, format);
}

void log(log_level level, std::string_view msg, std::initializer_list<log_field> fields) {
  process_logger().log(level, msg, fields);
}

void log_line(std::string_view line) {
  process_logger().log(log_level::warn, line);
}

}  // namespace ib::actors
