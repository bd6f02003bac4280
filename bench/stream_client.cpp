// The harness's client for streamed chat (issue 17): one thread, plain POSIX sockets and epoll,
// so that the load generator costs far less CPU per stream than the proxies it measures.
//
// Load mode: `c` keep-alive connections, each looping sequential streamed POSTs for `secs`
// seconds; every read is timestamped (CLOCK_MONOTONIC) and one JSON object goes to stdout:
//   stream_client --url http://HOST:PORT/PATH [--header 'K: V']... (--body TEXT | --body-file F)
//                 [--connections C] [--duration S] [--timeout S]
// Hold mode (--hold): one connection per stream, driven by lines on stdin:
//   "open N"  opens streams until N are open, then prints "open N ok=.. failed=.. ended=..
//             pending=.." once each new stream has its first body bytes (or failed, or 60 s
//             passed);
//   "close", end of stdin, SIGINT or SIGTERM: closes every stream, prints a JSON summary, exits.
// Definitions follow bench/README.md: TTFB = first body bytes; first content = the first SSE
// event whose data has a non-empty "content" (`"content":"` followed by a character other than
// `"`); a gap = the time between two such events of one stream; a chunk's latency = the read's
// time minus the send time the mock wrote into the event (`"x_mock_sent_ns":N`, its `stamp`
// token; both CLOCK_MONOTONIC, so client and mock must share the machine); success = status 200,
// a content event, `data: [DONE]` and the end of the body. Exit status 0, or 2 on bad arguments.
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

namespace {

using nanos = std::int64_t;

constexpr std::uint64_t stdin_tag = ~std::uint64_t{0};
constexpr std::size_t max_head_bytes = 64 * 1024;
constexpr std::size_t max_line_bytes = 16 * 1024 * 1024;

/// CLOCK_MONOTONIC, in ns.
nanos now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<nanos>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

/// utime + stime of this process (all threads), in µs.
double cpu_us() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const auto us = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_usec);
  };
  return us(ru.ru_utime) + us(ru.ru_stime);
}

volatile std::sig_atomic_t stop_requested = 0;

void on_stop_signal(int) {
  stop_requested = 1;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return (x | 0x20) == (y | 0x20);
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

// -- HTTP/1.1 response reader ----------------------------------------------------------------

/// Incremental reader of one HTTP/1.1 response: the head, then a chunked, Content-Length or
/// read-until-close body, whose decoded bytes it appends to the caller's buffer.
class response_reader {
 public:
  /// Consumes `in`, appending the body bytes it carries to `body`; false on a malformed response
  /// (or bytes after its end, which we never asked for).
  bool feed(std::string_view in, std::string& body);

  /// The peer closed the connection: true if that ends the body (no length, no chunking).
  bool end_of_input() {
    if (state_ != state::until_close) {
      return false;
    }
    state_ = state::done;
    return true;
  }

  bool done() const { return state_ == state::done; }
  bool head_done() const { return state_ != state::head; }
  int status() const { return status_; }
  /// Whether the connection can carry the next request once this response is done.
  bool keep_alive() const { return keep_alive_; }

 private:
  enum class state { head, size_line, data, data_end, trailers, length, until_close, done };

  bool parse_head(std::string_view head);
  bool end_line(std::string_view line);

  state state_ = state::head;
  std::string line_;  // the head so far, or a partial chunk-size / trailer line
  std::uint64_t left_ = 0;
  int status_ = 0;
  bool keep_alive_ = true;
};

bool response_reader::parse_head(std::string_view head) {
  // Status line: HTTP/1.x SSS reason
  const auto eol = head.find("\r\n");
  const auto status_line = head.substr(0, eol);
  if (status_line.size() < 12 || !status_line.starts_with("HTTP/1.")) {
    return false;
  }
  const auto code = status_line.substr(9, 3);
  if (std::from_chars(code.data(), code.data() + code.size(), status_).ec != std::errc{}) {
    return false;
  }
  keep_alive_ = status_line[7] == '1';
  bool chunked = false;
  std::optional<std::uint64_t> length;
  auto rest = eol == std::string_view::npos ? std::string_view{} : head.substr(eol + 2);
  while (!rest.empty()) {
    const auto end = rest.find("\r\n");
    const auto line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end + 2);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) {
      return false;
    }
    const auto name = trim(line.substr(0, colon));
    const auto value = trim(line.substr(colon + 1));
    if (iequals(name, "transfer-encoding")) {
      chunked = value.size() >= 7 && iequals(value.substr(value.size() - 7), "chunked");
    } else if (iequals(name, "content-length")) {
      std::uint64_t n = 0;
      if (std::from_chars(value.data(), value.data() + value.size(), n).ec != std::errc{}) {
        return false;
      }
      length = n;
    } else if (iequals(name, "connection")) {
      if (iequals(value, "close")) {
        keep_alive_ = false;
      } else if (iequals(value, "keep-alive")) {
        keep_alive_ = true;
      }
    }
  }
  if (status_ < 200) {
    return false;  // we send no Expect: an interim response is not ours
  }
  if (status_ == 204 || status_ == 304) {
    state_ = state::done;
  } else if (chunked) {
    state_ = state::size_line;
  } else if (length) {
    left_ = *length;
    state_ = left_ == 0 ? state::done : state::length;
  } else {
    keep_alive_ = false;
    state_ = state::until_close;
  }
  return true;
}

