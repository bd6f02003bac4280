#include "http/client.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <ctime>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include <boost/asio.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include "http/head_parser.hpp"
#include "http/serial_executor.hpp"
#include "http/tls_context.hpp"
#include "http/tls_stream.hpp"
#include "http/wire.hpp"

namespace ib::http {

std::string_view to_string(exchange_failure f) noexcept {
  switch (f) {
    case exchange_failure::none:
      return "none";
    case exchange_failure::connect_error:
      return "connect_error";
    case exchange_failure::tls_error:
      return "tls_error";
    case exchange_failure::connect_timeout:
      return "connect_timeout";
    case exchange_failure::reset:
      return "reset";
    case exchange_failure::first_byte_timeout:
      return "first_byte_timeout";
    case exchange_failure::idle_timeout:
      return "idle_timeout";
    case exchange_failure::total_timeout:
      return "total_timeout";
    case exchange_failure::deadline:
      return "deadline";
    case exchange_failure::body_too_large:
      return "body_too_large";
    case exchange_failure::bad_response:
      return "bad_response";
    case exchange_failure::cancelled:
      return "cancelled";
    case exchange_failure::pool_closed:
      return "pool_closed";
  }
  return "unknown";
}

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using steady = std::chrono::steady_clock;
using error_code = boost::system::error_code;

namespace {

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

/// The upstream's status line and header fields together may take this many bytes.
constexpr std::uint32_t max_response_header_bytes = 64 * 1024;

/// The response fields the client keeps, by index (`response_fields`).
enum : std::size_t {
  field_content_type,
  field_retry_after,
  field_retry_after_ms,
  field_keep_alive,
};

/// The response fields the client keeps: what `response_head` reports, and `Keep-Alive` (a
/// list: every line counts, see `parse_keep_alive`).
std::span<const kept_field> response_fields() {
  static const std::array<kept_field, 4> fields{{
      {bhttp::field::content_type, "content-type", false},
      {bhttp::field::retry_after, "retry-after", false},
      {bhttp::field::unknown, "retry-after-ms", false},
      {bhttp::field::keep_alive, "keep-alive", true},
  }};
  return fields;
}

/// The TLS sessions an upstream gave (TLS 1.3 tickets, TLS 1.2 sessions), to resume the pool's
/// next connections: a resumed handshake has no certificate chain to parse and verify, which is
/// most of what a new connection costs (about 0.6 ms of CPU with OpenSSL 3.0, bench/README.md).
/// A TLS 1.3 ticket is used once (RFC 8446 §C.4: a ticket sent twice links the two connections
/// for an observer); the newest `capacity` are kept. Thread-safe.
class session_cache {
 public:
  session_cache() = default;
  session_cache(const session_cache&) = delete;
  session_cache& operator=(const session_cache&) = delete;
  ~session_cache() {
    for (SSL_SESSION* s : sessions_) {
      SSL_SESSION_free(s);
    }
  }

  /// Keeps a copy of `s` (and drops the reference given). A copy: OpenSSL goes on writing to a
  /// connection's own session (a fatal alert marks it not resumable) while another thread may
  /// be reading the cache.
  void put(SSL_SESSION* s) {
    SSL_SESSION* copy = SSL_SESSION_dup(s);
    SSL_SESSION_free(s);
    if (copy == nullptr) {
      return;
    }
    std::lock_guard lock{mutex_};
    sessions_.push_back(copy);
    if (sessions_.size() > capacity) {
      SSL_SESSION_free(sessions_.front());
      sessions_.pop_front();
    }
  }

  /// The newest session still resumable and within its lifetime (the caller owns the
  /// reference), or null.
  SSL_SESSION* take() {
    const auto now = static_cast<std::uint64_t>(std::time(nullptr));
    std::lock_guard lock{mutex_};
    while (!sessions_.empty()) {
      SSL_SESSION* s = sessions_.back();
      sessions_.pop_back();
      const auto born = static_cast<std::uint64_t>(SSL_SESSION_get_time(s));
      // The client's own timeout (7200 s by default), or the server's hint when it gives one.
      auto lifetime = static_cast<std::uint64_t>(SSL_SESSION_get_timeout(s));
      if (const auto hint = SSL_SESSION_get_ticket_lifetime_hint(s); hint > 0) {
        lifetime = std::min<std::uint64_t>(lifetime, hint);
      }
      if (SSL_SESSION_is_resumable(s) == 1 && now < born + lifetime) {
        return s;
      }
      SSL_SESSION_free(s);
    }
    return nullptr;
  }

