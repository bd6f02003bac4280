#include "http/server.hpp"

#include <array>
#include <atomic>
#include <mutex>
#include <optional>
#include <string_view>
#include <type_traits>
#include <vector>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "core/error.hpp"
#include "http/head_parser.hpp"
#include "http/serial_executor.hpp"
#include "http/tls_context.hpp"
#include "http/tls_stream.hpp"
#include "http/wire.hpp"

namespace ib::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;
using steady = std::chrono::steady_clock;
using error_code = boost::system::error_code;

namespace {

std::string error_body(errc code, std::string message) {
  return to_envelope(error{code, std::move(message)});
}

/// Connections being refused (503) at once, beyond `max_connections`: past this many, one more
/// is closed without an answer (a refusal over TLS costs a handshake).
constexpr std::size_t max_refusing = 256;

/// The first line of the bytes in `buf` (up to its LF, or all of them).
std::size_t start_line_length(const beast::flat_buffer& buf) {
  auto data = buf.data();
  std::string_view bytes{static_cast<const char*>(data.data()), data.size()};
  auto lf = bytes.find('\n');
  return lf == std::string_view::npos ? bytes.size() : lf;
}

bool is_loopback(const tcp::endpoint& ep) {
  auto addr = ep.address();
  if (addr.is_v4()) {
    return addr.to_v4().is_loopback();
  }
  auto v6 = addr.to_v6();
  return v6.is_loopback()
         || (v6.is_v4_mapped() && net::ip::make_address_v4(net::ip::v4_mapped, v6).is_loopback());
}

}  // namespace

// -- the link between a responder and its session ------------------------------------------------

struct exchange_link {
  std::mutex mutex;
  std::shared_ptr<session> owner;  // reset when the response is complete or the client is gone
  std::function<void()> cancel_fn;
  bool cancelled = false;
  std::atomic<std::size_t> pending{0};
  std::function<void()> drain_fn;
  std::size_t drain_low = 0;
  net::io_context* io = nullptr;  ///< the server's
  /// Set when the server streams this request's body (`server_options::streamed_body`).
  bool streamed = false;
  std::optional<std::uint64_t> content_length;  ///< the streamed body's declared length

  std::shared_ptr<session> session_ptr() {
    std::lock_guard lock{mutex};
    return owner;
  }
};

// -- server state shared by sessions --------------------------------------------------------------

/// How a session counts against the connection limit.
enum class slot : std::uint8_t {
  counted,   ///< one of `max_connections`
  refusing,  ///< beyond it: answers 503 and closes
};

struct server::impl : std::enable_shared_from_this<server::impl> {
  impl(net::io_context& io, server_options o, handler h)
      : io(io),
        opts(std::move(o)),
        kept(resolve_kept(opts.kept_headers)),
        on_request(std::move(h)),
        acceptor(serial_executor(io)) {}

  void accept();
  /// Counts `sock` against the connection limit and starts its session.
  void admit(tcp::socket sock);
  /// Starts a session on `sock` (TLS when the server speaks it).
  void open_session(tcp::socket sock, slot s);

  net::io_context& io;
  server_options opts;
  std::vector<kept_field> kept;
  handler on_request;
  tcp::acceptor acceptor;
  std::uint16_t bound_port = 0;
  std::atomic<bool> stopping{false};
  /// The TLS context new connections use; null for plain HTTP. Replaced by `reload_tls`.
  std::atomic<std::shared_ptr<ssl::context>> tls;
  bool tls_on = false;
  std::atomic<std::size_t> open{0};      ///< sessions counted against max_connections
  std::atomic<std::size_t> refusing{0};  ///< sessions answering 503 beyond it
};

// -- one client connection ------------------------------------------------------------------------

/// What a responder sees of its session, whatever the stream under it (plain or TLS).
class session : public std::enable_shared_from_this<session> {
 public:
  virtual ~session() = default;

  virtual net::any_io_executor executor() = 0;

  // Called on the session's executor (posted by responders).
  virtual void on_response(const std::shared_ptr<exchange_link>& link, response res) = 0;
  virtual void on_stream_begin(const std::shared_ptr<exchange_link>& link, response head) = 0;
  virtual void on_stream_write(const std::shared_ptr<exchange_link>& link, std::string bytes) = 0;
  virtual void on_stream_end(const std::shared_ptr<exchange_link>& link, std::string last) = 0;
  virtual void on_stream_abort(const std::shared_ptr<exchange_link>& link) = 0;
  virtual void on_body_read(const std::shared_ptr<exchange_link>& link,
                            std::function<void(body_piece)> fn) = 0;
};