bool response_reader::end_line(std::string_view line) {
  if (!line.empty() && line.back() == '\r') {
    line.remove_suffix(1);
  }
  switch (state_) {
    case state::size_line: {
      const auto hex = trim(line.substr(0, line.find(';')));
      std::uint64_t n = 0;
      const auto r = std::from_chars(hex.data(), hex.data() + hex.size(), n, 16);
      if (hex.empty() || r.ec != std::errc{} || r.ptr != hex.data() + hex.size()) {
        return false;
      }
      left_ = n;
      state_ = n == 0 ? state::trailers : state::data;
      return true;
    }
    case state::data_end:
      state_ = state::size_line;
      return line.empty();
    case state::trailers:
      if (line.empty()) {
        state_ = state::done;
      }
      return true;
    default:
      return false;
  }
}

bool response_reader::feed(std::string_view in, std::string& body) {
  while (!in.empty()) {
    switch (state_) {
      case state::head: {
        const auto before = line_.size();
        line_.append(in);
        const auto end = line_.find("\r\n\r\n", before >= 3 ? before - 3 : 0);
        if (end == std::string::npos) {
          return line_.size() <= max_head_bytes;
        }
        in.remove_prefix(end + 4 - before);
        const bool ok = parse_head(std::string_view(line_).substr(0, end));
        line_.clear();
        if (!ok) {
          return false;
        }
        break;
      }
      case state::size_line:
      case state::data_end:
      case state::trailers: {
        const auto nl = in.find('\n');
        if (nl == std::string_view::npos) {
          line_.append(in);
          return line_.size() <= max_head_bytes;
        }
        bool ok = false;
        if (line_.empty()) {
          ok = end_line(in.substr(0, nl));
        } else {
          line_.append(in.substr(0, nl));
          ok = end_line(line_);
          line_.clear();
        }
        in.remove_prefix(nl + 1);
        if (!ok) {
          return false;
        }
        break;
      }
      case state::data:
      case state::length: {
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(left_, in.size()));
        body.append(in.substr(0, n));
        in.remove_prefix(n);
        left_ -= n;
        if (left_ == 0) {
          state_ = state_ == state::data ? state::data_end : state::done;
        }
        break;
      }
      case state::until_close:
        body.append(in);
        in = {};
        break;
      case state::done:
        return false;
    }
  }
  return true;
}

// -- SSE events --------------------------------------------------------------------------------

/// What the events completed by one read held.
struct event_counts {
  int events = 0;   // events with data
  int content = 0;  // of which carried text
  bool done = false;
  std::vector<nanos> sent;  // the send times (ns) of the content events that carried one

  void clear() {
    events = content = 0;
    done = false;
    sent.clear();
  }
};

/// Whether an event's data is a chunk with text: `"content":"` then anything but `"`.
bool has_content(std::string_view data) {
  constexpr std::string_view key = "\"content\":\"";
  for (auto at = data.find(key); at != std::string_view::npos; at = data.find(key, at + 1)) {
    if (at + key.size() < data.size() && data[at + key.size()] != '"') {
      return true;
    }
  }
  return false;
}

/// The mock's send time in an event's data (`"x_mock_sent_ns":<CLOCK_MONOTONIC ns>`), or 0.
nanos sent_time(std::string_view data) {
  constexpr std::string_view key = "\"x_mock_sent_ns\":";
  const auto at = data.find(key);
  if (at == std::string_view::npos) {
    return 0;
  }
  const char* first = data.data() + at + key.size();
  nanos v = 0;
  const auto [end, ec] = std::from_chars(first, data.data() + data.size(), v);
  return ec == std::errc{} && end != first ? v : 0;
}

