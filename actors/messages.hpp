#pragma once

// The actor protocol on one page: atoms, message payloads and shared snapshots.
// Every payload crosses actors as a std::shared_ptr (local only: never serialised), which
// CAF 0.17 accepts as an "unsafe" message type.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <caf/all.hpp>

#include "config/config.hpp"
#include "core/breaker.hpp"
#include "core/error.hpp"
#include "core/outcome.hpp"
#include "core/request_record.hpp"
#include "core/result.hpp"
#include "http/client.hpp"
#include "providers/adapter.hpp"
#include "providers/chat_request.hpp"

namespace ib::actors {

using steady_time = std::chrono::steady_clock::time_point;

// -- atoms (text <= 10 characters) ----------------------------------------------------------------

using call_atom = caf::atom_constant<caf::atom("call")>;        ///< request <-> provider
using reply_atom = caf::atom_constant<caf::atom("reply")>;      ///< exchange -> request
using chunk_atom = caf::atom_constant<caf::atom("chunk")>;      ///< exchange -> request
using cancel_atom = caf::atom_constant<caf::atom("cancel")>;    ///< client gone -> request
using admit_atom = caf::atom_constant<caf::atom("admit")>;      ///< request -> supervisor
using report_atom = caf::atom_constant<caf::atom("report")>;    ///< request -> supervisor
using mkuser_atom = caf::atom_constant<caf::atom("mkuser")>;    ///< api -> key actor
using putkey_atom = caf::atom_constant<caf::atom("putkey")>;    ///< api -> key actor
using delkey_atom = caf::atom_constant<caf::atom("delkey")>;    ///< api -> key actor
using record_atom = caf::atom_constant<caf::atom("record")>;    ///< request -> metrics
using listreq_atom = caf::atom_constant<caf::atom("listreq")>;  ///< api -> metrics
using flush_atom = caf::atom_constant<caf::atom("flush")>;      ///< metrics timer
using tick_atom = caf::atom_constant<caf::atom("tick")>;        ///< supervisor timer
using child_atom = caf::atom_constant<caf::atom("child")>;      ///< test -> key/metrics supervisor
using writer_atom = caf::atom_constant<caf::atom("writer")>;    ///< metrics supervisor <-> metrics

// -- errors ---------------------------------------------------------------------------------------

/// The CAF error category of `ib::errc`.
inline constexpr caf::atom_value error_category = caf::atom("ib");

}  // namespace ib::actors

namespace ib {

/// An `ib::errc` as a caf::error of category "ib"; the context holds (message, param). Found by
/// ADL, so a handler returning `caf::result<T>` may simply `return errc::unavailable;`.
inline caf::error make_error(errc x, std::string msg = {}, std::string param = {}) {
  return {static_cast<std::uint8_t>(x), actors::error_category,
          caf::make_message(std::move(msg), std::move(param))};
}

/// `err` as a caf::error of category "ib" (its `detail_code` is not carried).
inline caf::error make_error(error err) {
  return make_error(err.code, std::move(err.message), std::move(err.param));
}

}  // namespace ib

namespace ib::actors {

/// The `ib::error` that `e` carries, if `e` is of category "ib" (see `ib::make_error`).
inline std::optional<error> to_ib_error(const caf::error& e) {
  if (!e || e.category() != error_category) {
    return std::nullopt;
  }
  error out{static_cast<errc>(e.code()), {}};
  const auto& ctx = e.context();
  if (ctx.match_elements<std::string, std::string>()) {
    out.message = ctx.get_as<std::string>(0);
    out.param = ctx.get_as<std::string>(1);
  } else if (ctx.match_elements<std::string>()) {
    out.message = ctx.get_as<std::string>(0);
  }
  return out;
}

namespace detail {

/// Holds a command's `done` until it runs; runs it with `errc::unavailable` if it never did.
template <class T>
class drop_guard {
 public:
  drop_guard(std::function<void(result<T>)> done, std::string message)
      : done_(std::move(done)), message_(std::move(message)) {}
  drop_guard(const drop_guard&) = delete;
  drop_guard& operator=(const drop_guard&) = delete;
  // A destructor is a boundary: nothing may escape it.
  ~drop_guard() {
    if (auto done = take()) {
      try {
        done(error{errc::unavailable, std::move(message_), {}, "service_restarting"});
      } catch (...) {
        // The caller's responder (if any) still answers 500 when it is destroyed.
      }
    }
  }
  /// The callback, once; empty afterwards.
  std::function<void(result<T>)> take() noexcept { return std::exchange(done_, nullptr); }

