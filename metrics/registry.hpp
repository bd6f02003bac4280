#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/breaker.hpp"
#include "core/outcome.hpp"
#include "core/request_record.hpp"

namespace ib::metrics {

/// The Prometheus metrics of design §7 (prometheus-cpp), named in metrics/names.hpp, which also
/// says which actors write which metric. A thread-safe sink: any thread may call any member;
/// label children are looked up once per label set and cached (a hit allocates nothing). No
/// user-identifying labels.
class registry {
 public:
  /// Registers every family of `names::all`; no series exist until written, except the
  /// unlabelled inflight gauge and records-dropped counter (at 0), every store_writes_total
  /// series (at 0) and build_info{version} (1; the CMake project version, `IB_VERSION`).
  registry();
  ~registry();
  registry(const registry&) = delete;
  registry& operator=(const registry&) = delete;

  /// A finished chat request: requests_total{tier,provider,code}, request_duration{tier},
  /// time_to_first_byte{tier} (when `r.ttfb_ms` is set), tokens_total{provider,kind} (when
  /// `r.tokens` is set), overhead{tier} (`r.overhead_us`, at least 0, in seconds), and one
  /// fallbacks_total{tier,from_provider,reason} per attempt that was followed by another and was
  /// not a skip (no_key, circuit_open, cooldown). Times in the record are milliseconds; they are
  /// exposed in seconds. An empty tier is `direct`, an empty provider `none`, a 0 status `none`.
  void observe_request(const request_record& r);
  /// One upstream attempt: upstream_attempts_total{provider,outcome} (`success` or the
  /// outcome's reason text) and upstream_duration{provider} (`seconds`).
  void observe_attempt(std::string_view provider, outcome o, double seconds);
  /// circuit_state{provider}: 0 closed, 1 half-open, 2 open (the `breaker_state` value).
  void set_circuit_state(std::string_view provider, breaker_state s);
  /// Adds `delta` (+1 on spawn, -1 when done) to the inflight_requests gauge.
  void inflight_add(int delta);
  /// One write transaction of the LMDB store: store_writes_total{op,outcome} (`ok` when `ok`,
  /// else `error`). `op` is one of `names::store_ops` (create_user, put_key, delete_key,
  /// append_requests); any other value is ignored, so no caller can mint a series. Every
  /// (op, outcome) series exists from construction, at 0.
  void observe_store_write(std::string_view op, bool ok);
  /// Adds `n` request records that never reached the request log (queue full, write failed) to
  /// request_records_dropped_total.
  void add_records_dropped(std::uint64_t n);
  /// Sets `inferbridge_store_up{kind}` (1 reachable, 0 not); `kind` is `lmdb` or `postgres`.
  void set_store_up(std::string_view kind, bool up);

  /// The Prometheus text exposition (format 0.0.4) of every metric: counters, then gauges, then
  /// histograms (prometheus-cpp groups families by type), each group in `names::all` order;
  /// then the `process_*` series, read from /proc now (metrics/process.hpp). Any thread.
  std::string serialize() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace ib::metrics
