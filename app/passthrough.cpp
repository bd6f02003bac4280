#include "app/passthrough.hpp"

#include <atomic>
#include <charconv>
#include <chrono>
#include <map>
#include <mutex>
#include <utility>

#include <boost/asio/execution_context.hpp>
#include <boost/asio/io_context.hpp>

#include "actors/log.hpp"
#include "actors/provider_actor.hpp"
#include "app/routes.hpp"
#include "core/error.hpp"
#include "http/client.hpp"

namespace ib::app {

namespace {

namespace net = boost::asio;
using steady = std::chrono::steady_clock;

/// The provider pass-through requests go to.
constexpr std::string_view openai_name = "openai";

/// A streamed answer pauses the upstream read while more than this many bytes wait for the
/// client, and resumes once they drop to `low_water`.
constexpr std::size_t high_water = 256 * 1024;
constexpr std::size_t low_water = 64 * 1024;

// -- the upstream pools ---------------------------------------------------------------------------

/// The keep-alive pools of pass-through requests, one per upstream endpoint, owned by the
/// io_context they run on (an asio service: created on first use, shut down with the
/// io_context, so no exchange outlives the threads that run it).
class pool_service final : public net::execution_context::service {
 public:
  using key_type = pool_service;
  static inline net::execution_context::id id;

  explicit pool_service(net::execution_context& ctx) : service(ctx) {}

  std::shared_ptr<http::upstream_pool> pool_for(net::io_context& io,
                                                const http::client_options& o) {
    std::string key = (o.endpoint.tls ? "https://" : "http://") + o.endpoint.host + ":"
                      + std::to_string(o.endpoint.port) + " " + o.ca_file;
    std::lock_guard lock{mutex_};
    auto& slot = pools_[key];
    if (!slot) {
      slot = std::make_shared<http::upstream_pool>(io, o);
    }
    return slot;
  }

 private:
  void shutdown() override {
    std::map<std::string, std::shared_ptr<http::upstream_pool>> pools;
    {
      std::lock_guard lock{mutex_};
      pools.swap(pools_);
    }
    for (auto& [key, pool] : pools) {
      pool->shutdown();
    }
  }

  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<http::upstream_pool>> pools_;
};

// -- one forwarded request ------------------------------------------------------------------------

/// What the request and its exchange share: the responder, and why the body stopped.
struct relay_state {
  std::mutex mutex;
  http::responder res;
  std::shared_ptr<http::exchange_control> control;  ///< set once the exchange started
  bool cancelled = false;                           ///< the client left (under `mutex`)
  std::atomic<http::body_status> body_end{http::body_status::more};
  std::string request_id;
  std::shared_ptr<actors::inflight_tracker> inflight;
  /// Keeps the limiter `limit` points into alive (declared first, destroyed last).
  std::shared_ptr<const actors::gateway_deps> deps;
  limit_ticket limit;  ///< the user's in-flight slot, freed when the relay ends
  // For the log line (no body, no key, no query).
  std::string user_id;
  std::string method;
  std::string path;
  steady::time_point start;
  int status = 0;              ///< the answer's status; 0 when none was sent (the client left)
  std::size_t body_limit = 0;  ///< `limits.max_passthrough_body_bytes`, for the 413's message

  ~relay_state() {
    if (inflight) {
      inflight->remove();
    }
  }

  /// Logs the end of the request (level info): who, what, the status and the time taken.
  void log_end(http::exchange_failure f) const {
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - start).count();
    actors::log(actors::log_level::info, "passthrough",
                {{"request_id", request_id},
                 {"user_id", user_id},
                 {"provider", openai_name},
                 {"method", method},
                 {"path", path},
                 {"status", status},
                 {"latency_ms", ms},
                 {"upstream_failure", to_string(f)}});
  }

  http::header_list headers() const {
    return {{"x-request-id", request_id}, {"x-inferbridge-provider", std::string(openai_name)}};
  }

  void send_error(const error& err, http::header_list extra = {}) {
    http::response r;
    r.status = http_status(err.code);
    status = r.status;
    r.body = to_envelope(err);
    r.headers = headers();
    r.headers.insert(r.headers.end(), extra.begin(), extra.end());
    res.send(std::move(r));
  }

  /// The client left: ends the exchange (now, or as soon as it has started).
  void cancel() {
    std::shared_ptr<http::exchange_control> c;
    {
      std::lock_guard lock{mutex};
      cancelled = true;
      c = control;
    }
    if (c) {
      c->cancel();
    }
  }

  /// Answers `err` before anything was sent upstream, and logs it.
  void refuse(const error& err, http::header_list extra = {}) {
    send_error(err, std::move(extra));
    log_end(http::exchange_failure::none);
  }