/// Splits an SSE body into events (a blank line ends one) and classifies each.
class sse_scanner {
 public:
  /// Consumes body bytes; adds the events they complete to `out`.
  void feed(std::string_view body, event_counts& out) {
    while (!body.empty()) {
      const auto nl = body.find('\n');
      if (nl == std::string_view::npos) {
        if (line_.size() < max_line_bytes) {
          line_.append(body);
        }
        return;
      }
      if (line_.empty()) {
        end_line(body.substr(0, nl), out);
      } else {
        line_.append(body.substr(0, nl));
        end_line(line_, out);
        line_.clear();
      }
      body.remove_prefix(nl + 1);
    }
  }

 private:
  void end_line(std::string_view line, event_counts& out) {
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    if (line.empty()) {
      if (has_data_) {
        ++out.events;
        out.content += content_ ? 1 : 0;
        out.done = out.done || done_;
        if (content_ && sent_ != 0) {
          out.sent.push_back(sent_);
        }
      }
      has_data_ = content_ = done_ = false;
      sent_ = 0;
    } else if (line.starts_with("data:")) {
      auto v = line.substr(5);
      if (!v.empty() && v.front() == ' ') {
        v.remove_prefix(1);
      }
      has_data_ = true;
      done_ = done_ || v == "[DONE]";
      content_ = content_ || has_content(v);
      if (sent_ == 0) {
        sent_ = sent_time(v);
      }
    }
  }

  std::string line_;
  bool has_data_ = false;
  bool content_ = false;
  bool done_ = false;
  nanos sent_ = 0;  // the event's send time, when its data carried one
};

// -- options and the request ---------------------------------------------------------------------

struct options {
  std::string url;
  std::vector<std::string> headers;
  std::string body;
  bool has_body = false;
  int connections = 16;
  double secs = 10;
  double timeout_s = 30;
  bool hold = false;
};

constexpr const char* usage =
    "usage: stream_client --url http://HOST:PORT/PATH [--header 'K: V']...\n"
    "                     (--body TEXT | --body-file FILE) [--timeout S]\n"
    "                     [--connections C] [--duration S]     streamed load; JSON on stdout\n"
    "                     | --hold      stdin: 'open N' lines, then 'close' or EOF\n";

bool parse_options(int argc, char** argv, options& o) {
  const auto number = [](const char* s, double& out) {
    char* end = nullptr;
    out = std::strtod(s, &end);
    return end != s && *end == '\0' && std::isfinite(out) && out >= 0;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--hold") {
      o.hold = true;
      continue;
    }
    if (a == "-h" || a == "--help") {
      std::fputs(usage, stdout);
      std::exit(0);
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "%s needs a value\n%s", argv[i], usage);
      return false;
    }
    const char* v = argv[++i];
    double n = 0;
    if (a == "--url") {
      o.url = v;
    } else if (a == "--header") {
      o.headers.emplace_back(v);
    } else if (a == "--body") {
      o.body = v;
      o.has_body = true;
    } else if (a == "--body-file") {
      std::ifstream f(v, std::ios::binary);
      if (!f) {
        std::fprintf(stderr, "cannot read %s\n", v);
        return false;
      }
      std::ostringstream s;
      s << f.rdbuf();
      o.body = s.str();
      o.has_body = true;
    } else if ((a == "--connections" || a == "--duration" || a == "--timeout") && number(v, n)) {
      if (a == "--connections") {
        o.connections = std::max(1, static_cast<int>(n));
      } else if (a == "--duration") {
        o.secs = n;
      } else {
        o.timeout_s = n;
      }
    } else {
      std::fprintf(stderr, "bad option %s %s\n%s", argv[i - 1], v, usage);
      return false;
    }
  }
  if (o.url.empty() || !o.has_body) {
    std::fprintf(stderr, "--url and --body or --body-file are required\n%s", usage);
    return false;
  }
  return true;
}

/// Where to connect and what to send.
struct target {
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  int family = AF_INET;
  std::string request;  // the whole request, head and body
};