  /// The cache a connection's sessions go to (`SSL_set_ex_data` under this index).
  static int index() {
    static const int i = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return i;
  }

 private:
  static constexpr std::size_t capacity = 16;
  std::mutex mutex_;
  std::deque<SSL_SESSION*> sessions_;
};

/// OpenSSL's new-session callback: a session the upstream gave goes to its connection's cache.
/// TLS 1.3 tickets arrive after the handshake, inside a read. 1: the cache took the reference.
int on_new_session(SSL* ssl, SSL_SESSION* session) {
  auto* cache = static_cast<session_cache*>(SSL_get_ex_data(ssl, session_cache::index()));
  if (cache == nullptr || SSL_SESSION_is_resumable(session) != 1) {
    return 0;
  }
  cache->put(session);
  return 1;
}

/// One keep-alive connection: plain TCP or TLS over TCP.
struct connection {
  std::shared_ptr<session_cache> sessions;  ///< TLS: where its sessions go; outlives its `SSL`
  std::optional<tcp::socket> plain;
  std::optional<tls_stream> tls;
  /// Reserved at 4 KiB when the connection is made: Beast sizes a read by the free capacity
  /// (at least 512 bytes), and a typical ~1 KB completion then arrives in one `recv` instead of
  /// two (bench/README.md, "hot spots"). Not more: every open stream holds one connection.
  beast::flat_buffer buffer;
  steady::time_point reusable_until{};  ///< set when pooled: not reused at or after this
  steady::time_point pooled_at{};       ///< when it was last given back to the pool