/// One client connection over `Stream`: `tcp::socket` (plain HTTP) or `tls_stream`. The one
/// session code of both; only the handshake and the stream type differ.
template <class Stream>
class stream_session final : public session {
 public:
  static constexpr bool is_tls = std::is_same_v<Stream, tls_stream>;

  /// `args` construct the stream (the socket, and for TLS the context `pin` points to).
  template <class... Args>
  stream_session(std::shared_ptr<server::impl> srv, slot s, std::shared_ptr<ssl::context> pin,
                 Args&&... args)
      : stream_(std::forward<Args>(args)...),
        timer_(stream_.get_executor()),
        srv_(std::move(srv)),
        tls_(std::move(pin)),
        slot_(s) {
    error_code ec;
    auto peer = socket().remote_endpoint(ec);
    loopback_ = !ec && is_loopback(peer);
    if (!ec) {
      peer_ = peer.address().to_string();
    }
    socket().set_option(tcp::no_delay(true), ec);
  }

  ~stream_session() override {
    release_slot();
    if (socket().is_open()) {
      // The last reference may be dropped on an actor thread (through a responder's link):
      // close the socket on its own executor, never from a foreign thread.
      auto ex = socket().get_executor();
      net::post(ex, [doomed = std::make_shared<tcp::socket>(std::move(socket()))] {
        error_code ec;
        doomed->close(ec);
      });
    }
  }

  void start() {
    timer_.expires_at(steady::time_point::max());
    watch();
    if constexpr (is_tls) {
      // The handshake is bounded by the read timeout; a failed one just closes.
      set_deadline(steady::now() + srv_->opts.read_timeout);
      stream_.async_handshake([self = self_ptr()](error_code ec) {
        if (self->phase_ == phase::closed) {
          return;
        }
        if (ec) {
          return self->close_now();
        }
        self->clear_deadline();
        self->begin();
      });
    } else {
      begin();
    }
  }

  net::any_io_executor executor() override { return stream_.get_executor(); }

  void on_response(const std::shared_ptr<exchange_link>& link, response res) override;
  void on_stream_begin(const std::shared_ptr<exchange_link>& link, response head) override;
  void on_stream_write(const std::shared_ptr<exchange_link>& link, std::string bytes) override;
  void on_stream_end(const std::shared_ptr<exchange_link>& link, std::string last) override;
  void on_stream_abort(const std::shared_ptr<exchange_link>& link) override;
  void on_body_read(const std::shared_ptr<exchange_link>& link,
                    std::function<void(body_piece)> fn) override;

 private:
  std::shared_ptr<stream_session> self_ptr() {
    return std::static_pointer_cast<stream_session>(shared_from_this());
  }

  tcp::socket& socket() noexcept { return beast::get_lowest_layer(stream_); }

  /// Gives back this session's place in the connection count (once).
  void release_slot() noexcept {
    if (released_) {
      return;
    }
    released_ = true;
    (slot_ == slot::counted ? srv_->open : srv_->refusing).fetch_sub(1, std::memory_order_relaxed);
  }

  /// The connection is ready for HTTP: read the first request, or refuse it.
  void begin() {
    if (slot_ == slot::refusing) {
      return refuse();
    }
    read_header();
  }

  /// Beyond `max_connections`: 503 at once, without reading the request; the send side is shut
  /// down after it, and what the client already sent is drained (briefly) so that closing does
  /// not reset the connection before the client reads the answer.
  void refuse() {
    keep_alive_ = false;
    drain_after_write_ = true;
    drain_budget_ = 64 * 1024;
    drain_time_ = std::chrono::seconds(1);
    reply_and_close(503, errc::unavailable,
                    "the gateway has too many open connections (limit "
                        + std::to_string(srv_->opts.max_connections) + "); retry later",
                    {{"retry-after", "1"}});
  }

  enum class phase : std::uint8_t { reading, handling, responding_final, closing, closed };

  // -- deadline watchdog: one timer, re-armed lazily ----------------------------------------------
  void set_deadline(steady::time_point t) {
    deadline_ = t;
    if (t < timer_.expiry()) {
      timer_.expires_at(t);  // cancels the pending wait; its handler re-arms
    }
  }
  void clear_deadline() { deadline_ = steady::time_point::max(); }
  void watch() {
    timer_.async_wait([self = self_ptr()](error_code) {
      if (self->phase_ == phase::closed) {
        return;
      }
      if (self->deadline_ <= steady::now()) {
        self->deadline_ = steady::time_point::max();
        self->close_now();
        return;
      }
      self->timer_.expires_at(self->deadline_);
      self->watch();
    });
  }