bool make_target(const options& o, target& t) {
  constexpr std::string_view scheme = "http://";
  std::string_view u = o.url;
  if (!u.starts_with(scheme)) {
    std::fprintf(stderr, "only http:// URLs: %s\n", o.url.c_str());
    return false;
  }
  u.remove_prefix(scheme.size());
  const auto slash = u.find('/');
  const auto authority = u.substr(0, slash);
  const std::string path(slash == std::string_view::npos ? "/" : u.substr(slash));
  const auto colon = authority.rfind(':');
  std::string host(authority.substr(0, colon));
  const std::string port(colon == std::string_view::npos ? "80" : authority.substr(colon + 1));
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (const int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0 || !res) {
    std::fprintf(stderr, "cannot resolve %s: %s\n", host.c_str(), gai_strerror(rc));
    return false;
  }
  std::memcpy(&t.addr, res->ai_addr, res->ai_addrlen);
  t.addr_len = res->ai_addrlen;
  t.family = res->ai_family;
  freeaddrinfo(res);

  bool has_type = false;
  std::string extra;
  for (const auto& h : o.headers) {
    const auto c = h.find(':');
    if (c == std::string::npos) {
      std::fprintf(stderr, "bad header '%s' (expected 'Name: value')\n", h.c_str());
      return false;
    }
    const auto name = trim(std::string_view(h).substr(0, c));
    has_type = has_type || iequals(name, "content-type");
    extra.append(name).append(": ").append(trim(std::string_view(h).substr(c + 1))).append("\r\n");
  }
  t.request = "POST " + path + " HTTP/1.1\r\nHost: " + std::string(authority) + "\r\n";
  if (!has_type) {
    t.request += "Content-Type: application/json\r\n";
  }
  t.request += "Accept: text/event-stream\r\nContent-Length: " + std::to_string(o.body.size())
               + "\r\n" + extra + (o.hold ? "Connection: close\r\n" : "") + "\r\n" + o.body;
  return true;
}

// -- connections ---------------------------------------------------------------------------------

/// One connection and the stream on it.
struct connection {
  int fd = -1;
  bool connecting = false;
  bool in_stream = false;  // a request is written (or being written) and its answer not done
  bool looping = true;     // load mode: still starting streams
  std::size_t written = 0;
  bool want_write = false;
  nanos last_io = 0;
  nanos retry_at = 0;  // load mode: reconnect then, after a failed connect
  response_reader reader;
  sse_scanner sse;
  // This stream's timestamps (ns) and counts.
  nanos start = 0;
  nanos first_body = 0;
  nanos first_content = 0;
  nanos last_content = 0;
  int reads = 0;
  int events = 0;
  bool saw_done = false;
  std::vector<nanos> gaps;
  std::vector<nanos> latencies;  // per stamped content event: arrival minus send time
  // Hold mode.
  enum class hold_state { opening, open, failed, ended } held = hold_state::opening;
};

/// The epoll set, the connections and the socket calls both modes share.
class client {
 public:
  explicit client(target t) : target_(std::move(t)), ep_(epoll_create1(EPOLL_CLOEXEC)) {}
  client(const client&) = delete;
  client& operator=(const client&) = delete;
  ~client() {
    for (auto& k : conns_) {
      close_fd(k);
    }
    if (ep_ >= 0) {
      ::close(ep_);
    }
  }

