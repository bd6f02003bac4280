#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "core/breaker.hpp"
#include "core/result.hpp"

namespace ib {

// What one gateway node tells the others through PostgreSQL's NOTIFY (design §10): the payload
// of a notification on the channel `inferbridge`. Every event names the node that sent it, so a
// node ignores its own. Times are wall-clock Unix milliseconds: nodes share no monotonic clock
// (they are assumed NTP-synchronised; a skew of S ms moves a shared deadline by S ms).

/// A user's gateway keys or provider keys changed: reload that user from the store.
struct key_event {
  std::string node;
  std::string user_id;
  friend bool operator==(const key_event&, const key_event&) = default;
};

/// A provider's breaker opened (until `retry_at_ms`, the next re-trip's period `next_cooldown_ms`)
/// or closed (a probe succeeded; the times are then 0).
struct breaker_event {
  std::string node;
  std::string provider;
  breaker_state state = breaker_state::closed;  ///< `open` or `closed`
  std::int64_t retry_at_ms = 0;
  std::int64_t next_cooldown_ms = 0;
  friend bool operator==(const breaker_event&, const breaker_event&) = default;
};

/// A 429 put (user, provider) in cooldown until `until_ms`.
struct cooldown_event {
  std::string node;
  std::string provider;
  std::string user_id;
  std::int64_t until_ms = 0;
  friend bool operator==(const cooldown_event&, const cooldown_event&) = default;
};

using cluster_event = std::variant<key_event, breaker_event, cooldown_event>;

/// The payload: space-separated fields, first a letter for the kind:
/// `k NODE USER`, `b NODE PROVIDER open|closed RETRY_AT_MS NEXT_COOLDOWN_MS`,
/// `c NODE PROVIDER USER UNTIL_MS`. Names must hold no space or control byte and be 1..200
/// bytes; `encode` does not check (the gateway's ids and provider names never do), `decode` does.
std::string encode(const cluster_event& e);

/// Parses a payload made by `encode`. errc::invalid_request (message says what is wrong) for
/// anything else: an unknown kind, a missing or extra field, a bad name or number, a state other
/// than open/closed. Pure; any bytes are safe input.
result<cluster_event> decode(std::string_view payload);

/// The node an event came from.
const std::string& node_of(const cluster_event& e) noexcept;

}  // namespace ib
