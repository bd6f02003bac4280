// The registry exposes every metric of metrics/names.hpp (design.md §7) with the right type and
// labels, and counts what its writers report.
#include "metrics/registry.hpp"

#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "metrics/names.hpp"

namespace ib::metrics {
namespace {

request_record sample_record() {
  request_record r;
  r.id = "req_1";
  r.user_id = "usr_1";
  r.tier = "ib/balanced";
  r.model = "ib/balanced";
  r.provider = "sarvam";
  r.upstream_model = "sarvam-105b";
  r.attempts = {{"openai", 503, {}, 4}, {"groq", 0, "no_key", 0}, {"sarvam", 200, {}, 9}};
  r.status = 200;
  r.latency_ms = 15;
  r.ttfb_ms = 15;
  r.tokens = usage{10, 5, 15, 0};
  r.overhead_us = 2000;
  return r;
}

/// A registry that every writer has written to once.
std::string exposition_after_one_of_each(registry& reg) {
  reg.observe_request(sample_record());
  reg.observe_attempt("openai", outcome::server_error, 0.004);
  reg.observe_attempt("sarvam", outcome::success, 0.009);
  reg.set_circuit_state("openai", breaker_state::open);
  reg.inflight_add(1);
  reg.observe_store_write("put_key", true);
  reg.add_records_dropped(3);
  reg.set_store_up("postgres", true);
  return reg.serialize();
}

TEST(MetricNames, FollowPrometheusConventions) {
  for (const auto& m : names::all) {
    EXPECT_TRUE(m.name.starts_with("inferbridge_")) << m.name;
    if (m.type == "counter") {
      EXPECT_TRUE(m.name.ends_with("_total")) << m.name;
    }
    if (m.type == "histogram") {
      EXPECT_TRUE(m.name.ends_with("_seconds")) << m.name;
    }
    EXPECT_FALSE(m.help.empty()) << m.name;
    for (std::string_view forbidden : {"user", "email", "key"}) {
      EXPECT_EQ(m.labels.find(forbidden), std::string_view::npos) << m.name;
    }
  }
}

TEST(Registry, ExposesEveryNamedMetricWithItsType) {
  registry reg;
  const auto text = exposition_after_one_of_each(reg);
  for (const auto& m : names::all) {
    EXPECT_NE(text.find("# TYPE " + std::string(m.name) + " " + std::string(m.type)),
              std::string::npos)
        << m.name << "\n"
        << text;
  }
}

TEST(Registry, CountsWhatItsWritersReport) {
  registry reg;
  const auto text = exposition_after_one_of_each(reg);
  for (
      std::string_view series : {
          R"(inferbridge_requests_total{code="200",provider="sarvam",tier="ib/balanced"} 1)",
          R"(inferbridge_fallbacks_total{from_provider="openai",reason="503",tier="ib/balanced"} 1)",
          R"(inferbridge_tokens_total{kind="prompt",provider="sarvam"} 10)",
          R"(inferbridge_tokens_total{kind="completion",provider="sarvam"} 5)",
          R"(inferbridge_upstream_attempts_total{outcome="server_error",provider="openai"} 1)",
          R"(inferbridge_upstream_attempts_total{outcome="success",provider="sarvam"} 1)",
          R"(inferbridge_circuit_state{provider="openai"} 2)",
          "inferbridge_inflight_requests 1",
          R"(inferbridge_store_writes_total{op="put_key",outcome="ok"} 1)",
          R"(inferbridge_store_writes_total{op="put_key",outcome="error"} 0)",
          R"(inferbridge_store_writes_total{op="append_requests",outcome="ok"} 0)",
          "inferbridge_request_records_dropped_total 3",
      }) {
    EXPECT_NE(text.find(series), std::string::npos) << series << "\n" << text;
  }
  // A skip (groq=no_key) is not a fallback.
  EXPECT_EQ(text.find(R"(from_provider="groq")"), std::string::npos) << text;
}

TEST(Registry, ConcurrentWritersLoseNothing) {
  registry reg;
  constexpr int threads = 4;
  constexpr int each = 2000;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&reg] {
      for (int i = 0; i < each; ++i) {
        reg.observe_attempt("openai", outcome::success, 0.001);
        reg.inflight_add(1);
        reg.inflight_add(-1);
      }
    });
  }
  for (auto& th : pool) {
    th.join();
  }
  const auto text = reg.serialize();
  EXPECT_NE(
      text.find(R"(inferbridge_upstream_attempts_total{outcome="success",provider="openai"} 8000)"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("inferbridge_inflight_requests 0"), std::string::npos) << text;
}

// -- design.md §7: the metric contract ------------------------------------------------------------

/// The metrics design.md §7 names, with their labels (the contract; `process_*` aside).
struct designed {
  std::string_view name;
  std::string_view type;
  std::string_view labels;
};