 protected:
  /// Opens a non-blocking socket and starts connecting; false if that failed at once.
  bool open_socket(std::size_t i) {
    auto& k = conns_[i];
    k.fd = ::socket(target_.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (k.fd < 0) {
      return false;
    }
    const int one = 1;
    ::setsockopt(k.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ++connects_;
    k.last_io = now_ns();
    const int rc =
        ::connect(k.fd, reinterpret_cast<const sockaddr*>(&target_.addr), target_.addr_len);
    if (rc != 0 && errno != EINPROGRESS) {
      close_fd(k);
      return false;
    }
    k.connecting = rc != 0;
    k.want_write = k.connecting;
    epoll_event ev{};
    ev.events = EPOLLIN | (k.want_write ? EPOLLOUT : 0u);
    ev.data.u64 = i;
    if (::epoll_ctl(ep_, EPOLL_CTL_ADD, k.fd, &ev) != 0) {
      close_fd(k);
      return false;
    }
    return true;
  }

  /// A connect finished (EPOLLOUT while connecting): false if it failed.
  bool finish_connect(connection& k) {
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(k.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    k.connecting = false;
    return err == 0;
  }

  void watch_write(std::size_t i, bool on) {
    auto& k = conns_[i];
    if (k.want_write == on || k.fd < 0) {
      return;
    }
    k.want_write = on;
    epoll_event ev{};
    ev.events = EPOLLIN | (on ? EPOLLOUT : 0u);
    ev.data.u64 = i;
    ::epoll_ctl(ep_, EPOLL_CTL_MOD, k.fd, &ev);
  }

  /// Starts a new request on a connected socket: resets the stream and writes what it can.
  bool send_request(std::size_t i) {
    auto& k = conns_[i];
    k.reader = response_reader{};
    k.sse = sse_scanner{};
    k.first_body = k.first_content = k.last_content = 0;
    k.reads = k.events = 0;
    k.saw_done = false;
    k.gaps.clear();
    k.latencies.clear();
    k.written = 0;
    k.in_stream = true;
    k.start = k.last_io = now_ns();
    return write_some(i);
  }

  /// Writes the rest of the request; false on a socket error.
  bool write_some(std::size_t i) {
    auto& k = conns_[i];
    const auto& req = target_.request;
    while (k.written < req.size()) {
      const auto n = ::send(k.fd, req.data() + k.written, req.size() - k.written, MSG_NOSIGNAL);
      if (n > 0) {
        k.written += static_cast<std::size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        watch_write(i, true);
        return true;
      } else {
        return false;
      }
    }
    watch_write(i, false);
    return true;
  }

  /// Decodes one read `in`, made at `t`: timestamps, events; false on a malformed response.
  bool on_bytes(connection& k, std::string_view in, nanos t) {
    body_.clear();
    if (!k.reader.feed(in, body_)) {
      return false;
    }
    k.last_io = t;
    if (body_.empty()) {
      return true;
    }
    if (k.first_body == 0) {
      k.first_body = t;
    }
    ++k.reads;
    auto& c = counts_;
    c.clear();
    k.sse.feed(body_, c);
    k.events += c.events;
    for (int j = 0; j < c.content; ++j) {
      // Events that arrive in one read arrive together: their gap is 0.
      if (k.first_content == 0) {
        k.first_content = t;
      } else {
        k.gaps.push_back(t - k.last_content);
      }
      k.last_content = t;
    }
    for (const auto sent : c.sent) {
      k.latencies.push_back(t - sent);  // t: the read that delivered the event
    }
    k.saw_done = k.saw_done || c.done;
    return true;
  }

  void close_fd(connection& k) {
    if (k.fd >= 0) {
      ::close(k.fd);  // also leaves the epoll set
      k.fd = -1;
    }
    k.connecting = false;
    k.want_write = false;
  }

  /// Reads what the socket has: 1 when the bytes were handled (`handle` said to go on), 0 at end
  /// of input, -1 on a socket error. Reads again only while the buffer came back full.
  template <class Handle>
  int read_ready(connection& k, Handle&& handle) {
    for (;;) {
      const auto n = ::recv(k.fd, buf_.data(), buf_.size(), 0);
      if (n > 0) {
        const auto size = static_cast<std::size_t>(n);
        if (!handle(std::string_view(buf_.data(), size), now_ns()) || size < buf_.size()) {
          return 1;
        }
      } else if (n == 0) {
        return 0;
      } else if (errno == EINTR) {
        continue;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return 1;
      } else {
        return -1;
      }
    }
  }

  target target_;
  int ep_;
  std::vector<connection> conns_;
  std::vector<char> buf_ = std::vector<char>(64 * 1024);
  std::string body_;
  event_counts counts_;
  long connects_ = 0;
};

// -- load mode -----------------------------------------------------------------------------------

double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) {
    return NAN;
  }
  const auto i = static_cast<std::size_t>(std::floor(p / 100 * static_cast<double>(sorted.size())));
  return sorted[std::min(sorted.size() - 1, i)];
}

std::string json_number(double x, int digits = 6) {
  if (!std::isfinite(x)) {
    return "null";
  }
  char s[64];
  std::snprintf(s, sizeof s, "%.*f", digits, x);
  return s;
}

std::string json_percentiles(std::vector<double>& xs, int digits = 6) {
  std::sort(xs.begin(), xs.end());
  return "{\"p50\":" + json_number(percentile(xs, 50), digits)
         + ",\"p90\":" + json_number(percentile(xs, 90), digits)
         + ",\"p99\":" + json_number(percentile(xs, 99), digits)
         + ",\"p999\":" + json_number(percentile(xs, 99.9), digits) + "}";
}

/// `c` connections looping sequential streams until the deadline; the figures in JSON.
class load_run : public client {
 public:
  load_run(target t, int c, double secs, double timeout_s)
      : client(std::move(t)),
        secs_(secs),
        timeout_(static_cast<nanos>(timeout_s * 1e9)),
        connections_(c) {}

