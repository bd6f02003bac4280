#pragma once

#include <chrono>
#include <cstddef>
#include <memory>

namespace boost::asio {
class io_context;
}

namespace ib::app {

/// When to give memory back: the allocator's free pages (bytes it holds that no allocation
/// uses) are returned to the OS once they have stayed at or above `threshold_bytes` for two
/// checks in a row, `period` apart: memory left over after a burst (a thousand closed streams
/// leave ~30 MB), not the working slack of a steady load, which is reused within a period.
struct memory_release_policy {
  std::chrono::milliseconds period{5'000};
  std::size_t threshold_bytes = 4u << 20;
  /// Returned per step (the allocator's page-heap lock is held during a step; a step of 2 MiB
  /// took 0.25-0.65 ms on the bench machine); steps are posted one by one, so I/O runs between
  /// them.
  std::size_t step_bytes = 2u << 20;
};

/// True when free pages of `free_now` bytes, after `free_before` at the previous check, are to
/// be released under `policy`. Pure.
bool should_release(const memory_release_policy& policy, std::size_t free_before,
                    std::size_t free_now) noexcept;

/// Returns the allocator's surplus free pages to the OS from time to time. tcmalloc only (a build
/// with `-DIB_ALLOCATOR=tcmalloc`), found at run time: with jemalloc, the default, which returns
/// pages with a background thread of its own (app/main.cpp), with glibc's malloc or under ASan
/// it does nothing. Runs on `io`, off the request path: one timer every `policy.period`, reading
/// one allocator statistic; a release goes in steps of `policy.step_bytes`. Logs each release at
/// debug level (bytes, time taken).
class memory_releaser {
 public:
  memory_releaser(boost::asio::io_context& io, memory_release_policy policy = {});
  ~memory_releaser();
  memory_releaser(const memory_releaser&) = delete;
  memory_releaser& operator=(const memory_releaser&) = delete;

  /// True when the process's allocator can release memory (tcmalloc is there).
  bool active() const noexcept;
  /// Starts the checks (no-op when not `active()`).
  void start();
  /// Stops the checks; a release in progress stops at its next step. Safe to call twice.
  void stop();

 private:
  struct state;
  std::shared_ptr<state> state_;
};

}  // namespace ib::app
