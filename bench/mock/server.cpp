#include "bench/mock/server.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <ctime>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/socket.h>

#include "bench/mock/behaviour.hpp"
#include "bench/mock/state.hpp"
#include "bench/mock/wire.hpp"

namespace ib::mock {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using std::chrono::milliseconds;
using namespace net::experimental::awaitable_operators;

using request = http::request<http::string_body>;

constexpr auto nothrow = net::as_tuple(net::use_awaitable);
constexpr std::size_t max_body_bytes = 32u << 20;
constexpr std::size_t max_header_bytes = 64u << 10;
// Between the two halves of a write split inside a UTF-8 character, so they arrive apart.
constexpr milliseconds utf8_split_pause{2};
constexpr std::string_view last_chunk = "0\r\n\r\n";

// `Keep-Alive: timeout=N\r\n` when `--keepalive-timeout` is on, else empty. Set once by
// `run_server` before any connection is served; read-only afterwards.
std::string keep_alive_field;

// GCC 12 miscompiles some coroutine shapes here (seen: `co_return co_await f();` resuming a
// freed frame; temporaries with destructors inside a co_await expression freed twice). So every
// co_await stands alone as a statement or initialiser, its arguments are named variables, and
// results are returned in a separate `co_return`.

std::string_view reason_phrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 402:
      return "Payment Required";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 413:
      return "Payload Too Large";
    case 422:
      return "Unprocessable Entity";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 529:
      return "Site Overloaded";
    default:
      return status < 400 ? "OK" : status < 500 ? "Client Error" : "Server Error";
  }
}

/// The `Date` header value, formatted at most once a second per thread.
std::string_view date_now() {
  thread_local std::time_t last = 0;
  thread_local std::string text;
  auto now = std::time(nullptr);
  if (now != last) {
    last = now;
    text = http_date_in(0);
  }
  return text;
}

/// How the connection goes on after a response.
enum class next : std::uint8_t { keep, close };

/// How a response body is delimited on the wire.
enum class framing : std::uint8_t { length, chunked, until_close };

/// The status line and headers of one response.
struct head_spec {
  int status = 200;
  std::string_view content_type;
  framing frame = framing::length;
  std::size_t length = 0;
  bool keep_alive = true;
};

/// `h` as bytes; with a reply context, also the provider's headers and the behaviour's own.
std::string make_head(const head_spec& h, const reply_context* x) {
  std::string o;
  o.reserve(640);
  o += "HTTP/1.1 ";
  o += std::to_string(h.status);
  o += ' ';
  o += reason_phrase(h.status);
  o += "\r\nDate: ";
  o += date_now();
  o += "\r\n";
  if (!h.content_type.empty()) {
    o += "Content-Type: ";
    o += h.content_type;
    o += "\r\n";
  }
  if (h.frame == framing::length) {
    o += "Content-Length: " + std::to_string(h.length) + "\r\n";
  } else if (h.frame == framing::chunked) {
    o += "Transfer-Encoding: chunked\r\n";
  }
  const bool keeps = h.keep_alive && h.frame != framing::until_close;
  o += keeps ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
  if (keeps) {
    o += keep_alive_field;
  }
  if (x != nullptr) {
    const auto& b = *x->how;
    append_provider_headers(o, x->who, x->n, h.status);
    if (b.kind == reply_kind::html) {
      o += "Server: cloudflare\r\nCF-RAY: 8f0mock" + std::to_string(x->n) + "-BOM\r\n";
    }
    if (b.retry_after_date_secs >= 0) {
      o += "Retry-After: " + http_date_in(b.retry_after_date_secs) + "\r\n";
    } else if (b.retry_after) {
      o += "Retry-After: " + *b.retry_after + "\r\n";
    }
    if (b.retry_after_ms) {
      o += "retry-after-ms: " + *b.retry_after_ms + "\r\n";
    }
    if (b.should_retry) {
      o += *b.should_retry ? "x-should-retry: true\r\n" : "x-should-retry: false\r\n";
    }
    for (const auto& [k, v] : b.headers) {
      o += k + ": " + v + "\r\n";
    }
  }
  o += "\r\n";
  return o;
}

// -- the connection ----------------------------------------------------------------------------

/// One accepted connection, with the primitive moves every fault is made of.
class conn {
 public:
  explicit conn(tcp::socket s) : sock_(std::move(s)) {}

  tcp::socket& socket() { return sock_; }

  /// Writes all of `bytes`, one byte per write when `trickle`. False once the peer is gone.
  net::awaitable<bool> write(std::string_view bytes, bool trickle) {
    if (!trickle) {
      auto [ec, n] = co_await net::async_write(sock_, net::buffer(bytes), nothrow);
      co_return !ec;
    }
    for (char ch : bytes) {
      auto [ec, n] = co_await net::async_write(sock_, net::buffer(&ch, 1), nothrow);
      if (ec) {
        co_return false;
      }
    }
    co_return true;
  }

