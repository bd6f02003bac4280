// The process_* series: /proc/<pid>/stat parsed as proc(5) describes it.
#include "metrics/process.hpp"

#include <string>

#include <gtest/gtest.h>

namespace ib::metrics {
namespace {

// A real line's shape; the command name holds a space and a ')'.
// utime=250 stime=150 starttime=1000 vsize=123456789 rss=2048.
constexpr std::string_view stat_line =
    "4242 (infer bridge) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 150 0 0 20 0 7 0 1000 "
    "123456789 2048 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";

TEST(ProcessStat, ParsesCpuMemoryAndStartTime) {
  auto s = parse_proc_stat(stat_line, 100, 4096, 1'700'000'000);
  ASSERT_TRUE(s.has_value());
  EXPECT_DOUBLE_EQ(s->cpu_seconds, 4.0);  // (250 + 150) ticks at 100 Hz
  EXPECT_DOUBLE_EQ(s->resident_bytes, 2048.0 * 4096);
  EXPECT_DOUBLE_EQ(s->virtual_bytes, 123456789.0);
  EXPECT_DOUBLE_EQ(s->start_time_seconds, 1'700'000'010.0);  // boot + 1000 ticks
}

TEST(ProcessStat, RejectsWhatIsNotAStatLine) {
  EXPECT_FALSE(parse_proc_stat("", 100, 4096, 0).has_value());
  EXPECT_FALSE(parse_proc_stat("4242 (x) S 1 2 3", 100, 4096, 0).has_value());
  EXPECT_FALSE(parse_proc_stat("no parenthesis at all", 100, 4096, 0).has_value());
  std::string bad{stat_line};
  bad.replace(bad.find(" 250 "), 5, " 2x0 ");
  EXPECT_FALSE(parse_proc_stat(bad, 100, 4096, 0).has_value());
  EXPECT_FALSE(parse_proc_stat(stat_line, 0, 4096, 0).has_value());
}

TEST(ProcessStat, BootTimeComesFromBtime) {
  EXPECT_EQ(parse_boot_time("cpu  1 2 3\nintr 5\nbtime 1700000000\nprocesses 9\n"),
            std::optional<std::int64_t>{1'700'000'000});
  EXPECT_FALSE(parse_boot_time("cpu  1 2 3\n").has_value());
  EXPECT_FALSE(parse_boot_time("btime x\n").has_value());
}

TEST(ProcessStat, ThisProcessIsReadable) {
  auto s = read_process_sample();
  ASSERT_TRUE(s.has_value());
  EXPECT_GT(s->resident_bytes, 0);
  EXPECT_GT(s->virtual_bytes, s->resident_bytes);
  EXPECT_GE(s->open_fds, 3);  // stdin, stdout, stderr
  EXPECT_GE(s->max_fds, s->open_fds);
  EXPECT_GT(s->start_time_seconds, 1'500'000'000);
}

TEST(ProcessStat, FamiliesFollowClientLibraryNames) {
  process_sample s;
  s.cpu_seconds = 1.5;
  auto fams = process_families(s);
  ASSERT_EQ(fams.size(), 6u);
  EXPECT_EQ(fams[0].name, "process_cpu_seconds_total");
  EXPECT_EQ(fams[0].type, prometheus::MetricType::Counter);
  EXPECT_DOUBLE_EQ(fams[0].metric.at(0).counter.value, 1.5);
  for (std::size_t i = 1; i < fams.size(); ++i) {
    EXPECT_EQ(fams[i].type, prometheus::MetricType::Gauge) << fams[i].name;
    EXPECT_TRUE(fams[i].name.starts_with("process_")) << fams[i].name;
  }
}

}  // namespace
}  // namespace ib::metrics
