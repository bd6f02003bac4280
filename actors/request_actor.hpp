#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "actors/messages.hpp"
#include "config/config.hpp"
#include "core/rate_limit.hpp"
#include "http/server.hpp"
#include "providers/chat_request.hpp"

namespace ib::metrics {
class registry;
}

namespace ib::actors {

struct health_board;
struct user_entry;

/// Guards use of the actor system from I/O threads (HTTP handlers, client-cancel callbacks)
/// against its shutdown: `enter` fails once `close_and_wait` has begun, and `close_and_wait`
/// returns only when no I/O thread is still inside.
class system_gate {
 public:
  /// Proof of being inside the gate (move-only; leaving the scope leaves the gate). False when
  /// `enter` was refused.
  class pass {
   public:
    explicit pass(system_gate* g) noexcept : gate_(g) {}
    pass(pass&& other) noexcept : gate_(std::exchange(other.gate_, nullptr)) {}
    pass(const pass&) = delete;
    pass& operator=(const pass&) = delete;
    ~pass() {
      if (gate_ != nullptr) {
        gate_->users_.fetch_sub(1, std::memory_order_release);
      }
    }
    explicit operator bool() const noexcept { return gate_ != nullptr; }

   private:
    system_gate* gate_;
  };

  /// Enters the gate (any thread, lock-free); a false pass once `close_and_wait` has begun.
  pass enter() noexcept {
    users_.fetch_add(1, std::memory_order_acq_rel);
    if (closed_.load(std::memory_order_acquire)) {
      users_.fetch_sub(1, std::memory_order_release);
      return pass{nullptr};
    }
    return pass{this};
  }

  /// Refuses later `enter`s and spins until every pass is gone (at shutdown; never on an I/O
  /// thread that may hold a pass).
  void close_and_wait() noexcept {
    closed_.store(true, std::memory_order_seq_cst);
    while (users_.load(std::memory_order_acquire) != 0) {
      std::this_thread::yield();
    }
  }

 private:
  std::atomic<int> users_{0};
  std::atomic<bool> closed_{false};
};

/// Counts the chat requests whose request actor has not finished, for a graceful shutdown (the
/// `inferbridge_inflight_requests` gauge shows the same count to operators). Thread-safe.
class inflight_tracker {
 public:
  /// One more request in flight.
  void add() noexcept;
  /// Wakes `await_idle` when the count reaches zero.
  void remove() noexcept;
  /// The requests in flight now.
  std::size_t count() const noexcept;
  /// Blocks until no request is in flight or `limit` passes. Never call it on an I/O thread.
  void await_idle(std::chrono::milliseconds limit);

 private:
  mutable std::mutex mutex_;
  std::condition_variable idle_;
  std::size_t count_ = 0;
};

/// What every request actor shares: configuration, the health board, the metrics actor.
/// Read-only once built (any thread).
struct gateway_deps {
  std::shared_ptr<system_gate> gate = std::make_shared<system_gate>();
  std::shared_ptr<inflight_tracker> inflight = std::make_shared<inflight_tracker>();
  std::shared_ptr<const config::config> cfg;
  std::shared_ptr<const health_board> board;
  metrics_supervisor_handle metrics;  ///< finished requests go here, `(record_atom, record)`
  std::shared_ptr<metrics::registry> registry;
  /// Per-user rate limits and in-flight counts (`rate_limits`, `limits.max_inflight_per_user`):
  /// the API admits each chat request here, the request actor finishes its ticket.
  std::shared_ptr<user_limiter> limiter = std::make_shared<user_limiter>();
};

/// One chat request, authenticated and parsed, ready to be routed.
struct request_context {
  std::string id;  ///< x-request-id
  /// When the HTTP handler took the request: the origin of latency, ttfb and overhead.
  std::chrono::steady_clock::time_point start;
  std::int64_t start_unix_us = 0;  ///< the same instant, in µs since the Unix epoch
  std::chrono::steady_clock::time_point deadline;          ///< no attempt runs past it
  std::shared_ptr<const providers::chat_request> request;  ///< parsed once, shared by attempts
  std::shared_ptr<const user_entry> user;                  ///< the authenticated caller
  std::string tier;                          ///< tier name; empty for a direct `provider/model`
  std::vector<config::tier_entry> plan;      ///< providers to try, in order
  http::responder responder;                 ///< answered exactly once, by the request actor
  std::shared_ptr<const gateway_deps> deps;  ///< shared by every request actor
  /// The user's in-flight slot (empty when no limit is on): finished, with the tokens used, when
  /// the answer is complete; freed by its destructor if the request dies first. Declared after
  /// `deps`, whose limiter it points into, so that it goes first.
  limit_ticket limit;
  /// `x-ratelimit-*` as admitted (empty when no rate limit is on): on every response.
  http::header_list rate_headers;
};

/// Spawns the request actor for one chat request (design §2, §4): it walks the plan, skipping
/// providers without a key, with an open breaker or in a 429 cooldown; calls each provider actor
/// in turn; falls back on the triggers of design §4; relays a stream from its commit point;
/// answers exactly once; reports every attempt to the provider's supervisor and the finished
/// request to the metrics actor; and cancels the upstream call if the client goes away.
/// Every answer it builds (and a stream's head) carries `ctx->rate_headers` and
/// `x-inferbridge-overhead-ms`, the time
/// the gateway itself added so far (core/request_record.hpp `overhead_ms_text`): since `start`,
/// minus the wall time of the attempts that ended (`attempt_result::latency`) and, for a stream,
/// minus the serving attempt's wait up to the piece that committed it; the record's
/// `overhead_us` is the same value (or, for a request that never answered, measured at its end).
/// Protocol: `request_actor_handle` (stream pieces, cancel) plus the responses to its calls
/// (`call_atom` -> `attempt_result`, `admit_atom` -> bool). Called on an I/O thread; the actor
/// runs on CAF's scheduler and answers `ctx->responder`, which posts to the session's executor.
/// When it finishes (answer sent, stream ended, or client gone) it finishes `ctx->limit`,
/// charging the tokens of the record's usage.
void spawn_request_actor(caf::actor_system& sys, std::shared_ptr<request_context> ctx);

}  // namespace ib::actors