  void resume() {
    std::shared_ptr<http::exchange_control> c;
    {
      std::lock_guard lock{mutex};
      c = control;
    }
    if (c) {
      c->resume();
    }
  }
};

/// The error an exchange's wire failure is answered with.
error failure_error(http::exchange_failure f) {
  using http::exchange_failure;
  switch (f) {
    case exchange_failure::connect_timeout:
    case exchange_failure::first_byte_timeout:
    case exchange_failure::idle_timeout:
    case exchange_failure::total_timeout:
    case exchange_failure::deadline:
      return {errc::gateway_timeout,
              "OpenAI did not answer in time (" + std::string(to_string(f)) + ").",
              {},
              "upstream_timeout"};
    default:
      break;
  }
  return {errc::bad_gateway,
          "The request to OpenAI failed (" + std::string(to_string(f)) + ").",
          {},
          "upstream_error"};
}

/// Relays OpenAI's answer to the client: the status, content type and body, streamed.
class relay final : public http::exchange_handler {
 public:
  explicit relay(std::shared_ptr<relay_state> st) : st_(std::move(st)) {}

  void on_head(const http::response_head& head) override {
    http::response r;
    r.status = head.status;
    r.content_type = head.content_type;
    r.headers = st_->headers();
    st_->status = head.status;
    st_->res.stream_begin(std::move(r));
    started_ = true;
  }

  http::body_action on_body(std::string_view bytes) override {
    http::body_action a;
    a.payload = true;
    st_->res.stream_write(std::string(bytes));
    if (st_->res.pending_bytes() > high_water) {
      a.pause = true;
      st_->res.when_drained(low_water, [st = st_] { st->resume(); });
    }
    return a;
  }

  void on_complete(http::exchange_result r) override {
    const auto failure = r.failure;
    answer(std::move(r));
    st_->log_end(failure);
  }

 private:
  void answer(http::exchange_result r) {
    auto& res = st_->res;
    if (started_) {
      if (r.failure == http::exchange_failure::none) {
        return res.stream_end();
      }
      // Cut short after the head: the client must see a broken response, not a short one.
      http::responder doomed = std::move(res);
      return;
    }
    if (r.failure == http::exchange_failure::none) {
      http::response out;
      out.status = r.head.status;
      out.content_type = r.head.content_type;
      out.headers = st_->headers();
      if (!r.head.retry_after.empty()) {
        out.headers.emplace_back("retry-after", r.head.retry_after);
      }
      out.body = std::move(r.body);
      st_->status = out.status;
      return res.send(std::move(out));
    }
    switch (st_->body_end.load()) {
      case http::body_status::too_large:
        return st_->send_error(error{
            errc::payload_too_large,
            "request body exceeds the limit of " + std::to_string(st_->body_limit) + " bytes"});
      case http::body_status::malformed:
        return st_->send_error(
            error{errc::invalid_request, "The request body's chunked framing is malformed."});
      case http::body_status::failed:
        return res.drop();  // the client left, or stopped sending
      case http::body_status::more:
      case http::body_status::last:
        break;
    }
    if (r.failure == http::exchange_failure::cancelled) {
      return res.drop();  // the client went away
    }
    st_->send_error(failure_error(r.failure), {{"x-should-retry", "false"}});
  }

  std::shared_ptr<relay_state> st_;
  bool started_ = false;
};

/// The request's deadline: `limits.request_timeout_ms`, shortened by a valid
/// `x-inferbridge-timeout-ms`.
steady::time_point deadline_of(const config::config& cfg, const http::request& req,
                               steady::time_point start) {
  auto timeout = cfg.limits_.request_timeout;
  const std::string& text = req.headers[timeout_header];
  std::int64_t ms = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
  if (!text.empty() && ec == std::errc{} && end == text.data() + text.size() && ms > 0) {
    timeout = std::min(timeout, std::chrono::milliseconds(ms));
  }
  return start + timeout;
}

/// A unique id for `x-request-id`: `req_pt_` + 16 hex of a per-process random prefix mixed
/// with a counter.
std::string new_request_id() {
  static const std::uint64_t prefix =
      static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
  static std::atomic<std::uint64_t> counter{0};
  const std::uint64_t n = prefix * 0x9E3779B97F4A7C15ULL + counter.fetch_add(1);
  static constexpr char hex[] = "0123456789abcdef";
  std::string id = "req_pt_";
  for (int i = 0; i < 16; ++i) {
    id.push_back(hex[(n >> (60 - 4 * i)) & 0xf]);
  }
  return id;
}

}  // namespace