  /// Waits `d`, returning false early when the peer closes meanwhile, so a client that gives up
  /// on a stalled response frees its connection at once.
  net::awaitable<bool> pause(milliseconds d) {
    net::steady_timer timer(sock_.get_executor(), d);
    auto timeout = timer.async_wait(nothrow);
    auto peer_gone = watch_peer();
    auto which = co_await (std::move(timeout) || std::move(peer_gone));
    co_return which.index() == 0;
  }

  /// Closes with RST (SO_LINGER {1, 0}).
  void reset() {
    beast::error_code ec;
    sock_.set_option(net::socket_base::linger(true, 0), ec);
    sock_.close(ec);
  }

  /// Closes with FIN.
  void finish() {
    if (!sock_.is_open()) {
      return;
    }
    beast::error_code ec;
    sock_.shutdown(tcp::socket::shutdown_send, ec);
    sock_.close(ec);
  }

 private:
  /// Completes when the peer closes or errors; runs until cancelled otherwise.
  net::awaitable<void> watch_peer() {
    for (;;) {
      auto [ec] = co_await sock_.async_wait(tcp::socket::wait_read, nothrow);
      if (ec) {
        co_return;
      }
      char byte = 0;
      auto n = ::recv(sock_.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        co_return;
      }
      if (n > 0) {
        // A pipelined request is waiting: a close can no longer be seen, so just wait.
        net::steady_timer forever(sock_.get_executor(), 2 * max_hold);
        co_await forever.async_wait(nothrow);
        co_return;
      }
    }
  }

  tcp::socket sock_;
};

/// Writes body pieces with the behaviour's framing faults: chunk framing, UTF-8 splits, trickle.
/// In burst mode it only collects bytes, and `flush` (or `end`) writes them in one go.
class body_writer {
 public:
  body_writer(conn& c, const behaviour& b, framing f) : c_(c), b_(b), frame_(f) {}

  /// Collects instead of writing until `flush`: one write for a whole stream (benchmarks).
  void hold() { hold_ = true; }

  /// Sends bytes as they are (a response head).
  net::awaitable<bool> raw(std::string_view bytes) {
    const bool ok = co_await emit(bytes);
    co_return ok;
  }

  /// Sends one piece: an SSE event, or (part of) a JSON body.
  net::awaitable<bool> piece(std::string_view data) {
    std::string_view parts[2] = {data, {}};
    if (b_.split_utf8) {
      // Cut inside the first multi-byte character: after its lead byte.
      for (std::size_t i = 0; i + 1 < data.size(); ++i) {
        if (static_cast<unsigned char>(data[i]) >= 0xC0) {
          parts[0] = data.substr(0, i + 1);
          parts[1] = data.substr(i + 1);
          break;
        }
      }
    }
    for (int k = 0; k < 2; ++k) {
      if (k == 1) {
        if (parts[1].empty()) {
          co_return true;
        }
        if (!co_await c_.pause(utf8_split_pause)) {
          co_return false;
        }
      }
      if (frame_ != framing::chunked) {
        if (!co_await emit(parts[k])) {
          co_return false;
        }
        continue;
      }
      if (parts[k].empty()) {
        continue;  // an empty chunk would end the body
      }
      char size[24];
      int len = std::snprintf(size, sizeof size, "%zx\r\n", parts[k].size());
      framed_.clear();
      framed_.append(size, static_cast<std::size_t>(len));
      framed_ += parts[k];
      framed_ += "\r\n";
      if (!co_await emit(framed_)) {
        co_return false;
      }
    }
    co_return true;
  }

  /// Ends the body (the 0-chunk when chunked) and flushes.
  net::awaitable<bool> end() {
    if (frame_ == framing::chunked) {
      pending_ += last_chunk;
    }
    const bool ok = co_await flush();
    co_return ok;
  }

  /// Writes whatever burst mode collected.
  net::awaitable<bool> flush() {
    bool ok = true;
    if (!pending_.empty()) {
      ok = co_await c_.write(pending_, hold_ ? false : b_.trickle);
      pending_.clear();
    }
    co_return ok;
  }

 private:
  net::awaitable<bool> emit(std::string_view bytes) {
    bool ok = true;
    if (hold_) {
      pending_ += bytes;
    } else {
      ok = co_await c_.write(bytes, b_.trickle);
    }
    co_return ok;
  }

  conn& c_;
  const behaviour& b_;
  framing frame_;
  bool hold_ = false;
  std::string pending_;
  std::string framed_;
};

// -- responses ---------------------------------------------------------------------------------

/// A JSON answer outside any personality (control endpoints, unknown paths).
net::awaitable<next> send_control(conn& c, int status, std::string_view body, bool keep) {
  head_spec h{status, "application/json", framing::length, body.size(), keep};
  auto bytes = make_head(h, nullptr);
  bytes += body;
  const bool written = co_await c.write(bytes, false);
  co_return (written && keep) ? next::keep : next::close;
}

bool is_truncation(cut_kind cut) {
  return cut == cut_kind::truncate_fin || cut == cut_kind::truncate_chunked
         || cut == cut_kind::truncate_length;
}