  tcp::socket& socket() { return tls ? tls->next_layer() : *plain; }
};

bool is_blank(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

bool is_disconnect(const error_code& ec) {
  return ec == net::error::eof || ec == net::error::connection_reset
         || ec == net::error::broken_pipe || ec == bhttp::error::end_of_stream
         || ec == ssl::error::stream_truncated || ec == net::error::connection_aborted;
}

bool is_space(char c) {
  return c == ' ' || c == '\t';
}

std::string_view trim_spaces(std::string_view s) {
  while (!s.empty() && is_space(s.front())) {
    s.remove_prefix(1);
  }
  while (!s.empty() && is_space(s.back())) {
    s.remove_suffix(1);
  }
  return s;
}

/// The leading decimal digits of `v`, capped at `cap`; nothing when `v` starts with no digit.
std::optional<std::uint64_t> leading_number(std::string_view v, std::uint64_t cap) {
  if (v.size() >= 2 && v.front() == '"') {
    v.remove_prefix(1);
  }
  std::uint64_t n = 0;
  std::size_t i = 0;
  for (; i < v.size() && v[i] >= '0' && v[i] <= '9'; ++i) {
    n = std::min(cap, n * 10 + static_cast<std::uint64_t>(v[i] - '0'));
  }
  if (i == 0) {
    return std::nullopt;
  }
  return n;
}

template <class T>
void keep_smallest(std::optional<T>& slot, T value) {
  if (!slot || value < *slot) {
    slot = value;
  }
}

/// Appends `name: value` CRLF, with any CR or LF in the value turned into a space (a value
/// must never split a header line).
void append_field(std::string& out, std::string_view name, std::string_view value) {
  out += name;
  out += ": ";
  for (char c : value) {
    out.push_back(c == '\r' || c == '\n' ? ' ' : c);
  }
  out += "\r\n";
}

/// The head of a request other than a POST with a whole body (`write_request_head` writes
/// those): any method, and `content-length`, chunked framing or no body at all.
std::string write_any_request_head(method m, std::string_view target, std::string_view host,
                                   const header_list& headers, std::optional<std::uint64_t> length,
                                   bool chunked) {
  std::string out;
  out.reserve(256 + target.size());
  out += to_string(m);
  out += ' ';
  out += target;
  out += " HTTP/1.1\r\n";
  append_field(out, "host", host);
  out += "user-agent: inferbridge\r\n";
  if (chunked) {
    out += "transfer-encoding: chunked\r\n";
  } else if (length) {
    append_field(out, "content-length", std::to_string(*length));
  }
  for (const auto& [name, value] : headers) {
    append_field(out, name, value);
  }
  out += "\r\n";
  return out;
}

}  // namespace

// -- keep-alive rules -----------------------------------------------------------------------------

void parse_keep_alive(std::string_view value, keep_alive_params& into) {
  constexpr std::uint64_t max_timeout_s = 24 * 3600;
  constexpr std::uint64_t max_requests = std::uint64_t{1} << 32;
  while (!value.empty()) {
    auto end = value.find_first_of(",;");
    auto param = value.substr(0, end);
    value = end == std::string_view::npos ? std::string_view{} : value.substr(end + 1);
    auto eq = param.find('=');
    if (eq == std::string_view::npos) {
      continue;
    }
    auto name = trim_spaces(param.substr(0, eq));
    auto text = trim_spaces(param.substr(eq + 1));
    if (beast::iequals(name, "timeout")) {
      if (auto n = leading_number(text, max_timeout_s)) {
        keep_smallest(into.timeout, std::chrono::seconds{static_cast<std::int64_t>(*n)});
      }
    } else if (beast::iequals(name, "max")) {
      if (auto n = leading_number(text, max_requests)) {
        keep_smallest(into.max, *n);
      }
    }
  }
}

std::chrono::milliseconds idle_limit(const keep_alive_params& ka,
                                     std::chrono::milliseconds max_idle) {
  using std::chrono::milliseconds;
  if (ka.max && *ka.max <= 1) {
    return milliseconds{0};
  }
  auto limit = max_idle;
  if (ka.timeout) {
    const milliseconds t = *ka.timeout;
    // The upstream's idle clock starts when it has written the response, ours once we have read
    // it: the margin covers that lag and timer slack on both sides.
    const milliseconds margin = t >= milliseconds{4'000} ? milliseconds{1'000} : t / 4;
    limit = std::min(limit, t - margin);
  }
  return std::max(limit, milliseconds{0});
}

/// The TLS client context for `ca_file` (the system store, plus `ca_file` if given), built once
/// per process: loading the CA store costs tens of milliseconds and megabytes, so every pool
/// shares it (an SSL_CTX is safe to share between connections and threads).
std::shared_ptr<ssl::context> client_tls_context(const std::string& ca_file) {
  static std::mutex mutex;
  static std::map<std::string, std::weak_ptr<ssl::context>> contexts;
  std::lock_guard lock{mutex};
  if (auto existing = contexts[ca_file].lock()) {
    return existing;
  }
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  use_system_trust_store(*ctx);
  if (!ca_file.empty()) {
    error_code ec;
    ctx->load_verify_file(ca_file, ec);
  }
  ctx->set_verify_mode(ssl::verify_peer);
  // Sessions go to the connection's pool (`on_new_session`), never to a cache of the context's
  // own, which every pool sharing the context would read.
  SSL_CTX_set_session_cache_mode(ctx->native_handle(),
                                 SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx->native_handle(), on_new_session);
  contexts[ca_file] = ctx;
  return ctx;
}

// -- pool state -----------------------------------------------------------------------------------

class exchange;

struct upstream_pool::impl : std::enable_shared_from_this<upstream_pool::impl> {
  impl(net::io_context& io, client_options o) : io(io), opts(std::move(o)) {
    if (opts.endpoint.tls) {
      tls = client_tls_context(opts.ca_file);
    }
    host_header = opts.endpoint.host;
    bool default_port = (opts.endpoint.tls && opts.endpoint.port == 443)
                        || (!opts.endpoint.tls && opts.endpoint.port == 80);
    if (host_header.find(':') != std::string::npos) {
      host_header = "[" + host_header + "]";  // an IPv6 literal
    }
    if (!default_port) {
      host_header += ":" + std::to_string(opts.endpoint.port);
    }
  }

  /// An idle connection that still looks open, or null. A connection the server has closed
  /// (EOF, a TLS close_notify, or unexpected bytes waiting) or that idled past its limit is
  /// dropped. A peek cannot see a close that is still in flight: the exchange re-sends once on
  /// a fresh connection when a reused one dies before any response byte (see `exchange::run`).
  std::unique_ptr<connection> take_idle() {
    std::lock_guard lock{mutex};
    auto now = steady::now();
    while (!idle.empty()) {
      auto c = std::move(idle.back());
      idle.pop_back();
      if (now < c->reusable_until && looks_open(*c, now - c->pooled_at >= peek_after)) {
        return c;
      }
    }
    return nullptr;
  }

  /// A connection pooled less than this long ago is reused without the `recv` peek: a close
  /// racing the reuse is covered by the re-send on a fresh connection anyway, and under load
  /// (connections back in the pool within milliseconds) the peek was one syscall per request.
  static constexpr std::chrono::milliseconds peek_after{1000};