constexpr designed design_section_7[] = {
    {"inferbridge_requests_total", "counter", "tier,provider,code"},
    {"inferbridge_request_duration_seconds", "histogram", "tier"},
    {"inferbridge_time_to_first_byte_seconds", "histogram", "tier"},
    {"inferbridge_upstream_attempts_total", "counter", "provider,outcome"},
    {"inferbridge_upstream_duration_seconds", "histogram", "provider"},
    {"inferbridge_fallbacks_total", "counter", "tier,from_provider,reason"},
    {"inferbridge_circuit_state", "gauge", "provider"},
    {"inferbridge_tokens_total", "counter", "provider,kind"},
    {"inferbridge_inflight_requests", "gauge", ""},
    {"inferbridge_overhead_seconds", "histogram", "tier"},
    {"inferbridge_store_writes_total", "counter", "op,outcome"},
    {"inferbridge_request_records_dropped_total", "counter", ""},
    // Issue 14 (several nodes): design §10 asks for "a metric [that reports] the store state";
    // §7 does not list it yet.
    {"inferbridge_store_up", "gauge", "kind"},
    {"inferbridge_build_info", "gauge", "version"},
};

const names::metric* named(std::string_view name) {
  for (const auto& m : names::all) {
    if (m.name == name) {
      return &m;
    }
  }
  return nullptr;
}

/// The label names of every exposed series of `name` (sample lines `name{a="…",b="…"} v`, and
/// for a histogram its `_count` lines), as "a,b" in the order of `labels`.
std::set<std::string> exposed_label_sets(const std::string& text, std::string_view name,
                                         std::string_view type) {
  std::set<std::string> out;
  std::string series{name};
  if (type == "histogram") {
    series += "_count";
  }
  std::istringstream in{text};
  for (std::string line; std::getline(in, line);) {
    if (!line.starts_with(series) || line.size() <= series.size()
        || (line[series.size()] != '{' && line[series.size()] != ' ')) {
      continue;
    }
    std::set<std::string> keys;
    std::regex label{R"re(([a-z_]+)=")re"};
    auto close = line.find('}');
    std::string inside =
        line[series.size()] == '{' ? line.substr(series.size(), close - series.size()) : "";
    for (std::sregex_iterator it{inside.begin(), inside.end(), label}, end; it != end; ++it) {
      keys.insert((*it)[1].str());
    }
    std::string joined;
    for (const auto& k : keys) {
      joined += (joined.empty() ? "" : ",") + k;
    }
    out.insert(joined);
  }
  return out;
}