/// A response with one body (JSON, error, HTML, empty), with any fault of `x.how` applied.
net::awaitable<next> send_simple(conn& c, const reply_context& x, int status, const body_text& body,
                                 bool keep) {
  const auto& b = *x.how;
  const auto cut = b.cut == cut_kind::inband_error ? cut_kind::none : b.cut;
  const bool half = cut != cut_kind::none;
  const framing f = cut == cut_kind::truncate_chunked ? framing::chunked
                    : cut == cut_kind::truncate_fin   ? framing::until_close
                                                      : framing::length;
  head_spec h{status, body.content_type, f, body.body.size(), keep && !is_truncation(cut)};
  std::string_view payload = body.body;
  if (half) {
    payload = payload.substr(0, payload.size() / 2);
  }
  auto head = make_head(h, &x);
  if (f == framing::length && !b.trickle && !b.split_utf8 && b.stall_first_byte.count() == 0) {
    head += payload;
    if (!co_await c.write(head, false)) {
      co_return next::close;
    }
  } else {
    if (!co_await c.write(head, b.trickle)) {
      co_return next::close;
    }
    if (b.stall_first_byte.count() > 0) {
      if (!co_await c.pause(b.stall_first_byte)) {
        co_return next::close;
      }
    }
    body_writer w(c, b, f);
    if (!payload.empty()) {
      if (!co_await w.piece(payload)) {
        co_return next::close;
      }
    }
  }
  switch (cut) {
    case cut_kind::reset_mid:
      c.reset();
      co_return next::close;
    case cut_kind::stall_mid:
      co_await c.pause(max_hold);
      co_return next::close;
    case cut_kind::none:
      co_return keep ? next::keep : next::close;
    default:
      co_return next::close;  // the truncations end with FIN
  }
}

net::awaitable<next> send_error(conn& c, const reply_context& x, const error_spec& e, bool keep) {
  const auto body = render_error(x.who, e, x.n);
  const auto answer = co_await send_simple(c, x, e.status, body, keep);
  co_return answer;
}

/// Headers, then keep-alive bytes every `keepalive_every` until the peer leaves (cap 10 min).
net::awaitable<next> send_keepalive(conn& c, const reply_context& x, bool keep) {
  const auto& b = *x.how;
  const bool stream = x.req->stream;
  head_spec h{200, stream ? "text/event-stream; charset=utf-8" : "application/json",
              framing::chunked, 0, keep};
  const auto head = make_head(h, &x);
  if (!co_await c.write(head, b.trickle)) {
    co_return next::close;
  }
  body_writer w(c, b, framing::chunked);
  const std::string_view bytes = stream ? keepalive_bytes(x.who) : std::string_view("\n");
  const auto deadline = std::chrono::steady_clock::now() + max_hold;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!co_await c.pause(b.keepalive_every)) {
      break;
    }
    if (!co_await w.piece(bytes)) {
      break;
    }
  }
  co_return next::close;
}

/// CLOCK_MONOTONIC now, in ns (the clock bench/stream_client timestamps its reads with).
std::int64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

/// `e` with `"x_mock_sent_ns":<monotonic_ns()>` as the first member of its data when that is a
/// JSON object (the `stamp` token); other data (`[DONE]`) stays as it is.
sse_event stamped(const sse_event& e) {
  if (e.data.size() < 2 || e.data.front() != '{') {
    return e;
  }
  sse_event out{e.name, {}, e.role};
  out.data.reserve(e.data.size() + 40);
  out.data += R"({"x_mock_sent_ns":)";
  out.data += std::to_string(monotonic_ns());
  if (e.data[1] != '}') {
    out.data += ',';
  }
  out.data.append(e.data, 1);
  return out;
}

