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
  registry();
  ~registry();
  registry(const registry&) = delete;
  registry& operator=(const registry&) = delete;

  /// A finished chat request: requests_total, request_duration, ttfb, tokens, fallbacks.
  void observe_request(const request_record& r);
  /// One upstream attempt: upstream_attempts_total{provider,outcome}, upstream_duration.
  void observe_attempt(std::string_view provider, outcome o, double seconds);
  void set_circuit_state(std::string_view provider, breaker_state s);
  void inflight_add(int delta);

  /// The Prometheus text exposition of every metric.
  std::string serialize() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace ib::metrics