  /// False when `c` shows it was closed: TLS state always; the socket itself (a `recv` peek)
  /// only when `peek`.
  static bool looks_open(connection& c, bool peek) {
    if (c.tls) {
      // Bytes the TLS layer has already taken off the socket (a close_notify read together with
      // the end of the last response) are invisible to the peek below.
      SSL* ssl = c.tls->native_handle();
      if ((SSL_get_shutdown(ssl) & SSL_RECEIVED_SHUTDOWN) != 0 || SSL_has_pending(ssl) == 1) {
        return false;
      }
    }
    if (!peek) {
      return true;
    }
    char probe;
    auto n = ::recv(c.socket().native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }

  /// Pools `c` for at most `limit` (from the response's `Keep-Alive` header); closes it instead
  /// when `limit` is zero or the pool is full or shut down. Also drops the oldest idle
  /// connections that are past their limit (the upstream has closed them or is about to).
  void give_back(std::unique_ptr<connection> c, std::chrono::milliseconds limit) {
    auto now = steady::now();
    c->reusable_until = now + limit;
    c->pooled_at = now;
    std::lock_guard lock{mutex};
    std::size_t expired = 0;
    while (expired < idle.size() && idle[expired]->reusable_until <= now) {
      ++expired;
    }
    if (expired > 0) {
      idle.erase(idle.begin(), idle.begin() + static_cast<std::ptrdiff_t>(expired));
    }
    if (closed || limit <= std::chrono::milliseconds{0} || idle.size() >= opts.pool_size) {
      return;  // closed by its destructor, outside nothing else references it
    }
    idle.push_back(std::move(c));
  }

  net::io_context& io;
  client_options opts;
  std::shared_ptr<ssl::context> tls;  ///< shared by every pool with the same CA file
  /// TLS: sessions to resume, for this pool's host only.
  std::shared_ptr<session_cache> sessions = std::make_shared<session_cache>();
  std::string host_header;

  mutable std::mutex mutex;
  std::vector<std::unique_ptr<connection>> idle;
  std::unordered_map<std::uint64_t, std::weak_ptr<exchange>> in_flight;
  std::uint64_t next_id = 1;
  bool closed = false;
};

// -- one exchange ---------------------------------------------------------------------------------

class exchange : public exchange_control, public std::enable_shared_from_this<exchange> {
 public:
  exchange(std::shared_ptr<upstream_pool::impl> pool, outgoing_request req,
           std::shared_ptr<exchange_handler> handler)
      : pool_(std::move(pool)),
        executor_(serial_executor(pool_->io)),
        timer_(executor_),
        pause_timer_(executor_),
        req_(std::move(req)),
        handler_(std::move(handler)) {}

  ~exchange() override {
    if (conn_) {
      // The last reference may be dropped on an actor thread: sockets are only ever touched on
      // the I/O threads (asio's reactor does not tolerate a close racing its event loop).
      auto doomed = std::make_shared<std::unique_ptr<connection>>(std::move(conn_));
      net::post(pool_->io, [doomed] { doomed->reset(); });
    }
    if (!completed_ && handler_) {
      exchange_result r;
      r.failure = exchange_failure::pool_closed;
      handler_->on_complete(std::move(r));
    }
  }

  void launch(std::uint64_t id) {
    id_ = id;
    start_ = steady::now();
    auto total = start_ + pool_->opts.total_timeout;
    deadline_is_request_ = req_.deadline <= total;
    total_deadline_ = std::min(total, req_.deadline);
    net::co_spawn(executor_, run(), [self = shared_from_this()](std::exception_ptr e) {
      if (e) {
        self->abandon_connection();
        self->complete(exchange_failure::bad_response);
      }
      self->unregister();
    });
  }

  void cancel() override { abort(exchange_failure::cancelled); }

  void abort(exchange_failure why) {
    net::post(executor_, [self = shared_from_this(), why] {
      if (self->completed_) {
        return;
      }
      self->forced_ = why;
      self->close_socket();
      self->timer_.cancel();
      self->pause_timer_.cancel();
    });
  }

  void resume() override {
    net::post(executor_, [self = shared_from_this()] {
      self->resume_requested_ = true;
      self->pause_timer_.cancel();
    });
  }

 private:
  enum class stage : std::uint8_t { connecting, waiting, receiving };

  // -- deadline watchdog --------------------------------------------------------------------------
  void arm(steady::time_point t) {
    deadline_ = std::min(t, total_deadline_);
    if (!watching_) {
      watching_ = true;
      timer_.expires_at(deadline_);
      watch();
    } else if (deadline_ < timer_.expiry()) {
      timer_.expires_at(deadline_);
    }
  }

