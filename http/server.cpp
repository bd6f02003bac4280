#include "http/server.hpp"

#include <array>
#include <charconv>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "core/error.hpp"

namespace ib::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using steady = std::chrono::steady_clock;
using error_code = boost::system::error_code;

namespace {

std::atomic<std::uint64_t> unanswered_count{0};

/// A field of `server_options::kept_headers`, resolved once: Beast's code for the name, or
/// `unknown` and the name to compare (case-insensitively).
struct kept_field {
  bhttp::field code = bhttp::field::unknown;
  std::string name;
};

std::vector<kept_field> resolve_kept(const std::vector<std::string>& names) {
  std::vector<kept_field> out;
  for (const auto& n : names) {
    if (out.size() == max_kept_headers) {
      break;  // listen() reports it
    }
    out.push_back({bhttp::string_to_field(n), n});
  }
  return out;
}

method to_method(bhttp::verb v) noexcept {
  switch (v) {
    case bhttp::verb::get:
      return method::get;
    case bhttp::verb::head:
      return method::head;
    case bhttp::verb::post:
      return method::post;
    case bhttp::verb::put:
      return method::put;
    case bhttp::verb::patch:
      return method::patch;
    case bhttp::verb::delete_:
      return method::delete_;
    case bhttp::verb::options:
      return method::options;
    default:
      return method::other;
  }
}

void append_status_line(std::string& out, int status) {
  out += "HTTP/1.1 ";
  char num[8];
  auto [end, ec] = std::to_chars(num, num + sizeof num, status);
  (void)ec;
  out.append(num, end);
  out.push_back(' ');
  out += reason_phrase(status);
  out += "\r\n";
}

void append_header(std::string& out, std::string_view name, std::string_view value) {
  out += name;
  out += ": ";
  // Values may carry upstream text (a model name): never let a CR or LF split a header.
  if (std::memchr(value.data(), '\r', value.size()) == nullptr
      && std::memchr(value.data(), '\n', value.size()) == nullptr) {
    out += value;
  } else {
    for (char c : value) {
      out.push_back(c == '\r' || c == '\n' ? ' ' : c);
    }
  }
  out += "\r\n";
}

void append_size(std::string& out, std::size_t n) {
  char num[24];
  auto [end, ec] = std::to_chars(num, num + sizeof num, n);
  (void)ec;
  out.append(num, end);
}

/// The head of a response: status line and headers, ending with the blank line.
std::string render_head(const response& res, std::string_view server_name, bool keep_alive,
                        bool chunked, bool head_only) {
  std::string out;
  out.reserve(160 + res.headers.size() * 48);
  append_status_line(out, res.status);
  if (!server_name.empty()) {
    append_header(out, "server", server_name);
  }
  bool no_body = res.status == 204 || res.status == 304;
  if (!no_body && !res.content_type.empty()) {
    append_header(out, "content-type", res.content_type);
  }
  for (const auto& [name, value] : res.headers) {
    append_header(out, name, value);
  }
  if (chunked) {
    out += "transfer-encoding: chunked\r\n";
    out += "cache-control: no-cache\r\n";
  } else if (!no_body) {
    out += "content-length: ";
    append_size(out, head_only ? 0 : res.body.size());
    out += "\r\n";
  }
  if (!keep_alive) {
    out += "connection: close\r\n";
  }
  out += "\r\n";
  return out;
}

void append_chunk(std::string& out, std::string_view data) {
  if (data.empty()) {
    return;
  }
  static constexpr char hex[] = "0123456789abcdef";
  char size[16];
  int n = 0;
  for (std::size_t v = data.size(); v != 0; v >>= 4) {
    size[n++] = hex[v & 0xf];
  }
  while (n > 0) {
    out.push_back(size[--n]);
  }
  out += "\r\n";
  out += data;
  out += "\r\n";
}

std::string error_body(errc code, std::string message) {
  return to_envelope(error{code, std::move(message)});
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

/// The client request parser: keeps the request line, the few header fields the handler reads
/// (`server_options::kept_headers`) and the body, instead of storing every field (the OpenAI
/// SDKs send a dozen) in a map.
class request_parser final : public bhttp::basic_parser<true> {
 public:
  explicit request_parser(const std::vector<kept_field>& kept) : kept_(kept) {}

  request req;
  bool expect_continue = false;

 private:
  void on_request_impl(bhttp::verb method, beast::string_view, beast::string_view target, int,
                       error_code&) override {
    req.method = to_method(method);
    req.target.assign(target.data(), target.size());
  }
  void on_response_impl(int, beast::string_view, int, error_code& ec) override {
    ec = bhttp::error::bad_status;  // never called for a request parser
  }
  void on_field_impl(bhttp::field name, beast::string_view name_string, beast::string_view value,
                     error_code&) override {
    if (name == bhttp::field::expect) {
      expect_continue = beast::iequals(value, "100-continue");
    }
    for (std::size_t i = 0; i < kept_.size(); ++i) {
      // Known fields compare by Beast's code; only unknown ones by name.
      if (kept_[i].code == name
          && (name != bhttp::field::unknown || beast::iequals(name_string, kept_[i].name))) {
        req.headers[i].assign(value.data(), value.size());
        return;
      }
    }
  }
  void on_header_impl(error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>& length, error_code&) override {
    if (length) {
      req.body.reserve(static_cast<std::size_t>(*length));  // bounded by body_limit already
    }
  }
  std::size_t on_body_impl(beast::string_view body, error_code&) override {
    req.body.append(body.data(), body.size());
    return body.size();
  }
  void on_chunk_header_impl(std::uint64_t, beast::string_view, error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, beast::string_view body, error_code&) override {
    req.body.append(body.data(), body.size());
    return body.size();
  }
  void on_finish_impl(error_code&) override {}

  const std::vector<kept_field>& kept_;
};

// -- the link between a responder and its session ------------------------------------------------

struct exchange_link {
  std::mutex mutex;
  std::shared_ptr<session> owner;  // reset when the response is complete or the client is gone
  std::function<void()> cancel_fn;
  bool cancelled = false;
  std::atomic<std::size_t> pending{0};
  std::function<void()> drain_fn;
  std::size_t drain_low = 0;

  std::shared_ptr<session> session_ptr() {
    std::lock_guard lock{mutex};
    return owner;
  }
};

// -- server state shared by sessions --------------------------------------------------------------

struct server::impl : std::enable_shared_from_this<server::impl> {
  impl(net::io_context& io, server_options o, handler h)
      : io(io),
        opts(std::move(o)),
        kept(resolve_kept(opts.kept_headers)),
        on_request(std::move(h)),
        acceptor(net::make_strand(io)) {}

  void accept();

  net::io_context& io;
  server_options opts;
  std::vector<kept_field> kept;
  handler on_request;
  tcp::acceptor acceptor;
  std::uint16_t bound_port = 0;
  std::atomic<bool> stopping{false};
};

// -- one client connection ------------------------------------------------------------------------

class session : public std::enable_shared_from_this<session> {
 public:
  session(tcp::socket sock, std::shared_ptr<server::impl> srv)
      : sock_(std::move(sock)), timer_(sock_.get_executor()), srv_(std::move(srv)) {
    error_code ec;
    auto peer = sock_.remote_endpoint(ec);
    loopback_ = !ec && is_loopback(peer);
    sock_.set_option(tcp::no_delay(true), ec);
  }

  ~session() {
    if (sock_.is_open()) {
      // The last reference may be dropped on an actor thread (through a responder's link):
      // close the socket on its own executor, never from a foreign thread.
      auto ex = sock_.get_executor();
      net::post(ex, [doomed = std::make_shared<tcp::socket>(std::move(sock_))] {
        error_code ec;
        doomed->close(ec);
      });
    }
  }

  void start() {
    timer_.expires_at(steady::time_point::max());
    watch();
    read_header();
  }

  net::any_io_executor executor() { return sock_.get_executor(); }

  // Called on the session's executor (posted by responders).
  void on_response(const std::shared_ptr<exchange_link>& link, response res);
  void on_stream_begin(const std::shared_ptr<exchange_link>& link, response head);
  void on_stream_write(const std::shared_ptr<exchange_link>& link, std::string bytes);
  void on_stream_end(const std::shared_ptr<exchange_link>& link, std::string last);
  void on_stream_abort(const std::shared_ptr<exchange_link>& link);

 private:
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
    timer_.async_wait([self = shared_from_this()](error_code) {
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
    parser_.emplace(srv_->kept);
    parser_->header_limit(static_cast<std::uint32_t>(srv_->opts.max_header_bytes));
    parser_->body_limit(srv_->opts.max_body_bytes);
    set_deadline(steady::now() + srv_->opts.idle_timeout);
    bhttp::async_read_header(
        sock_, buf_, *parser_,
        [self = shared_from_this()](error_code ec, std::size_t) { self->on_header(ec); });
  }

  void on_header(error_code ec) {
    if (phase_ == phase::closed) {
      return;
    }
    if (ec) {
      return on_read_error(ec);
    }
    keep_alive_ = parser_->keep_alive();
    if (auto len = parser_->content_length(); len && *len > srv_->opts.max_body_bytes) {
      return reject_too_large();
    }
    if (parser_->is_done()) {
      return dispatch();
    }
    set_deadline(steady::now() + srv_->opts.read_timeout);
    if (parser_->expect_continue) {
      auto interim = std::make_shared<std::string>("HTTP/1.1 100 Continue\r\n\r\n");
      net::async_write(sock_, net::buffer(*interim),
                       [self = shared_from_this(), interim](error_code wec, std::size_t) {
                         if (wec) {
                           return self->close_now();
                         }
                         self->read_body();
                       });
      return;
    }
    read_body();
  }

  void read_body() {
    bhttp::async_read(sock_, buf_, *parser_,
                      [self = shared_from_this()](error_code ec, std::size_t) {
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
      return reply_and_close(431, errc::invalid_request, "request headers are too large");
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
    std::string msg = "request body exceeds the limit of ";
    append_size(msg, srv_->opts.max_body_bytes);
    msg += " bytes";
    keep_alive_ = false;
    drain_after_write_ = true;
    reply_and_close(413, errc::payload_too_large, std::move(msg));
  }

  void reply_and_close(int status, errc code, std::string message) {
    phase_ = phase::responding_final;
    keep_alive_ = false;
    response res;
    res.status = status;
    res.body = error_body(code, std::move(message));
    queue_.push_back(render_head(res, srv_->opts.server_name, false, false, false));
    queue_.push_back(std::move(res.body));
    end_after_flush_ = true;
    flush();
  }

  void dispatch() {
    request req = std::move(parser_->req);
    req.keep_alive = keep_alive_;
    req.from_loopback = loopback_;
    head_only_ = req.method == method::head;
    parser_.reset();

    link_ = std::make_shared<exchange_link>();
    link_->owner = shared_from_this();
    phase_ = phase::handling;
    clear_deadline();
    start_monitor();
    try {
      srv_->on_request(std::move(req), responder(link_));
    } catch (const std::exception&) {
      // The handler's responder was destroyed unanswered and has already queued a 500.
    }
  }

  // -- client-disconnect detection while a request is in flight
  // ------------------------------------
  void start_monitor() {
    if (buf_.size() > 0 || monitor_pending_) {
      return;  // pipelined bytes are waiting: nothing to learn from the socket now
    }
    monitor_pending_ = true;
    sock_.async_read_some(
        buf_.prepare(4096), [self = shared_from_this()](error_code ec, std::size_t n) {
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
    net::async_write(sock_, buffers_,
                     [self = shared_from_this(), total](error_code ec, std::size_t) {
                       self->writing_ = false;
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
      sock_.shutdown(tcp::socket::shutdown_send, ec);
      return close_now();
    }
    phase_ = phase::reading;
    if (monitor_pending_) {
      // Wake the pending monitor read; its handler starts reading the next request.
      error_code ec;
      sock_.cancel(ec);
      return;
    }
    read_header();
  }

  void drain_and_close() {
    phase_ = phase::closing;
    error_code ec;
    sock_.shutdown(tcp::socket::shutdown_send, ec);
    set_deadline(steady::now() + std::chrono::seconds(5));
    drain_budget_ = std::max<std::size_t>(srv_->opts.max_body_bytes, 1 << 20);
    drain_some();
  }

  void drain_some() {
    auto scratch = std::make_shared<std::array<char, 16384>>();
    sock_.async_read_some(net::buffer(*scratch),
                          [self = shared_from_this(), scratch](error_code ec, std::size_t n) {
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
    sock_.close(ec);
    timer_.cancel();
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

  tcp::socket sock_;
  net::steady_timer timer_;
  steady::time_point deadline_ = steady::time_point::max();
  std::shared_ptr<server::impl> srv_;
  beast::flat_buffer buf_;
  std::optional<request_parser> parser_;
  std::shared_ptr<exchange_link> link_;
  phase phase_ = phase::reading;
  bool keep_alive_ = true;
  bool loopback_ = false;
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

void session::on_response(const std::shared_ptr<exchange_link>& link, response res) {
  if (!current(link)) {
    return;
  }
  phase_ = phase::responding_final;
  bool keep = keep_alive_ && !srv_->stopping.load(std::memory_order_relaxed);
  keep_alive_ = keep;
  enqueue(render_head(res, srv_->opts.server_name, keep, false, head_only_));
  if (!head_only_) {
    enqueue(std::move(res.body));
  }
  end_after_flush_ = true;
  flush();
}

void session::on_stream_begin(const std::shared_ptr<exchange_link>& link, response head) {
  if (!current(link) || streaming_) {
    return;
  }
  streaming_ = true;
  std::string out = render_head(head, srv_->opts.server_name, keep_alive_, true, false);
  append_chunk(out, head.body);
  enqueue(std::move(out));
  flush();
}

void session::on_stream_write(const std::shared_ptr<exchange_link>& link, std::string bytes) {
  if (!current(link) || !streaming_) {
    return;
  }
  std::string out;
  out.reserve(bytes.size() + 16);
  append_chunk(out, bytes);
  enqueue(std::move(out));
  flush();
}

void session::on_stream_end(const std::shared_ptr<exchange_link>& link, std::string last) {
  if (!current(link) || !streaming_) {
    return;
  }
  phase_ = phase::responding_final;
  std::string out;
  out.reserve(last.size() + 24);
  append_chunk(out, last);
  out += "0\r\n\r\n";
  enqueue(std::move(out));
  end_after_flush_ = true;
  flush();
}

void session::on_stream_abort(const std::shared_ptr<exchange_link>& link) {
  if (!current(link)) {
    return;
  }
  phase_ = phase::responding_final;
  keep_alive_ = false;
  end_after_flush_ = true;
  flush();
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
    unanswered_count.fetch_add(1, std::memory_order_relaxed);
    stream_abort();
  } else if (link_ && !done_) {
    unanswered_count.fetch_add(1, std::memory_order_relaxed);
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

void responder::stream_write(std::string bytes) {
  if (!link_ || done_ || bytes.empty()) {
    return;
  }
  link_->pending.fetch_add(bytes.size(), std::memory_order_relaxed);
  post_to(link_,
          [bytes = std::move(bytes)](session& s, const std::shared_ptr<exchange_link>& l) mutable {
            s.on_stream_write(l, std::move(bytes));
          });
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

std::uint64_t responder::unanswered() noexcept {
  return unanswered_count.load(std::memory_order_relaxed);
}

// -- server ---------------------------------------------------------------------------------------

void server::impl::accept() {
  acceptor.async_accept(net::make_strand(io),
                        [self = shared_from_this()](error_code ec, tcp::socket sock) {
                          if (ec == net::error::operation_aborted || !self->acceptor.is_open()) {
                            return;
                          }
                          if (!ec) {
                            std::make_shared<session>(std::move(sock), self)->start();
                          }
                          // Transient accept errors (EMFILE, ECONNABORTED) must not stop the
                          // server.
                          self->accept();
                        });
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
