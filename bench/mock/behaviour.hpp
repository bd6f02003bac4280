#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <rapidjson/document.h>

namespace ib::mock {

/// What a response is before any fault is applied to its bytes.
enum class reply_kind : std::uint8_t {
  ok,              // the provider's happy path (JSON, or SSE when the request streams)
  status,          // `status` with the provider's own error body
  html,            // `status` with a Cloudflare-like text/html page
  empty,           // `status` with an empty body
  raw,             // `status` with a scripted body and content type
  reset_before,    // read the request, then RST without a byte of response
  keepalive,       // 200 headers, then keep-alive bytes until the client leaves (cap 10 min)
  malformed_body,  // 200 application/json `{"id":`
  error_200,       // 200 with the provider's error body
};

/// Where a response body stops being well-formed.
enum class cut_kind : std::uint8_t {
  none,
  stall_mid,         // silence after `cut_after` content chunks (non-stream: after half the body)
  reset_mid,         // RST after `cut_after` content chunks (non-stream: after half the body)
  inband_error,      // an error event after `cut_after` content chunks, then close
  truncate_fin,      // no terminal event, clean end of body, FIN (non-stream: EOF-delimited half)
  truncate_chunked,  // no terminal event and no terminating 0-chunk, FIN
  truncate_length,   // Content-Length larger than the bytes sent, FIN
};

/// The longest any timing fault may hold a connection.
inline constexpr std::chrono::milliseconds max_hold{10 * 60 * 1000};

/// Everything that selects how the mock answers one chat request. Built from the model id
/// (`mock-a+b+c`) or from one script step; later tokens override earlier ones.
struct behaviour {
  reply_kind kind = reply_kind::ok;
  int status = 200;
  std::optional<std::string> retry_after;     // `Retry-After: <value>`
  int retry_after_date_secs = -1;             // >= 0: Retry-After as an HTTP-date this far ahead
  std::optional<std::string> retry_after_ms;  // `retry-after-ms: <value>`
  std::optional<bool> should_retry;           // `x-should-retry: true|false`
  std::chrono::milliseconds stall_headers{0};
  std::chrono::milliseconds stall_first_byte{0};
  std::chrono::milliseconds chunk_delay{0};
  std::chrono::milliseconds keepalive_every{0};
  cut_kind cut = cut_kind::none;
  int cut_after = 0;
  bool malformed_event = false;
  bool empty_choices = false;
  bool crlf = false;
  bool multiline_data = false;
  bool split_utf8 = false;
  bool trickle = false;
  bool big = false;
  bool burst = false;  // write a whole stream at once (load benchmarks)
  bool stamp = false;  // each stream event's JSON carries its send time (`x_mock_sent_ns`)
  bool reasoner = false;
  int content_chunks = 0;  // `chunks-<n>`: the reply's text in n content chunks (0: the default 3)
  std::string body;        // reply_kind::raw
  std::string content_type;  // reply_kind::raw; empty means application/json
  std::vector<std::pair<std::string, std::string>> headers;  // extra response headers
};

/// Applies `spec`, a `+`-separated list of behaviour tokens (each may carry a `mock-` prefix), to
/// `b`. Returns an empty string, or a message naming the first token it does not understand.
std::string apply_tokens(std::string_view spec, behaviour& b);

/// Builds `b` from one script step such as `{"status":429,"retry_after":"7"}`. Returns an empty
/// string, or a message naming the offending field.
std::string parse_step(const rapidjson::Value& step, behaviour& b);

}  // namespace ib::mock