/// The success stream, with any mid-stream fault of `x.how` applied.
net::awaitable<next> send_stream(conn& c, const reply_context& x, bool keep) {
  const auto& b = *x.how;
  auto events = reply_events(x);
  if (b.malformed_event) {
    auto at = std::find_if(events.begin(), events.end(),
                           [](const sse_event& e) { return e.role == event_role::content; });
    at = at == events.end() ? events.begin() + 1 : at + 1;
    events.insert(at, malformed_event(x));
  }
  const bool truncating = is_truncation(b.cut);
  const bool mid_cut = b.cut == cut_kind::stall_mid || b.cut == cut_kind::reset_mid
                       || b.cut == cut_kind::inband_error;
  const framing f = b.cut == cut_kind::truncate_length ? framing::length : framing::chunked;
  std::size_t length = 0;
  if (f == framing::length) {
    for (const auto& e : events) {
      length += frame_event(e, b.crlf, b.multiline_data).size();
    }
    length += 4096;  // more than will ever be sent
  }
  const bool closes = truncating || b.cut == cut_kind::inband_error;
  head_spec h{200, "text/event-stream; charset=utf-8", f, length, keep && !closes};
  const auto head = make_head(h, &x);
  body_writer w(c, b, f);
  if (b.burst && b.chunk_delay.count() == 0 && b.stall_first_byte.count() == 0 && !b.trickle
      && !b.split_utf8) {
    w.hold();
  }
  if (!co_await w.raw(head)) {
    co_return next::close;
  }
  if (b.stall_first_byte.count() > 0) {
    if (!co_await c.pause(b.stall_first_byte)) {
      co_return next::close;
    }
  }
  int content_sent = 0;
  bool first = true;
  bool closing = false;  // the first closing event (finish reason, content_block_stop) is out
  for (const auto& e : events) {
    if (mid_cut
        && ((e.role == event_role::content && content_sent >= b.cut_after)
            || e.role == event_role::tail || e.role == event_role::terminal)) {
      if (b.cut == cut_kind::inband_error) {
        const auto error_event = frame_event(inband_error_event(x), b.crlf, false);
        if (co_await w.piece(error_event)) {
          co_await w.end();
        }
      } else if (co_await w.flush()) {
        if (b.cut == cut_kind::reset_mid) {
          c.reset();
        } else {
          co_await c.pause(max_hold);
        }
      }
      co_return next::close;
    }
    if (truncating && e.role == event_role::terminal) {
      break;
    }
    // The pause stands for generation: none within the stream's close (usage chunk, `[DONE]`,
    // message_delta, message_stop), which providers send at once after the finish reason.
    if (!first && !closing && b.chunk_delay.count() > 0) {
      if (!co_await c.pause(b.chunk_delay)) {
        co_return next::close;
      }
    }
    first = false;
    closing = closing || e.role == event_role::tail || e.role == event_role::terminal;
    // Stamped as late as possible: after the pause, just before this event's write.
    const auto framed = b.stamp ? frame_event(stamped(e), b.crlf, b.multiline_data)
                                : frame_event(e, b.crlf, b.multiline_data);
    if (!co_await w.piece(framed)) {
      co_return next::close;
    }
    if (e.role == event_role::content) {
      ++content_sent;
    }
  }
  if (truncating) {
    if (b.cut == cut_kind::truncate_fin) {
      co_await w.end();
    } else {
      co_await w.flush();
    }
    co_return next::close;
  }
  if (!co_await w.end()) {
    co_return next::close;
  }
  co_return keep ? next::keep : next::close;
}

/// The one-body reply of `x.how` (anything but reset-before, keepalive and streams).
body_text simple_reply(const reply_context& x, int& status) {
  const auto& b = *x.how;
  const auto p = x.who;
  status = b.status;
  switch (b.kind) {
    case reply_kind::status:
      return render_error(p, default_error(p, b.status, x.model), x.n);
    case reply_kind::html:
      return {"text/html; charset=UTF-8", html_error_page(b.status, x.n)};
    case reply_kind::empty:
      return {};
    case reply_kind::raw:
      return {b.content_type.empty() ? "application/json" : b.content_type, b.body};
    case reply_kind::ok:
      status = 200;
      if (b.malformed_event) {
        return {"application/json", "{\"id\":"};
      }
      if (b.cut != cut_kind::inband_error) {
        return {reply_content_type(x), reply_body(x)};
      }
      break;  // a non-stream in-band error is an error-200
    case reply_kind::malformed_body:
      status = 200;
      return {"application/json", "{\"id\":"};
    default:
      break;
  }
  status = 200;
  return render_error(p, default_error(p, 500, x.model), x.n);
}

/// Answers one chat request as `x.how` says.
net::awaitable<next> respond(conn& c, const reply_context& x, bool keep) {
  const auto& b = *x.how;
  if (b.stall_headers.count() > 0) {
    if (!co_await c.pause(b.stall_headers)) {
      co_return next::close;
    }
  }
  if (b.kind == reply_kind::reset_before) {
    c.reset();
    co_return next::close;
  }
  if (b.kind == reply_kind::keepalive) {
    const auto answer = co_await send_keepalive(c, x, keep);
    co_return answer;
  }
  if (b.kind == reply_kind::ok && x.req->stream) {
    const auto answer = co_await send_stream(c, x, keep);
    co_return answer;
  }
  int status = 200;
  const auto body = simple_reply(x, status);
  const auto answer = co_await send_simple(c, x, status, body, keep);
  co_return answer;
}

// -- routing -----------------------------------------------------------------------------------

struct provider_route {
  provider who;
  std::string_view rest;  // the path after the provider's prefix
};

std::optional<provider_route> match_provider(std::string_view path) {
  static constexpr std::pair<std::string_view, provider> prefixes[] = {
      {"/openai/v1", provider::openai},    {"/anthropic/v1", provider::anthropic},
      {"/groq/openai/v1", provider::groq}, {"/deepseek/v1", provider::deepseek},
      {"/deepseek", provider::deepseek},   {"/together/v1", provider::together},
      {"/sarvam/v1", provider::sarvam},
  };
  for (const auto& [prefix, who] : prefixes) {
    if (path.starts_with(prefix) && (path.size() == prefix.size() || path[prefix.size()] == '/')) {
      return provider_route{who, path.substr(prefix.size())};
    }
  }
  return std::nullopt;
}

