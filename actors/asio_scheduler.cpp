#include "actors/asio_scheduler.hpp"

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <boost/asio.hpp>
#include <caf/all.hpp>
#include <caf/detail/simple_actor_clock.hpp>
#include <caf/scheduler/abstract_coordinator.hpp>

namespace ib::actors {

namespace {

namespace net = boost::asio;
using caf::resumable;

/// CAF's timer service on an asio timer. `simple_actor_clock` holds the schedule; a mutex makes
/// it safe from any thread (actors on several I/O threads, detached actors). Unlike CAF's
/// thread-safe clock, cancelling the timeouts of a terminating actor that has none (every request
/// actor) wakes nobody.
class asio_clock final : public caf::detail::simple_actor_clock,
                         public std::enable_shared_from_this<asio_clock> {
 public:
  explicit asio_clock(net::io_context& io) : strand_(net::make_strand(io)), timer_(strand_) {}

  void set_ordinary_timeout(time_point t, caf::abstract_actor* self, caf::atom_value type,
                            uint64_t id) override {
    locked([&] { simple_actor_clock::set_ordinary_timeout(t, self, type, id); });
  }
  void set_multi_timeout(time_point t, caf::abstract_actor* self, caf::atom_value type,
                         uint64_t id) override {
    locked([&] { simple_actor_clock::set_multi_timeout(t, self, type, id); });
  }
  void set_request_timeout(time_point t, caf::abstract_actor* self, caf::message_id id) override {
    locked([&] { simple_actor_clock::set_request_timeout(t, self, id); });
  }
  void cancel_ordinary_timeout(caf::abstract_actor* self, caf::atom_value type) override {
    locked([&] { simple_actor_clock::cancel_ordinary_timeout(self, type); });
  }
  void cancel_request_timeout(caf::abstract_actor* self, caf::message_id id) override {
    locked([&] { simple_actor_clock::cancel_request_timeout(self, id); });
  }
  void cancel_timeouts(caf::abstract_actor* self) override {
    locked([&] { simple_actor_clock::cancel_timeouts(self); });
  }
  void schedule_message(time_point t, caf::strong_actor_ptr receiver,
                        caf::mailbox_element_ptr content) override {
    locked(
        [&] { simple_actor_clock::schedule_message(t, std::move(receiver), std::move(content)); });
  }
  void schedule_message(time_point t, caf::group target, caf::strong_actor_ptr sender,
                        caf::message content) override {
    locked([&] {
      simple_actor_clock::schedule_message(t, std::move(target), std::move(sender),
                                           std::move(content));
    });
  }
  void cancel_all() override {
    locked([&] { simple_actor_clock::cancel_all(); });
  }

  /// Drops every pending timeout and stops the timer (at shutdown).
  void stop() {
    {
      std::lock_guard lock{mutex_};
      stopped_ = true;
      simple_actor_clock::cancel_all();
    }
    net::post(strand_, [self = shared_from_this()] { self->timer_.cancel(); });
  }

 private:
  /// Runs `f` under the lock; if it made the earliest due time earlier than the armed one,
  /// re-arms the timer (on its strand).
  template <class F>
  void locked(F&& f) {
    time_point rearm{};
    bool post = false;
    {
      std::lock_guard lock{mutex_};
      f();
      if (!stopped_ && !schedule().empty()) {
        auto due = schedule().begin()->first;
        if (due < armed_) {
          armed_ = due;
          rearm = due;
          post = true;
        }
      }
    }
    if (post) {
      net::post(strand_, [self = shared_from_this(), rearm] { self->arm(rearm); });
    }
  }

  void arm(time_point due) {
    timer_.expires_at(due);  // cancels a pending wait: its handler sees operation_aborted
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) {
        self->fire();
      }
    });
  }

  void fire() {
    time_point next = time_point::max();
    {
      std::lock_guard lock{mutex_};
      if (stopped_) {
        return;
      }
      // Delivers the expired events: enqueueing to actors only posts, it never re-enters here.
      trigger_expired_timeouts();
      if (!schedule().empty()) {
        next = schedule().begin()->first;
      }
      armed_ = next;
    }
    if (next != time_point::max()) {
      arm(next);
    }
  }

  std::mutex mutex_;
  time_point armed_ = time_point::max();
  bool stopped_ = false;
  net::strand<net::io_context::executor_type> strand_;
  net::steady_timer timer_;
};