  int run() {
    conns_.resize(static_cast<std::size_t>(connections_));
    const double cpu0 = cpu_us();
    const nanos t0 = now_ns();
    end_ = t0 + static_cast<nanos>(secs_ * 1e9);
    active_ = connections_;
    for (std::size_t i = 0; i < conns_.size(); ++i) {
      start_stream(i, t0);
    }
    std::vector<epoll_event> evs(256);
    nanos last_sweep = t0;
    while (active_ > 0) {
      const int n = ::epoll_wait(ep_, evs.data(), static_cast<int>(evs.size()), 10);
      if (stop_requested) {
        end_ = std::min(end_, now_ns());  // finish the streams in flight, start no more
      }
      for (int e = 0; e < n; ++e) {
        on_event(static_cast<std::size_t>(evs[static_cast<std::size_t>(e)].data.u64),
                 evs[static_cast<std::size_t>(e)].events);
      }
      const nanos t = now_ns();
      if (t - last_sweep >= 10'000'000) {
        last_sweep = t;
        sweep(t);
      }
    }
    const double elapsed = static_cast<double>(now_ns() - t0) / 1e9;
    const double cpu = cpu_us() - cpu0;
    print(elapsed, cpu);
    return 0;
  }

 private:
  void start_stream(std::size_t i, nanos t) {
    auto& k = conns_[i];
    k.in_stream = false;
    k.retry_at = 0;
    if (t >= end_) {
      close_fd(k);
      if (k.looping) {
        k.looping = false;
        --active_;
      }
      return;
    }
    if (k.fd < 0) {
      if (!open_socket(i)) {
        connect_failed(k, t);
        return;
      }
      if (k.connecting) {
        return;  // the request goes once the connect completes
      }
    }
    if (!send_request(i)) {
      fail(i, errors_.io);
    }
  }

  void connect_failed(connection& k, nanos t) {
    ++errors_.connect;
    close_fd(k);
    k.retry_at = t + 10'000'000;  // not a busy loop against a port nobody listens on
  }

  /// Counts an error, drops the connection and goes on with a new one.
  void fail(std::size_t i, long& counter) {
    ++counter;
    close_fd(conns_[i]);
    start_stream(i, now_ns());
  }