  // -- reading ------------------------------------------------------------------------------------
  void read_header() {
    phase_ = phase::reading;
    parser_.emplace(srv_->kept, static_cast<std::uint32_t>(srv_->opts.max_header_bytes),
                    srv_->opts.max_body_bytes);
    parser_->reserve_up_to(srv_->opts.max_body_bytes);  // within the 413 limit, as before
    parser_->field_limit(srv_->opts.max_header_count);
    parser_->target_limit(srv_->opts.max_url_bytes);
    set_deadline(steady::now() + srv_->opts.idle_timeout);
    bhttp::async_read_header(
        stream_, buf_, *parser_,
        [self = self_ptr()](error_code ec, std::size_t) { self->on_header(ec); });
  }

  void on_header(error_code ec) {
    if (phase_ == phase::closed) {
      return;
    }
    if (ec) {
      return on_read_error(ec);
    }
    keep_alive_ = parser_->keep_alive();
    std::optional<std::size_t> streamed;
    if (srv_->opts.streamed_body && !parser_->is_done()) {
      streamed = srv_->opts.streamed_body(parser_->method(), parser_->target());
    }
    body_limit_ = streamed.value_or(srv_->opts.max_body_bytes);
    if (auto len = parser_->content_length(); len && *len > body_limit_) {
      return reject_too_large();
    }
    if (parser_->is_done()) {
      return dispatch();
    }
    set_deadline(steady::now() + srv_->opts.read_timeout);
    if (parser_->expect_continue()) {
      auto interim = std::make_shared<std::string>("HTTP/1.1 100 Continue\r\n\r\n");
      net::async_write(stream_, net::buffer(*interim),
                       [self = self_ptr(), interim, streamed](error_code wec, std::size_t) {
                         if (wec) {
                           return self->close_now();
                         }
                         if (streamed) {
                           return self->dispatch_streamed();
                         }
                         self->read_body();
                       });
      return;
    }
    if (streamed) {
      return dispatch_streamed();
    }
    read_body();
  }

  void read_body() {
    bhttp::async_read(stream_, buf_, *parser_, [self = self_ptr()](error_code ec, std::size_t) {
      if (self->phase_ == phase::closed) {
        return;
      }
      if (ec) {
        return self->on_read_error(ec);
      }
      self->dispatch();
    });
  }

  void on_read_error(error_code ec) {
    if (ec == bhttp::error::body_limit) {
      return reject_too_large();
    }
    if (ec == bhttp::error::header_limit) {
      return reject_header();
    }
    if (ec == bhttp::error::end_of_stream || ec == net::error::eof
        || ec == net::error::operation_aborted || ec == net::error::connection_reset
        || ec == net::error::bad_descriptor) {
      return close_now();
    }
    if (ec.category() == bhttp::make_error_code(bhttp::error::body_limit).category()) {
      // Any other parse error: the request is malformed HTTP.
      return reply_and_close(400, errc::invalid_request, "malformed HTTP request");
    }
    close_now();
  }

  /// 413 as soon as the headers show it; the client may still be sending, so the response is
  /// flushed, the send side shut down, and the rest of the body drained (bounded) before closing.
  void reject_too_large() {
    std::string msg = "request body exceeds the limit of " + std::to_string(body_limit_) + " bytes";
    keep_alive_ = false;
    drain_after_write_ = true;
    reply_and_close(413, errc::payload_too_large, std::move(msg));
  }

  /// A header over one of its limits: 414 for the request target (also when the request line
  /// alone is past the header limit and longer than the target limit), else 431.
  void reject_header() {
    const auto& o = srv_->opts;
    if (parser_->target_too_long()
        || (!parser_->got_start_line() && start_line_length(buf_) > o.max_url_bytes)) {
      return reply_and_close(
          414, errc::invalid_request,
          "request target exceeds the limit of " + std::to_string(o.max_url_bytes) + " bytes");
    }
    if (parser_->too_many_fields()) {
      return reply_and_close(
          431, errc::invalid_request,
          "request has more than " + std::to_string(o.max_header_count) + " header fields");
    }
    reply_and_close(431, errc::invalid_request, "request headers are too large");
  }

  void reply_and_close(int status, errc code, std::string message, header_list headers = {}) {
    phase_ = phase::responding_final;
    keep_alive_ = false;
    response res;
    res.status = status;
    res.headers = std::move(headers);
    res.body = error_body(code, std::move(message));
    queue_.push_back(write_response_head(res, srv_->opts.server_name, false, false, false));
    queue_.push_back(std::move(res.body));
    end_after_flush_ = true;
    flush();
  }

  void dispatch() {
    request req = take_request();
    req.body = std::move(parser_->body());
    parser_.reset();
    begin_exchange();
    start_monitor();
    hand_over(std::move(req));
  }

