#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/outcome.hpp"
#include "core/request_record.hpp"
#include "core/tier_plan.hpp"

namespace ib {

/// What the request actor must do next while walking its plan (design §4).
enum class walk_action : std::uint8_t {
  call,    ///< call the provider of plan entry `entry` now
  probe,   ///< its breaker may let one probe through: ask the supervisor for the slot, then
           ///< `call` it (admitted) or report `probe_refused` and `advance` again
  answer,  ///< nothing left to try (or the deadline passed): answer with `final_answer`
};

/// What `advance` returns: an action and, for `call` and `probe`, the plan entry it concerns.
struct walk_step {
  walk_action action = walk_action::answer;
  std::size_t entry = 0;  ///< the plan entry (call, probe); 0 for `answer`
};

/// How one upstream attempt ended, as the walk needs it (the provider actor's result).
/// The views need only live for the `end` call: the walk copies what it keeps.
struct attempt_end {
  outcome result = outcome::bad_response;  ///< how it ended (status or transport failure)
  int upstream_status = 0;                 ///< 0 when no response head arrived
  std::int64_t latency_ms = 0;             ///< the call's duration, in milliseconds
  /// A 429: when the user's cooldown for this provider ends (see `cooldown_for`).
  steady_time cooldown_until{};
  bool long_cooldown = false;    ///< a 429 saying waiting will not help (quota, credit)
  std::string_view message;      ///< the upstream's error message (429, 401/402/403), else empty
  std::string_view unsupported;  ///< `unsupported`: why the adapter could not express it
  std::string_view param;        ///< `unsupported`: the client's field at fault, if one is
};

/// What to do with an attempt that ended (design §4; §4 "Streams" for the commit point). After
/// a stream's commit point only `end_stream` (success) or `end_with_error` (any other outcome,
/// `cancelled` and `deadline` included) is returned.
enum class end_action : std::uint8_t {
  answer,          ///< success: answer with the upstream's response
  commit_and_end,  ///< a stream that succeeded before any commit point (e.g. an empty answer):
                   ///< send the held head and bytes, then end the stream
  end_stream,      ///< a committed stream ended cleanly
  end_with_error,  ///< a committed stream failed: end it with an SSE error event (never a silent
                   ///< truncation)
  pass_through,    ///< the request is at fault (400/404/413/422): the provider's error with its
                   ///< status and `x-should-retry: false`, no fallback
  fall_back,       ///< try the next provider (`falls_back`, or `unsupported`): `advance` again
  answer_final,    ///< the deadline expired: answer with `final_answer` (504 `deadline`)
  drop,            ///< the client went away: answer nothing
  ignore,          ///< a late result of an attempt already given up (or of no attempt)
};

/// The final error when every provider was tried or skipped: the envelope's error (message,
/// `param`, `code`), whether to send `x-should-retry: false`, and `Retry-After` (seconds).
struct final_error {
  /// The status is `http_status(err.code)`; `err.detail_code` is the envelope's `code` (as
  /// `exhausted_answer::detail_code`) and `err.param` is `model` for the no-key 424, the
  /// adapter's field for the unsupported 400, else empty.
  error err;
  bool no_retry = true;                       ///< send `x-should-retry: false`
  std::optional<std::int64_t> retry_after_s;  ///< send `Retry-After` (whole seconds, >= 1)
};

/// The fallback walk of one chat request over its plan, as a pure value (design §4, §5): which
/// provider to call, skip or probe next, what each attempt's end means, where a stream commits,
/// and which final answer the client gets. It records every attempt and skip (for
/// `x-inferbridge-attempts` and the request record). No I/O, no clock of its own: the caller
/// passes `now`, the providers' health views and the attempts' ends, and carries out the
/// returned actions. Not thread-safe (one per request, used by its request actor).
class request_walk {
 public:
  /// A walk over `plan_size` plan entries, answering by `deadline` (the request's overall
  /// deadline, design §4); `stream`: the client asked for a stream, so answers go through the
  /// commit point (`piece`).
  request_walk(std::size_t plan_size, steady_time deadline, bool stream);

