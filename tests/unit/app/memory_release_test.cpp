// When the gateway gives freed memory back to the OS, and that the releaser starts and stops
// cleanly with or without tcmalloc.
#include "app/memory_release.hpp"

#include <chrono>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <gtest/gtest.h>

namespace ib::app {
namespace {

TEST(MemoryRelease, ReleasesWhatStayedFreeForAWholePeriod) {
  memory_release_policy p;
  p.threshold_bytes = 4u << 20;
  EXPECT_TRUE(should_release(p, 30u << 20, 30u << 20));  // a thousand streams closed
  EXPECT_TRUE(should_release(p, 4u << 20, 4u << 20));
}

TEST(MemoryRelease, KeepsWorkingSlackAndFreshSurplus) {
  memory_release_policy p;
  p.threshold_bytes = 4u << 20;
  EXPECT_FALSE(should_release(p, 0, 0));
  EXPECT_FALSE(should_release(p, 1u << 20, 3u << 20));   // below the threshold
  EXPECT_FALSE(should_release(p, 0, 30u << 20));         // just freed: may be reused at once
  EXPECT_FALSE(should_release(p, 30u << 20, 1u << 20));  // it was reused
}

TEST(MemoryRelease, StopEndsTheChecks) {
  boost::asio::io_context io;
  memory_release_policy p;
  p.period = std::chrono::milliseconds{1};
  memory_releaser r{io, p};
  r.start();
  r.stop();
  r.stop();  // twice is fine
  // With tcmalloc the checks would go on until stopped; stopped, the io_context runs out of
  // work (bounded, so that a releaser that does not stop fails instead of hanging).
  io.run_for(std::chrono::seconds{5});
  EXPECT_TRUE(io.stopped());
}

}  // namespace
}  // namespace ib::app