  void watch() {
    timer_.async_wait([self = shared_from_this()](error_code) {
      if (self->completed_ || self->forced_ != exchange_failure::none) {
        self->watching_ = false;
        return;
      }
      auto now = steady::now();
      if (self->deadline_ <= now) {
        self->watching_ = false;
        self->timed_out_ = self->timeout_kind(now);
        self->close_socket();
        self->pause_timer_.cancel();
        return;
      }
      self->timer_.expires_at(self->deadline_);
      self->watch();
    });
  }

  exchange_failure timeout_kind(steady::time_point now) const {
    if (deadline_is_request_ && now >= req_.deadline) {
      return exchange_failure::deadline;
    }
    if (now >= total_deadline_) {
      return exchange_failure::total_timeout;
    }
    switch (stage_) {
      case stage::connecting:
        return exchange_failure::connect_timeout;
      case stage::waiting:
        return exchange_failure::first_byte_timeout;
      case stage::receiving:
        break;
    }
    return payload_seen_ ? exchange_failure::idle_timeout : exchange_failure::first_byte_timeout;
  }

  void close_socket() {
    if (conn_) {
      error_code ec;
      conn_->socket().close(ec);
    }
    if (resolver_) {
      resolver_->cancel();
    }
  }

  /// The failure to report for an I/O error `ec`, taking timeouts and aborts into account.
  exchange_failure failure_for(const error_code& ec, exchange_failure io_default) const {
    if (forced_ != exchange_failure::none) {
      return forced_;
    }
    if (timed_out_ != exchange_failure::none) {
      return timed_out_;
    }
    (void)ec;
    return io_default;
  }

  // -- the exchange -------------------------------------------------------------------------------
  net::awaitable<void> run() {
    if (forced_ != exchange_failure::none) {
      complete(forced_);
      co_return;
    }
    // A pulled body cannot be sent twice: it never risks a pooled connection.
    if (!req_.pull_body) {
      conn_ = pool_->take_idle();
    }
    bool reused = conn_ != nullptr;
    for (int attempt = 0;; ++attempt) {
      if (!conn_) {
        reused = false;
        const bool connected = co_await connect();
        if (!connected) {
          co_return;
        }
      }
      // Only the first attempt, and only on a pooled connection: a fresh connection's failure is
      // the provider's, and a request is never sent more than twice.
      const bool may_retry = reused && attempt == 0;
      bool finished = false;
      if (conn_->tls) {
        finished = co_await exchange_on(*conn_->tls, may_retry);
      } else {
        finished = co_await exchange_on(*conn_->plain, may_retry);
      }
      if (finished) {
        co_return;
      }
      // A pooled connection the server had already closed: one retry on a fresh one.
      abandon_connection();
    }
  }

  /// Whether a failure on the connection may be retried on a fresh one: a pooled connection, no
  /// byte of the response received, and no timeout or cancellation behind the failure.
  bool stale_connection(bool may_retry, const error_code& ec, bool got_bytes) const {
    return may_retry && !got_bytes && is_disconnect(ec) && forced_ == exchange_failure::none
           && timed_out_ == exchange_failure::none;
  }

  net::awaitable<bool> connect() {
    stage_ = stage::connecting;
    arm(steady::now() + pool_->opts.connect_timeout);
    const auto& ep = pool_->opts.endpoint;
    resolver_.emplace(executor_);
    // GCC 12 miscompiles temporaries with destructors inside a co_await expression (double
    // destruction): every co_await below takes only named arguments.
    const std::string port = std::to_string(ep.port);
    auto [rec, results] = co_await resolver_->async_resolve(ep.host, port, use_tuple);
    resolver_.reset();
    if (rec || results.empty()) {
      complete(failure_for(rec, exchange_failure::connect_error));
      co_return false;
    }
    conn_ = std::make_unique<connection>();
    conn_->buffer.reserve(4 * 1024);
    if (ep.tls) {
      conn_->tls.emplace(executor_, pool_->tls->native_handle());
    } else {
      conn_->plain.emplace(executor_);
    }
    auto [cec, endpoint] = co_await net::async_connect(conn_->socket(), results, use_tuple);
    (void)endpoint;
    if (cec) {
      abandon_connection();
      complete(failure_for(cec, exchange_failure::connect_error));
      co_return false;
    }
    error_code ignored;
    conn_->socket().set_option(tcp::no_delay(true), ignored);
    if (ep.tls) {
      if (!conn_->tls->expect_host(ep.host)) {
        abandon_connection();
        complete(exchange_failure::tls_error);
        co_return false;
      }
      offer_session();
      auto [hec] = co_await conn_->tls->async_handshake(use_tuple);
      if (hec) {
        abandon_connection();
        complete(failure_for(hec, exchange_failure::tls_error));
        co_return false;
      }
      keep_reused_session();
    }
    co_return true;
  }

