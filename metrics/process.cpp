#include "metrics/process.hpp"

#include <charconv>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>

#include <sys/resource.h>
#include <unistd.h>

namespace ib::metrics {

namespace {

std::optional<std::int64_t> to_int(std::string_view s) {
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size()) {
    return std::nullopt;
  }
  return v;
}

std::optional<std::string> read_text(const char* path) {
  std::ifstream in{path, std::ios::binary};
  if (!in) {
    return std::nullopt;
  }
  return std::string{std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
}

prometheus::MetricFamily family(std::string name, std::string help, prometheus::MetricType type,
                                double value) {
  prometheus::MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  prometheus::ClientMetric m;
  if (type == prometheus::MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  f.metric.push_back(std::move(m));
  return f;
}

}  // namespace

std::optional<process_sample> parse_proc_stat(std::string_view stat, std::int64_t ticks_per_second,
                                              std::int64_t page_bytes, std::int64_t boot_time_s) {
  // Fields after the command name, which ends at the last ')': field 3 (state) comes first.
  auto close = stat.rfind(')');
  if (close == std::string_view::npos || ticks_per_second <= 0) {
    return std::nullopt;
  }
  std::string_view rest = stat.substr(close + 1);
  std::optional<std::int64_t> utime, stime, starttime, vsize, rss;
  int field = 2;
  while (!rest.empty() && field < 24) {
    auto begin = rest.find_first_not_of(" \n");
    if (begin == std::string_view::npos) {
      break;
    }
    rest.remove_prefix(begin);
    auto end = rest.find_first_of(" \n");
    auto token = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
    ++field;
    switch (field) {
      case 14:
        utime = to_int(token);
        break;
      case 15:
        stime = to_int(token);
        break;
      case 22:
        starttime = to_int(token);
        break;
      case 23:
        vsize = to_int(token);
        break;
      case 24:
        rss = to_int(token);
        break;
      default:
        break;
    }
  }
  if (!utime || !stime || !starttime || !vsize || !rss) {
    return std::nullopt;
  }
  const auto ticks = static_cast<double>(ticks_per_second);
  process_sample s;
  s.cpu_seconds = static_cast<double>(*utime + *stime) / ticks;
  s.resident_bytes = static_cast<double>(*rss) * static_cast<double>(page_bytes);
  s.virtual_bytes = static_cast<double>(*vsize);
  s.start_time_seconds = static_cast<double>(boot_time_s) + static_cast<double>(*starttime) / ticks;
  return s;
}

std::optional<std::int64_t> parse_boot_time(std::string_view proc_stat) {
  constexpr std::string_view key = "btime ";
  for (std::size_t pos = 0; pos < proc_stat.size();) {
    auto eol = proc_stat.find('\n', pos);
    auto line = proc_stat.substr(pos, eol == std::string_view::npos ? eol : eol - pos);
    if (line.starts_with(key)) {
      return to_int(line.substr(key.size()));
    }
    if (eol == std::string_view::npos) {
      break;
    }
    pos = eol + 1;
  }
  return std::nullopt;
}

std::optional<process_sample> read_process_sample() {
  auto stat = read_text("/proc/self/stat");
  auto system = read_text("/proc/stat");
  if (!stat || !system) {
    return std::nullopt;
  }
  auto boot = parse_boot_time(*system);
  if (!boot) {
    return std::nullopt;
  }
  auto s = parse_proc_stat(*stat, sysconf(_SC_CLK_TCK), sysconf(_SC_PAGESIZE), *boot);
  if (!s) {
    return std::nullopt;
  }
  std::error_code ec;
  std::size_t fds = 0;
  for (std::filesystem::directory_iterator it{"/proc/self/fd", ec}, end; !ec && it != end;
       it.increment(ec)) {
    ++fds;
  }
  s->open_fds = static_cast<double>(fds);
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0) {
    s->max_fds = static_cast<double>(lim.rlim_cur);
  }
  return s;
}

std::vector<prometheus::MetricFamily> process_families(const process_sample& s) {
  using prometheus::MetricType;
  std::vector<prometheus::MetricFamily> out;
  out.reserve(6);
  out.push_back(family("process_cpu_seconds_total",
                       "Total user and system CPU time spent in seconds.", MetricType::Counter,
                       s.cpu_seconds));
  out.push_back(family("process_resident_memory_bytes", "Resident memory size in bytes.",
                       MetricType::Gauge, s.resident_bytes));
  out.push_back(family("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                       MetricType::Gauge, s.virtual_bytes));
  out.push_back(family("process_open_fds", "Number of open file descriptors.", MetricType::Gauge,
                       s.open_fds));
  out.push_back(family("process_max_fds", "Maximum number of open file descriptors.",
                       MetricType::Gauge, s.max_fds));
  out.push_back(family("process_start_time_seconds",
                       "Start time of the process since unix epoch in seconds.", MetricType::Gauge,
                       s.start_time_seconds));
  return out;
}

std::vector<prometheus::MetricFamily> process_collector::Collect() const {
  auto s = read_process_sample();
  if (!s) {
    return {};
  }
  return process_families(*s);
}

}  // namespace ib::metrics
