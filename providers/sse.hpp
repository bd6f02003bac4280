#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ib {
class json_writer;
}  // namespace ib

namespace ib::providers {

/// Starts an OpenAI `chat.completion.chunk` SSE event in `w` (API reference, "The chat
/// completion chunk object"): appends `data: ` and writes `{"id":…,"object":
/// "chat.completion.chunk","created":…,"model":…`, leaving the object open for the caller's
/// members (`choices`, `usage`). `created` in Unix seconds.
void start_chunk_event(json_writer& w, std::string_view id, std::int64_t created,
                       std::string_view model);

/// One server-sent event (providers.md §0).
struct sse_event {
  std::string event;  ///< the `event:` name, empty if none
  std::string data;   ///< `data:` lines joined with `\n`
};

/// Incremental SSE parser: raw bytes in (split anywhere, even inside a UTF-8 character or a CRLF
/// pair), complete events out. Lines may end in `\n`, `\r\n` or `\r`; `data:` drops one optional
/// space; comment lines (`:`) are counted, `id:` and `retry:` ignored. An event is dispatched at a
/// blank line, and only if it had at least one `data:` line.
class sse_parser {
 public:
  explicit sse_parser(std::size_t max_event_bytes = 16 * 1024 * 1024) : max_(max_event_bytes) {}

  /// Feeds bytes; calls `on_event(const sse_event&)` for each complete event, in order.
  /// Returns false (and stops) if one event exceeds the size limit.
  template <class F>
  bool feed(std::string_view bytes, F&& on_event) {
    for (char ch : bytes) {
      if (!push(ch)) {
        return false;
      }
      if (ready_) {
        ready_ = false;
        on_event(static_cast<const sse_event&>(current_));
        current_.event.clear();
        current_.data.clear();
        has_data_ = false;
      }
    }
    return true;
  }

  /// Comment lines seen so far (e.g. DeepSeek's `: keep-alive`).
  std::size_t comments() const noexcept { return comments_; }
  /// True while a partial line or event is buffered (a stream that ends now was truncated).
  bool has_partial() const noexcept {
    return !line_.empty() || has_data_ || !current_.event.empty();
  }

 private:
  bool push(char ch);
  bool end_line();

  std::size_t max_;
  std::string line_;
  sse_event current_;
  bool has_data_ = false;
  bool ready_ = false;
  bool last_was_cr_ = false;
  std::size_t comments_ = 0;
};

/// Appends `data: <payload>\n\n` to `out` (an SSE event, WHATWG HTML §9.2). `payload` is copied
/// as it is: JSON we generate is written with `ib::json_writer` first.
void append_sse_data(std::string& out, std::string_view payload);

}  // namespace ib::providers
