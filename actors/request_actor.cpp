#include "actors/request_actor.hpp"

#include <algorithm>
#include <condition_variable>
#include <mutex>

#include <caf/all.hpp>

#include "actors/messages.hpp"
#include "core/error.hpp"
#include "metrics/registry.hpp"

namespace ib::actors {

namespace {

using steady = std::chrono::steady_clock;

std::mutex inflight_mutex;
std::condition_variable inflight_zero;
std::size_t inflight_count = 0;

void inflight_change(int delta) {
  std::lock_guard lock{inflight_mutex};
  inflight_count = static_cast<std::size_t>(static_cast<long>(inflight_count) + delta);
  if (inflight_count == 0) {
    inflight_zero.notify_all();
  }
}
using std::chrono::duration_cast;
using std::chrono::microseconds;
using std::chrono::milliseconds;

std::int64_t ms_between(steady::time_point a, steady::time_point b) {
  return duration_cast<milliseconds>(b - a).count();
}

struct request_state {
  std::shared_ptr<request_context> ctx;
  std::size_t next = 0;           ///< index of the next plan entry to consider
  std::uint32_t attempt = 0;      ///< the attempt in flight (0 before the first)
  const config::tier_entry* current = nullptr;
  const health_slot* slot = nullptr;
  bool probe = false;
  bool in_flight = false;
  steady::time_point attempt_start{};
  std::shared_ptr<call_control> control;
  std::vector<attempt_record> attempts;

  // What the walk has seen, for the final error.
  int keyed = 0;            ///< providers the user has a key for
  int attempted = 0;        ///< upstream calls made
  int unsupported = 0;      ///< calls refused by the adapter before going upstream
  int skipped_open = 0;
  int skipped_cooldown = 0;
  std::optional<steady::time_point> soonest_open;
  std::optional<steady::time_point> soonest_cooldown;
  std::string unsupported_message;

  // Streams.
  bool committed = false;
  std::string pending;  ///< held until the commit point
  std::string stream_model;  ///< the upstream model the stream named
  std::optional<std::int64_t> ttfb_ms;