  /// A request whose body the handler pulls (`server_options::streamed_body`): handed over with
  /// its head only; the parser stays, to read the body piece by piece in `on_body_read`.
  void dispatch_streamed() {
    request req = take_request();
    parser_->reserve_up_to(0);  // pieces are read into a small buffer, never the whole body
    begin_exchange();
    body_streaming_ = true;
    body_taken_ = 0;
    link_->streamed = true;
    if (auto len = parser_->content_length()) {
      link_->content_length = *len;
    }
    // No monitor read: the body's reads see a client that leaves.
    hand_over(std::move(req));
  }

  request take_request() {
    request req;
    req.method = parser_->method();
    req.target = std::move(parser_->target());
    req.headers = std::move(parser_->values());
    req.from_loopback = loopback_;
    req.peer = peer_;
    head_only_ = req.method == method::head;
    return req;
  }

  void begin_exchange() {
    body_streaming_ = false;
    body_done_ = false;
    body_error_ = body_status::more;
    link_ = std::make_shared<exchange_link>();
    link_->owner = shared_from_this();  // as a `session`
    link_->io = &srv_->io;
    phase_ = phase::handling;
    clear_deadline();
  }

  void hand_over(request req) {
    try {
      srv_->on_request(std::move(req), responder(link_));
    } catch (const std::exception&) {
      // The handler's responder was destroyed unanswered and has already queued a 500.
    }
  }

  /// The streamed body has not been read to its end: the response must close the connection.
  bool body_unread() const noexcept { return body_streaming_ && !body_done_; }

  /// Reads the next piece of a streamed body into `body_piece_` and hands it to `fn`.
  void read_body_piece(std::function<void(body_piece)> fn) {
    body_reading_ = true;
    body_piece_.clear();
    parser_->sink(&body_piece_, body_limit_ - body_taken_);
    set_deadline(steady::now() + srv_->opts.read_timeout);
    bhttp::async_read_some(
        stream_, buf_, *parser_,
        [self = self_ptr(), fn = std::move(fn)](error_code ec, std::size_t) mutable {
          self->on_body_piece(ec, std::move(fn));
        });
  }

  void on_body_piece(error_code ec, std::function<void(body_piece)> fn) {
    body_reading_ = false;
    body_piece piece;
    if (phase_ == phase::closed) {
      piece.status = body_status::failed;
      return fn(std::move(piece));
    }
    if (phase_ == phase::closing) {
      // The response ended while this read was pending: drain what the client still sends.
      drain_some();
      piece.status = body_status::failed;
      return fn(std::move(piece));
    }
    clear_deadline();
    if (parser_->too_large() || ec == bhttp::error::body_limit) {
      body_error_ = body_status::too_large;
      piece.status = body_status::too_large;
      return fn(std::move(piece));
    }
    const bool done = !ec && parser_->is_done();
    if (ec && !(ec == bhttp::error::need_buffer)) {
      if (ec.category() == bhttp::make_error_code(bhttp::error::bad_chunk).category()
          && ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message) {
        body_error_ = body_status::malformed;
        piece.status = body_status::malformed;
        return fn(std::move(piece));
      }
      client_gone();
      piece.status = body_status::failed;
      return fn(std::move(piece));
    }
    body_taken_ += body_piece_.size();
    if (!done && body_piece_.empty()) {
      // Only framing arrived (a chunk header): read on before answering.
      return read_body_piece(std::move(fn));
    }
    piece.bytes = std::move(body_piece_);
    body_piece_ = {};
    if (done) {
      body_done_ = true;
      parser_.reset();
      piece.status = body_status::last;
      start_monitor();  // the body is in: watch the socket for a client that leaves
    } else {
      piece.status = body_status::more;
    }
    fn(std::move(piece));
  }

  // -- client-disconnect detection while a request is in flight
  // ------------------------------------
  void start_monitor() {
    if (buf_.size() > 0 || monitor_pending_) {
      return;  // pipelined bytes are waiting: nothing to learn from the socket now
    }
    monitor_pending_ = true;
    // Into the room the buffer already has (at least 512 bytes, Beast's smallest read): the read
    // only waits for a close or the next request's first bytes, and it stays pending for as long
    // as a stream is open, so it does not grow the buffer (4 KiB per open stream before).
    const std::size_t room = std::max<std::size_t>(buf_.capacity() - buf_.size(), 512);
    stream_.async_read_some(buf_.prepare(room), [self = self_ptr()](error_code ec, std::size_t n) {
      self->monitor_pending_ = false;
      if (self->phase_ == phase::closed) {
        return;
      }
      if (!ec) {
        self->buf_.commit(n);
      }
      if (self->phase_ == phase::handling || self->phase_ == phase::responding_final) {
        if (ec && ec != net::error::operation_aborted) {
          self->client_gone();
        }
        return;
      }
      // The response finished while this read was pending: go on with the next request.
      if (self->phase_ == phase::reading) {
        if (ec && ec != net::error::operation_aborted) {
          return self->close_now();
        }
        self->read_header();
      }
    });
  }