std::string sorted_labels(std::string_view labels) {
  std::set<std::string> keys;
  std::string_view rest = labels;
  while (!rest.empty()) {
    auto comma = rest.find(',');
    keys.emplace(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
  }
  std::string joined;
  for (const auto& k : keys) {
    joined += (joined.empty() ? "" : ",") + k;
  }
  return joined;
}

TEST(DesignMetrics, EveryDesignedMetricIsNamedOnceWithItsTypeAndLabels) {
  for (const auto& d : design_section_7) {
    const auto* m = named(d.name);
    ASSERT_NE(m, nullptr) << d.name << " (design.md §7) is missing from metrics/names.hpp";
    EXPECT_EQ(m->type, d.type) << d.name;
    EXPECT_EQ(m->labels, d.labels) << d.name;
  }
  std::set<std::string_view> seen;
  for (const auto& m : names::all) {
    EXPECT_TRUE(seen.insert(m.name).second) << m.name << " is in names::all twice";
  }
  EXPECT_EQ(std::size(names::all), std::size(design_section_7))
      << "names.hpp has a metric design.md §7 does not name: add it there too";
}

TEST(DesignMetrics, EveryDesignedMetricIsExposedWithItsTypeAndLabels) {
  registry reg;
  const auto text = exposition_after_one_of_each(reg);
  for (const auto& d : design_section_7) {
    const std::string name{d.name};
    EXPECT_NE(text.find("# TYPE " + name + " " + std::string(d.type) + "\n"), std::string::npos)
        << name << "\n"
        << text;
    const auto sets = exposed_label_sets(text, d.name, d.type);
    ASSERT_FALSE(sets.empty()) << name << " has no series after one write of each kind\n" << text;
    for (const auto& s : sets) {
      EXPECT_EQ(s, sorted_labels(d.labels)) << name;
    }
  }
}

// -- newcomer check: adding a metric the way docs/where-things-go.md says
// ----------------------------
//
// `inferbridge_overhead_seconds` (design §7) was added as the doc says: its entry in names.hpp and
// in `names::all`, its family in `registry::impl`, written by the verb that sees the event
// (`observe_request`, from the finished request's record, by the metrics actor).

TEST(RegistryNewcomer, OverheadIsTotalMinusUpstreamTime) {
  registry reg;
  auto r = sample_record();  // 2 ms overhead, as the request actor measured it
  reg.observe_request(r);
  const auto text = reg.serialize();
  EXPECT_NE(text.find(R"(inferbridge_overhead_seconds_count{tier="ib/balanced"} 1)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(inferbridge_overhead_seconds_sum{tier="ib/balanced"} 0.002)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(inferbridge_overhead_seconds_bucket{tier="ib/balanced",le="0.001"} 0)"),
            std::string::npos)
      << text;
  // Buckets from 25 µs to 100 ms.
  EXPECT_NE(text.find(R"(inferbridge_overhead_seconds_bucket{tier="ib/balanced",le="2.5e-05"} 0)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(inferbridge_overhead_seconds_bucket{tier="ib/balanced",le="0.1"} 1)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(inferbridge_overhead_seconds_bucket{tier="ib/balanced",le="0.0025"} 1)"),
            std::string::npos)
      << text;
}

TEST(RegistryNewcomer, OverheadIsNeverNegativeAndDirectRoutesAreDirect) {
  registry reg;
  auto r = sample_record();
  r.tier.clear();
  r.overhead_us = -3;  // never produced by the request actor, but never exposed either
  reg.observe_request(r);
  const auto text = reg.serialize();
  EXPECT_NE(text.find("inferbridge_overhead_seconds_sum{tier=\"direct\"} 0\n"), std::string::npos)
      << text;
}

TEST(RegistryNewcomer, OverheadHasMicrosecondResolution) {
  registry reg;
  auto r = sample_record();
  r.overhead_us = 40;  // 40 µs: between the 25 µs and 50 µs buckets
  reg.observe_request(r);
  const auto text = reg.serialize();
  EXPECT_NE(text.find(R"(inferbridge_overhead_seconds_bucket{tier="ib/balanced",le="2.5e-05"} 0)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(inferbridge_overhead_seconds_bucket{tier="ib/balanced",le="5e-05"} 1)"),
            std::string::npos)
      << text;
}

TEST(Registry, LatencyHistogramsSpanFiveMillisecondsToFiveMinutes) {
  registry reg;
  reg.observe_request(sample_record());
  reg.observe_attempt("openai", outcome::success, 0.2);
  const auto text = reg.serialize();
  for (std::string_view series : {"inferbridge_request_duration_seconds_bucket",
                                  "inferbridge_time_to_first_byte_seconds_bucket",
                                  "inferbridge_upstream_duration_seconds_bucket"}) {
    for (std::string_view le : {R"(le="0.005")", R"(le="300")"}) {
      bool found = false;
      std::istringstream in{text};
      for (std::string line; std::getline(in, line);) {
        found = found || (line.starts_with(series) && line.find(le) != std::string::npos);
      }
      EXPECT_TRUE(found) << series << " " << le << "\n" << text;
    }
  }
}

TEST(Registry, BuildInfoAndProcessSeriesAreExposed) {
  registry reg;
  const auto text = reg.serialize();
  EXPECT_NE(text.find("inferbridge_build_info{version=\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"} 1\n"), std::string::npos) << text;
  for (std::string_view name : {"process_cpu_seconds_total", "process_resident_memory_bytes",
                                "process_virtual_memory_bytes", "process_open_fds",
                                "process_max_fds", "process_start_time_seconds"}) {
    EXPECT_NE(text.find("\n" + std::string(name) + " "), std::string::npos) << name << "\n" << text;
  }
  EXPECT_NE(text.find("# TYPE process_cpu_seconds_total counter"), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE process_open_fds gauge"), std::string::npos) << text;
}

// -- label cardinality: bounded by construction ---------------------------------------------------

/// The series lines (sample lines, not comments) of an exposition, without their values.
std::set<std::string> series_of(const std::string& text) {
  std::set<std::string> out;
  std::istringstream in{text};
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') {
      continue;
    }
    out.insert(line.substr(0, line.rfind(' ')));
  }
  return out;
}

TEST(RegistryCardinality, UnknownStoreOperationsMintNoSeries) {
  registry reg;
  const auto before = series_of(reg.serialize());
  for (int i = 0; i < 100; ++i) {
    reg.observe_store_write("op_" + std::to_string(i), i % 2 == 0);
  }
  reg.observe_store_write("", true);
  EXPECT_EQ(series_of(reg.serialize()), before);
}

TEST(RegistryCardinality, EveryStoreOperationHasItsSeriesFromTheStart) {
  registry reg;
  const auto text = reg.serialize();
  for (auto op : names::store_ops) {
    for (std::string_view outcome : {"ok", "error"}) {
      auto series = "inferbridge_store_writes_total{op=\"" + std::string(op) + "\",outcome=\""
                    + std::string(outcome) + "\"} 0";
      EXPECT_NE(text.find(series), std::string::npos) << series << "\n" << text;
    }
  }
  EXPECT_NE(text.find("inferbridge_request_records_dropped_total 0"), std::string::npos) << text;
}

TEST(RegistryCardinality, RepeatedWritesOfTheSameLabelsAddNoSeries) {
  registry reg;
  reg.observe_request(sample_record());
  reg.observe_attempt("openai", outcome::server_error, 0.004);
  const auto before = series_of(reg.serialize());
  for (int i = 0; i < 50; ++i) {
    reg.observe_request(sample_record());
    reg.observe_attempt("openai", outcome::server_error, 0.004);
    reg.observe_store_write("put_key", true);
  }
  EXPECT_EQ(series_of(reg.serialize()), before);
}

}  // namespace
}  // namespace ib::metrics
