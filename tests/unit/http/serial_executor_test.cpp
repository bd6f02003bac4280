#include "http/serial_executor.hpp"

#include <atomic>
#include <thread>
#include <vector>

#include <boost/asio/post.hpp>
#include <gtest/gtest.h>

namespace ib::http {
namespace {

namespace net = boost::asio;
using io_executor = net::io_context::executor_type;
using strand_executor = net::strand<io_executor>;

TEST(SerialExecutor, OneThreadContextUsesItsOwnExecutor) {
  net::io_context io{1};
  auto ex = serial_executor(io);
  ASSERT_NE(ex.target<io_executor>(), nullptr);
  EXPECT_TRUE(*ex.target<io_executor>() == io.get_executor());
}

TEST(SerialExecutor, OtherContextsGetAStrandEach) {
  for (int hint : {0, 2, BOOST_ASIO_CONCURRENCY_HINT_DEFAULT}) {
    net::io_context io{hint};
    auto a = serial_executor(io);
    auto b = serial_executor(io);
    ASSERT_NE(a.target<strand_executor>(), nullptr) << "hint " << hint;
    ASSERT_NE(b.target<strand_executor>(), nullptr);
    EXPECT_FALSE(*a.target<strand_executor>() == *b.target<strand_executor>());
  }
}

/// On a context run by two threads, handlers posted to one serial executor never overlap.
TEST(SerialExecutor, StrandKeepsHandlersApartOnSeveralThreads) {
  net::io_context io{2};
  auto ex = serial_executor(io);
  std::atomic<int> inside{0};
  std::atomic<bool> overlapped{false};
  int count = 0;
  for (int i = 0; i < 2000; ++i) {
    net::post(ex, [&] {
      if (inside.fetch_add(1) != 0) {
        overlapped = true;
      }
      ++count;  // unsynchronised on purpose: the strand is the only guard
      inside.fetch_sub(1);
    });
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&io] { io.run(); });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_FALSE(overlapped.load());
  EXPECT_EQ(count, 2000);
}

}  // namespace
}  // namespace ib::http
