#include "actors/metrics_actor.hpp"

#include <atomic>
#include <ctime>
#include <deque>

#include <caf/all.hpp>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "actors/log.hpp"
#include "actors/messages.hpp"
#include "core/request_record.hpp"
#include "metrics/registry.hpp"
#include "storage/store.hpp"

namespace ib::actors {

namespace {

/// Records per request-log transaction at most. Each transaction is a durable LMDB commit (an
/// fdatasync). 1,024 was tried for fewer commits: alternated at c=64 it saved no CPU per request
/// (28.0 vs 28.0 µs) and raised p99 from ~3.0 to ~4.5 ms, since a longer commit holds a core
/// longer (its page writes run in the kernel, unpreempted); 128 measured like 256. Below ~1,000
/// requests/s the flush timer ends a batch first. A crash loses at most one unflushed batch
/// (metadata only).
constexpr std::size_t max_batch = 256;
/// What a new batch reserves: a full batch.
constexpr std::size_t batch_reserve = max_batch;
/// How long a batch may wait for more records. At low request rates each commit's fixed cost (two
/// fdatasyncs and their page writes) is most of a request's CPU: at c=1 against a 50 ms upstream
/// the writer took ~300 µs per request with 100 ms here (bench/README.md, "Fourth round"). 250 ms
/// cuts the commits 2.5-fold and keeps a record listable well within a second of its response
/// (tests/e2e/lib/history_cases.mjs).
constexpr auto flush_interval = std::chrono::milliseconds(250);

// -- the request log writer: the one place that commits records (detached: it fsyncs) ------------

struct writer_state {
  std::shared_ptr<storage::store> store;
  std::shared_ptr<metrics::registry> reg;
  config::request_log_config log_cfg;
  /// Records kept while the store is unreachable (PostgreSQL away), oldest first; written before
  /// any newer batch once it is back. At most `max_buffered`.
  std::deque<request_record> pending;
  std::size_t max_buffered = 0;
  bool retry_scheduled = false;
  std::shared_ptr<std::atomic<std::size_t>> queued;  ///< shared with the metrics actor
  static inline const char* name = "request_log_writer";
};

using writer_actor_t = log_writer_handle::stateful_pointer<writer_state>;

std::string list_body(const storage::request_page& page) {
  return to_list_json(page.records_json, page.has_more);
}

enum class commit_outcome { done, failed, unreachable };

/// Commits `batch` in one transaction. A failure other than an unreachable store drops the
/// batch (counted and logged); an unreachable store leaves it to the caller to keep.
commit_outcome commit(writer_actor_t self, const record_batch& batch) {
  auto& st = self->state;
  auto rc = st.store->append_requests(batch, st.log_cfg.max_records_per_user,
                                      st.log_cfg.max_age_seconds(), std::time(nullptr));
  st.reg->observe_store_write("append_requests", rc.has_value());
  if (rc) {
    return commit_outcome::done;
  }
  if (rc.error().code == errc::unavailable && st.max_buffered > 0) {
    return commit_outcome::unreachable;
  }
  // The batch is one transaction: none of its records was written.
  st.reg->add_records_dropped(batch.size());
  log(log_level::error, "request log: a batch failed to commit",
      {{"error", rc.error().message}, {"records_dropped", batch.size()}});
  return commit_outcome::failed;
}

/// Keeps `batch` for later, dropping (and counting) the oldest records beyond the bound, and
/// makes sure a retry is scheduled.
void buffer(writer_actor_t self, record_batch batch) {
  auto& st = self->state;
  for (auto& r : batch) {
    st.pending.push_back(std::move(r));
  }
  std::size_t dropped = 0;
  while (st.pending.size() > st.max_buffered) {
    st.pending.pop_front();
    ++dropped;
  }
  if (dropped > 0) {
    st.reg->add_records_dropped(dropped);
  }
  if (!st.retry_scheduled) {
    st.retry_scheduled = true;
    self->delayed_send(self, std::chrono::seconds(1), retry_atom::value);
  }
}

/// Writes the backlog in batches of 4 × `max_batch`, oldest first, until it is empty or the store
/// is unreachable again (then a retry is scheduled).
void drain(writer_actor_t self) {
  auto& st = self->state;
  while (!st.pending.empty()) {
    const auto n = std::min(st.pending.size(), max_batch * 4);
    record_batch chunk(std::make_move_iterator(st.pending.begin()),
                       std::make_move_iterator(st.pending.begin() + static_cast<long>(n)));
    st.pending.erase(st.pending.begin(), st.pending.begin() + static_cast<long>(n));
    if (commit(self, chunk) == commit_outcome::unreachable) {
      // Put them back in front, in order.
      st.pending.insert(st.pending.begin(), std::make_move_iterator(chunk.begin()),
                        std::make_move_iterator(chunk.end()));
      if (!st.retry_scheduled) {
        st.retry_scheduled = true;
        self->delayed_send(self, std::chrono::seconds(1), retry_atom::value);
      }
      return;
    }
  }
}

/// The writer's thread yields to the I/O threads when both want a core: its commits (LMDB
/// page writes, an fdatasync) otherwise preempt requests in flight on a 2-core machine, which
/// showed as the gateway's c=1 p99. Nice 5 still leaves it about a fifth of a saturated
/// machine, several times what the request log needs at full load. Linux: `setpriority` on a
/// thread id changes that thread only. Best effort (no error if not permitted).
void lower_writer_priority() {
  const auto tid = static_cast<id_t>(::syscall(SYS_gettid));
  (void)::setpriority(PRIO_PROCESS, tid, 5);
}

log_writer_handle::behavior_type request_log_writer(
    writer_actor_t self, std::shared_ptr<storage::store> store,
    std::shared_ptr<metrics::registry> reg, config::request_log_config log_cfg,
    std::size_t max_buffered, std::shared_ptr<std::atomic<std::size_t>> queued) {
  lower_writer_priority();  // detached: this runs on the writer's own thread
  self->state.store = std::move(store);
  self->state.reg = std::move(reg);
  self->state.log_cfg = log_cfg;
  self->state.max_buffered = max_buffered;
  self->state.queued = std::move(queued);
  return {
      [self](append_atom, std::shared_ptr<record_batch>& batch) {
        auto& st = self->state;
        st.queued->fetch_sub(std::min(batch->size(), st.queued->load(std::memory_order_relaxed)),
                             std::memory_order_relaxed);
        if (!st.pending.empty()) {
          // The store was away: keep the order, the backlog goes first.
          buffer(self, std::move(*batch));
          drain(self);
          return;
        }
        if (commit(self, *batch) == commit_outcome::unreachable) {
          buffer(self, std::move(*batch));
        }
      },
      [self](retry_atom) {
        self->state.retry_scheduled = false;
        drain(self);
      },
      [self](listreq_atom, const std::string& user_id, std::uint64_t limit,
             const std::string& before) -> caf::result<std::string> {
        try {
          auto page = self->state.store->list_requests(user_id, limit, before);
          if (!page) {
            if (page.error().code == errc::unavailable) {
              log(log_level::warn, "request listing refused: the store is unreachable",
                  {{"reason", page.error().message}});
            }
            return make_error(public_store_error(std::move(page).error()));
          }
          return list_body(*page);
        } catch (const std::exception&) {
          // The handler boundary: a failed read must not kill the writer.
          return make_error(errc::internal, "the request log failed");
        }
      },
      [self](stop_atom) {
        // Shutting down: one last try for what the store could not take, then what is left is
        // lost, and counted as such.
        auto& st = self->state;
        drain(self);
        if (!st.pending.empty()) {
          st.reg->add_records_dropped(st.pending.size());
          log(log_level::error, "request log: records lost at shutdown (the store is unreachable)",
              {{"records_dropped", st.pending.size()}});
          st.pending.clear();
        }
        self->quit();
      },
  };
}

// -- the metrics actor: registry updates and batching (scheduled: cheap per-request messages) -----

struct metrics_state {
  std::shared_ptr<metrics::registry> reg;
  log_writer_handle writer;
  std::shared_ptr<std::atomic<std::size_t>> queued;  ///< records sent to the writer, not yet taken
  std::size_t max_queued = 0;                        ///< 0: no bound
  bool dropping = false;
  std::shared_ptr<record_batch> batch = std::make_shared<record_batch>();
  bool flush_scheduled = false;
  static inline const char* name = "metrics_actor";
};

using metrics_actor_t = metrics_actor_handle::stateful_pointer<metrics_state>;

void flush(metrics_actor_t self) {
  auto& st = self->state;
  if (st.batch->empty()) {
    return;
  }
  const auto n = st.batch->size();
  if (st.max_queued > 0 && st.queued->load(std::memory_order_relaxed) + n > st.max_queued) {
    // The store is slower than the traffic: keep memory bounded, drop this batch (counted).
    st.reg->add_records_dropped(n);
    if (!st.dropping) {
      st.dropping = true;
      log(log_level::warn, "request log: the store is behind; dropping records",
          {{"queued", st.queued->load(std::memory_order_relaxed)}, {"dropped", n}});
    }
    st.batch->clear();
    return;
  }
  st.dropping = false;
  st.queued->fetch_add(n, std::memory_order_relaxed);
  self->send(st.writer, append_atom::value, std::move(st.batch));
  st.batch = std::make_shared<record_batch>();
  st.batch->reserve(batch_reserve);
}

metrics_actor_handle::behavior_type metrics_actor(metrics_actor_t self,
                                                  std::shared_ptr<metrics::registry> reg,
                                                  log_writer_handle writer,
                                                  std::shared_ptr<std::atomic<std::size_t>> queued,
                                                  std::size_t max_queued) {
  auto& st = self->state;
  st.reg = std::move(reg);
  st.writer = std::move(writer);
  st.queued = std::move(queued);
  st.max_queued = max_queued;
  st.batch->reserve(batch_reserve);
  // On shutdown: hand the last batch to the writer, then stop it (in that order: both are
  // ordinary messages from this actor).
  self->set_exit_handler([self](const caf::exit_msg& em) {
    flush(self);
    self->send(self->state.writer, stop_atom::value);
    self->quit(em.reason);
  });
  return {
      [self](record_atom, std::shared_ptr<request_record>& r) {
        auto& st = self->state;
        st.reg->observe_request(*r);
        // The access line: formatted here, written by the logger's own thread (never blocks).
        process_logger().access(*r);
        if (r->user_id.empty()) {
          return;
        }
        st.batch->push_back(std::move(*r));
        if (st.batch->size() >= max_batch) {
          flush(self);
        } else if (!st.flush_scheduled) {
          st.flush_scheduled = true;
          self->delayed_send(self, flush_interval, flush_atom::value);
        }
      },
      [self](flush_atom) {
        self->state.flush_scheduled = false;
        flush(self);
      },
      [self](listreq_atom a, std::string& user_id, std::uint64_t limit, std::string& before) {
        // The writer handles messages in order: the batch lands before the listing is read, so a
        // client sees its own finished requests. The writer answers the asker directly.
        flush(self);
        return self->delegate(self->state.writer, a, std::move(user_id), limit, std::move(before));
      },
      [self](writer_atom, log_writer_handle& writer) {
        // The supervisor restarted the writer: batches sent to the old one died with it.
        self->state.writer = std::move(writer);
      },
  };
}

// -- the metrics supervisor: the stable handle that callers use -----------------------------------

// Design: request actors (gateway_deps::metrics) and the API hold the supervisor, never the
// metrics actor, so a restart needs no caller to learn a new handle. That costs one extra
// scheduled hop per finished request (a few microseconds, see docs/toolchain-notes.md); a
// published handle would save it but would put an atomic load and a reload protocol into every
// caller. The supervisor owns both children (monitored, not linked, so a death is noticed rather
// than propagated): a dead metrics actor is replaced by one that uses the current writer (its
// unflushed batch is lost: metadata only); a dead writer is replaced and the metrics actor told.
// A listing that dies with either comes back to its asker from CAF as
// `sec::request_receiver_down` (bounced from the dead actor's mailbox).

struct metrics_supervisor_state {
  std::shared_ptr<metrics::registry> reg;
  std::shared_ptr<storage::store> store;
  config::request_log_config log_cfg;
  std::size_t max_buffered = 0;
  std::shared_ptr<std::atomic<std::size_t>> queued = std::make_shared<std::atomic<std::size_t>>(0);
  log_writer_handle writer;
  metrics_actor_handle child;
  std::uint64_t restarts = 0;
  static inline const char* name = "metrics_supervisor";
};

using metrics_supervisor_t = metrics_supervisor_handle::stateful_pointer<metrics_supervisor_state>;

void spawn_writer(metrics_supervisor_t self) {
  auto& st = self->state;
  // Batches queued for a dead writer died with it: they no longer count against the bound.
  st.queued->store(0, std::memory_order_relaxed);
  st.writer = self->spawn<caf::detached + caf::monitored>(request_log_writer, st.store, st.reg,
                                                          st.log_cfg, st.max_buffered, st.queued);
}

void spawn_child(metrics_supervisor_t self) {
  auto& st = self->state;
  st.child =
      self->spawn<caf::monitored>(metrics_actor, st.reg, st.writer, st.queued, st.max_buffered);
}

metrics_supervisor_handle::behavior_type metrics_supervisor(metrics_supervisor_t self,
                                                            std::shared_ptr<metrics::registry> reg,
                                                            std::shared_ptr<storage::store> store,
                                                            config::request_log_config log_cfg,
                                                            std::size_t max_buffered) {
  auto& st = self->state;
  st.reg = std::move(reg);
  st.store = std::move(store);
  st.log_cfg = log_cfg;
  st.max_buffered = max_buffered;
  spawn_writer(self);
  spawn_child(self);
  self->set_down_handler([self](const caf::down_msg& dm) {
    auto& st = self->state;
    if (dm.source == st.writer.address()) {
      ++st.restarts;
      log(log_level::error, "request log writer died; restarting it",
          {{"reason", caf::to_string(dm.reason)}});
      spawn_writer(self);
      self->send(st.child, writer_atom::value, st.writer);
    } else if (dm.source == st.child.address()) {
      ++st.restarts;
      log(log_level::error, "metrics actor died; restarting it",
          {{"reason", caf::to_string(dm.reason)}});
      spawn_child(self);
    }
  });
  self->set_exit_handler([self](const caf::exit_msg& em) {
    // The metrics actor flushes its batch and stops the writer on its exit (see above).
    self->send_exit(self->state.child, em.reason);
    self->quit(em.reason);
  });
  return {
      [self](record_atom a, std::shared_ptr<request_record>& r) {
        self->send(self->state.child, a, std::move(r));
      },
      [self](listreq_atom a, std::string& user_id, std::uint64_t limit, std::string& before) {
        return self->delegate(self->state.child, a, std::move(user_id), limit, std::move(before));
      },
      [self](child_atom) { return self->state.child; },
      [self](writer_atom) { return self->state.writer; },
  };
}

}  // namespace

metrics_supervisor_handle spawn_metrics_actor(caf::actor_system& sys,
                                              std::shared_ptr<metrics::registry> reg,
                                              std::shared_ptr<storage::store> store,
                                              config::request_log_config log_cfg,
                                              std::size_t max_buffered) {
  return sys.spawn(metrics_supervisor, std::move(reg), std::move(store), log_cfg, max_buffered);
}

}  // namespace ib::actors