  bool finished = false;
  static inline const char* name = "request_actor";
};

using request_actor_t = caf::stateful_actor<request_state>;

// -- headers and bodies ---------------------------------------------------------------------------

std::string attempts_header(const std::vector<attempt_record>& attempts) {
  std::string out;
  for (const auto& a : attempts) {
    if (!out.empty()) {
      out.push_back(';');
    }
    out += a.provider;
    out.push_back('=');
    if (a.status != 0) {
      out += std::to_string(a.status);
    } else {
      out += a.reason;
    }
  }
  return out;
}

void append_attempts_json(std::string& out, const std::vector<attempt_record>& attempts) {
  out.push_back('[');
  bool first = true;
  for (const auto& a : attempts) {
    if (!first) {
      out.push_back(',');
    }
    first = false;
    out += R"({"provider":)";
    append_json_string(out, a.provider);
    if (a.status != 0) {
      out += R"(,"status":)";
      out += std::to_string(a.status);
    } else {
      out += R"(,"reason":)";
      append_json_string(out, a.reason);
    }
    out += R"(,"latency_ms":)";
    out += std::to_string(a.latency_ms);
    out.push_back('}');
  }
  out.push_back(']');
}

/// The OpenAI envelope plus `inferbridge_attempts`.
std::string gateway_error_body(const error& err, const std::vector<attempt_record>& attempts) {
  std::string env = to_envelope(err);
  // `{"error":{...}}`: insert before the two closing braces.
  std::string extra = R"(,"inferbridge_attempts":)";
  append_attempts_json(extra, attempts);
  env.insert(env.size() - 2, extra);
  return env;
}

std::string retry_after_seconds(steady::time_point when, steady::time_point now) {
  auto ms = std::max<std::int64_t>(0, ms_between(now, when));
  return std::to_string(std::max<std::int64_t>(1, (ms + 999) / 1000));
}

// -- the walk -------------------------------------------------------------------------------------

void next_attempt(request_actor_t* self);
void finish(request_actor_t* self, int status, const std::string& provider,
            const std::string& model, const std::optional<usage>& tokens);

http::header_list base_headers(request_actor_t* self, const std::string& provider,
                               const std::string& model) {
  auto& st = self->state;
  http::header_list h;
  h.reserve(8);
  h.emplace_back("x-request-id", st.ctx->id);
  h.emplace_back("x-inferbridge-tier", st.ctx->tier.empty() ? "direct" : st.ctx->tier);
  h.emplace_back("x-inferbridge-provider", provider.empty() ? "none" : provider);
  h.emplace_back("x-inferbridge-model", model);
  h.emplace_back("x-inferbridge-attempts", attempts_header(st.attempts));
  return h;
}

void record_skip(request_actor_t* self, const std::string& provider, outcome why) {
  self->state.attempts.push_back(attempt_record{provider, 0, std::string(reason_text(why)), 0});
}

void answer_error(request_actor_t* self, const error& err, bool no_retry,
                  const std::string& retry_after = {}) {
  auto& st = self->state;
  http::response res;
  res.status = http_status(err.code);
  res.headers = base_headers(self, {}, {});
  if (no_retry) {
    res.headers.emplace_back("x-should-retry", "false");
  }
  if (!retry_after.empty()) {
    res.headers.emplace_back("retry-after", retry_after);
  }
  res.body = gateway_error_body(err, st.attempts);
  st.ctx->responder.send(std::move(res));
  finish(self, res.status, {}, {}, std::nullopt);
}

/// Every provider was tried or skipped: the final answer of design §4.
void exhausted(request_actor_t* self) {
  auto& st = self->state;
  auto now = steady::now();
  const std::string& route = st.ctx->tier.empty() ? st.ctx->request->model : st.ctx->tier;
  if (st.keyed == 0) {
    std::string names;
    for (const auto& e : st.ctx->plan) {
      if (names.find(e.provider) == std::string::npos) {
        if (!names.empty()) {
          names += ", ";
        }
        names += e.provider;
      }
    }
    error err{errc::no_provider_key,
              "You have no provider key for any provider of " + route
                  + ". Register one with POST /v1/keys for one of: " + names + ".",
              "model", "no_provider_key"};
    return answer_error(self, err, true);
  }
  if (st.attempted == 0 && st.unsupported == 0) {
    if (st.skipped_cooldown > 0 && st.skipped_open == 0) {
      error err{errc::rate_limited,
                "Every provider of " + route
                    + " you have a key for is cooling down after rate limiting (429); retry "
                      "after the time given in Retry-After.",
                {}, "rate_limited"};
      return answer_error(self, err, false, retry_after_seconds(*st.soonest_cooldown, now));
    }
    auto soonest = st.soonest_open.value_or(now + std::chrono::seconds(1));
    if (st.soonest_cooldown) {
      soonest = std::min(soonest, *st.soonest_cooldown);
    }
    error err{errc::unavailable,
              "Every provider of " + route
                  + " you have a key for is unavailable (circuit open); retry after the time "
                    "given in Retry-After.",
              {}, "circuit_open"};
    return answer_error(self, err, true, retry_after_seconds(soonest, now));
  }
  if (st.attempted == 0 && st.unsupported > 0) {
    error err{errc::invalid_request, st.unsupported_message, {}, "unsupported_by_provider"};
    return answer_error(self, err, true);
  }
  error err{errc::bad_gateway,
            "All providers failed for " + route + ": " + attempts_header(st.attempts),
            {}, "all_providers_failed"};
  answer_error(self, err, true);
}

void report(request_actor_t* self, const attempt_result& r) {
  auto& st = self->state;
  if (st.slot == nullptr) {
    return;
  }
  auto rep = std::make_shared<attempt_report>();
  rep->user_id = st.ctx->user->id;
  rep->result = r.result;
  rep->probe = st.probe;
  rep->admitted_at = st.attempt_start;
  rep->latency = r.latency;
  rep->retry_after = r.retry_after;
  rep->retry_after_ms = r.retry_after_ms;
  rep->long_cooldown = r.long_cooldown;
  self->send(st.slot->supervisor, report_atom::value, std::move(rep));
  if (st.ctx->deps->registry) {
    st.ctx->deps->registry->observe_attempt(st.current->provider, r.result,
                                            static_cast<double>(r.latency.count()) / 1e6);
  }
}

void start_call(request_actor_t* self, const config::tier_entry& e, const health_slot* slot,
                const caf::actor& provider, const user_key& key, bool probe) {
  auto& st = self->state;
  st.current = &e;
  st.slot = slot;
  st.probe = probe;
  st.in_flight = true;
  st.attempt_start = steady::now();
  ++st.attempt;
  st.control = std::make_shared<call_control>();
  auto call = std::make_shared<upstream_call>();
  call->attempt = st.attempt;
  call->request = st.ctx->request;
  call->upstream_model = e.model;
  call->api_key = key.secret;
  call->deadline = st.ctx->deadline;
  call->reply_to = caf::actor_cast<caf::actor>(self);
  call->control = st.control;
  if (st.ctx->request->stream) {
    auto flow = std::make_shared<stream_flow>();
    // The responder's link is shared with the session; these reads are thread-safe.
    auto* responder = &st.ctx->responder;
    auto ctx = st.ctx;  // keeps the responder alive for the exchange's callbacks
    flow->pending = [ctx, responder] { return responder->pending_bytes(); };
    flow->when_drained = [ctx, responder, low = flow->high_water / 4](std::function<void()> fn) {
      responder->when_drained(low, std::move(fn));
    };
    call->flow = std::move(flow);
  }
  auto attempt = st.attempt;
  if (!provider) {
    auto r = std::make_shared<attempt_result>();
    r->attempt = attempt;
    r->result = outcome::provider_down;
    self->send(self, reply_atom::value, std::move(r));
    return;
  }
  self->request(provider, caf::infinite, call_atom::value, std::move(call))
      .then([] { /* the provider answers through reply_atom, never here */ },
            [self, attempt](caf::error&) {
              // The provider actor was gone before it took the call.
              auto r = std::make_shared<attempt_result>();
              r->attempt = attempt;
              r->result = outcome::provider_down;
              self->send(self, reply_atom::value, std::move(r));
            });
}

void next_attempt(request_actor_t* self) {
  auto& st = self->state;
  const auto& plan = st.ctx->plan;
  const auto& user = *st.ctx->user;
  while (st.next < plan.size()) {
    auto now = steady::now();
    if (now >= st.ctx->deadline) {
      return answer_error(self,
                          error{errc::gateway_timeout, "the request deadline expired", {},
                                "deadline"},
                          true);
    }
    const auto& e = plan[st.next++];
    const auto* slot = st.ctx->deps->board->find(e.provider);
    const auto* key = user.key_for(e.provider);
    if (slot == nullptr || key == nullptr) {
      record_skip(self, e.provider, outcome::skipped_no_key);
      continue;
    }
    ++st.keyed;
    auto snap = slot->load();
    if (snap->cooldowns) {
      auto it = snap->cooldowns->find(user.id);
      if (it != snap->cooldowns->end() && it->second > now) {
        record_skip(self, e.provider, outcome::skipped_cooldown);
        ++st.skipped_cooldown;
        st.soonest_cooldown = std::min(st.soonest_cooldown.value_or(it->second), it->second);
        continue;
      }
    }
    if (snap->state == breaker_state::closed) {
      return start_call(self, e, slot, snap->provider, *key, false);
    }
    if (snap->state == breaker_state::open && now < snap->retry_at) {
      record_skip(self, e.provider, outcome::skipped_circuit_open);
      ++st.skipped_open;
      st.soonest_open = std::min(st.soonest_open.value_or(snap->retry_at), snap->retry_at);
      continue;
    }
    // The cooldown has passed (or the breaker is half-open): only the supervisor may hand out
    // the single probe.
    auto retry_at = snap->retry_at;
    self->request(slot->supervisor, std::chrono::seconds(2), admit_atom::value)
        .then(
            [self, &e, slot, key](bool ok) {
              auto& st = self->state;
              if (st.finished) {
                return;
              }
              if (ok) {
                return start_call(self, e, slot, slot->load()->provider, *key, true);
              }
              record_skip(self, e.provider, outcome::skipped_circuit_open);
              ++st.skipped_open;
              auto soon = slot->load()->retry_at;
              st.soonest_open = std::min(st.soonest_open.value_or(soon), soon);
              next_attempt(self);
            },
            [self, &e, retry_at](caf::error&) {
              auto& st = self->state;
              if (st.finished) {
                return;
              }
              record_skip(self, e.provider, outcome::skipped_circuit_open);
              ++st.skipped_open;
              st.soonest_open = std::min(st.soonest_open.value_or(retry_at), retry_at);
              next_attempt(self);
            });
    return;
  }
  exhausted(self);
}

// -- results --------------------------------------------------------------------------------------

void commit_stream(request_actor_t* self) {
  auto& st = self->state;
  st.committed = true;
  st.ttfb_ms = ms_between(st.ctx->start, steady::now());
  // The attempt serving the stream shows as 200 in the headers sent now.
  auto attempts = st.attempts;
  st.attempts.push_back(attempt_record{st.current->provider, 200, {},
                                       ms_between(st.attempt_start, steady::now())});
  http::response head;
  head.status = 200;
  head.content_type = "text/event-stream; charset=utf-8";
  head.headers = base_headers(self, st.current->provider,
                              st.stream_model.empty() ? st.current->model : st.stream_model);
  st.attempts = std::move(attempts);
  head.body = std::move(st.pending);
  st.pending = std::string{};
  st.ctx->responder.stream_begin(std::move(head));
}

void on_result(request_actor_t* self, attempt_result& r) {
  auto& st = self->state;
  if (st.finished || !st.in_flight || r.attempt != st.attempt) {
    return;  // a late result of an attempt that was already given up
  }
  st.in_flight = false;
  report(self, r);
  const auto& provider = st.current->provider;
  auto latency_ms = duration_cast<milliseconds>(r.latency).count();
  if (r.result == outcome::unsupported) {
    ++st.unsupported;
    st.unsupported_message = provider + ": " + r.message;
    st.attempts.push_back(attempt_record{provider, 0, "unsupported", 0});
    return next_attempt(self);
  }
  ++st.attempted;
  // The status tells the story unless the upstream said 2xx and still failed (a timeout after the
  // head, a truncated or malformed body): then the reason does.
  bool ok_status = r.upstream_status >= 200 && r.upstream_status < 300;
  int shown = (r.upstream_status == 0 || (ok_status && r.result != outcome::success))
                  ? 0
                  : r.upstream_status;
  st.attempts.push_back(attempt_record{
      provider, shown, shown == 0 ? std::string(reason_text(r.result)) : std::string{},
      latency_ms});
  auto model = r.model.empty() ? st.current->model : r.model;
  if (st.ctx->request->stream && st.committed) {
    // After the commit point nothing can fall back: end the stream, with an error event if the
    // upstream failed (never a silent truncation).
    if (r.result == outcome::success) {
      st.ctx->responder.stream_end();
      return finish(self, 200, provider, model, r.tokens);
    }
    providers::stream_failure f{r.result, r.client_status, r.body};
    if (f.envelope.empty()) {
      f.envelope = to_envelope(error{errc::bad_gateway, provider + ": the stream failed"});
    }
    st.ctx->responder.stream_end(providers::stream_error_event(f));
    return finish(self, 502, provider, model, r.tokens);
  }
  if (r.result == outcome::success) {
    if (st.ctx->request->stream) {
      // A complete stream that never reached the commit point (e.g. an empty answer).
      commit_stream(self);
      st.ctx->responder.stream_end();
      return finish(self, 200, provider, model, r.tokens);
    }
    st.ttfb_ms = ms_between(st.ctx->start, steady::now());
    http::response res;
    res.status = 200;
    res.headers = base_headers(self, provider, model);
    res.body = std::move(r.body);
    st.ctx->responder.send(std::move(res));
    return finish(self, 200, provider, model, r.tokens);
  }
  if (r.result == outcome::cancelled) {
    st.ctx->responder.drop();
    return finish(self, 499, provider, model, std::nullopt);
  }
  if (r.result == outcome::deadline) {
    return answer_error(self,
                        error{errc::gateway_timeout, "the request deadline expired", {},
                              "deadline"},
                        true);
  }
  if (!falls_back(r.result)) {
    // The request itself is at fault (400/404/413/422): the provider's error, same status.
    http::response res;
    res.status = r.client_status;
    res.headers = base_headers(self, provider, model);
    res.headers.emplace_back("x-should-retry", "false");
    res.body = std::move(r.body);
    st.ctx->responder.send(std::move(res));
    return finish(self, res.status, provider, model, std::nullopt);
  }
  st.pending.clear();
  st.stream_model.clear();
  next_attempt(self);
}

void on_piece(request_actor_t* self, stream_piece& p) {
  auto& st = self->state;
  if (st.finished || !st.in_flight || p.attempt != st.attempt) {
    return;
  }
  if (!p.model.empty()) {
    st.stream_model = std::move(p.model);
  }
  if (st.committed) {
    st.ctx->responder.stream_write(std::move(p.bytes));
    return;
  }
  st.pending += p.bytes;
  if (p.content) {
    commit_stream(self);
  }
}

void finish(request_actor_t* self, int status, const std::string& provider,
            const std::string& model, const std::optional<usage>& tokens) {
  auto& st = self->state;
  if (st.finished) {
    return;
  }
  st.finished = true;
  auto now = steady::now();
  auto rec = std::make_shared<request_record>();
  rec->id = st.ctx->id;
  rec->user_id = st.ctx->user->id;
  rec->created_us = st.ctx->start_unix_us;
  rec->tier = st.ctx->tier;
  rec->model = st.ctx->request->model;
  rec->provider = provider;
  rec->upstream_model = provider.empty() ? std::string{} : model;
  rec->attempts = std::move(st.attempts);
  rec->status = status;
  rec->latency_ms = ms_between(st.ctx->start, now);
  rec->ttfb_ms = st.ttfb_ms;
  rec->stream = st.ctx->request->stream;
  rec->tokens = tokens;
  if (st.ctx->deps->metrics) {
    self->send(st.ctx->deps->metrics, record_atom::value, std::move(rec));
  }
  if (st.ctx->deps->registry) {
    st.ctx->deps->registry->inflight_add(-1);
  }
  inflight_change(-1);
  self->quit();
}

caf::behavior request_actor(request_actor_t* self, std::shared_ptr<request_context> ctx) {
  auto& st = self->state;
  st.ctx = std::move(ctx);
  st.attempts.reserve(st.ctx->plan.size() + 1);
  if (st.ctx->deps->registry) {
    st.ctx->deps->registry->inflight_add(1);
  }
  inflight_change(1);
  auto handle = caf::actor_cast<caf::actor>(self);
  st.ctx->responder.on_cancel([handle] { caf::anon_send(handle, cancel_atom::value); });
  next_attempt(self);
  return {
      [self](reply_atom, std::shared_ptr<attempt_result>& r) { on_result(self, *r); },
      [self](chunk_atom, std::shared_ptr<stream_piece>& p) { on_piece(self, *p); },
      [self](cancel_atom) {
        auto& st = self->state;
        if (st.finished) {
          return;
        }
        if (st.control) {
          st.control->cancel();
        }
        if (st.in_flight) {
          attempt_result r;
          r.attempt = st.attempt;
          r.result = outcome::cancelled;
          report(self, r);
          st.attempts.push_back(attempt_record{st.current->provider, 0, "cancelled",
                                               ms_between(st.attempt_start, steady::now())});
          st.in_flight = false;
        }
        std::string provider = st.current ? st.current->provider : std::string{};
        std::string model = st.current ? st.current->model : std::string{};
        st.ctx->responder.drop();
        finish(self, 499, provider, model, std::nullopt);
      },
  };
}

}  // namespace

void spawn_request_actor(caf::actor_system& sys, std::shared_ptr<request_context> ctx) {
  sys.spawn(request_actor, std::move(ctx));
}

std::size_t inflight_requests() noexcept {
  std::lock_guard lock{inflight_mutex};
  return inflight_count;
}

void await_inflight_requests(std::chrono::milliseconds limit) {
  std::unique_lock lock{inflight_mutex};
  inflight_zero.wait_for(lock, limit, [] { return inflight_count == 0; });
}

}  // namespace ib::actors