std::string upstream_target(std::string_view base_path, std::string_view target) {
  constexpr std::string_view v1 = "/v1";
  if (target.starts_with(v1)
      && (target.size() == v1.size() || target[v1.size()] == '/' || target[v1.size()] == '?')) {
    target.remove_prefix(v1.size());
  }
  std::string out(base_path);
  out += target;
  if (out.empty() || out.front() != '/') {
    out.insert(out.begin(), '/');
  }
  return out;
}

std::optional<std::size_t> passthrough_body_limit(std::size_t limit, http::method m,
                                                  std::string_view target) {
  auto path = target.substr(0, target.find('?'));
  if (endpoint_of(routes().match(m, path)) != endpoint::openai_passthrough) {
    return std::nullopt;
  }
  return limit;
}

void openai_passthrough(const std::shared_ptr<const api_context>& api,
                        std::shared_ptr<const actors::user_entry> user, http::request& req,
                        http::responder& res, limit_ticket limit) {
  const auto start = steady::now();
  const config::config& cfg = *api->cfg;
  auto st = std::make_shared<relay_state>();
  st->deps = api->deps;
  st->limit = std::move(limit);
  st->request_id = new_request_id();
  st->res = std::move(res);
  st->start = start;
  st->user_id = user->id;
  st->method = std::string(http::to_string(req.method));
  st->path = std::string(req.path());
  st->body_limit = cfg.limits_.max_passthrough_body_bytes;
  const config::provider_config* openai = cfg.find_provider(openai_name);
  if (openai == nullptr) {
    return st->refuse(error{errc::unavailable,
                            "This endpoint is passed through to OpenAI, and this gateway has "
                            "no 'openai' provider configured.",
                            {},
                            "provider_not_configured"},
                      {{"x-should-retry", "false"}});
  }
  const actors::user_key* key = user->key_for(openai_name);
  if (key == nullptr) {
    return st->refuse(error{errc::no_provider_key,
                            "This endpoint is passed through to OpenAI, and you have no "
                            "OpenAI key. Register one with POST /v1/keys "
                            "({\"provider\":\"openai\",\"api_key\":\"sk-...\"}).",
                            {},
                            "no_provider_key"},
                      {{"x-should-retry", "false"}});
  }
  auto* io = st->res.io_context();
  if (io == nullptr) {
    return st->res.drop();  // an empty responder: nobody to answer
  }

  http::outgoing_request out;
  out.method = req.method;
  out.target = upstream_target(openai->endpoint.path, req.target);
  out.deadline = deadline_of(cfg, req, start);
  // A 2xx answer is relayed as it arrives; a HEAD's has no body (and must get none).
  out.stream = req.method != http::method::head;
  out.headers.emplace_back("authorization", "Bearer " + key->secret);
  for (auto [index, name] : {std::pair{content_type_header, std::string_view{"content-type"}},
                             std::pair{accept_header, std::string_view{"accept"}},
                             std::pair{openai_beta_header, std::string_view{"openai-beta"}}}) {
    if (!req.headers[index].empty()) {
      out.headers.emplace_back(name, std::move(req.headers[index]));
    }
  }
  if (auto source = st->res.body_source()) {
    out.body_length = source->content_length();
    out.pull_body = [source, weak = std::weak_ptr<relay_state>(st)](
                        std::function<void(http::body_chunk)> done) {
      source->read([done = std::move(done), weak](http::body_piece p) {
        http::body_chunk c;
        switch (p.status) {
          case http::body_status::more:
            c.bytes = std::move(p.bytes);
            break;
          case http::body_status::last:
            c.bytes = std::move(p.bytes);
            c.last = true;
            break;
          case http::body_status::too_large:
          case http::body_status::malformed:
          case http::body_status::failed:
            if (auto s = weak.lock()) {
              s->body_end.store(p.status);
            }
            c.failed = true;
            break;
        }
        done(std::move(c));
      });
    };
  } else {
    out.body = std::move(req.body);
  }

  auto pool = net::use_service<pool_service>(*io).pool_for(
      *io,
      actors::client_options_for(*openai, cfg.limits_.max_upstream_body_bytes, cfg.extra_ca_file));
  st->inflight = api->deps->inflight;
  st->inflight->add();
  // A client that leaves ends the upstream exchange (its connection is closed, never pooled).
  // Registered before the exchange starts: from then on only the exchange's strand touches `res`.
  st->res.on_cancel([weak = std::weak_ptr<relay_state>(st)] {
    if (auto s = weak.lock()) {
      s->cancel();
    }
  });
  auto control = pool->start(std::move(out), std::make_shared<relay>(st));
  bool cancelled = false;
  {
    std::lock_guard lock{st->mutex};
    st->control = control;
    cancelled = st->cancelled;
  }
  if (cancelled) {
    control->cancel();
  }
}

}  // namespace ib::app
