#include "metrics/registry.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <iterator>
#include <map>
#include <mutex>
#include <tuple>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "metrics/names.hpp"
#include "metrics/process.hpp"

namespace ib::metrics {

namespace {

#ifndef IB_VERSION
#define IB_VERSION "unknown"  // CMake passes the project version
#endif

/// LLM latencies (request, first byte, upstream attempt): 5 ms to 300 s.
const prometheus::Histogram::BucketBoundaries& latency_buckets() {
  static const prometheus::Histogram::BucketBoundaries b{
      0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
  return b;
}

/// The gateway's own time (microsecond resolution): 25 µs to 100 ms.
const prometheus::Histogram::BucketBoundaries& overhead_buckets() {
  static const prometheus::Histogram::BucketBoundaries b{
      25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3};
  return b;
}

/// Registers in `reg` the family that `m` (metrics/names.hpp) describes, with `builder`.
template <class Builder>
auto& add_family(Builder builder, prometheus::Registry& reg, const names::metric& m) {
  return builder.Name(std::string(m.name)).Help(std::string(m.help)).Register(reg);
}

}  // namespace

struct registry::impl {
  impl()
      : reg(std::make_shared<prometheus::Registry>()),
        requests(add_family(prometheus::BuildCounter(), *reg, names::requests_total)),
        duration(add_family(prometheus::BuildHistogram(), *reg, names::request_duration)),
        ttfb(add_family(prometheus::BuildHistogram(), *reg, names::time_to_first_byte)),
        attempts(add_family(prometheus::BuildCounter(), *reg, names::upstream_attempts_total)),
        upstream_duration(add_family(prometheus::BuildHistogram(), *reg, names::upstream_duration)),
        fallbacks(add_family(prometheus::BuildCounter(), *reg, names::fallbacks_total)),
        circuit(add_family(prometheus::BuildGauge(), *reg, names::circuit_state)),
        tokens(add_family(prometheus::BuildCounter(), *reg, names::tokens_total)),
        inflight_family(add_family(prometheus::BuildGauge(), *reg, names::inflight_requests)),
        inflight(inflight_family.Add({})),
        overhead(add_family(prometheus::BuildHistogram(), *reg, names::overhead)),
        store_writes(add_family(prometheus::BuildCounter(), *reg, names::store_writes_total)),
        dropped(add_family(prometheus::BuildCounter(), *reg, names::request_records_dropped_total)
                    .Add({})),
        store_up(add_family(prometheus::BuildGauge(), *reg, names::store_up)),
        build_info(add_family(prometheus::BuildGauge(), *reg, names::build_info)) {
    for (std::size_t op = 0; op < names::store_ops.size(); ++op) {
      for (std::size_t ok = 0; ok < 2; ++ok) {
        store_write_children[op][ok] = &store_writes.Add(
            {{"op", std::string(names::store_ops[op])}, {"outcome", ok == 1 ? "ok" : "error"}});
      }
    }
    build_info.Add({{"version", IB_VERSION}}).Set(1);
  }

  using cache = std::map<std::string, void*, std::less<>>;

  /// The child of `fam` for `values` (in the order of `names`). Looked up by a joined key built
  /// in a reused buffer: a hit allocates nothing; only a miss builds the label map.
  template <class Family, std::size_t N, class... Args>
  auto& child(Family& fam, cache& c, const std::array<std::string_view, N>& names,
              const std::array<std::string_view, N>& values, Args&&... args) {
    using metric = std::remove_reference_t<decltype(fam.Add({}, std::forward<Args>(args)...))>;
    thread_local std::string key;
    key.clear();
    for (auto v : values) {
      key.append(v);
      key.push_back('\x1f');
    }
    std::lock_guard lock{mutex};
    if (auto it = c.find(std::string_view{key}); it != c.end()) {
      return *static_cast<metric*>(it->second);
    }
    prometheus::Labels labels;
    for (std::size_t i = 0; i < N; ++i) {
      labels.emplace(std::string(names[i]), std::string(values[i]));
    }
    auto& m = fam.Add(labels, std::forward<Args>(args)...);
    c.emplace(key, &m);
    return m;
  }

  std::shared_ptr<prometheus::Registry> reg;
  prometheus::Family<prometheus::Counter>& requests;
  prometheus::Family<prometheus::Histogram>& duration;
  prometheus::Family<prometheus::Histogram>& ttfb;
  prometheus::Family<prometheus::Counter>& attempts;
  prometheus::Family<prometheus::Histogram>& upstream_duration;
  prometheus::Family<prometheus::Counter>& fallbacks;
  prometheus::Family<prometheus::Gauge>& circuit;
  prometheus::Family<prometheus::Counter>& tokens;
  prometheus::Family<prometheus::Gauge>& inflight_family;
  prometheus::Gauge& inflight;
  prometheus::Family<prometheus::Histogram>& overhead;
  prometheus::Family<prometheus::Counter>& store_writes;
  /// [op index in names::store_ops][1 = ok, 0 = error]; all made in the constructor.
  std::array<std::array<prometheus::Counter*, 2>, names::store_ops.size()> store_write_children{};
  prometheus::Counter& dropped;
  prometheus::Family<prometheus::Gauge>& store_up;
  prometheus::Family<prometheus::Gauge>& build_info;
  process_collector process;