  /// Sends a session of the pool's to resume (if it has one), and has the connection's new
  /// sessions kept in the pool's cache.
  void offer_session() {
    SSL* native = conn_->tls->native_handle();
    conn_->sessions = pool_->sessions;
    SSL_set_ex_data(native, session_cache::index(), conn_->sessions.get());
    if (SSL_SESSION* session = conn_->sessions->take()) {
      SSL_set_session(native, session);  // a stale one is refused by the server: a full handshake
      SSL_SESSION_free(session);
    }
  }

  /// TLS 1.2 gives no new session when one is resumed, and allows reusing it: back to the cache.
  void keep_reused_session() {
    SSL* native = conn_->tls->native_handle();
    if (SSL_session_reused(native) == 1 && SSL_version(native) < TLS1_3_VERSION) {
      if (SSL_SESSION* session = SSL_get1_session(native)) {
        conn_->sessions->put(session);
      }
    }
  }

  /// Runs the exchange on an open connection. Returns false when the caller should retry on a
  /// fresh connection (a reused one turned out dead before any response byte).
  template <class Stream>
  net::awaitable<bool> exchange_on(Stream& stream, bool may_retry) {
    stage_ = stage::waiting;
    sent_at_ = steady::now();
    arm(sent_at_ + pool_->opts.first_byte_timeout);
    if (req_.pull_body) {
      const bool sent = co_await send_pulled_body(stream);
      if (!sent) {
        co_return true;
      }
      sent_at_ = steady::now();
      arm(sent_at_ + pool_->opts.first_byte_timeout);
    } else {
      std::string head;
      if (req_.method == method::post) {
        head = write_request_head(req_.target, pool_->host_header, req_.headers, req_.body.size());
      } else {
        std::optional<std::uint64_t> length;
        if (!req_.body.empty() || req_.method == method::put || req_.method == method::patch) {
          length = req_.body.size();
        }
        head = write_any_request_head(req_.method, req_.target, pool_->host_header, req_.headers,
                                      length, false);
      }
      std::array<net::const_buffer, 2> bufs{net::buffer(head), net::buffer(req_.body)};
      auto [wec, wn] = co_await net::async_write(stream, bufs, use_tuple);
      (void)wn;
      if (wec) {
        // Nothing can have been answered yet, whatever the error: a write error on a pooled
        // connection is always a stale connection, unless a timeout or cancel closed it.
        if (may_retry && forced_ == exchange_failure::none
            && timed_out_ == exchange_failure::none) {
          co_return false;
        }
        abandon_connection();
        complete(failure_for(wec, exchange_failure::reset));
        co_return true;
      }
    }

    response_parser parser{response_fields(), max_response_header_bytes,
                           pool_->opts.max_body_bytes};
    parser.sink(&result_.body, pool_->opts.max_body_bytes);
    parser.skip(req_.method == method::head);  // a HEAD response has no body
    auto [hec, hn] = co_await bhttp::async_read_header(stream, conn_->buffer, parser, use_tuple);
    (void)hn;
    read_head(parser);
    if (hec) {
      // EOF or a reset before a single response byte: the upstream closed the pooled connection
      // (its keep-alive timeout) as the request went out, and never answered it.
      if (stale_connection(may_retry, hec, parser.got_some() || conn_->buffer.size() != 0)) {
        co_return false;
      }
      abandon_connection();
      complete(failure_for(
          hec, is_disconnect(hec) ? exchange_failure::reset : exchange_failure::bad_response));
      co_return true;
    }
    stage_ = stage::receiving;
    bool keep_alive = parser.keep_alive();
    int status = result_.head.status;
    bool streaming = req_.stream && status >= 200 && status < 300;
    if (status >= 100 && status < 200) {
      // Interim responses are not expected for our requests; treat as a broken upstream.
      abandon_connection();
      complete(exchange_failure::bad_response);
      co_return true;
    }
    std::string piece;
    if (streaming) {
      handler_->on_head(result_.head);
      parser.sink(&piece, response_parser::unlimited);  // our own timeouts bound a stream
      // Answered, so never sent again: an open stream does not keep the request body.
      std::string{}.swap(req_.body);
    }

    bool stopped = false;
    std::size_t scanned = 0;  // non-stream: body bytes already checked for payload
    while (!parser.is_done()) {
      piece.clear();
      auto [rec, rn] = co_await bhttp::async_read_some(stream, conn_->buffer, parser, use_tuple);
      (void)rn;
      if (parser.too_large()) {
        abandon_connection();
        complete(exchange_failure::body_too_large);
        co_return true;
      }
      if (streaming && !piece.empty()) {
        auto action = handler_->on_body(piece);
        if (action.payload) {
          payload_seen_ = true;
          arm(steady::now() + pool_->opts.first_byte_timeout);
        }
        if (action.stop) {
          stopped = true;
          break;
        }
        if (action.pause) {
          co_await wait_resume();
          if (forced_ != exchange_failure::none || timed_out_ != exchange_failure::none) {
            abandon_connection();
            complete(failure_for({}, exchange_failure::cancelled));
            co_return true;
          }
        }
      } else if (!streaming && !payload_seen_) {
        // The first non-blank byte is the first payload byte (DeepSeek sends blank lines while
        // it holds a request).
        for (; scanned < result_.body.size(); ++scanned) {
          if (!is_blank(result_.body[scanned])) {
            payload_seen_ = true;
            arm(total_deadline_);
            break;
          }
        }
      }
      if (rec) {
        abandon_connection();
        complete(failure_for(rec, is_disconnect(rec) || rec == bhttp::error::partial_message
                                      ? exchange_failure::reset
                                      : exchange_failure::bad_response));
        co_return true;
      }
    }
    if (stopped || !keep_alive || forced_ != exchange_failure::none
        || timed_out_ != exchange_failure::none || conn_->buffer.size() != 0) {
      abandon_connection();
    } else {
      keep_alive_params ka;
      parse_keep_alive(parser.values()[field_keep_alive], ka);
      pool_->give_back(std::move(conn_), idle_limit(ka, pool_->opts.max_idle));
    }
    complete(exchange_failure::none);
    co_return true;
  }