  void on_event(std::size_t i, std::uint32_t events) {
    auto& k = conns_[i];
    if (k.fd < 0) {
      return;
    }
    if (k.connecting) {
      if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0) {
        return;
      }
      if (!finish_connect(k)) {
        connect_failed(k, now_ns());
        return;
      }
      if (!send_request(i)) {
        fail(i, errors_.io);
      }
      return;
    }
    if ((events & EPOLLOUT) && k.in_stream && !write_some(i)) {
      fail(i, errors_.io);
      return;
    }
    if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) == 0) {
      return;
    }
    bool malformed = false;
    bool finished = false;
    const int r = read_ready(k, [&](std::string_view in, nanos t) {
      if (!k.in_stream || !on_bytes(k, in, t)) {
        malformed = true;
        return false;
      }
      finished = k.reader.done();
      return !finished;
    });
    if (malformed) {
      fail(i, errors_.malformed);
    } else if (finished) {
      finish(i);
    } else if (r == 0 && k.in_stream && k.reader.end_of_input()) {
      finish(i);
    } else if (r == 0) {
      fail(i, errors_.closed);
    } else if (r < 0) {
      fail(i, errors_.io);
    }
  }

  /// The response is complete: classify and record it, then the next stream.
  void finish(std::size_t i) {
    auto& k = conns_[i];
    if (k.reader.status() != 200) {
      ++errors_.status;
    } else if (k.first_content == 0) {
      ++errors_.no_content;
    } else if (!k.saw_done) {
      ++errors_.no_done;
    } else {
      ++streams_;
      ttfb_.push_back(static_cast<double>(k.first_body - k.start) / 1e6);
      ttft_.push_back(static_cast<double>(k.first_content - k.start) / 1e6);
      for (const auto g : k.gaps) {
        gaps_.push_back(static_cast<double>(g) / 1e6);
      }
      for (const auto l : k.latencies) {
        chunk_latency_.push_back(static_cast<double>(l) / 1e6);
      }
      reads_ += k.reads;
      events_ += k.events;
    }
    if (!k.reader.keep_alive()) {
      close_fd(k);
    }
    start_stream(i, now_ns());
  }

  void sweep(nanos t) {
    for (std::size_t i = 0; i < conns_.size(); ++i) {
      auto& k = conns_[i];
      if (!k.looping) {
        continue;
      }
      if (k.retry_at != 0 && t >= k.retry_at) {
        start_stream(i, t);
      } else if ((k.in_stream || k.connecting) && t - k.last_io > timeout_) {
        fail(i, errors_.timeout);
      }
    }
  }

  void print(double elapsed, double cpu) {
    const long errors = errors_.status + errors_.no_content + errors_.no_done + errors_.connect
                        + errors_.closed + errors_.io + errors_.malformed + errors_.timeout;
    const double n = static_cast<double>(streams_);
    const double per = streams_ > 0 ? 1.0 / n : NAN;
    std::printf(
        "{\"requests\":%ld,\"errors\":%ld,\"errors_by_kind\":{\"status\":%ld,\"no_content\":%ld,"
        "\"no_done\":%ld,\"connect\":%ld,\"closed\":%ld,\"io\":%ld,\"malformed\":%ld,"
        "\"timeout\":%ld},\"elapsed\":%s,\"rps\":%s,\"connections\":%d,\"connects\":%ld,"
        "\"chunks_per_stream\":%s,\"reads_per_stream\":%s,\"events_per_stream\":%s,"
        "\"ttfb_ms\":%s,\"ttft_ms\":%s,\"gap_ms\":%s,\"chunk_latency_ms\":%s,"
        "\"chunk_latency_count\":%zu,\"cpu_us\":%s,\"cpu_us_per_stream\":%s}\n",
        streams_, errors, errors_.status, errors_.no_content, errors_.no_done, errors_.connect,
        errors_.closed, errors_.io, errors_.malformed, errors_.timeout,
        json_number(elapsed).c_str(), json_number(n / elapsed).c_str(), connections_, connects_,
        json_number(static_cast<double>(reads_) * per).c_str(),
        json_number(static_cast<double>(reads_) * per).c_str(),
        json_number(static_cast<double>(events_) * per).c_str(), json_percentiles(ttfb_).c_str(),
        json_percentiles(ttft_).c_str(), json_percentiles(gaps_).c_str(),
        json_percentiles(chunk_latency_, 3).c_str(), chunk_latency_.size(),
        json_number(cpu, 1).c_str(), json_number(cpu * per, 2).c_str());
    std::fflush(stdout);
  }

  struct error_counts {
    long status = 0;      // not 200
    long no_content = 0;  // 200 without a content event
    long no_done = 0;     // 200 without data: [DONE]
    long connect = 0;
    long closed = 0;  // the peer closed before the end of the body
    long io = 0;      // reset, or another socket error
    long malformed = 0;
    long timeout = 0;
  };

  double secs_;
  nanos timeout_;
  int connections_;
  nanos end_ = 0;
  int active_ = 0;
  long streams_ = 0;
  long reads_ = 0;
  long events_ = 0;
  error_counts errors_;
  std::vector<double> ttfb_;
  std::vector<double> ttft_;
  std::vector<double> gaps_;
  std::vector<double> chunk_latency_;  // ms, per stamped content event of the successful streams
};

// -- hold mode -----------------------------------------------------------------------------------

/// Opens streams in the steps stdin asks for and holds them until told to close.
class hold_run : public client {
 public:
  hold_run(target t, double timeout_s)
      : client(std::move(t)), step_timeout_(static_cast<nanos>(timeout_s * 1e9)) {}

  int run() {
    ::fcntl(STDIN_FILENO, F_SETFL, ::fcntl(STDIN_FILENO, F_GETFL) | O_NONBLOCK);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = stdin_tag;
    if (::epoll_ctl(ep_, EPOLL_CTL_ADD, STDIN_FILENO, &ev) != 0) {
      std::perror("epoll_ctl(stdin)");
      return 1;
    }
    cpu0_ = cpu_us();
    std::vector<epoll_event> evs(256);
    while (!closing_ && !stop_requested) {
      const int n = ::epoll_wait(ep_, evs.data(), static_cast<int>(evs.size()), 50);
      for (int e = 0; e < n && !closing_; ++e) {
        const auto& x = evs[static_cast<std::size_t>(e)];
        if (x.data.u64 == stdin_tag) {
          on_stdin();
        } else {
          on_event(static_cast<std::size_t>(x.data.u64), x.events);
        }
      }
      check_step();
    }
    const double cpu = cpu_us() - cpu0_;
    int open = 0;
    for (auto& k : conns_) {
      open += k.held == connection::hold_state::open ? 1 : 0;
      close_fd(k);
    }
    std::printf(
        "{\"streams\":%zu,\"open\":%d,\"failed\":%d,\"ended\":%d,\"connects\":%ld,\"cpu_us\":%s}\n",
        conns_.size(), open, failed_, ended_, connects_, json_number(cpu, 1).c_str());
    std::fflush(stdout);
    return 0;
  }

