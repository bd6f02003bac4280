#pragma once

// The actor protocol on one page: atoms, message payloads, the typed interface of every actor
// (at the end) and the snapshots actors publish for lock-free reads.
//
// Payloads that are plain data (`created_user`, `key_info`, `stream_piece`, `attempt_result`)
// travel by value and have an `inspect` overload, as CAF 0.17 requires. A few stay "unsafe"
// message types (CAF_ALLOW_UNSAFE_MESSAGE_TYPE, at the end): they hold handles, not data
// (`upstream_call`, `attempt_report`), or core structs moved as one allocation
// (`request_record`, record batches). Nothing here is ever serialised: every actor is local.
// Answers travel as CAF responses: a value, or a `caf::error` of category "ib" (`make_error`).

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
using append_atom = caf::atom_constant<caf::atom("append")>;    ///< metrics -> request-log writer
using stop_atom = caf::atom_constant<caf::atom("stop")>;        ///< metrics -> request-log writer
// Several nodes (design §10; actors/cluster.hpp):
using refresh_atom = caf::atom_constant<caf::atom("refresh")>;    ///< listener -> key actor
using reload_atom = caf::atom_constant<caf::atom("reload")>;      ///< listener -> key actor
using remote_atom = caf::atom_constant<caf::atom("remote")>;      ///< listener -> supervisor
using lease_atom = caf::atom_constant<caf::atom("lease")>;        ///< supervisor <-> cluster bus
using extend_atom = caf::atom_constant<caf::atom("extend")>;      ///< supervisor -> cluster bus
using publish_atom = caf::atom_constant<caf::atom("publish")>;    ///< supervisor -> cluster bus
using closed_atom = caf::atom_constant<caf::atom("closed")>;      ///< supervisor -> cluster bus
using cooldown_atom = caf::atom_constant<caf::atom("cooldown")>;  ///< supervisor -> cluster bus
using retry_atom = caf::atom_constant<caf::atom("retry")>;        ///< request-log writer timer

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

/// `err` as a caf::error of category "ib"; the context holds (message, param, detail_code) when
/// it has a `detail_code`.
inline caf::error make_error(error err) {
  if (err.detail_code.empty()) {
    return make_error(err.code, std::move(err.message), std::move(err.param));
  }
  return {
      static_cast<std::uint8_t>(err.code), actors::error_category,
      caf::make_message(std::move(err.message), std::move(err.param), std::move(err.detail_code))};
}

/// What a client is told when the store failed with `e`: an unreachable store (PostgreSQL away,
/// errc::unavailable) becomes a 503 `store_unavailable` whose message names no host, port or
/// server message (the caller logs `e` itself); any other error is returned as it is.
inline error public_store_error(error e) {
  if (e.code != errc::unavailable) {
    return e;
  }
  return error{errc::unavailable,
               "The gateway's database is unavailable; retry the request in a moment.",
               {},
               "store_unavailable"};
}

/// CAF 0.17 inspection of token counts (message payloads need it).
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, usage& x) {
  return f(caf::meta::type_name("usage"), x.prompt_tokens, x.completion_tokens, x.total_tokens,
           x.cached_tokens);
}

/// `std::optional<usage>` as CAF 0.17 inspects its own `optional`: a presence flag, then the
/// value. Found by ADL (the template argument is ours).
template <class Inspector>
typename std::enable_if_t<!Inspector::writes_state, typename Inspector::result_type> inspect(
    Inspector& f, std::optional<usage>& x) {
  return x ? f(true, *x) : f(false);
}

/// Loading side of the above.
template <class Inspector>
typename std::enable_if_t<Inspector::writes_state, typename Inspector::result_type> inspect(
    Inspector& f, std::optional<usage>& x) {
  bool flag = false;
  usage tmp{};
  caf::optional_inspect_helper<usage> helper{flag, tmp};
  auto guard = caf::detail::make_scope_guard([&] {
    if (flag) {
      x = tmp;
    } else {
      x.reset();
    }
  });
  return f(flag, helper);
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
  if (ctx.match_elements<std::string, std::string, std::string>()) {
    out.message = ctx.get_as<std::string>(0);
    out.param = ctx.get_as<std::string>(1);
    out.detail_code = ctx.get_as<std::string>(2);
  } else if (ctx.match_elements<std::string, std::string>()) {
    out.message = ctx.get_as<std::string>(0);
    out.param = ctx.get_as<std::string>(1);
  } else if (ctx.match_elements<std::string>()) {
    out.message = ctx.get_as<std::string>(0);
  }
  return out;
}