/// The API a POST to `rest` (the path after `p`'s prefix) calls, if `p` serves it.
std::optional<api_kind> api_of(provider p, std::string_view rest) {
  if (p == provider::anthropic) {
    if (rest == "/messages") {
      return api_kind::chat;
    }
    if (rest == "/messages/count_tokens") {
      return api_kind::count_tokens;
    }
    return std::nullopt;
  }
  if (rest == "/chat/completions") {
    return api_kind::chat;
  }
  if (rest == "/embeddings") {
    return api_kind::embeddings;
  }
  if (p != provider::openai) {
    return std::nullopt;
  }
  static constexpr std::pair<std::string_view, api_kind> openai_only[] = {
      {"/responses", api_kind::responses},
      {"/moderations", api_kind::moderations},
      {"/audio/transcriptions", api_kind::audio_transcriptions},
      {"/audio/speech", api_kind::audio_speech},
  };
  for (const auto& [path, api] : openai_only) {
    if (rest == path) {
      return api;
    }
  }
  return std::nullopt;
}

bool iequals_prefix(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) {
    return false;
  }
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) {
      return false;
    }
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

/// The provider's verdict on the request's credentials, if it rejects them.
std::optional<error_spec> check_auth(provider p, const request& req) {
  auto bearer = [&]() -> std::string_view {
    auto v = trim(req[http::field::authorization]);
    return iequals_prefix(v, "bearer ") ? trim(v.substr(7)) : std::string_view{};
  };
  std::string_view key;
  if (p == provider::anthropic) {
    key = trim(req["x-api-key"]);
  } else if (p == provider::sarvam) {
    key = trim(req["api-subscription-key"]);
    if (key.empty()) {
      key = bearer();
    }
  } else {
    key = bearer();
  }
  if (key.empty()) {
    return auth_error(p, "missing", key);
  }
  if (key.find("invalid") != std::string_view::npos) {
    return auth_error(p, "invalid", key);
  }
  if (p == provider::anthropic && trim(req["anthropic-version"]).empty()) {
    return bad_request(p, "anthropic-version: header is required");
  }
  if (key.find("noquota") != std::string_view::npos) {
    return quota_error(p);
  }
  return std::nullopt;
}

request_record make_record(provider p, const request& req, const chat_request& cr) {
  request_record r;
  r.who = p;
  r.method = std::string(req.method_string());
  r.target = std::string(req.target());
  for (const auto& field : req) {
    std::string name(field.name_string());
    for (auto& ch : name) {
      ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    }
    auto value = field.value();
    auto same = std::find_if(r.headers.begin(), r.headers.end(),
                             [&](const auto& h) { return h.first == name; });
    if (same != r.headers.end()) {
      same->second += ", ";
      same->second += value;
    } else {
      r.headers.emplace_back(std::move(name), std::string(value));
    }
  }
  r.body = req.body();
  r.stream = cr.stream;
  r.model = cr.model;
  return r;
}

/// Counts a provider request in flight for as long as it lives.
class in_flight {
 public:
  explicit in_flight(mock_state& st) : st_(st) { st_.request_started(); }
  ~in_flight() { st_.request_finished(); }
  in_flight(const in_flight&) = delete;
  in_flight& operator=(const in_flight&) = delete;

 private:
  mock_state& st_;
};

net::awaitable<next> serve_provider(conn& c, mock_state& st, const request& req,
                                    const provider_route& route, bool keep) {
  const auto p = route.who;
  st.count_request(p);
  in_flight guard(st);
  const auto api = api_of(p, route.rest);
  const bool is_chat = api.has_value();
  const bool is_models = route.rest == "/models";
  const bool method_ok =
      is_chat ? req.method() == http::verb::post : req.method() == http::verb::get;
  chat_request cr;
  if (is_chat && method_ok) {
    cr = parse_api_request(p, *api, req[http::field::content_type], req.body());
  }
  if (st.records()) {
    st.record(make_record(p, req, cr));
  }
  behaviour b;
  reply_context x{p, 0, resolved_model(cr.model.value_or("unknown")), &cr, &b};
  std::optional<error_spec> failure;
  if (!is_chat && !is_models) {
    failure = default_error(p, 404, x.model);
    failure->message = "mock_provider: no route for " + std::string(req.method_string()) + " "
                       + std::string(req.target());
  } else if (!method_ok) {
    failure = bad_request(p, "Method not allowed");
    failure->status = 405;
  } else if (auto denied = check_auth(p, req)) {
    failure = std::move(denied);
  } else if (is_models) {
    x.n = st.next_reply();
    const body_text models{"application/json", models_body(p)};
    const auto answer = co_await send_simple(c, x, 200, models, keep);
    co_return answer;
  } else if (!cr.invalid.empty()) {
    failure = bad_request(p, cr.invalid);
  } else if (p == provider::anthropic && cr.sampling
             && trim(req["anthropic-version"]) >= std::string_view("2026-10-21")) {
    // providers.md §2: from API version 2026-10-21 on, sampling parameters are refused.
    failure = bad_request(p, "temperature: Extra inputs are not permitted");
  } else if (auto step = st.pop_step(p)) {
    b = std::move(*step);
  } else if (auto fault = st.draw_fault(p)) {
    b = std::move(*fault);
  } else if (cr.model->starts_with("mock-")) {
    if (auto err = apply_tokens(*cr.model, b); !err.empty()) {
      failure = bad_request(p, "mock_provider: " + err);
    }
  }
  x.n = st.next_reply();
  if (failure) {
    const auto answer = co_await send_error(c, x, *failure, keep);
    co_return answer;
  }
  if (cr.model->find("reasoner") != std::string::npos) {
    b.reasoner = true;
  }
  const auto answer = co_await respond(c, x, keep);
  co_return answer;
}

