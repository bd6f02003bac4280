#include "actors/request_actor.hpp"

#include <algorithm>

#include <caf/all.hpp>

#include "actors/asio_scheduler.hpp"
#include "actors/messages.hpp"
#include "actors/provider_actor.hpp"
#include "core/breaker.hpp"
#include "core/error.hpp"
#include "core/request_record.hpp"
#include "core/request_walk.hpp"
#include "core/tier_plan.hpp"
#include "metrics/registry.hpp"
#include "providers/error_map.hpp"
#include "providers/front.hpp"

namespace ib::actors {

namespace {

using steady = std::chrono::steady_clock;

using std::chrono::duration_cast;
using std::chrono::microseconds;
using std::chrono::milliseconds;

std::int64_t ms_between(steady::time_point a, steady::time_point b) {
  return duration_cast<milliseconds>(b - a).count();
}

struct request_state {
  std::shared_ptr<request_context> ctx;
  /// The fallback walk (core/request_walk.hpp): every decision; this actor carries them out.
  std::optional<request_walk> walk;
  const config::tier_entry* current = nullptr;
  const health_slot* slot = nullptr;
  bool probe = false;
  steady::time_point attempt_start{};
  std::shared_ptr<call_control> control;
  std::shared_ptr<stream_flow> flow;  ///< the streamed attempt's, if any

  // Streams.
  std::string pending;       ///< held until the commit point
  std::string stream_model;  ///< the upstream model the stream named
  std::optional<std::int64_t> ttfb_ms;

  // Overhead (request_record::overhead_us): the whole request minus the upstream wait.
  std::int64_t upstream_us = 0;             ///< wall time of the attempts that ended, in µs
  std::optional<std::int64_t> overhead_us;  ///< fixed when the response (head) is built