 private:
  void on_stdin() {
    char b[4096];
    for (;;) {
      const auto n = ::read(STDIN_FILENO, b, sizeof b);
      if (n > 0) {
        input_.append(b, static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n == 0) {
        closing_ = true;  // end of stdin: the harness is done with us
      }
      break;
    }
    for (auto nl = input_.find('\n'); nl != std::string::npos && !closing_;
         nl = input_.find('\n')) {
      const std::string line = input_.substr(0, nl);
      input_.erase(0, nl + 1);
      std::size_t target = 0;
      if (line.rfind("open ", 0) == 0
          && std::from_chars(line.data() + 5, line.data() + line.size(), target).ec
                 == std::errc{}) {
        open_until(target);
      } else if (trim(line) == "close") {
        closing_ = true;
      } else if (!trim(line).empty()) {
        std::fprintf(stderr, "stream_client: unknown command '%s'\n", line.c_str());
      }
    }
  }

  void open_until(std::size_t target) {
    if (target > conns_.size()) {
      // Indices are the epoll tags: grow before any socket of this step is registered.
      conns_.reserve(target);
      const auto from = conns_.size();
      conns_.resize(target);
      for (auto i = from; i < target; ++i) {
        if (!open_socket(i)) {
          mark(conns_[i], connection::hold_state::failed);
        } else if (!conns_[i].connecting && !send_request(i)) {
          mark(conns_[i], connection::hold_state::failed);
        }
      }
    }
    step_ = target;
    step_deadline_ = now_ns() + step_timeout_;
  }

  void mark(connection& k, connection::hold_state s) {
    if (k.held != connection::hold_state::opening && k.held != connection::hold_state::open) {
      return;
    }
    if (s == connection::hold_state::failed) {
      ++failed_;
      close_fd(k);
    } else if (s == connection::hold_state::ended) {
      ++ended_;
      close_fd(k);
    }
    k.held = s;
  }

  void on_event(std::size_t i, std::uint32_t events) {
    auto& k = conns_[i];
    if (k.fd < 0) {
      return;
    }
    if (k.connecting) {
      if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0) {
        return;
      }
      if (!finish_connect(k) || !send_request(i)) {
        mark(k, connection::hold_state::failed);
      }
      return;
    }
    if ((events & EPOLLOUT) && !write_some(i)) {
      mark(k, connection::hold_state::failed);
      return;
    }
    if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) == 0) {
      return;
    }
    bool bad = false;
    const int r = read_ready(k, [&](std::string_view in, nanos t) {
      if (!on_bytes(k, in, t)) {
        bad = true;
        return false;
      }
      if (k.reader.head_done() && k.reader.status() != 200) {
        bad = true;
        return false;
      }
      if (k.first_body != 0 && k.held == connection::hold_state::opening) {
        k.held = connection::hold_state::open;
      }
      return !k.reader.done();
    });
    const bool was_open = k.held == connection::hold_state::open;
    if (bad) {
      mark(k, connection::hold_state::failed);
    } else if (r <= 0 || k.reader.done()) {
      // The stream ended while it should be held (or never opened).
      mark(k, was_open ? connection::hold_state::ended : connection::hold_state::failed);
    }
  }

  void check_step() {
    if (step_ == 0) {
      return;
    }
    int ok = 0;
    int pending = 0;
    for (std::size_t i = 0; i < step_; ++i) {
      ok += conns_[i].held == connection::hold_state::open ? 1 : 0;
      pending += conns_[i].held == connection::hold_state::opening ? 1 : 0;
    }
    if (pending > 0 && now_ns() < step_deadline_) {
      return;
    }
    std::printf("open %zu ok=%d failed=%d ended=%d pending=%d\n", step_, ok, failed_, ended_,
                pending);
    std::fflush(stdout);
    step_ = 0;
  }

  nanos step_timeout_;
  double cpu0_ = 0;
  std::string input_;
  bool closing_ = false;
  std::size_t step_ = 0;
  nanos step_deadline_ = 0;
  int failed_ = 0;
  int ended_ = 0;
};

/// Open streams need one descriptor each: lift the soft limit to the hard one.
void raise_fd_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  if (!parse_options(argc, argv, o)) {
    return 2;
  }
  target t;
  if (!make_target(o, t)) {
    return 2;
  }
  raise_fd_limit();
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  if (o.hold) {
    return hold_run(std::move(t), o.timeout_s).run();
  }
  return load_run(std::move(t), o.connections, o.secs, o.timeout_s).run();
}