// -- control endpoints -------------------------------------------------------------------------

std::string control_error(std::string_view message) {
  std::string o = "{\"error\":{\"message\":";
  append_json_string(o, message);
  o += ",\"type\":\"invalid_request_error\",\"param\":null,\"code\":null}}";
  return o;
}

/// `POST /__mock/script {"provider":"groq","steps":[...]}`.
std::string add_script(mock_state& st, std::string_view body, int& status) {
  status = 400;
  rapidjson::Document d;
  d.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
  if (d.HasParseError() || !d.IsObject()) {
    return control_error("script: expected a JSON object");
  }
  auto pit = d.FindMember("provider");
  auto sit = d.FindMember("steps");
  if (pit == d.MemberEnd() || !pit->value.IsString()) {
    return control_error(
        "provider: expected one of openai, anthropic, groq, deepseek, together, "
        "sarvam");
  }
  auto p = provider_named({pit->value.GetString(), pit->value.GetStringLength()});
  if (!p) {
    return control_error(
        "provider: expected one of openai, anthropic, groq, deepseek, together, "
        "sarvam");
  }
  if (sit == d.MemberEnd() || !sit->value.IsArray()) {
    return control_error("steps: expected an array");
  }
  std::vector<behaviour> steps;
  for (rapidjson::SizeType i = 0; i < sit->value.Size(); ++i) {
    behaviour b;
    if (auto err = parse_step(sit->value[i], b); !err.empty()) {
      return control_error("steps[" + std::to_string(i) + "]: " + err);
    }
    steps.push_back(std::move(b));
  }
  auto queued = st.push_steps(*p, std::move(steps));
  status = 200;
  return "{\"ok\":true,\"provider\":\"" + std::string(name(*p))
         + "\",\"queued\":" + std::to_string(queued) + "}";
}

/// `POST /__mock/chaos {"provider":"groq","rate":0.1,"faults":[...],"seed":7}`: each fault is a
/// token list (`"reset-before"`) or a script step (`{"status":503}`); rate 0 switches it off.
std::string set_chaos(mock_state& st, std::string_view body, int& status) {
  status = 400;
  rapidjson::Document d;
  d.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
  if (d.HasParseError() || !d.IsObject()) {
    return control_error("chaos: expected a JSON object");
  }
  std::optional<provider> p;
  if (auto it = d.FindMember("provider"); it != d.MemberEnd() && it->value.IsString()) {
    p = provider_named({it->value.GetString(), it->value.GetStringLength()});
  }
  if (!p) {
    return control_error(
        "provider: expected one of openai, anthropic, groq, deepseek, together, "
        "sarvam");
  }
  chaos_spec spec;
  auto rit = d.FindMember("rate");
  if (rit == d.MemberEnd() || !rit->value.IsNumber() || rit->value.GetDouble() < 0
      || rit->value.GetDouble() > 1) {
    return control_error("rate: expected a number from 0 to 1");
  }
  spec.rate = rit->value.GetDouble();
  if (auto it = d.FindMember("seed"); it != d.MemberEnd()) {
    if (!it->value.IsUint64()) {
      return control_error("seed: expected a non-negative integer");
    }
    spec.seed = it->value.GetUint64();
  }
  auto fit = d.FindMember("faults");
  if (fit == d.MemberEnd() || !fit->value.IsArray() || fit->value.Empty()
      || fit->value.Size() > 64) {
    return control_error("faults: expected an array of 1 to 64 faults");
  }
  for (rapidjson::SizeType i = 0; i < fit->value.Size(); ++i) {
    const auto& f = fit->value[i];
    behaviour b;
    std::string err;
    std::string label;
    if (f.IsString()) {
      label.assign(f.GetString(), f.GetStringLength());
      err = apply_tokens(label, b);
    } else {
      err = parse_step(f, b);
      rapidjson::StringBuffer text;
      rapidjson::Writer<rapidjson::StringBuffer> writer(text);
      f.Accept(writer);
      label.assign(text.GetString(), text.GetSize());
    }
    if (!err.empty()) {
      return control_error("faults[" + std::to_string(i) + "]: " + err);
    }
    spec.faults.push_back(std::move(b));
    spec.labels.push_back(std::move(label));
  }
  const auto n = spec.faults.size();
  const auto rate = spec.rate;
  st.set_chaos(*p, std::move(spec));
  status = 200;
  return "{\"ok\":true,\"provider\":\"" + std::string(name(*p))
         + "\",\"rate\":" + std::to_string(rate) + ",\"faults\":" + std::to_string(n) + "}";
}