/// The execution unit of a batch of actor runs on one I/O thread: actors scheduled by the actor
/// running now (a message to a blocked actor) run right after it in the same batch.
class io_unit final : public caf::execution_unit {
 public:
  explicit io_unit(caf::actor_system* sys) : caf::execution_unit(sys) {}
  void exec_later(resumable* job) override { later.push_back(job); }
  std::vector<resumable*> later;
};

class asio_coordinator final : public caf::scheduler::abstract_coordinator {
 public:
  asio_coordinator(caf::actor_system& sys, net::io_context& io)
      : abstract_coordinator(sys), io_(io), clock_(std::make_shared<asio_clock>(io)) {}

  void enqueue(resumable* job) override {
    pending_.fetch_add(1, std::memory_order_relaxed);
    net::post(io_, [this, job] {
      run_batch(job);
      pending_.fetch_sub(1, std::memory_order_release);
    });
  }

  caf::actor_clock& clock() noexcept override { return *clock_; }

  void init(caf::actor_system_config& cfg) override {
    abstract_coordinator::init(cfg);
    // Actors share threads with I/O: bound how long one actor may hold a thread.
    max_throughput_ = std::min<std::size_t>(max_throughput_, 64);
  }

  void stop() override {
    stop_actors();  // the printer utility actor (detached)
    clock_->stop();
    // The actor system's shutdown scheduled its internal actors' last steps: let the I/O threads
    // run them before this object goes away (the posted jobs refer to it).
    while (pending_.load(std::memory_order_acquire) != 0) {
      std::this_thread::yield();
    }
  }

 private:
  /// Runs `first`, then whatever it scheduled, up to a bound; the rest goes back to the queue
  /// so that sockets get their turn.
  void run_batch(resumable* first) {
    io_unit unit{&system()};
    unit.later.push_back(first);
    std::size_t ran = 0;
    std::size_t next = 0;
    for (; next < unit.later.size() && ran < batch_limit; ++next, ++ran) {
      resumable* job = unit.later[next];
      switch (job->resume(&unit, max_throughput())) {
        case resumable::resume_later:
          unit.later.push_back(job);  // keeps its reference; runs again after the others
          break;
        case resumable::done:
        case resumable::awaiting_message:
        case resumable::shutdown_execution_unit:
          intrusive_ptr_release(job);
          break;
      }
    }
    for (; next < unit.later.size(); ++next) {
      enqueue(unit.later[next]);
    }
    release_logger();
  }

 public:
  /// CAF's spawn pins the actor system's logger in a thread-local of the spawning thread, and the
  /// actor system's destructor waits for every such pin to go. I/O threads outlive the actor
  /// system, so they drop the pin after each batch (and after each spawn from a handler).
  static void release_logger() { caf::logger::set_current_actor_system(nullptr); }

 private:
  static constexpr std::size_t batch_limit = 64;

  net::io_context& io_;
  std::shared_ptr<asio_clock> clock_;
  std::atomic<std::size_t> pending_{0};
};

}  // namespace

void release_thread_logger() {
  asio_coordinator::release_logger();
}

void use_asio_scheduler(caf::actor_system_config& cfg, net::io_context& io) {
  cfg.module_factories.push_back([&io](caf::actor_system& sys) -> caf::actor_system::module* {
    return new asio_coordinator(sys, io);
  });
}

}  // namespace ib::actors
