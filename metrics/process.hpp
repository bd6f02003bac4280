#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

namespace ib::metrics {

/// One reading of the process's own resources, as the Prometheus client libraries expose them
/// (`process_*`, https://prometheus.io/docs/instrumenting/writing_clientlibs/#process-metrics).
struct process_sample {
  double cpu_seconds = 0;         ///< user + system CPU time, in seconds
  double resident_bytes = 0;      ///< resident set size, in bytes
  double virtual_bytes = 0;       ///< virtual memory size, in bytes
  double start_time_seconds = 0;  ///< start time, in seconds since the Unix epoch
  double open_fds = 0;            ///< open file descriptors
  double max_fds = 0;             ///< the soft RLIMIT_NOFILE
};

/// Parses the text of `/proc/<pid>/stat` (proc(5): utime 14, stime 15, starttime 22, vsize 23,
/// rss 24; the command name in parentheses may hold spaces and parentheses) into the CPU, memory
/// and start-time fields of a sample. `ticks_per_second` is `sysconf(_SC_CLK_TCK)`, `page_bytes`
/// `sysconf(_SC_PAGESIZE)`, `boot_time_s` the `btime` of `/proc/stat` (Unix seconds). Pure;
/// nullopt when the text is not a stat line (too few fields, a field not a number).
std::optional<process_sample> parse_proc_stat(std::string_view stat, std::int64_t ticks_per_second,
                                              std::int64_t page_bytes, std::int64_t boot_time_s);

/// The `btime` (boot time, Unix seconds) of the text of `/proc/stat`. Pure; nullopt without one.
std::optional<std::int64_t> parse_boot_time(std::string_view proc_stat);

/// Reads this process's sample from /proc (and getrlimit) now. Nullopt when /proc is not
/// readable or not as proc(5) describes it (then no `process_*` series are exposed).
std::optional<process_sample> read_process_sample();

/// The `process_*` families of `s`: process_cpu_seconds_total (counter),
/// process_resident_memory_bytes, process_virtual_memory_bytes, process_open_fds,
/// process_max_fds and process_start_time_seconds (gauges), without labels. Pure.
std::vector<prometheus::MetricFamily> process_families(const process_sample& s);

/// A prometheus-cpp collectable that reads the process's sample each time it is collected (when
/// /metrics is scraped), so the values are current. Thread-safe (keeps no state).
class process_collector : public prometheus::Collectable {
 public:
  /// `process_families(*read_process_sample())`, or nothing when /proc cannot be read.
  std::vector<prometheus::MetricFamily> Collect() const override;
};

}  // namespace ib::metrics