/// Whether `e` means the command never got an answer from its actor: the actor died or was
/// restarted with the command in its mailbox, or was already gone when it arrived (CAF bounces it
/// as `sec::request_receiver_down`), or the asker's timeout passed (`sec::request_timeout`).
inline bool is_dropped(const caf::error& e) noexcept {
  return e == caf::sec::request_receiver_down || e == caf::sec::request_timeout;
}

/// The `ib::error` a failed command answers its client with: the actor's own "ib" error; for a
/// dropped command (`is_dropped`: its actor died or restarted first, so it was all but certainly
/// not applied) `errc::unavailable` with detail code `service_restarting` and `dropped_message`
/// (the API adds `Retry-After: 1`); any other CAF error is `errc::internal`.
inline error command_error(const caf::error& e, std::string_view dropped_message) {
  if (auto err = to_ib_error(e)) {
    return std::move(*err);
  }
  if (is_dropped(e)) {
    return error{errc::unavailable, std::string(dropped_message), {}, "service_restarting"};
  }
  return error{errc::internal, "the command failed"};
}

// -- request <-> provider -------------------------------------------------------------------------

/// A shared handle that lets the request actor cancel an exchange the provider side started.
/// Thread-safe (a mutex): the request actor cancels, the provider actor attaches, I/O threads
/// resume.
class call_control {
 public:
  /// Binds the exchange; cancels it at once if `cancel` came first.
  void attach(std::shared_ptr<http::exchange_control> ex);
  /// Cancels the exchange (now, or when it is attached); it then ends with `cancelled`.
  void cancel();
  /// Resumes an exchange paused for back-pressure.
  void resume();
  /// Whether `cancel` was called.
  bool cancelled() const;

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<http::exchange_control> exchange_;
  bool cancelled_ = false;
};

/// One streamed attempt's way to the client. Back-pressure towards a slow client: the exchange
/// pauses while the client's unwritten bytes exceed the high-water mark and resumes once they
/// drain. After the commit point the exchange's handler writes pieces to the client itself
/// (`write`), skipping the request actor's hop: the request actor sets `committed` once it has
/// begun the response, and counts in `forwarded` every piece of the attempt it has handled, so
/// the handler writes directly only when none of its pieces is still in the actor's mailbox (the
/// client then gets the pieces in order).
struct stream_flow {
  std::function<std::size_t()> pending;  ///< bytes queued towards the client
  /// Calls the argument once the queue has drained (any thread).
  std::function<void(std::function<void()>)> when_drained;
  /// Sends bytes to the client as the stream's next chunk (any thread; empty: no direct writes).
  std::function<void(std::string)> write;
  std::size_t high_water = 256 * 1024;
  std::atomic<bool> committed{false};       ///< the response has begun (request actor)
  std::atomic<std::uint64_t> forwarded{0};  ///< pieces the request actor has handled
};

/// One upstream attempt, asked of a provider actor by a request actor with
/// `request(provider, caf::infinite, call_atom::value, std::move(call))`; the response is the
/// attempt's `attempt_result`, sent when the exchange ends. While a stream runs, its pieces come
/// first, as `(chunk_atom, stream_piece)` messages to the asker (from the same I/O thread, so
/// they arrive before the response). A call the provider cannot take is answered with an "ib"
/// error instead (`errc::invalid_request`: the request cannot be expressed in the provider's
/// protocol); a call that reaches no provider actor, with CAF's `sec::request_receiver_down`.
/// A local handle, not data: the parsed request stays behind a shared_ptr so that request
/// bodies are never copied on the hot path (zero-copy), hence an "unsafe" message type.
struct upstream_call {
  std::uint32_t attempt = 0;
  std::shared_ptr<const providers::chat_request> request;  ///< shared, never copied
  std::string upstream_model;
  std::string api_key;  ///< decrypted; lives only in memory, never logged
  steady_time deadline;
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

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, stream_piece& x) {
  return f(caf::meta::type_name("stream_piece"), x.attempt, x.bytes, x.content, x.model);
}

/// How an attempt ended: the response to `call_atom`. For streams it follows the last
/// `stream_piece`. `latency` in microseconds from the call's start to the exchange's end.
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

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, attempt_result& x) {
  return f(caf::meta::type_name("attempt_result"), x.attempt, x.result, x.upstream_status,
           x.client_status, x.body, x.model, x.tokens, x.retry_after, x.retry_after_ms,
           x.long_cooldown, x.latency, x.message, x.param);
}

struct user_entry;

// -- request -> supervisor ------------------------------------------------------------------------