  /// Moves to the next provider to call or probe, recording skips (no key, cooldown, open
  /// circuit) on the way. `view(i)` gives plan entry i's `provider_view`; `name(i)` its provider
  /// name (anything a `std::string` can be built from); both are called synchronously, on the
  /// caller's thread, for entries not yet visited. Returns `answer` once the plan is exhausted,
  /// or when `now >= deadline` with entries left (then `summary().deadline` is set).
  template <class ViewOf, class NameOf>
  walk_step advance(ViewOf&& view, NameOf&& name, steady_time now) {
    while (next_ < plan_size_) {
      if (now >= deadline_) {
        summary_.deadline = true;
        break;
      }
      const std::size_t i = next_++;
      auto s = next_step(view(i), now);
      if (s.kind == step_kind::skip) {
        summary_.skipped(s);
        attempts_.push_back(
            attempt_record{std::string(name(i)), 0, std::string(reason_text(s.skip_reason)), 0});
        continue;
      }
      ++summary_.keyed;
      return {s.kind == step_kind::call ? walk_action::call : walk_action::probe, i};
    }
    return {walk_action::answer, 0};
  }

  /// The supervisor refused the probe slot of `provider` (another request is probing, or the
  /// breaker re-opened): a `circuit_open` skip; `retry_at` is when a probe may go again.
  void probe_refused(std::string_view provider, steady_time retry_at);

  /// Starts an attempt at `provider` (after `call`, or an admitted probe); returns its number
  /// (1, 2, ... in this walk), which `end` and `piece` must carry so that late results are
  /// ignored.
  std::uint32_t start(std::string_view provider);

  /// The attempt `attempt` ended with `r`: records it (an `unsupported` refusal as a reason,
  /// not as an upstream attempt), keeps 429 and 401/402/403 messages for the final answer, and
  /// says what to do. `ignore` (and nothing recorded) unless `attempt` is the one in flight.
  end_action end(std::uint32_t attempt, const attempt_end& r);

  /// What to do with a piece of a streamed answer.
  enum class piece_action : std::uint8_t {
    ignore,  ///< a piece of an attempt already given up
    hold,    ///< before the commit point: keep it (with the response head) until the commit
    commit,  ///< this piece is the commit point: send the head and everything held, then it
    write,   ///< after the commit point: send it at once
  };

  /// A piece of attempt `attempt`'s stream arrived; `content` is the translator's sticky commit
  /// flag (content, a tool call or a finish reason; role-only chunks, pings and comments do
  /// not commit). `commit` comes at most once per request; a stream that ends before any
  /// content commits through `end`'s `commit_and_end` instead.
  piece_action piece(std::uint32_t attempt, bool content);

  /// The commit point has passed: `piece` returned `commit`, or `end` returned
  /// `commit_and_end`; nothing can fall back any more.
  bool committed() const noexcept { return committed_; }
  /// Whether an attempt is in flight (started and not yet ended or cancelled).
  bool in_flight() const noexcept { return in_flight_; }
  /// The number of the last attempt started (0 before the first).
  std::uint32_t attempt() const noexcept { return attempt_; }
  /// The provider of the attempt in flight (or of the last attempt; empty before the first).
  std::string_view current_provider() const noexcept { return current_; }

  /// The client went away: the attempt in flight (if any) is recorded as `cancelled` with
  /// `latency_ms` (milliseconds) and is no longer in flight.
  void cancel(std::int64_t latency_ms);

  /// Every attempt and skip so far, in order.
  const std::vector<attempt_record>& attempts() const noexcept { return attempts_; }
  /// Moves the attempts out (for the request record), leaving the walk's list empty.
  std::vector<attempt_record> take_attempts() noexcept { return std::move(attempts_); }
  /// `x-inferbridge-attempts` for a stream committing now: the attempts so far plus the serving
  /// one as `<provider>=200`.
  std::string attempts_header_serving() const;

  /// The final answer (design §4) for `route` (the tier, or `provider/model`): `decide_exhausted`
  /// on the summary, with a message for the client that names `route` and, for the 502 and the
  /// timeout 504, the attempts; the 429s and the key-rejected 424 quote the upstream messages.
  /// `plan_providers` are the plan's provider names (named in the 424 for a user without keys).
  /// `now` turns the soonest cooldown or probe time into `Retry-After` seconds.
  final_error final_answer(std::string_view route, const std::vector<std::string>& plan_providers,
                           steady_time now) const;

  /// What the walk has seen (for tests and metrics).
  const walk_summary& summary() const noexcept { return summary_; }

 private:
  std::size_t plan_size_;
  steady_time deadline_;
  bool stream_;
  std::size_t next_ = 0;
  std::uint32_t attempt_ = 0;
  bool in_flight_ = false;
  bool committed_ = false;
  std::string current_;
  walk_summary summary_;
  std::vector<attempt_record> attempts_;
  std::string unsupported_message_;
  std::string unsupported_param_;
  /// `provider: message` of the upstream errors the final answer quotes, joined with "; ".
  std::string upstream_messages_;
};

}  // namespace ib
