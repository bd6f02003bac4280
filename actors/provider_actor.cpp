#include "actors/provider_actor.hpp"

#include <caf/all.hpp>

#include "actors/messages.hpp"
#include "core/error.hpp"
#include "http/client.hpp"
#include "providers/adapter.hpp"

namespace ib::actors {

namespace {

using steady = std::chrono::steady_clock;

std::string failure_envelope(const config::provider_config& cfg, outcome o, int status) {
  std::string msg = cfg.name;
  msg += ": ";
  if (status != 0) {
    msg += "upstream answered HTTP ";
    msg += std::to_string(status);
  } else {
    msg += reason_text(o);
  }
  return to_envelope(error{errc::bad_gateway, std::move(msg)});
}

/// Where a call's stream pieces and its response go: the asker and the request's id, taken from
/// the provider actor's response promise when it took the call.
///
/// Why not `caf::response_promise::deliver`: in CAF 0.17 it must run on the promise's actor
/// (libcaf_core/src/response_promise.cpp: it reads `self->context()`, the execution unit of
/// whatever that actor runs now, and sending through it may `exec_later` the asker on another
/// thread's unit). The exchange ends on an I/O thread, so `respond` sends the response message
/// itself, exactly as `deliver` would but with no execution unit (as CAF's own
/// `sync_request_bouncer` does from foreign threads): the asker is scheduled normally.
class call_reply {
 public:
  call_reply(caf::strong_actor_ptr self, const caf::response_promise& rp)
      : self_(std::move(self)), to_(rp.source()), id_(rp.id()) {}

  /// A stream piece, as an ordinary message to the asker. It arrives before the response: both
  /// are sent from the exchange's (serialised) handlers, and both are of CAF's normal category,
  /// so they share one FIFO queue of the asker's mailbox.
  void piece(stream_piece p) const {
    if (to_) {
      to_->enqueue(caf::make_mailbox_element(nullptr, caf::make_message_id(), {}, chunk_atom::value,
                                             std::move(p)),
                   nullptr);
    }
  }

  /// The call's response; at most once (later calls do nothing).
  void respond(attempt_result r) {
    if (auto to = std::move(to_)) {
      to->enqueue(caf::make_mailbox_element(std::move(self_), id_.response_id(), {}, std::move(r)),
                  nullptr);
    }
  }

 private:
  caf::strong_actor_ptr self_;  ///< the provider actor: the response's sender, as in `deliver`
  caf::strong_actor_ptr to_;
  caf::message_id id_;
};

/// Receives one exchange's events on an I/O thread, translates them with the provider's adapter,
/// sends stream pieces to the asker and, when the exchange ends, the call's response.
class call_handler final : public http::exchange_handler {
 public:
  call_handler(std::shared_ptr<const config::provider_config> cfg, upstream_call call,
               call_reply reply)
      : cfg_(std::move(cfg)),
        call_(std::move(call)),
        reply_(std::move(reply)),
        start_(steady::now()) {}

  const upstream_call& call() const noexcept { return call_; }

  void on_head(const http::response_head&) override {
    translator_ = providers::make_stream_translator(*cfg_, *call_.request, call_.upstream_model);
  }

  http::body_action on_body(std::string_view bytes) override {
    http::body_action action;
    if (!translator_ || out_.failure || out_.done) {
      return action;
    }
    out_.client_bytes.clear();
    out_.payload = false;
    translator_->feed(bytes, out_);
    action.payload = out_.payload;
    if (!out_.client_bytes.empty()) {
      const bool model_now = !model_sent_ && !out_.model.empty();
      if (!model_now && writes_directly()) {
        call_.flow->write(std::move(out_.client_bytes));
      } else {
        stream_piece piece;
        piece.attempt = call_.attempt;
        piece.bytes = std::move(out_.client_bytes);
        piece.content = out_.content;
        if (model_now) {
          piece.model = out_.model;
          model_sent_ = true;
        }
        reply_.piece(std::move(piece));
        ++pieces_sent_;
      }
      out_.client_bytes = std::string{};
    }
    if (out_.failure) {
      action.stop = true;  // an in-band error: nothing more worth reading
      return action;
    }
    if (call_.flow && call_.flow->pending && call_.flow->pending() > call_.flow->high_water) {
      action.pause = true;
      auto control = call_.control;
      call_.flow->when_drained([control] { control->resume(); });
    }
    return action;
  }

  void on_complete(http::exchange_result r) override {
    const outcome failure = outcome_of(r.failure);
    attempt_result res;
    res.attempt = call_.attempt;
    res.upstream_status = r.head.status;
    res.retry_after = std::move(r.head.retry_after);
    res.retry_after_ms = std::move(r.head.retry_after_ms);
    if (failure == outcome::success && translator_) {
      finish_stream(res);
    } else if (failure == outcome::success) {
      providers::upstream_response up{r.head.status, r.head.content_type, r.body};
      auto d = providers::decode_response(*cfg_, *call_.request, call_.upstream_model, up);
      res.result = d.result;
      res.client_status = d.status;
      res.body = d.body_is_input ? std::move(r.body) : std::move(d.body);
      res.model = std::move(d.model);
      res.tokens = d.tokens;
      res.long_cooldown = d.long_cooldown;
    } else if (translator_ && out_.failure) {
      // The exchange was stopped on an in-band error: that error is the verdict.
      fill_failure(res, *out_.failure);
    } else {
      res.result = failure;
      res.client_status = failure == outcome::deadline ? 504 : 502;
      res.body = failure_envelope(*cfg_, failure, 0);
    }
    res.latency = elapsed();
    reply_.respond(std::move(res));
  }