 private:
  std::function<void(result<T>)> done_;
  std::string message_;
};

}  // namespace detail

/// Wraps a command's `done` so that it runs exactly once even if the command is dropped: a
/// command whose message dies unhandled (its actor was killed or crashed with it in the mailbox,
/// or it was sent to an actor already dead) calls `done` with `errc::unavailable` and `message`
/// from whichever thread dropped it, so `done` must be thread-agnostic (http::responder is).
/// Calling the wrapper a second time does nothing.
template <class T>
std::function<void(result<T>)> answer_if_dropped(std::function<void(result<T>)> done,
                                                 std::string message) {
  auto guard = std::make_shared<detail::drop_guard<T>>(std::move(done), std::move(message));
  return [guard](result<T> r) {
    if (auto d = guard->take()) {
      d(std::move(r));
    }
  };
}

// -- request <-> provider -------------------------------------------------------------------------

/// A shared handle that lets the request actor cancel an exchange the provider side started.
class call_control {
 public:
  /// Binds the exchange; cancels it at once if `cancel` came first.
  void attach(std::shared_ptr<http::exchange_control> ex);
  void cancel();
  /// Resumes an exchange paused for back-pressure.
  void resume();
  bool cancelled() const;

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<http::exchange_control> exchange_;
  bool cancelled_ = false;
};

/// Back-pressure towards a slow client: the exchange pauses while the client's unwritten bytes
/// exceed the high-water mark and resumes once they drain.
struct stream_flow {
  std::function<std::size_t()> pending;  ///< bytes queued towards the client
  /// Calls the argument once the queue has drained (any thread).
  std::function<void(std::function<void()>)> when_drained;
  std::size_t high_water = 256 * 1024;
};

/// One upstream attempt, asked of a provider actor by a request actor with
/// `request(provider, call_atom, call)`. The provider answers at once: with nothing once the
/// exchange has started (its pieces and its `attempt_result` then come as `chunk_atom` and
/// `reply_atom` messages to `reply_to`), or with an "ib" error when it cannot take the call
/// (`errc::invalid_request`: the request cannot be expressed in the provider's protocol).
struct upstream_call {
  std::uint32_t attempt = 0;
  std::shared_ptr<const providers::chat_request> request;
  std::string upstream_model;
  std::string api_key;  ///< decrypted; lives only in memory, never logged
  steady_time deadline;
  caf::actor reply_to;
  std::shared_ptr<call_control> control;
  std::shared_ptr<stream_flow> flow;  ///< streams only
};

/// A piece of a streamed answer (after the upstream's 2xx head), in OpenAI chunk format.
struct stream_piece {
  std::uint32_t attempt = 0;
  std::string bytes;
  bool content = false;  ///< sticky commit-point flag (see providers::stream_output)
  std::string model;     ///< the upstream model, once the stream has named it
};

/// How an attempt ended. For streams this follows the last `stream_piece`.
struct attempt_result {
  std::uint32_t attempt = 0;
  outcome result = outcome::bad_response;
  int upstream_status = 0;  ///< 0 when no response head arrived
  int client_status = 502;  ///< the status to answer with if this is final
  std::string body;         ///< non-stream success: the chat.completion; failure: the envelope
  std::string model;        ///< the upstream model that answered
  std::optional<ib::usage> tokens;
  std::string retry_after;  ///< raw header values, for 429 cooldowns
  std::string retry_after_ms;
  bool long_cooldown = false;
  std::chrono::microseconds latency{0};
  std::string message;  ///< unsupported: why the request could not be expressed
  std::string param;    ///< unsupported: the client's field at fault, if one is
};

struct user_entry;

// -- request -> supervisor ------------------------------------------------------------------------

struct attempt_report {
  std::shared_ptr<const user_entry> user;  ///< who asked (the 429 cooldown is per user)
  outcome result = outcome::success;
  bool probe = false;
  steady_time admitted_at{};  ///< when the attempt was admitted (started)
  std::chrono::microseconds latency{0};
  std::string retry_after;
  std::string retry_after_ms;
  bool long_cooldown = false;
  /// A 429: when the user's cooldown ends, as the request actor computed it from the headers
  /// above (and announced it in a final 429's Retry-After). Unset: compute it from them.
  steady_time cooldown_until{};
};

/// What a provider's health supervisor publishes for lock-free reads (design §2).
struct health_snapshot {
  breaker_state state = breaker_state::closed;
  steady_time retry_at{};  ///< open: when a probe may go
  caf::actor provider;     ///< the current provider actor (changes when restarted)
  /// (user id -> cooldown end) after 429s; expired entries may linger, compare with now.
  std::shared_ptr<const std::unordered_map<std::string, steady_time>> cooldowns;
  std::uint64_t restarts = 0;
};

/// One provider's slot on the health board: the supervisor is the only writer.
struct health_slot {
  std::string provider;
  caf::actor supervisor;
  std::atomic<std::shared_ptr<const health_snapshot>> snapshot;