/// The answer to one control request: status and JSON body.
std::string control_reply(mock_state& st, const request& req, std::string_view path,
                          std::string_view query, int& status) {
  const auto verb = req.method();
  status = 200;
  if (path == "/__mock/script" && verb == http::verb::post) {
    return add_script(st, req.body(), status);
  }
  if (path == "/__mock/chaos" && verb == http::verb::post) {
    return set_chaos(st, req.body(), status);
  }
  if (path == "/__mock/requests" && verb == http::verb::get) {
    std::optional<provider> only;
    if (auto at = query.find("provider="); at != std::string_view::npos) {
      auto value = query.substr(at + 9);
      only = provider_named(value.substr(0, value.find('&')));
      if (!only) {
        status = 400;
        return control_error("provider: unknown");
      }
    }
    return st.requests_json(only);
  }
  if (path == "/__mock/stats" && verb == http::verb::get) {
    return st.stats_json();
  }
  if (path == "/__mock/reset" && verb == http::verb::post) {
    st.reset();
    return "{\"ok\":true}";
  }
  status = 404;
  return control_error("mock_provider: no route for " + std::string(req.method_string()) + " "
                       + std::string(path));
}

net::awaitable<next> dispatch(conn& c, mock_state& st, const request& req, bool keep) {
  std::string_view target = req.target();
  auto q = target.find('?');
  auto path = target.substr(0, q);
  auto query = q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
  if (auto route = match_provider(path); route && !path.starts_with("/__mock/")) {
    const auto answer = co_await serve_provider(c, st, req, *route, keep);
    co_return answer;
  }
  int status = 404;
  std::string body;
  if (path.starts_with("/__mock/")) {
    body = control_reply(st, req, path, query, status);
  } else {
    body = control_error("mock_provider: no route for " + std::string(req.method_string()) + " "
                         + std::string(path));
  }
  const auto answer = co_await send_control(c, status, body, keep);
  co_return answer;
}

// -- connections -------------------------------------------------------------------------------

/// The idle policy of `o` between two requests (Node-like keep-alive timeout, random idle
/// closes, closes racing the next request). True when the connection goes on to read the next
/// request; false when it is to be closed (the caller closes it, with RST when a request
/// arrived unread).
net::awaitable<bool> idle_gate(conn& c, mock_state& st, const server_options& o,
                               std::minstd_rand& rng) {
  auto& sock = c.socket();
  std::optional<milliseconds> limit;
  if (o.keepalive_timeout.count() > 0) {
    limit = o.keepalive_timeout;
  }
  if (o.idle_close_jitter.count() > 0) {
    std::uniform_int_distribution<std::int64_t> pick(0, o.idle_close_jitter.count() - 1);
    const milliseconds at{pick(rng)};
    limit = limit ? std::min(*limit, at) : at;
  }
  if (limit) {
    net::steady_timer timer(sock.get_executor(), *limit);
    auto idle_over = timer.async_wait(nothrow);
    auto readable = sock.async_wait(tcp::socket::wait_read, nothrow);
    auto which = co_await (std::move(idle_over) || std::move(readable));
    if (which.index() == 0) {
      st.idle_closed();
      co_return false;
    }
  } else if (o.race_close > 0) {
    auto [ec] = co_await sock.async_wait(tcp::socket::wait_read, nothrow);
    if (ec) {
      co_return false;
    }
  }
  if (o.race_close > 0 && std::bernoulli_distribution(o.race_close)(rng)) {
    char byte = 0;
    if (::recv(sock.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT) > 0) {
      st.race_closed();  // a request is waiting: the close races it, as a Node upstream's does
      co_return false;
    }
  }
  co_return true;
}

/// Reads requests one at a time (so pipelining is safe) and answers each.
net::awaitable<void> serve_connection(conn& c, mock_state& st, const server_options& o,
                                      std::uint64_t number) {
  beast::flat_buffer buffer;
  const bool gated =
      o.keepalive_timeout.count() > 0 || o.idle_close_jitter.count() > 0 || o.race_close > 0;
  std::minstd_rand rng(static_cast<std::minstd_rand::result_type>(o.seed * 1'000'003u + number));
  for (bool first = true;; first = false) {
    if (gated && !first && buffer.size() == 0) {
      const bool go_on = co_await idle_gate(c, st, o, rng);
      if (!go_on) {
        co_return;
      }
    }
    http::request_parser<http::string_body> parser;
    parser.header_limit(max_header_bytes);
    parser.body_limit(max_body_bytes);
    auto [ec, n] = co_await http::async_read_header(c.socket(), buffer, parser, nothrow);
    if (!ec && parser.get()[http::field::expect] == "100-continue") {
      const std::string_view interim = "HTTP/1.1 100 Continue\r\n\r\n";
      if (!co_await c.write(interim, false)) {
        co_return;
      }
    }
    if (!ec) {
      std::tie(ec, n) = co_await http::async_read(c.socket(), buffer, parser, nothrow);
    }
    if (ec) {
      // A too-large or malformed request gets an answer; a closed connection just ends.
      std::string body;
      int status = 400;
      if (ec == http::error::body_limit) {
        status = 413;
        body = control_error("request body exceeds 32 MiB");
      } else if (ec.category() == http::make_error_code(http::error::bad_method).category()
                 && ec != http::error::end_of_stream && ec != http::error::partial_message) {
        body = control_error("malformed HTTP request");
      }
      if (!body.empty()) {
        co_await send_control(c, status, body, false);
      }
      co_return;
    }
    auto req = parser.release();
    const bool keep = req.keep_alive();
    if (co_await dispatch(c, st, req, keep) == next::close || !keep) {
      co_return;
    }
  }
}