  /// Sends the head and the pulled body, piece by piece (chunked when no length is known).
  /// Returns false when the exchange has ended (completed with its failure).
  template <class Stream>
  net::awaitable<bool> send_pulled_body(Stream& stream) {
    const bool chunked = !req_.body_length.has_value();
    std::string out = write_any_request_head(req_.method, req_.target, pool_->host_header,
                                             req_.headers, req_.body_length, chunked);
    std::uint64_t sent = 0;
    for (;;) {
      body_chunk piece = co_await pull_next();
      if (forced_ != exchange_failure::none || timed_out_ != exchange_failure::none) {
        abandon_connection();
        complete(failure_for({}, exchange_failure::cancelled));
        co_return false;
      }
      if (piece.failed
          || (!chunked
              && (sent + piece.bytes.size() > *req_.body_length
                  || (piece.last && sent + piece.bytes.size() != *req_.body_length)))) {
        // The source failed, or gave other than the declared length: never send a body the
        // upstream would frame differently.
        abandon_connection();
        complete(exchange_failure::cancelled);
        co_return false;
      }
      sent += piece.bytes.size();
      if (chunked) {
        append_chunk(out, piece.bytes);
        if (piece.last) {
          append_last_chunk(out);
        }
      } else {
        out += piece.bytes;
      }
      piece.bytes = {};
      if (!out.empty()) {
        auto [wec, wn] = co_await net::async_write(stream, net::buffer(out), use_tuple);
        (void)wn;
        if (wec) {
          abandon_connection();
          complete(failure_for(wec, exchange_failure::reset));
          co_return false;
        }
        out.clear();
      }
      if (piece.last) {
        co_return true;
      }
      arm(steady::now() + pool_->opts.first_byte_timeout);
    }
  }

  /// The next piece of the pulled body; returns early (an empty piece) on a cancel or timeout.
  net::awaitable<body_chunk> pull_next() {
    pulled_.reset();
    req_.pull_body([self = shared_from_this()](body_chunk c) {
      net::post(self->executor_, [self, c = std::move(c)]() mutable {
        self->pulled_ = std::move(c);
        self->pause_timer_.cancel();
      });
    });
    while (!pulled_ && forced_ == exchange_failure::none && timed_out_ == exchange_failure::none) {
      pause_timer_.expires_at(steady::time_point::max());
      co_await pause_timer_.async_wait(use_tuple);
    }
    body_chunk out = pulled_ ? std::move(*pulled_) : body_chunk{};
    pulled_.reset();
    co_return out;
  }