  void client_gone() {
    std::function<void()> fn;
    if (link_) {
      std::lock_guard lock{link_->mutex};
      link_->cancelled = true;
      link_->owner.reset();
      fn = std::move(link_->cancel_fn);
    }
    close_now();
    if (fn) {
      fn();
    }
  }

  // -- writing ------------------------------------------------------------------------------------
  void enqueue(std::string bytes) {
    if (!bytes.empty()) {
      queue_.push_back(std::move(bytes));
    }
  }

  void flush() {
    if (writing_ || phase_ == phase::closed) {
      return;
    }
    if (queue_.empty()) {
      if (end_after_flush_) {
        finish();
      }
      return;
    }
    writing_ = true;
    in_write_.clear();
    in_write_.swap(queue_);
    buffers_.clear();
    std::size_t total = 0;
    for (const auto& s : in_write_) {
      buffers_.emplace_back(s.data(), s.size());
      total += s.size();
    }
    set_deadline(steady::now() + srv_->opts.write_timeout);
    net::async_write(stream_, buffers_, [self = self_ptr(), total](error_code ec, std::size_t) {
      self->writing_ = false;
      self->in_write_.clear();  // written: an open stream keeps no copy of its last chunk
      if (self->phase_ == phase::closed) {
        return;
      }
      if (ec) {
        return self->client_gone();
      }
      self->clear_deadline();
      self->wrote(total);
      self->flush();
    });
  }

  /// Accounts written bytes against the link's pending count and wakes a drain waiter.
  void wrote(std::size_t n) {
    if (!link_) {
      return;
    }
    std::function<void()> fn;
    {
      std::lock_guard lock{link_->mutex};
      auto before = link_->pending.load(std::memory_order_relaxed);
      auto after = before >= n ? before - n : 0;
      link_->pending.store(after, std::memory_order_relaxed);
      if (link_->drain_fn && after <= link_->drain_low) {
        fn = std::move(link_->drain_fn);
        link_->drain_fn = nullptr;
      }
    }
    if (fn) {
      fn();
    }
  }

  /// The response is fully written.
  void finish() {
    end_after_flush_ = false;
    streaming_ = false;
    if (link_) {
      std::function<void()> drain;
      {
        std::lock_guard lock{link_->mutex};
        link_->owner.reset();
        link_->cancel_fn = nullptr;
        drain = std::move(link_->drain_fn);
        link_->drain_fn = nullptr;
      }
      link_.reset();
      if (drain) {
        drain();
      }
    }
    if (drain_after_write_) {
      return drain_and_close();
    }
    if (!keep_alive_) {
      error_code ec;
      socket().shutdown(tcp::socket::shutdown_send, ec);
      return close_now();
    }
    phase_ = phase::reading;
    if (monitor_pending_) {
      // Wake the pending monitor read; its handler starts reading the next request. The idle
      // deadline is armed now: over TLS the cancel can miss a read whose wait had already
      // ended, and that read then waits again for the rest of a record, with no handler run.
      set_deadline(steady::now() + srv_->opts.idle_timeout);
      error_code ec;
      socket().cancel(ec);
      return;
    }
    read_header();
  }

  void drain_and_close() {
    phase_ = phase::closing;
    error_code ec;
    socket().shutdown(tcp::socket::shutdown_send, ec);
    set_deadline(steady::now() + drain_time_);
    if (drain_budget_ == 0) {
      drain_budget_ = std::max<std::size_t>(srv_->opts.max_body_bytes, 1 << 20);
    }
    if (body_reading_) {
      return;  // the pending body read drains when it completes (`on_body_piece`)
    }
    drain_some();
  }

  void drain_some() {
    auto scratch = std::make_shared<std::array<char, 16384>>();
    // The raw bytes, TLS or not: they are only thrown away.
    socket().async_read_some(net::buffer(*scratch),
                             [self = self_ptr(), scratch](error_code ec, std::size_t n) {
                               if (ec || n >= self->drain_budget_) {
                                 return self->close_now();
                               }
                               self->drain_budget_ -= n;
                               self->drain_some();
                             });
  }

  void close_now() {
    if (phase_ == phase::closed) {
      return;
    }
    phase_ = phase::closed;
    error_code ec;
    socket().close(ec);
    timer_.cancel();
    release_slot();
    if (link_) {
      std::function<void()> fn;
      {
        std::lock_guard lock{link_->mutex};
        link_->owner.reset();
        if (!link_->cancelled) {
          link_->cancelled = true;
          fn = std::move(link_->cancel_fn);
        }
        link_->drain_fn = nullptr;
      }
      link_.reset();
      if (fn) {
        fn();
      }
    }
  }