  std::mutex mutex;  // guards the caches below (Family::Add locks too, but only on a miss)
  cache requests_c, duration_c, ttfb_c, attempts_c, upstream_c, fallbacks_c, circuit_c, tokens_c,
      overhead_c;
};

registry::registry() : impl_(std::make_unique<impl>()) {}
registry::~registry() = default;

void registry::observe_request(const request_record& r) {
  auto& i = *impl_;
  std::string_view tier = r.tier.empty() ? std::string_view{"direct"} : std::string_view{r.tier};
  std::string_view provider =
      r.provider.empty() ? std::string_view{"none"} : std::string_view{r.provider};
  char code_buf[12];
  std::string_view code = "none";
  if (r.status != 0) {
    auto [end, ec] = std::to_chars(code_buf, code_buf + sizeof code_buf, r.status);
    (void)ec;
    code = std::string_view(code_buf, static_cast<std::size_t>(end - code_buf));
  }
  i.child(i.requests, i.requests_c, std::array<std::string_view, 3>{"tier", "provider", "code"},
          std::array<std::string_view, 3>{tier, provider, code})
      .Increment();
  i.child(i.duration, i.duration_c, std::array<std::string_view, 1>{"tier"},
          std::array<std::string_view, 1>{tier}, latency_buckets())
      .Observe(static_cast<double>(r.latency_ms) / 1000.0);
  if (r.ttfb_ms) {
    i.child(i.ttfb, i.ttfb_c, std::array<std::string_view, 1>{"tier"},
            std::array<std::string_view, 1>{tier}, latency_buckets())
        .Observe(static_cast<double>(*r.ttfb_ms) / 1000.0);
  }
  if (r.tokens && !r.provider.empty()) {
    const std::array<std::string_view, 2> names{"provider", "kind"};
    i.child(i.tokens, i.tokens_c, names, std::array<std::string_view, 2>{provider, "prompt"})
        .Increment(static_cast<double>(r.tokens->prompt_tokens));
    i.child(i.tokens, i.tokens_c, names, std::array<std::string_view, 2>{provider, "completion"})
        .Increment(static_cast<double>(r.tokens->completion_tokens));
  }
  // What the gateway added (the request actor measured it: total minus upstream wait).
  i.child(i.overhead, i.overhead_c, std::array<std::string_view, 1>{"tier"},
          std::array<std::string_view, 1>{tier}, overhead_buckets())
      .Observe(static_cast<double>(std::max<std::int64_t>(0, r.overhead_us)) / 1e6);
  // Every attempt that failed and was followed by another one is a fallback.
  for (std::size_t n = 0; n + 1 < r.attempts.size(); ++n) {
    const auto& a = r.attempts[n];
    if (a.status == 0
        && (a.reason == "no_key" || a.reason == "circuit_open" || a.reason == "cooldown")) {
      continue;  // skips are not fallbacks
    }
    std::string status_text = a.status != 0 ? std::to_string(a.status) : std::string{};
    std::string_view reason = a.status != 0 ? std::string_view{status_text} : a.reason;
    i.child(i.fallbacks, i.fallbacks_c,
            std::array<std::string_view, 3>{"tier", "from_provider", "reason"},
            std::array<std::string_view, 3>{tier, a.provider, reason})
        .Increment();
  }
}

void registry::observe_attempt(std::string_view provider, outcome o, double seconds) {
  auto& i = *impl_;
  std::string_view out = o == outcome::success ? std::string_view{"success"} : reason_text(o);
  i.child(i.attempts, i.attempts_c, std::array<std::string_view, 2>{"provider", "outcome"},
          std::array<std::string_view, 2>{provider, out})
      .Increment();
  i.child(i.upstream_duration, i.upstream_c, std::array<std::string_view, 1>{"provider"},
          std::array<std::string_view, 1>{provider}, latency_buckets())
      .Observe(seconds);
}

void registry::set_circuit_state(std::string_view provider, breaker_state s) {
  auto& i = *impl_;
  i.child(i.circuit, i.circuit_c, std::array<std::string_view, 1>{"provider"},
          std::array<std::string_view, 1>{provider})
      .Set(static_cast<double>(s));
}

void registry::inflight_add(int delta) {
  if (delta >= 0) {
    impl_->inflight.Increment(delta);
  } else {
    impl_->inflight.Decrement(-delta);
  }
}

void registry::observe_store_write(std::string_view op, bool ok) {
  const auto& ops = names::store_ops;
  auto it = std::find(ops.begin(), ops.end(), op);
  if (it == ops.end()) {
    return;  // not a known operation: never a new series
  }
  impl_->store_write_children[static_cast<std::size_t>(it - ops.begin())][ok ? 1 : 0]->Increment();
}

void registry::add_records_dropped(std::uint64_t n) {
  impl_->dropped.Increment(static_cast<double>(n));
}

void registry::set_store_up(std::string_view kind, bool up) {
  if (kind != "lmdb" && kind != "postgres") {
    return;  // never a new series
  }
  std::lock_guard lock{impl_->mutex};
  impl_->store_up.Add({{"kind", std::string(kind)}}).Set(up ? 1 : 0);
}

std::string registry::serialize() const {
  auto families = impl_->reg->Collect();
  auto process = impl_->process.Collect();
  families.insert(families.end(), std::make_move_iterator(process.begin()),
                  std::make_move_iterator(process.end()));
  return prometheus::TextSerializer{}.Serialize(families);
}

}  // namespace ib::metrics