  std::shared_ptr<const health_snapshot> load() const {
    return snapshot.load(std::memory_order_acquire);
  }
};

/// Every configured provider's slot, fixed at start.
struct health_board {
  std::vector<std::shared_ptr<health_slot>> slots;

  const health_slot* find(std::string_view provider) const noexcept {
    for (const auto& s : slots) {
      if (s->provider == provider) {
        return s.get();
      }
    }
    return nullptr;
  }
};

// -- keys -----------------------------------------------------------------------------------------

struct user_key {
  std::string provider;
  std::string secret;  ///< decrypted
  std::string hint;
  std::int64_t created = 0;
};

struct user_entry {
  std::string id;
  std::string email;
  std::int64_t created = 0;
  std::vector<user_key> keys;

  const user_key* key_for(std::string_view provider) const noexcept {
    for (const auto& k : keys) {
      if (k.provider == provider) {
        return &k;
      }
    }
    return nullptr;
  }
};

/// The key actor's published view: gateway key hash -> user, with decrypted provider keys.
struct key_snapshot {
  std::unordered_map<std::string, std::string> user_by_hash;  ///< 32-byte SHA-256 -> user id
  std::unordered_map<std::string, std::shared_ptr<const user_entry>> users;

  std::shared_ptr<const user_entry> find_by_hash(const std::string& hash) const {
    auto it = user_by_hash.find(hash);
    if (it == user_by_hash.end()) {
      return nullptr;
    }
    auto u = users.find(it->second);
    return u == users.end() ? nullptr : u->second;
  }
};

/// The published key snapshot; the key actor is the only writer.
struct key_directory {
  std::atomic<std::shared_ptr<const key_snapshot>> snapshot{std::make_shared<const key_snapshot>()};

  /// The user owning gateway key `token` (`ib_...`), or null.
  std::shared_ptr<const user_entry> authenticate(std::string_view token) const;
};

struct created_user {
  std::string id;
  std::string email;
  std::string api_key;  ///< shown once
  std::int64_t created = 0;
};

struct key_info {
  std::string provider;
  std::string hint;
  std::int64_t created = 0;
  bool replaced = false;
};

struct create_user_cmd {
  std::string email;
  std::function<void(result<created_user>)> done;
};

struct put_key_cmd {
  std::string user_id;
  std::string provider;
  std::string api_key;
  std::function<void(result<key_info>)> done;
};

struct delete_key_cmd {
  std::string user_id;
  std::string provider;
  std::function<void(result<bool>)> done;
};

// -- metrics / request log ------------------------------------------------------------------------

struct list_requests_cmd {
  std::string user_id;
  std::size_t limit = 20;
  std::string before;
  std::function<void(result<std::string>)> done;  ///< the JSON list body
};

}  // namespace ib::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<ib::actors::upstream_call>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<ib::actors::stream_piece>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<ib::actors::attempt_result>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<ib::actors::attempt_report>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<ib::actors::create_user_cmd>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<ib::actors::put_key_cmd>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<ib::actors::delete_key_cmd>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<ib::actors::list_requests_cmd>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<ib::request_record>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<std::vector<ib::request_record>>)
