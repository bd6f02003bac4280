#include "app/memory_release.hpp"

#include <atomic>
#include <cstdint>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <dlfcn.h>

#include "actors/log.hpp"
#include "http/serial_executor.hpp"

namespace ib::app {

namespace net = boost::asio;
using actors::log;
using actors::log_level;

bool should_release(const memory_release_policy& policy, std::size_t free_before,
                    std::size_t free_now) noexcept {
  return free_before >= policy.threshold_bytes && free_now >= policy.threshold_bytes;
}

namespace {

/// gperftools' C interface (gperftools/malloc_extension_c.h), looked up in the running process
/// so that the gateway links no allocator API: null when tcmalloc is not the allocator.
struct tcmalloc_api {
  int (*get_property)(const char*, std::size_t*) = nullptr;
  void (*release_to_system)(std::size_t) = nullptr;

  static tcmalloc_api find() {
    tcmalloc_api api;
    api.get_property = reinterpret_cast<int (*)(const char*, std::size_t*)>(
        dlsym(RTLD_DEFAULT, "MallocExtension_GetNumericProperty"));
    api.release_to_system = reinterpret_cast<void (*)(std::size_t)>(
        dlsym(RTLD_DEFAULT, "MallocExtension_ReleaseToSystem"));
    if (api.get_property == nullptr || api.release_to_system == nullptr) {
      return {};
    }
    return api;
  }

  bool found() const noexcept { return get_property != nullptr; }

  /// Free pages the page heap holds and has not yet returned to the OS, in bytes.
  std::size_t free_bytes() const noexcept {
    std::size_t v = 0;
    return get_property("tcmalloc.pageheap_free_bytes", &v) != 0 ? v : 0;
  }
};

}  // namespace

struct memory_releaser::state : std::enable_shared_from_this<memory_releaser::state> {
  state(net::io_context& io, memory_release_policy p)
      : timer(http::serial_executor(io)), policy(p), api(tcmalloc_api::find()) {}

  void schedule() {
    timer.expires_after(policy.period);
    timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec || self->stopped.load(std::memory_order_relaxed)) {
        return;
      }
      self->check();
    });
  }

  void check() {
    const std::size_t now = api.free_bytes();
    const bool release = should_release(policy, free_before, now);
    free_before = now;
    if (!release) {
      return schedule();
    }
    release_step(now, std::chrono::steady_clock::now(), std::chrono::nanoseconds{0});
  }

  /// Returns one step's worth, then posts the next step until the surplus is gone: the
  /// allocator's lock is held during a step, so I/O handlers run between steps.
  void release_step(std::size_t at_start, std::chrono::steady_clock::time_point began,
                    std::chrono::nanoseconds busy) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::size_t before = api.free_bytes();
    api.release_to_system(policy.step_bytes);
    const std::size_t after = api.free_bytes();
    busy += std::chrono::steady_clock::now() - t0;
    if (after > 0 && after < before && !stopped.load(std::memory_order_relaxed)) {
      net::post(timer.get_executor(), [self = shared_from_this(), at_start, began, busy] {
        self->release_step(at_start, began, busy);
      });
      return;
    }
    free_before = after;
    using std::chrono::duration_cast;
    using std::chrono::microseconds;
    log(log_level::debug, "memory released to the OS",
        {{"bytes", static_cast<std::int64_t>(at_start - after)},
         {"busy_us", static_cast<std::int64_t>(duration_cast<microseconds>(busy).count())},
         {"elapsed_us",
          static_cast<std::int64_t>(
              duration_cast<microseconds>(std::chrono::steady_clock::now() - began).count())}});
    if (!stopped.load(std::memory_order_relaxed)) {
      schedule();
    }
  }

  net::steady_timer timer;  ///< on a serial executor: every step below runs there, one at a time
  memory_release_policy policy;
  tcmalloc_api api;
  std::size_t free_before = 0;  ///< free bytes at the previous check (only the timer's chain)
  std::atomic<bool> stopped{false};
};

memory_releaser::memory_releaser(net::io_context& io, memory_release_policy policy)
    : state_(std::make_shared<state>(io, policy)) {}

memory_releaser::~memory_releaser() {
  stop();
}

bool memory_releaser::active() const noexcept {
  return state_->api.found();
}

void memory_releaser::start() {
  if (!active()) {
    return;
  }
  net::post(state_->timer.get_executor(), [s = state_] { s->schedule(); });
}

void memory_releaser::stop() {
  if (state_->stopped.exchange(true)) {
    return;
  }
  net::post(state_->timer.get_executor(), [s = state_] { s->timer.cancel(); });
}

}  // namespace ib::app