net::awaitable<void> run_session(tcp::socket sock, mock_state& st, const server_options& o,
                                 std::uint64_t number) {
  st.connection_opened();
  conn c(std::move(sock));
  try {
    co_await serve_connection(c, st, o, number);
  } catch (const std::exception& e) {
    // Nothing a peer sends may take the process down: drop just this connection.
    std::cerr << "mock_provider: connection error: " << e.what() << '\n';
  }
  c.finish();
  st.connection_closed();
}

using context_list = std::vector<std::unique_ptr<net::io_context>>;

net::awaitable<void> accept_loop(tcp::acceptor& acceptor, context_list& contexts, mock_state& st,
                                 const server_options& o) {
  std::size_t next_context = 0;
  std::uint64_t accepted = 0;
  for (;;) {
    auto& ctx = *contexts[next_context++ % contexts.size()];
    auto [ec, sock] = co_await acceptor.async_accept(ctx, nothrow);
    if (ec == net::error::operation_aborted || !acceptor.is_open()) {
      co_return;
    }
    if (ec) {
      // Out of descriptors or similar: back off instead of spinning.
      net::steady_timer pause(acceptor.get_executor(), milliseconds{20});
      co_await pause.async_wait(nothrow);
      continue;
    }
    beast::error_code opt_ec;
    sock.set_option(tcp::no_delay(true), opt_ec);
    net::co_spawn(ctx, run_session(tcp::socket(std::move(sock)), st, o, ++accepted), net::detached);
  }
}

}  // namespace

int run_server(const server_options& options) {
  std::signal(SIGPIPE, SIG_IGN);
  mock_state st(options.record_limit, options.record_bytes);
  if (options.keepalive_timeout.count() > 0) {
    // Node's header: whole seconds, rounded down.
    keep_alive_field =
        "Keep-Alive: timeout=" + std::to_string(options.keepalive_timeout.count() / 1000) + "\r\n";
  }
  context_list contexts;
  for (int i = 0; i < std::max(1, options.threads); ++i) {
    contexts.push_back(std::make_unique<net::io_context>(1));
  }
  auto& main_ctx = *contexts.front();

  beast::error_code ec;
  tcp::endpoint endpoint;
  auto address = net::ip::make_address(options.host, ec);
  if (ec) {
    tcp::resolver resolver(main_ctx);
    auto results = resolver.resolve(options.host, options.port, ec);
    if (ec || results.empty()) {
      std::cerr << "mock_provider: cannot resolve " << options.host << ": " << ec.message() << '\n';
      return 1;
    }
    endpoint = *results.begin();
  } else {
    int port = std::atoi(options.port.c_str());
    endpoint = tcp::endpoint(address, static_cast<unsigned short>(port));
  }
  tcp::acceptor acceptor(main_ctx);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) {
    acceptor.set_option(net::socket_base::reuse_address(true), ec);
    acceptor.bind(endpoint, ec);
  }
  if (!ec) {
    acceptor.listen(net::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    std::cerr << "mock_provider: cannot listen on " << options.host << ":" << options.port << ": "
              << ec.message() << '\n';
    return 1;
  }
  auto local = acceptor.local_endpoint(ec);
  std::cout << "listening on " << local.address().to_string() << ":" << local.port() << std::endl;

  net::signal_set signals(main_ctx, SIGINT, SIGTERM);
  signals.async_wait([&](const beast::error_code&, int) {
    beast::error_code ignored;
    acceptor.close(ignored);
    for (auto& ctx : contexts) {
      ctx->stop();
    }
  });
  net::co_spawn(main_ctx, accept_loop(acceptor, contexts, st, options), net::detached);

  std::vector<net::executor_work_guard<net::io_context::executor_type>> guards;
  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < contexts.size(); ++i) {
    guards.push_back(net::make_work_guard(*contexts[i]));
    threads.emplace_back([ctx = contexts[i].get()] { ctx->run(); });
  }
  main_ctx.run();
  for (auto& t : threads) {
    t.join();
  }
  return 0;
}

}  // namespace ib::mock