/// How an attempt ended, told to the provider's health supervisor with `(report_atom, report)`
/// (breaker and 429 cooldowns). Holds the asking user by shared pointer (a handle, not data).
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

struct created_user;
struct key_info;

/// The request log's batch, handed from the metrics actor to the writer (moved, never copied).
using record_batch = std::vector<request_record>;

// -- typed interfaces: who answers what -----------------------------------------------------------
//
// Every handler runs on its actor's own thread (a CAF worker, an I/O thread under the asio
// scheduler, or its own thread when detached); answers come back as CAF responses, so an asker's
// `then` runs on the asker's thread. An "ib" error (`make_error`) means the actor refused or
// failed; CAF's `sec::request_receiver_down` / `sec::request_timeout` mean it never answered
// (`is_dropped`).

/// The provider actor (actors/provider_actor.hpp): one upstream exchange per call; the response
/// comes when the exchange ends (see `upstream_call`).
using provider_actor_handle =
    caf::typed_actor<caf::replies_to<call_atom, upstream_call>::with<attempt_result>>;

/// A provider's health supervisor (actors/health_supervisor.hpp). `admit_atom` asks for the
/// half-open probe slot (true: this caller is the probe); `report_atom` records how an attempt
/// ended (breaker, 429 cooldowns); `tick_atom` is its own one-second timer. With several nodes
/// (design §10) the cluster listener tells it what other nodes published:
/// `(remote_atom, open, retry_at_ms, next_cooldown_ms)` a breaker transition (open or closed),
/// `(remote_atom, user_id, until_ms)` a 429 cooldown (wall-clock Unix ms); `(lease_atom,
/// retry_at_ms)` is its own timer for asking for the cluster-wide probe lease.
using health_supervisor_handle =
    caf::typed_actor<caf::replies_to<admit_atom>::with<bool>,
                     caf::reacts_to<report_atom, attempt_report>, caf::reacts_to<tick_atom>,
                     caf::reacts_to<remote_atom, bool, std::int64_t, std::int64_t>,
                     caf::reacts_to<remote_atom, std::string, std::int64_t>,
                     caf::reacts_to<lease_atom, std::int64_t>>;

/// The key actor (actors/key_actor.hpp), the one writer of users and keys. Each answer comes
/// after the LMDB commit (durable) and after the key snapshot is republished:
/// `(mkuser_atom, email) -> created_user` (`errc::conflict` when the email is taken);
/// `(putkey_atom, user_id, provider, api_key) -> key_info` (`errc::unauthorized` for an unknown
/// user); `(delkey_atom, user_id, provider) -> bool` (false: there was no such key). A failing
/// store answers its `ib` error (`errc::storage`, `errc::internal`; `errc::unavailable` while
/// PostgreSQL is away). With several nodes the cluster listener tells it of writes made
/// elsewhere: `(refresh_atom, user_id)` reloads one user into the snapshot, `(reload_atom)`
/// rebuilds the whole snapshot (periodic resync, reconnect).
using key_actor_handle = caf::typed_actor<
    caf::replies_to<mkuser_atom, std::string>::with<created_user>,
    caf::replies_to<putkey_atom, std::string, std::string, std::string>::with<key_info>,
    caf::replies_to<delkey_atom, std::string, std::string>::with<bool>,
    caf::reacts_to<refresh_atom, std::string>, caf::reacts_to<reload_atom>>;

/// The key actor's supervisor: the stable handle callers hold. It delegates each command to the
/// current key actor (whose answer goes straight to the asker); `(child_atom)` names that actor
/// (for tests).
using key_supervisor_handle =
    key_actor_handle::extend<caf::replies_to<child_atom>::with<key_actor_handle>>;

/// The request-log writer (detached: it fsyncs): `(append_atom, batch)` commits a batch in one
/// transaction; `(listreq_atom, user_id, limit, before) -> std::string` answers a user's newest
/// records (at most `limit`, older than request id `before` if not empty) as the JSON list body;
/// `(stop_atom)` stops it after the messages before.
using log_writer_handle = caf::typed_actor<
    caf::reacts_to<append_atom, std::shared_ptr<record_batch>>,
    caf::replies_to<listreq_atom, std::string, std::uint64_t, std::string>::with<std::string>,
    caf::reacts_to<stop_atom>, caf::reacts_to<retry_atom>>;

/// The metrics actor: `(record_atom, record)` for each finished request; `listreq_atom` as the
/// writer's, delegated to it after the pending batch; `(writer_atom, writer)` names a restarted
/// writer; `flush_atom` is its own timer.
using metrics_actor_handle = caf::typed_actor<
    caf::reacts_to<record_atom, std::shared_ptr<request_record>>,
    caf::replies_to<listreq_atom, std::string, std::uint64_t, std::string>::with<std::string>,
    caf::reacts_to<writer_atom, log_writer_handle>, caf::reacts_to<flush_atom>>;