 private:
  /// After the commit point, once the request actor has handled every piece sent to it: the
  /// handler may write to the client itself, in order (see `stream_flow`).
  bool writes_directly() const {
    const auto* flow = call_.flow.get();
    return flow != nullptr && flow->write && flow->committed.load(std::memory_order_acquire)
           && flow->forwarded.load(std::memory_order_acquire) == pieces_sent_;
  }

  std::chrono::microseconds elapsed() const {
    return std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - start_);
  }

  void finish_stream(attempt_result& res) {
    if (!out_.failure && !out_.done) {
      out_.client_bytes.clear();
      translator_->finish(out_);
      if (!out_.client_bytes.empty()) {
        stream_piece piece;
        piece.attempt = call_.attempt;
        piece.bytes = std::move(out_.client_bytes);
        piece.content = out_.content;
        reply_.piece(std::move(piece));
        ++pieces_sent_;
      }
    }
    if (out_.failure) {
      fill_failure(res, *out_.failure);
      return;
    }
    res.result = outcome::success;
    res.client_status = 200;
    res.model = out_.model.empty() ? call_.upstream_model : out_.model;
    res.tokens = out_.tokens;
  }

  void fill_failure(attempt_result& res, const providers::stream_failure& f) {
    res.result = f.result;
    res.client_status = f.status;
    res.body = f.envelope;
    res.model = out_.model;
    res.tokens = out_.tokens;
  }

  std::shared_ptr<const config::provider_config> cfg_;
  upstream_call call_;
  call_reply reply_;
  steady::time_point start_;
  std::unique_ptr<providers::stream_translator> translator_;
  providers::stream_output out_;
  bool model_sent_ = false;
  std::uint64_t pieces_sent_ = 0;  ///< pieces sent to the request actor (not written directly)
};

}  // namespace

http::client_options client_options_for(const config::provider_config& cfg, std::size_t max_body,
                                        const std::string& ca_file) {
  http::client_options o;
  o.endpoint.tls = cfg.endpoint.tls;
  o.endpoint.host = cfg.endpoint.host;
  o.endpoint.port = cfg.endpoint.port;
  o.connect_timeout = cfg.timeouts_ms.connect;
  o.first_byte_timeout = cfg.timeouts_ms.first_byte;
  o.total_timeout = cfg.timeouts_ms.total;
  o.pool_size = static_cast<std::size_t>(cfg.pool_size);
  o.max_body_bytes = max_body;
  o.ca_file = ca_file;  // the system store is always used as well
  return o;
}

outcome outcome_of(http::exchange_failure f) noexcept {
  using http::exchange_failure;
  switch (f) {
    case exchange_failure::none:
      return outcome::success;
    case exchange_failure::connect_error:
    case exchange_failure::tls_error:
      return outcome::connect_error;
    case exchange_failure::connect_timeout:
      return outcome::connect_timeout;
    case exchange_failure::reset:
      return outcome::reset;
    case exchange_failure::first_byte_timeout:
      return outcome::first_byte_timeout;
    case exchange_failure::idle_timeout:
    case exchange_failure::total_timeout:
      return outcome::total_timeout;
    case exchange_failure::deadline:
      return outcome::deadline;
    case exchange_failure::body_too_large:
    case exchange_failure::bad_response:
      return outcome::bad_response;
    case exchange_failure::cancelled:
      return outcome::cancelled;
    case exchange_failure::pool_closed:
      return outcome::provider_down;
  }
  return outcome::bad_response;
}

outcome outcome_of_refusal(const caf::error& e) noexcept {
  if (e && e.category() == error_category
      && e.code() == static_cast<std::uint8_t>(errc::invalid_request)) {
    return outcome::unsupported;
  }
  return outcome::provider_down;
}

provider_actor_handle::behavior_type provider_actor(provider_actor_handle::pointer self,
                                                    provider_options opts) {
  auto cfg = opts.provider;
  auto pool = std::make_shared<http::upstream_pool>(
      *opts.io.ctx, client_options_for(*cfg, opts.max_upstream_body, opts.ca_file));
  // However the actor ends, in-flight exchanges end with provider_down and respond with it.
  self->attach_functor([pool](const caf::error&) { pool->shutdown(); });
  return {
      [=](call_atom, upstream_call& call) -> caf::result<attempt_result> {
        std::optional<http::outgoing_request> req;
        try {
          auto up =
              providers::encode_request(*cfg, *call.request, call.upstream_model, call.api_key);
          if (!up) {
            // Not this provider's protocol: refuse the call; the caller records `unsupported`.
            return make_error(std::move(up).error());  // errc::invalid_request
          }
          req.emplace();
          req->target = std::move(up->target);
          req->headers = std::move(up->headers);
          req->body = std::move(up->body);
          req->stream = call.request->stream;
          req->deadline = call.deadline;
        } catch (const std::exception&) {
          // Caught at the handler boundary: an exception must not kill the provider actor.
          // The call counts as taken: the attempt ends as a bad response.
        }
        // Taken: the response is sent when the exchange ends, from the I/O thread (call_reply).
        auto rp = self->make_response_promise<attempt_result>();
        auto handler =
            std::make_shared<call_handler>(cfg, std::move(call),
                                           call_reply{caf::actor_cast<caf::strong_actor_ptr>(self),
                                                      static_cast<caf::response_promise&>(rp)});
        try {
          if (req) {
            handler->call().control->attach(pool->start(std::move(*req), handler));
            return rp;
          }
        } catch (const std::exception&) {
          // As above.
        }
        handler->on_complete(http::exchange_result{http::exchange_failure::bad_response});
        return rp;
      },
  };
}

}  // namespace ib::actors