  net::awaitable<void> wait_resume() {
    // While paused for a slow client, only the total deadline applies.
    auto saved = deadline_;
    deadline_ = total_deadline_;
    while (!resume_requested_ && forced_ == exchange_failure::none
           && timed_out_ == exchange_failure::none) {
      pause_timer_.expires_at(steady::time_point::max());
      co_await pause_timer_.async_wait(use_tuple);
    }
    resume_requested_ = false;
    deadline_ = std::max(saved, steady::now() + pool_->opts.first_byte_timeout);
    deadline_ = std::min(deadline_, total_deadline_);
    if (timer_.expiry() > deadline_) {
      timer_.expires_at(deadline_);
    }
  }

  /// Copies what the gateway uses of the response head (as far as it was parsed).
  void read_head(response_parser& parser) {
    auto& values = parser.values();
    result_.head.status = parser.status();
    result_.head.content_type = std::move(values[field_content_type]);
    result_.head.retry_after = std::move(values[field_retry_after]);
    result_.head.retry_after_ms = std::move(values[field_retry_after_ms]);
  }

  void abandon_connection() {
    if (conn_) {
      error_code ec;
      conn_->socket().close(ec);
      conn_.reset();
    }
  }

  void complete(exchange_failure why) {
    if (completed_) {
      return;
    }
    completed_ = true;
    timer_.cancel();
    result_.failure = why;
    auto h = std::move(handler_);
    h->on_complete(std::move(result_));
  }

  void unregister() {
    std::lock_guard lock{pool_->mutex};
    pool_->in_flight.erase(id_);
  }

  std::shared_ptr<upstream_pool::impl> pool_;
  net::any_io_executor executor_;  ///< `serial_executor`: a strand, or the io_context's own
  net::steady_timer timer_;
  net::steady_timer pause_timer_;
  std::optional<tcp::resolver> resolver_;
  outgoing_request req_;
  std::shared_ptr<exchange_handler> handler_;
  std::unique_ptr<connection> conn_;
  exchange_result result_;
  std::optional<body_chunk> pulled_;  ///< the pulled body's piece, once it arrived
  std::uint64_t id_ = 0;
  steady::time_point start_{};
  steady::time_point sent_at_{};
  steady::time_point total_deadline_{};
  steady::time_point deadline_{};
  bool deadline_is_request_ = false;
  bool watching_ = false;
  bool completed_ = false;
  bool payload_seen_ = false;
  bool resume_requested_ = false;
  stage stage_ = stage::connecting;
  exchange_failure forced_ = exchange_failure::none;
  exchange_failure timed_out_ = exchange_failure::none;

  friend class ib::http::upstream_pool;
};

// -- pool -----------------------------------------------------------------------------------------

upstream_pool::upstream_pool(net::io_context& io, client_options opts)
    : impl_(std::make_shared<impl>(io, std::move(opts))) {}

upstream_pool::~upstream_pool() {
  shutdown();
}

std::shared_ptr<exchange_control> upstream_pool::start(outgoing_request req,
                                                       std::shared_ptr<exchange_handler> handler) {
  auto ex = std::make_shared<exchange>(impl_, std::move(req), std::move(handler));
  std::uint64_t id = 0;
  bool closed = false;
  {
    std::lock_guard lock{impl_->mutex};
    closed = impl_->closed;
    id = impl_->next_id++;
    if (!closed) {
      impl_->in_flight.emplace(id, ex);
    }
  }
  if (closed) {
    ex->abort(exchange_failure::pool_closed);
  }
  ex->launch(id);
  return ex;
}

void upstream_pool::shutdown() {
  std::vector<std::shared_ptr<exchange>> live;
  std::vector<std::unique_ptr<connection>> idle;
  {
    std::lock_guard lock{impl_->mutex};
    impl_->closed = true;
    for (auto& [id, weak] : impl_->in_flight) {
      if (auto ex = weak.lock()) {
        live.push_back(std::move(ex));
      }
    }
    idle.swap(impl_->idle);
  }
  for (auto& ex : live) {
    ex->abort(exchange_failure::pool_closed);
  }
  // Sockets are only ever touched on the I/O threads: close the idle ones there.
  if (!idle.empty()) {
    auto doomed = std::make_shared<std::vector<std::unique_ptr<connection>>>(std::move(idle));
    net::post(impl_->io, [doomed] { doomed->clear(); });
  }
}

}  // namespace ib::http
