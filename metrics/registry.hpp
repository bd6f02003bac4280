#pragma once

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
  /// Registers every family of `names::all`; no series exist until written (except the
  /// unlabelled inflight gauge, which starts at 0).
  registry();
  ~registry();
  registry(const registry&) = delete;
  registry& operator=(const registry&) = delete;

  /// A finished chat request: requests_total{tier,provider,code}, request_duration{tier},
  /// time_to_first_byte{tier} (when `r.ttfb_ms` is set), tokens_total{provider,kind} (when
  /// `r.tokens` is set), overhead{tier} (`r.latency_ms` minus the attempts' `latency_ms`, at
  /// least 0), and one fallbacks_total{tier,from_provider,reason} per attempt that was followed
  /// by another and was not a skip (no_key, circuit_open, cooldown). Times in the record are
  /// milliseconds; they are exposed in seconds. An empty tier is `direct`, an empty provider
  /// `none`, a 0 status `none`.
  void observe_request(const request_record& r);
  /// One upstream attempt: upstream_attempts_total{provider,outcome} (`success` or the
  /// outcome's reason text) and upstream_duration{provider} (`seconds`).
  void observe_attempt(std::string_view provider, outcome o, double seconds);
  /// circuit_state{provider}: 0 closed, 1 half-open, 2 open (the `breaker_state` value).
  void set_circuit_state(std::string_view provider, breaker_state s);
  /// Adds `delta` (+1 on spawn, -1 when done) to the inflight_requests gauge.
  void inflight_add(int delta);

  /// The Prometheus text exposition (format 0.0.4) of every metric, families in `names::all`
  /// order.
  std::string serialize() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace ib::metrics