  bool current(const std::shared_ptr<exchange_link>& link) const {
    return link == link_ && (phase_ == phase::handling);
  }

  Stream stream_;
  net::steady_timer timer_;
  steady::time_point deadline_ = steady::time_point::max();
  std::shared_ptr<server::impl> srv_;
  std::shared_ptr<ssl::context> tls_;  ///< TLS: the context this connection was accepted with
  slot slot_;
  bool released_ = false;
  std::chrono::milliseconds drain_time_{5'000};
  beast::flat_buffer buf_;
  std::optional<request_parser> parser_;
  std::size_t body_limit_ = 0;  ///< the current request's body limit
  // A streamed body (`dispatch_streamed`): read on the handler's demand.
  bool body_streaming_ = false;
  bool body_done_ = false;
  /// `too_large` or `malformed` once a read failed so (nothing more is read); else `more`.
  body_status body_error_ = body_status::more;
  bool body_reading_ = false;
  std::size_t body_taken_ = 0;
  std::string body_piece_;
  std::shared_ptr<exchange_link> link_;
  phase phase_ = phase::reading;
  bool keep_alive_ = true;
  bool loopback_ = false;
  std::string peer_;  ///< the client's address, as text (empty if unknown)
  bool head_only_ = false;
  bool monitor_pending_ = false;
  bool writing_ = false;
  bool streaming_ = false;
  bool end_after_flush_ = false;
  bool drain_after_write_ = false;
  std::size_t drain_budget_ = 0;
  std::vector<std::string> queue_;
  std::vector<std::string> in_write_;
  std::vector<net::const_buffer> buffers_;

  friend class ib::http::responder;
};

template <class Stream>

void stream_session<Stream>::on_response(const std::shared_ptr<exchange_link>& link, response res) {
  if (!current(link)) {
    return;
  }
  phase_ = phase::responding_final;
  bool keep = keep_alive_ && !srv_->stopping.load(std::memory_order_relaxed) && !body_unread();
  keep_alive_ = keep;
  drain_after_write_ = drain_after_write_ || body_unread();
  enqueue(write_response_head(res, srv_->opts.server_name, keep, false, head_only_));
  if (!head_only_) {
    enqueue(std::move(res.body));
  }
  end_after_flush_ = true;
  flush();
}

template <class Stream>
void stream_session<Stream>::on_stream_begin(const std::shared_ptr<exchange_link>& link,
                                             response head) {
  if (!current(link) || streaming_) {
    return;
  }
  streaming_ = true;
  if (body_unread()) {
    keep_alive_ = false;
    drain_after_write_ = true;
  }
  std::string out = write_response_head(head, srv_->opts.server_name, keep_alive_, true, false);
  append_chunk(out, head.body);
  enqueue(std::move(out));
  flush();
}

template <class Stream>
void stream_session<Stream>::on_stream_write(const std::shared_ptr<exchange_link>& link,
                                             std::string bytes) {
  if (!current(link) || !streaming_) {
    return;
  }
  std::string out;
  out.reserve(bytes.size() + 16);
  append_chunk(out, bytes);
  enqueue(std::move(out));
  flush();
}

template <class Stream>
void stream_session<Stream>::on_stream_end(const std::shared_ptr<exchange_link>& link,
                                           std::string last) {
  if (!current(link) || !streaming_) {
    return;
  }
  phase_ = phase::responding_final;
  std::string out;
  out.reserve(last.size() + 24);
  append_chunk(out, last);
  append_last_chunk(out);
  enqueue(std::move(out));
  end_after_flush_ = true;
  flush();
}

template <class Stream>
void stream_session<Stream>::on_stream_abort(const std::shared_ptr<exchange_link>& link) {
  if (!current(link)) {
    return;
  }
  phase_ = phase::responding_final;
  keep_alive_ = false;
  end_after_flush_ = true;
  flush();
}

template <class Stream>
void stream_session<Stream>::on_body_read(const std::shared_ptr<exchange_link>& link,
                                          std::function<void(body_piece)> fn) {
  body_piece piece;
  if (link != link_ || phase_ == phase::closed || phase_ == phase::closing) {
    return fn(std::move(piece));  // failed: the exchange is over
  }
  if (body_error_ != body_status::more) {
    piece.status = body_error_;  // nothing more can be read
    return fn(std::move(piece));
  }
  if (!body_streaming_ || body_reading_) {
    return fn(std::move(piece));  // failed: not a streamed body, or a read is already pending
  }
  if (body_done_) {
    piece.status = body_status::last;
    return fn(std::move(piece));
  }
  read_body_piece(std::move(fn));
}

// -- responder ------------------------------------------------------------------------------------

responder::responder(std::shared_ptr<exchange_link> link) : link_(std::move(link)) {}

responder& responder::operator=(responder&& other) noexcept {
  if (this != &other) {
    responder tmp{std::move(*this)};  // answers (500) if this one was still pending
    link_ = std::move(other.link_);
    done_ = other.done_;
    started_ = other.started_;
    other.done_ = true;
  }
  return *this;
}

responder::~responder() {
  if (link_ && !done_ && started_) {
    stream_abort();
  } else if (link_ && !done_) {
    response res;
    res.status = 500;
    res.body = error_body(errc::internal, "the gateway failed to answer this request");
    send(std::move(res));
  }
}

namespace {

template <class F>
void post_to(const std::shared_ptr<exchange_link>& link, F&& fn) {
  auto s = link->session_ptr();
  if (!s) {
    return;
  }
  auto ex = s->executor();
  net::post(ex, [s = std::move(s), link, fn = std::forward<F>(fn)]() mutable { fn(*s, link); });
}

}  // namespace

void responder::send(response res) {
  if (!link_ || done_) {
    return;
  }
  done_ = true;
  post_to(link_,
          [res = std::move(res)](session& s, const std::shared_ptr<exchange_link>& l) mutable {
            s.on_response(l, std::move(res));
          });
}

void responder::stream_begin(response head) {
  if (!link_ || done_ || started_) {
    return;
  }
  started_ = true;
  link_->pending.fetch_add(head.body.size(), std::memory_order_relaxed);
  post_to(link_,
          [head = std::move(head)](session& s, const std::shared_ptr<exchange_link>& l) mutable {
            s.on_stream_begin(l, std::move(head));
          });
}

namespace {

void write_chunk(const std::shared_ptr<exchange_link>& link, std::string bytes) {
  link->pending.fetch_add(bytes.size(), std::memory_order_relaxed);
  post_to(link,
          [bytes = std::move(bytes)](session& s, const std::shared_ptr<exchange_link>& l) mutable {
            s.on_stream_write(l, std::move(bytes));
          });
}

}  // namespace

void responder::stream_write(std::string bytes) {
  if (!link_ || done_ || bytes.empty()) {
    return;
  }
  write_chunk(link_, std::move(bytes));
}

std::function<void(std::string)> responder::stream_writer() const {
  if (!link_) {
    return {};
  }
  // The session ignores a chunk once the exchange is no longer its current streaming one.
  return [link = link_](std::string bytes) {
    if (!bytes.empty()) {
      write_chunk(link, std::move(bytes));
    }
  };
}

void responder::stream_end(std::string last) {
  if (!link_ || done_) {
    return;
  }
  done_ = true;
  link_->pending.fetch_add(last.size(), std::memory_order_relaxed);
  post_to(link_,
          [last = std::move(last)](session& s, const std::shared_ptr<exchange_link>& l) mutable {
            s.on_stream_end(l, std::move(last));
          });
}

void responder::stream_abort() {
  if (!link_ || done_) {
    return;
  }
  done_ = true;
  post_to(link_, [](session& s, const std::shared_ptr<exchange_link>& l) { s.on_stream_abort(l); });
}

void responder::on_cancel(std::function<void()> fn) {
  if (!link_) {
    return;
  }
  bool now = false;
  {
    std::lock_guard lock{link_->mutex};
    if (link_->cancelled) {
      now = true;
    } else {
      link_->cancel_fn = std::move(fn);
    }
  }
  if (now && fn) {
    fn();
  }
}

std::shared_ptr<body_source> responder::body_source() const {
  if (!link_ || !link_->streamed) {
    return nullptr;
  }
  return std::make_shared<http::body_source>(link_);
}

net::io_context* responder::io_context() const noexcept {
  return link_ ? link_->io : nullptr;
}

void body_source::read(std::function<void(body_piece)> fn) {
  auto s = link_->session_ptr();
  if (!s) {
    return fn(body_piece{});  // failed: the exchange is over
  }
  auto ex = s->executor();
  net::post(ex, [s = std::move(s), link = link_, fn = std::move(fn)]() mutable {
    s->on_body_read(link, std::move(fn));
  });
}

std::optional<std::uint64_t> body_source::content_length() const noexcept {
  return link_->content_length;
}

std::size_t responder::pending_bytes() const noexcept {
  return link_ ? link_->pending.load(std::memory_order_relaxed) : 0;
}

void responder::when_drained(std::size_t low_water, std::function<void()> fn) {
  if (!link_) {
    return;
  }
  bool now = false;
  {
    std::lock_guard lock{link_->mutex};
    if (link_->pending.load(std::memory_order_relaxed) <= low_water || !link_->owner) {
      now = true;
    } else {
      link_->drain_low = low_water;
      link_->drain_fn = std::move(fn);
    }
  }
  if (now && fn) {
    fn();
  }
}

// -- server ---------------------------------------------------------------------------------------

void server::impl::accept() {
  acceptor.async_accept(serial_executor(io),
                        [self = shared_from_this()](error_code ec, tcp::socket sock) {
                          if (ec == net::error::operation_aborted || !self->acceptor.is_open()) {
                            return;
                          }
                          if (!ec) {
                            self->admit(std::move(sock));
                          }
                          // Transient accept errors (EMFILE, ECONNABORTED) must not stop the
                          // server.
                          self->accept();
                        });
}

void server::impl::admit(tcp::socket sock) {
  std::size_t limit = opts.max_connections;
  if (open.fetch_add(1, std::memory_order_relaxed) < limit || limit == 0) {
    return open_session(std::move(sock), slot::counted);
  }
  open.fetch_sub(1, std::memory_order_relaxed);
  if (refusing.fetch_add(1, std::memory_order_relaxed) < max_refusing) {
    return open_session(std::move(sock), slot::refusing);
  }
  // Even the refusals are at their limit: close at once (the peer sees a reset, not a wait).
  refusing.fetch_sub(1, std::memory_order_relaxed);
  error_code ec;
  sock.set_option(net::socket_base::linger(true, 0), ec);
  sock.close(ec);
}

void server::impl::open_session(tcp::socket sock, slot s) {
  if (!tls_on) {
    std::make_shared<stream_session<tcp::socket>>(shared_from_this(), s, nullptr, std::move(sock))
        ->start();
    return;
  }
  auto ctx = tls.load();
  auto& ref = *ctx;
  std::make_shared<stream_session<tls_stream>>(shared_from_this(), s, std::move(ctx),
                                               std::move(sock), ref.native_handle(),
                                               tls_stream::role::server)
      ->start();
}

server::server(net::io_context& io, server_options opts, handler h)
    : impl_(std::make_shared<impl>(io, std::move(opts), std::move(h))) {}

server::~server() {
  close();
}

result<void> server::listen() {
  if (impl_->opts.kept_headers.size() > max_kept_headers) {
    return error{errc::internal,
                 "cannot keep more than " + std::to_string(max_kept_headers) + " request headers"};
  }
  if (impl_->opts.tls_cert_file.empty() != impl_->opts.tls_key_file.empty()) {
    return error{errc::internal, "TLS needs both a certificate file and a key file"};
  }
  if (!impl_->opts.tls_cert_file.empty()) {
    auto ctx = make_server_tls_context(impl_->opts.tls_cert_file, impl_->opts.tls_key_file);
    if (!ctx) {
      return ctx.error();
    }
    impl_->tls.store(std::move(*ctx));
    impl_->tls_on = true;
  }
  error_code ec;
  auto addr = net::ip::make_address(impl_->opts.host, ec);
  tcp::endpoint ep;
  if (ec) {
    tcp::resolver resolver{impl_->io};
    auto results = resolver.resolve(impl_->opts.host, std::to_string(impl_->opts.port), ec);
    if (ec || results.empty()) {
      return error{errc::invalid_request, "cannot resolve listen host " + impl_->opts.host};
    }
    ep = *results.begin();
  } else {
    ep = tcp::endpoint{addr, impl_->opts.port};
  }
  auto& acc = impl_->acceptor;
  acc.open(ep.protocol(), ec);
  if (!ec) {
    acc.set_option(net::socket_base::reuse_address(true), ec);
    acc.bind(ep, ec);
  }
  if (!ec) {
    acc.listen(net::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    return error{errc::internal, "cannot listen on " + impl_->opts.host + ":"
                                     + std::to_string(impl_->opts.port) + ": " + ec.message()};
  }
  impl_->bound_port = acc.local_endpoint(ec).port();
  return {};
}

void server::start() {
  net::post(impl_->acceptor.get_executor(), [i = impl_] { i->accept(); });
}

result<void> server::reload_tls() {
  if (!impl_->tls_on) {
    return error{errc::internal, "the listener does not speak TLS"};
  }
  auto ctx = make_server_tls_context(impl_->opts.tls_cert_file, impl_->opts.tls_key_file);
  if (!ctx) {
    return ctx.error();
  }
  impl_->tls.store(std::move(*ctx));
  return {};
}

bool server::is_tls() const noexcept {
  return impl_->tls_on;
}

std::uint16_t server::port() const noexcept {
  return impl_->bound_port;
}

void server::close() {
  if (!impl_) {
    return;
  }
  impl_->stopping.store(true);
  net::post(impl_->acceptor.get_executor(), [i = impl_] {
    error_code ec;
    i->acceptor.close(ec);
  });
}

}  // namespace ib::http
