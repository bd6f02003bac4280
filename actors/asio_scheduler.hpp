#pragma once

#include <caf/fwd.hpp>

namespace boost::asio {
class io_context;
}

namespace ib::actors {

/// Installs a CAF scheduler that runs every scheduled (non-detached) actor on the threads of
/// `io`, next to the HTTP sessions and upstream exchanges, and a timer service driven by an asio
/// timer instead of a clock thread.
///
/// Why: with CAF's own worker threads every request crossed threads four times (I/O -> actor ->
/// I/O -> actor -> I/O), each a futex wake and a context switch, and every actor that terminated
/// woke CAF's clock thread. Here a message between actors on the same thread is a queue push; an
/// actor's call into asio is a post to the thread it already runs on. Detached actors (LMDB
/// writers) keep their own threads. Nothing scheduled here may block: that was already the rule.
///
/// `io` must outlive the actor system, and its threads must run until the actor system is
/// destroyed (its shutdown runs actors).
void use_asio_scheduler(caf::actor_system_config& cfg, boost::asio::io_context& io);

/// Drops the reference CAF's `spawn` leaves in the calling thread's logger slot; I/O threads call
/// it after spawning, so that the actor system can be destroyed while they still run.
void release_thread_logger();

}  // namespace ib::actors