/// The metrics supervisor: the stable handle callers hold; it delegates records and listings to
/// the current metrics actor and names its children for tests.
using metrics_supervisor_handle = caf::typed_actor<
    caf::reacts_to<record_atom, std::shared_ptr<request_record>>,
    caf::replies_to<listreq_atom, std::string, std::uint64_t, std::string>::with<std::string>,
    caf::replies_to<child_atom>::with<metrics_actor_handle>,
    caf::replies_to<writer_atom>::with<log_writer_handle>>;

/// A request actor (actors/request_actor.hpp): pieces of the current attempt's stream, and the
/// client going away. Responses to its own calls need no entry here.
using request_actor_handle =
    caf::typed_actor<caf::reacts_to<chunk_atom, stream_piece>, caf::reacts_to<cancel_atom>>;

/// What a provider's health supervisor publishes for lock-free reads (design §2).
struct health_snapshot {
  breaker_state state = breaker_state::closed;
  steady_time retry_at{};          ///< open: when a probe may go
  provider_actor_handle provider;  ///< the current provider actor (changes when restarted)
  /// (user id -> cooldown end) after 429s; expired entries may linger, compare with now.
  std::shared_ptr<const std::unordered_map<std::string, steady_time>> cooldowns;
  std::uint64_t restarts = 0;
};

/// One provider's slot on the health board: the supervisor is the only writer.
struct health_slot {
  std::string provider;                 ///< the configured provider name
  health_supervisor_handle supervisor;  ///< set once, before any request
  std::atomic<std::shared_ptr<const health_snapshot>> snapshot;

  /// The current snapshot (never null once spawn_health_supervisor returned); any thread.
  std::shared_ptr<const health_snapshot> load() const {
    return snapshot.load(std::memory_order_acquire);
  }
};

/// Every configured provider's slot, fixed at start; read from any thread.
struct health_board {
  std::vector<std::shared_ptr<health_slot>> slots;

  /// The slot of the provider named `provider`, or null.
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

/// One of a user's provider keys, as the key snapshot holds it.
struct user_key {
  std::string provider;
  std::string secret;        ///< decrypted; lives only in memory, never logged
  std::string hint;          ///< the last characters, for display
  std::int64_t created = 0;  ///< Unix seconds
};

/// A user in the key snapshot: immutable once published (a change publishes a copy).
struct user_entry {
  std::string id;
  std::string email;
  std::int64_t created = 0;  ///< Unix seconds
  std::vector<user_key> keys;

  /// The user's key for `provider`, or null.
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

  /// The user whose gateway key has SHA-256 `hash` (32 raw bytes), or null.
  std::shared_ptr<const user_entry> find_by_hash(const std::string& hash) const {
    auto it = user_by_hash.find(hash);
    if (it == user_by_hash.end()) {
      return nullptr;
    }
    auto u = users.find(it->second);
    return u == users.end() ? nullptr : u->second;
  }
};

/// The published key snapshot; the key actor is the only writer, any thread reads.
struct key_directory {
  std::atomic<std::shared_ptr<const key_snapshot>> snapshot{std::make_shared<const key_snapshot>()};

  /// The user owning gateway key `token` (`ib_...`), or null.
  std::shared_ptr<const user_entry> authenticate(std::string_view token) const;
};

/// The answer to `(mkuser_atom, email)`: the new user, with its gateway key (shown once).
struct created_user {
  std::string id;
  std::string email;
  std::string api_key;       ///< shown once; never logged
  std::int64_t created = 0;  ///< Unix seconds
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, created_user& x) {
  return f(caf::meta::type_name("created_user"), x.id, x.email, x.api_key, x.created);
}

/// The answer to `(putkey_atom, user_id, provider, api_key)`: the stored key, without its secret.
struct key_info {
  std::string provider;
  std::string hint;          ///< the last characters, for display
  std::int64_t created = 0;  ///< Unix seconds
  bool replaced = false;     ///< the user had a key for this provider before
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, key_info& x) {
  return f(caf::meta::type_name("key_info"), x.provider, x.hint, x.created, x.replaced);
}

}  // namespace ib::actors

// Handles and moved allocations, not data (see the top of this file); local only.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ib::actors::upstream_call)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ib::actors::attempt_report)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<ib::request_record>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<ib::actors::record_batch>)