  bool finished = false;
  static inline const char* name = "request_actor";
};

using request_actor_t = request_actor_handle::stateful_pointer<request_state>;

// -- headers and bodies ---------------------------------------------------------------------------

/// The client API's error body (the OpenAI envelope, or Anthropic's shape) plus
/// `inferbridge_attempts`.
std::string gateway_error_body(const request_state& st, const error& err,
                               const std::vector<attempt_record>& attempts) {
  return providers::front_error_body(st.ctx->request->api, err, &attempts);
}

/// The gateway's own time so far, in µs: since the request started, minus the ended attempts'
/// wall time and `serving_us` (the upstream wait of a stream still being served); at least 0.
std::int64_t overhead_now(const request_state& st, steady::time_point now,
                          std::int64_t serving_us = 0) {
  auto total = duration_cast<microseconds>(now - st.ctx->start).count();
  return std::max<std::int64_t>(0, total - st.upstream_us - serving_us);
}

// -- the walk -------------------------------------------------------------------------------------

void next_attempt(request_actor_t self);
void on_result(request_actor_t self, attempt_result& r);
void finish(request_actor_t self, int status, const std::string& provider, const std::string& model,
            const std::optional<usage>& tokens);

http::header_list base_headers(request_actor_t self, const std::string& provider,
                               const std::string& model, std::string attempts) {
  auto& st = self->state;
  if (!st.overhead_us) {
    st.overhead_us = overhead_now(st, steady::now());
  }
  http::header_list h;
  h.reserve(8 + st.ctx->rate_headers.size());
  h.emplace_back("x-request-id", st.ctx->id);
  h.emplace_back("x-inferbridge-tier", st.ctx->tier.empty() ? "direct" : st.ctx->tier);
  h.emplace_back("x-inferbridge-provider", provider.empty() ? "none" : provider);
  h.emplace_back("x-inferbridge-model", model);
  h.emplace_back("x-inferbridge-attempts", std::move(attempts));
  h.emplace_back("x-inferbridge-overhead-ms", overhead_ms_text(*st.overhead_us));
  h.insert(h.end(), st.ctx->rate_headers.begin(), st.ctx->rate_headers.end());
  return h;
}

http::header_list base_headers(request_actor_t self, const std::string& provider,
                               const std::string& model) {
  return base_headers(self, provider, model, attempts_header(self->state.walk->attempts()));
}

/// Frees the user's in-flight slot and charges the tokens the provider reported (total, else
/// prompt + completion; none when unknown). Called just before the last write of the answer:
/// a client that sends its next request as soon as it has read this one's end must find the slot
/// free and the tokens charged. Idempotent (the ticket counts once).
void settle(request_actor_t self, const std::optional<usage>& tokens) {
  std::int64_t used = 0;
  if (tokens) {
    used = tokens->total_tokens > 0 ? tokens->total_tokens
                                    : tokens->prompt_tokens + tokens->completion_tokens;
  }
  self->state.ctx->limit.finish(used, steady::now());
}

/// Every provider was tried or skipped: the final answer of design §4 (decided in core).
void answer_final(request_actor_t self) {
  auto& st = self->state;
  const std::string& route = st.ctx->tier.empty() ? st.ctx->request->model : st.ctx->tier;
  std::vector<std::string> providers;
  providers.reserve(st.ctx->plan.size());
  for (const auto& e : st.ctx->plan) {
    providers.push_back(e.provider);
  }
  auto f = st.walk->final_answer(route, providers, steady::now());
  http::response res;
  res.status = http_status(f.err.code);
  res.headers = base_headers(self, {}, {});
  if (f.no_retry) {
    res.headers.emplace_back("x-should-retry", "false");
  }
  if (f.retry_after_s) {
    res.headers.emplace_back("retry-after", std::to_string(*f.retry_after_s));
  }
  res.body = gateway_error_body(st, f.err, st.walk->attempts());
  settle(self, std::nullopt);
  st.ctx->responder.send(std::move(res));
  finish(self, res.status, {}, {}, std::nullopt);
}

/// When the user's cooldown for the current provider ends after the 429 `r` (its Retry-After,
/// default and cap from the config; the maximum when the quota is exhausted). Computed once,
/// here: the supervisor applies this very end, and the final 429's Retry-After announces it.
steady_time cooldown_end(request_actor_t self, const attempt_result& r) {
  const auto& cfg = self->state.ctx->deps->cfg->cooldown;
  auto now_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  auto d = r.long_cooldown
               ? cfg.max_cooldown
               : cooldown_for(parse_retry_after(r.retry_after, r.retry_after_ms, now_unix_ms), cfg);
  return steady::now() + d;
}

void report(request_actor_t self, const attempt_result& r, steady_time cooldown_until = {}) {
  auto& st = self->state;
  if (st.slot == nullptr) {
    return;
  }
  attempt_report rep;
  rep.user = st.ctx->user;
  rep.result = r.result;
  rep.probe = st.probe;
  rep.admitted_at = st.attempt_start;
  rep.latency = r.latency;
  rep.retry_after = r.retry_after;
  rep.retry_after_ms = r.retry_after_ms;
  rep.long_cooldown = r.long_cooldown;
  rep.cooldown_until = cooldown_until;
  self->send(st.slot->supervisor, report_atom::value, std::move(rep));
  if (st.ctx->deps->registry) {
    st.ctx->deps->registry->observe_attempt(st.current->provider, r.result,
                                            static_cast<double>(r.latency.count()) / 1e6);
  }
}

void start_call(request_actor_t self, const config::tier_entry& e, const health_slot* slot,
                const provider_actor_handle& provider, const user_key& key, bool probe) {
  auto& st = self->state;
  st.current = &e;
  st.slot = slot;
  st.probe = probe;
  st.attempt_start = steady::now();
  const auto attempt = st.walk->start(e.provider);
  st.control = std::make_shared<call_control>();
  st.flow = nullptr;
  upstream_call call;
  call.attempt = attempt;
  call.request = st.ctx->request;  // shared, not copied
  call.upstream_model = e.model;
  call.api_key = key.secret;
  call.deadline = st.ctx->deadline;
  call.control = st.control;
  if (st.ctx->request->stream) {
    auto flow = std::make_shared<stream_flow>();
    // The responder's link is shared with the session; these reads are thread-safe.
    auto* responder = &st.ctx->responder;
    auto ctx = st.ctx;  // keeps the responder alive for the exchange's callbacks
    flow->pending = [ctx, responder] { return responder->pending_bytes(); };
    flow->when_drained = [ctx, responder, low = flow->high_water / 4](std::function<void()> fn) {
      responder->when_drained(low, std::move(fn));
    };
    flow->write = responder->stream_writer();
    st.flow = flow;
    call.flow = std::move(flow);
  }
  if (!provider) {
    attempt_result r;
    r.attempt = attempt;
    r.result = outcome::provider_down;
    return on_result(self, r);
  }
  // The response is the attempt's result, when the exchange ends; a stream's pieces come before
  // it as chunk messages. No timeout here: the exchange has the request's deadline.
  self->request(provider, caf::infinite, call_atom::value, std::move(call))
      .then([self](attempt_result& r) { on_result(self, r); },
            [self, attempt](caf::error& e) {
              // Refused (the request cannot be expressed for this provider), or the provider
              // actor was gone before it took the call.
              attempt_result r;
              r.attempt = attempt;
              r.result = outcome_of_refusal(e);
              if (r.result == outcome::unsupported) {
                auto err = to_ib_error(e);
                r.client_status = http_status(err->code);
                r.message = std::move(err->message);
                r.param = std::move(err->param);
              }
              on_result(self, r);
            });
}

/// What `view_of` looked up for one plan entry; the walk calls or probes the entry it viewed
/// last, which then needs no second lookup (nor a second atomic snapshot load).
struct entry_lookup {
  const health_slot* slot = nullptr;
  const user_key* key = nullptr;
  std::shared_ptr<const health_snapshot> snap;
};

/// The health view of plan entry `i` for the user (key, breaker snapshot, 429 cooldown); what
/// it looked up is left in `found`.
provider_view view_of(const request_state& st, std::size_t i, entry_lookup& found) {
  const auto& e = st.ctx->plan[i];
  found.slot = st.ctx->deps->board->find(e.provider);
  found.key = found.slot != nullptr ? st.ctx->user->key_for(e.provider) : nullptr;
  found.snap = found.slot != nullptr ? found.slot->load() : nullptr;
  provider_view view;
  view.has_key = found.key != nullptr;
  const auto& snap = found.snap;
  if (snap) {
    view.state = snap->state;
    view.retry_at = snap->retry_at;
    if (snap->cooldowns) {
      if (auto it = snap->cooldowns->find(st.ctx->user->id); it != snap->cooldowns->end()) {
        view.cooldown_until = it->second;
      }
    }
  }
  return view;
}

void next_attempt(request_actor_t self) {
  auto& st = self->state;
  const auto& plan = st.ctx->plan;
  entry_lookup found;
  auto step = st.walk->advance(
      [&st, &found](std::size_t i) { return view_of(st, i, found); },
      [&plan](std::size_t i) -> const std::string& { return plan[i].provider; }, steady::now());
  if (step.action == walk_action::answer) {
    return answer_final(self);
  }
  const auto& e = plan[step.entry];
  const auto* slot = found.slot;
  const auto* key = found.key;
  if (step.action == walk_action::call) {
    return start_call(self, e, slot, found.snap->provider, *key, false);
  }
  // The breaker's cooldown has passed: only the supervisor may hand out the single probe.
  auto retry_at = found.snap->retry_at;
  auto refused = [self, &e](steady_time soon) {
    self->state.walk->probe_refused(e.provider, soon);
    next_attempt(self);
  };
  self->request(slot->supervisor, std::chrono::seconds(2), admit_atom::value)
      .then(
          [self, &e, slot, key, refused](bool ok) {
            if (self->state.finished) {
              return;
            }
            if (ok) {
              return start_call(self, e, slot, slot->load()->provider, *key, true);
            }
            refused(slot->load()->retry_at);
          },
          [self, refused, retry_at](caf::error&) {
            if (!self->state.finished) {
              refused(retry_at);
            }
          });
}

// -- results --------------------------------------------------------------------------------------

/// Sends the stream's head and what was held back. `serving_us`: the upstream wait of the
/// serving attempt up to its committing piece (0 when that attempt has already ended).
void commit_stream(request_actor_t self, std::string attempts, std::int64_t serving_us) {
  auto& st = self->state;
  auto now = steady::now();
  st.ttfb_ms = ms_between(st.ctx->start, now);
  st.overhead_us = overhead_now(st, now, serving_us);
  http::response head;
  head.status = 200;
  head.content_type = "text/event-stream; charset=utf-8";
  head.headers = base_headers(self, st.current->provider,
                              st.stream_model.empty() ? st.current->model : st.stream_model,
                              std::move(attempts));
  head.body = std::move(st.pending);
  st.pending = std::string{};
  st.ctx->responder.stream_begin(std::move(head));
}

void on_result(request_actor_t self, attempt_result& r) {
  auto& st = self->state;
  if (st.finished || !st.walk->in_flight() || r.attempt != st.walk->attempt()) {
    return;  // a late result of an attempt that was already given up
  }
  const steady_time until =
      r.result == outcome::rate_limited ? cooldown_end(self, r) : steady_time{};
  report(self, r, until);
  st.upstream_us += duration_cast<microseconds>(r.latency).count();
  const auto& provider = st.current->provider;
  attempt_end end;
  end.result = r.result;
  end.upstream_status = r.upstream_status;
  end.latency_ms = duration_cast<milliseconds>(r.latency).count();
  end.cooldown_until = until;
  end.long_cooldown = r.long_cooldown;
  std::optional<providers::error_fields> fields;
  if (r.result == outcome::rate_limited || r.result == outcome::key_rejected) {
    fields = providers::parse_error_body(r.body);
    if (fields) {
      end.message = fields->message;
    }
  }
  end.unsupported = r.message;
  end.param = r.param;
  auto model = r.model.empty() ? st.current->model : r.model;
  switch (st.walk->end(r.attempt, end)) {
    case end_action::ignore:
      return;
    case end_action::end_stream:
      settle(self, r.tokens);
      st.ctx->responder.stream_end();
      return finish(self, 200, provider, model, r.tokens);
    case end_action::end_with_error: {
      // After the commit point nothing can fall back: end the stream with an error event.
      providers::stream_failure f{r.result, r.client_status, r.body};
      if (f.envelope.empty()) {
        f.envelope = to_envelope(error{errc::bad_gateway, provider + ": the stream failed"});
      }
      settle(self, r.tokens);
      st.ctx->responder.stream_end(providers::front_stream_error_event(st.ctx->request->api, f));
      return finish(self, 502, provider, model, r.tokens);
    }
    case end_action::commit_and_end:
      // A complete stream that never reached the commit point (e.g. an empty answer).
      commit_stream(self, attempts_header(st.walk->attempts()), 0);
      settle(self, r.tokens);
      st.ctx->responder.stream_end();
      return finish(self, 200, provider, model, r.tokens);
    case end_action::answer: {
      st.ttfb_ms = ms_between(st.ctx->start, steady::now());
      http::response res;
      res.status = 200;
      res.headers = base_headers(self, provider, model);
      res.body = std::move(r.body);
      settle(self, r.tokens);
      st.ctx->responder.send(std::move(res));
      return finish(self, 200, provider, model, r.tokens);
    }
    case end_action::drop:
      settle(self, std::nullopt);
      st.ctx->responder.drop();
      return finish(self, 499, provider, model, std::nullopt);
    case end_action::answer_final:
      return answer_final(self);
    case end_action::pass_through: {
      // The request itself is at fault (400/404/413/422): the provider's error, same status.
      http::response res;
      res.status = r.client_status;
      res.headers = base_headers(self, provider, model);
      res.headers.emplace_back("x-should-retry", "false");
      res.body = providers::front_error_from_envelope(st.ctx->request->api, std::move(r.body),
                                                      r.client_status);
      settle(self, std::nullopt);
      st.ctx->responder.send(std::move(res));
      return finish(self, res.status, provider, model, std::nullopt);
    }
    case end_action::fall_back:
      st.pending.clear();
      st.stream_model.clear();
      return next_attempt(self);
  }
}

void on_piece(request_actor_t self, stream_piece& p) {
  const auto arrived = steady::now();
  auto& st = self->state;
  if (st.finished) {
    return;
  }
  const auto action = st.walk->piece(p.attempt, p.content);
  if (action == request_walk::piece_action::ignore) {
    return;
  }
  if (!p.model.empty()) {
    st.stream_model = std::move(p.model);
  }
  switch (action) {
    case request_walk::piece_action::write:
      st.ctx->responder.stream_write(std::move(p.bytes));
      break;
    case request_walk::piece_action::hold:
      st.pending += p.bytes;
      break;
    case request_walk::piece_action::commit:
      st.pending += p.bytes;
      // The attempt serving the stream shows as 200 in the headers sent now.
      commit_stream(self, st.walk->attempts_header_serving(),
                    duration_cast<microseconds>(arrived - st.attempt_start).count());
      if (st.flow) {
        st.flow->committed.store(true, std::memory_order_release);
      }
      break;
    case request_walk::piece_action::ignore:
      break;
  }
  // Written or held, in order: the exchange's handler may now write its next pieces itself if
  // this was the last one it sent here (see `stream_flow`).
  if (st.flow) {
    st.flow->forwarded.fetch_add(1, std::memory_order_release);
  }
}

void finish(request_actor_t self, int status, const std::string& provider, const std::string& model,
            const std::optional<usage>& tokens) {
  auto& st = self->state;
  if (st.finished) {
    return;
  }
  st.finished = true;
  auto now = steady::now();
  settle(self, tokens);  // already done before the last write, except on an unforeseen path
  auto rec = std::make_shared<request_record>();
  rec->id = st.ctx->id;
  rec->user_id = st.ctx->user->id;
  rec->created_us = st.ctx->start_unix_us;
  rec->tier = st.ctx->tier;
  rec->model = st.ctx->request->model;
  rec->provider = provider;
  rec->upstream_model = provider.empty() ? std::string{} : model;
  rec->attempts = st.walk->take_attempts();
  rec->status = status;
  rec->latency_ms = ms_between(st.ctx->start, now);
  rec->ttfb_ms = st.ttfb_ms;
  rec->stream = st.ctx->request->stream;
  rec->tokens = tokens;
  rec->overhead_us = st.overhead_us ? *st.overhead_us : overhead_now(st, now);
  if (st.ctx->deps->metrics) {
    self->send(st.ctx->deps->metrics, record_atom::value, std::move(rec));
  }
  if (st.ctx->deps->registry) {
    st.ctx->deps->registry->inflight_add(-1);
  }
  st.ctx->deps->inflight->remove();
  self->quit();
}

request_actor_handle::behavior_type request_actor(request_actor_t self,
                                                  std::shared_ptr<request_context> ctx) {
  auto& st = self->state;
  st.ctx = std::move(ctx);
  st.walk.emplace(st.ctx->plan.size(), st.ctx->deadline, st.ctx->request->stream);
  if (st.ctx->deps->registry) {
    st.ctx->deps->registry->inflight_add(1);
  }
  st.ctx->deps->inflight->add();
  auto handle = caf::actor_cast<request_actor_handle>(self);
  st.ctx->responder.on_cancel([handle, gate = st.ctx->deps->gate] {
    if (auto pass = gate->enter()) {
      caf::anon_send(handle, cancel_atom::value);
    }
  });
  next_attempt(self);
  return {
      [self](chunk_atom, stream_piece& p) { on_piece(self, p); },
      [self](cancel_atom) {
        auto& st = self->state;
        if (st.finished) {
          return;
        }
        if (st.control) {
          st.control->cancel();
        }
        if (st.walk->in_flight()) {
          attempt_result r;
          r.attempt = st.walk->attempt();
          r.result = outcome::cancelled;
          report(self, r);
          const auto waited = steady::now() - st.attempt_start;
          st.upstream_us += duration_cast<microseconds>(waited).count();
          st.walk->cancel(duration_cast<milliseconds>(waited).count());
        }
        std::string provider = st.current ? st.current->provider : std::string{};
        std::string model = st.current ? st.current->model : std::string{};
        settle(self, std::nullopt);
        st.ctx->responder.drop();
        finish(self, 499, provider, model, std::nullopt);
      },
  };
}

}  // namespace

void spawn_request_actor(caf::actor_system& sys, std::shared_ptr<request_context> ctx) {
  sys.spawn(request_actor, std::move(ctx));
  release_thread_logger();
}

void inflight_tracker::add() noexcept {
  std::lock_guard lock{mutex_};
  ++count_;
}

void inflight_tracker::remove() noexcept {
  std::lock_guard lock{mutex_};
  if (count_ > 0 && --count_ == 0) {
    idle_.notify_all();
  }
}

std::size_t inflight_tracker::count() const noexcept {
  std::lock_guard lock{mutex_};
  return count_;
}

void inflight_tracker::await_idle(std::chrono::milliseconds limit) {
  std::unique_lock lock{mutex_};
  idle_.wait_for(lock, limit, [this] { return count_ == 0; });
}

}  // namespace ib::actors
