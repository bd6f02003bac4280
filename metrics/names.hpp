#pragma once

#include <array>
#include <string_view>

/// Every metric InferBridge exposes, in one place (design.md §7; Prometheus naming: base units,
/// `_total` for counters, `_seconds` for durations).
///
/// Who writes what. The registry (metrics/registry.hpp) is a thread-safe sink, written directly
/// by three kinds of actor (no actor round trip on the hot path):
/// - request actors: `upstream_attempts_total`, `upstream_duration_seconds` (one per attempt)
///   and `inflight_requests` (+1 when spawned, -1 when done);
/// - health supervisors: `circuit_state` (on every published breaker transition);
/// - the metrics actor: `requests_total`, `request_duration_seconds`,
///   `time_to_first_byte_seconds`, `fallbacks_total`, `tokens_total`, `overhead_seconds` (from
///   each finished request's record, via `registry::observe_request`).
/// Only `GET /metrics` reads it (text exposition). Label values come from the configuration
/// (tiers, providers), from outcome names and from HTTP statuses; never from a user.
namespace ib::metrics::names {

/// One metric: its name, Prometheus type and the labels it carries.
struct metric {
  std::string_view name;
  std::string_view type;    ///< "counter", "gauge" or "histogram"
  std::string_view labels;  ///< comma-separated label names ("" for none)
  std::string_view help;
};

// -- the metrics: each one's `help` is its description --------------------------------------------

inline constexpr metric requests_total{
    "inferbridge_requests_total", "counter", "tier,provider,code",
    "Chat requests answered, by tier, serving provider and status code."};
inline constexpr metric request_duration{"inferbridge_request_duration_seconds", "histogram",
                                         "tier",
                                         "Time from request to complete response, by tier."};
inline constexpr metric time_to_first_byte{
    "inferbridge_time_to_first_byte_seconds", "histogram", "tier",
    "Time from request to the first response body byte, by tier."};
inline constexpr metric upstream_attempts_total{"inferbridge_upstream_attempts_total", "counter",
                                                "provider,outcome",
                                                "Upstream attempts by provider and outcome."};
inline constexpr metric upstream_duration{"inferbridge_upstream_duration_seconds", "histogram",
                                          "provider",
                                          "Duration of upstream attempts, by provider."};
inline constexpr metric fallbacks_total{
    "inferbridge_fallbacks_total", "counter", "tier,from_provider,reason",
    "Fallbacks from one provider to the next, by tier and reason."};
inline constexpr metric circuit_state{
    "inferbridge_circuit_state", "gauge", "provider",
    "Circuit breaker state per provider: 0 closed, 1 half-open, 2 open."};
inline constexpr metric tokens_total{"inferbridge_tokens_total", "counter", "provider,kind",
                                     "Tokens reported by providers, by provider and kind."};
inline constexpr metric inflight_requests{"inferbridge_inflight_requests", "gauge", "",
                                          "Chat requests in flight."};
inline constexpr metric overhead{
    "inferbridge_overhead_seconds", "histogram", "tier",
    "Time the gateway adds to a chat request (total minus upstream wait), by tier."};

/// Every metric above, in exposition order.
inline constexpr std::array all{
    requests_total,    request_duration, time_to_first_byte, upstream_attempts_total,
    upstream_duration, fallbacks_total,  circuit_state,      tokens_total,
    inflight_requests, overhead};

}  // namespace ib::metrics::names
