#pragma once

#include <array>
#include <string_view>

/// Every metric InferBridge exposes, in one place (design.md §7; Prometheus naming: base units,
/// `_total` for counters, `_seconds` for durations).
///
/// Who writes what. The registry (metrics/registry.hpp) is a thread-safe sink, written directly
/// by the actors that own each event (no actor round trip on the hot path):
/// - request actors: `upstream_attempts_total`, `upstream_duration_seconds` (one per attempt)
///   and `inflight_requests` (+1 when spawned, -1 when done);
/// - health supervisors: `circuit_state` (on every published breaker transition);
/// - the metrics actor: `requests_total`, `request_duration_seconds`,
///   `time_to_first_byte_seconds`, `fallbacks_total`, `tokens_total`, `overhead_seconds` (from
///   each finished request's record, via `registry::observe_request`);
/// - the key actor: `store_writes_total{op=create_user|put_key|delete_key}` (one per write
///   transaction, LMDB or PostgreSQL, `registry::observe_store_write`);
/// - the request-log writer (metrics actor): `store_writes_total{op=append_requests}` (one per
///   batch) and `request_records_dropped_total` (`registry::add_records_dropped`);
/// - start-up and the cluster listener (actors/cluster.hpp): `store_up` (1 at start; with
///   PostgreSQL, 0 while the listener cannot reach it);
/// - the registry itself: `build_info` (set once, at construction) and the `process_*` series
///   (read from /proc when /metrics is scraped; Prometheus client conventions, not in `all`).
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

inline constexpr metric store_writes_total{"inferbridge_store_writes_total", "counter",
                                           "op,outcome",
                                           "Writes to the store (LMDB or PostgreSQL), by operation "
                                           "(create_user, put_key, delete_key, append_requests) "
                                           "and outcome (ok, error)."};
inline constexpr metric request_records_dropped_total{
    "inferbridge_request_records_dropped_total", "counter", "",
    "Request records not written to the request log (queue full or write failed)."};
inline constexpr metric store_up{
    "inferbridge_store_up", "gauge", "kind",
    "1 while the store (kind lmdb or postgres) is reachable; 0 while PostgreSQL is away."};
inline constexpr metric build_info{"inferbridge_build_info", "gauge", "version",
                                   "Always 1; the gateway's version as a label."};

/// The fixed values of `store_writes_total`'s `op` label (`outcome` is `ok` or `error`).
inline constexpr std::array<std::string_view, 4> store_ops{"create_user", "put_key", "delete_key",
                                                           "append_requests"};

/// Every metric above, in exposition order.
inline constexpr std::array all{
    requests_total,    request_duration, time_to_first_byte, upstream_attempts_total,
    upstream_duration, fallbacks_total,  circuit_state,      tokens_total,
    inflight_requests, overhead,         store_writes_total, request_records_dropped_total,
    store_up,          build_info};

}  // namespace ib::metrics::names
