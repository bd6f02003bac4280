#include "metrics/registry.hpp"

#include <map>
#include <mutex>
#include <tuple>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

namespace ib::metrics {

namespace {

const prometheus::Histogram::BucketBoundaries& latency_buckets() {
  static const prometheus::Histogram::BucketBoundaries b{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                         1,     2.5,  5,     10,   30,  60,   120};
  return b;
}

std::string status_code(int status) {
  return status == 0 ? "none" : std::to_string(status);
}

}  // namespace

struct registry::impl {
  impl()
      : reg(std::make_shared<prometheus::Registry>()),
        requests(prometheus::BuildCounter()
                     .Name("inferbridge_requests_total")
                     .Help("Chat requests answered, by tier, serving provider and status code.")
                     .Register(*reg)),
        duration(prometheus::BuildHistogram()
                     .Name("inferbridge_request_duration_seconds")
                     .Help("Time from request to complete response, by tier.")
                     .Register(*reg)),
        ttfb(prometheus::BuildHistogram()
                 .Name("inferbridge_time_to_first_byte_seconds")
                 .Help("Time from request to the first response body byte, by tier.")
                 .Register(*reg)),
        attempts(prometheus::BuildCounter()
                     .Name("inferbridge_upstream_attempts_total")
                     .Help("Upstream attempts by provider and outcome.")
                     .Register(*reg)),
        upstream_duration(prometheus::BuildHistogram()
                              .Name("inferbridge_upstream_duration_seconds")
                              .Help("Duration of upstream attempts, by provider.")
                              .Register(*reg)),
        fallbacks(prometheus::BuildCounter()
                      .Name("inferbridge_fallbacks_total")
                      .Help("Fallbacks from one provider to the next, by tier and reason.")
                      .Register(*reg)),
        circuit(prometheus::BuildGauge()
                    .Name("inferbridge_circuit_state")
                    .Help("Circuit breaker state per provider: 0 closed, 1 half-open, 2 open.")
                    .Register(*reg)),
        tokens(prometheus::BuildCounter()
                   .Name("inferbridge_tokens_total")
                   .Help("Tokens reported by providers, by provider and kind.")
                   .Register(*reg)),
        inflight_family(prometheus::BuildGauge()
                            .Name("inferbridge_inflight_requests")
                            .Help("Chat requests in flight.")
                            .Register(*reg)),
        inflight(inflight_family.Add({})) {}

  template <class Family, class... Args>
  auto& child(Family& fam, std::map<std::vector<std::string>, void*>& cache,
              std::vector<std::string> key, const prometheus::Labels& labels, Args&&... args) {
    using metric = std::remove_reference_t<decltype(fam.Add(labels, std::forward<Args>(args)...))>;
    std::lock_guard lock{mutex};
    auto it = cache.find(key);
    if (it != cache.end()) {
      return *static_cast<metric*>(it->second);
    }
    auto& m = fam.Add(labels, std::forward<Args>(args)...);
    cache.emplace(std::move(key), &m);
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

  std::mutex mutex;  // guards the caches below (Family::Add locks too, but only on a miss)
  std::map<std::vector<std::string>, void*> requests_c, duration_c, ttfb_c, attempts_c, upstream_c,
      fallbacks_c, circuit_c, tokens_c;
};

registry::registry() : impl_(std::make_unique<impl>()) {}
registry::~registry() = default;

void registry::observe_request(const request_record& r) {
  auto& i = *impl_;
  std::string tier = r.tier.empty() ? "direct" : r.tier;
  std::string provider = r.provider.empty() ? "none" : r.provider;
  std::string code = status_code(r.status);
  i.child(i.requests, i.requests_c, {tier, provider, code},
          {{"tier", tier}, {"provider", provider}, {"code", code}})
      .Increment();
  i.child(i.duration, i.duration_c, {tier}, {{"tier", tier}}, latency_buckets())
      .Observe(static_cast<double>(r.latency_ms) / 1000.0);
  if (r.ttfb_ms) {
    i.child(i.ttfb, i.ttfb_c, {tier}, {{"tier", tier}}, latency_buckets())
        .Observe(static_cast<double>(*r.ttfb_ms) / 1000.0);
  }
  if (r.tokens && !r.provider.empty()) {
    i.child(i.tokens, i.tokens_c, {provider, "prompt"},
            {{"provider", provider}, {"kind", "prompt"}})
        .Increment(static_cast<double>(r.tokens->prompt_tokens));
    i.child(i.tokens, i.tokens_c, {provider, "completion"},
            {{"provider", provider}, {"kind", "completion"}})
        .Increment(static_cast<double>(r.tokens->completion_tokens));
  }
  // Every attempt that failed and was followed by another one is a fallback.
  for (std::size_t n = 0; n + 1 < r.attempts.size(); ++n) {
    const auto& a = r.attempts[n];
    if (a.status == 0
        && (a.reason == "no_key" || a.reason == "circuit_open" || a.reason == "cooldown")) {
      continue;  // skips are not fallbacks
    }
    std::string reason = a.status != 0 ? std::to_string(a.status) : a.reason;
    i.child(i.fallbacks, i.fallbacks_c, {tier, a.provider, reason},
            {{"tier", tier}, {"from_provider", a.provider}, {"reason", reason}})
        .Increment();
  }
}

void registry::observe_attempt(std::string_view provider, outcome o, double seconds) {
  auto& i = *impl_;
  std::string p(provider);
  std::string out(o == outcome::success ? "success" : reason_text(o));
  i.child(i.attempts, i.attempts_c, {p, out}, {{"provider", p}, {"outcome", out}}).Increment();
  i.child(i.upstream_duration, i.upstream_c, {p}, {{"provider", p}}, latency_buckets())
      .Observe(seconds);
}

void registry::set_circuit_state(std::string_view provider, breaker_state s) {
  auto& i = *impl_;
  std::string p(provider);
  i.child(i.circuit, i.circuit_c, {p}, {{"provider", p}}).Set(static_cast<double>(s));
}

void registry::inflight_add(int delta) {
  if (delta >= 0) {
    impl_->inflight.Increment(delta);
  } else {
    impl_->inflight.Decrement(-delta);
  }
}

std::string registry::serialize() const {
  return prometheus::TextSerializer{}.Serialize(impl_->reg->Collect());
}

}  // namespace ib::metrics
